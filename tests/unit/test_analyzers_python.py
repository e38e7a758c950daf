"""Python distributions from dist-info METADATA, egg-info PKG-INFO and egg-info files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.python import PythonPackageAnalyzer, header_block
from chalicelib.models import Package

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers" / "python"
DIST = "usr/lib/python3/dist-packages"
SITE = "usr/local/lib/python3.11/site-packages"

#: image path -> fixture file (fixtures are stored flat: `*.egg-info/` dirs are git-ignored)
IMAGE = {
    f"{SITE}/requests-2.34.2.dist-info/METADATA": "requests-2.34.2.METADATA",
    f"{SITE}/requests-2.34.2.dist-info/RECORD": "requests-2.34.2.RECORD",
    f"{SITE}/broken-0.1.dist-info/METADATA": "broken-0.1.METADATA",
    f"{DIST}/PyYAML-6.0.dist-info/METADATA": "PyYAML-6.0.METADATA",
    f"{DIST}/lazr.uri-1.0.6.egg-info/PKG-INFO": "lazr.uri-1.0.6.PKG-INFO",
    f"{DIST}/six-1.16.0.egg-info/PKG-INFO": "six-1.16.0.PKG-INFO",
    f"{DIST}/distro_info-1.5+deb12u1.egg-info": "distro_info-1.5+deb12u1.egg-info",
}


@pytest.fixture
def analyzer() -> PythonPackageAnalyzer:
    return PythonPackageAnalyzer()


def _scan(analyzer: PythonPackageAnalyzer) -> list[Package]:
    found: list[Package] = []
    for path, fixture in sorted(IMAGE.items()):
        if analyzer.wants(path):
            found.extend(analyzer.analyze(path, (FIXTURES / fixture).read_bytes()).packages)
    return analyzer.finalize(found, None)


def test_image_tree(analyzer: PythonPackageAnalyzer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="chalicelib.analyzers.python"):
        packages = _scan(analyzer)
    assert [(p.name, p.version, p.purl, p.path) for p in packages] == [
        ("PyYAML", "6.0", "pkg:pypi/pyyaml@6.0", f"{DIST}/PyYAML-6.0.dist-info/METADATA"),
        (
            "distro-info",
            "1.5+deb12u1",
            "pkg:pypi/distro-info@1.5%2Bdeb12u1",
            f"{DIST}/distro_info-1.5+deb12u1.egg-info",
        ),
        ("lazr.uri", "1.0.6", "pkg:pypi/lazr-uri@1.0.6", f"{DIST}/lazr.uri-1.0.6.egg-info/PKG-INFO"),
        ("six", "1.16.0", "pkg:pypi/six@1.16.0", f"{DIST}/six-1.16.0.egg-info/PKG-INFO"),
        ("requests", "2.34.2", "pkg:pypi/requests@2.34.2", f"{SITE}/requests-2.34.2.dist-info/METADATA"),
    ]
    assert {(p.ecosystem, p.source_name, p.source_version, p.arch) for p in packages} == {
        ("PyPI", None, None, None)
    }
    assert [r.getMessage() for r in caplog.records] == [
        f"{SITE}/broken-0.1.dist-info/METADATA: no Name/Version in Python metadata; skipped"
    ]
    # the short `License` field of each (lazr.uri's free text is kept as written)
    assert [(p.name, p.licenses) for p in packages] == [
        ("PyYAML", ["MIT"]),
        ("distro-info", ["ISC"]),
        ("lazr.uri", ["LGPL v3"]),
        ("six", ["MIT"]),
        ("requests", ["Apache-2.0"]),
    ]


@pytest.mark.parametrize(
    ("fixture", "licenses"),
    [
        # metadata 2.4 `License-Expression`, kept as one expression
        ("cryptography-50.0.2.METADATA", ["Apache-2.0 OR BSD-3-Clause"]),
        # `License` holds the whole license text: the classifier decides
        ("readchar-4.2.2.METADATA", ["MIT"]),
        # `License: UNKNOWN` (setuptools' "not given"): the classifier decides
        ("isoduration-20.11.0.METADATA", ["ISC"]),
        # no `License` at all: `BSD License` is taken for BSD-3-Clause, as Trivy does
        ("itsdangerous-2.2.0.METADATA", ["BSD-3-Clause"]),
    ],
)
def test_license_order_of_trust(analyzer: PythonPackageAnalyzer, fixture: str, licenses: list[str]) -> None:
    (package,) = analyzer.analyze(f"{SITE}/x.dist-info/METADATA", (FIXTURES / fixture).read_bytes()).packages
    assert package.licenses == licenses


def test_license_field_bound_and_classifier_fallbacks(analyzer: PythonPackageAnalyzer) -> None:
    def licenses(headers: str) -> list[str]:
        content = f"Name: a\nVersion: 1\n{headers}".encode()
        return analyzer.analyze("a-1.dist-info/METADATA", content).packages[0].licenses

    assert licenses("License: " + "x" * 99 + "\n") == ["x" * 99]
    assert licenses("License: " + "x" * 100 + "\nClassifier: License :: OSI Approved :: MIT License\n") == [
        "MIT"
    ]
    assert licenses("License-Expression: NOASSERTION\nLicense: Apache 2.0\n") == ["Apache-2.0"]
    assert licenses(
        "Classifier: License :: OSI Approved\n"
        "Classifier: License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)\n"
        "Classifier: Programming Language :: Python\n"
        "Classifier: License :: OSI Approved :: Zope Public License\n"
        "Classifier: License :: Other/Proprietary License\n"
    ) == ["GPL-2.0-or-later", "Zope Public License", "Other/Proprietary License"]
    assert licenses("Summary: nothing declared\n") == []


def test_body_is_never_parsed(analyzer: PythonPackageAnalyzer) -> None:
    """A multi-megabyte README body with header-looking lines changes nothing."""
    head = (FIXTURES / "PyYAML-6.0.METADATA").read_bytes().split(b"\n\n", 1)[0]
    body = b"Name: impostor\nVersion: 9.9.9\n" + b"x" * 4_000_000
    packages = analyzer.analyze("a/PyYAML-6.0.dist-info/METADATA", head + b"\n\n" + body).packages
    assert [(p.name, p.version) for p in packages] == [("PyYAML", "6.0")]


def test_header_block_stops_at_first_blank_line() -> None:
    assert header_block(b"Name: a\r\nVersion: 1\r\n\r\nName: b\n") == "Name: a\r\nVersion: 1"
    assert header_block(b"Name: a\nVersion: 1") == "Name: a\nVersion: 1"
    assert header_block(b"\n\nName: a") == ""


def test_missing_version_or_junk_is_skipped(analyzer: PythonPackageAnalyzer) -> None:
    assert analyzer.analyze("x.dist-info/METADATA", b"Name: a\n").packages == []
    assert analyzer.analyze("x.dist-info/METADATA", b"Version: 1\n").packages == []
    assert analyzer.analyze("x.dist-info/METADATA", bytes(range(256))).packages == []
    assert analyzer.analyze("x.dist-info/METADATA", b"").packages == []


def test_invalid_name_is_skipped(analyzer: PythonPackageAnalyzer) -> None:
    assert analyzer.analyze("x.dist-info/METADATA", b"Name: not valid!\nVersion: 1\n").packages == []


def test_wants(analyzer: PythonPackageAnalyzer) -> None:
    assert analyzer.wants("foo-1.0.dist-info/METADATA")
    assert analyzer.wants("opt/venv/lib/python3.12/site-packages/foo-1.0.dist-info/METADATA")
    assert analyzer.wants("usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO")
    assert analyzer.wants("usr/lib/python3/dist-packages/foo-1.0.egg-info")
    assert not analyzer.wants("usr/lib/python3/dist-packages/foo-1.0.dist-info/RECORD")
    assert not analyzer.wants("usr/lib/python3/dist-packages/foo.egg-info/top_level.txt")
    assert not analyzer.wants("src/foo-1.0/PKG-INFO")  # an sdist, not an installed package
    assert not analyzer.wants("usr/share/doc/METADATA")


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=2000))
def test_fuzz_bytes_never_raise(content: bytes) -> None:
    result = PythonPackageAnalyzer().analyze("x.dist-info/METADATA", content)
    assert all(p.ecosystem == "PyPI" and p.purl.startswith("pkg:pypi/") for p in result.packages)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=30), version=st.text(min_size=1, max_size=20))
def test_fuzz_header_values_never_raise(name: str, version: str) -> None:
    content = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(errors="surrogatepass")
    result = PythonPackageAnalyzer().analyze("x.dist-info/METADATA", content)
    assert len(result.packages) <= 1
