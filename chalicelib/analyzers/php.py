"""Installed PHP packages: Composer's `vendor/composer/installed.json`, the record Composer keeps
of what it put under `vendor/` (so it describes what is installed, unlike `composer.lock`).

Composer 1 writes a JSON list of packages; Composer 2 writes `{"packages": [...], "dev": ...}`.
Each package has `name` (`vendor/name`) and `version` as Composer shows it (`v6.4.3`, `3.0.2`,
`dev-main`); the version is kept as written, as Trivy does (the Packagist comparator normalises
a leading `v`). `license` is a string or a list of SPDX ids (a list means the user may choose:
Composer's "or"); each is one entry of `Package.licenses`."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.purls import composer_purl

log = logging.getLogger(__name__)

ECOSYSTEM = "Packagist"
_SUFFIX = "vendor/composer/installed.json"


def parse_installed_json(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) of every package entry, or None when the file is not an installed.json.
    Entries without a usable name or version are skipped."""
    parsed = parse_installed_json_licenses(content)
    return None if parsed is None else parsed[0]


def parse_installed_json_licenses(
    content: bytes,
) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[str]]] | None:
    """The (name, version) pairs of `parse_installed_json` and the licenses each declares."""
    try:
        document: Any = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(document, dict):
        document = document.get("packages")
    if not isinstance(document, list):
        return None
    found: list[tuple[str, str]] = []
    licenses: dict[tuple[str, str], list[str]] = {}
    for entry in document:
        if not isinstance(entry, dict):
            continue
        name, version = clean(entry.get("name")), clean(entry.get("version"))
        if name and version:
            found.append((name, version))
            declared = entry.get("license")
            declared_list = normalize_licenses(declared if isinstance(declared, list) else [declared])
            if declared_list:
                licenses.setdefault((name, version), declared_list)
    return found, licenses


class ComposerInstalledAnalyzer(Analyzer):
    name: ClassVar[str] = "composer"
    max_file_size: ClassVar[int] = 32 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return path == _SUFFIX or path.endswith("/" + _SUFFIX)

    def analyze(self, path: str, content: bytes) -> FileResult:
        parsed = parse_installed_json_licenses(content)
        if parsed is None:
            log.warning("%s: not a Composer installed.json; skipped", path)
            return FileResult()
        found, licenses = parsed
        return FileResult(packages=build_packages(path, ECOSYSTEM, composer_purl, found, licenses))
