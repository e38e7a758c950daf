"""YAML documents with every scalar kept as a string, for the lockfile analyzers (`lockfileVersion:
5.4` must not become the float 5.4): libyaml's loader when present (fast), else PyYAML's pure-Python
one. PyYAML is imported on first use: only `dir:` scans read lockfiles, and neither an image scan
nor a Lambda cold start should pay for the import."""

from __future__ import annotations

from typing import Any


class YamlError(ValueError):
    """Not a YAML document."""


def load_strings(content: bytes | str) -> Any:
    import yaml  # deferred on purpose (see the module docstring)

    loader: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        return yaml.load(content, Loader=loader)  # noqa: S506 - BaseLoader builds no objects
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from exc
