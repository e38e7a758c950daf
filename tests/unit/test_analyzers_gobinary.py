"""Go binaries: build info of real Go executables (Go 1.27 modules build with dependencies, Go 1.19
GOPATH build), the pointer format of Go 1.13-1.17 on synthetic ELF files (64-bit little-endian and
32-bit big-endian), module info lines with replacements, the path filter, and hostile input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.elf import ELFError, parse_elf
from chalicelib.analyzers.executables import wants_path
from chalicelib.analyzers.gobinary import (
    BUILDINFO_MAGIC,
    BuildInfo,
    GoBinaryAnalyzer,
    packages_of,
    parse_modinfo,
    read_raw_buildinfo,
    stdlib_version,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gobinary"
SHFMT = (FIXTURES / "shfmt-3.14.1-go1.27.1.buildinfo.elf").read_bytes()
GOSU = (FIXTURES / "gosu-1.14-go1.19.8.buildinfo.elf").read_bytes()

SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def _rows(content: bytes, path: str = "usr/local/bin/shfmt") -> list[tuple[str, str, str, str, str]]:
    result = GoBinaryAnalyzer().analyze(path, content)
    return [(p.name, p.version, p.ecosystem, p.purl, p.path) for p in result.packages]


SHFMT_EXPECTED = [
    ("stdlib", "1.27.1", "Go", "pkg:golang/stdlib@1.27.1", "usr/local/bin/shfmt"),
    ("mvdan.cc/sh/v3", "v3.14.1", "Go", "pkg:golang/mvdan.cc/sh/v3@v3.14.1", "usr/local/bin/shfmt"),
    (
        "github.com/google/renameio/v2",
        "v2.0.2",
        "Go",
        "pkg:golang/github.com/google/renameio/v2@v2.0.2",
        "usr/local/bin/shfmt",
    ),
    (
        "github.com/rogpeppe/go-internal",
        "v1.15.0",
        "Go",
        "pkg:golang/github.com/rogpeppe/go-internal@v1.15.0",
        "usr/local/bin/shfmt",
    ),
    ("golang.org/x/sys", "v0.47.0", "Go", "pkg:golang/golang.org/x/sys@v0.47.0", "usr/local/bin/shfmt"),
    ("golang.org/x/term", "v0.45.0", "Go", "pkg:golang/golang.org/x/term@v0.45.0", "usr/local/bin/shfmt"),
    (
        "mvdan.cc/editorconfig",
        "v0.3.0",
        "Go",
        "pkg:golang/mvdan.cc/editorconfig@v0.3.0",
        "usr/local/bin/shfmt",
    ),
]


# -- real binaries (inline format, Go 1.18+) ------------------------------------------------------


def test_real_module_build_with_dependencies() -> None:
    assert _rows(SHFMT) == SHFMT_EXPECTED


def test_real_raw_build_info() -> None:
    raw = read_raw_buildinfo(SHFMT)
    assert raw is not None
    version, modinfo = raw
    assert version == "go1.27.1"
    lines = modinfo.splitlines()
    assert lines[0] == "path\tmvdan.cc/sh/v3/cmd/shfmt"
    assert lines[1] == "mod\tmvdan.cc/sh/v3\tv3.14.1\t"
    assert len(lines) == 19
    assert lines[-1] == "build\tvcs.modified=false"


def test_real_gopath_build_reports_main_module_as_devel() -> None:
    """Debian builds gosu in GOPATH mode: a `path` line and no `mod` line, no ldflags version, no
    version string and no VCS stamp, so the main module is listed as `(devel)` (as Syft does)."""
    assert read_raw_buildinfo(GOSU) == (
        "go1.19.8",
        "path\tgithub.com/tianon/gosu\nbuild\t-compiler=gc\nbuild\t-trimpath=true\nbuild\tCGO_ENABLED=1\n"
        "build\tGOARCH=amd64\nbuild\tGOOS=linux\nbuild\tGOAMD64=v1\n",
    )
    assert _rows(GOSU, "usr/sbin/gosu") == [
        ("stdlib", "1.19.8", "Go", "pkg:golang/stdlib@1.19.8", "usr/sbin/gosu"),
        (
            "github.com/tianon/gosu",
            "(devel)",
            "Go",
            "pkg:golang/github.com/tianon/gosu@%28devel%29",
            "usr/sbin/gosu",
        ),
    ]


def _without_section_headers(content: bytes) -> bytes:
    """The same file with e_shoff / e_shnum zeroed (as `sstrip` leaves binaries)."""
    data = bytearray(content)
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<H", data, 0x3C, 0)
    struct.pack_into("<H", data, 0x3E, 0)
    return bytes(data)


def test_section_headers_stripped_falls_back_to_writable_segment() -> None:
    stripped = _without_section_headers(SHFMT)
    assert parse_elf(stripped).sections == ()
    assert _rows(stripped) == SHFMT_EXPECTED


# -- synthetic ELF files: pointer format (Go 1.13-1.17) and inline -------------------------------


def _elf(data: bytes, *, is64: bool, little: bool, vaddr: int = 0x400100, writable: bool = True) -> bytes:
    """An ELF file with no sections and one loadable segment holding `data` at `vaddr`."""
    bo = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1]) + b"\0" * 9
    flags = 6 if writable else 4  # RW / R
    if is64:
        ehdr = ident + struct.pack(bo + "HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
        phdr = struct.pack(bo + "IIQQQQQQ", 1, flags, 0x100, vaddr, vaddr, len(data), len(data), 0x1000)
    else:
        ehdr = ident + struct.pack(bo + "HHIIIIIHHHHHH", 2, 8, 1, 0, 52, 0, 0, 52, 32, 1, 40, 0, 0)
        phdr = struct.pack(bo + "IIIIIIII", 1, 0x100, vaddr, vaddr, len(data), len(data), flags, 0x1000)
    head = ehdr + phdr
    return head + b"\0" * (0x100 - len(head)) + data


def _wrapped(modinfo: str) -> bytes:
    return SENTINEL_START + modinfo.encode() + SENTINEL_END


def _pointer_blob(version: str, modinfo: bytes, *, ptr: int, little: bool, vaddr: int) -> bytes:
    """The Go 1.13-1.17 layout: header with two pointers to string headers, then the strings."""
    bo = "<" if little else ">"
    p = "Q" if ptr == 8 else "I"
    vers_hdr_at = 32
    mod_hdr_at = vers_hdr_at + 2 * ptr
    vers_at = mod_hdr_at + 2 * ptr
    mod_at = vers_at + len(version)
    header = BUILDINFO_MAGIC + bytes([ptr, 0 if little else 1])
    header += struct.pack(bo + p + p, vaddr + vers_hdr_at, vaddr + mod_hdr_at)
    header += b"\0" * (32 - len(header))
    strings = struct.pack(bo + p + p, vaddr + vers_at, len(version))
    strings += struct.pack(bo + p + p, vaddr + mod_at, len(modinfo))
    return header + strings + version.encode() + modinfo


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _inline_blob(version: str, modinfo: bytes) -> bytes:
    header = BUILDINFO_MAGIC + bytes([8, 2]) + b"\0" * 16
    return header + _uvarint(len(version)) + version.encode() + _uvarint(len(modinfo)) + modinfo


MODINFO = (
    "path\texample.com/app/cmd/app\n"
    "mod\texample.com/app\tv1.4.0\th1:abc=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n"
    "dep\tgolang.org/x/net\tv0.0.0-20190620200207-3b0461eec859\th1:ghi=\n"
    "=>\tgithub.com/fork/net\tv0.1.0\th1:jkl=\n"
    "dep\texample.com/local\tv1.0.0\n"
    "=>\t../local\t\n"
    "build\tCGO_ENABLED=0\n"
)
MODINFO_EXPECTED = [
    ("stdlib", "1.16.15", "pkg:golang/stdlib@1.16.15"),
    ("example.com/app", "v1.4.0", "pkg:golang/example.com/app@v1.4.0"),
    ("github.com/pkg/errors", "v0.9.1", "pkg:golang/github.com/pkg/errors@v0.9.1"),
    ("github.com/fork/net", "v0.1.0", "pkg:golang/github.com/fork/net@v0.1.0"),
]


@pytest.mark.parametrize(("is64", "little"), [(True, True), (False, False), (False, True), (True, False)])
def test_pointer_format(is64: bool, little: bool) -> None:
    vaddr = 0x400100
    blob = _pointer_blob("go1.16.15", _wrapped(MODINFO), ptr=8 if is64 else 4, little=little, vaddr=vaddr)
    result = GoBinaryAnalyzer().analyze("usr/bin/app", _elf(blob, is64=is64, little=little, vaddr=vaddr))
    assert [(p.name, p.version, p.purl) for p in result.packages] == MODINFO_EXPECTED
    assert {p.path for p in result.packages} == {"usr/bin/app"}


def test_inline_format_synthetic() -> None:
    blob = _inline_blob("go1.16.15", _wrapped(MODINFO))
    result = GoBinaryAnalyzer().analyze("app", _elf(blob, is64=True, little=True))
    assert [(p.name, p.version, p.purl) for p in result.packages] == MODINFO_EXPECTED


def test_magic_must_be_16_byte_aligned() -> None:
    blob = b"\0" * 8 + _inline_blob("go1.16.15", _wrapped(MODINFO))
    assert read_raw_buildinfo(_elf(blob, is64=True, little=True)) is None


def test_magic_found_after_a_misaligned_decoy() -> None:
    blob = b"\0" * 3 + BUILDINFO_MAGIC + b"\0" * 15 + _inline_blob("go1.16.15", _wrapped(MODINFO))
    assert read_raw_buildinfo(_elf(blob, is64=True, little=True)) == ("go1.16.15", MODINFO)


def test_modinfo_without_sentinels_is_ignored_but_stdlib_kept() -> None:
    blob = _inline_blob("go1.16.15", MODINFO.encode())
    result = GoBinaryAnalyzer().analyze("app", _elf(blob, is64=True, little=True))
    assert [(p.name, p.version) for p in result.packages] == [("stdlib", "1.16.15")]


def test_not_a_go_binary() -> None:
    assert read_raw_buildinfo(_elf(b"\0" * 4096, is64=True, little=True)) is None
    assert GoBinaryAnalyzer().analyze("usr/bin/ls", _elf(b"\0" * 64, is64=True, little=True)).packages == []


def test_no_writable_segment_no_section() -> None:
    blob = _inline_blob("go1.16.15", _wrapped(MODINFO))
    assert read_raw_buildinfo(_elf(blob, is64=True, little=True, writable=False)) is None


# -- module info and versions ---------------------------------------------------------------------


def test_parse_modinfo_replacements() -> None:
    info = parse_modinfo("go1.21.5", MODINFO)
    assert info == BuildInfo(
        go_version="go1.21.5",
        main_path="example.com/app/cmd/app",
        main=("example.com/app", "v1.4.0"),
        deps=[
            ("github.com/pkg/errors", "v0.9.1"),
            ("github.com/fork/net", "v0.1.0"),
            ("../local", ""),
        ],
        settings={"CGO_ENABLED": "0"},
    )


def test_main_module_replaced_and_devel_main_kept_as_devel() -> None:
    replaced = parse_modinfo("go1.21.5", "mod\ta.example/m\t(devel)\t\n=>\tb.example/m\tv2.0.0\th1:x=\n")
    assert replaced.main == ("b.example/m", "v2.0.0")
    devel = parse_modinfo(
        "go1.21.5", "path\ta.example/m\nmod\ta.example/m\t(devel)\t\ndep\tc.example/d\tv1.0.0\t\n"
    )
    assert [(p.name, p.version) for p in packages_of(devel, "x")] == [
        ("stdlib", "1.21.5"),
        ("a.example/m", "(devel)"),
        ("c.example/d", "v1.0.0"),
    ]


_DEVEL_MAIN = "path\ta.example/m/cmd/x\nmod\ta.example/m\t(devel)\t\n"


@pytest.mark.parametrize(
    ("build_lines", "content", "version"),
    [
        # -ldflags wins over everything else; the `v` is added as Go module versions have it
        ('build\t-ldflags="-s -w -X main.version=1.4.2"\n', b"\x00v9.9.9\x00", "v1.4.2"),
        ("build\t-ldflags=-X 'github.com/a/m/internal/version.Version=v2.0.1-rc.1'\n", b"", "v2.0.1-rc.1"),
        ("build\t-ldflags=-X main.gitVersion=v0.3.0+dirty\n", b"", "v0.3.0+dirty"),
        # a variable that is not a version, or a value that is not one, is not taken
        ("build\t-ldflags=-X main.commit=1.2.3\n", b"", "(devel)"),
        ("build\t-ldflags=-X main.version=dev\n", b"", "(devel)"),
        # a NUL-delimited semantic version among the strings (Debian's docker-registry)
        ("", b"\x7fELF...\x00go1.19\x00\x00v2.8.2+ds1\x00\x003.0\x00", "v2.8.2+ds1"),
        ("", b"abc\x001.5.0\x00", "v1.5.0"),
        # a VCS stamp gives the pseudo-version `go install` would have recorded
        (
            "build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123\nbuild\tvcs.time=2024-01-02T15:04:05Z\n",
            b"",
            "v0.0.0-20240102150405-0123456789ab",
        ),
        ("build\tvcs.revision=0123456789abcdef\nbuild\tvcs.time=yesterday\n", b"", "(devel)"),
        ("build\tvcs.revision=abc\nbuild\tvcs.time=2024-01-02T15:04:05Z\n", b"", "(devel)"),
    ],
)
def test_devel_main_module_version_like_syft(build_lines: str, content: bytes, version: str) -> None:
    info = parse_modinfo("go1.21.5", _DEVEL_MAIN + build_lines)
    assert [(p.name, p.version) for p in packages_of(info, "x", content)] == [
        ("stdlib", "1.21.5"),
        ("a.example/m", version),
    ]


def test_gopath_main_module_named_by_path() -> None:
    info = parse_modinfo("go1.19.8", "path\tgithub.com/distribution/distribution/cmd/registry\n")
    packages = packages_of(info, "usr/bin/docker-registry", b"\x00v2.8.2+ds1\x00")
    assert [(p.name, p.version) for p in packages] == [
        ("stdlib", "1.19.8"),
        ("github.com/distribution/distribution/cmd/registry", "v2.8.2+ds1"),
    ]


def test_stray_replace_line_is_ignored() -> None:
    info = parse_modinfo("go1.21.5", "=>\tb.example/m\tv2.0.0\t\nbuild\tx=y\n=>\tc.example/m\tv1\t\n")
    assert info.main is None and info.deps == []


def test_duplicate_modules_reported_once() -> None:
    info = BuildInfo(go_version="go1.21.5", main=("a.example/m", "v1.0.0"), deps=[("a.example/m", "v1.0.0")])
    assert [(p.name, p.version) for p in packages_of(info, "x")] == [
        ("stdlib", "1.21.5"),
        ("a.example/m", "v1.0.0"),
    ]


@pytest.mark.parametrize(
    ("go_version", "expected"),
    [
        ("go1.21.5", "1.21.5"),
        ("go1.22rc1 X:boringcrypto", "1.22rc1"),
        ("go1.13", "1.13"),
        ("devel go1.23-1a2b3c4 Tue Jan 2 15:04:05 2024 +0000", None),
        ("go", None),
        ("gox", None),
        ("", None),
    ],
)
def test_stdlib_version(go_version: str, expected: str | None) -> None:
    assert stdlib_version(go_version) == expected


# -- which files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/bin/kubectl", True),
        ("usr/local/bin/terraform", True),
        ("bin/busybox", True),
        ("usr/sbin/gosu", True),
        ("root/go/bin/dlv", True),
        ("opt/app/bin/server.bin", True),
        ("usr/libexec/docker/cli-plugins/docker-buildx", True),
        ("manager", True),
        ("app/server", True),
        ("ko-app/hello", True),
        ("opt/tool/tool", True),
        ("usr/local/go/pkg/tool/linux_amd64/vet", False),  # not where programs are installed
        ("opt/venv/lib/python3.12/site-packages/flask-3.0.0.dist-info/METADATA", False),
        ("opt/venv/lib/python3.12/site-packages/x/helper", False),
        ("opt/a/b/program", False),
        ("LICENSE", False),
        ("app/NOTICE", False),
        ("usr/local/lib/node_modules/npm/bin/npm", True),
        ("usr/bin/python3.11", True),
        ("usr/bin/pip.py", False),
        ("usr/local/bin/docker-entrypoint.sh", False),
        ("usr/share/doc/gosu/copyright", False),
        ("etc/passwd", False),
        ("var/lib/dpkg/status", False),
        ("usr/lib/x86_64-linux-gnu/libc.so.6", False),
        ("app/config.json", False),
        ("README.md", False),
        ("opt/app/lib/app.jar", False),
    ],
)
def test_wants_path(path: str, wanted: bool) -> None:
    assert wants_path(path) is wanted
    assert GoBinaryAnalyzer().wants(path) is wanted


def test_max_file_size() -> None:
    assert GoBinaryAnalyzer.max_file_size == 256 * 1024 * 1024


# -- hostile input ---------------------------------------------------------------------------------


def test_non_elf_is_skipped_without_parsing() -> None:
    assert GoBinaryAnalyzer().analyze("usr/bin/script", b"#!/bin/sh\necho hi\n").packages == []


@pytest.mark.parametrize("cut", [4, 16, 63, 64, 200, 0x1000, 0x1010, 0x1030, 0x1100, len(SHFMT) - 25])
def test_truncated_real_binary_gives_nothing(cut: int) -> None:
    """The section header table is at the end of the file: a cut into the fields read loses it
    and the file is refused as inconsistent, without an exception."""
    assert GoBinaryAnalyzer().analyze("usr/bin/shfmt", SHFMT[:cut]).packages == []


def test_cut_in_unread_header_fields_still_reads() -> None:
    """The last 24 bytes of a section header (link, info, align, entsize) are never needed."""
    assert _rows(SHFMT[:-24]) == SHFMT_EXPECTED


def test_truncated_elf_header_raises_elf_error() -> None:
    with pytest.raises(ELFError):
        parse_elf(SHFMT[:40])


def test_pointer_outside_segments_gives_nothing() -> None:
    blob = _pointer_blob("go1.16.15", _wrapped(MODINFO), ptr=8, little=True, vaddr=0x900000)
    assert (
        GoBinaryAnalyzer().analyze("app", _elf(blob, is64=True, little=True, vaddr=0x400100)).packages == []
    )


def test_huge_inline_length_gives_nothing() -> None:
    header = BUILDINFO_MAGIC + bytes([8, 2]) + b"\0" * 16
    blob = header + _uvarint(1 << 40) + b"go1.21.5"
    assert GoBinaryAnalyzer().analyze("app", _elf(blob, is64=True, little=True)).packages == []


def test_overlong_varint_gives_nothing() -> None:
    header = BUILDINFO_MAGIC + bytes([8, 2]) + b"\0" * 16
    assert (
        GoBinaryAnalyzer().analyze("app", _elf(header + b"\xff" * 20, is64=True, little=True)).packages == []
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(SHFMT) - 1), st.integers(min_value=0, max_value=255))
def test_mutated_real_binary_never_raises(at: int, value: int) -> None:
    data = bytearray(SHFMT)
    data[at] = value
    result = GoBinaryAnalyzer().analyze("usr/bin/shfmt", bytes(data))
    assert len(result.packages) <= len(SHFMT_EXPECTED)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_elf_bytes_never_raise(tail: bytes) -> None:
    result = GoBinaryAnalyzer().analyze("usr/bin/x", b"\x7fELF" + tail)
    assert result.packages == []
