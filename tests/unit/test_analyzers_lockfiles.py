"""Lockfiles (filesystem scans only): package-lock v1/v2/v3, yarn classic and Berry, pnpm 5/6/9,
Cargo.lock. The npm fixtures were written by npm 11, yarn 1.22.22, yarn 4.5.3, pnpm 8.15.9 and
9.15.0 for the same three dependencies (lodash 4.17.15, minimist 1.2.5, @types/node 20.11.0)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers import default_analyzers, lockfile_analyzers
from chalicelib.analyzers.cargo_lock import CargoLockAnalyzer, parse_cargo_lock
from chalicelib.analyzers.npm_lock import NpmLockAnalyzer, parse_package_lock
from chalicelib.analyzers.pnpm_lock import PnpmLockAnalyzer, parse_key, parse_pnpm_lock
from chalicelib.analyzers.yarn_lock import YarnLockAnalyzer, parse_yarn_lock

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers" / "lockfiles"

#: what every npm fixture resolves to, in lockfile order (npm/yarn/pnpm all sort by name)
NPM_SET = [
    ("@types/node", "20.11.0", "pkg:npm/%40types/node@20.11.0"),
    ("lodash", "4.17.15", "pkg:npm/lodash@4.17.15"),
    ("minimist", "1.2.5", "pkg:npm/minimist@1.2.5"),
    ("undici-types", "5.26.5", "pkg:npm/undici-types@5.26.5"),
]


def _read(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


@pytest.mark.parametrize(
    ("analyzer", "fixture", "path"),
    [
        (NpmLockAnalyzer(), "npm-v1/package-lock.json", "src/package-lock.json"),
        (NpmLockAnalyzer(), "npm-v2/package-lock.json", "package-lock.json"),
        (NpmLockAnalyzer(), "npm-v3/package-lock.json", "src/app/package-lock.json"),
        (YarnLockAnalyzer(), "yarn-v1/yarn.lock", "src/yarn.lock"),
        (YarnLockAnalyzer(), "yarn-berry/yarn.lock", "yarn.lock"),
        (PnpmLockAnalyzer(), "pnpm-v6/pnpm-lock.yaml", "src/pnpm-lock.yaml"),
        (PnpmLockAnalyzer(), "pnpm-v9/pnpm-lock.yaml", "pnpm-lock.yaml"),
    ],
)
def test_real_npm_lockfiles_exact(analyzer: object, fixture: str, path: str) -> None:
    assert isinstance(analyzer, NpmLockAnalyzer | YarnLockAnalyzer | PnpmLockAnalyzer)
    assert analyzer.wants(path)
    packages = analyzer.analyze(path, _read(fixture)).packages
    assert [(p.name, p.version, p.purl) for p in packages] == NPM_SET
    assert {(p.ecosystem, p.path) for p in packages} == {("npm", path)}
    # package-lock v2/v3 entries copy each package's `license`; v1, yarn and pnpm carry none
    with_licenses = fixture in ("npm-v2/package-lock.json", "npm-v3/package-lock.json")
    assert [p.licenses for p in packages] == [["MIT"] if with_licenses else []] * 4


def test_wants_skips_lockfiles_inside_node_modules_and_hidden_lockfile() -> None:
    for analyzer, name in ((NpmLockAnalyzer(), "package-lock.json"), (YarnLockAnalyzer(), "yarn.lock"),
                           (PnpmLockAnalyzer(), "pnpm-lock.yaml")):  # fmt: skip
        assert not analyzer.wants(f"app/node_modules/dep/{name}")
        assert not analyzer.wants(f"app/{name}.orig")
    assert not NpmLockAnalyzer().wants("app/node_modules/.package-lock.json")


def test_package_lock_v3_skips_root_links_workspaces_and_locations() -> None:
    content = b"""{"lockfileVersion": 3, "packages": {
      "": {"name": "root", "version": "1.0.0"},
      "node_modules/ws-a": {"resolved": "packages/a", "link": true},
      "packages/a": {"name": "ws-a", "version": "0.0.1"},
      "node_modules/lodash": {"version": "4.17.15", "dev": true},
      "node_modules/a/node_modules/lodash": {"version": "4.17.15"},
      "node_modules/a/node_modules/@scope/b": {"version": "2.0.0"},
      "node_modules/old": {"name": "lodash", "version": "3.10.1"},
      "node_modules/local": {"version": "file:../local"},
      "node_modules/gitdep": {"version": "git+ssh://git@github.com/x/y.git#abc"},
      "node_modules/bad": "x"
    }}"""
    assert parse_package_lock(content) == [
        ("lodash", "4.17.15"), ("lodash", "4.17.15"), ("@scope/b", "2.0.0"), ("lodash", "3.10.1"),
    ]  # fmt: skip
    packages = NpmLockAnalyzer().analyze("package-lock.json", content).packages
    assert [(p.name, p.version) for p in packages] == [
        ("lodash", "4.17.15"),
        ("@scope/b", "2.0.0"),
        ("lodash", "3.10.1"),
    ]


def test_package_lock_licenses_first_entry_of_a_pair_wins() -> None:
    content = b"""{"lockfileVersion": 3, "packages": {
      "node_modules/a": {"version": "1.0.0", "license": "(MIT OR Apache-2.0)"},
      "node_modules/b/node_modules/a": {"version": "1.0.0", "license": "ISC"},
      "node_modules/c": {"version": "2.0.0", "licenses": [{"type": "BSD-3-Clause"}]},
      "node_modules/d": {"version": "3.0.0", "license": "UNKNOWN"}
    }}"""
    packages = NpmLockAnalyzer().analyze("package-lock.json", content).packages
    assert [(p.name, p.licenses) for p in packages] == [
        ("a", ["(MIT OR Apache-2.0)"]),
        ("c", ["BSD-3-Clause"]),
        ("d", []),
    ]


def test_package_lock_v1_nested_and_alias() -> None:
    content = b"""{"lockfileVersion": 1, "dependencies": {
      "a": {"version": "1.0.0", "dependencies": {"minimist": {"version": "0.0.8"}}},
      "old-lodash": {"version": "npm:lodash@3.10.1"},
      "local": {"version": "file:local"}
    }}"""
    assert parse_package_lock(content) == [("a", "1.0.0"), ("minimist", "0.0.8"), ("lodash", "3.10.1")]


def test_yarn_classic_specs() -> None:
    content = b"""# yarn lockfile v1


"@babel/core@^7.0.0", "@babel/core@^7.23.0":
  version "7.23.2"
  resolved "https://registry.yarnpkg.com/@babel/core/-/core-7.23.2.tgz"

lodash@^4.17.0, lodash@^4.17.15:
  version "4.17.21"

old-lodash@npm:lodash@3.10.1:
  version "3.10.1"

local@file:../local:
  version "0.0.1"

"gitdep@https://github.com/x/y.git#abc":
  version "1.0.0"
"""
    assert parse_yarn_lock(content) == [
        ("@babel/core", "7.23.2"),
        ("lodash", "4.17.21"),
        ("lodash", "3.10.1"),
    ]


def test_yarn_berry_skips_workspace_and_patch() -> None:
    content = b"""__metadata:
  version: 8

"app@workspace:.":
  version: 0.0.0-use.local
  resolution: "app@workspace:."

"resolve@patch:resolve@npm%3A^1.1.7#~builtin<compat/resolve>":
  version: 1.22.8
  resolution: "resolve@patch:resolve@npm%3A1.22.8#~builtin<compat/resolve>::version=1.22.8"

"resolve@npm:^1.1.7":
  version: 1.22.8
  resolution: "resolve@npm:1.22.8"

"x@npm:1.10":
  version: 1.10
  resolution: "x@npm:1.10"
"""
    assert parse_yarn_lock(content) == [("resolve", "1.22.8"), ("x", "1.10")]


@pytest.mark.parametrize(
    ("key", "lockfile_version", "expected"),
    [
        ("/lodash/4.17.15", "5.4", ("lodash", "4.17.15")),
        ("/@types/node/20.11.0", "5.3", ("@types/node", "20.11.0")),
        ("/react-dom/18.2.0_react@18.2.0", "5.4", ("react-dom", "18.2.0")),
        ("/lodash@4.17.15", "6.0", ("lodash", "4.17.15")),
        ("/@types/node@20.11.0", "6.0", ("@types/node", "20.11.0")),
        ("/react-dom@18.2.0(react@18.2.0)", "6.0", ("react-dom", "18.2.0")),
        ("@types/node@20.11.0", "9.0", ("@types/node", "20.11.0")),
        ("lodash", "9.0", None),
        ("/lodash", "5.4", None),
    ],
)
def test_pnpm_keys(key: str, lockfile_version: str, expected: tuple[str, str] | None) -> None:
    assert parse_key(key, lockfile_version) == expected


def test_pnpm_v5_and_named_entries() -> None:
    content = b"""lockfileVersion: 5.4
packages:
  /lodash/4.17.15:
    resolution: {integrity: sha512-x}
    dev: false
  /react-dom/18.2.0_react@18.2.0:
    resolution: {integrity: sha512-y}
  github.com/x/y/abc:
    resolution: {tarball: https://codeload.github.com/x/y/tar.gz/abc}
    name: y
    version: 1.0.0
  file:local:
    resolution: {directory: local, type: directory}
    name: local
    version: file:local
"""
    assert parse_pnpm_lock(content) == [("lodash", "4.17.15"), ("react-dom", "18.2.0"), ("y", "1.0.0")]


def test_cargo_lock_exact_skips_workspace_crates() -> None:
    packages = CargoLockAnalyzer().analyze("src/Cargo.lock", _read("Cargo.lock")).packages
    assert [(p.name, p.version, p.ecosystem, p.purl, p.path) for p in packages] == [
        ("itoa", "1.0.9", "crates.io", "pkg:cargo/itoa@1.0.9", "src/Cargo.lock"),
        ("smallvec", "1.6.0", "crates.io", "pkg:cargo/smallvec@1.6.0", "src/Cargo.lock"),
    ]
    assert CargoLockAnalyzer().wants("Cargo.lock") and not CargoLockAnalyzer().wants("src/Cargo.lock.bak")


@pytest.mark.parametrize(
    ("analyzer", "path", "content", "message"),
    [
        (NpmLockAnalyzer(), "package-lock.json", b"{broken", "not a package-lock.json"),
        (NpmLockAnalyzer(), "package-lock.json", b'{"lockfileVersion": 3}', "not a package-lock.json"),
        (YarnLockAnalyzer(), "yarn.lock", b"__metadata:\n  version: [\n", "not a readable yarn.lock"),
        (YarnLockAnalyzer(), "yarn.lock", b"\xff\xfe\xfa", "not a readable yarn.lock"),
        (PnpmLockAnalyzer(), "pnpm-lock.yaml", b"packages: {a: b}\n", "not a pnpm-lock.yaml"),
        (
            PnpmLockAnalyzer(),
            "pnpm-lock.yaml",
            b"lockfileVersion: '9.0'\npackages: [\n",
            "not a pnpm-lock.yaml",
        ),
        (CargoLockAnalyzer(), "Cargo.lock", b"[[package]\nname=", "not a valid Cargo.lock"),
        (CargoLockAnalyzer(), "Cargo.lock", b"package = 3\n", "not a valid Cargo.lock"),
    ],
)
def test_malformed_lockfiles_warn(
    analyzer: object, path: str, content: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(analyzer, NpmLockAnalyzer | YarnLockAnalyzer | PnpmLockAnalyzer | CargoLockAnalyzer)
    with caplog.at_level(logging.WARNING):
        assert analyzer.analyze(path, content).packages == []
    assert message in caplog.text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_lockfile_parsers_never_raise(content: bytes) -> None:
    for parse in (parse_package_lock, parse_yarn_lock, parse_pnpm_lock, parse_cargo_lock):
        result = parse(content)
        assert result is None or all(isinstance(n, str) and isinstance(v, str) for n, v in result)


def test_lockfile_analyzers_only_for_filesystem_sources() -> None:
    image_names = [a.name for a in default_analyzers()]
    dir_names = [a.name for a in default_analyzers(filesystem=True)]
    locks = [a.name for a in lockfile_analyzers()]
    assert locks == ["npm-lock", "yarn-lock", "pnpm-lock", "cargo-lock"]
    assert not set(locks) & set(image_names)
    assert dir_names == image_names + locks
