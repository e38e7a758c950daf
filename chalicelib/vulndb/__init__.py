"""Vulnerability knowledge: version comparators, the OSV index, the matcher. No AWS inside."""
