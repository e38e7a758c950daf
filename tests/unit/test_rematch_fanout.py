"""The re-match fan-out's edges: SQS sending (10 per call, failed entries retried), publishing the
index to a versioned S3 object (skipped when the content is unchanged), the API route and the
Chalice wiring of the three new functions."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sqlite3
import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.app import CloudWatchEventConfig, Rate, ScheduledEventConfig, SQSEventConfig

import app
from chalicelib import api
from chalicelib.errors import InputError, NotFoundError, StoreError, VulnDBError
from chalicelib.events import parse_s3_object_created
from chalicelib.index_publisher import (
    META_DB_VERSION,
    META_FINGERPRINT,
    META_RECORDS,
    build_and_publish,
    download_feeds,
    index_fingerprint,
    parse_s3_url,
    publish_index,
    refresh_index,
)
from chalicelib.models import Package
from chalicelib.rematch import RematchBatch
from chalicelib.rematch_queue import send_batches
from chalicelib.store import ScanStore
from chalicelib.store_models import ChangeRecord, RematchWrite
from chalicelib.vulndb.feeds import alpine_secdb
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages
from tests.unit.test_store import REGION, aws, ddb, dg, meta, s3, scan_of, store

__all__ = ["aws", "ddb", "s3", "store"]  # fixtures re-exported for pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
SECDB = FIXTURES.parent / "alpine-secdb"
KEV = FIXTURES.parent / "kev" / "known_exploited_vulnerabilities.json"
PLANNED = datetime(2024, 6, 2, 8, 30, tzinfo=UTC)
INDEX_URL = "s3://lifeguard-index-test/vulndb/vulndb.sqlite"


def batches(n: int) -> list[RematchBatch]:
    return [
        RematchBatch(index_version="v2", planned_at=PLANNED, digests=[dg(i), dg(1000 + i)], sequence=i)
        for i in range(n)
    ]


# --- SQS ------------------------------------------------------------------------------------------


def test_send_batches_ten_per_call_and_every_message_arrives(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="lifeguard-rematch-requests")["QueueUrl"]
    calls: list[int] = []
    sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    sent = batches(23)
    fanout = send_batches(sqs, url, iter(sent), "v2")
    assert (fanout.index_version, fanout.messages, fanout.images) == ("v2", 23, 46)
    assert calls == [10, 10, 3]
    received: list[RematchBatch] = []
    while True:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        if not resp.get("Messages"):
            break
        for message in resp["Messages"]:
            received.append(RematchBatch.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received, key=lambda b: b.sequence) == sent


class FlakySqs:
    """Fails the entries listed per call (by Id), records what each call sent."""

    def __init__(self, failures: list[set[str]]) -> None:
        self.failures = failures
        self.sent: list[list[int]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.sent.append([json.loads(e["MessageBody"])["sequence"] for e in Entries])
        failing = self.failures.pop(0) if self.failures else set()
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in failing],
            "Failed": [{"Id": i, "SenderFault": False, "Code": "InternalError"} for i in sorted(failing)],
        }


def test_failed_entries_are_sent_again_then_give_up() -> None:
    sleeps: list[float] = []
    flaky = FlakySqs([{"1", "3"}, {"3"}])
    fanout = send_batches(flaky, "q", batches(4), "v2", sleep=sleeps.append)
    assert flaky.sent == [[0, 1, 2, 3], [1, 3], [3]]
    assert (fanout.messages, sleeps) == (4, [0.1, 0.2])

    stuck = FlakySqs([{"0"}] * 3)
    with pytest.raises(StoreError, match="1 re-match messages not accepted by q after 3 attempts"):
        send_batches(stuck, "q", batches(1), "v2", sleep=sleeps.append, max_attempts=3)


# --- publishing the index -------------------------------------------------------------------------


@pytest.fixture
def index_bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket="lifeguard-index-test")
    s3.put_bucket_versioning(Bucket="lifeguard-index-test", VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_fingerprint_ignores_build_time_but_not_content(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    build_index([FIXTURES], a)
    build_index([FIXTURES], b)
    with sqlite3.connect(b) as conn:  # another build time
        conn.execute("UPDATE meta SET value = '2030-01-01T00:00:00Z' WHERE key = 'built_at'")
    conn.close()
    fewer = tmp_path / "fewer"
    shutil.copytree(FIXTURES, fewer)
    (fewer / "DEBIAN-CVE-2023-5363.json").unlink()
    build_index([fewer], c)
    assert index_fingerprint(a) == index_fingerprint(b)
    assert index_fingerprint(a) != index_fingerprint(c)


def test_publish_uploads_only_new_content_and_returns_the_s3_version(
    tmp_path: Path, index_bucket: Any
) -> None:
    workdir = tmp_path / "work"
    first = build_and_publish(index_bucket, [FIXTURES], INDEX_URL, workdir)
    assert first.uploaded and first.version_id and first.etag
    assert list(workdir.iterdir()) == []  # the built file is not left in /tmp
    head = index_bucket.head_object(Bucket="lifeguard-index-test", Key="vulndb/vulndb.sqlite")
    records = len(list(FIXTURES.glob("*.json")))
    assert head["Metadata"] == {
        META_FINGERPRINT: first.fingerprint,
        META_DB_VERSION: first.db_version,
        META_RECORDS: str(records),
    }
    assert (head["VersionId"], head["ETag"]) == (first.version_id, first.etag)

    again = build_and_publish(index_bucket, [FIXTURES], INDEX_URL, workdir)
    assert again == first.model_copy(update={"uploaded": False})

    fewer = tmp_path / "fewer"
    shutil.copytree(FIXTURES, fewer)
    (fewer / "DEBIAN-CVE-2023-5363.json").unlink()
    changed = refresh_index(index_bucket, INDEX_URL, workdir, lambda cache: [fewer])
    assert changed.uploaded and changed.version_id not in (None, first.version_id)
    versions = index_bucket.list_object_versions(Bucket="lifeguard-index-test", Prefix="vulndb/")["Versions"]
    assert len(versions) == 2
    downloaded = tmp_path / "downloaded.sqlite"
    index_bucket.download_file("lifeguard-index-test", "vulndb/vulndb.sqlite", str(downloaded))
    assert VulnIndex(downloaded).version == changed.db_version


def test_publish_refuses_an_index_that_lost_most_of_its_records(tmp_path: Path, index_bucket: Any) -> None:
    build_and_publish(index_bucket, [FIXTURES], INDEX_URL, tmp_path / "work")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    shutil.copy(FIXTURES / "DEBIAN-CVE-2023-5363.json", tiny)
    built = tmp_path / "tiny.sqlite"
    build_index([tiny], built)
    records = len(list(FIXTURES.glob("*.json")))
    with pytest.raises(VulnDBError, match=f"index of 1 records over one of {records} "):
        publish_index(index_bucket, built, INDEX_URL)
    assert publish_index(index_bucket, built, INDEX_URL, force=True).uploaded


def test_refresh_downloads_osv_secdb_and_kev_then_publishes(tmp_path: Path, index_bucket: Any) -> None:
    """The scheduled refresh end to end, all three feeds served by a stock HTTP server (which
    answers If-Modified-Since with 304, so the second run downloads nothing and publishes nothing)."""
    served = tmp_path / "served"
    (served / "osv" / "Debian").mkdir(parents=True)
    debian = sorted(FIXTURES.glob("DEBIAN-*.json"))
    with zipfile.ZipFile(served / "osv" / "Debian" / "all.zip", "w") as archive:
        for path in debian:
            archive.write(path, path.name)
    (served / "secdb" / "v3.10").mkdir(parents=True)
    for repository in ("main", "community"):
        yaml_file = SECDB / "v3.10" / f"{repository}.yaml"
        document = alpine_secdb.load_yaml(yaml_file.read_bytes(), str(yaml_file))
        (served / "secdb" / "v3.10" / f"{repository}.json").write_text(json.dumps(document))
    (served / "kev").mkdir()
    shutil.copy(KEV, served / "kev" / "known_exploited_vulnerabilities.json")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    environ = {
        "LIFEGUARD_OSV_URL": f"{base}/osv",
        "LIFEGUARD_OSV_ECOSYSTEMS": "Debian",
        "LIFEGUARD_ALPINE_SECDB_URL": f"{base}/secdb",
        "LIFEGUARD_ALPINE_RELEASES": "v3.10",
        "LIFEGUARD_KEV_URL": f"{base}/kev/known_exploited_vulnerabilities.json",
    }
    try:
        workdir = tmp_path / "work"
        first = refresh_index(index_bucket, INDEX_URL, workdir, lambda cache: download_feeds(cache, environ))
        assert first.uploaded
        feeds = workdir / "feeds"
        cached = sorted(p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file())
        assert cached == [  # the cache stays for next time
            "Debian/all.zip",
            "Debian/all.zip.meta.json",
            "alpine-secdb/v3.10/community.json",
            "alpine-secdb/v3.10/community.json.meta.json",
            "alpine-secdb/v3.10/main.json",
            "alpine-secdb/v3.10/main.json.meta.json",
            "cisa-kev/known_exploited_vulnerabilities.json",
            "cisa-kev/known_exploited_vulnerabilities.json.meta.json",
        ]
        inodes = {p: p.stat().st_ino for p in feeds.rglob("*") if not p.name.endswith(".meta.json")}
        again = refresh_index(index_bucket, INDEX_URL, workdir, lambda cache: download_feeds(cache, environ))
        assert not again.uploaded and again.version_id == first.version_id
        assert again.db_version == first.db_version
        assert {p: p.stat().st_ino for p in inodes} == inodes  # 304s: no file was rewritten
    finally:
        server.shutdown()
        server.server_close()
    downloaded = tmp_path / "published.sqlite"
    index_bucket.download_file("lifeguard-index-test", "vulndb/vulndb.sqlite", str(downloaded))
    index = VulnIndex(downloaded)
    assert index.meta["record_count"] == str(len(debian) + 1158 + 712)  # + secdb v3.10 main, community
    assert (index.meta["kev_catalog_version"], index.meta["kev_count"]) == ("2023.11.21", "3")
    assert [(f["kind"], f["url"]) for f in json.loads(index.meta["feeds"])] == [
        ("osv", f"{base}/osv/Debian/all.zip"),
        ("alpine-secdb", f"{base}/secdb/v3.10/main.json"),
        ("alpine-secdb", f"{base}/secdb/v3.10/community.json"),
        ("cisa-kev", f"{base}/kev/known_exploited_vulnerabilities.json"),
    ]
    libc6 = Package(
        name="libc6",
        version="2.36-9+deb12u1",
        ecosystem="Debian:12",
        purl="pkg:deb/debian/libc6@2.36-9+deb12u1",
        source_name="glibc",
        source_version="2.36-9+deb12u1",
        path="var/lib/dpkg/status",
    )
    musl = Package(
        name="musl",
        version="1.1.22-r2",
        ecosystem="Alpine:v3.10",
        purl="pkg:apk/alpine/musl@1.1.22-r2",
        path="x",
    )
    found = [
        (v.id, v.package, v.fixed_version, v.known_exploited) for v in match_packages([libc6, musl], index)
    ]
    assert found == [
        ("CVE-2023-4911", "libc6", "2.36-9+deb12u3", True),
        ("CVE-2019-14697", "musl", "1.1.22-r3", False),
    ]


def test_publish_refuses_what_is_not_an_index_or_not_s3(tmp_path: Path, index_bucket: Any) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite")
    with pytest.raises(Exception, match="not a Lifeguard vulnerability index"):
        publish_index(index_bucket, junk, INDEX_URL)
    with pytest.raises(InputError, match="not an s3:// URL"):
        parse_s3_url("/tmp/vulndb.sqlite")
    with pytest.raises(InputError, match="names no bucket and key"):
        parse_s3_url("s3://bucket-only")
    assert parse_s3_url(INDEX_URL) == ("lifeguard-index-test", "vulndb/vulndb.sqlite")


def test_s3_object_created_event_parsing() -> None:
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2024-06-02T08:30:00Z",
        "region": REGION,
        "resources": ["arn:aws:s3:::lifeguard-index-test"],
        "detail": {
            "version": "0",
            "bucket": {"name": "lifeguard-index-test"},
            "object": {"key": "vulndb/vulndb%2Bnew.sqlite", "etag": "e", "version-id": "v1", "size": 1},
            "reason": "PutObject",
        },
    }
    parsed = parse_s3_object_created(event)
    assert parsed is not None
    assert (parsed.url, parsed.detail.object.version_id) == (
        "s3://lifeguard-index-test/vulndb/vulndb+new.sqlite",
        "v1",
    )
    assert parse_s3_object_created({"source": "lifeguard.manual"}) is None
    with pytest.raises(InputError, match="not a valid S3 Object Created event"):
        parse_s3_object_created({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})


# --- API and wiring -------------------------------------------------------------------------------


def test_changes_route(store: ScanStore) -> None:
    d = dg(7)
    store.put_scan(scan_of(d, []), meta())
    record = store.get_image(d)
    assert record is not None
    change = ChangeRecord(
        digest=d, kind="verdict", detected_at=PLANNED, db_version="v2", gate="fail", previous_gate="pass"
    )
    store.apply_rematch(
        RematchWrite(
            digest=d,
            vulnerabilities=[],
            changes=[change],
            db_version="v2",
            gate="fail",
            rematched_at=PLANNED,
            expected_db_version=record.db_version,
            expected_scanned_at=record.scanned_at,
        )
    )
    status, body = api.list_changes(store, {"digest": d}, {"limit": "5"})
    assert status == 200
    assert body["next_cursor"] is None
    assert [(i["kind"], i["gate"], i["previous_gate"], i["detected_at"]) for i in body["items"]] == [
        ("verdict", "fail", "pass", "2024-06-02T08:30:00Z")
    ]
    with pytest.raises(NotFoundError):
        api.list_changes(store, {"digest": dg(999)}, None)
    with pytest.raises(InputError):
        api.list_changes(store, {"digest": "latest"}, None)


def test_new_functions_are_wired() -> None:
    sources = {e.name: e for e in app.app.event_sources}
    updated, requests, refresh = (
        sources["on_index_updated"],
        sources["on_rematch_request"],
        sources["refresh_index"],
    )
    assert isinstance(updated, CloudWatchEventConfig)
    assert updated.event_pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"object": {"key": [{"prefix": "vulndb/"}]}},
    }
    assert isinstance(requests, SQSEventConfig) and requests.queue == "lifeguard-rematch-requests"
    assert isinstance(refresh, ScheduledEventConfig) and isinstance(refresh.schedule_expression, Rate)
    assert refresh.schedule_expression.to_string() == "rate(1 day)"
    policy = json.loads((Path(app.__file__).parent / ".chalice" / "policy-dev.json").read_text())
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["RematchQueueSend"]["Action"] == ["sqs:SendMessage", "sqs:GetQueueUrl"]
    assert by_sid["RematchQueueSend"]["Resource"] == "arn:aws:sqs:*:*:lifeguard-rematch-requests"
    assert "arn:aws:s3:::lifeguard-dev-artifacts/vulndb/*" in by_sid["Artifacts"]["Resource"]
