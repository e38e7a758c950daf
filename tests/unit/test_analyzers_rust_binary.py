"""cargo-auditable `.dep-v0` sections: the committed synthetic executable (see
tests/fixtures/rust_binary/README.md) gives exactly its runtime, non-local crates; variants built
here in memory (a minimal ELF writer) cover bounds, broken data and the content gate."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.rust_binary import (
    MAX_JSON_BYTES,
    AuditDataError,
    RustBinaryAnalyzer,
    crates_of,
    decompress_bounded,
    parse_audit_json,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
AUDITABLE = FIXTURES / "rust_binary" / "lifeguard-demo-0.1.0.auditable.elf"
GO_BINARY = FIXTURES / "gobinary" / "gosu-1.14-go1.19.8.buildinfo.elf"


def elf_with_section(name: str, data: bytes) -> bytes:
    """A minimal 64-bit little-endian ELF: header, one section `name` holding `data`, .shstrtab."""
    names = b"\x00" + name.encode() + b"\x00.shstrtab\x00"
    data_off = 64
    names_off = data_off + len(data)
    sh_off = names_off + len(names)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 2)
    null = bytes(64)
    section = struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, data_off, len(data), 0, 0, 1, 0)
    strtab = struct.pack("<IIQQQQIIQQ", 2 + len(name), 3, 0, 0, names_off, len(names), 0, 0, 1, 0)
    return header + data + names + null + section + strtab


def audit_section(packages: list[object]) -> bytes:
    return zlib.compress(json.dumps({"packages": packages}).encode())


def test_fixture_gives_exactly_the_runtime_crates() -> None:
    result = RustBinaryAnalyzer().analyze("usr/local/bin/lifeguard-demo", AUDITABLE.read_bytes())
    assert [(p.name, p.version, p.ecosystem, p.purl, p.path) for p in result.packages] == [
        ("itoa", "1.0.11", "crates.io", "pkg:cargo/itoa@1.0.11", "usr/local/bin/lifeguard-demo"),
        ("ryu", "1.0.18", "crates.io", "pkg:cargo/ryu@1.0.18", "usr/local/bin/lifeguard-demo"),
        ("serde", "1.0.204", "crates.io", "pkg:cargo/serde@1.0.204", "usr/local/bin/lifeguard-demo"),
        (
            "serde_json",
            "1.0.120",
            "crates.io",
            "pkg:cargo/serde_json@1.0.120",
            "usr/local/bin/lifeguard-demo",
        ),
        ("smallvec", "1.13.2", "crates.io", "pkg:cargo/smallvec@1.13.2", "usr/local/bin/lifeguard-demo"),
    ]
    assert result.os is None and result.owned_files == {}


def test_fixture_json_is_what_the_section_holds() -> None:
    """The committed JSON documents the section byte for byte (after whitespace removal)."""
    raw = (FIXTURES / "rust_binary" / "lifeguard-demo-0.1.0.audit.json").read_bytes()
    assert zlib.compress(raw.replace(b"\n", b""), 9) in AUDITABLE.read_bytes()


def test_go_binary_without_section_gives_nothing() -> None:
    assert RustBinaryAnalyzer().analyze("usr/sbin/gosu", GO_BINARY.read_bytes()).packages == []


def test_not_elf_gives_nothing() -> None:
    assert RustBinaryAnalyzer().analyze("usr/bin/x", b"#!/bin/sh\necho hi\n").packages == []


def test_wants_paths_and_content() -> None:
    analyzer = RustBinaryAnalyzer()
    assert [analyzer.wants(p) for p in ("usr/local/bin/rg", "app/server", "usr/bin/x.py", "etc/x")] == [
        True,
        True,
        False,
        False,
    ]
    assert analyzer.wants_content(b"\x7fELF\x02\x01\x01") is True
    assert analyzer.wants_content(b"#!/bin/sh") is False
    assert analyzer.wants_content(b"") is False


def test_kinds_sources_and_duplicates() -> None:
    section = audit_section(
        [
            {"name": "a", "version": "1.0.0", "source": "crates.io"},
            {"name": "b", "version": "2.0.0", "source": "registry", "kind": "runtime"},
            {"name": "c", "version": "3.0.0", "source": "crates.io", "kind": "build"},
            {"name": "d", "version": "0.1.0", "source": "local", "root": True},
            {"name": "a", "version": "1.0.0", "source": "crates.io"},
            {"name": "", "version": "1.0.0", "source": "crates.io"},
            {"name": "e", "source": "crates.io"},
            {"name": "f", "version": "4.0.0"},
            "not an object",
        ]
    )
    packages = RustBinaryAnalyzer().analyze("app/srv", elf_with_section(".dep-v0", section)).packages
    assert [(p.name, p.version) for p in packages] == [("a", "1.0.0"), ("b", "2.0.0"), ("f", "4.0.0")]


def test_other_section_name_is_ignored() -> None:
    section = audit_section([{"name": "a", "version": "1.0.0", "source": "crates.io"}])
    assert RustBinaryAnalyzer().analyze("app/srv", elf_with_section(".dep-v1", section)).packages == []


@pytest.mark.parametrize(
    "payload",
    [
        b"not zlib at all",
        zlib.compress(b"{not json")[:-6],  # truncated stream
        zlib.compress(b"{not json"),
        zlib.compress(b"[1, 2]"),
        zlib.compress(b'{"packages": {"a": 1}}'),
        zlib.compress(b"\xff\xfe"),
        b"",
    ],
)
def test_broken_audit_data_gives_nothing(payload: bytes) -> None:
    assert RustBinaryAnalyzer().analyze("app/srv", elf_with_section(".dep-v0", payload)).packages == []


def test_zlib_bomb_is_refused() -> None:
    bomb = zlib.compress(b" " * (MAX_JSON_BYTES + 1024), 9)
    assert len(bomb) < 64 * 1024
    assert RustBinaryAnalyzer().analyze("app/srv", elf_with_section(".dep-v0", bomb)).packages == []
    with pytest.raises(AuditDataError, match="inflates beyond 1000 bytes"):
        decompress_bounded(zlib.compress(b"x" * 1001), limit=1000)
    assert decompress_bounded(zlib.compress(b"x" * 1000), limit=1000) == b"x" * 1000
    with pytest.raises(AuditDataError, match="truncated"):
        decompress_bounded(zlib.compress(b"x" * 1000)[:-4], limit=1000)


def test_crates_of_rejects_non_documents() -> None:
    with pytest.raises(AuditDataError):
        crates_of([])
    with pytest.raises(AuditDataError):
        crates_of({"format": 1})
    assert parse_audit_json(b'{"packages": []}') == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_section_bytes_never_raise(payload: bytes) -> None:
    result = RustBinaryAnalyzer().analyze("app/srv", elf_with_section(".dep-v0", payload))
    assert result.packages == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_elf_like_files_never_raise(tail: bytes) -> None:
    result = RustBinaryAnalyzer().analyze("app/srv", b"\x7fELF" + tail)
    assert result.packages == []
