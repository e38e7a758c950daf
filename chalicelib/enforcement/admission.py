"""The EKS validating admission webhook: AdmissionReview v1 in, AdmissionReview v1 out, decided by
the same rules as ECS (`enforcement.decision`).

- Images come from a Pod's `containers`, `initContainers` and `ephemeralContainers`, or from the
  pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job or
  CronJob (so a bad Deployment is refused at `kubectl apply`, not later as pods that never start).
  Other kinds carry no images: allowed, nothing audited.
- `enforce`: a refusal answers `allowed: false` with `status: {code: 403, message}`.
  `audit` (default) or dry-run: `allowed: true` with one `warnings` entry per reason (kubectl
  prints them), and the audit record says `would_deny`.
- The store unreachable or slow (the admission store client has 1 s timeouts and 2 attempts, see
  `runtime.admission_store`): `LIFEGUARD_ADMISSION_FAILURE=open` (default) allows with a warning,
  `closed` refuses with code 500. The webhook's own `failurePolicy` covers Lifeguard not answering
  at all (docs/ENFORCEMENT.md).
- An AdmissionReview with `request.dryRun: true` is decided but not audited (the webhook declares
  `sideEffects: NoneOnDryRun`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.enforcement.decision import DecisionConfig, ImageUse, decide, required_digests
from chalicelib.enforcement.facts import load_facts
from chalicelib.errors import InputError, StoreError
from chalicelib.observability import logger
from chalicelib.store import ScanStore
from chalicelib.store_models import AuditRecord, utc_now

API_VERSION = "admission.k8s.io/v1"
ACTOR = "admission"
ACTION = "admission"
#: where each workload kind keeps its pod spec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class _K8s(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class GroupVersionKind(_K8s):
    group: str = ""
    version: str = ""
    kind: str


class AdmissionRequest(_K8s):
    uid: str = Field(min_length=1)
    kind: GroupVersionKind
    sub_resource: str | None = Field(default=None, alias="subResource")
    name: str | None = None
    namespace: str | None = None
    operation: str
    user_info: dict[str, Any] = Field(default_factory=dict, alias="userInfo")
    object: dict[str, Any] | None = None
    dry_run: bool = Field(default=False, alias="dryRun")


class AdmissionReview(_K8s):
    api_version: Literal["admission.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class ResponseStatus(_K8s):
    code: int
    message: str


class AdmissionResponse(_K8s):
    uid: str
    allowed: bool
    status: ResponseStatus | None = None
    warnings: list[str] | None = None


class AdmissionReviewResponse(_K8s):
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = "AdmissionReview"
    response: AdmissionResponse

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ContainerSpec(_K8s):
    name: str | None = None
    image: str | None = None


class PodSpec(_K8s):
    containers: list[ContainerSpec] = Field(default_factory=list)
    init_containers: list[ContainerSpec] = Field(default_factory=list, alias="initContainers")
    ephemeral_containers: list[ContainerSpec] = Field(default_factory=list, alias="ephemeralContainers")


@dataclass(frozen=True)
class AdmissionDeps:
    store: ScanStore
    config: DecisionConfig
    mode: Literal["audit", "enforce"]
    failure: Literal["open", "closed"]
    dry_run: bool = False
    now: Callable[[], datetime] = field(default=utc_now)


def parse_review(raw: Any) -> AdmissionReview:
    try:
        return AdmissionReview.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InputError(f"not an AdmissionReview v1 request: {problems}") from exc


def images_of(request: AdmissionRequest) -> list[ImageUse]:
    """Every container image of the object, init containers first (pod start order)."""
    path = POD_SPEC_PATHS.get(request.kind.kind)
    node: Any = request.object
    if path is None or node is None:
        return []
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if node is None:
        return []
    try:
        spec = PodSpec.model_validate(node)
    except ValidationError as exc:
        raise InputError(f"{request.kind.kind} has a malformed pod spec: {exc.errors()[0]['msg']}") from exc
    containers = [*spec.init_containers, *spec.containers, *spec.ephemeral_containers]
    return [ImageUse(container=c.name, image=c.image or "") for c in containers]


def target_of(request: AdmissionRequest) -> str:
    """`<namespace>/<Kind>/<name>`; a pod created from `generateName` has no name yet."""
    meta = (request.object or {}).get("metadata") or {}
    name = (
        request.name or meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "")
    )
    return f"{request.namespace or meta.get('namespace') or ''}/{request.kind.kind}/{name}"


def review(admission: AdmissionReview, deps: AdmissionDeps) -> AdmissionReviewResponse:
    request = admission.request
    images = images_of(request)
    if request.operation not in ("CREATE", "UPDATE") or not images:
        return _answer(request.uid, allowed=True)
    target = target_of(request)
    started = time.perf_counter()
    try:
        facts = load_facts(deps.store, required_digests(images), deps.config.signing_key)
    except (StoreError, ClientError, BotoCoreError) as exc:
        return _failed(request, target, images, exc, deps)
    decision = decide(images, facts, deps.config)
    mode = "dry-run" if deps.dry_run else deps.mode
    if decision.allowed:
        outcome, answer = "allowed", _answer(request.uid, allowed=True)
    elif mode == "enforce":
        message = f"Lifeguard denied {target}: " + "; ".join(decision.reasons)
        outcome = "denied"
        answer = _answer(request.uid, allowed=False, status=ResponseStatus(code=403, message=message))
    else:
        label = "audit mode" if mode == "audit" else "dry-run"
        warnings = [f"Lifeguard would deny ({label}): {reason}" for reason in decision.reasons]
        outcome, answer = "would_deny", _answer(request.uid, allowed=True, warnings=warnings)
    _audit(
        request,
        deps,
        target=target,
        allowed=decision.allowed,
        outcome=outcome,
        reasons=decision.reasons,
        images=decision.images,
    )
    logger.info(
        "admission decided",
        extra={
            "uid": request.uid,
            "target": target,
            "outcome": outcome,
            "ms": (time.perf_counter() - started) * 1000,
        },
    )
    return answer


def _answer(
    uid: str, *, allowed: bool, status: ResponseStatus | None = None, warnings: list[str] | None = None
) -> AdmissionReviewResponse:
    return AdmissionReviewResponse(
        response=AdmissionResponse(uid=uid, allowed=allowed, status=status, warnings=warnings or None)
    )


def audit_id(uid: str) -> str:
    return "admission-" + hashlib.sha256(uid.encode()).hexdigest()[:24]


def _audit(
    request: AdmissionRequest,
    deps: AdmissionDeps,
    *,
    target: str,
    allowed: bool,
    outcome: str,
    reasons: list[str],
    images: list[str],
) -> None:
    """One record per decision; skipped for the API server's own dry-run requests. A failed write
    is logged, not raised: the answer is already decided, and the log line carries the record."""
    if request.dry_run:
        return
    record = AuditRecord(
        id=audit_id(request.uid),
        at=deps.now(),
        actor=ACTOR,
        action=ACTION,
        target=target,
        decision="allow" if allowed else "deny",
        outcome=outcome,
        mode="dry-run" if deps.dry_run else deps.mode,
        reasons=reasons,
        event_id=request.uid,
        images=images,
    )
    try:
        deps.store.put_audit(record)
    except (StoreError, ClientError, BotoCoreError) as exc:
        logger.error(
            "admission audit record not written",
            extra={"record": record.model_dump(mode="json"), "error": str(exc)},
        )


def _failed(
    request: AdmissionRequest,
    target: str,
    images: list[ImageUse],
    exc: Exception,
    deps: AdmissionDeps,
) -> AdmissionReviewResponse:
    """The store could not answer: allow or refuse as `LIFEGUARD_ADMISSION_FAILURE` says."""
    allowed = deps.failure == "open"
    verb = "allowed" if allowed else "denied"
    message = (
        f"Lifeguard could not check the images of {target} ({type(exc).__name__}); "
        f"{verb} because LIFEGUARD_ADMISSION_FAILURE={deps.failure}"
    )
    logger.error("admission check failed", extra={"uid": request.uid, "target": target, "error": str(exc)})
    _audit(
        request,
        deps,
        target=target,
        allowed=allowed,
        outcome="error",
        reasons=[message],
        images=[use.image for use in images],
    )
    if allowed:
        return _answer(request.uid, allowed=True, warnings=[message])
    return _answer(request.uid, allowed=False, status=ResponseStatus(code=500, message=message))
