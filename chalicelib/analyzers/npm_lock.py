"""npm packages from `package-lock.json` (filesystem scans only; in images the installed
`node_modules/**/package.json` are the truth, read by `analyzers/npm.py`).

- lockfile v2/v3: the `packages` map, keyed by install path (`node_modules/a/node_modules/b`).
  The root entry `""` is the project itself and `link: true` entries are symlinks to workspace
  folders: both skipped, as are workspace folders themselves (keys outside `node_modules`). The
  name is the entry's `name` (set for aliases, `"x": "npm:lodash@..."`) else the path's last
  package component.
- lockfile v1: the nested `dependencies` tree; `version: "npm:<name>@<version>"` is an alias.
  v2 files carry both; `packages` wins.
Versions that are not registry versions (`file:`, git URLs, tarball URLs) are skipped. Dev
dependencies are reported (Trivy hides them by default; they are installed in a build).
Licenses: v2/v3 `packages` entries copy the package.json `license` field (read as
`npm.manifest_licenses` does); v1 entries have none."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.npm import manifest_licenses
from chalicelib.analyzers.purls import npm_purl

log = logging.getLogger(__name__)

ECOSYSTEM = "npm"
_NAME = "package-lock.json"
_NODE_MODULES = "node_modules/"


def registry_version(version: str) -> bool:
    """False for versions that name a location instead (`file:../x`, `git+ssh://...`,
    `https://.../x.tgz`, `user/repo#sha`)."""
    return ":" not in version and "/" not in version


def split_spec(spec: str) -> tuple[str, str] | None:
    """`name@version` (scoped or not) -> (name, version); None without a version part. The first
    `@` after a scope's leading one splits, so `x@npm:real@1.0` -> (`x`, `npm:real@1.0`)."""
    at = spec.find("@", 1)
    if at <= 0:
        return None
    name, version = spec[:at].strip(), spec[at + 1 :].strip()
    return (name, version) if name and version else None


def _name_from_path(key: str) -> str:
    return key[key.rfind(_NODE_MODULES) + len(_NODE_MODULES) :]


def _from_packages(
    packages: dict[str, Any], licenses: dict[tuple[str, str], list[str]]
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key, entry in packages.items():
        if not key or not isinstance(entry, dict) or entry.get("link") is True:
            continue
        if not (key.startswith(_NODE_MODULES) or "/" + _NODE_MODULES in key):
            continue
        name = clean(entry.get("name")) or _name_from_path(key)
        version = clean(entry.get("version"))
        if name and version and registry_version(version):
            found.append((name, version))
            declared = manifest_licenses(entry)
            if declared:
                licenses.setdefault((name, version), declared)
    return found


def _from_dependencies(dependencies: dict[str, Any], found: list[tuple[str, str]], depth: int) -> None:
    if depth > 64:  # npm nests a copy per conflict; real trees stay far shallower
        return
    for key, entry in dependencies.items():
        if not isinstance(entry, dict):
            continue
        name, version = key, clean(entry.get("version"))
        if version and version.startswith("npm:"):
            alias = split_spec(version[len("npm:") :])
            name, version = alias if alias else (key, None)
        if version and registry_version(version):
            found.append((name, version))
        nested = entry.get("dependencies")
        if isinstance(nested, dict):
            _from_dependencies(nested, found, depth + 1)


def parse_package_lock(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) pairs in file order, or None when the file is not a package-lock.json."""
    parsed = parse_package_lock_licenses(content)
    return None if parsed is None else parsed[0]


def parse_package_lock_licenses(
    content: bytes,
) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[str]]] | None:
    """(name, version) pairs in file order and the licenses the lockfile declares for them, or
    None when the file is not a package-lock.json."""
    try:
        document: Any = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    packages, dependencies = document.get("packages"), document.get("dependencies")
    licenses: dict[tuple[str, str], list[str]] = {}
    if isinstance(packages, dict):
        return _from_packages(packages, licenses), licenses
    if isinstance(dependencies, dict):
        found: list[tuple[str, str]] = []
        _from_dependencies(dependencies, found, 0)
        return found, licenses
    return None


class NpmLockAnalyzer(Analyzer):
    name: ClassVar[str] = "npm-lock"
    max_file_size: ClassVar[int] = 64 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return (path == _NAME or path.endswith("/" + _NAME)) and _NODE_MODULES not in path

    def analyze(self, path: str, content: bytes) -> FileResult:
        parsed = parse_package_lock_licenses(content)
        if parsed is None:
            log.warning("%s: not a package-lock.json (no packages or dependencies); skipped", path)
            return FileResult()
        found, licenses = parsed
        return FileResult(packages=build_packages(path, ECOSYSTEM, npm_purl, found, licenses))
