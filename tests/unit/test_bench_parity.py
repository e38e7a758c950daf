"""bench/bench_parity.py's pure part: how Syft's and Lifeguard's spellings are made comparable,
and how differences are counted and explained (the benchmark itself needs Syft and network)."""

from __future__ import annotations

from bench.bench_parity import compare, explain, lifeguard_key, syft_key


def test_syft_key_normalises_python_maven_and_go() -> None:
    assert syft_key({"type": "python", "name": "PyYAML", "version": "6.0"}) == ("python", "pyyaml", "6.0")
    assert syft_key({"type": "python", "name": "lazr.uri", "version": "1.0.6"}) == (
        "python",
        "lazr-uri",
        "1.0.6",
    )
    jar = {
        "type": "java-archive",
        "name": "slf4j-api",
        "version": "1.7.32",
        "purl": "pkg:maven/org.slf4j/slf4j-api@1.7.32?type=jar",
    }
    assert syft_key(jar) == ("java-archive", "org.slf4j:slf4j-api", "1.7.32")
    assert syft_key({"type": "go-module", "name": "stdlib", "version": "go1.19.8"}) == (
        "go-module",
        "stdlib",
        "1.19.8",
    )
    assert syft_key({"type": "go-module", "name": "golang.org/x/sys", "version": "v0.47.0"}) == (
        "go-module",
        "golang.org/x/sys",
        "0.47.0",
    )
    assert syft_key({"type": "binary", "name": "bash", "version": "5.2.15"}) is None


def test_lifeguard_key_maps_ecosystems_to_syft_types() -> None:
    assert lifeguard_key({"ecosystem": "Debian:12", "name": "bash", "version": "5.2.15-2+b2"}) == (
        "deb",
        "bash",
        "5.2.15-2+b2",
    )
    assert lifeguard_key({"ecosystem": "Rocky Linux:9", "name": "bash", "version": "5.1.8-6.el9"}) == (
        "rpm",
        "bash",
        "5.1.8-6.el9",
    )
    assert lifeguard_key({"ecosystem": "PyPI", "name": "shfmt_py", "version": "4.2.0"}) == (
        "python",
        "shfmt-py",
        "4.2.0",
    )
    assert lifeguard_key({"ecosystem": "Go", "name": "stdlib", "version": "1.19.8"}) == (
        "go-module",
        "stdlib",
        "1.19.8",
    )
    assert lifeguard_key({"ecosystem": "crates.io", "name": "x", "version": "1"}) is None


def test_compare_counts_with_multiplicity() -> None:
    std = ("go-module", "stdlib", "1.19.8")
    devel = ("go-module", "github.com/tianon/gosu", "(devel)")
    guessed = ("go-module", "github.com/docker/distribution/cmd/registry", "2.8.2+ds1")
    unknown = ("go-module", "example.com/m", "1.0.0")
    result = compare([std, std, devel, guessed, unknown], [std, std, std])["go-module"]
    assert (result.both.total(), result.only_syft.total(), result.only_lifeguard.total()) == (2, 3, 1)
    assert result.recall == 2 / 5
    assert result.precision == 2 / 3
    assert explain(devel, True) is None
    assert explain(std, False) is None
    assert result.unexplained() == 4  # three only in Syft and the extra stdlib
    assert compare([], [])["deb"].recall is None
