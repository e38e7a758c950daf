"""What Lifeguard deploys, in one place: every Lambda function, every queue, every EventBridge rule.

A later part adds a function (a decorator in app.py + one `FunctionSpec` here), a queue (one
`QueueSpec`) or a rule (one `RuleSpec`); the stacks derive roles, log groups, event sources,
dead-letter queues and alarms from these entries. Synthesis fails when app.py defines a function
that has no entry here, so nothing is deployed with permissions nobody wrote down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Grant(Enum):
    """A named, reviewed set of permissions (`grants.py` turns each into IAM statements)."""

    TABLE_READ = "table_read"
    TABLE_WRITE = "table_write"
    IDEMPOTENCY = "idempotency"
    SBOM_READ = "sbom_read"
    SBOM_WRITE = "sbom_write"
    INDEX_READ = "index_read"
    INDEX_PUBLISH = "index_publish"
    POLICY_READ = "policy_read"
    REMATCH_SEND = "rematch_send"
    ECR_PULL = "ecr_pull"
    ECR_SIGNATURE_PUSH = "ecr_signature_push"
    SIGN = "sign"
    VERIFY = "verify"
    ECS_ENFORCE = "ecs_enforce"
    ASSUME_MEMBER_ROLE = "assume_member_role"
    ADMISSION_TOKEN = "admission_token"  # noqa: S105 (a permission's name, not a token)


Bus = Literal["default", "central"]


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue with its dead-letter queue (`<name>-dlq`, same key, redrive after
    `max_receive_count` receives). `name` is what app.py's `@app.on_sqs_message(queue=...)` uses."""

    key: str
    name: str
    #: AWS's advice for a Lambda event source: at least 6x the consumer's timeout
    visibility_timeout_s: int
    max_receive_count: int = 3
    retention_days: int = 4
    dlq_retention_days: int = 14


@dataclass(frozen=True)
class FunctionSpec:
    """One Chalice function and everything CDK adds that Chalice cannot express."""

    #: the Chalice function name (`name=` of the decorator; `api_handler` for the REST API)
    name: str
    #: the resource's logical id in the template `chalice package` writes
    logical_id: str
    memory_mb: int
    timeout_s: int
    grants: frozenset[Grant]
    ephemeral_mb: int = 512
    reserved_concurrency: int | None = None
    #: key of the QueueSpec this function consumes (Chalice's `on_sqs_message`); its event source
    #: gets `ReportBatchItemFailures`, the handler returns Powertools' partial batch response
    consumes: str | None = None
    #: invoked asynchronously (EventBridge, schedule): failed events go to the event-failures queue
    asynchronous: bool = False
    #: event buses the Chalice `on_cw_event` pattern is attached to (the Chalice default-bus rule
    #: is replaced by CDK rules with a DLQ and retry policy); empty: the Chalice rule is dropped
    event_buses: tuple[Bus, ...] = ()
    #: narrow the Chalice pattern to Lifeguard's own bucket (`detail.bucket.name`)
    only_own_bucket: bool = False
    #: why the function exists / how it is wired, for the review and docs/INFRA.md
    purpose: str = ""


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule to a queue. `pattern_of` reuses a Chalice function's own pattern, so a
    pattern is written once (in app.py)."""

    key: str
    description: str
    pattern_of: str
    target_queue: str
    buses: tuple[Bus, ...]


EVENT_FAILURES = "event-failures"

QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(key="scan", name="lifeguard-scan-requests", visibility_timeout_s=6 * 600, max_receive_count=3),
    QueueSpec(
        key="rematch", name="lifeguard-rematch-requests", visibility_timeout_s=6 * 300, max_receive_count=3
    ),
)

_SCAN_GRANTS = frozenset(
    {
        Grant.TABLE_WRITE,
        Grant.IDEMPOTENCY,
        Grant.SBOM_WRITE,
        Grant.INDEX_READ,
        Grant.POLICY_READ,
        Grant.ECR_PULL,
        Grant.ECR_SIGNATURE_PUSH,
        Grant.SIGN,
        Grant.ASSUME_MEMBER_ROLE,
    }
)

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="api_handler",
        logical_id="APIHandler",
        memory_mb=512,
        timeout_s=29,
        reserved_concurrency=20,
        # lookups; admission decisions write audit records; GET /images/{digest}/signature
        # re-verifies the signature in the registry against the signing key's public key
        grants=frozenset(
            {Grant.TABLE_WRITE, Grant.SBOM_READ, Grant.VERIFY, Grant.ECR_PULL, Grant.ASSUME_MEMBER_ROLE}
        ),
        purpose="REST API (IAM auth) and the EKS admission webhook (token authorizer)",
    ),
    FunctionSpec(
        name="admission_authorizer",
        logical_id="AdmissionAuthorizer",
        memory_mb=256,
        timeout_s=10,
        reserved_concurrency=10,
        grants=frozenset({Grant.ADMISSION_TOKEN}),
        purpose="custom authorizer of POST /admission/validate: bearer token from Secrets Manager",
    ),
    FunctionSpec(
        name="on_scan_request",
        logical_id="OnScanRequest",
        memory_mb=2048,
        timeout_s=600,
        ephemeral_mb=4096,
        reserved_concurrency=20,
        consumes="scan",
        grants=_SCAN_GRANTS,
        purpose="scans one pushed image per message (ECR push -> EventBridge -> scan queue)",
    ),
    FunctionSpec(
        name="on_ecr_image_action",
        logical_id="OnEcrImageAction",
        memory_mb=2048,
        timeout_s=600,
        ephemeral_mb=4096,
        reserved_concurrency=2,
        asynchronous=True,
        grants=_SCAN_GRANTS,
        purpose=(
            "direct path kept for replaying one ECR event by hand (`aws lambda invoke`); not wired "
            "to a rule: deployed pushes go through the scan queue"
        ),
    ),
    FunctionSpec(
        name="on_index_updated",
        logical_id="OnIndexUpdated",
        memory_mb=1024,
        timeout_s=900,
        ephemeral_mb=2048,
        reserved_concurrency=1,
        asynchronous=True,
        event_buses=("default",),
        only_own_bucket=True,
        grants=frozenset({Grant.TABLE_READ, Grant.INDEX_READ, Grant.REMATCH_SEND}),
        purpose="fans re-match batches out when a new vulnerability index lands in S3",
    ),
    FunctionSpec(
        name="on_rematch_request",
        logical_id="OnRematchRequest",
        memory_mb=2048,
        timeout_s=300,
        ephemeral_mb=2048,
        reserved_concurrency=10,
        consumes="rematch",
        grants=frozenset({Grant.TABLE_WRITE, Grant.SBOM_READ, Grant.INDEX_READ, Grant.POLICY_READ}),
        purpose="re-matches a batch of stored SBOMs against the new index",
    ),
    FunctionSpec(
        name="refresh_index",
        logical_id="RefreshIndex",
        memory_mb=3008,
        timeout_s=900,
        ephemeral_mb=4096,
        reserved_concurrency=1,
        asynchronous=True,
        grants=frozenset({Grant.INDEX_PUBLISH}),
        purpose="daily feed download -> compiled index -> S3 (LIFEGUARD_DB)",
    ),
    FunctionSpec(
        name="on_ecs_task_state_change",
        logical_id="OnEcsTaskStateChange",
        memory_mb=1024,
        timeout_s=60,
        reserved_concurrency=10,
        asynchronous=True,
        event_buses=("default", "central"),
        # trust facts and audit records in the table, (taskArn, version) idempotency, ECS here or
        # through the member role
        grants=frozenset({Grant.TABLE_WRITE, Grant.IDEMPOTENCY, Grant.ECS_ENFORCE, Grant.ASSUME_MEMBER_ROLE}),
        purpose="enforcement: stops tasks that run unsigned or quarantined images (when enforcing)",
    ),
)

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        key="ecr-push",
        description="ECR push (SUCCESS) -> scan queue",
        pattern_of="on_ecr_image_action",
        target_queue="scan",
        buses=("default", "central"),
    ),
)

#: central-bus forwarding from member accounts: the patterns of these functions / rules
FORWARDED_PATTERNS_OF: tuple[str, ...] = ("on_ecr_image_action", "on_ecs_task_state_change")


def check_packaged(logical_ids: Iterable[str]) -> None:
    """Chalice's template and the registry must list the same functions: a function without an
    entry would be deployed with permissions nobody reviewed, an entry without a function is a
    stale one."""
    packaged = set(logical_ids)
    registered = {spec.logical_id for spec in FUNCTIONS}
    if packaged != registered:
        raise ValueError(
            "app.py and infra/lifeguard_infra/registry.py disagree: "
            f"only in app.py {sorted(packaged - registered)}, "
            f"only in the registry {sorted(registered - packaged)}"
        )


def function(name: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(f"no FunctionSpec named {name!r} in infra/lifeguard_infra/registry.py")


def queue(key: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.key == key:
            return spec
    raise KeyError(f"no QueueSpec with key {key!r} in infra/lifeguard_infra/registry.py")
