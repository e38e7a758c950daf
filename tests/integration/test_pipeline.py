"""ECR push -> scan -> DynamoDB -> API, end to end on real local parts (moto server, docker-registry
with ECR Basic auth, the Chalice app). Exact findings, not "no exception"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.image.oci_writer import build_layer, write_oci_index_layout, write_oci_layout
from chalicelib.local.aws import ecr_push_event
from chalicelib.local.sample_image import SAMPLE_LAYERS, SAMPLES, files_of, write_sample_layout
from tests.integration.conftest import Stack, sqs_event

pytestmark = pytest.mark.integration

SAMPLE_FINDINGS = [
    ("CRITICAL", "CVE-2021-44906", "minimist", "1.2.5", "1.2.6"),
    ("CRITICAL", "CVE-2023-38545", "curl", "7.88.1-10+deb12u1", "7.88.1-10+deb12u4"),
    ("CRITICAL", "CVE-2023-38545", "libcurl4", "7.88.1-10+deb12u1", "7.88.1-10+deb12u4"),
    ("HIGH", "CVE-2020-8203", "lodash", "4.17.15", "4.17.19"),
    ("HIGH", "CVE-2021-23337", "lodash", "4.17.15", "4.17.21"),
    ("HIGH", "CVE-2021-33503", "urllib3", "1.26.4", "1.26.5"),
    ("HIGH", "CVE-2023-4911", "libc-bin", "2.36-9+deb12u1", "2.36-9+deb12u3"),
    ("HIGH", "CVE-2023-4911", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3"),
    ("HIGH", "CVE-2023-5363", "libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
    ("MEDIUM", "CVE-2020-28500", "lodash", "4.17.15", "4.17.21"),
    ("MEDIUM", "CVE-2023-32681", "requests", "2.25.1", "2.31.0"),
    ("MEDIUM", "CVE-2024-35195", "requests", "2.25.1", "2.32.0"),
    ("LOW", "CVE-2011-3374", "apt", "2.6.1", None),
]


def _get(client: Client, path: str) -> tuple[int, Any]:
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


@pytest.fixture(scope="module")
def pushed(stack: Stack, chalice_client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    layout = tmp_path_factory.mktemp("sample") / "layout"
    info = write_sample_layout(layout)
    assert stack.push(layout, "team/sample", "1.0") == info.manifest_digest
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("team/sample", info.manifest_digest, "1.0")
    ).payload
    assert result["status"] == "scanned"
    assert [(i["digest"], i["vulnerabilities"], i["gate"]) for i in result["images"]] == [
        (info.manifest_digest, 13, "pass")
    ]
    return info.manifest_digest


def test_findings_are_in_dynamodb_and_s3(stack: Stack, pushed: str) -> None:
    record = stack.store.get_image(pushed)
    assert record is not None
    assert (record.repository, record.tags, record.packages, record.os and record.os.family) == (
        "team/sample",
        ["1.0"],
        13,
        "debian",
    )
    assert {k.value: v for k, v in (record.vulnerabilities or {}).items()} == {
        "CRITICAL": 3, "HIGH": 6, "MEDIUM": 3, "LOW": 1, "UNKNOWN": 0,
    }  # fmt: skip
    findings = stack.store.list_findings(pushed, limit=200).items
    got = [(v.severity.value, v.id, v.package, v.installed_version, v.fixed_version) for v in findings]
    assert got == SAMPLE_FINDINGS
    sbom = runtime.client("s3").get_object(Bucket="lifeguard-local", Key=record.sbom_key)["Body"].read()
    names = sorted(p["name"] for p in json.loads(sbom)["packages"])
    assert names == sorted(
        ["base-files", "libc6", "libc-bin", "libssl3", "curl", "libcurl4", "zlib1g", "apt",
         "requests", "urllib3", "lodash", "minimist", "@types/node"]
    )  # fmt: skip


def test_api_answers_all_four_routes(chalice_client: Client, pushed: str) -> None:
    status, image = _get(chalice_client, f"/images/{pushed}")
    assert (status, image["digest"], image["gate"], image["os"]) == (
        200,
        pushed,
        "pass",
        {"family": "debian", "version": "12"},
    )

    status, page = _get(chalice_client, f"/images/{pushed}/findings?severity=critical&limit=2")
    assert status == 200
    assert [(f["id"], f["package"]) for f in page["items"]] == [
        ("CVE-2021-44906", "minimist"),
        ("CVE-2023-38545", "curl"),
    ]
    status, rest = _get(
        chalice_client, f"/images/{pushed}/findings?severity=CRITICAL&limit=2&cursor={page['next_cursor']}"
    )
    assert (status, [(f["id"], f["package"]) for f in rest["items"]], rest["next_cursor"]) == (
        200, [("CVE-2023-38545", "libcurl4")], None,
    )  # fmt: skip

    status, blast = _get(chalice_client, "/vulnerabilities/CVE-2023-4911/images")
    assert status == 200
    assert sorted((i["digest"], i["package"], i["fixed_version"]) for i in blast["items"]) == [
        (pushed, "libc-bin", "2.36-9+deb12u3"),
        (pushed, "libc6", "2.36-9+deb12u3"),
    ]
    status, by_alias = _get(chalice_client, "/vulnerabilities/GHSA-j8r2-6x86-q33q/images")
    assert [(i["vulnerability_id"], i["package"]) for i in by_alias["items"]] == [
        ("CVE-2023-32681", "requests")
    ]

    status, listing = _get(chalice_client, "/images?repository=team/sample")
    assert (status, [(i["digest"], i["tags"]) for i in listing["items"]]) == (200, [(pushed, ["1.0"])])


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/images/sha256:" + "0" * 64, 404, "not_found"),
        ("/images/latest", 400, "bad_input"),
        ("/images?limit=5", 400, "bad_input"),
        ("/vulnerabilities/%20bad%20id/images", 400, "bad_input"),
    ],
)
def test_api_errors_are_json(chalice_client: Client, pushed: str, path: str, status: int, code: str) -> None:
    got_status, body = _get(chalice_client, path)
    assert (got_status, body["error"]["code"]) == (status, code)


def test_bad_severity_filter_is_400(chalice_client: Client, pushed: str) -> None:
    status, body = _get(chalice_client, f"/images/{pushed}/findings?severity=SEVERE")
    assert (status, body["error"]["code"]) == (400, "bad_input")
    assert body["error"]["message"].startswith("severity: must be one or more of CRITICAL")


def test_duplicate_delivery_changes_nothing(stack: Stack, chalice_client: Client, pushed: str) -> None:
    before = stack.store.get_image(pushed)
    event = ecr_push_event("team/sample", pushed, "1.0")
    response = chalice_client.lambda_.invoke(
        "on_scan_request", sqs_event(chalice_client, [json.dumps(event)])
    )
    assert response.payload == {"batchItemFailures": []}
    after = stack.store.get_image(pushed)
    assert before is not None and after is not None
    assert after.scanned_at == before.scanned_at  # idempotency: the stored result was replayed


def test_sqs_batch_keeps_failures_and_processes_the_rest(
    stack: Stack, chalice_client: Client, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    # the app layer alone: no OS, 5 language packages
    img = write_oci_layout(layout, [build_layer(files_of(SAMPLES / "rootfs" / "app"))], tag="app")
    assert img.manifest_digest is not None
    stack.push(layout, "team/batch", "app")
    good = json.dumps(ecr_push_event("team/batch", img.manifest_digest, "app"))
    missing = json.dumps(ecr_push_event("team/batch", "sha256:" + "e" * 64, None))
    other_account = ecr_push_event("team/batch", img.manifest_digest, "app")
    other_account["account"] = "210987654321"
    event = sqs_event(chalice_client, [good, "{not json", missing, json.dumps(other_account)])
    response = chalice_client.lambda_.invoke("on_scan_request", event)
    assert response.payload == {
        "batchItemFailures": [
            {"itemIdentifier": "msg-1"},
            {"itemIdentifier": "msg-2"},
            {"itemIdentifier": "msg-3"},
        ]
    }
    record = stack.store.get_image(img.manifest_digest)
    assert record is not None and record.packages == 5
    assert {k.value: v for k, v in (record.vulnerabilities or {}).items() if v} == {
        "CRITICAL": 1,
        "HIGH": 3,
        "MEDIUM": 3,
    }


def test_multi_arch_push_links_one_scan_per_platform(
    stack: Stack, chalice_client: Client, tmp_path: Path
) -> None:
    base, app = (build_layer(files_of(SAMPLES / "rootfs" / name)) for name in SAMPLE_LAYERS)
    layout = tmp_path / "multi"
    index = write_oci_index_layout(layout, {"linux/amd64": [base, app], "linux/arm64": [base]}, tag="multi")
    assert stack.push(layout, "team/multi", "multi") == index.index_digest
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("team/multi", index.index_digest, None)
    ).payload
    assert result["kind"] == "index"
    assert sorted((i["platform"], i["vulnerabilities"]) for i in result["images"]) == [
        ("linux/amd64", 13),
        ("linux/arm64", 6),
    ]
    status, body = _get(chalice_client, f"/images/{index.index_digest}")
    assert (status, body["kind"]) == (200, "index")
    children = {c["platform"]: c["image"]["vulnerabilities"]["CRITICAL"] for c in body["children"]}
    assert children == {"linux/amd64": 3, "linux/arm64": 2}
    arm = index.images["linux/arm64"].manifest_digest
    status, arm_image = _get(chalice_client, f"/images/{arm}")
    assert (arm_image["index_digest"], arm_image["packages"]) == (index.index_digest, 8)
