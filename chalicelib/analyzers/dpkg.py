"""Debian packages from the dpkg database: `var/lib/dpkg/status`, and the one-file-per-package
`var/lib/dpkg/status.d/<name>` that distroless images ship instead (their `<name>.md5sums`
siblings are file lists, not stanzas).

A package counts when its files are on disk: the Status field's third word (the current state)
is `installed` or one of the in-between states that leave files behind (`unpacked`,
`half-configured`, `half-installed`, `triggers-awaited`, `triggers-pending`). So `hold ok
installed` counts and `deinstall ok config-files` / `purge ok not-installed` do not. status.d
stanzas are control files with no Status field: installed by construction.

`Source: glibc` names the source package; `Source: openssl (3.0.11-1~deb12u1)` also gives its
version (binNMUs and binary-only epochs). Without a version the source version is the package's
own. OS-dependent fields (ecosystem, purl) stay empty until `finalize` knows the OS.

File ownership: `var/lib/dpkg/info/<name>[:<arch>].list` lists every path a package installed
(absolute, directories included: `/.`, `/usr`, ..., `/usr/lib/python3/dist-packages/
blinker-1.5.dist-info`, `.../blinker-1.5.dist-info/METADATA`). Only the paths that could be a
language package's manifest are kept (`ownership.keeps_path`), so a package with 100k files costs
nothing. Distroless images have no `info/` directory (their `status.d/<name>.md5sums` lists are
not read yet); their language packages are then matched on their own.

Licenses: the dpkg database has none. Debian's machine-readable copyright files
(`usr/share/doc/<package>/copyright` in the DEP-5 format, `Format: .../copyright-format/1.0/` in
the header paragraph) have a `License:` short name in each `Files:` paragraph (`GPL-2+`,
`BSD-3-clause`, `GPL-2+ or Artistic-1.0`); a package gets the distinct ones, in file order
(stand-alone `License:` paragraphs only hold the texts). Only the `Files:`/`License:` field starts
are looked for, with byte searches. Free-form copyright files (about a third of Debian's) give
nothing. The file is joined to the package by its directory name after
the walk (`FileResult.package_licenses`); a package whose doc directory is a symlink to another
package's (links are never followed) gets none."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.ecosystems import os_family, os_package_ecosystem
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.ownership import keeps_path, list_path
from chalicelib.analyzers.purls import complete_os_packages
from chalicelib.models import OSInfo, Package

log = logging.getLogger(__name__)

STATUS_FILE = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d/"
INFO_DIR = "var/lib/dpkg/info/"
LIST_SUFFIX = ".list"
DOC_DIR = "usr/share/doc/"
COPYRIGHT_SUFFIX = "/copyright"
#: the header paragraph (where `Format:` is) is looked for in this many leading bytes
_HEADER_BYTES = 4096
_DEP5_FORMAT = re.compile(rb"^Format:[ \t]*\S*(?:copyright-format|dep5|dep-5)", re.MULTILINE | re.IGNORECASE)
#: the end of a deb822 paragraph: an empty or whitespace-only line
_BLANK_LINE = re.compile(rb"\n[ \t]*\r?\n")
_FILES = b"\nFiles:"
_LICENSE = b"\nLicense:"
_FILES_PRESENT_STATES = frozenset(
    {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited", "triggers-pending"}
)
_SOURCE = re.compile(r"^(?P<name>[^\s(]+)(?:\s*\((?P<version>[^)]*)\))?")
_FIELD = re.compile(r"^(?P<key>[^\s:][^:]*):(?P<value>.*)$")


def iter_stanzas(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs as {lower-cased field: value}. Continuation lines (leading space or tab)
    extend the previous field; blank lines end a paragraph; other odd lines are skipped."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line[1:]
            continue
        match = _FIELD.match(line)
        if match is None:
            last = None
            continue
        last = match.group("key").strip().lower()
        fields[last] = match.group("value").strip()
    if fields:
        yield fields


def files_present(status: str | None) -> bool:
    """True when a Status value says the package's files are installed (see module docstring)."""
    if status is None:
        return True
    words = status.split()
    return len(words) == 3 and words[2] in _FILES_PRESENT_STATES


def parse_source(source: str | None, name: str, version: str) -> tuple[str, str]:
    """(source name, source version) from a `Source:` value, defaulting to the package itself."""
    match = _SOURCE.match(source.strip()) if source else None
    if match is None:
        return name, version
    return match.group("name"), (match.group("version") or "").strip() or version


def stanza_package(fields: dict[str, str], path: str) -> Package | None:
    """The Package of one stanza, or None when it is not installed or lacks name/version."""
    name = fields.get("package", "").strip()
    version = fields.get("version", "").strip()
    status = fields.get("status")
    if status is not None and len(status.split()) != 3:
        log.warning("%s: skipping %r with a malformed Status %r", path, name, status[:80])
        return None
    if not files_present(status):
        log.debug("%s: %s is not installed (%s)", path, name, status)
        return None
    if not name or not version:
        log.warning("%s: skipping a dpkg stanza without Package/Version (%r)", path, name or version)
        return None
    source_name, source_version = parse_source(fields.get("source"), name, version)
    return Package(
        name=name,
        version=version,
        ecosystem="",
        purl="",
        source_name=source_name,
        source_version=source_version,
        path=path,
        arch=fields.get("architecture", "").strip() or None,
    )


def list_owner(path: str) -> str:
    """The package a `info/<name>[:<arch>].list` file belongs to (`libc6:amd64.list` -> `libc6`)."""
    return path[len(INFO_DIR) : -len(LIST_SUFFIX)].partition(":")[0]


def owned_paths(text: str) -> list[str]:
    """The paths of a `.list` file worth keeping for ownership (see module docstring). dpkg writes
    one bare absolute path per line, so the suffix test runs on the raw line first (cheap), and
    only kept lines are normalised."""
    return [path for line in text.splitlines() if keeps_path(line) and (path := list_path(line)) is not None]


def copyright_owner(path: str) -> str | None:
    """`usr/share/doc/<package>/copyright` -> `<package>`; None for any other path."""
    if not path.startswith(DOC_DIR) or not path.endswith(COPYRIGHT_SUFFIX):
        return None
    package = path[len(DOC_DIR) : -len(COPYRIGHT_SUFFIX)]
    return package if package and "/" not in package else None


def copyright_licenses(content: bytes) -> list[str]:
    """The distinct `License:` short names of a DEP-5 copyright file's `Files:` paragraphs, in
    order; [] for a free-form copyright file. Byte searches from one `Files:` field to the next
    (a regular expression over whole files was measured 3x slower on Debian's 17 MB of them)."""
    head = content[:_HEADER_BYTES]
    blank = _BLANK_LINE.search(head)
    if _DEP5_FORMAT.search(head[: blank.start()] if blank else head) is None:
        return []
    names: dict[bytes, None] = {}
    pos = content.find(_FILES)
    while pos >= 0:
        paragraph_end = _BLANK_LINE.search(content, pos + 1)
        end = paragraph_end.start() if paragraph_end else len(content)
        field = content.find(_LICENSE, pos, end)
        if field >= 0:
            start = field + len(_LICENSE)
            line_end = content.find(b"\n", start, end)
            name = content[start : line_end if line_end >= 0 else end].strip()
            if name:
                names[name] = None
        pos = content.find(_FILES, end)
    return normalize_licenses(name.decode("utf-8", errors="replace") for name in names)


class DpkgAnalyzer(Analyzer):
    name: ClassVar[str] = "dpkg"

    def wants(self, path: str) -> bool:
        if path == STATUS_FILE:
            return True
        if path.startswith(DOC_DIR):
            return copyright_owner(path) is not None
        if path.startswith(INFO_DIR):
            return (
                path.endswith(LIST_SUFFIX)
                and "/" not in path[len(INFO_DIR) :]
                and len(path) > len(INFO_DIR) + len(LIST_SUFFIX)
            )
        return (
            path.startswith(STATUS_DIR)
            and not path.endswith(".md5sums")
            and "/" not in path[len(STATUS_DIR) :]
            and len(path) > len(STATUS_DIR)
        )

    def analyze(self, path: str, content: bytes) -> FileResult:
        if path.startswith(DOC_DIR):
            owner = copyright_owner(path)
            licenses = copyright_licenses(content)
            return FileResult(package_licenses={owner: licenses} if owner and licenses else {})
        text = content.decode("utf-8", errors="replace")
        if path.startswith(INFO_DIR):
            owner = list_owner(path)
            return FileResult(owned_files=dict.fromkeys(owned_paths(text), owner))
        packages = [
            package for fields in iter_stanzas(text) if (package := stanza_package(fields, path)) is not None
        ]
        return FileResult(packages=packages)

    def finalize(self, packages: list[Package], os: OSInfo | None) -> list[Package]:
        """Ecosystem (`Debian:12`) and purl (`pkg:deb/debian/...&distro=debian-12`) from the OS;
        an image without os-release is taken for Debian of unknown release."""
        family = os_family(os, "debian")
        ecosystem = os_package_ecosystem(os, "debian")
        version = os.version if os is not None and os.family else None
        distro = f"{family}-{version}" if version else None
        return complete_os_packages(packages, "deb", ecosystem=ecosystem, namespace=family, distro=distro)
