"""npm packages from package.json files where packages are installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.npm import NpmPackageAnalyzer, is_installed_manifest, parse_manifest
from chalicelib.models import Package

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers" / "npm"
GLOBAL = "usr/lib/node_modules"
APP = "srv/app"

#: image path -> fixture file (stored flat so that no ignore rule for node_modules can drop them)
IMAGE = {
    f"{GLOBAL}/npm/package.json": "npm.package.json",
    f"{GLOBAL}/npm/node_modules/abbrev/package.json": "abbrev.package.json",
    f"{GLOBAL}/npm/node_modules/@sigstore/bundle/package.json": "sigstore-bundle.package.json",
    f"{GLOBAL}/npm/node_modules/glob/dist/esm/package.json": "glob-dist-esm.package.json",
    f"{APP}/package.json": "app-root.package.json",
    f"{APP}/node_modules/broken/package.json": "broken.package.json",
    f"{APP}/node_modules/array/package.json": "array.package.json",
    f"{APP}/node_modules/noversion/package.json": "noversion.package.json",
    f"{APP}/node_modules/resolve/package.json": "resolve.package.json",
    f"{APP}/node_modules/resolve/test/resolver/baz/package.json": "resolve-test-baz.package.json",
    f"{APP}/node_modules/.pnpm/@types+node@20.11.5/node_modules/@types/node/package.json": (
        "types-node-bom.package.json"
    ),
}


@pytest.fixture
def analyzer() -> NpmPackageAnalyzer:
    return NpmPackageAnalyzer()


def _scan(analyzer: NpmPackageAnalyzer) -> tuple[list[str], list[Package]]:
    wanted: list[str] = []
    found: list[Package] = []
    for path, fixture in sorted(IMAGE.items()):
        if analyzer.wants(path):
            wanted.append(path)
            found.extend(analyzer.analyze(path, (FIXTURES / fixture).read_bytes()).packages)
    return wanted, analyzer.finalize(found, None)


def test_image_tree(analyzer: NpmPackageAnalyzer) -> None:
    wanted, packages = _scan(analyzer)
    assert wanted == [
        f"{APP}/node_modules/.pnpm/@types+node@20.11.5/node_modules/@types/node/package.json",
        f"{APP}/node_modules/array/package.json",
        f"{APP}/node_modules/broken/package.json",
        f"{APP}/node_modules/noversion/package.json",
        f"{APP}/node_modules/resolve/package.json",
        f"{GLOBAL}/npm/node_modules/@sigstore/bundle/package.json",
        f"{GLOBAL}/npm/node_modules/abbrev/package.json",
        f"{GLOBAL}/npm/package.json",
    ]
    assert [(p.name, p.version, p.purl, p.path) for p in packages] == [
        (
            "@types/node",
            "20.11.5",
            "pkg:npm/%40types/node@20.11.5",
            f"{APP}/node_modules/.pnpm/@types+node@20.11.5/node_modules/@types/node/package.json",
        ),
        ("resolve", "1.22.8", "pkg:npm/resolve@1.22.8", f"{APP}/node_modules/resolve/package.json"),
        (
            "@sigstore/bundle",
            "4.0.0",
            "pkg:npm/%40sigstore/bundle@4.0.0",
            f"{GLOBAL}/npm/node_modules/@sigstore/bundle/package.json",
        ),
        ("abbrev", "4.0.0", "pkg:npm/abbrev@4.0.0", f"{GLOBAL}/npm/node_modules/abbrev/package.json"),
        ("npm", "11.19.1", "pkg:npm/npm@11.19.1", f"{GLOBAL}/npm/package.json"),
    ]
    assert {(p.ecosystem, p.source_name, p.source_version) for p in packages} == {("npm", None, None)}
    # `license` at the top level only (npm's package.json has a `licenses` *script*)
    assert [(p.name, p.licenses) for p in packages] == [
        ("@types/node", ["MIT"]),
        ("resolve", ["MIT"]),
        ("@sigstore/bundle", ["Apache-2.0"]),
        ("abbrev", ["ISC"]),
        ("npm", ["Artistic-2.0"]),
    ]


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("node_modules/a/package.json", True),
        ("app/node_modules/@s/a/package.json", True),
        ("app/node_modules/a/node_modules/b/package.json", True),
        ("app/package.json", False),
        ("package.json", False),
        ("app/node_modules/package.json", False),
        ("app/node_modules/@s/package.json", False),
        ("app/node_modules/a/lib/package.json", False),
        ("app/node_modules/@s/a/lib/package.json", False),
        ("app/node_modules/a/package.json.bak", False),
        ("app/node_modules/a/bower.json", False),
    ],
)
def test_wants(analyzer: NpmPackageAnalyzer, path: str, wanted: bool) -> None:
    assert analyzer.wants(path) is wanted
    assert is_installed_manifest(path) is wanted


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"name": "a", "version": "1.0.0"}', ("a", "1.0.0", [])),
        (b'{"name": " a ", "version": " 1.0.0 "}', ("a", "1.0.0", [])),
        (
            b'{"name": "a", "version": "1", "license": " (MIT OR Apache-2.0) "}',
            ("a", "1", ["(MIT OR Apache-2.0)"]),
        ),
        (b'{"name": "a", "version": "1", "license": {"type": "ISC", "url": "x"}}', ("a", "1", ["ISC"])),
        (
            b'{"name": "a", "version": "1", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}, "0BSD"]}',
            ("a", "1", ["MIT", "Apache-2.0", "0BSD"]),
        ),
        (b'{"name": "a", "version": "1", "license": "UNKNOWN", "licenses": ["MIT"]}', ("a", "1", ["MIT"])),
        (b'{"name": "a", "version": "1", "license": ["MIT", "", 7]}', ("a", "1", ["MIT"])),
        (b'{"name": "a", "version": "1", "license": 3}', ("a", "1", [])),
        (b'{"name": "a", "version": 1}', None),
        (b'{"name": "", "version": "1.0.0"}', None),
        (b'{"name": ["a"], "version": "1.0.0"}', None),
        (b'"a string"', None),
        (b"null", None),
        (b"\xff\xfe\x00", None),
        (b"[" * 100_000, None),
    ],
)
def test_parse_manifest(content: bytes, expected: tuple[str, str, list[str]] | None) -> None:
    assert parse_manifest(content) == expected


@pytest.mark.parametrize("name", ["@scope", "@/x", "@scope/", "a/b", "@s/a/b", "/"])
def test_names_a_purl_cannot_carry_are_skipped(analyzer: NpmPackageAnalyzer, name: str) -> None:
    content = json.dumps({"name": name, "version": "1.0.0"}).encode()
    assert analyzer.analyze("node_modules/a/package.json", content).packages == []


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=1000))
def test_fuzz_bytes_never_raise(content: bytes) -> None:
    result = NpmPackageAnalyzer().analyze("node_modules/a/package.json", content)
    assert result.packages == []  # random bytes are (almost surely) not a JSON object


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=30), version=st.text(min_size=1, max_size=20))
def test_fuzz_names_never_raise(name: str, version: str) -> None:
    content = json.dumps({"name": name, "version": version}).encode()
    result = NpmPackageAnalyzer().analyze("node_modules/a/package.json", content)
    assert all(p.purl.startswith("pkg:npm/") for p in result.packages)
