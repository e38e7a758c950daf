"""Matching packages against OSV ranges: exact findings."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.models import Package, Severity
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages

FIXTURES = Path(__file__).parent.parent / "fixtures" / "osv"


def deb(name: str, version: str, source: str | None = None, release: str = "12") -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem=f"Debian:{release}",
        purl=f"pkg:deb/debian/{name}@{version}",
        source_name=source or name,
        source_version=version,
        path="var/lib/dpkg/status",
        layer="sha256:" + "1" * 64,
    )


def lang(ecosystem: str, name: str, version: str) -> Package:
    return Package(name=name, version=version, ecosystem=ecosystem, purl=f"pkg:x/{name}@{version}", path="p")


def test_distro_matches_by_source_package_within_release(index: VulnIndex) -> None:
    found = match_packages(
        [
            deb("libssl3", "3.0.11-1~deb12u1", "openssl"),
            deb("libssl1.1", "1.1.1n-0+deb11u5", "openssl", release="11"),
            deb("libc6", "2.36-9+deb12u3", "glibc"),  # exactly the fixed version: not affected
        ],
        index,
    )
    assert [(v.id, v.package, v.installed_version, v.fixed_version, v.ecosystem) for v in found] == [
        ("CVE-2023-5363", "libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "Debian:12"),
        ("CVE-2023-5363", "libssl1.1", "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u2", "Debian:11"),
    ]
    assert found[0].aliases == ["DEBIAN-CVE-2023-5363"]
    assert found[0].severity is Severity.HIGH and found[0].cvss_score == 7.5
    assert found[1].aliases == ["DEBIAN-CVE-2023-5363-bullseye"]


def test_unfixed_is_reported_and_can_be_ignored(index: VulnIndex) -> None:
    pkgs = [deb("apt", "2.6.1")]
    found = match_packages(pkgs, index)
    assert [(v.id, v.fixed_version, v.severity, v.severity_source) for v in found] == [
        ("CVE-2011-3374", None, Severity.LOW, "distro")
    ]
    assert match_packages(pkgs, index, ignore_unfixed=True) == []


def test_aliases_merge_into_one_cve_named_finding(index: VulnIndex) -> None:
    found = match_packages([lang("PyPI", "Requests", "2.25.1")], index)
    assert [(v.id, v.aliases, v.fixed_version, v.severity, v.cvss_score) for v in found] == [
        ("CVE-2023-32681", ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"], "2.31.0", Severity.MEDIUM, 6.1),
        ("CVE-2024-35195", ["GHSA-9wx4-h78v-vm56"], "2.32.0", Severity.MEDIUM, 5.6),
    ]


def test_introduced_bound_and_multiple_ranges(index: VulnIndex) -> None:
    # requests < 2.3.0 is before CVE-2023-32681 was introduced
    assert [v.id for v in match_packages([lang("PyPI", "requests", "2.2.1")], index)] == ["CVE-2024-35195"]

    # minimist has two ranges: <0.2.4 and [1.0.0, 1.2.6)
    def fix(version: str) -> list[str | None]:
        return [v.fixed_version for v in match_packages([lang("npm", "minimist", version)], index)]

    assert fix("0.2.3") == ["0.2.4"]
    assert fix("0.2.4") == []
    assert fix("1.2.5") == ["1.2.6"]
    assert fix("1.2.6") == []


def test_npm_lodash_exact(index: VulnIndex) -> None:
    found = match_packages([lang("npm", "lodash", "4.17.15")], index)
    assert [(v.id, v.severity, v.fixed_version) for v in found] == [
        ("CVE-2020-8203", Severity.HIGH, "4.17.19"),
        ("CVE-2021-23337", Severity.HIGH, "4.17.21"),
        ("CVE-2020-28500", Severity.MEDIUM, "4.17.21"),
    ]


def test_range_semantics_last_affected_limit_and_versions(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    records = [
        {"id": "LA-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.5"}]}]}]},
        {"id": "LIM-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"limit": "2.0"}]}]}]},
        {"id": "VER-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"}, "versions": ["3.0"]}]},
        {"id": "GIT-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
            "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}, {"fixed": "abc"}]}]}]},
        {"id": "RE-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
            "ranges": [{"type": "ECOSYSTEM", "events": [
                {"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "1.3"}, {"fixed": "1.4"}]}]}]},
    ]  # fmt: skip
    for rec in records:
        (src / f"{rec['id']}.json").write_text(json.dumps(rec))
    build_index([src], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")

    def ids(version: str) -> list[tuple[str, str | None]]:
        return sorted((v.id, v.fixed_version) for v in match_packages([lang("PyPI", "p", version)], index))

    assert ids("0.9") == [("LIM-1", None)]
    assert ids("1.0") == [("LA-1", None), ("LIM-1", None), ("RE-1", "1.1")]
    assert ids("1.2") == [("LA-1", None), ("LIM-1", None)]
    assert ids("1.3") == [("LA-1", None), ("LIM-1", None), ("RE-1", "1.4")]
    assert ids("1.5") == [("LA-1", None), ("LIM-1", None)]
    assert ids("1.6") == [("LIM-1", None)]
    assert ids("2.0") == []
    assert ids("3.0") == [("VER-1", None)]


def test_unparseable_installed_version_is_skipped_not_fatal(index: VulnIndex) -> None:
    found = match_packages(
        [lang("PyPI", "requests", "not a version!"), lang("npm", "lodash", "4.17.20")], index
    )
    assert [(v.package, v.id) for v in found] == [("lodash", "CVE-2021-23337"), ("lodash", "CVE-2020-28500")]
