"""The image's OS from os-release(5), alpine-release or debian_version.

Several of these files usually exist at once; each result carries a priority and the walker keeps
the highest: `etc/os-release` > `usr/lib/os-release` > `etc/alpine-release` >
`etc/redhat-release` > `etc/system-release` > `etc/debian_version`. The two Red Hat family files
(`Rocky Linux release 9.3 (Blue Onyx)`) are a fallback for images whose os-release was removed;
Amazon Linux keeps only the major release there, as its os-release VERSION_ID does (`2023`).

`debian_version` holds a point release (`12.5`, kept as the version: the ecosystem mapping takes
its major) or, on testing/unstable and on Ubuntu, a codename like `bookworm/sid`: that gives
family `debian` with version None, because a codename names no release OSV publishes data for
(os-release of Debian testing has no VERSION_ID either)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.models import OSInfo

log = logging.getLogger(__name__)

PRIORITIES: dict[str, int] = {
    "etc/os-release": 40,
    "usr/lib/os-release": 30,
    "etc/alpine-release": 20,
    "etc/redhat-release": 16,
    "etc/system-release": 15,
    "etc/debian_version": 10,
}
#: `<name> release <version> (<codename>)` of redhat-release/system-release -> os-release ID
_RELEASE_NAMES: tuple[tuple[str, str], ...] = (
    ("red hat enterprise linux", "rhel"),
    ("centos", "centos"),
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("oracle linux", "ol"),
    ("fedora", "fedora"),
    ("amazon linux", "amzn"),
)
_RELEASE_LINE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>\d[\w.]*)", re.IGNORECASE)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC_VERSION = re.compile(r"^\d+(\.\d+)*$")
#: characters a backslash escapes inside double quotes (systemd's SHELL_NEED_ESCAPE)
_DQ_ESCAPABLE = '"\\`$'


def parse_value(raw: str) -> str:
    """One os-release value with shell-like quoting, as systemd reads it: segments may be
    "double quoted" (backslash escapes `"`, `\\`, `` ` ``, `$`), 'single quoted' (literal) or bare
    (backslash escapes any character); adjacent segments concatenate; bare trailing whitespace is
    dropped. An unterminated quote runs to the end of the line instead of failing."""
    out: list[str] = []
    i, n = 0, len(raw)
    trailing_bare_ws = 0  # bare whitespace at the end of `out`, trimmed at the end
    while i < n:
        char = raw[i]
        if char == '"':
            i += 1
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n:
                    nxt = raw[i + 1]
                    out.append(nxt if nxt in _DQ_ESCAPABLE else "\\" + nxt)
                    i += 2
                    continue
                out.append(raw[i])
                i += 1
            i += 1
            trailing_bare_ws = 0
        elif char == "'":
            end = raw.find("'", i + 1)
            end = n if end < 0 else end
            out.append(raw[i + 1 : end])
            i = end + 1
            trailing_bare_ws = 0
        elif char == "\\" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
            trailing_bare_ws = 0
        else:
            out.append(char)
            trailing_bare_ws = trailing_bare_ws + 1 if char.isspace() else 0
            i += 1
    if trailing_bare_ws:
        del out[-trailing_bare_ws:]
    return "".join(out)


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of an os-release file; comments, blank and malformed lines are skipped."""
    fields: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            log.debug("os-release: skipping malformed line %r", line[:80])
            continue
        fields[key] = parse_value(raw.strip())
    return fields


def _first_line(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return lines[0].strip() if lines else ""


class OSReleaseAnalyzer(Analyzer):
    name: ClassVar[str] = "os-release"
    max_file_size: ClassVar[int] = 64 * 1024

    def wants(self, path: str) -> bool:
        return path in PRIORITIES

    def analyze(self, path: str, content: bytes) -> FileResult:
        priority = PRIORITIES.get(path, 0)
        if path.endswith("os-release"):
            os = self._from_os_release(content)
        elif path in ("etc/redhat-release", "etc/system-release"):
            os = self._from_release_line(content)
        elif path == "etc/alpine-release":
            version = _first_line(content)
            os = OSInfo(family="alpine", version=version) if version else None
        else:
            os = self._from_debian_version(content)
        if os is None:
            log.warning("%s: no OS identity found", path)
            return FileResult()
        return FileResult(os=os, os_priority=priority)

    @staticmethod
    def _from_os_release(content: bytes) -> OSInfo | None:
        fields = parse_os_release(content.decode("utf-8", errors="replace"))
        family = fields.get("ID", "").strip().lower()
        if not family:
            return None
        return OSInfo(family=family, version=fields.get("VERSION_ID", "").strip() or None)

    @staticmethod
    def _from_release_line(content: bytes) -> OSInfo | None:
        match = _RELEASE_LINE.match(_first_line(content))
        if match is None:
            return None
        name = match.group("name").lower()
        family = next((fid for prefix, fid in _RELEASE_NAMES if name.startswith(prefix)), None)
        if family is None:
            return None
        version = match.group("version")
        return OSInfo(family=family, version=version.split(".")[0] if family == "amzn" else version)

    @staticmethod
    def _from_debian_version(content: bytes) -> OSInfo | None:
        line = _first_line(content)
        if not line:
            return None
        return OSInfo(family="debian", version=line if _NUMERIC_VERSION.match(line) else None)
