"""pydantic models of what the store takes in (push metadata) and hands back (records for the API).

They are the store's boundary: no DynamoDB types (Decimal, AttributeValue) ever leak past them.
Field names are the JSON the HTTP API returns; add fields, never rename them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from chalicelib.models import OSInfo, Severity


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
    sbom_key: str | None = None
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
