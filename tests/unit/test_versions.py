"""chalicelib.vulndb.versions: every line of the shared ordering vectors, the strings each comparator
must reject, the error types, and order properties (antisymmetry, transitivity) with hypothesis.

Differential tests against the real tools (dpkg, node-semver, librpm) are in
test_versions_reference.py."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import InputError
from chalicelib.vulndb.versions import (
    SUPPORTED_ECOSYSTEMS,
    InvalidVersionError,
    UnknownEcosystemError,
    comparator,
    compare,
    is_supported,
    sort_key,
)
from chalicelib.vulndb.versions._keys import padded_key

VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "version-vectors"

# Strings in the vector files that the comparator rejects on purpose (module docstrings say why).
ALPINE_REJECTED = {
    # apk-tools 2 itself reports these invalid: garbage after the revision, upper case, bad suffix
    *("1-r-0", "1-r-1", "1-r-2", "1-r0-1", "1-r0-2", "1-ruff", "1-ruff1", "1-ruff2", "1--ruff1"),
    *("1-r0-ruff1", "1-r0-ruff2", "1.0bc", "1.2.0A", "1.2.0D", "1.2_blah", "1.2_csv2", "23_foo"),
    # a letter right after a dot
    *("0.r1", "0...1...0.r1", "0...1...0.r2", "0.8.21.r1", "0.8.21.r2", "10.2.22.r0", "10.2.24.r0"),
}
PYPI_REJECTED = {
    *(f"0.{n}-{name}" for n, name in [(1, "bulbasaur"), (1, "charmander")]),
    *(f"0.9-{name}" for name in ("doduo", "eevee", "fearow", "gyarados", "horsea", "ivysaur")),
    *(f"-class.-jw.util.version.version-{s}" for s in ("dev", "pre", "preview")),
    "-class.-jw.util.version.Version-",
    *("0.0.1-test1", "0.3.1-p1", "0.4.0-p1", "0.7.1.fix1", "0.7.4.svn.r2010", "1.0beta6.1"),
    *("1.3.1-STAGING", "2.0.0-final", "2.0.1rc2-git", "4.11-final", "5.0-final", "a3", "trunk"),
    *(f"0.{m}m{n}" for m in (3, 4, 5) for n in range(1, 6)),
    *("0.6m1", "0.6m2", "0.6m3", "0.6m4", "0.6m5", "0.6m6"),
    *(f"0.7.{n}p1" for n in (10, 11)),
    *("0.7.11p2", "0.7.11p3", "0.8.1p1", "0.8.3p1", "0.8.4p1", "0.8.4p2", "0.8.6p1", "0.8.7p1"),
    *("2013-01-21T20:33:09+0100", "2013-01-23T17:11:52+0100", "2013-02-01T20:50:46+0100"),
    *("2013-02-02T19:59:03+0100", "2013-02-02T20:23:17+0100", "2013-02-08T17:40:57+0000"),
    *("2013-03-27T16:32:26+0100", "2013-05-09T12:47:53+0200", "2013-05-10T17:55:56+0200"),
    *("2013-05-14T20:16:05+0200", "2013-06-01T10:32:51+0200", "2013-07-19T09:11:08+0000"),
    *("2013-08-12T21:48:56+0200", "2013-09-11T19-27-10", "2013-12-23T17-51-15"),
    "2014-01-12T15-52-10",
}
BIG = "999999999999999999999999999991"
HUGE = "999999999999999999999999999999"
NPM_REJECTED = {"1.1.3.4.5", BIG, HUGE, f"{BIG}.{BIG}.{BIG}", f"{HUGE}.{BIG}.{BIG}"}
PACKAGIST_REJECTED = {"1.2.3.#", "1.2.3.#.1", "1.2.3.#.beta", "1.2.3.#.p3"}
RUBYGEMS_REJECTED = {"1beta", "1gamma"}

# (file, ecosystem, strings rejected, comparisons checked, comparisons that hit a rejected string)
CASES = [
    ("debian-versions.txt", "Debian:12", set(), 30, 0),
    ("debian-versions-generated.txt", "Ubuntu:22.04:LTS", set(), 14442, 0),
    ("alpine-versions.txt", "Alpine:v3.19", ALPINE_REJECTED, 757, 21),
    ("alpine-versions-generated.txt", "Alpine", set(), 13979, 0),
    ("redhat-versions.txt", "Red Hat", set(), 165, 0),
    ("pypi-versions.txt", "PyPI", PYPI_REJECTED, 26, 11),
    ("pypi-versions-generated.txt", "PyPI", PYPI_REJECTED, 12306, 69),
    ("semver-versions.txt", "npm", NPM_REJECTED, 83, 3),
    ("semver-versions.txt", "Go", set(), 86, 0),
    ("semver-versions.txt", "crates.io", set(), 86, 0),
    ("nuget-versions.txt", "NuGet", set(), 35, 0),
    ("maven-versions.txt", "Maven", set(), 102, 0),
    ("maven-versions-generated.txt", "Maven", set(), 14752, 0),
    ("rubygems-versions.txt", "RubyGems", RUBYGEMS_REJECTED, 23, 2),
    ("rubygems-versions-generated.txt", "RubyGems", set(), 4098, 0),
    ("packagist-versions.txt", "Packagist", PACKAGIST_REJECTED, 89, 6),
    ("packagist-versions-generated.txt", "Packagist", set(), 10630, 0),
]

_SIGN = {"<": -1, "=": 0, ">": 1}


def _vector_lines(name: str) -> list[tuple[int, str, str, str]]:
    rows = []
    for number, raw in enumerate((VECTORS / name).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue
        a, op, b = line.split(" ")
        rows.append((number, a, op, b))
    return rows


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize(
    ("name", "ecosystem", "rejected", "checked", "rejected_lines"),
    CASES,
    ids=[f"{case[0]}-{case[1]}" for case in CASES],
)
def test_vector_file(
    name: str, ecosystem: str, rejected: set[str], checked: int, rejected_lines: int
) -> None:
    failures: list[str] = []
    compared = refused = 0
    for number, a, op, b in _vector_lines(name):
        if a in rejected or b in rejected:
            refused += 1
            with pytest.raises(InvalidVersionError) as info:
                compare(ecosystem, a, b)
            bad = info.value.version
            if bad not in rejected or ecosystem not in str(info.value):
                failures.append(f"{name}:{number}: {a} {op} {b}: wrong error {info.value}")
            continue
        compared += 1
        try:
            got = compare(ecosystem, a, b)
            back = compare(ecosystem, b, a)
        except InvalidVersionError as exc:
            failures.append(f"{name}:{number}: {a} {op} {b}: unexpected {exc}")
            continue
        if got != _SIGN[op] or back != -_SIGN[op]:
            failures.append(f"{name}:{number}: {a} {op} {b}: got {got}, reversed {back}")
    assert failures == []
    assert (compared, refused) == (checked, rejected_lines)


# --- the contract's API and errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "a", "b", "expected"),
    [
        ("Debian", "1.0~rc1", "1.0", -1),
        ("Debian:12", "1:0.9", "2.0", 1),
        ("Ubuntu:22.04:LTS", "1.2.3-1ubuntu1", "1.2.3-1", 1),
        ("Ubuntu:Pro:18.04:LTS", "1.0-0", "1.0", 0),
        ("Alpine:v3.19", "1.2.3_rc1-r0", "1.2.3-r0", -1),
        ("Wolfi", "3.0.13-r1", "3.0.13-r0", 1),
        ("Chainguard", "1.05", "1.1", -1),
        ("Red Hat", "1:1.1.1k-7.el8_6", "1:1.1.1k-12.el8_9", -1),
        ("Rocky Linux:9", "2.0~beta1-1.el9", "2.0-1.el9", -1),
        ("AlmaLinux:9", "1.0^git1-1", "1.0-1", 1),
        ("SUSE:Linux Enterprise Server 15 SP5", "3.0.8-150500.5.8.1", "3.0.8-150500.5.11.1", -1),
        ("openSUSE:Leap 15.5", "1.0-1", "1.0-1", 0),
        ("Amazon Linux:2023", "2.0.7-1.amzn2023.0.2", "2.0.7-1.amzn2023.0.10", -1),
        ("Fedora", "0:1.0-1.fc39", "1.0-1.fc39", 0),
        ("PyPI", "1.0.post1", "1.0", 1),
        ("PyPI", "1.0rc1", "1.0", -1),
        ("npm", "1.0.0-alpha.10", "1.0.0-alpha.9", 1),
        ("npm", "v1.2.3", "1.2.3+build.5", 0),
        ("Go", "0.0.0-20210101000000-abcdef012345", "0.0.0-20200101000000-abcdef012345", 1),
        ("Go", "v1.2.3", "1.2.3", 0),
        ("Go", "1.2.3-pre.0.20200101000000-abcdef012345", "1.2.3", -1),
        ("crates.io", "1.0.0-rc.1", "1.0.0-beta.11", 1),
        ("NuGet", "1.0.0-Beta", "1.0.0-beta", 0),
        ("Maven", "1.0-SNAPSHOT", "1.0", -1),
        ("Maven", "1.0.0.Final", "1.0", 0),
        ("RubyGems", "1.2.4.beta", "1.2.4", -1),
        ("Packagist", "v2.0.0-RC1", "2.0.0", -1),
    ],
)
def test_compare_examples(ecosystem: str, a: str, b: str, expected: int) -> None:
    assert compare(ecosystem, a, b) == expected
    assert compare(ecosystem, b, a) == -expected


@pytest.mark.parametrize(
    ("ecosystem", "version", "reason"),
    [
        ("Debian", "", "version string is empty"),
        ("Debian:12", "1.0 2", "embedded spaces"),
        ("Debian", "1a:1.0", "epoch in version is not number"),
        ("Debian", "a:1.0", "epoch in version is empty"),
        ("Debian", ":1.0", "epoch in version is empty"),
        ("Debian", "-1:1.0", "epoch in version is negative"),
        ("Debian", "2147483648:1.0", "epoch in version is too big"),
        ("Debian", "1:", "nothing after colon"),
        ("Debian", "1.0-", "revision number is empty"),
        ("Ubuntu", "-1", "version number is empty"),
        ("Alpine", "1.0_blah", "unknown suffix"),
        ("Alpine", "1.0-r1-1", "unexpected text"),
        ("Alpine", "1.0A", "unexpected text"),
        ("Alpine", "1.0.r1", "letter must follow a number"),
        ("Alpine", "", "empty"),
        ("Red Hat", "", "empty"),
        ("PyPI", "1.0-foo-bar", "not a PEP 440 version"),
        ("npm", "1.0", "not a strict semver version"),
        ("npm", "01.0.0", "not a strict semver version"),
        ("npm", "v01.0.0", "not a strict semver version"),
        ("npm", "=1.0.0", "not a strict semver version"),
        ("npm", "1.0.0-01", "not a strict semver version"),
        ("npm", "9007199254740992.0.0", "major version above 2**53-1"),
        ("npm", "1.0.0-" + "a" * 251, "longer than 256 characters"),
        ("Go", "latest", "does not start with a number"),
        ("Go", "1.0 .1", "whitespace"),
        ("crates.io", "", "does not start with a number"),
        ("NuGet", "beta", "does not start with a number"),
        ("Maven", "", "empty"),
        ("RubyGems", "1.0 beta", "malformed"),
        ("Packagist", "", "empty"),
    ],
)
def test_rejected_versions(ecosystem: str, version: str, reason: str) -> None:
    with pytest.raises(InvalidVersionError) as info:
        compare(ecosystem, "1.0.0" if ecosystem == "npm" else "1.0", version)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, InputError)
    assert (error.ecosystem, error.version, error.code) == (ecosystem, version, "invalid_version")
    assert reason in error.reason
    assert str(error).startswith(f"invalid {ecosystem} version {version!r}: ")


def test_node_semver_accepts_what_its_strict_parser_accepts() -> None:
    assert compare("npm", "  v1.2.3\n", "1.2.3") == 0
    assert compare("npm", "1.0.0-0a.-", "1.0.0-0a") == 1
    # numbers above 2**53-1 in a pre-release compare as doubles, as in JavaScript
    assert compare("npm", "1.0.0-9007199254740993", "1.0.0-9007199254740992") == 0


@pytest.mark.parametrize("ecosystem", ["debian", "DEBIAN:12", "Pypi", "Hackage", "", ":12", "Debian 12"])
def test_unknown_ecosystem(ecosystem: str) -> None:
    with pytest.raises(UnknownEcosystemError) as info:
        compare(ecosystem, "1", "2")
    assert isinstance(info.value, ValueError)
    assert info.value.ecosystem == ecosystem
    assert repr(ecosystem) in str(info.value)
    assert "Debian" in str(info.value)
    assert not is_supported(ecosystem)


def test_comparator_handle() -> None:
    debian = comparator("Debian:12")
    assert (debian.ecosystem, debian.family) == ("Debian:12", "dpkg")
    assert comparator("Debian:12") is debian
    assert comparator("Ubuntu").family == "dpkg"
    assert [comparator(name).family for name in ("Alpine", "Wolfi", "Red Hat", "Go", "npm")] == [
        "apk",
        "apk",
        "rpm",
        "semver",
        "npm",
    ]
    versions = ["1.0-1", "1.0~rc1-1", "1:0.1-1", "1.0+deb12u1-1", "1.0-1+deb12u1", "0.9-3"]
    assert sorted(versions, key=debian.key) == [
        "0.9-3",
        "1.0~rc1-1",
        "1.0-1",
        "1.0-1+deb12u1",
        "1.0+deb12u1-1",
        "1:0.1-1",
    ]
    assert sort_key("Debian", "1.0") == sort_key("Ubuntu:24.04:LTS", "1.0-0")
    assert sort_key("Debian", "1.0") < sort_key("Debian", "1.0.1")
    assert "Debian" in SUPPORTED_ECOSYSTEMS
    assert is_supported("Rocky Linux:9")


# --- order properties -------------------------------------------------------------------------

_APK_SUFFIX = "(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]{0,2}){0,2}"
STRATEGIES: dict[str, st.SearchStrategy[str]] = {
    "Debian": st.from_regex(r"([0-9]:)?[0-9][0-9a-zA-Z.+~]{0,6}(-[0-9a-z.+~]{1,4})?", fullmatch=True),
    "Alpine": st.from_regex(
        rf"[0-9]{{1,3}}(\.[0-9]{{1,3}}){{0,3}}[a-z]?{_APK_SUFFIX}(-r[0-9]{{1,2}})?",
        fullmatch=True,
    ),
    "Red Hat": st.from_regex(r"([0-9]:)?[0-9a-z.~^_+]{1,8}(-[0-9a-z.~^]{0,5})?", fullmatch=True),
    "PyPI": st.from_regex(
        r"([0-9]!)?[0-9]{1,2}(\.[0-9]{1,2}){0,3}((a|b|rc)[0-9])?(\.post[0-9])?(\.dev[0-9])?(\+[a-z0-9]{1,3})?",
        fullmatch=True,
    ),
    "npm": st.from_regex(
        r"v?(0|[1-9][0-9]?)\.(0|[1-9])\.(0|[1-9])(-(0|[1-9][0-9]?|[a-zA-Z-][a-z0-9-]{0,2})"
        r"(\.(0|[1-9][0-9]?|[a-zA-Z-][a-z0-9-]{0,2})){0,2})?(\+[a-z0-9]{1,3})?",
        fullmatch=True,
    ),
    "Go": st.from_regex(r"v?[0-9]{1,2}(\.[0-9]{1,2}){0,4}([-+]?[0-9a-zA-Z.-]{1,6})?", fullmatch=True),
    "NuGet": st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,4}(-[0-9a-zA-Z.-]{1,6})?", fullmatch=True),
    # Maven: numeric releases with "-" qualifiers. Mixing ".qualifier" and "-qualifier" forms is
    # not transitive in Maven's own ComparableVersion (see test_maven_reference_cycle), so the
    # order property is only claimed where the reference has one.
    "Maven": st.from_regex(
        r"[0-9]{1,2}(\.[0-9]{1,2}){0,3}(-(alpha|beta|a|b|m|rc|cr|snapshot|sp|ga|final|foo)[0-9]{0,2}){0,2}",
        fullmatch=True,
    ),
    "RubyGems": st.from_regex(r"[0-9]{1,2}(\.[0-9a-zA-Z]{1,3}){0,4}(-[0-9a-z]{1,3})?", fullmatch=True),
    "Packagist": st.from_regex(
        r"v?[0-9]{1,2}([._+-]?([0-9]{1,2}|dev|alpha|a|beta|b|RC|rc|pl|p|foo)){0,4}",
        fullmatch=True,
    ),
}


def _check_order(ecosystem: str, versions: list[str]) -> None:
    cmp = functools.partial(compare, ecosystem)
    for a in versions:
        assert cmp(a, a) == 0
    for a, b in itertools.product(versions, repeat=2):
        assert cmp(a, b) == -cmp(b, a), (a, b)
    ordered = sorted(versions, key=functools.cmp_to_key(cmp))
    for i, j in itertools.combinations(range(len(ordered)), 2):
        assert cmp(ordered[i], ordered[j]) <= 0, (ordered[i], ordered[j], ordered)
    key = comparator(ecosystem).key
    for a, b in itertools.product(versions, repeat=2):
        assert (key(a) < key(b)) == (cmp(a, b) < 0)
        assert (key(a) == key(b)) == (cmp(a, b) == 0)


@pytest.mark.parametrize("ecosystem", sorted(STRATEGIES))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_total_order(ecosystem: str, data: st.DataObject) -> None:
    versions = data.draw(st.lists(STRATEGIES[ecosystem], min_size=2, max_size=6), label="versions")
    _check_order(ecosystem, versions)  # asserts antisymmetry, transitivity and key agreement
    assert compare(ecosystem, versions[0], versions[0]) == 0


def _padded_compare(a: list[int], b: list[int]) -> int:
    for x, y in itertools.zip_longest(a, b, fillvalue=0):
        if x != y:
            return -1 if x < y else 1
    return 0


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(st.integers(min_value=-2, max_value=2), max_size=6),
    b=st.lists(st.integers(min_value=-2, max_value=2), max_size=6),
)
def test_padded_key_matches_padded_comparison(a: list[int], b: list[int]) -> None:
    key_a, key_b = padded_key(a, 0), padded_key(b, 0)
    assert (key_a > key_b) - (key_a < key_b) == _padded_compare(a, b)


def test_padded_key_examples() -> None:
    assert padded_key([], 0) == padded_key([0, 0], 0)
    assert padded_key([1, -1], 0) < padded_key([1], 0) < padded_key([1, 0, 1], 0)


def test_maven_reference_cycle() -> None:
    """Maven's ComparableVersion itself orders 1 < 1.sp < 1-a1 < 1 (a StringItem sorts below a
    ListItem, a ListItem starting with a qualifier below the release): we follow the reference,
    cycle included, rather than invent an order Maven does not have."""
    assert compare("Maven", "1", "1.sp") == -1
    assert compare("Maven", "1.sp", "1-a1") == -1
    assert compare("Maven", "1-a1", "1") == -1
