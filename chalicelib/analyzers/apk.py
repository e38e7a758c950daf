"""Alpine (and Wolfi/Chainguard) packages from apk-tools' database `lib/apk/db/installed`.

The database is blocks of `X:value` lines separated by blank lines; the letters that matter are
`P` (name), `V` (version), `A` (arch), `o` (origin = the source package, what secdb and OSV
advisories name) and `L` (the declared license, an SPDX expression in current Alpine and Wolfi:
`MIT`, `GPL-2.0-only AND LGPL-2.1-or-later`, kept as one string). The rest (checksums `Z:` ...)
is ignored.
OS-dependent fields (ecosystem, purl) stay empty until `finalize` knows the OS.

File ownership: after `P:`, each `F:` line names a directory (relative to the root) and each `R:`
line a file in the last `F:` directory. Only the paths that could be a language package's
manifest are kept (`ownership.keeps_path`): `F:usr/lib/python3.11/site-packages/
requests-2.31.0.dist-info` + `R:METADATA` is kept, the thousands of other files are not."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.ecosystems import os_family, os_package_ecosystem
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.ownership import keeps_path
from chalicelib.analyzers.purls import complete_os_packages
from chalicelib.models import OSInfo, Package

log = logging.getLogger(__name__)

INSTALLED_DB = "lib/apk/db/installed"
_WANTED_KEYS = frozenset("PVAoL")


def iter_blocks(text: str) -> Iterator[dict[str, str]]:
    """One {letter: value} per package block; the first occurrence of a letter wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
            continue
        if len(line) < 2 or line[1] != ":":
            continue
        key = line[0]
        if key in _WANTED_KEYS and key not in fields:
            fields[key] = line[2:].strip()
    if fields:
        yield fields


def iter_owned_files(text: str) -> Iterator[tuple[str, str]]:
    """(path, package name) for each kept `F:` directory and `R:` file of each package block."""
    owner, folder = "", ""
    for line in text.splitlines():
        if not line.strip():
            owner, folder = "", ""
            continue
        if len(line) < 2 or line[1] != ":":
            continue
        key, value = line[0], line[2:].strip()
        if key == "P" and not owner:
            owner = value
        elif key == "F":
            folder = value.strip("/")
            if owner and keeps_path(folder):
                yield folder, owner
        elif key == "R" and owner and value:
            path = f"{folder}/{value}" if folder else value
            if keeps_path(path):
                yield path, owner


def block_package(fields: dict[str, str], path: str) -> Package | None:
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        log.warning("%s: skipping an apk entry without P:/V: (%r)", path, name or version)
        return None
    return Package(
        name=name,
        version=version,
        ecosystem="",
        purl="",
        source_name=fields.get("o") or name,
        source_version=version,
        path=path,
        arch=fields.get("A") or None,
        licenses=normalize_licenses([fields.get("L")]),
    )


class ApkAnalyzer(Analyzer):
    name: ClassVar[str] = "apk"

    def wants(self, path: str) -> bool:
        return path == INSTALLED_DB

    def analyze(self, path: str, content: bytes) -> FileResult:
        text = content.decode("utf-8", errors="replace")
        packages = [
            package for fields in iter_blocks(text) if (package := block_package(fields, path)) is not None
        ]
        owned: dict[str, str] = {}
        for owned_path, owner in iter_owned_files(text):
            owned.setdefault(owned_path, owner)
        return FileResult(packages=packages, owned_files=owned)

    def finalize(self, packages: list[Package], os: OSInfo | None) -> list[Package]:
        """Ecosystem (`Alpine:v3.19`) and purl (`pkg:apk/alpine/...&distro=3.19.1`) from the OS;
        an image without os-release is taken for Alpine of unknown release."""
        family = os_family(os, "alpine")
        ecosystem = os_package_ecosystem(os, "alpine")
        distro = os.version if os is not None and os.family else None
        return complete_os_packages(packages, "apk", ecosystem=ecosystem, namespace=family, distro=distro)
