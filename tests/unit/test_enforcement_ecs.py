"""The ECS task handler against moto in-process: a real cluster, task definition and run_task,
the real `ECS Task State Change` shape, enforce vs audit vs dry-run, duplicates acting once,
deferral while digests are unknown, and a task in another account (assumed member role)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws
from moto.moto_api import state_manager

from chalicelib import runtime
from chalicelib.enforcement import handlers as enforcement
from chalicelib.enforcement.ecs import audit_id
from chalicelib.errors import EventError
from chalicelib.local.aws import create_idempotency_table
from chalicelib.store import ScanStore
from chalicelib.store_models import AuditRecord
from tests.unit.test_store import dg, meta, scan_of
from tests.unit.test_store_trust import signature

ACCOUNT = "123456789012"
MEMBER = "111111111111"
REGION = "us-east-1"
KEY = "awskms:///alias/lifeguard-signing"
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
SECRET_NAME = "lifeguard/admission-token"
BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "LIFEGUARD_TABLE": "lifeguard-enforcement-test",
    "LIFEGUARD_IDEMPOTENCY_TABLE": "lifeguard-idempotency-test",
    "LIFEGUARD_SIGNING_KEY": KEY,
    "LIFEGUARD_ACCOUNTS": ACCOUNT,
    "LIFEGUARD_REGISTRY_ALLOWLIST": "ghcr.io",
    "LIFEGUARD_ADMISSION_TOKEN_SECRET": SECRET_NAME,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
CLEARED = (
    "AWS_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "POWERTOOLS_IDEMPOTENCY_DISABLED",
)

Configure = Callable[..., None]


@pytest.fixture
def lifeguard_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """moto in-process with Lifeguard's tables; `configure(VAR=value, ...)` changes the
    environment and forgets the cached runtime (mode, failure policy, dry-run)."""
    for name in [*CLEARED, *(n for n in os.environ if n.startswith("LIFEGUARD_"))]:
        monkeypatch.delenv(name, raising=False)  # e.g. the integration stack's, when it ran first
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)

    def configure(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        enforcement.reset()

    with mock_aws():
        configure()
        runtime.store().create_table()
        create_idempotency_table(runtime.client("dynamodb"), runtime.settings().idempotency_table)
        yield configure
    runtime.reset()
    enforcement.reset()


@pytest.fixture
def manual_tasks() -> Iterator[None]:
    """Keep moto's tasks where run_task put them (RUNNING) however often they are described."""
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1000})
    yield
    state_manager.unset_transition("ecs::task")


def trusted(store: ScanStore, digest: str, repository: str = "payments/api") -> None:
    """Scanned, passed, signed by the configured key."""
    store.put_scan(scan_of(digest, [], gate="pass"), meta(repository))
    store.put_signature(signature(digest, key=KEY))


def run_task(ecs: Any, image: str) -> dict[str, Any]:
    ecs.create_cluster(clusterName="prod")
    task_def = ecs.register_task_definition(
        family="api", containerDefinitions=[{"name": "api", "image": image, "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    (task,) = ecs.run_task(cluster="prod", taskDefinition=task_def, launchType="FARGATE", count=1)["tasks"]
    return dict(task)


def task_event(
    task: dict[str, Any],
    *,
    digest: str | None,
    version: int = 3,
    last_status: str = "RUNNING",
    desired_status: str = "RUNNING",
    account: str = ACCOUNT,
    event_id: str = "6f0c1a3e-0b5d-4e3a-9d0b-000000000001",
) -> dict[str, Any]:
    """`ECS Task State Change` as EventBridge delivers it (fields we do not read included)."""
    containers = []
    for c in task["containers"]:
        container = {
            "containerArn": c["containerArn"],
            "lastStatus": last_status,
            "name": c["name"],
            "image": c["image"],
            "taskArn": task["taskArn"],
            "networkInterfaces": [],
            "cpu": "0",
            "memory": "128",
        }
        if digest is not None:
            container["imageDigest"] = digest
        containers.append(container)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": "2026-11-24T09:00:00Z",
        "region": REGION,
        "resources": [task["taskArn"]],
        "detail": {
            "attachments": [],
            "availabilityZone": "us-east-1a",
            "clusterArn": task["clusterArn"],
            "connectivity": "CONNECTED",
            "containers": containers,
            "cpu": "256",
            "createdAt": "2026-11-24T08:59:50.123Z",
            "desiredStatus": desired_status,
            "group": "family:api",
            "launchType": "FARGATE",
            "lastStatus": last_status,
            "memory": "512",
            "platformVersion": "1.4.0",
            "taskArn": task["taskArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "updatedAt": "2026-11-24T09:00:00.456Z",
            "version": version,
        },
    }


def describe(ecs: Any, task: dict[str, Any]) -> dict[str, Any]:
    (found,) = ecs.describe_tasks(cluster=task["clusterArn"], tasks=[task["taskArn"]])["tasks"]
    return dict(found)


def audits() -> list[AuditRecord]:
    return runtime.store().list_audit(datetime.now(UTC).date()).items


def count_stops() -> list[dict[str, Any]]:
    """Every StopTask call made through Lifeguard's (cached) ECS client."""
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    runtime.client("ecs", REGION).meta.events.register("provide-client-params.ecs.StopTask", spy)
    return calls


UNSIGNED_REASON = f"image {ECR}/payments/api@{dg(2)} is not signed by {KEY}"


def test_enforce_stops_an_unsigned_task_once_even_when_delivered_twice(
    lifeguard_env: Configure, manual_tasks: None
) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    store = runtime.store()
    store.put_scan(scan_of(dg(2), [], gate="pass"), meta())  # scanned and passed, but never signed
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    stops = count_stops()
    event = task_event(task, digest=dg(2))

    first = enforcement.handle_ecs_task_event(event)
    second = enforcement.handle_ecs_task_event(json.dumps(event))  # the same event, as an SQS body

    expected = {
        "status": "decided",
        "task_arn": task["taskArn"],
        "version": 3,
        "outcome": "stopped",
        "decision": "deny",
        "mode": "enforce",
        "reasons": [UNSIGNED_REASON],
        "audit_id": audit_id(task["taskArn"], 3),
    }
    assert first == expected
    assert second == expected
    assert [(c["cluster"], c["task"], c["reason"]) for c in stops] == [
        (task["clusterArn"], task["taskArn"], f"Lifeguard: {UNSIGNED_REASON}")
    ]
    stopped = describe(ecs, task)
    assert (stopped["desiredStatus"], stopped["stoppedReason"]) == (
        "STOPPED",
        f"Lifeguard: {UNSIGNED_REASON}",
    )
    (record,) = audits()
    assert record.model_dump(exclude={"at"}) == {
        "id": audit_id(task["taskArn"], 3),
        "actor": "on_ecs_task_state_change",
        "action": "stop_task",
        "target": task["taskArn"],
        "decision": "deny",
        "outcome": "stopped",
        "mode": "enforce",
        "reasons": [UNSIGNED_REASON],
        "event_id": "6f0c1a3e-0b5d-4e3a-9d0b-000000000001",
        "account": ACCOUNT,
        "region": REGION,
        "images": [f"{ECR}/payments/api@{dg(2)}"],
    }


def test_audit_mode_only_reports(lifeguard_env: Configure, manual_tasks: None) -> None:
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    stops = count_stops()
    outcome = enforcement.handle_ecs_task_event(task_event(task, digest=dg(2)))
    assert (outcome["outcome"], outcome["mode"]) == ("would_stop", "audit")
    assert stops == []
    still = describe(ecs, task)
    assert (still["lastStatus"], still["desiredStatus"]) == ("RUNNING", "RUNNING")
    (record,) = audits()
    assert (record.outcome, record.mode, record.decision, record.reasons) == (
        "would_stop",
        "audit",
        "deny",
        [f"image {ECR}/payments/api@{dg(2)} was never scanned", UNSIGNED_REASON],
    )


def test_dry_run_in_enforce_mode_does_not_stop(lifeguard_env: Configure, manual_tasks: None) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce", LIFEGUARD_DRY_RUN="true")
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    stops = count_stops()
    outcome = enforcement.handle_ecs_task_event(task_event(task, digest=dg(2)))
    assert (outcome["outcome"], outcome["mode"], stops) == ("would_stop", "dry-run", [])
    assert describe(ecs, task)["desiredStatus"] == "RUNNING"
    assert [(r.outcome, r.mode) for r in audits()] == [("would_stop", "dry-run")]


def test_a_signed_passing_image_runs_and_is_audited_as_allowed(
    lifeguard_env: Configure, manual_tasks: None
) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    trusted(runtime.store(), dg(1))
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    stops = count_stops()
    outcome = enforcement.handle_ecs_task_event(task_event(task, digest=dg(1)))
    assert (outcome["outcome"], outcome["decision"], outcome["reasons"], stops) == (
        "allowed",
        "allow",
        [],
        [],
    )
    assert describe(ecs, task)["desiredStatus"] == "RUNNING"
    assert [(r.outcome, r.decision, r.images) for r in audits()] == [
        ("allowed", "allow", [f"{ECR}/payments/api@{dg(1)}"])
    ]


def test_pending_without_digest_waits_for_running(lifeguard_env: Configure, manual_tasks: None) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    stops = count_stops()
    pending = enforcement.handle_ecs_task_event(
        task_event(task, digest=None, version=1, last_status="PENDING")
    )
    assert pending["status"] == "deferred"
    assert (stops, audits()) == ([], [])
    # a RUNNING event that still has no digest is refused like any unpinned image
    running = enforcement.handle_ecs_task_event(task_event(task, digest=None, version=2))
    reason = (
        f"image {ECR}/payments/api:v1 has no digest: pin it by digest "
        "(a tag can move; Lifeguard decides on digests)"
    )
    assert (running["outcome"], running["reasons"]) == ("stopped", [reason])
    assert len(stops) == 1


def test_stopping_tasks_and_other_states_are_skipped(lifeguard_env: Configure, manual_tasks: None) -> None:
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    going = enforcement.handle_ecs_task_event(task_event(task, digest=dg(2), desired_status="STOPPED"))
    assert going == {
        "status": "skipped",
        "task_arn": task["taskArn"],
        "version": 3,
        "outcome": None,
        "decision": None,
        "mode": None,
        "reasons": [],
        "audit_id": None,
    }
    assert audits() == []


def test_a_bad_event_is_a_typed_error(lifeguard_env: Configure) -> None:
    with pytest.raises(
        EventError, match=r"^not a valid ECS Task State Change event: detail.version: Field required"
    ):
        bad = task_event(
            {"taskArn": "t", "clusterArn": "c", "taskDefinitionArn": "d", "containers": []}, digest=None
        )
        del bad["detail"]["version"]
        enforcement.handle_ecs_task_event(bad)


def test_a_member_accounts_task_is_stopped_through_the_member_role(
    lifeguard_env: Configure, manual_tasks: None
) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce", LIFEGUARD_EXTERNAL_ID="lifeguard-ext-1")
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/setup", RoleSessionName="test-setup"
    )["Credentials"]
    member_ecs = boto3.client(
        "ecs",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    task = run_task(member_ecs, f"{ECR}/payments/api:v1")
    assert task["taskArn"].startswith(f"arn:aws:ecs:{REGION}:{MEMBER}:task/")
    assumed: list[dict[str, Any]] = []
    runtime.client("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params)
    )
    outcome = enforcement.handle_ecs_task_event(task_event(task, digest=dg(2), account=MEMBER))
    assert outcome["outcome"] == "stopped"
    assert assumed == [
        {
            "RoleArn": f"arn:aws:iam::{MEMBER}:role/lifeguard-member",
            "RoleSessionName": "lifeguard-enforcement",
            "ExternalId": "lifeguard-ext-1",
        }
    ]
    assert describe(member_ecs, task)["desiredStatus"] == "STOPPED"
    assert [(r.account, r.outcome) for r in audits()] == [(MEMBER, "stopped")]


def test_the_chalice_function_is_wired(lifeguard_env: Configure, manual_tasks: None) -> None:
    import app

    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    runtime.store().put_scan(scan_of(dg(2), [], gate="pass"), meta())
    ecs = runtime.client("ecs", REGION)
    task = run_task(ecs, f"{ECR}/payments/api:v1")
    runtime.settings()  # read now: the Client sets .chalice/config.json's variables while it runs
    with Client(app.app, stage_name="local") as client:
        result = client.lambda_.invoke("on_ecs_task_state_change", task_event(task, digest=dg(2)))
    assert result.payload["outcome"] == "stopped"
    assert describe(ecs, task)["stoppedReason"] == f"Lifeguard: {UNSIGNED_REASON}"
