"""Go modules compiled into ELF executables: the build info the Go linker embeds (Go 1.13+), read
the way Go's own `debug/buildinfo` reads it.

The blob starts with the 14-byte magic `\\xff Go buildinf:` at a 16-byte aligned address at the
start of the `.go.buildinfo` section (or, with section headers stripped, of the first writable
loadable segment). Byte 14 is the pointer size, byte 15 the flags:
- flag 0x2 (Go 1.18+, "inline"): the Go version and the module info follow the 32-byte header as
  two uvarint-length-prefixed strings;
- otherwise (Go 1.13-1.17, "pointer"): at offset 16 two pointers (byte order from flag 0x1) to Go
  string headers `(data pointer, length)`, read through the loadable segments.

The module info is wrapped in 16 sentinel bytes on each side and holds tab-separated lines
(`path`, `mod`, `dep`, `=>` replacing the line before, `build`). What is reported, as Trivy does:
- `stdlib` at the toolchain version (`go1.21.5` -> `1.21.5`, OSV's Go ecosystem spelling); a
  `devel` toolchain has no release version and is not reported;
- the main module (`mod`, else the `path` of a GOPATH-mode build). A local build records its
  version as `(devel)`; then, as Syft does, the version comes from the first of: a `-X
  ...version=v1.2.3` in the `-ldflags` build setting, a `\x00v1.2.3\x00`-delimited semantic
  version among the binary's strings, a pseudo-version from `vcs.revision` + `vcs.time`
  (`v0.0.0-20240102150405-0123456789ab`, what `go install` would have recorded). If none, the
  module is still reported as `(devel)` (the SBOM shows the program) and the matcher skips it:
  the comparators reject that version, so nothing can match it;
- every `dep`, replaced by its `=>` line when there is one; a replacement by a local directory has
  no version and is dropped (the code is not the published module).
Module versions keep Go's leading `v` (`v1.2.3`, as Trivy and Syft report them).

Which files: mode bits do not reach analyzers, so `wants()` picks by path where executables live
(see `executables.wants_path`), then `wants_content()` rejects anything that does not start
with the ELF magic, so the walker never reads other files in bin/. ELF files are handed over whole (up to
`max_file_size`); the analyzer itself touches only the headers and the build info."""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from chalicelib.analyzers.elf import ELFFile, parse_elf
from chalicelib.analyzers.executables import ElfAnalyzer
from chalicelib.analyzers.purls import golang_purl
from chalicelib.models import Package

log = logging.getLogger(__name__)

ECOSYSTEM = "Go"
STDLIB = "stdlib"
BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_ALIGN = 16
_FLAG_BIG_ENDIAN = 0x1
_FLAG_INLINE = 0x2
#: Go reads this much from the start of the data to find the magic
_SEARCH_WINDOW = 64 * 1024
#: longest version or module info string accepted (real ones are a few KiB)
_MAX_STRING = 4 * 1024 * 1024
_SENTINEL_LEN = 16


@dataclass
class BuildInfo:
    """What the build info says: the toolchain version and the module info lines."""

    go_version: str
    main_path: str = ""
    main: tuple[str, str] | None = None
    deps: list[tuple[str, str]] = field(default_factory=list)
    #: `build` lines: `-ldflags`, `vcs.revision`, `vcs.time`, ...
    settings: dict[str, str] = field(default_factory=dict)


class BuildInfoError(ValueError):
    """A Go build info blob that is truncated or inconsistent."""


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the unsigned LEB128 varint at `pos`."""
    value = shift = 0
    while pos < len(data) and shift <= 63:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise BuildInfoError("truncated or overlong varint")


def _inline_string(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _uvarint(data, pos)
    if length > _MAX_STRING or pos + length > len(data):
        raise BuildInfoError(f"inline string of {length} bytes overruns the data")
    return data[pos : pos + length], pos + length


def _pointer_string(elf: ELFFile, address: int, ptr_size: int, bo: str) -> bytes:
    """A Go string whose header `(data, len)` is at `address`."""
    fmt = bo + ("Q" if ptr_size == 8 else "I")
    header = elf.read_at(address, 2 * ptr_size)
    data_address = struct.unpack_from(fmt, header, 0)[0]
    length = struct.unpack_from(fmt, header, ptr_size)[0]
    if length > _MAX_STRING:
        raise BuildInfoError(f"string of {length} bytes is not build info")
    return elf.read_at(data_address, length)


def _data_start(elf: ELFFile) -> bytes:
    """The bytes where Go looks for the magic: the `.go.buildinfo` section (read from the file,
    so a file with no program headers works too), else the first writable loadable segment."""
    section = elf.section(".go.buildinfo")
    if section is not None and not section.nobits:
        return elf.section_bytes(section)[:_SEARCH_WINDOW]
    segment = elf.first_writable_load()
    if segment is None:
        return b""
    return elf.read_at(segment.vaddr, min(segment.filesz, _SEARCH_WINDOW))


def _find_header(data: bytes) -> int:
    """Offset of the magic at a 16-byte aligned position with a whole header after it, or -1."""
    pos = data.find(BUILDINFO_MAGIC)
    while pos >= 0:
        if pos % _ALIGN == 0 and len(data) - pos >= _HEADER_SIZE:
            return pos
        pos = data.find(BUILDINFO_MAGIC, pos + 1)
    return -1


def _strip_sentinels(modinfo: bytes) -> str:
    """The module info between its 16-byte sentinels (Go's own check), else empty."""
    if len(modinfo) >= 33 and modinfo[len(modinfo) - 17] == 0x0A:
        return modinfo[_SENTINEL_LEN:-_SENTINEL_LEN].decode("utf-8", errors="replace")
    return ""


def read_raw_buildinfo(content: bytes) -> tuple[str, str] | None:
    """(go version, module info without sentinels) of an ELF Go executable; None when the file is
    ELF but not a Go program. `ELFError` / `BuildInfoError` when it is broken."""
    elf = parse_elf(content)
    data = _data_start(elf)
    at = _find_header(data)
    if at < 0:
        return None
    ptr_size, flags = data[at + 14], data[at + 15]
    if flags & _FLAG_INLINE:
        version, pos = _inline_string(data, at + _HEADER_SIZE)
        modinfo, _ = _inline_string(data, pos)
    else:
        if ptr_size not in (4, 8):
            raise BuildInfoError(f"pointer size {ptr_size}")
        bo = ">" if flags & _FLAG_BIG_ENDIAN else "<"
        fmt = bo + ("Q" if ptr_size == 8 else "I")
        if len(data) < at + 16 + 2 * ptr_size:
            raise BuildInfoError("truncated build info header")
        version_ptr = struct.unpack_from(fmt, data, at + 16)[0]
        modinfo_ptr = struct.unpack_from(fmt, data, at + 16 + ptr_size)[0]
        version = _pointer_string(elf, version_ptr, ptr_size, bo)
        modinfo = _pointer_string(elf, modinfo_ptr, ptr_size, bo)
    if not version:
        return None
    return version.decode("utf-8", errors="replace"), _strip_sentinels(modinfo)


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    """The module info lines (`path`, `mod`, `dep`, `=>`) as a `BuildInfo`."""
    info = BuildInfo(go_version=go_version)
    last: str | None = None  # "mod" or "dep": what a `=>` line replaces
    for line in modinfo.splitlines():
        key, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if key == "path":
            info.main_path = rest
        elif key in ("mod", "dep") and fields[0]:
            module = (fields[0], fields[1] if len(fields) > 1 else "")
            if key == "mod":
                info.main = module
            else:
                info.deps.append(module)
            last = key
        elif key == "build":
            name, _, value = rest.partition("=")
            info.settings[name] = value.strip('"')
            last = None
        elif key == "=>" and last is not None and fields[0]:
            replacement = (fields[0], fields[1] if len(fields) > 1 else "")
            if last == "mod":
                info.main = replacement
            else:
                info.deps[-1] = replacement
            last = None
        else:
            last = None
    return info


def stdlib_version(go_version: str) -> str | None:
    """`go1.21.5` -> `1.21.5`; `go1.22rc1 X:boringcrypto` -> `1.22rc1`; `devel ...` -> None."""
    first = go_version.split(" ", 1)[0]
    if not first.startswith("go") or len(first) < 3 or not first[2].isdigit():
        return None
    return first[2:]


DEVEL = "(devel)"
#: `-X <pkg>.<var>=<value>` where the variable's name says "version" (`main.version`,
#: `.../version.Version`, `cmd.gitVersion`); the value must look like a release
_LDFLAGS_VERSION = re.compile(
    r"-X[= ]['\"]?[^\s=]*[./](?:[A-Za-z]*[vV]ersion|VERSION)=['\"]?(v?\d+\.\d+\.\d+[-+.\w]*)"
)
#: a semantic version alone between NUL bytes (Go linker string data): Syft's from-contents rule
_CONTENT_VERSION = re.compile(rb"\x00(v?\d+\.\d+\.\d+[-\w]*(?:\+[\w.]+)?)\x00")


def _with_v(version: str) -> str:
    return version if version.startswith("v") else f"v{version}"


def version_from_ldflags(settings: dict[str, str]) -> str | None:
    """`-ldflags=-s -w -X main.version=1.2.3` -> `v1.2.3`."""
    found = _LDFLAGS_VERSION.search(settings.get("-ldflags", ""))
    return _with_v(found.group(1)) if found else None


#: where the Go linker puts string data (`-X` values included); searched instead of the whole file
#: when the section headers are there: .text and .gopclntab are most of a binary and hold no strings
_STRING_SECTIONS = (".rodata", ".noptrdata", ".data")


def version_from_contents(content: bytes) -> str | None:
    """The first NUL-delimited semantic version among the binary's string data (the whole file
    when it has no section headers). A regex walks ~4 ns a byte: 90 ms over a 20 MB binary, 20 ms
    over its .rodata."""
    try:
        elf = parse_elf(content)
        sections = [s for name in _STRING_SECTIONS if (s := elf.section(name)) is not None and not s.nobits]
    except ValueError:
        sections = []
    regions = [memoryview(content)[s.offset : s.offset + s.size] for s in sections] or [memoryview(content)]
    for region in regions:
        found = _CONTENT_VERSION.search(region)
        if found:
            return _with_v(found.group(1).decode("ascii"))
    return None


def pseudo_version(settings: dict[str, str]) -> str | None:
    """The Go pseudo-version of a VCS build (`v0.0.0-<UTC yyyymmddhhmmss>-<12 hex of revision>`)."""
    revision, when = settings.get("vcs.revision", ""), settings.get("vcs.time", "")
    if len(revision) < 12 or not when:
        return None
    try:
        stamp = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    return f"v0.0.0-{stamp.strftime('%Y%m%d%H%M%S')}-{revision[:12]}"


def main_module(info: BuildInfo, content: bytes) -> tuple[str, str] | None:
    """(path, version) of the program's own module; see the module docstring for the order."""
    if info.main is not None and info.main[1] not in ("", DEVEL):
        return info.main
    path = info.main[0] if info.main is not None else info.main_path
    if not path:
        return None
    version = (
        version_from_ldflags(info.settings)
        or version_from_contents(content)
        or pseudo_version(info.settings)
        or DEVEL
    )
    return path, version


def _package(module: str, version: str, path: str) -> Package | None:
    try:
        purl = golang_purl(module, version)
    except ValueError as exc:
        log.warning("%s: no purl for Go module %s %s: %s", path, module, version, exc)
        return None
    return Package(name=module, version=version, ecosystem=ECOSYSTEM, purl=purl, path=path)


def packages_of(info: BuildInfo, path: str, content: bytes = b"") -> list[Package]:
    """stdlib, the main module, then the dependencies in build info order (duplicates dropped).
    `content` is the whole binary, searched for a version only when the main module has none."""
    modules: list[tuple[str, str]] = []
    std = stdlib_version(info.go_version)
    if std is not None:
        modules.append((STDLIB, std))
    main = main_module(info, content)
    if main is not None:
        modules.append(main)
    modules.extend(dep for dep in info.deps if dep[1])
    packages: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for module in modules:
        if module in seen:
            continue
        seen.add(module)
        package = _package(module[0], module[1], path)
        if package is not None:
            packages.append(package)
    return packages


class GoBinaryAnalyzer(ElfAnalyzer):
    name: ClassVar[str] = "gobinary"

    def packages_of_elf(self, path: str, content: bytes) -> list[Package]:
        raw = read_raw_buildinfo(content)
        return [] if raw is None else packages_of(parse_modinfo(*raw), path, content)
