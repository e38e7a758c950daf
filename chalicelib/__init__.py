"""Lifeguard: serverless security for the whole life of a container on AWS."""

__version__ = "0.1.0"
