"""npm packages from `yarn.lock` (filesystem scans only, like every lockfile).

Two formats share the name:
- classic (yarn 1, `# yarn lockfile v1`): not YAML. A block starts with an unindented line of
  comma-separated specs ending in `:` (`lodash@^4.17.0, lodash@^4.17.15:`), its fields follow
  indented (`  version "4.17.15"`). A tiny line parser reads the spec line and `version`.
- Berry (yarn 2+, has `__metadata`): YAML. Each entry's `resolution` is `name@npm:version`;
  only the `npm:` protocol is a registry package (`workspace:`, `patch:`, `file:`, `link:`,
  `portal:` and git entries are the project's own code or local copies).
In both, a spec `alias@npm:real@range` resolves to `real`. Classic specs that point at files or
URLs (`x@file:../x`, `x@https://...`) are skipped for the same reason as Berry's."""

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
_NAME = "yarn.lock"


def _classic_name(specs: str) -> str | None:
    """The package a classic block describes, from its first spec; None for non-registry specs."""
    spec = specs.split(",", maxsplit=1)[0].strip().strip('"').strip("'")
    parts = split_spec(spec)
    if parts is None:
        return None
    name, selector = parts
    if selector.startswith("npm:"):
        real = split_spec(selector[len("npm:") :])
        return real[0] if real else selector[len("npm:") :]
    if ":" in selector:
        return None
    return name


def parse_classic(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    name: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            name = _classic_name(line.rstrip().removesuffix(":")) if line.rstrip().endswith(":") else None
            continue
        stripped = line.strip()
        if name is not None and stripped.startswith("version "):
            version = stripped[len("version ") :].strip().strip('"')
            if version and registry_version(version):
                found.append((name, version))
            name = None
    return found


def parse_berry(document: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key, entry in document.items():
        if key == "__metadata" or not isinstance(entry, dict):
            continue
        resolution = clean(entry.get("resolution"))
        parts = split_spec(resolution) if resolution else None
        if parts is None or not parts[1].startswith("npm:"):
            continue
        name, version = parts[0], parts[1][len("npm:") :]
        if version and registry_version(version):
            found.append((name, version))
    return found


def parse_yarn_lock(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) pairs in file order, or None when the file cannot be read."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "__metadata:" not in text:
        return parse_classic(text)
    try:
        # BaseLoader: every scalar stays a string (`version: 1.10` must not become 1.1)
        document: Any = load_strings(text)
    except (YamlError, RecursionError):
        return None
    return parse_berry(document) if isinstance(document, dict) else None


class YarnLockAnalyzer(Analyzer):
    name: ClassVar[str] = "yarn-lock"
    max_file_size: ClassVar[int] = 64 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return (path == _NAME or path.endswith("/" + _NAME)) and "node_modules/" not in path

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_yarn_lock(content)
        if found is None:
            log.warning("%s: not a readable yarn.lock; skipped", path)
            return FileResult()
        return FileResult(packages=build_packages(path, ECOSYSTEM, npm_purl, found))
