"""OSV ecosystem names split into (family, release) for the index key, and package-name
normalisation per family, shared by the index builder and the matcher so both sides agree."""

from __future__ import annotations

import re

_PEP503 = re.compile(r"[-_.]+")


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """`Debian:12` -> (`Debian`, `12`); `Ubuntu:22.04:LTS` -> (`Ubuntu`, `22.04:LTS`);
    `PyPI` -> (`PyPI`, '')."""
    family, _, release = ecosystem.partition(":")
    return family, release


def normalise_name(family: str, name: str) -> str:
    """PyPI names compare after PEP 503 normalisation; every other family compares names exactly."""
    if family == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name
