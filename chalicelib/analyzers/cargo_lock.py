"""Rust crates from `Cargo.lock` (filesystem scans only: a lockfile describes a build, the image
holds binaries; their cargo-auditable sections are a separate analyzer, not written yet).

Every `[[package]]` with a `source` (`registry+...` or `git+...`) is a dependency; entries without
one are the workspace's own crates (the root and path dependencies) and are not reported, so a
project crate never matches an advisory about a crates.io crate of the same name. Lockfile
versions 1 to 4 share this table layout; it is read with the standard library's `tomllib`."""

from __future__ import annotations

import logging
import tomllib
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.purls import cargo_purl

log = logging.getLogger(__name__)

ECOSYSTEM = "crates.io"
_NAME = "Cargo.lock"


def parse_cargo_lock(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) of every sourced package, or None when the file is not a Cargo.lock."""
    try:
        document: dict[str, Any] = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    packages = document.get("package", [])
    if not isinstance(packages, list):
        return None
    found: list[tuple[str, str]] = []
    for entry in packages:
        if not isinstance(entry, dict) or not clean(entry.get("source")):
            continue
        name, version = clean(entry.get("name")), clean(entry.get("version"))
        if name and version:
            found.append((name, version))
    return found


class CargoLockAnalyzer(Analyzer):
    name: ClassVar[str] = "cargo-lock"
    max_file_size: ClassVar[int] = 32 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return path == _NAME or path.endswith("/" + _NAME)

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_cargo_lock(content)
        if found is None:
            log.warning("%s: not a valid Cargo.lock; skipped", path)
            return FileResult()
        return FileResult(packages=build_packages(path, ECOSYSTEM, cargo_purl, found))
