"""Java archives: `.jar`, `.war`, `.ear`, `.par`, and Jenkins plugins (`.jpi`, `.hpi`), including
the archives nested in them (Spring Boot `BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`, EAR modules).

How an archive is identified (Trivy's order, without its Maven Central SHA-1 lookup: no network):
1. every `META-INF/maven/<groupId>/<artifactId>/pom.properties` with a groupId, artifactId and
   version: a shaded ("fat") jar carries one per bundled library, and each is reported;
2. only when there is none, the main section of `META-INF/MANIFEST.MF`: groupId from
   `Implementation-Vendor-Id`, else `Bundle-SymbolicName` up to its last dot, else
   `Implementation-Vendor` / `Specification-Vendor`; artifactId from `Implementation-Title`, else
   `Specification-Title` / `Bundle-Name`; version from `Implementation-Version`, else
   `Specification-Version` / `Bundle-Version`. All three are needed;
3. nested archives are identified the same way, whatever their parent gave.
Names are `groupId:artifactId` (OSV's Maven naming); purls `pkg:maven/<group>/<artifact>@<version>`.
Licenses: the manifest's OSGi `Bundle-License` when a clause names an SPDX id or a well-known
license URL (`https://www.apache.org/licenses/LICENSE-2.0` -> `Apache-2.0`); free text gives none.
It is the archive's own license, so it is given to the archive's package only when the archive
has one identity (one pom.properties, or the manifest): a shaded jar's bundled libraries get none.
A package's `path` is the image path of the outer archive; for a nested archive, Java's own URL
notation is appended: `app.jar!/BOOT-INF/lib/spring-core-6.1.0.jar`.

Archives come from untrusted images, so everything is bounded (`JarLimits`): nesting depth, members
looked at, bytes read per metadata file and per nested archive, and decompressed bytes in total
per outer file (zip bombs, overlapping entries, zip quines). A broken zip is skipped with a log
line, never an exception. Files named like archives that start neither like a zip nor like a
launch script (`looks_like_archive`) are skipped by the walker without being read."""

from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.licenses import spdx_expression, url_license
from chalicelib.analyzers.purls import maven_purl
from chalicelib.models import Package

log = logging.getLogger(__name__)

ECOSYSTEM = "Maven"
ARCHIVE_EXTENSIONS = frozenset({".jar", ".war", ".ear", ".par", ".jpi", ".hpi"})
MANIFEST = "META-INF/MANIFEST.MF"
_POM_PREFIX = "META-INF/maven/"
_POM_NAME = "pom.properties"
NESTED_SEPARATOR = "!/"
#: what reading a member can raise on a broken or hostile zip (`zipfile` signals an unsupported
#: compression method with NotImplementedError and an encrypted member with RuntimeError)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
               ValueError, OSError, EOFError, zlib.error, struct.error)  # fmt: skip


@dataclass(frozen=True)
class JarLimits:
    """Bounds on the work one outer archive can cause."""

    #: archives inside archives followed this deep (outer archive = depth 0)
    max_depth: int = 3
    #: zip entries looked at per archive
    max_members: int = 100_000
    #: bytes read of one pom.properties or MANIFEST.MF
    max_metadata_bytes: int = 1024 * 1024
    #: bytes read of one nested archive (it is held in memory while it is read)
    max_nested_bytes: int = 64 * 1024 * 1024
    #: decompressed bytes read in total for one outer archive, nested ones included
    max_total_bytes: int = 256 * 1024 * 1024


@dataclass
class _Budget:
    remaining: int
    exhausted: bool = field(default=False)

    def take(self, n: int) -> None:
        self.remaining -= n


def is_archive(name: str) -> bool:
    """True for names ending in a Java archive extension, any case (`App.JAR`)."""
    return name[-4:].lower() in ARCHIVE_EXTENSIONS


def looks_like_archive(head: bytes) -> bool:
    """The walker's content gate: a zip starts with a local file header `PK\\x03\\x04` (or `PK`
    with another record: an empty archive's end record, a spanned archive's marker); a Spring
    Boot "fully executable" jar starts with its launch script (`#!/bin/bash`) and the zip follows
    (zip readers find it from the end). Anything else named `.jar` is not read at all."""
    return head[:2] in (b"PK", b"#!")


def parse_properties(text: str) -> dict[str, str]:
    """A Java `.properties` file's `key=value` / `key: value` lines (comments `#`/`!` skipped,
    `\\`-escaped characters unescaped). Line continuations do not occur in pom.properties."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            continue
        key, value = line[:cut].strip(), line[cut + 1 :].strip()
        values[_unescape(key)] = _unescape(value)
    return values


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF (up to the first blank line), continuation lines (a
    leading space) joined."""
    values: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith(" ") and last is not None:
            values[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        last = key.strip()
        values[last] = value.strip()
    return values


def _first(values: dict[str, str], *keys: str) -> str:
    for key in keys:
        value = values.get(key, "").strip()
        if value:
            return value
    return ""


def manifest_coordinates(values: dict[str, str]) -> tuple[str, str, str] | None:
    """(groupId, artifactId, version) from manifest attributes (Trivy's choice of attributes),
    or None when one of the three cannot be determined."""
    group = values.get("Implementation-Vendor-Id", "").strip()
    if not group:
        symbolic = values.get("Bundle-SymbolicName", "").split(";", 1)[0].strip()
        if symbolic:
            dot = symbolic.rfind(".")
            group = symbolic[:dot] if dot > 0 else symbolic
    if not group:
        group = _first(values, "Implementation-Vendor", "Specification-Vendor")
    artifact = _first(values, "Implementation-Title", "Specification-Title", "Bundle-Name")
    version = _first(values, "Implementation-Version", "Specification-Version", "Bundle-Version")
    if not group or not artifact or not version:
        return None
    return group, artifact, version


def split_header_clauses(value: str) -> list[str]:
    """An OSGi header's comma-separated clauses; commas inside double quotes do not split."""
    clauses: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            clauses.append("".join(current))
            current = []
        else:
            current.append(char)
    clauses.append("".join(current))
    return [clause.strip() for clause in clauses if clause.strip()]


def bundle_licenses(value: str) -> list[str]:
    """SPDX ids (or expressions) of a `Bundle-License` header: each clause's name when it is an
    SPDX id or a known license URL, else its `link` attribute when that is a known URL; clauses
    in free text (`Apache License, Version 2.0`) give nothing."""
    licenses: list[str] = []
    for clause in split_header_clauses(value):
        name, *attributes = (part.strip().strip('"').strip() for part in clause.split(";"))
        link = next((a.partition("=")[2].strip().strip('"') for a in attributes if a.startswith("link=")), "")
        found = url_license(name) or (spdx_expression(name) if "://" not in name else None)
        found = found or (url_license(link) if link else None)
        if found and found not in licenses:
            licenses.append(found)
    return licenses


def _is_pom_properties(name: str) -> bool:
    """`META-INF/maven/<group>/<artifact>/pom.properties` exactly (not test resources deeper)."""
    return name.startswith(_POM_PREFIX) and name.endswith(_POM_NAME) and name.count("/") == 4


class _ArchiveScan:
    """One outer archive and everything nested in it, sharing one budget."""

    def __init__(self, path: str, limits: JarLimits) -> None:
        self.path = path
        self.limits = limits
        self.budget = _Budget(limits.max_total_bytes)
        self.packages: list[Package] = []
        self.seen: set[tuple[str, str, str]] = set()

    def _read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes | None:
        """At most `limit` decompressed bytes of one member (None when it is larger, broken or
        the budget is spent). The declared size is not trusted: reading stops at the limit."""
        cap = min(limit, self.budget.remaining)
        if cap <= 0:
            if not self.budget.exhausted:
                log.warning("%s: decompressed-bytes budget spent; rest of the archive skipped", self.path)
                self.budget.exhausted = True
            return None
        try:
            with archive.open(info) as member:
                data = member.read(cap + 1)
        except _ZIP_ERRORS as exc:
            log.info("%s: unreadable member %s: %s", where, info.filename, exc)
            return None
        self.budget.take(len(data))
        if len(data) > cap:
            log.info("%s: member %s larger than %d bytes; skipped", where, info.filename, cap)
            return None
        return data

    def _add(self, group: str, artifact: str, version: str, where: str, licenses: list[str]) -> None:
        key = (group, artifact, version)
        if key in self.seen:
            return
        try:
            purl = maven_purl(group, artifact, version)
        except ValueError as exc:
            log.warning("%s: no purl for %s:%s %s: %s", where, group, artifact, version, exc)
            return
        self.seen.add(key)
        self.packages.append(
            Package(
                name=f"{group}:{artifact}",
                version=version,
                ecosystem=ECOSYSTEM,
                purl=purl,
                path=where,
                licenses=licenses,
            )
        )

    def scan(self, content: bytes, where: str, depth: int) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
        except _ZIP_ERRORS as exc:
            log.info("%s: not a readable zip: %s", where, exc)
            return
        with archive:
            members = archive.infolist()
            if len(members) > self.limits.max_members:
                log.warning(
                    "%s: %d entries, only the first %d read", where, len(members), self.limits.max_members
                )
                members = members[: self.limits.max_members]
            self._identify(archive, members, where)
            if depth >= self.limits.max_depth:
                if any(is_archive(m.filename) for m in members):
                    log.info("%s: nested archives deeper than %d not read", where, depth)
                return
            for info in members:
                if info.filename.endswith("/") or not is_archive(
                    info.filename
                ):  # is_dir() fails on an empty name
                    continue
                nested = self._read(archive, info, self.limits.max_nested_bytes, where)
                if nested is not None:
                    self.scan(nested, f"{where}{NESTED_SEPARATOR}{info.filename}", depth + 1)

    def _identify(self, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], where: str) -> None:
        """pom.properties first, else the manifest (module docstring). The manifest is read also
        for an archive with a single pom.properties, for its `Bundle-License`."""
        poms: list[tuple[str, str, str]] = []
        for info in members:
            if not _is_pom_properties(info.filename):
                continue
            data = self._read(archive, info, self.limits.max_metadata_bytes, where)
            if data is None:
                continue
            props = parse_properties(data.decode("utf-8", errors="replace"))
            group, artifact, version = (props.get(k, "") for k in ("groupId", "artifactId", "version"))
            if group and artifact and version:
                poms.append((group, artifact, version))
        values: dict[str, str] = {}
        manifest = next((m for m in members if m.filename == MANIFEST), None) if len(poms) <= 1 else None
        if manifest is not None:
            data = self._read(archive, manifest, self.limits.max_metadata_bytes, where)
            if data is not None:
                values = parse_manifest(data.decode("utf-8", errors="replace"))
        licenses = bundle_licenses(values.get("Bundle-License", "")) if values else []
        if poms:
            for group, artifact, version in poms:
                self._add(group, artifact, version, where, licenses if len(poms) == 1 else [])
            return
        coordinates = manifest_coordinates(values)
        if coordinates is not None:
            self._add(*coordinates, where, licenses)


def scan_archive(content: bytes, path: str, limits: JarLimits = JarLimits()) -> list[Package]:
    """Every Maven package identified in the archive `content` found at image path `path`, nested
    archives included, in archive order (outer archive first, then each nested one)."""
    scan = _ArchiveScan(path, limits)
    scan.scan(content, path, 0)
    return scan.packages


class JavaArchiveAnalyzer(Analyzer):
    name: ClassVar[str] = "java"
    max_file_size: ClassVar[int] = 256 * 1024 * 1024

    def __init__(self, limits: JarLimits = JarLimits()) -> None:
        self.limits = limits

    def wants(self, path: str) -> bool:
        return is_archive(path)

    def wants_content(self, head: bytes) -> bool:
        return looks_like_archive(head)

    def analyze(self, path: str, content: bytes) -> FileResult:
        return FileResult(packages=scan_archive(content, path, self.limits))
