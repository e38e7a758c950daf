"""dpkg database parsing (status and distroless status.d) and the OS-dependent completion."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.dpkg import DpkgAnalyzer, files_present, iter_stanzas, parse_source
from chalicelib.models import OSInfo, Package

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers" / "dpkg"
STATUS = "var/lib/dpkg/status"
DEBIAN_12 = OSInfo(family="debian", version="12")

#: (name, version, source_name, source_version, arch) in file order; rsyslog (deinstall ok
#: config-files) and libpython3.11-minimal (purge ok not-installed) are absent, tzdata (hold ok
#: installed) is present.
EXPECTED_STATUS = [
    ("base-files", "12.4+deb12u11", "base-files", "12.4+deb12u11", "amd64"),
    ("bash", "5.2.15-2+b8", "bash", "5.2.15-2", "amd64"),
    ("bsdutils", "1:2.38.1-5+deb12u3", "util-linux", "2.38.1-5+deb12u3", "amd64"),
    ("ca-certificates", "20230311+deb12u1", "ca-certificates", "20230311+deb12u1", "all"),
    ("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14", "amd64"),
    ("libgcc-s1", "12.2.0-14+deb12u1", "gcc-12", "12.2.0-14+deb12u1", "amd64"),
    ("libssl3", "3.0.19-1~deb12u2", "openssl", "3.0.19-1~deb12u2", "amd64"),
    ("openssl", "3.0.19-1~deb12u2", "openssl", "3.0.19-1~deb12u2", "amd64"),
    ("tzdata", "2025b-0+deb12u2", "tzdata", "2025b-0+deb12u2", "all"),
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1", "amd64"),
]
EXPECTED_PURLS = [
    "pkg:deb/debian/base-files@12.4%2Bdeb12u11?arch=amd64&distro=debian-12",
    "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2",
    "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12"
    "&upstream=util-linux%402.38.1-5%2Bdeb12u3",
    "pkg:deb/debian/ca-certificates@20230311%2Bdeb12u1?arch=all&distro=debian-12",
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
    "pkg:deb/debian/libgcc-s1@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=gcc-12",
    "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
    "pkg:deb/debian/openssl@3.0.19-1~deb12u2?arch=amd64&distro=debian-12",
    "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12",
    "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib",
]


@pytest.fixture
def analyzer() -> DpkgAnalyzer:
    return DpkgAnalyzer()


def _rows(packages: list[Package]) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in packages]


def test_status_packages_before_finalize(analyzer: DpkgAnalyzer) -> None:
    result = analyzer.analyze(STATUS, (FIXTURES / "status").read_bytes())
    assert _rows(result.packages) == EXPECTED_STATUS
    assert {p.ecosystem for p in result.packages} == {""}
    assert {p.purl for p in result.packages} == {""}
    assert {p.path for p in result.packages} == {STATUS}
    assert result.os is None


def test_status_finalize_debian_12(analyzer: DpkgAnalyzer) -> None:
    packages = analyzer.analyze(STATUS, (FIXTURES / "status").read_bytes()).packages
    done = analyzer.finalize(packages, DEBIAN_12)
    assert [p.purl for p in done] == EXPECTED_PURLS
    assert {p.ecosystem for p in done} == {"Debian:12"}
    assert _rows(done) == EXPECTED_STATUS  # finalize changes nothing else


def test_finalize_point_release_from_debian_version(analyzer: DpkgAnalyzer) -> None:
    packages = analyzer.analyze(STATUS, (FIXTURES / "status").read_bytes()).packages
    done = analyzer.finalize(packages[4:5], OSInfo(family="debian", version="12.5"))
    assert done[0].ecosystem == "Debian:12"
    assert (
        done[0].purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12.5&upstream=glibc"
    )


def test_finalize_ubuntu(analyzer: DpkgAnalyzer) -> None:
    stanza = (
        b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n"
        b"Version: 3.0.2-0ubuntu1.15\n"
    )
    packages = analyzer.analyze(STATUS, stanza).packages
    done = analyzer.finalize(packages, OSInfo(family="ubuntu", version="22.04"))
    assert [(p.ecosystem, p.purl) for p in done] == [
        (
            "Ubuntu:22.04:LTS",
            "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.15?arch=amd64&distro=ubuntu-22.04&upstream=openssl",
        )
    ]


def test_finalize_without_os_is_debian_of_unknown_release(analyzer: DpkgAnalyzer) -> None:
    packages = analyzer.analyze(STATUS, (FIXTURES / "status").read_bytes()).packages
    done = analyzer.finalize(packages[7:8], None)
    assert [(p.ecosystem, p.purl) for p in done] == [
        ("Debian", "pkg:deb/debian/openssl@3.0.19-1~deb12u2?arch=amd64")
    ]


def test_finalize_is_idempotent(analyzer: DpkgAnalyzer) -> None:
    packages = analyzer.analyze(STATUS, (FIXTURES / "status").read_bytes()).packages
    once = analyzer.finalize(packages, DEBIAN_12)
    assert analyzer.finalize(once, DEBIAN_12) == once


def test_distroless_status_d(analyzer: DpkgAnalyzer) -> None:
    """Walk the fixture dir as the walker would: md5sums files are not wanted, each control file
    gives one installed package (no Status field)."""
    found: list[Package] = []
    wanted: list[str] = []
    for file in sorted((FIXTURES / "status.d").iterdir()):
        path = f"var/lib/dpkg/status.d/{file.name}"
        if analyzer.wants(path):
            wanted.append(file.name)
            found.extend(analyzer.analyze(path, file.read_bytes()).packages)
    assert wanted == ["base-files", "libc6", "libssl3", "tzdata"]
    done = analyzer.finalize(found, DEBIAN_12)
    assert [(p.name, p.version, p.source_name, p.path) for p in done] == [
        ("base-files", "12.4+deb12u11", "base-files", "var/lib/dpkg/status.d/base-files"),
        ("libc6", "2.36-9+deb12u14", "glibc", "var/lib/dpkg/status.d/libc6"),
        ("libssl3", "3.0.19-1~deb12u2", "openssl", "var/lib/dpkg/status.d/libssl3"),
        ("tzdata", "2025b-0+deb12u2", "tzdata", "var/lib/dpkg/status.d/tzdata"),
    ]
    assert (
        done[2].purl == "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"
    )


def test_wants(analyzer: DpkgAnalyzer) -> None:
    assert analyzer.wants("var/lib/dpkg/status")
    assert analyzer.wants("var/lib/dpkg/status.d/libc6")
    assert not analyzer.wants("var/lib/dpkg/status.d/libc6.md5sums")
    assert not analyzer.wants("var/lib/dpkg/status.d/")
    assert not analyzer.wants("var/lib/dpkg/status.d/sub/libc6")
    assert not analyzer.wants("var/lib/dpkg/status-old")
    assert not analyzer.wants("var/lib/dpkg/available")
    assert not analyzer.wants("usr/var/lib/dpkg/status")


@pytest.mark.parametrize(
    ("status", "present"),
    [
        (None, True),
        ("install ok installed", True),
        ("hold ok installed", True),
        ("install ok unpacked", True),
        ("install ok half-configured", True),
        ("install ok triggers-pending", True),
        ("install reinstreq half-installed", True),
        ("deinstall ok config-files", False),
        ("purge ok not-installed", False),
        ("deinstall ok not-installed", False),
        ("installed", False),
    ],
)
def test_files_present(status: str | None, present: bool) -> None:
    assert files_present(status) is present


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, ("pkg", "1.0-1")),
        ("", ("pkg", "1.0-1")),
        ("glibc", ("glibc", "1.0-1")),
        ("openssl (3.0.11-1~deb12u1)", ("openssl", "3.0.11-1~deb12u1")),
        ("util-linux(2.38.1-5)", ("util-linux", "2.38.1-5")),
        ("openssl ()", ("openssl", "1.0-1")),
        ("  zlib  ", ("zlib", "1.0-1")),
    ],
)
def test_parse_source(source: str | None, expected: tuple[str, str]) -> None:
    assert parse_source(source, "pkg", "1.0-1") == expected


def test_stanza_parsing_continuations_crlf_and_junk() -> None:
    text = (
        "Package: a\r\nVersion: 1\r\nDescription: short\r\n long line\r\n .\r\n\tmore\r\n\r\n"
        "junk line without colon\n continuation of nothing\n\n\n"
        "package: b\nVERSION: 2\n"
    )
    assert list(iter_stanzas(text)) == [
        {"package": "a", "version": "1", "description": "short\nlong line\n.\nmore"},
        {"package": "b", "version": "2"},
    ]


def test_skips_stanzas_without_name_or_version_and_bad_status(analyzer: DpkgAnalyzer) -> None:
    content = (
        b"Package: noversion\nStatus: install ok installed\n\n"
        b"Version: 1.0\nStatus: install ok installed\n\n"
        b"Package: badstatus\nStatus: installed\nVersion: 1\n\n"
        b"Package: ok\nStatus: install ok installed\nVersion: 1.0\n"
    )
    assert [p.name for p in analyzer.analyze(STATUS, content).packages] == ["ok"]


def test_binary_junk_gives_nothing(analyzer: DpkgAnalyzer) -> None:
    assert analyzer.analyze(STATUS, bytes(range(256)) * 8).packages == []


_DEB822ish = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "Package: x",
                "Version: 1:2.3-4",
                "Status: install ok installed",
                "Status: deinstall ok config-files",
                "Source: y (5)",
                "Source: (",
                "Architecture: amd64",
                " continuation",
                "",
                ":",
            ]
        ),
        st.text(max_size=40),
    ),
    max_size=40,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=_DEB822ish)
def test_fuzz_structured_text_never_raises(text: str) -> None:
    analyzer = DpkgAnalyzer()
    packages = analyzer.analyze(STATUS, text.encode("utf-8", errors="surrogatepass")).packages
    done = analyzer.finalize(packages, DEBIAN_12)
    assert len(done) == len(packages)
    assert all(p.name and p.version for p in done)


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=2000))
def test_fuzz_bytes_never_raise(content: bytes) -> None:
    analyzer = DpkgAnalyzer()
    packages = analyzer.analyze(STATUS, content).packages
    assert len(analyzer.finalize(packages, None)) == len(packages)
