"""Fleet-wide re-matching end to end on the local stack: scan the sample image with the index built
from tests/fixtures/osv, publish a new index to S3 (one new advisory, one withdrawn, one rescored),
run the fan-out, feed its SQS messages to the re-match function, and check DynamoDB and the API
exactly. A second delivery of the same messages changes nothing."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import handlers, runtime
from chalicelib.index_publisher import publish_index
from chalicelib.local.aws import LOCAL_BUCKET, LOCAL_REGION, ecr_push_event
from chalicelib.local.sample_image import write_sample_layout
from chalicelib.store import image_pk
from chalicelib.vulndb.index import VulnIndex, build_index
from tests.integration.conftest import OSV_FIXTURES, REPO_ROOT, Stack, sqs_event
from tests.integration.test_pipeline import SAMPLE_FINDINGS

pytestmark = pytest.mark.integration

REMATCH_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "rematch"
INDEX_KEY = "vulndb/vulndb.sqlite"
INDEX_URL = f"s3://{LOCAL_BUCKET}/{INDEX_KEY}"

NEW = ("CRITICAL", "CVE-2023-45853", "zlib1g", "1:1.2.13.dfsg-1", None)
RESOLVED = ("HIGH", "CVE-2023-5363", "libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2")
RESCORED_BEFORE = ("LOW", "CVE-2011-3374", "apt", "2.6.1", None)
RESCORED_AFTER = ("HIGH", "CVE-2011-3374", "apt", "2.6.1", None)
#: the sample's findings after the re-match, in the store's order (worst first, then id, package)
REMATCHED_FINDINGS = sorted(
    [f for f in SAMPLE_FINDINGS if f not in (RESOLVED, RESCORED_BEFORE)] + [NEW, RESCORED_AFTER],
    key=lambda f: (["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"].index(f[0]), f[1], f[2]),
)


def _get(client: Client, path: str) -> tuple[int, Any]:
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def _findings(client: Client, digest: str) -> list[tuple[str, str, str, str, str | None]]:
    status, page = _get(client, f"/images/{digest}/findings?limit=200")
    assert status == 200 and page["next_cursor"] is None
    return [
        (f["severity"], f["id"], f["package"], f["installed_version"], f["fixed_version"])
        for f in page["items"]
    ]


def _s3_event(key: str) -> dict[str, Any]:
    """`Object Created` as S3 sends it to EventBridge."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:s3:::{LOCAL_BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": LOCAL_BUCKET},
            "object": {"key": key, "size": 1, "etag": "0", "sequencer": "0"},
            "request-id": "0",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def _drain(queue_url: str) -> list[str]:
    sqs = runtime.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _partition(digest: str) -> list[dict[str, Any]]:
    ddb = runtime.client("dynamodb")
    resp = ddb.query(
        TableName=runtime.settings().table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": image_pk(digest)}},
        ConsistentRead=True,
    )
    assert "LastEvaluatedKey" not in resp
    items: list[dict[str, Any]] = resp["Items"]
    return items


def _new_index_sources(tmp: Path) -> Path:
    """tests/fixtures/osv + the new advisory, with DEBIAN-CVE-2023-5363 withdrawn and
    DEBIAN-CVE-2011-3374 rated high by Debian."""
    src = tmp / "osv-v2"
    shutil.copytree(OSV_FIXTURES, src)
    shutil.copy(REMATCH_FIXTURES / "DEBIAN-CVE-2023-45853.json", src)
    withdrawn = json.loads((src / "DEBIAN-CVE-2023-5363.json").read_text())
    withdrawn["withdrawn"] = withdrawn["modified"] = "2024-06-01T00:00:00Z"
    (src / "DEBIAN-CVE-2023-5363.json").write_text(json.dumps(withdrawn))
    rescored = json.loads((src / "DEBIAN-CVE-2011-3374.json").read_text())
    rescored["affected"][0]["ecosystem_specific"]["urgency"] = "high"
    rescored["modified"] = "2024-06-01T00:00:00Z"
    (src / "DEBIAN-CVE-2011-3374.json").write_text(json.dumps(rescored))
    return src


@pytest.fixture(scope="module")
def scanned(stack: Stack, chalice_client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    layout = tmp_path_factory.mktemp("rematch-sample") / "layout"
    info = write_sample_layout(layout)
    assert info.manifest_digest is not None
    stack.push(layout, "team/rematch", "1.0")
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("team/rematch", info.manifest_digest, "1.0")
    ).payload
    assert result["status"] == "scanned"
    assert _findings(chalice_client, info.manifest_digest) == SAMPLE_FINDINGS
    return info.manifest_digest


@pytest.fixture(scope="module")
def new_index(stack: Stack, scanned: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VulnIndex]:
    """Publish the new index to S3, point the runtime at it, create the re-match queue; restore
    the stack's environment afterwards (the session's other modules use the fixture index)."""
    tmp = tmp_path_factory.mktemp("rematch-index")
    built = tmp / "vulndb-v2.sqlite"
    build_index([_new_index_sources(tmp)], built)
    published = publish_index(runtime.client("s3"), built, INDEX_URL)
    assert published.uploaded
    runtime.client("sqs").create_queue(QueueName="lifeguard-rematch-requests")
    saved = os.environ["LIFEGUARD_DB"]
    os.environ["LIFEGUARD_DB"] = INDEX_URL
    runtime.reset()
    handlers.reset()
    index = VulnIndex(built)
    try:
        yield index
    finally:
        index.close()
        os.environ["LIFEGUARD_DB"] = saved
        runtime.reset()
        handlers.reset()


def test_fan_out_then_rematch_updates_dynamodb_and_the_api(
    stack: Stack, chalice_client: Client, scanned: str, new_index: VulnIndex
) -> None:
    digest = scanned
    before = stack.store.get_image(digest)
    assert before is not None and before.db_version != new_index.version
    assert {k.value: v for k, v in (before.vulnerabilities or {}).items()} == {
        "CRITICAL": 3, "HIGH": 6, "MEDIUM": 3, "LOW": 1, "UNKNOWN": 0,
    }  # fmt: skip
    fleet = set(stack.store.iter_image_digests())
    assert digest in fleet

    # an object under vulndb/ that is not the configured index starts nothing
    skipped = chalice_client.lambda_.invoke("on_index_updated", _s3_event("vulndb/other.sqlite")).payload
    assert skipped == {"status": "skipped", "object": f"s3://{LOCAL_BUCKET}/vulndb/other.sqlite"}

    fanout = chalice_client.lambda_.invoke("on_index_updated", _s3_event(INDEX_KEY)).payload
    assert (fanout["status"], fanout["index_version"], fanout["images"]) == (
        "planned",
        new_index.version,
        len(fleet),
    )
    bodies = _drain(runtime.rematch_queue_url())
    assert len(bodies) == fanout["messages"]
    planned = [d for body in bodies for d in json.loads(body)["digests"]]
    assert sorted(planned) == sorted(fleet)  # every scanned image, each once

    response = chalice_client.lambda_.invoke("on_rematch_request", sqs_event(chalice_client, bodies))
    assert response.payload == {"batchItemFailures": []}

    # findings: the new one is there, the withdrawn one is gone, apt is rescored
    assert _findings(chalice_client, digest) == REMATCHED_FINDINGS
    assert [
        f for f in REMATCHED_FINDINGS if f[1] in ("CVE-2023-45853", "CVE-2023-5363", "CVE-2011-3374")
    ] == [
        NEW,
        RESCORED_AFTER,
    ]
    keys = {item["SK"]["S"] for item in _partition(digest) if not item["SK"]["S"].startswith("CHANGE#")}
    assert not any("CVE-2023-5363" in k for k in keys)  # finding and alias pointer deleted
    assert any(k.startswith("ALIAS#DEBIAN-CVE-2023-45853#CVE-2023-45853#zlib1g#") for k in keys)

    # blast radius, by id and by alias
    for vuln_id in ("CVE-2023-45853", "DEBIAN-CVE-2023-45853"):
        status, body = _get(chalice_client, f"/vulnerabilities/{vuln_id}/images")
        assert status == 200
        assert [(i["vulnerability_id"], i["package"]) for i in body["items"] if i["digest"] == digest] == [
            ("CVE-2023-45853", "zlib1g")
        ]
    for vuln_id in ("CVE-2023-5363", "DEBIAN-CVE-2023-5363"):
        status, body = _get(chalice_client, f"/vulnerabilities/{vuln_id}/images")
        assert status == 200
        assert [i for i in body["items"] if i["digest"] == digest] == []

    # change records, newest first (one fan-out: one timestamp; then kind)
    status, changes = _get(chalice_client, f"/images/{digest}/changes")
    assert status == 200 and changes["next_cursor"] is None
    got = [
        (
            c["kind"],
            c["vulnerability_id"],
            c["package"],
            c["previous_severity"],
            c["severity"],
            c["changed_fields"],
        )
        for c in changes["items"]
    ]
    assert got == [
        ("resolved", "CVE-2023-5363", "libssl3", "HIGH", None, []),
        ("new", "CVE-2023-45853", "zlib1g", None, "CRITICAL", []),
        ("changed", "CVE-2011-3374", "apt", "LOW", "HIGH", ["severity"]),
    ]
    assert {(c["db_version"], c["previous_db_version"]) for c in changes["items"]} == {
        (new_index.version, before.db_version)
    }
    assert len({c["detected_at"] for c in changes["items"]}) == 1
    detected = datetime.fromisoformat(changes["items"][0]["detected_at"])
    fleet_changes = stack.store.recent_changes(detected.date(), limit=200).items
    assert [(c.kind, c.vulnerability_id) for c in fleet_changes if c.digest == digest] == [
        ("resolved", "CVE-2023-5363"),
        ("new", "CVE-2023-45853"),
        ("changed", "CVE-2011-3374"),
    ]

    # the summary: counts and the index version it was matched with
    status, image = _get(chalice_client, f"/images/{digest}")
    assert status == 200
    assert image["vulnerabilities"] == {"CRITICAL": 4, "HIGH": 6, "MEDIUM": 3, "LOW": 0, "UNKNOWN": 0}
    assert (image["db_version"], image["gate"], image["scanned_at"]) == (
        new_index.version,
        "pass",
        before.scanned_at.isoformat().replace("+00:00", "Z") if before.scanned_at else None,
    )
    assert image["rematched_at"] is not None

    # a second delivery of the same messages changes nothing, and a second fan-out sends nothing
    partition = sorted(_partition(digest), key=lambda i: i["SK"]["S"])
    again = chalice_client.lambda_.invoke("on_rematch_request", sqs_event(chalice_client, bodies))
    assert again.payload == {"batchItemFailures": []}
    assert sorted(_partition(digest), key=lambda i: i["SK"]["S"]) == partition
    second = chalice_client.lambda_.invoke("on_index_updated", _s3_event(INDEX_KEY)).payload
    assert (second["status"], second["messages"], second["images"]) == ("planned", 0, 0)
    assert _drain(runtime.rematch_queue_url()) == []


def test_bad_rematch_message_fails_alone(chalice_client: Client, new_index: VulnIndex, scanned: str) -> None:
    good = json.dumps(
        {"index_version": new_index.version, "planned_at": "2024-06-02T00:00:00Z", "digests": [scanned]}
    )
    event = sqs_event(
        chalice_client, [good, "{not json", json.dumps({"index_version": "x", "digests": ["latest"]})]
    )
    response = chalice_client.lambda_.invoke("on_rematch_request", event)
    assert response.payload == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]
    }
