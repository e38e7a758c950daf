"""npm packages from `pnpm-lock.yaml` (filesystem scans only, like every lockfile).

The `packages` map's keys name each resolved package, in three generations:
- lockfile 5.x: `/lodash/4.17.15`, `/@types/node/20.11.0`, peers after `_` (`/a/1.0.0_react@18.2.0`);
- lockfile 6.x: `/lodash@4.17.15`, peers in parentheses (`/a@1.0.0(react@18.2.0)`);
- lockfile 9.x: `lodash@4.17.15` (peers live in `snapshots`, which is not needed here).
An entry with its own `name` and `version` fields (tarball and git dependencies) uses those.
Versions that are locations (`file:`, `link:`, URLs) are skipped. Read with YAML's BaseLoader so
versions stay strings."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.npm_lock import registry_version, split_spec
from chalicelib.analyzers.purls import npm_purl
from chalicelib.analyzers.yaml_strings import YamlError, load_strings

log = logging.getLogger(__name__)

ECOSYSTEM = "npm"
_NAME = "pnpm-lock.yaml"


def parse_key(key: str, lockfile_version: str) -> tuple[str, str] | None:
    """(name, version) from a `packages` key of the given lockfile generation."""
    key = key.strip()
    if lockfile_version.startswith("5"):
        key = key.removeprefix("/")
        slash = key.rfind("/")
        if slash <= 0:
            return None
        name, version = key[:slash], key[slash + 1 :].split("_", 1)[0]
        return (name, version) if version else None
    key = key.removeprefix("/").split("(", 1)[0]
    return split_spec(key)


def parse_pnpm_lock(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) pairs in file order, or None when the file is not a pnpm lockfile."""
    try:
        # BaseLoader: every scalar stays a string (`lockfileVersion: 5.4` must not become 5.4 float)
        document: Any = load_strings(content)
    except (YamlError, RecursionError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    lockfile_version = clean(document.get("lockfileVersion")) or ""
    packages = document.get("packages", {})
    if not lockfile_version or not isinstance(packages, dict):
        return None
    found: list[tuple[str, str]] = []
    for key, entry in packages.items():
        fields = entry if isinstance(entry, dict) else {}
        name, version = clean(fields.get("name")), clean(fields.get("version"))
        parsed = (name, version) if name and version else parse_key(key, lockfile_version)
        if parsed and registry_version(parsed[1]):
            found.append(parsed)
    return found


class PnpmLockAnalyzer(Analyzer):
    name: ClassVar[str] = "pnpm-lock"
    max_file_size: ClassVar[int] = 64 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return (path == _NAME or path.endswith("/" + _NAME)) and "node_modules/" not in path

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_pnpm_lock(content)
        if found is None:
            log.warning("%s: not a pnpm-lock.yaml (no lockfileVersion/packages); skipped", path)
            return FileResult()
        return FileResult(packages=build_packages(path, ECOSYSTEM, npm_purl, found))
