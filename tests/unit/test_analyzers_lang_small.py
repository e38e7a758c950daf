"""Ruby gemspecs, Composer installed.json and .NET deps.json: exact packages, malformed input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.dotnet import DotnetDepsAnalyzer, parse_deps_json
from chalicelib.analyzers.php import ComposerInstalledAnalyzer, parse_installed_json
from chalicelib.analyzers.ruby import RubyGemspecAnalyzer, is_gemspec, parse_gemspec
from chalicelib.models import Package

FIXTURES = Path(__file__).parent.parent / "fixtures" / "analyzers"
GEMS = "usr/local/bundle/specifications"


def _read(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def _triples(packages: list[Package]) -> list[tuple[str, str, str, str, str]]:
    return [(p.name, p.version, p.ecosystem, p.purl, p.path) for p in packages]


# -- Ruby ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (f"{GEMS}/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", True),
        ("specifications/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/gems/rake-13.0.6/rake.gemspec", False),
        ("srv/app/app.gemspec", False),
        (f"{GEMS}/rake-13.0.6.gemspec.bak", False),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/x/json.gemspec", False),
    ],
)
def test_ruby_wants_installed_specs_only(path: str, wanted: bool) -> None:
    assert RubyGemspecAnalyzer().wants(path) is wanted
    assert is_gemspec(path) is wanted


@pytest.mark.parametrize(
    ("fixture", "name", "version"),
    [
        ("ruby/rake-13.0.6.gemspec", "rake", "13.0.6"),
        ("ruby/nokogiri-1.13.6-x86_64-linux.gemspec", "nokogiri", "1.13.6"),
        ("ruby/json-1.8.1.gemspec", "json", "1.8.1"),
    ],
)
def test_ruby_gemspec_exact(fixture: str, name: str, version: str) -> None:
    path = f"{GEMS}/{Path(fixture).name}"
    result = RubyGemspecAnalyzer().analyze(path, _read(fixture))
    assert _triples(result.packages) == [(name, version, "RubyGems", f"pkg:gem/{name}@{version}", path)]
    # only rake's spec has a `s.licenses = [...]` line
    assert result.packages[0].licenses == (["MIT"] if name == "rake" else [])


@pytest.mark.parametrize(
    ("line", "licenses"),
    [
        ('  s.licenses = ["MIT".freeze, "Ruby".freeze]\n', ["MIT", "Ruby"]),
        ("  spec.license = 'Apache-2.0'\n", ["Apache-2.0"]),
        ("  s.licenses = [%q{BSD-2-Clause}]\n", ["BSD-2-Clause"]),
        ('  s.licenses = ["".freeze]\n', []),
        ("  s.licenses = LICENSES\n", []),
    ],
)
def test_ruby_gemspec_licenses(line: str, licenses: list[str]) -> None:
    content = f's.name = "a"\ns.version = "1.0"\n{line}'.encode()
    (package,) = RubyGemspecAnalyzer().analyze(f"{GEMS}/a-1.0.gemspec", content).packages
    assert package.licenses == licenses


def test_ruby_gemspec_not_evaluated_and_single_quotes() -> None:
    content = (
        b"Gem::Specification.new do |spec|\n  spec.name = 'x-y'\n"
        b"  spec.version = Gem::Version.new('2.0.0.pre1')\nend\n"
    )
    assert parse_gemspec(content) == ("x-y", "2.0.0.pre1")
    # `required_rubygems_version` / `rubygems_version` are not the gem's version
    assert parse_gemspec(b's.name = "a"\n  s.rubygems_version = "3.4.20".freeze\n') is None


def test_ruby_broken_gemspec_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = RubyGemspecAnalyzer().analyze(f"{GEMS}/broken.gemspec", _read("ruby/broken.gemspec"))
    assert result.packages == []
    assert "no name and version" in caplog.text
    assert RubyGemspecAnalyzer().analyze(f"{GEMS}/bin.gemspec", b"\xff\xfe\x00garbage").packages == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_ruby_never_raises(content: bytes) -> None:
    result = parse_gemspec(content)
    assert result is None or all(part and "\n" not in part for part in result)


# -- PHP -----------------------------------------------------------------------------------------

COMPOSER = "var/www/html/vendor/composer/installed.json"


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (COMPOSER, True),
        ("vendor/composer/installed.json", True),
        ("var/www/html/composer.lock", False),
        ("var/www/html/vendor/composer/installed.php", False),
        ("var/www/html/myvendor/composer/installed.json", False),
    ],
)
def test_php_wants(path: str, wanted: bool) -> None:
    assert ComposerInstalledAnalyzer().wants(path) is wanted


def test_php_composer2_exact() -> None:
    result = ComposerInstalledAnalyzer().analyze(COMPOSER, _read("php/installed-v2.json"))
    assert _triples(result.packages) == [
        ("guzzlehttp/psr7", "1.8.2", "Packagist", "pkg:composer/guzzlehttp/psr7@1.8.2", COMPOSER),
        ("symfony/http-foundation", "v5.4.0", "Packagist",
         "pkg:composer/symfony/http-foundation@v5.4.0", COMPOSER),
        ("psr/http-message", "1.0.1", "Packagist", "pkg:composer/psr/http-message@1.0.1", COMPOSER),
    ]  # fmt: skip
    assert [p.licenses for p in result.packages] == [["MIT"], [], []]


def test_php_license_string_or_list() -> None:
    content = (
        b'[{"name": "a/a", "version": "1", "license": "MIT"},'
        b' {"name": "b/b", "version": "2", "license": ["LGPL-2.1-only", "GPL-3.0-or-later"]},'
        b' {"name": "c/c", "version": "3", "license": [" ", null, "proprietary"]}]'
    )
    packages = ComposerInstalledAnalyzer().analyze(COMPOSER, content).packages
    assert [(p.name, p.licenses) for p in packages] == [
        ("a/a", ["MIT"]),
        ("b/b", ["LGPL-2.1-only", "GPL-3.0-or-later"]),
        ("c/c", ["proprietary"]),
    ]


def test_php_composer1_exact() -> None:
    result = ComposerInstalledAnalyzer().analyze(COMPOSER, _read("php/installed-v1.json"))
    assert [(p.name, p.version, p.purl) for p in result.packages] == [
        ("monolog/monolog", "1.25.1", "pkg:composer/monolog/monolog@1.25.1"),
        ("psr/log", "1.1.0", "pkg:composer/psr/log@1.1.0"),
    ]


def test_php_malformed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert ComposerInstalledAnalyzer().analyze(COMPOSER, b"{not json").packages == []
        assert ComposerInstalledAnalyzer().analyze(COMPOSER, b'{"packages": {}}').packages == []
        odd = (
            b'[{"name": "noslash", "version": "1.0"}, 7, {"name": "a/b", "version": 3},'
            b' {"name": "c/d", "version": "2"}]'
        )
        assert [p.name for p in ComposerInstalledAnalyzer().analyze(COMPOSER, odd).packages] == ["c/d"]
    assert "not a Composer installed.json" in caplog.text
    assert "invalid Composer name 'noslash'" in caplog.text
    assert parse_installed_json(b"[]") == []


# -- .NET ----------------------------------------------------------------------------------------

DEPS = "app/app.deps.json"


def test_dotnet_wants() -> None:
    analyzer = DotnetDepsAnalyzer()
    assert analyzer.wants(DEPS) and analyzer.wants(
        "usr/share/dotnet/shared/x/8.0.0/Microsoft.NETCore.App.deps.json"
    )
    assert not analyzer.wants("app/app.runtimeconfig.json") and not analyzer.wants("app/deps.json.bak")


def test_dotnet_exact() -> None:
    result = DotnetDepsAnalyzer().analyze(DEPS, _read("dotnet/app.deps.json"))
    assert _triples(result.packages) == [
        ("Newtonsoft.Json", "12.0.1", "NuGet", "pkg:nuget/Newtonsoft.Json@12.0.1", DEPS),
        ("System.Text.Encodings.Web", "4.7.1", "NuGet", "pkg:nuget/System.Text.Encodings.Web@4.7.1", DEPS),
    ]


def test_dotnet_malformed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert DotnetDepsAnalyzer().analyze(DEPS, b"[1, 2]").packages == []
        assert DotnetDepsAnalyzer().analyze(DEPS, b"\xff\xfe").packages == []
    assert caplog.text.count("not a .NET deps.json") == 2
    odd = b'{"libraries": {"NoVersion": {"type": "package"}, "A/1.0": "x", "B/2.0": {"type": "package"}}}'
    assert parse_deps_json(odd) == [("B", "2.0")]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.text(max_size=8) | st.integers(),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=20,
    )
)
def test_json_parsers_never_raise(document: object) -> None:
    import json

    content = json.dumps(document).encode()
    assert parse_installed_json(content) is None or isinstance(parse_installed_json(content), list)
    assert parse_deps_json(content) is None or isinstance(parse_deps_json(content), list)
