"""OS identification: os-release quoting, the alternative files, and their priorities."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.os_release import OSReleaseAnalyzer, parse_os_release, parse_value
from chalicelib.models import OSInfo

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers" / "os-release"


@pytest.fixture
def analyzer() -> OSReleaseAnalyzer:
    return OSReleaseAnalyzer()


@pytest.mark.parametrize(
    ("fixture", "family", "version"),
    [
        ("debian12", "debian", "12"),
        ("ubuntu2204", "ubuntu", "22.04"),
        ("alpine319", "alpine", "3.19.1"),
        ("distroless-debian12", "debian", "12"),
        ("rocky93", "rocky", "9.3"),
        ("amzn2023", "amzn", "2023"),
        ("quoting", "quirky", "2024.1"),
    ],
)
def test_os_release_files(analyzer: OSReleaseAnalyzer, fixture: str, family: str, version: str) -> None:
    result = analyzer.analyze("etc/os-release", (FIXTURES / fixture).read_bytes())
    assert result.os == OSInfo(family=family, version=version)
    assert result.os_priority == 40
    assert result.packages == []


def test_usr_lib_os_release_ranks_below_etc(analyzer: OSReleaseAnalyzer) -> None:
    result = analyzer.analyze("usr/lib/os-release", (FIXTURES / "debian12").read_bytes())
    assert result.os == OSInfo(family="debian", version="12")
    assert result.os_priority == 30


def test_alpine_release(analyzer: OSReleaseAnalyzer) -> None:
    result = analyzer.analyze("etc/alpine-release", (FIXTURES / "alpine-release").read_bytes())
    assert result.os == OSInfo(family="alpine", version="3.19.1")
    assert result.os_priority == 20


def test_debian_version_point_release(analyzer: OSReleaseAnalyzer) -> None:
    result = analyzer.analyze("etc/debian_version", (FIXTURES / "debian_version").read_bytes())
    assert result.os == OSInfo(family="debian", version="12.11")
    assert result.os_priority == 10


def test_debian_version_codename_has_no_version(analyzer: OSReleaseAnalyzer) -> None:
    result = analyzer.analyze("etc/debian_version", (FIXTURES / "debian_version-sid").read_bytes())
    assert result.os == OSInfo(family="debian", version=None)


def test_priority_order_is_os_release_first(analyzer: OSReleaseAnalyzer) -> None:
    """What the walker relies on to pick one OS among several files."""
    inputs = {
        "etc/debian_version": FIXTURES / "debian_version",
        "etc/alpine-release": FIXTURES / "alpine-release",
        "usr/lib/os-release": FIXTURES / "ubuntu2204",
        "etc/os-release": FIXTURES / "debian12",
    }
    results = [analyzer.analyze(path, file.read_bytes()) for path, file in inputs.items()]
    ranked = sorted(results, key=lambda r: r.os_priority, reverse=True)
    assert [r.os_priority for r in ranked] == [40, 30, 20, 10]
    assert ranked[0].os == OSInfo(family="debian", version="12")


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b'NAME="No ID Linux"\nVERSION_ID=1\n', b"\x00\xff\xfe garbage", b"ID=\n"],
)
def test_no_identity_gives_no_os(analyzer: OSReleaseAnalyzer, content: bytes) -> None:
    result = analyzer.analyze("etc/os-release", content)
    assert result.os is None
    assert result.os_priority == 0


def test_empty_alpine_release_and_debian_version(analyzer: OSReleaseAnalyzer) -> None:
    assert analyzer.analyze("etc/alpine-release", b"\n").os is None
    assert analyzer.analyze("etc/debian_version", b"").os is None


def test_id_is_lowercased_and_missing_version_is_none(analyzer: OSReleaseAnalyzer) -> None:
    result = analyzer.analyze("etc/os-release", b'ID="Wolfi"\nNAME="Wolfi"\n')
    assert result.os == OSInfo(family="wolfi", version=None)


def test_quoting_fixture_fields() -> None:
    fields = parse_os_release((FIXTURES / "quoting").read_text())
    assert fields == {
        "NAME": 'Single "quoted" Linux',
        "ID": "Quirky",
        "VERSION_ID": "2024.1",
        "PRETTY_NAME": 'Say "hi" \\ to $HOME and `date` \\n kept',
        "VARIANT": "bare escaped spaces",
        "BUILD_ID": "mixeddqsqbare",
        "UNTERMINATED": "runs to the end",
        "EMPTY": "",
        "ANSI_COLOR": "0;38;2;60;110;180",
    }


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"12"', "12"),
        ("'12'", "12"),
        ("12", "12"),
        ('"a b"', "a b"),
        ("'a \\\" b'", 'a \\" b'),  # no escapes inside single quotes
        ('"a\\"b"', 'a"b'),
        ('"a\\qb"', "a\\qb"),  # unknown escape in double quotes keeps the backslash
        ("a\\ b", "a b"),
        ("bare  ", "bare"),
        ('"kept  "', "kept  "),
        ('""', ""),
        ("", ""),
    ],
)
def test_parse_value(raw: str, value: str) -> None:
    assert parse_value(raw) == value


def test_wants(analyzer: OSReleaseAnalyzer) -> None:
    assert analyzer.wants("etc/os-release")
    assert analyzer.wants("usr/lib/os-release")
    assert analyzer.wants("etc/alpine-release")
    assert analyzer.wants("etc/debian_version")
    assert not analyzer.wants("/etc/os-release")
    assert not analyzer.wants("usr/share/doc/etc/os-release")
    assert not analyzer.wants("etc/lsb-release")


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ID=VERSION_\"'\\ \t\n#$`ab1.")), max_size=80))
def test_fuzz_quoting_never_raises(text: str) -> None:
    result = OSReleaseAnalyzer().analyze("etc/os-release", text.encode())
    assert result.os is None or (result.os.family and result.os_priority == 40)


@settings(max_examples=200, deadline=None)
@given(
    content=st.binary(max_size=1000),
    path=st.sampled_from(sorted(["etc/os-release", "etc/alpine-release", "etc/debian_version"])),
)
def test_fuzz_bytes_never_raise(content: bytes, path: str) -> None:
    result = OSReleaseAnalyzer().analyze(path, content)
    assert result.packages == []
