"""pydantic models of what the store takes in (push metadata) and hands back (records for the API).

They are the store's boundary: no DynamoDB types (Decimal, AttributeValue) ever leak past them.
Field names are the JSON the HTTP API returns; add fields, never rename them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.models import ImageInfo, OSInfo, Package, Severity, Vulnerability


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (ECR and EventBridge timestamps are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScanMeta(BaseModel):
    """Where and when an image was pushed, and when we scanned it. `index_digest` is set when the
    image is one platform of a multi-arch push: the repository then lists the index, not it."""

    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    pushed_at: datetime
    scanned_at: datetime = Field(default_factory=utc_now)
    index_digest: str | None = None

    @field_validator("pushed_at", "scanned_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class ChildRef(BaseModel):
    """One platform manifest of a multi-arch index."""

    digest: str
    platform: str | None = None


class ImageRecord(BaseModel):
    """The summary of one image (kind=image) or of one multi-arch index (kind=index).

    For an index, the scan fields are None and `children` holds each platform's own record (None
    while that platform has not been scanned yet); `gate` is then derived: fail if any scanned
    child fails, pass when every child is scanned and passes, None while any is pending."""

    digest: str
    kind: Literal["image", "index"] = "image"
    registry: str | None = None
    repository: str | None = None
    tags: list[str] = Field(default_factory=list)
    pushed_at: datetime | None = None
    scanned_at: datetime | None = None
    index_digest: str | None = None
    platform: str | None = None
    config_digest: str | None = None
    os: OSInfo | None = None
    vulnerabilities: dict[Severity, int] | None = None
    packages: int | None = None
    secrets: int | None = None
    misconfigurations: int | None = None
    suppressed: int | None = None
    db_version: str | None = None
    gate: Literal["pass", "fail"] | None = None
    reasons: list[str] = Field(default_factory=list)
    #: the policy that decided (`ScanSummary.policy`: `[name@]sha256:...`); None: no rule was set
    policy: str | None = None
    sbom_key: str | None = None
    #: when re-matching against a newer vulnerability index last changed this summary
    rematched_at: datetime | None = None
    children: list[ChildImage] = Field(default_factory=list)


class ChildImage(BaseModel):
    digest: str
    platform: str | None = None
    image: ImageRecord | None = None


ImageRecord.model_rebuild()


class AffectedImage(BaseModel):
    """One finding of a vulnerability in one image (the CVE blast radius). `matched_alias` is the
    alias the lookup matched when it was not the finding's primary id."""

    vulnerability_id: str
    aliases: list[str] = Field(default_factory=list)
    matched_alias: str | None = None
    digest: str
    index_digest: str | None = None
    registry: str | None = None
    repository: str | None = None
    package: str
    ecosystem: str
    installed_version: str
    fixed_version: str | None = None
    severity: Severity = Severity.UNKNOWN
    cvss_score: float | None = None
    path: str


class RepositoryImage(BaseModel):
    """One image (or multi-arch index) pushed to a repository. `gate` and `vulnerabilities` are
    copied from the scan at write time (None for an index)."""

    digest: str
    kind: Literal["image", "index"] = "image"
    registry: str
    repository: str
    tags: list[str] = Field(default_factory=list)
    pushed_at: datetime
    platform: str | None = None
    gate: Literal["pass", "fail"] | None = None
    vulnerabilities: dict[Severity, int] | None = None


class StoredSbom(BaseModel):
    """The SBOM object `put_scan` writes to S3 (`sboms/<digest>.json`): enough to re-match an image
    when the vulnerability data changes, without pulling it again. Unknown fields are ignored so
    later writers can add to it."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["lifeguard-sbom"] = "lifeguard-sbom"
    version: int = 1
    image: ImageInfo
    packages: list[Package] = Field(default_factory=list)


ChangeKind = Literal["new", "resolved", "changed", "verdict"]


class ChangeRecord(BaseModel):
    """One change re-matching found in an image (docs/DATA.md, "Change record").

    `new` / `resolved` / `changed` are about one finding, named by `vulnerability_id` and
    `package` (+ ecosystem and installed version); `verdict` is a gate flip. Fields come in
    before/after pairs: `previous_*` is the state before the change (None for `new`), the
    unprefixed field the state after it (None for `resolved`). `changed_fields` lists what moved
    for `changed` (`severity`, `fixed_version`, `known_exploited`)."""

    digest: str
    kind: ChangeKind
    detected_at: datetime
    db_version: str
    previous_db_version: str | None = None
    registry: str | None = None
    repository: str | None = None
    vulnerability_id: str | None = None
    aliases: list[str] = Field(default_factory=list)
    package: str | None = None
    ecosystem: str | None = None
    installed_version: str | None = None
    path: str | None = None
    purl: str | None = None
    changed_fields: list[str] = Field(default_factory=list)
    severity: Severity | None = None
    previous_severity: Severity | None = None
    fixed_version: str | None = None
    previous_fixed_version: str | None = None
    known_exploited: bool | None = None
    previous_known_exploited: bool | None = None
    gate: Literal["pass", "fail"] | None = None
    previous_gate: Literal["pass", "fail"] | None = None
    reasons: list[str] = Field(default_factory=list)

    @field_validator("detected_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class RematchWrite(BaseModel):
    """Everything one re-match of one image writes (`ScanStore.apply_rematch`): the new findings
    set, the change records, and the summary fields that move. `expected_db_version` and
    `expected_scanned_at` are what the summary said when the re-match started: the summary update
    is conditional on them, so a concurrent re-scan or a duplicate delivery that finished first
    wins instead of being overwritten."""

    digest: str
    vulnerabilities: list[Vulnerability]
    changes: list[ChangeRecord] = Field(default_factory=list)
    db_version: str
    gate: Literal["pass", "fail"]
    reasons: list[str] = Field(default_factory=list)
    policy: str | None = None
    suppressed: int | None = None
    rematched_at: datetime
    expected_db_version: str | None = None
    expected_scanned_at: datetime | None = None


class SignatureRecord(BaseModel):
    """One signature Lifeguard put on an image (docs/DATA.md, "Signature"): which key, when, with
    what verdict, and where the cosign-layout objects are in the registry. `flagged` is set when
    a later gate decision (a re-scan or a re-match against newer vulnerability data) failed the
    image after it was signed: the signature still verifies, but the image no longer passes."""

    digest: str
    #: the key as configured (`awskms:///alias/lifeguard-signing`)
    key: str
    #: the KMS key ARN that produced the signature (KMS returns it); None when unknown
    key_id: str | None = None
    signed_at: datetime
    #: `lifeguard` (the automatic path after a passing gate) or `operator` (`sign` on the CLI)
    signer: Literal["lifeguard", "operator"] = "lifeguard"
    verdict: Literal["pass", "fail"] | None = None
    db_version: str | None = None
    registry: str | None = None
    repository: str | None = None
    #: `sha256-<hex>.sig`
    signature_tag: str
    signature_manifest_digest: str | None = None
    attestation_manifest_digest: str | None = None
    #: sha256 of the simple-signing payload that was signed (hex)
    payload_sha256: str
    flagged: bool = False
    flagged_at: datetime | None = None
    flag_reasons: list[str] = Field(default_factory=list)

    @field_validator("signed_at", "flagged_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class AuditRecord(BaseModel):
    """Who did what to what, and why: every enforcement decision and every signature
    (docs/DATA.md, "Audit record"). `mode` is how the decision was carried out: `enforce` acted,
    `audit` only reported (the default), `dry-run` was asked not to act."""

    id: str = Field(min_length=1)
    at: datetime = Field(default_factory=utc_now)
    #: the function or principal that decided (`on_ecs_task_state_change`, `admission`, `cli`)
    actor: str
    #: `stop_task`, `admission`, `sign`, ...
    action: str
    #: what was acted on: a task ARN, `<namespace>/<kind>/<name>`, an image reference
    target: str
    decision: Literal["allow", "deny"]
    #: what happened: `stopped`, `would_stop`, `allowed`, `denied`, `signed`, `error`, ...
    outcome: str
    mode: Literal["audit", "enforce", "dry-run"] | None = None
    reasons: list[str] = Field(default_factory=list)
    #: the triggering event's id (EventBridge `id`, AdmissionReview `request.uid`)
    event_id: str | None = None
    account: str | None = None
    region: str | None = None
    images: list[str] = Field(default_factory=list)

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class TrustFacts(BaseModel):
    """What enforcement needs to know about one image digest, read in one BatchGetItem: its scan
    summary (None when never scanned) and its signature by the configured key (None when
    unsigned by that key)."""

    digest: str
    image: ImageRecord | None = None
    signature: SignatureRecord | None = None
