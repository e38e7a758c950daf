"""Shared last step of the language analyzers: (name, version) pairs found in one file become
`Package`s with their purl, each pair once (lockfiles list a package at several tree positions),
in the file's order. A pair no purl can carry is skipped with a warning, never raised. Formats that
declare licenses pass them by pair (`licenses`); the first entry of a pair wins, as for the pair
itself."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from chalicelib.models import Package

log = logging.getLogger(__name__)

PurlFunction = Callable[[str, str], str]


def build_packages(
    path: str,
    ecosystem: str,
    purl: PurlFunction,
    found: Iterable[tuple[str, str]],
    licenses: Mapping[tuple[str, str], list[str]] | None = None,
) -> list[Package]:
    packages: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for name, version in found:
        if (name, version) in seen:
            continue
        seen.add((name, version))
        try:
            package_url = purl(name, version)
        except ValueError as exc:
            log.warning("%s: no purl for %s %s: %s", path, name, version, exc)
            continue
        declared = licenses.get((name, version), []) if licenses else []
        packages.append(
            Package(
                name=name,
                version=version,
                ecosystem=ecosystem,
                purl=package_url,
                path=path,
                licenses=declared,
            )
        )
    return packages


def clean(value: object) -> str | None:
    """A usable name or version field: a non-empty string once stripped, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None
