"""The trust loop, end to end: an ECR push that passes its gate is signed by the Lambda with the KMS
key in `LIFEGUARD_SIGNING_KEY` (cosign layout in the same repository, the scan as a vuln
attestation), recorded, audited and re-verified by `GET /images/{digest}/signature`; a push that
fails its repository's policy is never signed; then, in enforce mode, an ECS task running the
failing image is stopped and the signed one keeps running, and the admission webhook answers the
same. Real parts: moto server (KMS, DynamoDB, ECS over HTTP), docker-registry with ECR auth, the
Chalice app; the registry's bytes are checked by the independent verifier."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto.moto_api import state_manager

from chalicelib import handlers, runtime
from chalicelib.enforcement import handlers as enforcement
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, ecr_host, ecr_push_event
from chalicelib.local.sample_image import SAMPLE_CONFIG, SAMPLE_LAYERS, SAMPLES, files_of
from tests.integration.conftest import Stack
from tests.integration.test_signing_cli import Raw
from tests.unit.test_signing import independent_verify_attestations, independent_verify_signatures

pytestmark = pytest.mark.integration

KEY = "awskms:///alias/lifeguard-pipeline"
VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"


def _tag(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + "." + suffix


#: the default passes the sample image; `trust/failing` fails on its HIGH findings
POLICY = """
name: trust-loop
repositories:
  - match: trust/failing
    fail_on: HIGH
"""
TOKEN_SECRET = "lifeguard/admission-token"
TOKEN = "k8s-webhook-" + "t" * 32
ENV = {
    "LIFEGUARD_SIGNING_KEY": KEY,
    "LIFEGUARD_ENFORCE": "enforce",
    "LIFEGUARD_ADMISSION_TOKEN_SECRET": TOKEN_SECRET,
}


@pytest.fixture(scope="module")
def signing_key(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    """A P-256 key in moto's KMS named by LIFEGUARD_SIGNING_KEY, the policy above and enforce mode
    for this module; yields the key's public DER."""
    kms = runtime.client("kms")
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=KEY.removeprefix("awskms:///"), TargetKeyId=key_id)
    der = bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
    runtime.client("secretsmanager").create_secret(Name=TOKEN_SECRET, SecretString=TOKEN)
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    os.environ.update({**ENV, "LIFEGUARD_POLICY": str(policy)})
    _forget()
    try:
        yield der
    finally:
        for name in (*ENV, "LIFEGUARD_POLICY"):
            del os.environ[name]
        _forget()


def _forget() -> None:
    runtime.reset()
    handlers.reset()
    enforcement.reset()


def _get(client: Client, path: str) -> tuple[int, Any]:
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def test_a_passing_push_is_signed_attested_recorded_and_reverified(
    stack: Stack, chalice_client: Client, signing_key: bytes, sample: tuple[Path, str]
) -> None:
    layout, digest = sample
    assert stack.push(layout, "trust/app", "1.0") == digest
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("trust/app", digest, "1.0")
    ).payload
    assert result["status"] == "scanned" and [i["gate"] for i in result["images"]] == ["pass"]

    raw = Raw(stack)
    sig = raw.manifest("trust/app", _tag(digest, "sig"))
    (payload,) = independent_verify_signatures(sig, raw.blobs("trust/app"), signing_key, digest)
    assert payload["critical"]["identity"] == {"docker-reference": f"{ecr_host()}/trust/app"}
    optional = payload["optional"]
    assert optional["lifeguard.verdict"] == "pass"
    assert (optional["lifeguard.vulnerabilities.critical"], optional["lifeguard.vulnerabilities.high"]) == (
        "3",
        "6",
    )
    assert optional["lifeguard.db-version"] == runtime.vuln_index().version

    att = raw.manifest("trust/app", _tag(digest, "att"))
    (statement,) = independent_verify_attestations(att, raw.blobs("trust/app"), signing_key, digest)
    assert statement["predicateType"] == VULN_PREDICATE
    result_json = statement["predicate"]["scanner"]["result"]
    assert result_json["image"]["digest"] == digest and len(result_json["vulnerabilities"]) == 13

    (record,) = stack.store.get_signatures(digest)
    assert (record.key, record.verdict, record.signer, record.repository) == (
        KEY,
        "pass",
        "lifeguard",
        "trust/app",
    )
    assert record.key_id is not None and record.key_id.startswith("arn:aws:kms:")
    audits = stack.store.list_audit(datetime.now(UTC).date(), limit=200).items
    assert [(a.action, a.outcome) for a in audits if a.target == f"{ecr_host()}/trust/app@{digest}"] == [
        ("sign", "signed")
    ]

    status, body = _get(chalice_client, f"/images/{digest}/signature")
    assert status == 200
    assert body["signed"] is True
    (reported,) = body["signatures"]
    assert (reported["key"], reported["verdict"], reported["verified"], reported["flagged"]) == (
        KEY,
        "pass",
        True,
        False,
    )
    status, body = _get(chalice_client, "/images/sha256:" + "0" * 64 + "/signature")
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.fixture(scope="module")
def failing(
    stack: Stack, chalice_client: Client, signing_key: bytes, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The sample's base layer alone, pushed to trust/failing (its policy fails HIGH findings)."""
    layout = tmp_path_factory.mktemp("failing") / "layout"
    base = build_layer(files_of(SAMPLES / "rootfs" / SAMPLE_LAYERS[0]))
    digest = write_oci_layout(layout, [base], config=SAMPLE_CONFIG, tag="1.0").manifest_digest
    assert digest is not None and stack.push(layout, "trust/failing", "1.0") == digest
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("trust/failing", digest, "1.0")
    ).payload
    assert [i["gate"] for i in result["images"]] == ["fail"]
    return digest


def test_a_failing_push_is_never_signed(stack: Stack, failing: str) -> None:
    assert Raw(stack).get(f"trust/failing/manifests/{_tag(failing, 'sig')}").status == 404
    assert stack.store.get_signatures(failing) == []
    record = stack.store.get_image(failing)
    assert record is not None and record.reasons == [
        "fail_on: 5 vulnerabilities at or above HIGH (CRITICAL: 2, HIGH: 3)"
    ]


def _run_task(ecs: Any, family: str, image: str) -> dict[str, Any]:
    task_def = ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": image, "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    (task,) = ecs.run_task(cluster="trust", taskDefinition=task_def, launchType="FARGATE", count=1)["tasks"]
    return dict(task)


def _task_event(task: dict[str, Any], digest: str, event_id: str) -> dict[str, Any]:
    """`ECS Task State Change` (RUNNING) as EventBridge delivers it, trimmed to what ECS sends."""
    (container,) = task["containers"]
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": LOCAL_ACCOUNT,
        "time": "2026-11-24T09:00:00Z",
        "region": LOCAL_REGION,
        "resources": [task["taskArn"]],
        "detail": {
            "clusterArn": task["clusterArn"],
            "taskArn": task["taskArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "group": "family:app",
            "launchType": "FARGATE",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "version": 2,
            "containers": [
                {
                    "containerArn": container["containerArn"],
                    "name": container["name"],
                    "image": container["image"],
                    "imageDigest": digest,
                    "lastStatus": "RUNNING",
                    "taskArn": task["taskArn"],
                }
            ],
        },
    }


def test_enforce_mode_stops_the_failing_task_and_keeps_the_signed_one(
    stack: Stack, chalice_client: Client, signing_key: bytes, sample: tuple[Path, str], failing: str
) -> None:
    _, signed = sample
    assert stack.store.get_signatures(signed), "the passing push was signed (test above)"
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1000})
    try:
        ecs = runtime.client("ecs")
        ecs.create_cluster(clusterName="trust")
        good = _run_task(ecs, "good", f"{ecr_host()}/trust/app:1.0")
        bad = _run_task(ecs, "bad", f"{ecr_host()}/trust/failing:1.0")
        for task, digest, event_id in ((good, signed, "ev-good"), (bad, failing, "ev-bad")):
            chalice_client.lambda_.invoke("on_ecs_task_state_change", _task_event(task, digest, event_id))
        described = {
            t["taskArn"]: (t["desiredStatus"], t.get("stoppedReason"))
            for t in ecs.describe_tasks(cluster="trust", tasks=[good["taskArn"], bad["taskArn"]])["tasks"]
        }
    finally:
        state_manager.unset_transition("ecs::task")
    bad_image = f"{ecr_host()}/trust/failing@{failing}"
    gate = "fail_on: 5 vulnerabilities at or above HIGH (CRITICAL: 2, HIGH: 3)"
    reasons = [
        f"image {bad_image} failed its gate: {gate}",
        f"image {bad_image} is not signed by {KEY}",
    ]
    assert described[good["taskArn"]] == ("RUNNING", "")
    assert described[bad["taskArn"]] == ("STOPPED", f"Lifeguard: {reasons[0]} (+1 more)")
    audits = {a.target: a for a in stack.store.list_audit(datetime.now(UTC).date(), limit=200).items}
    assert (audits[good["taskArn"]].outcome, audits[good["taskArn"]].decision) == ("allowed", "allow")
    assert (audits[bad["taskArn"]].outcome, audits[bad["taskArn"]].reasons) == ("stopped", reasons)


def _review(uid: str, image: str) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
           "spec": {"containers": [{"name": "app", "image": image}]}}  # fmt: skip
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": {"username": "deployer"},
            "object": pod,
            "dryRun": False,
        },
    }


def test_admission_answers_by_the_same_rules(
    chalice_client: Client, signing_key: bytes, sample: tuple[Path, str], failing: str
) -> None:
    _, signed = sample
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    answers = {}
    for uid, image in (
        ("u-good", f"{ecr_host()}/trust/app@{signed}"),
        ("u-bad", f"{ecr_host()}/trust/failing@{failing}"),
    ):
        response = chalice_client.http.post(
            "/admission/validate", headers=headers, body=json.dumps(_review(uid, image))
        )
        assert response.status_code == 200, response.body
        answers[uid] = json.loads(response.body)["response"]
    assert answers["u-good"] == {"uid": "u-good", "allowed": True}
    bad = answers["u-bad"]
    assert (bad["allowed"], bad["status"]["code"]) == (False, 403)
    assert bad["status"]["message"].count("failed its gate: fail_on: 5 vulnerabilities at or above HIGH") == 1
    wrong = {**headers, "Authorization": "Bearer not-the-token"}
    refused = chalice_client.http.post(
        "/admission/validate", headers=wrong, body=json.dumps(_review("u", "x"))
    )
    assert refused.status_code == 403
