"""apk installed-database parsing and the OS-dependent completion."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.apk import ApkAnalyzer, iter_blocks
from chalicelib.models import OSInfo

FIXTURE = Path(__file__).parent.parent / "fixtures" / "analyzers" / "apk" / "installed"
DB = "lib/apk/db/installed"
ALPINE_319 = OSInfo(family="alpine", version="3.19.1")

#: (name, version, source_name, arch); the entry without V: is skipped
EXPECTED = [
    ("musl", "1.2.4_git20230717-r4", "musl", "x86_64"),
    ("busybox", "1.36.1-r15", "busybox", "x86_64"),
    ("busybox-binsh", "1.36.1-r15", "busybox", "x86_64"),
    ("libcrypto3", "3.1.4-r5", "openssl", "x86_64"),
    ("libssl3", "3.1.4-r5", "openssl", "x86_64"),
    ("zlib", "1.3.1-r0", "zlib", "x86_64"),
    ("ssl_client", "1.36.1-r15", "busybox", "x86_64"),
]
EXPECTED_PURLS = [
    "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.19.1",
    "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=3.19.1",
    "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=3.19.1&upstream=busybox",
    "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=3.19.1&upstream=openssl",
    "pkg:apk/alpine/libssl3@3.1.4-r5?arch=x86_64&distro=3.19.1&upstream=openssl",
    "pkg:apk/alpine/zlib@1.3.1-r0?arch=x86_64&distro=3.19.1",
    "pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=3.19.1&upstream=busybox",
]


@pytest.fixture
def analyzer() -> ApkAnalyzer:
    return ApkAnalyzer()


def test_installed_db_before_finalize(analyzer: ApkAnalyzer) -> None:
    packages = analyzer.analyze(DB, FIXTURE.read_bytes()).packages
    assert [(p.name, p.version, p.source_name, p.arch) for p in packages] == EXPECTED
    assert [p.source_version for p in packages] == [row[1] for row in EXPECTED]
    assert {(p.ecosystem, p.purl, p.path) for p in packages} == {("", "", DB)}
    assert [(p.name, p.licenses) for p in packages] == [
        ("musl", ["MIT"]),
        ("busybox", ["GPL-2.0-only"]),
        ("busybox-binsh", ["GPL-2.0-only"]),
        ("libcrypto3", ["Apache-2.0"]),
        ("libssl3", ["Apache-2.0"]),
        ("zlib", ["Zlib"]),
        ("ssl_client", ["GPL-2.0-only"]),
    ]


def test_finalize_alpine_319(analyzer: ApkAnalyzer) -> None:
    packages = analyzer.analyze(DB, FIXTURE.read_bytes()).packages
    done = analyzer.finalize(packages, ALPINE_319)
    assert [p.purl for p in done] == EXPECTED_PURLS
    assert {p.ecosystem for p in done} == {"Alpine:v3.19"}


def test_finalize_wolfi_and_no_os(analyzer: ApkAnalyzer) -> None:
    packages = analyzer.analyze(DB, b"P:glibc\nV:2.39-r1\nA:aarch64\no:glibc\n").packages
    wolfi = analyzer.finalize(packages, OSInfo(family="wolfi", version="20230201"))
    assert [(p.ecosystem, p.purl) for p in wolfi] == [
        ("Wolfi", "pkg:apk/wolfi/glibc@2.39-r1?arch=aarch64&distro=20230201")
    ]
    unknown = analyzer.finalize(packages, None)
    assert [(p.ecosystem, p.purl) for p in unknown] == [
        ("Alpine", "pkg:apk/alpine/glibc@2.39-r1?arch=aarch64")
    ]


def test_missing_origin_and_arch(analyzer: ApkAnalyzer) -> None:
    packages = analyzer.analyze(DB, b"P:foo\nV:1.0-r0\n").packages
    assert [(p.source_name, p.source_version, p.arch) for p in packages] == [("foo", "1.0-r0", None)]
    assert packages[0].licenses == []


def test_license_expression_is_one_string(analyzer: ApkAnalyzer) -> None:
    content = b"P:a\nV:1\nL: GPL-2.0-only AND LGPL-2.1-or-later \n\nP:b\nV:2\nL:UNKNOWN\n"
    packages = analyzer.analyze(DB, content).packages
    assert [(p.name, p.licenses) for p in packages] == [
        ("a", ["GPL-2.0-only AND LGPL-2.1-or-later"]),
        ("b", []),
    ]


def test_first_occurrence_wins_and_junk_lines_are_ignored() -> None:
    text = "P:a\nV:1\nV:2\nnot a field\nx\n::\nR:file\n\r\n\n\nP:b\r\nV:3\r\n"
    assert list(iter_blocks(text)) == [{"P": "a", "V": "1"}, {"P": "b", "V": "3"}]


def test_wants(analyzer: ApkAnalyzer) -> None:
    assert analyzer.wants("lib/apk/db/installed")
    assert not analyzer.wants("lib/apk/db/triggers")
    assert not analyzer.wants("usr/lib/apk/db/installed")
    assert not analyzer.wants("/lib/apk/db/installed")


_APKish = st.lists(
    st.one_of(
        st.sampled_from(["P:x", "V:1.0-r0", "A:x86_64", "o:y", "", "P:", "V:", ":"]), st.text(max_size=30)
    ),
    max_size=40,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=_APKish)
def test_fuzz_structured_text_never_raises(text: str) -> None:
    analyzer = ApkAnalyzer()
    packages = analyzer.analyze(DB, text.encode("utf-8", errors="surrogatepass")).packages
    done = analyzer.finalize(packages, ALPINE_319)
    assert len(done) == len(packages)
    assert all(p.name and p.version for p in done)


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=2000))
def test_fuzz_bytes_never_raise(content: bytes) -> None:
    analyzer = ApkAnalyzer()
    packages = analyzer.analyze(DB, content).packages
    assert len(analyzer.finalize(packages, None)) == len(packages)
