"""The admission webhook: images out of every workload kind, the exact AdmissionReview answers
(allowed, denied, audit warnings, fail-open, fail-closed), its audit records, the bearer-token
authorizer (directly and through the Chalice local gateway, which runs custom authorizers)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.app import AuthRoute
from chalice.test import Client

from chalicelib import runtime
from chalicelib.enforcement import handlers as enforcement
from chalicelib.enforcement.admission import AdmissionRequest, audit_id, images_of, parse_review
from chalicelib.enforcement.authorizer import TokenCache, bearer_token, is_authorized
from chalicelib.enforcement.decision import ImageUse
from chalicelib.enforcement.errors import AuthorizerError
from chalicelib.errors import InputError
from tests.unit.test_enforcement_ecs import ECR, KEY, SECRET_NAME, Configure, audits, lifeguard_env, trusted
from tests.unit.test_store import dg, meta, scan_of

__all__ = ["lifeguard_env"]  # the fixture, shared with the ECS tests

UID = "705ab4f5-6393-11e8-b7cc-42010a800002"
TOKEN = "k8s-webhook-token-0123456789abcdef"


def pod_spec(*digests: int) -> dict[str, Any]:
    """An init container, app containers and an ephemeral (debug) container."""
    images = [f"{ECR}/payments/api@{dg(n)}" for n in digests]
    return {
        "initContainers": [{"name": "migrate", "image": images[0]}],
        "containers": [
            {"name": f"c{i}", "image": ref, "ports": [{"containerPort": 8080}]}
            for i, ref in enumerate(images[1:-1])
        ],
        "ephemeralContainers": [{"name": "debug", "image": images[-1]}],
    }


def review_body(
    obj: dict[str, Any] | None,
    kind: str = "Pod",
    *,
    operation: str = "CREATE",
    dry_run: bool = False,
    name: str = "web",
) -> dict[str, Any]:
    group, version = ("", "v1") if kind == "Pod" else ("apps", "v1")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "name": name,
            "namespace": "payments",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def pod(*digests: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "payments"},
        "spec": pod_spec(*digests),
    }


def request_of(body: dict[str, Any]) -> AdmissionRequest:
    return parse_review(body).request


# --- images out of workloads ---------------------------------------------------------------------


def test_images_of_a_pod_in_start_order() -> None:
    assert images_of(request_of(review_body(pod(1, 2, 3)))) == [
        ImageUse(container="migrate", image=f"{ECR}/payments/api@{dg(1)}"),
        ImageUse(container="c0", image=f"{ECR}/payments/api@{dg(2)}"),
        ImageUse(container="debug", image=f"{ECR}/payments/api@{dg(3)}"),
    ]


@pytest.mark.parametrize(
    ("kind", "wrap"),
    [
        ("Deployment", lambda spec: {"spec": {"replicas": 2, "template": {"spec": spec}}}),
        ("StatefulSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("DaemonSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("ReplicaSet", lambda spec: {"spec": {"template": {"spec": spec}}}),
        ("Job", lambda spec: {"spec": {"template": {"spec": spec}}}),
        (
            "CronJob",
            lambda spec: {
                "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": spec}}}}
            },
        ),
    ],
)
def test_images_of_workload_templates(kind: str, wrap: Any) -> None:
    found = images_of(request_of(review_body(wrap(pod_spec(1, 2)), kind)))
    assert [(u.container, u.image) for u in found] == [
        ("migrate", f"{ECR}/payments/api@{dg(1)}"),
        ("debug", f"{ECR}/payments/api@{dg(2)}"),
    ]


def test_kinds_without_pods_have_no_images_and_bad_specs_are_input_errors() -> None:
    assert images_of(request_of(review_body({"data": {"a": "b"}}, "ConfigMap"))) == []
    with pytest.raises(InputError, match=r"^Pod has a malformed pod spec: "):
        images_of(request_of(review_body({"spec": {"containers": "nginx"}})))
    with pytest.raises(InputError, match=r"^not an AdmissionReview v1 request: apiVersion: "):
        parse_review({**review_body(pod(1, 2)), "apiVersion": "admission.k8s.io/v1beta1"})


# --- answers -------------------------------------------------------------------------------------


def answer(body: dict[str, Any]) -> dict[str, Any]:
    status, out = enforcement.handle_admission(json.dumps(body))
    assert status == 200
    return out


def test_allowed_when_every_image_is_signed_and_passed(lifeguard_env: Configure) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    for n in (1, 2, 3):
        trusted(runtime.store(), dg(n))
    assert answer(review_body(pod(1, 2, 3))) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": UID, "allowed": True},
    }
    (record,) = audits()
    assert record.model_dump(exclude={"at"}) == {
        "id": audit_id(UID),
        "actor": "admission",
        "action": "admission",
        "target": "payments/Pod/web",
        "decision": "allow",
        "outcome": "allowed",
        "mode": "enforce",
        "reasons": [],
        "event_id": UID,
        "account": None,
        "region": None,
        "images": [f"{ECR}/payments/api@{dg(n)}" for n in (1, 2, 3)],
    }


def test_denied_in_enforce_mode(lifeguard_env: Configure) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    trusted(runtime.store(), dg(1))
    trusted(runtime.store(), dg(3))
    runtime.store().put_scan(scan_of(dg(2), [], gate="fail", reasons=["1 CRITICAL"]), meta())
    name = f"{ECR}/payments/api@{dg(2)}"
    assert answer(review_body(pod(1, 2, 3))) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": UID,
            "allowed": False,
            "status": {
                "code": 403,
                "message": f"Lifeguard denied payments/Pod/web: image {name} failed its gate: 1 CRITICAL; "
                f"image {name} is not signed by {KEY}",
            },
        },
    }
    assert [(r.decision, r.outcome, r.mode) for r in audits()] == [("deny", "denied", "enforce")]


def test_audit_mode_allows_with_warnings(lifeguard_env: Configure) -> None:
    trusted(runtime.store(), dg(1))
    trusted(runtime.store(), dg(2))
    deployment = {"spec": {"template": {"spec": pod_spec(1, 2, 3)}}}
    name = f"{ECR}/payments/api@{dg(3)}"
    assert answer(review_body(deployment, "Deployment")) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": UID,
            "allowed": True,
            "warnings": [
                f"Lifeguard would deny (audit mode): image {name} was never scanned",
                f"Lifeguard would deny (audit mode): image {name} is not signed by {KEY}",
            ],
        },
    }
    assert [(r.target, r.decision, r.outcome, r.mode) for r in audits()] == [
        ("payments/Deployment/web", "deny", "would_deny", "audit")
    ]


def test_api_server_dry_run_is_decided_but_not_audited(lifeguard_env: Configure) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    out = answer(review_body(pod(1, 2, 3), dry_run=True))
    assert out["response"]["allowed"] is False
    assert audits() == []


def test_delete_and_podless_kinds_are_allowed_without_a_record(lifeguard_env: Configure) -> None:
    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    allowed = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": UID, "allowed": True},
    }
    assert answer(review_body(None, operation="DELETE")) == allowed
    assert answer(review_body({"data": {}}, "ConfigMap")) == allowed
    assert audits() == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            "open",
            {
                "uid": UID,
                "allowed": True,
                "warnings": [
                    "Lifeguard could not check the images of payments/Pod/web (ResourceNotFoundException); "
                    "allowed because LIFEGUARD_ADMISSION_FAILURE=open"
                ],
            },
        ),
        (
            "closed",
            {
                "uid": UID,
                "allowed": False,
                "status": {
                    "code": 500,
                    "message": "Lifeguard could not check the images of payments/Pod/web "
                    "(ResourceNotFoundException); denied because LIFEGUARD_ADMISSION_FAILURE=closed",
                },
            },
        ),
    ],
)
def test_store_failure_answers_per_failure_policy(
    lifeguard_env: Configure, failure: str, expected: dict[str, Any]
) -> None:
    lifeguard_env(
        LIFEGUARD_ENFORCE="enforce", LIFEGUARD_ADMISSION_FAILURE=failure, LIFEGUARD_TABLE="no-such-table"
    )
    assert answer(review_body(pod(1, 2, 3))) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": expected,
    }


def test_a_body_that_is_not_an_admission_review_is_a_400(lifeguard_env: Configure) -> None:
    with pytest.raises(InputError, match=r"^the body is not JSON: "):
        enforcement.handle_admission(b"{nope")


# --- the bearer token ----------------------------------------------------------------------------


def test_bearer_token_parsing() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN
    assert bearer_token(f"bearer   {TOKEN} ") == TOKEN
    assert [bearer_token(h) for h in (None, "", "Bearer", "Bearer  ", f"Basic {TOKEN}", TOKEN)] == [None] * 6


def test_token_cache_ttl_and_rotation_refresh() -> None:
    now = [0.0]
    secrets = ["old-token"]
    fetches: list[float] = []

    def fetch() -> str:
        fetches.append(now[0])
        return secrets[0]

    cache = TokenCache(fetch, ttl=300, refresh_interval=30, clock=lambda: now[0])
    assert is_authorized("Bearer old-token", cache) is True
    assert is_authorized("Bearer old-token", cache) is True
    secrets[0] = "new-token"  # rotated
    now[0] = 10.0
    assert is_authorized("Bearer new-token", cache) is False  # too soon to ask again
    now[0] = 31.0
    assert is_authorized("Bearer new-token", cache) is True  # a mismatch refreshed it
    assert is_authorized("Bearer old-token", cache) is False
    assert fetches == [0.0, 31.0]
    now[0] = 400.0
    assert is_authorized("Bearer new-token", cache) is True
    assert fetches == [0.0, 31.0, 400.0]


def test_authorizer_function(lifeguard_env: Configure) -> None:
    runtime.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=TOKEN)
    ok = enforcement.authorize_admission(f"Bearer {TOKEN}")
    routes = [(r.path, r.methods) if isinstance(r, AuthRoute) else r for r in ok.routes]
    assert (ok.principal_id, routes) == (
        "kubernetes-apiserver",
        [("/admission/validate", ["POST"])],
    )
    for header in (f"Bearer {TOKEN}x", "Bearer ", None, TOKEN):
        refused = enforcement.authorize_admission(header)
        assert (refused.principal_id, refused.routes) == ("anonymous", [])


def test_authorizer_refuses_everything_without_a_readable_secret(lifeguard_env: Configure) -> None:
    refused = enforcement.authorize_admission(f"Bearer {TOKEN}")  # the secret does not exist
    assert refused.routes == []
    lifeguard_env(LIFEGUARD_ADMISSION_TOKEN_SECRET="")
    with pytest.raises(AuthorizerError, match=r"^LIFEGUARD_ADMISSION_TOKEN_SECRET is not set"):
        runtime.admission_tokens().matches(TOKEN)
    assert enforcement.authorize_admission(f"Bearer {TOKEN}").routes == []


# --- through the Chalice local gateway (custom authorizers run there) ----------------------------


def test_the_route_through_the_local_gateway(lifeguard_env: Configure) -> None:
    import app

    lifeguard_env(LIFEGUARD_ENFORCE="enforce")
    runtime.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=TOKEN)
    for n in (1, 2, 3):
        trusted(runtime.store(), dg(n))
    runtime.settings()  # read now: the Client sets .chalice/config.json's variables while it runs
    body = json.dumps(review_body(pod(1, 2, 3)))
    with Client(app.app, stage_name="local") as client:
        ok = client.http.post(
            "/admission/validate",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            body=body,
        )
        wrong = client.http.post(
            "/admission/validate",
            headers={"Content-Type": "application/json", "Authorization": "Bearer guess"},
            body=body,
        )
        garbage = client.http.post(
            "/admission/validate",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            body="[]",
        )
    assert (ok.status_code, json.loads(ok.body)) == (
        200,
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": UID, "allowed": True},
        },
    )
    assert wrong.status_code == 403
    assert (garbage.status_code, json.loads(garbage.body)) == (
        400,
        {"error": {"code": "bad_input", "message": "the body is not an AdmissionReview object"}},
    )
