"""CISA KEV: the catalog reader, the index's `kev` table and the known-exploited flag on findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.errors import InputError
from chalicelib.models import Package
from chalicelib.vulndb.feeds.kev import KevEntry, is_kev, parse_catalog
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages

FIXTURES = Path(__file__).parent.parent / "fixtures"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
SAMPLE_KEV = Path(__file__).parents[2] / "samples" / "kev" / "known_exploited_vulnerabilities.json"
OSV = FIXTURES / "osv"


def _catalog(*entries: dict[str, object], count: int | None = None) -> dict[str, object]:
    return {
        "title": "test",
        "catalogVersion": "2024.05.01",
        "dateReleased": "2024-05-01T15:00:00.000Z",
        "count": len(entries) if count is None else count,
        "vulnerabilities": list(entries),
    }


def _entry(cve: str, added: str, ransomware: str = "Unknown") -> dict[str, object]:
    return {"cveID": cve, "dateAdded": added, "knownRansomwareCampaignUse": ransomware, "cwes": []}


def _deb(name: str, version: str, source: str) -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem="Debian:12",
        purl=f"pkg:deb/debian/{name}@{version}",
        source_name=source,
        source_version=version,
        path="var/lib/dpkg/status",
    )


def test_the_sample_catalog_parses_exactly() -> None:
    assert SAMPLE_KEV.read_bytes() == KEV.read_bytes()  # make run uses the same sample
    catalog = parse_catalog(json.loads(KEV.read_text()), str(KEV))
    assert (catalog.catalog_version, catalog.date_released, catalog.count, catalog.problems) == (
        "2023.11.21",
        "2023-11-21T15:00:00.0000Z",
        3,
        [],
    )
    assert catalog.entries == [
        KevEntry("CVE-2023-4911", "2023-11-21", ransomware=False),
        KevEntry("CVE-2021-44228", "2021-12-10", ransomware=True),
        KevEntry("CVE-2099-0001", "2024-01-20", ransomware=True),
    ]


def test_bad_entries_are_reported_and_skipped() -> None:
    data = _catalog(
        _entry("CVE-2024-0001", "2024-05-01", "known"),
        {"dateAdded": "2024-05-01"},
        _entry("GHSA-xxxx-yyyy-zzzz", "2024-05-01"),
        _entry("CVE-2024-0002", "05/01/2024"),
        {"cveID": "CVE-2024-0003", "dateAdded": "2024-05-02"},
        count=7,
    )
    catalog = parse_catalog(data, "kev.json")
    assert catalog.entries == [
        KevEntry("CVE-2024-0001", "2024-05-01", ransomware=True),
        KevEntry("CVE-2024-0003", "2024-05-02", ransomware=False),
    ]
    assert catalog.problems == [
        "kev.json: KEV count says 7, the catalog lists 5",
        "kev.json: vulnerabilities[1]: cveID: Field required",
        "kev.json: vulnerabilities[2]: cveID: String should match pattern '^CVE-\\d{4}-\\d{4,}$'",
        "kev.json: vulnerabilities[3]: dateAdded: String should match pattern '^\\d{4}-\\d{2}-\\d{2}$'",
    ]
    with pytest.raises(InputError, match="KEV catalogVersion must be a non-empty string, got None"):
        parse_catalog({"vulnerabilities": []}, "kev.json")


def test_kev_is_recognised_by_content() -> None:
    assert is_kev(_catalog())
    assert not is_kev({"id": "CVE-2024-1", "vulnerabilities": []})
    assert not is_kev({"catalogVersion": "1", "vulnerabilities": {}})
    assert not is_kev([])


def test_the_index_keeps_the_catalog_in_a_kev_table(tmp_path: Path) -> None:
    out = tmp_path / "db.sqlite"
    report = build_index([OSV, KEV], out)
    assert (report.records, report.rejected, report.kev_catalogs) == (19, [], ["2023.11.21"])
    index = VulnIndex(out)
    assert (index.meta["kev_catalog_version"], index.meta["kev_count"]) == ("2023.11.21", "3")
    assert index.known_exploited(["CVE-2021-44228", "CVE-2023-4911", "CVE-2000-0001", "GHSA-x"]) == {
        "CVE-2021-44228": KevEntry("CVE-2021-44228", "2021-12-10", ransomware=True),
        "CVE-2023-4911": KevEntry("CVE-2023-4911", "2023-11-21", ransomware=False),
    }
    many = [f"CVE-2000-{n:05d}" for n in range(1200)] + ["CVE-2099-0001"]  # more than one batch
    assert list(index.known_exploited(many)) == ["CVE-2099-0001"]
    assert index.known_exploited([]) == {}


def test_findings_on_the_catalog_are_flagged(tmp_path: Path) -> None:
    build_index([OSV, KEV], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")
    packages = [_deb("libc6", "2.36-9+deb12u1", "glibc"), _deb("libcurl4", "7.88.1-10+deb12u1", "curl")]
    found = [
        (v.id, v.aliases, v.package, v.known_exploited, v.kev_date_added)
        for v in match_packages(packages, index)
    ]
    assert found == [
        ("CVE-2023-38545", ["DEBIAN-CVE-2023-38545"], "libcurl4", False, None),
        ("CVE-2023-4911", ["DEBIAN-CVE-2023-4911"], "libc6", True, "2023-11-21"),
    ]
    # without a catalog nothing is flagged
    build_index([OSV], tmp_path / "nokev.sqlite")
    plain = match_packages(packages, VulnIndex(tmp_path / "nokev.sqlite"))
    assert [(v.id, v.known_exploited, v.kev_date_added) for v in plain] == [
        ("CVE-2023-38545", False, None),
        ("CVE-2023-4911", False, None),
    ]


def test_an_alias_on_the_catalog_flags_the_finding_with_the_earliest_date(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    record = {
        "id": "GHSA-jfh8-c2jp-5v3q",
        "aliases": ["CVE-2021-45046", "CVE-2021-44228"],
        "affected": [
            {
                "package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}]}
                ],
            }
        ],
    }
    (feeds / "GHSA-jfh8-c2jp-5v3q.json").write_text(json.dumps(record))
    (feeds / "kev.json").write_text(json.dumps(_catalog(_entry("CVE-2021-45046", "2023-05-01"))))
    build_index([feeds], tmp_path / "db.sqlite")
    log4j = Package(
        name="org.apache.logging.log4j:log4j-core",
        version="2.14.1",
        ecosystem="Maven",
        purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        path="app/lib/log4j-core-2.14.1.jar",
    )
    (finding,) = match_packages([log4j], VulnIndex(tmp_path / "db.sqlite"))
    assert (finding.id, finding.aliases, finding.known_exploited, finding.kev_date_added) == (
        "CVE-2021-44228",
        ["CVE-2021-45046", "GHSA-jfh8-c2jp-5v3q"],
        True,
        "2023-05-01",
    )
    (feeds / "kev2.json").write_text(
        json.dumps(
            _catalog(_entry("CVE-2021-44228", "2021-12-10", "Known"), _entry("CVE-2021-45046", "2023-05-01"))
        )
    )
    build_index([feeds], tmp_path / "db2.sqlite")
    (finding,) = match_packages([log4j], VulnIndex(tmp_path / "db2.sqlite"))
    assert (finding.known_exploited, finding.kev_date_added) == (True, "2021-12-10")


def test_one_catalog_query_per_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index([OSV, KEV], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")
    calls: list[set[str]] = []
    original = index.known_exploited

    def spy(ids: set[str]) -> dict[str, KevEntry]:
        calls.append(set(ids))
        return original(ids)

    monkeypatch.setattr(index, "known_exploited", spy)
    packages = [
        _deb("libc6", "2.36-9+deb12u1", "glibc"),
        _deb("libc-bin", "2.36-9+deb12u1", "glibc"),
        _deb("libcurl4", "7.88.1-10+deb12u1", "curl"),
    ]
    findings = match_packages(packages, index)
    assert [(v.package, v.known_exploited) for v in findings] == [
        ("libcurl4", False),
        ("libc-bin", True),
        ("libc6", True),
    ]
    assert calls == [{"CVE-2023-38545", "DEBIAN-CVE-2023-38545", "CVE-2023-4911", "DEBIAN-CVE-2023-4911"}]
