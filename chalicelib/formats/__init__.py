"""Standard output formats for scan results (CycloneDX, SPDX, SARIF), one module each;
`chalicelib.render` dispatches. Shared here: stable per-package identifiers, so the same package
entry gets the same reference in every format and across runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from chalicelib.models import Package


def package_key(package: Package) -> tuple[str, str, str]:
    """What makes a package entry distinct in a scan: its purl, the file it came from, its layer."""
    return (package.purl, package.path, package.layer or "")


def package_refs(packages: Sequence[Package]) -> dict[tuple[str, str, str], str]:
    """package_key -> a short stable id (`<ecosystem-free name>-<12 hex>`): a hash of the key, so
    two copies of one purl at different paths get different ids and reruns get the same ones."""
    refs: dict[tuple[str, str, str], str] = {}
    for package in packages:
        key = package_key(package)
        digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:12]
        refs[key] = f"{package.name}-{digest}"
    return refs


def vulnerable_package(
    packages: Sequence[Package],
) -> dict[tuple[str, str, str, str], Package]:
    """(name, version, path, layer) -> package: how a `Vulnerability` (which names its package by
    those fields) finds the package entry it is about."""
    return {(p.name, p.version, p.path, p.layer or ""): p for p in packages}
