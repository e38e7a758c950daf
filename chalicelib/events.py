"""pydantic models of the AWS events Lifeguard accepts (contract: real EventBridge shapes, delivered
directly or as SQS message bodies; unknown fields ignored)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import EventError

_DIGEST = r"^sha256:[0-9a-f]{64}$"


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class EcrImageActionDetail(_Event):
    result: str
    repository_name: str = Field(alias="repository-name", min_length=2, max_length=256)
    image_digest: str = Field(alias="image-digest", pattern=_DIGEST)
    action_type: str = Field(alias="action-type")
    #: absent when the image was pushed by digest
    image_tag: str | None = Field(default=None, alias="image-tag")


class EcrImageActionEvent(_Event):
    id: str | None = None
    detail_type: Literal["ECR Image Action"] = Field(alias="detail-type")
    source: Literal["aws.ecr"]
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(min_length=1)
    time: datetime | None = None
    detail: EcrImageActionDetail


E = TypeVar("E", bound=BaseModel)


def _parse_event(raw: Any, model: type[E], name: str) -> E:
    """`model` from a dict, or from an SQS body (JSON text); any problem is an EventError that
    names the event type and the first fields at fault."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EventError(f"event body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventError(f"an event is a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise EventError(f"not a valid {name} event: {problems}") from exc


def parse_ecr_event(raw: Any) -> EcrImageActionEvent:
    """An `ECR Image Action` event from a dict, or from an SQS body (JSON text)."""
    return _parse_event(raw, EcrImageActionEvent, "ECR Image Action")


# --- S3 `Object Created` through EventBridge (the published vulnerability index) -----------------


class S3BucketRef(_Event):
    name: str = Field(min_length=1)


class S3ObjectRef(_Event):
    key: str = Field(min_length=1)
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")


class S3ObjectCreatedDetail(_Event):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3ObjectCreatedEvent(_Event):
    """What S3 sends to EventBridge when an object is written (the bucket has EventBridge
    notifications on). Object keys arrive URL-encoded in S3 notifications: `key` is decoded."""

    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    source: Literal["aws.s3"]
    time: datetime | None = None
    detail: S3ObjectCreatedDetail

    @property
    def url(self) -> str:
        return f"s3://{self.detail.bucket.name}/{unquote_plus(self.detail.object.key)}"


def parse_s3_object_created(raw: Any) -> S3ObjectCreatedEvent | None:
    """The S3 event, or None when `raw` is another event (a manual invocation of the fan-out).
    An event that says it comes from S3 but does not have the shape is an EventError."""
    if not isinstance(raw, dict) or raw.get("source") != "aws.s3":
        return None
    return _parse_event(raw, S3ObjectCreatedEvent, "S3 Object Created")


# --- ECS `ECS Task State Change` (prevent-running) ------------------------------------------------


class EcsContainerState(_Event):
    """One container of the task, as DescribeTasks shows it. `imageDigest` is the digest the agent
    resolved (often absent while the task is PENDING and the image not pulled yet)."""

    name: str | None = None
    image: str | None = None
    image_digest: str | None = Field(default=None, alias="imageDigest", pattern=_DIGEST)
    last_status: str | None = Field(default=None, alias="lastStatus")


class EcsTaskDetail(_Event):
    cluster_arn: str = Field(alias="clusterArn", min_length=1)
    task_arn: str = Field(alias="taskArn", min_length=1)
    task_definition_arn: str | None = Field(default=None, alias="taskDefinitionArn")
    group: str | None = None
    last_status: str = Field(alias="lastStatus")
    desired_status: str = Field(alias="desiredStatus")
    launch_type: str | None = Field(default=None, alias="launchType")
    #: increases with every change of the task: (taskArn, version) identifies one state change
    version: int = Field(ge=0)
    containers: list[EcsContainerState] = Field(default_factory=list)


class EcsTaskStateChangeEvent(_Event):
    id: str = Field(min_length=1)
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(min_length=1)
    time: datetime | None = None
    resources: list[str] = Field(default_factory=list)
    detail: EcsTaskDetail


def parse_ecs_task_event(raw: Any) -> EcsTaskStateChangeEvent:
    """An `ECS Task State Change` event from a dict, or from an SQS body (JSON text)."""
    return _parse_event(raw, EcsTaskStateChangeEvent, "ECS Task State Change")
