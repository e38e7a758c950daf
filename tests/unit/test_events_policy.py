"""Event parsing (contract: real EventBridge shapes, unknown fields ignored) and the gate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import EventError
from chalicelib.events import parse_ecr_event
from chalicelib.models import ImageInfo, ImageScan, Severity, Vulnerability
from chalicelib.policy import GateDecision, Policy, evaluate
from chalicelib.scan_service import ScanRequest

DIGEST = "sha256:" + "ab" * 32


def ecr_event(**detail: Any) -> dict[str, Any]:
    base = {
        "result": "SUCCESS",
        "repository-name": "payments/api",
        "image-digest": DIGEST,
        "action-type": "PUSH",
        "image-tag": "v1",
    }
    base.update(detail)
    return {
        "version": "0",
        "id": "13cde686-328b-6117-af20-0e5566167482",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {k: v for k, v in base.items() if v is not None},
        "unknown-top-level": {"ignored": True},
    }


def test_push_event_becomes_a_scan_request() -> None:
    request = ScanRequest.from_event(parse_ecr_event(ecr_event(extra="ignored")))
    assert request is not None
    assert request.reference == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/api@{DIGEST}"
    assert (request.tag, request.action, request.pushed_at.isoformat()) == (
        "v1",
        "PUSH",
        "2024-05-01T12:00:00+00:00",
    )


def test_push_by_digest_has_no_tag_and_sqs_body_string_parses() -> None:
    event = parse_ecr_event(json.dumps(ecr_event(**{"image-tag": None})))
    assert event.detail.image_tag is None


@pytest.mark.parametrize(
    ("detail", "expected"), [({"action-type": "DELETE"}, None), ({"result": "FAILURE"}, None)]
)
def test_events_that_need_no_scan(detail: dict[str, Any], expected: None) -> None:
    assert ScanRequest.from_event(parse_ecr_event(ecr_event(**detail))) is expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "event body is not JSON"),
        ("[1, 2]", "an event is a JSON object, got list"),
        ({**ecr_event(), "detail-type": "ECS Task State Change"}, "detail-type"),
        ({k: v for k, v in ecr_event().items() if k != "detail"}, "detail: Field required"),
        (ecr_event(**{"image-digest": "sha256:short"}), "detail.image-digest"),
        ({**ecr_event(), "account": "12"}, "account"),
    ],
)
def test_malformed_events_raise_typed_errors(raw: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_ecr_event(raw)


def _scan(*severities: tuple[Severity, str | None]) -> ImageScan:
    return ImageScan(
        image=ImageInfo(digest=DIGEST, config_digest=DIGEST),
        vulnerabilities=[
            Vulnerability(id=f"CVE-0-{i}", package="p", ecosystem="PyPI", installed_version="1",
                          fixed_version=fix, severity=sev, path="x")
            for i, (sev, fix) in enumerate(severities)
        ],
    )  # fmt: skip


def test_gate_fail_on_threshold_and_fixable_only() -> None:
    scan = _scan(
        (Severity.CRITICAL, None), (Severity.HIGH, "2"), (Severity.LOW, "2"), (Severity.UNKNOWN, None)
    )
    assert evaluate(scan, Policy()) == GateDecision("pass", [], None)
    high = evaluate(scan, Policy(fail_on=Severity.HIGH))
    assert (high.verdict, high.reasons) == (
        "fail",
        ["fail_on: 2 vulnerabilities at or above HIGH (CRITICAL: 1, HIGH: 1)"],
    )
    assert evaluate(scan, Policy(fail_on=Severity.CRITICAL, fixable_only=True)).verdict == "pass"
    assert evaluate(scan, Policy(fail_on=Severity.UNKNOWN)).reasons == [
        "fail_on: 4 vulnerabilities at or above UNKNOWN (CRITICAL: 1, HIGH: 1, LOW: 1, UNKNOWN: 1)"
    ]
