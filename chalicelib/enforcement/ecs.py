"""`ECS Task State Change` -> decide -> stop (enforce) or report (audit, dry-run) -> audit record.

Only a task that is starting or running and meant to keep running is judged (lastStatus PENDING or
RUNNING, desiredStatus RUNNING): a task already on its way down needs nothing from us. A PENDING
event whose only problem is a container without a digest yet is deferred, not decided: the agent
reports `imageDigest` once it pulled the image, and the RUNNING event is judged then (a RUNNING
event without digests is refused like any unpinned image).

Each decision writes exactly one `AuditRecord`; duplicates of one (taskArn, version) are absorbed
by the caller's idempotency (`enforcement.handlers`), so this function itself acts every time it
is called."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from chalicelib.enforcement.decision import (
    Decision,
    DecisionConfig,
    ImageUse,
    decide,
    required_digests,
    short_reason,
)
from chalicelib.enforcement.errors import EnforcementError
from chalicelib.enforcement.facts import load_facts
from chalicelib.events import EcsTaskDetail, EcsTaskStateChangeEvent
from chalicelib.observability import logger, metrics
from chalicelib.store import ScanStore
from chalicelib.store_models import AuditRecord, utc_now

ACTOR = "on_ecs_task_state_change"
ACTION = "stop_task"
JUDGED_LAST_STATUS = frozenset({"PENDING", "RUNNING"})

Mode = Literal["audit", "enforce", "dry-run"]


@dataclass(frozen=True)
class EnforcementDeps:
    """What enforcement needs from the outside world. `ecs_client(account, region)` returns an ECS
    client in that account (assuming the member role when it is not ours)."""

    store: ScanStore
    config: DecisionConfig
    mode: Literal["audit", "enforce"]
    ecs_client: Callable[[str, str], Any]
    #: record what enforce mode would do without doing it (`LIFEGUARD_DRY_RUN`)
    dry_run: bool = False
    now: Callable[[], datetime] = field(default=utc_now)

    @property
    def effective_mode(self) -> Mode:
        return "dry-run" if self.dry_run else self.mode


class TaskOutcome(BaseModel):
    """What one event did. `status`: `skipped` (not a starting/running task), `deferred` (waiting
    for digests), `decided` (see `outcome`: `allowed`, `stopped`, `would_stop`)."""

    status: Literal["skipped", "deferred", "decided"]
    task_arn: str
    version: int
    outcome: str | None = None
    decision: Literal["allow", "deny"] | None = None
    mode: Mode | None = None
    reasons: list[str] = Field(default_factory=list)
    audit_id: str | None = None


def is_judged(detail: EcsTaskDetail) -> bool:
    return detail.desired_status == "RUNNING" and detail.last_status in JUDGED_LAST_STATUS


def images_of(detail: EcsTaskDetail) -> list[ImageUse]:
    return [ImageUse(container=c.name, image=c.image or "", digest=c.image_digest) for c in detail.containers]


def audit_id(task_arn: str, version: int) -> str:
    """Stable per (task, version): a retried delivery that gets past idempotency writes the same id."""
    return "ecs-" + hashlib.sha256(f"{task_arn}#{version}".encode()).hexdigest()[:24]


def enforce_task(event: EcsTaskStateChangeEvent, deps: EnforcementDeps) -> TaskOutcome:
    detail = event.detail
    base = {"task_arn": detail.task_arn, "version": detail.version}
    if not is_judged(detail):
        return TaskOutcome(status="skipped", **base)
    images = images_of(detail)
    facts = load_facts(deps.store, required_digests(images), deps.config.signing_key)
    decision = decide(images, facts, deps.config)
    if not decision.allowed and decision.undecided and detail.last_status == "PENDING":
        logger.info("task images have no digest yet; waiting for the RUNNING event", extra=base)
        return TaskOutcome(status="deferred", reasons=decision.reasons, **base)
    mode = deps.effective_mode
    if decision.allowed:
        outcome = "allowed"
    elif mode == "enforce":
        _stop(event, decision, deps)
        outcome = "stopped"
    else:
        outcome = "would_stop"
    record = AuditRecord(
        id=audit_id(detail.task_arn, detail.version),
        at=deps.now(),
        actor=ACTOR,
        action=ACTION,
        target=detail.task_arn,
        decision="allow" if decision.allowed else "deny",
        outcome=outcome,
        mode=mode,
        reasons=decision.reasons,
        event_id=event.id,
        account=event.account,
        region=event.region,
        images=decision.images,
    )
    deps.store.put_audit(record)
    metrics.add_metric(name=f"Tasks{outcome.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    log = logger.info if decision.allowed else logger.warning
    log("task judged", extra={**base, "outcome": outcome, "mode": mode, "reasons": decision.reasons})
    return TaskOutcome(
        status="decided",
        outcome=outcome,
        decision=record.decision,
        mode=mode,
        reasons=decision.reasons,
        audit_id=record.id,
        **base,
    )


def _stop(event: EcsTaskStateChangeEvent, decision: Decision, deps: EnforcementDeps) -> None:
    """StopTask in the task's own account and region. A failure is audited (`error`) and raised:
    the event is retried, and an operator sees why the task still runs."""
    detail = event.detail
    reason = short_reason(decision.reasons)
    try:
        client = deps.ecs_client(event.account, event.region)
        client.stop_task(cluster=detail.cluster_arn, task=detail.task_arn, reason=reason)
    except (ClientError, BotoCoreError, EnforcementError) as exc:
        deps.store.put_audit(
            AuditRecord(
                id=audit_id(detail.task_arn, detail.version) + "-error",
                at=deps.now(),
                actor=ACTOR,
                action=ACTION,
                target=detail.task_arn,
                decision="deny",
                outcome="error",
                mode="enforce",
                reasons=[*decision.reasons, f"stop_task failed: {exc}"],
                event_id=event.id,
                account=event.account,
                region=event.region,
                images=decision.images,
            )
        )
        logger.error("stop_task failed", extra={"task_arn": detail.task_arn, "error": str(exc)})
        raise EnforcementError(f"cannot stop {detail.task_arn}: {exc}") from exc
