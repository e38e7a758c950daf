"""Installed Ruby gems: the `specifications/<name>-<version>.gemspec` files RubyGems writes when it
installs a gem (`gems/<ruby>/specifications/`, system and bundler paths alike).

These files are Ruby code (`Gem::Specification.new do |s| s.name = "rake".freeze ...`): they are
never evaluated, only searched with regular expressions for the `name` and `version`
assignments, in the quoting forms RubyGems has written over the years (`"x"`, `'x'`, `%q{x}`,
with or without `.freeze`). Only the file's head is read: the two assignments come first.
`specifications/default/*.gemspec` (gems bundled with Ruby itself) count too, as in Trivy.
Licenses: the `s.licenses = ["MIT".freeze, ...]` assignment RubyGems writes (or a hand-written
`s.license = "MIT"`), each quoted value one license."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.purls import gem_purl

log = logging.getLogger(__name__)

ECOSYSTEM = "RubyGems"
#: `name` and `version` are set in the first lines; a gemspec with a long description is still
#: found within this many bytes
HEAD_BYTES = 64 * 1024

_VALUE = r"""(?:"(?P<dq>[^"\n]+)"|'(?P<sq>[^'\n]+)'|%q\{(?P<pq>[^}\n]+)\})"""
_NAME = re.compile(r"^\s*\w+\.name\s*=\s*" + _VALUE, re.MULTILINE)
_VERSION = re.compile(r"^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?" + _VALUE, re.MULTILINE)
_LICENSES = re.compile(r"^\s*\w+\.licenses?\s*=\s*(?P<rhs>[^\n]*)", re.MULTILINE)
_QUOTED = re.compile(_VALUE)


def is_gemspec(path: str) -> bool:
    """`.../specifications/<file>.gemspec` or `.../specifications/default/<file>.gemspec`."""
    if not path.endswith(".gemspec"):
        return False
    parts = path.split("/")
    return (len(parts) >= 2 and parts[-2] == "specifications") or (
        len(parts) >= 3 and parts[-2] == "default" and parts[-3] == "specifications"
    )


def _value(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    value = match.group("dq") or match.group("sq") or match.group("pq")
    return value.strip() or None


def parse_gemspec(content: bytes) -> tuple[str, str] | None:
    """(name, version) of an installed gemspec, or None when either assignment is missing."""
    text = content[:HEAD_BYTES].decode("utf-8", errors="replace")
    name, version = _value(_NAME.search(text)), _value(_VERSION.search(text))
    if name is None or version is None:
        return None
    return name, version


def gemspec_licenses(content: bytes) -> list[str]:
    """The quoted values of the first `licenses` / `license` assignment, in order."""
    match = _LICENSES.search(content[:HEAD_BYTES].decode("utf-8", errors="replace"))
    if match is None:
        return []
    return normalize_licenses(_value(m) for m in _QUOTED.finditer(match.group("rhs")))


class RubyGemspecAnalyzer(Analyzer):
    name: ClassVar[str] = "ruby"
    max_file_size: ClassVar[int] = 4 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return is_gemspec(path)

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_gemspec(content)
        if found is None:
            log.warning("%s: no name and version assignments in this gemspec; skipped", path)
            return FileResult()
        licenses = {found: gemspec_licenses(content)}
        return FileResult(packages=build_packages(path, ECOSYSTEM, gem_purl, [found], licenses))
