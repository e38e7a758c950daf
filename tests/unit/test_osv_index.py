"""OSV loading and the compiled SQLite index."""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import OSVRecordError, VulnDBError
from chalicelib.models import Severity
from chalicelib.vulndb.index import VulnIndex, _decode_strings, build_index
from chalicelib.vulndb.osv import parse_record

FIXTURES = Path(__file__).parent.parent / "fixtures" / "osv"


def _record(id_: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": id_,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Some_Package"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
            }
        ],
    }
    base.update(extra)
    return base


def test_fixture_feed_compiles_with_exact_rows(tmp_path: Path) -> None:
    out = tmp_path / "db.sqlite"
    report = build_index([FIXTURES], out)
    assert report.records == 19
    assert report.rejected == []
    index = VulnIndex(out)
    rows = index.lookup_many([("Debian", "12", "curl"), ("Debian", "11", "openssl"), ("npm", "", "lodash")])
    assert [r.vuln_id for r in rows[("Debian", "12", "curl")]] == ["DEBIAN-CVE-2023-38545"]
    curl = rows[("Debian", "12", "curl")][0]
    assert curl.aliases == ("CVE-2023-38545",)  # upstream ids count as aliases
    assert (curl.severity, curl.severity_source, curl.cvss_score) == (Severity.CRITICAL, "cvss", 9.8)
    assert curl.ranges == (("ECOSYSTEM", (("i", "0"), ("f", "7.88.1-10+deb12u4"))),)
    assert [r.vuln_id for r in rows[("Debian", "11", "openssl")]] == ["DEBIAN-CVE-2023-5363-bullseye"]
    assert sorted(r.vuln_id for r in rows[("npm", "", "lodash")]) == [
        "GHSA-29mw-wpgm-hmr9",
        "GHSA-35jh-r3h4-6jhm",
        "GHSA-p6mc-m468-83gw",
    ]
    # withdrawn records are not in the index
    assert index.lookup_many([("Debian", "12", "zlib")]) == {}
    assert index.meta["record_count"] == "19"
    assert re.fullmatch(r"sha256:[0-9a-f]{24}", index.version)  # content digest: test_feeds_index.py


def test_distro_rating_beats_cvss_and_database_label_is_last(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rated = _record(
        "REC-1", severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    )
    rated["affected"][0]["ecosystem_specific"] = {"urgency": "low"}  # type: ignore[index]
    labelled = _record("REC-2", database_specific={"severity": "MODERATE"})
    v4 = _record(
        "REC-3",
        severity=[
            {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
        ],
    )
    for rec in (rated, labelled, v4):
        (src / f"{rec['id']}.json").write_text(json.dumps(rec))
    build_index([src], tmp_path / "db.sqlite")
    rows = VulnIndex(tmp_path / "db.sqlite").lookup_many([("PyPI", "", "some-package")])
    got = {
        r.vuln_id: (r.severity, r.severity_source, r.cvss_score) for r in rows[("PyPI", "", "some-package")]
    }
    assert got == {
        "REC-1": (Severity.LOW, "distro", 9.8),
        "REC-2": (Severity.MEDIUM, "database", None),
        "REC-3": (Severity.CRITICAL, "cvss", 9.3),
    }


def test_zip_export_and_bad_records_are_reported_not_dropped(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("GOOD-1.json", json.dumps(_record("GOOD-1")))
        zf.writestr("BAD-1.json", "{not json")
        zf.writestr("BAD-2.json", json.dumps({"affected": []}))  # no id
        zf.writestr("README.txt", "ignored")
    report = build_index([archive], tmp_path / "db.sqlite")
    assert report.records == 1
    assert len(report.rejected) == 2
    assert any("BAD-1.json: not JSON" in r for r in report.rejected)
    assert any("BAD-2.json: id: Field required" in r for r in report.rejected)


def test_empty_input_gives_valid_empty_index(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = build_index([empty], tmp_path / "db.sqlite")
    assert report.records == 0
    index = VulnIndex(tmp_path / "db.sqlite")
    assert index.lookup_many([("PyPI", "", "x")]) == {}
    assert index.meta["record_count"] == "0"


def test_missing_input_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSVRecordError, match="no such file"):
        build_index([tmp_path / "nope"], tmp_path / "db.sqlite")
    assert not (tmp_path / "db.sqlite").exists()


def test_parse_record_errors_name_origin_and_field() -> None:
    with pytest.raises(OSVRecordError, match=r"^x\.json: affected\.0\.ranges\.0\.type: Field required"):
        parse_record(json.dumps({"id": "A", "affected": [{"ranges": [{"events": []}]}]}), "x.json")
    with pytest.raises(OSVRecordError, match="an OSV record is a JSON object, got list"):
        parse_record("[]", "y.json")


def test_index_errors(tmp_path: Path) -> None:
    with pytest.raises(VulnDBError, match="db build"):
        VulnIndex(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(VulnDBError, match="not a Lifeguard vulnerability index"):
        VulnIndex(junk)
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.close()
    with pytest.raises(VulnDBError, match="schema '0'"):
        VulnIndex(old)


def test_aggregate_notices_are_skipped_and_multi_upstream_is_not_aliasing(tmp_path: Path) -> None:
    """A USN naming several CVEs must not merge them into one finding, nor report them twice."""
    src = tmp_path / "in"
    src.mkdir()

    def rec(id_: str, upstream: list[str]) -> dict[str, object]:
        return {
            "id": id_,
            "upstream": upstream,
            "affected": [
                {
                    "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "glibc"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.35-0ubuntu3.4"}]}
                    ],
                }
            ],
        }

    records = [
        rec("UBUNTU-CVE-2023-4911", ["CVE-2023-4911"]),
        rec("UBUNTU-CVE-2023-4806", ["CVE-2023-4806"]),
        rec("USN-6409-1", ["CVE-2023-4806", "CVE-2023-4911", "CVE-2023-5156"]),
        rec("OTHER-1", ["CVE-2023-1", "CVE-2023-2"]),  # several upstream ids, not a known notice
    ]
    for r in records:
        (src / f"{r['id']}.json").write_text(json.dumps(r))
    build_index([src], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")
    rows = index.lookup_many([("Ubuntu", "22.04:LTS", "glibc")])[("Ubuntu", "22.04:LTS", "glibc")]
    assert sorted((r.vuln_id, r.aliases) for r in rows) == [
        ("OTHER-1", ()),
        ("UBUNTU-CVE-2023-4806", ("CVE-2023-4806",)),
        ("UBUNTU-CVE-2023-4911", ("CVE-2023-4911",)),
    ]
    assert index.meta["skipped_aggregate_notices"] == "1"


@given(st.lists(st.text(max_size=12), max_size=6))
def test_string_lists_decode_like_json(items: list[str]) -> None:
    """The fast split of alias/version lists agrees with json.loads for every list the writer can
    produce, quotes, separators and escapes included (those fall back to json.loads)."""
    assert _decode_strings(json.dumps(items), ", ") == tuple(items)
    assert _decode_strings(json.dumps(items, separators=(",", ":")), ",") == tuple(items)


def test_string_lists_fast_path_cases() -> None:
    assert _decode_strings("[]", ", ") == ()
    assert _decode_strings('["CVE-2024-1", "GHSA-aaaa-bbbb-cccc"]', ", ") == (
        "CVE-2024-1",
        "GHSA-aaaa-bbbb-cccc",
    )
    assert _decode_strings('["1.0","1.1"]', ",") == ("1.0", "1.1")
