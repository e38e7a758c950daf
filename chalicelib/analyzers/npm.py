"""Installed npm packages: the `package.json` of each package directory under `node_modules`.

Only manifests where a package lives are read: `.../node_modules/<name>/package.json` and
`.../node_modules/@<scope>/<name>/package.json` (this covers npm, yarn classic, pnpm's
`.pnpm/<id>/node_modules/<name>` and bundled dependencies). Deeper package.json files inside a
package (`dist/esm/package.json` type markers, test fixtures) are not installed packages and are
not reported; neither are project roots outside node_modules (workspace roots, often "private").
A manifest must be a JSON object with string `name` and `version`. Licenses: `license` (an SPDX
expression as npm documents it, or free text such as `SEE LICENSE IN LICENSE.md`), or the
deprecated forms `license: {"type": ...}` and `licenses: [{"type": ...}, ...]` that old packages
still carry (`manifest_licenses`)."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.purls import npm_purl
from chalicelib.models import Package

log = logging.getLogger(__name__)

ECOSYSTEM = "npm"
_MANIFEST = "/package.json"


def is_installed_manifest(path: str) -> bool:
    """True for `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`
    (at any depth), string operations only."""
    if not path.endswith(_MANIFEST) or "node_modules/" not in path:
        return False
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def manifest_licenses(entry: dict[str, Any]) -> list[str]:
    """Declared licenses of a package.json (or of a lockfile entry, which copies the field):
    `license` as a string or `{"type": ...}`, else the legacy `licenses` list of strings or
    `{"type": ...}` objects (a list under either key is read the same way). Anything else is no
    license."""

    def declared(value: object) -> list[object]:
        items = value if isinstance(value, list) else [value]
        return [item.get("type") if isinstance(item, dict) else item for item in items]

    return normalize_licenses(declared(entry.get("license"))) or normalize_licenses(
        declared(entry.get("licenses"))
    )


def parse_manifest(content: bytes) -> tuple[str, str, list[str]] | None:
    """(name, version, licenses) of a package.json, or None when it is not a usable manifest."""
    try:
        document: Any = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    name, version = name.strip(), version.strip()
    if not name or not version:
        return None
    return name, version, manifest_licenses(document)


class NpmPackageAnalyzer(Analyzer):
    name: ClassVar[str] = "npm"
    max_file_size: ClassVar[int] = 4 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return is_installed_manifest(path)

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_manifest(content)
        if found is None:
            log.warning("%s: not a package manifest with name and version; skipped", path)
            return FileResult()
        name, version, licenses = found
        try:
            purl = npm_purl(name, version)
        except ValueError as exc:
            log.warning("%s: no purl for %s %s: %s", path, name, version, exc)
            return FileResult()
        return FileResult(
            packages=[
                Package(
                    name=name, version=version, ecosystem=ECOSYSTEM, purl=purl, path=path, licenses=licenses
                )
            ]
        )
