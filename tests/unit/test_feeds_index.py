"""`db build` over mixed feeds: detection by content, the index's meta table (feed versions, build
time) and `db_version` as a digest of the content."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from chalicelib.errors import VulnDBError
from chalicelib.vulndb.index import INDEX_LOGIC_VERSION, SCHEMA_VERSION, VulnIndex, build_index

FIXTURES = Path(__file__).parent.parent / "fixtures"
OSV = FIXTURES / "osv"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
SECDB_V310 = FIXTURES / "alpine-secdb" / "v3.10" / "main.yaml"
MTIME = 1_705_312_800  # 2024-01-15T10:00:00Z


def _record(vid: str, modified: str = "2024-01-15T00:00:00Z", **extra: object) -> dict[str, object]:
    return {
        "id": vid,
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            }
        ],
        **extra,
    }


def _export(path: Path, *records: dict[str, object]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for record in records:
            zf.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def _sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _version(tmp_path: Path, name: str, *sources: Path) -> str:
    out = tmp_path / f"{name}.sqlite"
    build_index(list(sources), out)
    return VulnIndex(out).version


def test_a_cache_directory_of_mixed_feeds(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "PyPI").mkdir(parents=True)
    export = _export(cache / "PyPI" / "all.zip", _record("PYSEC-1"), _record("PYSEC-2"))
    (cache / "PyPI" / "all.zip.meta.json").write_text(
        json.dumps(
            {"url": "https://osv.example/PyPI/all.zip", "etag": '"abc"', "last_modified": "Mon, 15 Jan 2024"}
        )
    )
    (cache / "PyPI" / "all.zip.part").write_bytes(b"half a download")
    (cache / "PyPI" / "all.zip.part.meta.json").write_text("{}")
    (cache / "alpine").mkdir()
    secdb = cache / "alpine" / "v3.10-main.yaml"
    shutil.copy(SECDB_V310, secdb)
    kev = cache / "known_exploited_vulnerabilities.json"
    shutil.copy(KEV, kev)
    loose = cache / "extra"
    loose.mkdir()
    (loose / "GHSA-1.json").write_text(json.dumps(_record("GHSA-1")))
    for path in (secdb, kev):
        os.utime(path, (MTIME, MTIME))

    report = build_index([cache], tmp_path / "db.sqlite")
    assert (report.records, report.rejected, len(report.kev)) == (2 + 1158 + 1, [], 3)
    index = VulnIndex(tmp_path / "db.sqlite")
    assert json.loads(index.meta["feeds"]) == [
        {
            "kind": "osv",
            "source": str(export),
            "url": "https://osv.example/PyPI/all.zip",
            "etag": '"abc"',
            "last_modified": "Mon, 15 Jan 2024",
            "records": 2,
        },
        {
            "kind": "alpine-secdb",
            "source": str(secdb),
            "distroversion": "v3.10",
            "repository": "main",
            "records": 1158,
            "not_affected": 0,
            "mtime": "2024-01-15T10:00:00Z",
            "sha256": _sha16(SECDB_V310),
        },
        {
            "kind": "cisa-kev",
            "source": str(kev),
            "catalog_version": "2023.11.21",
            "date_released": "2023-11-21T15:00:00.0000Z",
            "entries": 3,
            "mtime": "2024-01-15T10:00:00Z",
            "sha256": _sha16(KEV),
        },
        # loose OSV JSON files under an input path: one entry, after the walk
        {"kind": "osv", "source": str(cache), "files": 1, "records": 1, "sha256": report.feeds[3]["sha256"]},
    ]
    assert re.fullmatch(r"[0-9a-f]{16}", report.feeds[3]["sha256"])
    assert index.meta["alpine_secdb_releases"] == '["v3.10"]'
    assert (index.meta["kev_catalog_version"], index.meta["kev_count"], index.meta["record_count"]) == (
        "2023.11.21",
        "3",
        "1161",
    )
    assert index.meta["schema_version"] == SCHEMA_VERSION == "2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", index.meta["built_at"])
    assert json.loads(index.meta["sources"]) == [str(cache)]


def test_a_single_osv_file_and_the_loose_files_digest(tmp_path: Path) -> None:
    one = tmp_path / "GHSA-1.json"
    raw = json.dumps(_record("GHSA-1")).encode()
    one.write_bytes(raw)
    report = build_index([one], tmp_path / "db.sqlite")
    expected = hashlib.sha256(f"{len(one.name)}:{one.name}{len(raw)}:".encode() + raw).hexdigest()[:16]
    assert report.feeds == [{"kind": "osv", "source": str(one), "files": 1, "records": 1, "sha256": expected}]


def test_inputs_that_are_neither_osv_secdb_nor_kev_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.yaml").write_text("title: not a feed\n")
    (tmp_path / "in" / "broken.yml").write_text("packages: [\n")
    (tmp_path / "in" / "list.json").write_text("[]")
    (tmp_path / "in" / "README.md").write_text("ignored")
    report = build_index([tmp_path / "in"], tmp_path / "db.sqlite")
    assert report.records == 0
    assert [r.split(": ", 1)[1].splitlines()[0] for r in report.rejected] == [
        "not YAML: while parsing a flow node",
        "an OSV record is a JSON object, got list",
        "a YAML input must be an Alpine secdb document (distroversion, packages)",
    ]
    assert [r.split(": ", 1)[0] for r in report.rejected] == [
        str(tmp_path / "in" / name) for name in ("broken.yml", "list.json", "notes.yaml")
    ]


def test_db_version_is_a_digest_of_the_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for vid in ("R-1", "R-2"):
        (a / f"{vid}.json").write_text(json.dumps(_record(vid)))
    _export(b / "all.zip", _record("R-2"), _record("R-1"))  # same records, another layout and order

    base = _version(tmp_path, "base", a, KEV, SECDB_V310)
    assert re.fullmatch(r"sha256:[0-9a-f]{24}", base)
    assert _version(tmp_path, "again", a, KEV, SECDB_V310) == base  # built_at differs, content not
    assert _version(tmp_path, "reordered", SECDB_V310, b, KEV) == base

    (a / "R-2.json").write_text(json.dumps(_record("R-2", modified="2024-02-01T00:00:00Z")))
    modified = _version(tmp_path, "modified", a, KEV, SECDB_V310)
    (a / "R-2.json").write_text(json.dumps(_record("R-2", withdrawn="2024-03-01T00:00:00Z")))
    withdrawn = _version(tmp_path, "withdrawn", a, KEV, SECDB_V310)
    (a / "R-2.json").write_text(json.dumps(_record("R-2")))
    assert _version(tmp_path, "restored", a, KEV, SECDB_V310) == base

    kev = json.loads(KEV.read_text())
    kev["vulnerabilities"][0]["dateAdded"] = "2023-11-22"
    (tmp_path / "kev.json").write_text(json.dumps(kev))
    kev_changed = _version(tmp_path, "kev", a, tmp_path / "kev.json", SECDB_V310)

    secdb = SECDB_V310.read_text().replace("1.1.22-r3:", "1.1.22-r4:")
    (tmp_path / "main.yaml").write_text(secdb)
    secdb_changed = _version(tmp_path, "secdb", a, KEV, tmp_path / "main.yaml")

    without_kev = _version(tmp_path, "nokev", a, SECDB_V310)
    versions = [base, modified, withdrawn, kev_changed, secdb_changed, without_kev]
    assert len(set(versions)) == len(versions)


def test_empty_input_has_a_fixed_version_and_empty_feed_meta(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    build_index([tmp_path / "empty"], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")
    salt = f"lifeguard-index-{SCHEMA_VERSION}-{INDEX_LOGIC_VERSION}"
    expected = "sha256:" + hashlib.sha256(f"{salt}\n{0:064x}".encode()).hexdigest()[:24]
    assert index.version == expected
    assert (index.meta["feeds"], index.meta["kev_count"], index.meta["kev_catalog_version"]) == (
        "[]",
        "0",
        "",
    )
    assert index.meta["alpine_secdb_releases"] == "[]"


def test_an_index_of_the_previous_schema_must_be_rebuilt(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.close()
    with pytest.raises(
        VulnDBError, match=r"has index schema '1', this Lifeguard reads '2': rebuild it with `db build`"
    ):
        VulnIndex(old)
