"""Alpine secdb: id cleaning, the record mapping on real secdb files, YAML and JSON, the index, and
one finding when both OSV's ALPINE-CVE records and secdb describe the same fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import InputError
from chalicelib.models import Package, Severity
from chalicelib.vulndb.feeds.alpine_secdb import advisory_ids, is_secdb, load_yaml, secdb_records
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages
from chalicelib.vulndb.osv import OSVRecord

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECDB = FIXTURES / "alpine-secdb"
V310_MAIN = SECDB / "v3.10" / "main.yaml"
V311_MAIN = SECDB / "v3.11" / "main.yaml"
OSV = FIXTURES / "osv"
_ID = re.compile(r"CVE-\d{4}-\d{4,}|[A-Z][A-Z0-9]*(?:-[A-Za-z0-9]+)+")


def _load(path: Path) -> list[OSVRecord]:
    result = secdb_records(load_yaml(path.read_bytes(), str(path)), str(path))
    assert result.problems == []
    return result.records


def _by_key(records: list[OSVRecord]) -> dict[tuple[str, str], OSVRecord]:
    keyed = {(r.id, r.affected[0].package.name): r for r in records if r.affected[0].package}
    assert len(keyed) == len(records)  # one record per (advisory, package) in a release
    return keyed


def _events(record: OSVRecord) -> list[tuple[str, str]]:
    (affected,) = record.affected
    (rng,) = affected.ranges
    assert rng.type == "ECOSYSTEM"
    return [(k, v) for e in rng.events for k, v in e.model_dump(exclude_none=True).items()]


@pytest.mark.parametrize(
    ("entry", "ids"),
    [
        ("CVE-2019-1547", ["CVE-2019-1547"]),
        ("CVE-2019-1234 CVE-2019-5678", ["CVE-2019-1234", "CVE-2019-5678"]),
        ("cve-2020-0001, CVE-2020-0002;CVE-2020-0001", ["CVE-2020-0001", "CVE-2020-0002"]),
        ("CVE-2019-5060 TALOS-2019-0844", ["CVE-2019-5060"]),
        ("CVE-2018-3639   XSA-263", ["CVE-2018-3639"]),
        ("CVE-2018-10103 (SMB - partially fixed, but SMB printing disabled)", ["CVE-2018-10103"]),
        ("CVE-2018-14879 (tcpdump -V)", ["CVE-2018-14879"]),
        ("CVE-2017-17434-1", ["CVE-2017-17434"]),
        ("CVE_2019-2426", ["CVE-2019-2426"]),
        ("CVE-2019-19451.patch", ["CVE-2019-19451"]),
        ("CVE-2018-128911 XSA-264", ["CVE-2018-128911"]),
        ("CVE-????-?????  XSA-295", ["XSA-295"]),
        ("XSA-207", ["XSA-207"]),
        ("TALOS-2017-0488 XSA-1", ["TALOS-2017-0488"]),
        ("GHSA-xvch-5gv4-984h", ["GHSA-xvch-5gv4-984h"]),
        ("fixed upstream", []),
        ("CVE-2019", []),
        ("", []),
    ],
)
def test_advisory_ids_are_cleaned(entry: str, ids: list[str]) -> None:
    assert advisory_ids(entry) == ids


@given(
    year=st.integers(1999, 2099),
    number=st.integers(1000, 9_999_999),
    remark=st.text(alphabet=st.characters(blacklist_characters="()"), max_size=30),
)
def test_a_cve_with_any_remark_is_that_cve(year: int, number: int, remark: str) -> None:
    assert advisory_ids(f"CVE-{year}-{number} ({remark})") == [f"CVE-{year}-{number}"]
    assert advisory_ids(f"  cve_{year}-{number}-2 XSA-1") == [f"CVE-{year}-{number}"]


@given(st.text(max_size=60))
def test_whatever_the_text_ids_are_well_formed_and_unique(text: str) -> None:
    ids = advisory_ids(text)
    assert all(_ID.fullmatch(i) for i in ids)
    assert len(ids) == len(set(ids))
    assert len(ids) <= 1 or all(i.startswith("CVE-") for i in ids)


def test_real_v310_main_maps_to_exact_records() -> None:
    result = secdb_records(load_yaml(V310_MAIN.read_bytes(), "main.yaml"), "main.yaml")
    assert (result.distroversion, result.reponame, result.not_affected, result.problems) == (
        "v3.10",
        "main",
        0,
        [],
    )
    assert len(result.records) == 1158
    records = _by_key(result.records)
    assert sorted(vid for vid, pkg in records if pkg == "openssl") == [
        "CVE-2018-0734",
        "CVE-2018-0735",
        "CVE-2019-1543",
        "CVE-2019-1547",
        "CVE-2019-1549",
        "CVE-2019-1563",
    ]
    openssl = records[("CVE-2019-1547", "openssl")]
    assert openssl.affected[0].package is not None
    assert (openssl.affected[0].package.ecosystem, openssl.aliases, openssl.summary, openssl.modified) == (
        "Alpine:v3.10",
        [],
        None,
        None,
    )
    assert _events(openssl) == [("introduced", "0"), ("fixed", "1.1.1d-r0")]
    assert openssl.database_specific == {"source": "alpine-secdb", "repository": "main"}
    # cleaned ids, one record each
    assert _events(records[("CVE-2017-17434", "rsync")]) == [("introduced", "0"), ("fixed", "3.1.2-r7")]
    assert _events(records[("CVE-2018-14879", "tcpdump")]) == [("introduced", "0"), ("fixed", "4.9.3-r0")]
    assert _events(records[("CVE-2019-5060", "sdl2_image")]) == [("introduced", "0"), ("fixed", "2.0.5-r0")]
    assert _events(records[("XSA-207", "xen")]) == [("introduced", "0"), ("fixed", "4.7.1-r5")]
    assert _events(records[("XSA-295", "xen")]) == [("introduced", "0"), ("fixed", "4.12.1-r0")]
    assert _events(records[("CVE-2018-12126", "xen")]) == [("introduced", "0"), ("fixed", "4.12.0-r2")]
    assert ("XSA-297", "xen") not in records  # beside CVEs: a cross-reference, not a record
    assert not any(vid.startswith(("TALOS-", "CVE-?")) for vid, _ in records)


def test_an_id_fixed_in_several_versions_gets_every_fix_in_apk_order() -> None:
    records = _by_key(_load(SECDB / "v3.10" / "community.yaml"))
    assert _events(records[("CVE-2018-6789", "exim")]) == [
        ("introduced", "0"),
        ("fixed", "4.90.1-r0"),
        ("fixed", "4.91-r0"),
    ]
    assert _events(records[("CVE-2019-2426", "openjdk7")]) == [
        ("introduced", "0"),
        ("fixed", "7.211.2.6.17-r0"),
    ]


def test_invalid_apk_versions_are_reported_and_skipped() -> None:
    result = secdb_records(load_yaml(V311_MAIN.read_bytes(), "v3.11/main.yaml"), "v3.11/main.yaml")
    assert result.problems == [
        "v3.11/main.yaml: python2 2.7.16-33: invalid Alpine:v3.11 version '2.7.16-33': unexpected text "
        "at '-33'; skipped CVE-2019-16056, CVE-2019-16935",
        "v3.11/main.yaml: xen 4.10-1-r1: invalid Alpine:v3.11 version '4.10-1-r1': unexpected text at "
        "'-1-r1'; skipped CVE-2018-8897, CVE-2018-10982, CVE-2018-10981",
    ]
    records = _by_key(result.records)
    assert ("CVE-2018-8897", "xen") not in records
    assert ("CVE-2019-16056", "python2") not in records  # its only fix version is the invalid one
    assert _events(records[("CVE-2019-16056", "python3")]) == [("introduced", "0"), ("fixed", "3.7.5-r0")]
    assert _events(records[("CVE-2019-9636", "python2")]) == [("introduced", "0"), ("fixed", "2.7.16-r1")]
    assert len(records) == 1174


def test_fixed_version_zero_means_not_affected_and_scalars_stay_strings() -> None:
    doc = b"""
distroversion: v3.19
reponame: main
packages:
  - pkg:
      name: demo
      secfixes:
        0:
          - CVE-2020-0001
        1.10:
          - CVE-2020-0004
        1.2-r0:
          - CVE-2020-0001
  - pkg:
      name: other
      secfixes:
        "0":
          - CVE-2020-0002 CVE-2020-0003
  - pkg:
      name: quiet
  - pkg:
      secfixes: {}
"""
    result = secdb_records(load_yaml(doc, "doc.yaml"), "doc.yaml")
    assert result.not_affected == 3
    assert result.problems == ["doc.yaml: packages[3]: no pkg.name"]
    assert [(r.id, _events(r)) for r in result.records] == [
        ("CVE-2020-0001", [("introduced", "0"), ("fixed", "1.2-r0")]),
        ("CVE-2020-0004", [("introduced", "0"), ("fixed", "1.10")]),  # not the float 1.1
    ]


def test_documents_that_are_not_secdb() -> None:
    assert is_secdb({"distroversion": "v3.10", "packages": []})
    assert not is_secdb({"distroversion": "v3.10"})
    assert not is_secdb({"id": "CVE-1", "packages": []})
    assert not is_secdb([])
    with pytest.raises(
        InputError, match=r"^x\.yaml: secdb distroversion must be a release like 'v3.19', got 'a:b'"
    ):
        secdb_records({"distroversion": "a:b", "packages": []}, "x.yaml")
    with pytest.raises(InputError, match=r"^bad\.yaml: not YAML"):
        load_yaml(b"packages: [unclosed", "bad.yaml")


def test_index_from_secdb_yaml_and_json_alike(tmp_path: Path) -> None:
    as_json = tmp_path / "main.json"  # the live feed's format: the same structure as JSON
    as_json.write_text(json.dumps(yaml.safe_load(V310_MAIN.read_text())))
    keys = [("Alpine", "v3.10", "musl"), ("Alpine", "v3.10", "openssl"), ("Alpine", "v3.10", "xen")]
    rows = {}
    for name, source in (("yaml", V310_MAIN), ("json", as_json)):
        report = build_index([source], tmp_path / f"{name}.sqlite")
        assert (report.records, report.rejected) == (1158, [])
        found = VulnIndex(tmp_path / f"{name}.sqlite").lookup_many(keys)
        rows[name] = {k: sorted((r.vuln_id, r.ranges) for r in v) for k, v in found.items()}
    assert rows["yaml"] == rows["json"]
    assert rows["yaml"][("Alpine", "v3.10", "musl")] == [
        ("CVE-2016-8859", (("ECOSYSTEM", (("i", "0"), ("f", "1.1.15-r4"))),)),
        ("CVE-2019-14697", (("ECOSYSTEM", (("i", "0"), ("f", "1.1.22-r3"))),)),
    ]


def test_index_from_the_secdb_directory(tmp_path: Path) -> None:
    out = tmp_path / "db.sqlite"
    report = build_index([SECDB], out)
    assert report.records == 712 + 1158 + 886 + 1174
    assert len(report.rejected) == 2
    assert report.rejected[0].startswith(f"{V311_MAIN}: python2 2.7.16-33: invalid Alpine:v3.11 version")
    index = VulnIndex(out)
    assert json.loads(index.meta["alpine_secdb_releases"]) == ["v3.10", "v3.11"]
    feeds = json.loads(index.meta["feeds"])
    assert [
        (f["kind"], f["distroversion"], f["repository"], f["records"], f["not_affected"]) for f in feeds
    ] == [
        ("alpine-secdb", "v3.10", "community", 712, 0),
        ("alpine-secdb", "v3.10", "main", 1158, 0),
        ("alpine-secdb", "v3.11", "community", 886, 0),
        ("alpine-secdb", "v3.11", "main", 1174, 0),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{16}", f["sha256"]) for f in feeds)
    (musl,) = [r for r in index.lookup_many([("Alpine", "v3.11", "musl")])[("Alpine", "v3.11", "musl")]
               if r.vuln_id == "CVE-2019-14697"]  # fmt: skip
    assert (musl.ecosystem, musl.aliases, musl.summary, musl.severity, musl.severity_source) == (
        "Alpine:v3.11",
        (),
        None,
        Severity.UNKNOWN,
        "none",
    )


def _apk(name: str, version: str, release: str = "v3.10") -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem=f"Alpine:{release}",
        purl=f"pkg:apk/alpine/{name}@{version}",
        source_name=name,
        source_version=version,
        path="lib/apk/db/installed",
    )


def _summary(package: str, cve: str) -> str:
    """The summary of the OSV fixture record ALPINE-<cve> (secdb records have none)."""
    return f"{package}: {cve} (Alpine secdb v3.10 main)"


def test_osv_alpine_and_secdb_together_give_one_finding_per_cve(tmp_path: Path) -> None:
    out = tmp_path / "db.sqlite"
    build_index([OSV, V310_MAIN], out)
    index = VulnIndex(out)
    packages = [_apk("musl", "1.1.22-r2"), _apk("openssl", "1.1.1c-r0"), _apk("busybox", "1.30.1-r2")]
    found = [
        (v.id, v.aliases, v.package, v.fixed_version, v.summary) for v in match_packages(packages, index)
    ]
    assert found == [
        (
            "CVE-2019-14697",
            ["ALPINE-CVE-2019-14697"],
            "musl",
            "1.1.22-r3",
            _summary("musl", "CVE-2019-14697"),
        ),
        (
            "CVE-2019-1547",
            ["ALPINE-CVE-2019-1547"],
            "openssl",
            "1.1.1d-r0",
            _summary("openssl", "CVE-2019-1547"),
        ),
        (
            "CVE-2019-1549",
            ["ALPINE-CVE-2019-1549"],
            "openssl",
            "1.1.1d-r0",
            _summary("openssl", "CVE-2019-1549"),
        ),
        (
            "CVE-2019-1563",
            ["ALPINE-CVE-2019-1563"],
            "openssl",
            "1.1.1d-r0",
            _summary("openssl", "CVE-2019-1563"),
        ),
    ]
    # secdb alone reports the same ids; another release matches nothing
    build_index([V310_MAIN], tmp_path / "secdb.sqlite")
    alone = VulnIndex(tmp_path / "secdb.sqlite")
    assert [(v.id, v.aliases) for v in match_packages(packages, alone)] == [
        ("CVE-2019-14697", []),
        ("CVE-2019-1547", []),
        ("CVE-2019-1549", []),
        ("CVE-2019-1563", []),
    ]
    assert match_packages([_apk("musl", "1.1.22-r2", release="v3.11")], alone) == []


@pytest.mark.parametrize("secdb_first", [True, False])
def test_a_bare_secdb_record_never_replaces_a_richer_one(tmp_path: Path, secdb_first: bool) -> None:
    rich = tmp_path / "osv"
    rich.mkdir()
    (rich / "CVE-2019-14697.json").write_text(
        json.dumps({"id": "CVE-2019-14697", "aliases": ["GHSA-test-0000-0000"], "summary": "musl x87 issue"})
    )
    sources = [V310_MAIN, rich] if secdb_first else [rich, V310_MAIN]
    build_index(sources, tmp_path / "db.sqlite")
    rows = VulnIndex(tmp_path / "db.sqlite").lookup_many([("Alpine", "v3.10", "musl")])
    (row,) = [r for r in rows[("Alpine", "v3.10", "musl")] if r.vuln_id == "CVE-2019-14697"]
    assert (row.aliases, row.summary) == (("GHSA-test-0000-0000",), "musl x87 issue")
