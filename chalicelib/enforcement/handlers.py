"""What app.py's enforcement triggers call: parse, make idempotent, call the service, shape the
answer. No rules here (`enforcement.decision`), no AWS wiring (`runtime`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from chalice.app import AuthResponse, AuthRoute

from chalicelib import runtime
from chalicelib.enforcement.admission import parse_review, review
from chalicelib.enforcement.authorizer import is_authorized
from chalicelib.enforcement.ecs import TaskOutcome, enforce_task, is_judged
from chalicelib.errors import InputError, LifeguardError
from chalicelib.events import EcsTaskStateChangeEvent, parse_ecs_task_event
from chalicelib.observability import logger

#: one (taskArn, version) is acted on once within a day; ECS versions only grow
ECS_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
ADMISSION_PATH = "/admission/validate"
ADMISSION_PRINCIPAL = "kubernetes-apiserver"


@cache
def _ecs_idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[detail.task_arn, detail.version]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ECS_IDEMPOTENCY_TTL_SECONDS,
    )


@cache
def _idempotent_enforce() -> Callable[..., TaskOutcome]:
    persistence = DynamoDBPersistenceLayer(
        table_name=runtime.settings().idempotency_table, boto3_client=runtime.client("dynamodb")
    )

    def enforce(request: EcsTaskStateChangeEvent) -> TaskOutcome:
        return enforce_task(request, runtime.enforcement_deps())

    wrapped: Callable[..., TaskOutcome] = idempotent_function(
        enforce,
        data_keyword_argument="request",
        persistence_store=persistence,
        config=_ecs_idempotency_config(),
        output_serializer=PydanticSerializer(model=TaskOutcome),
    )
    return wrapped


def reset() -> None:
    _ecs_idempotency_config.cache_clear()
    _idempotent_enforce.cache_clear()


def handle_ecs_task_event(raw: Any, lambda_context: Any = None) -> dict[str, Any]:
    """One `ECS Task State Change` event (a dict, or an SQS body). Raises typed errors (a bad
    event: EventError; a failed stop: EnforcementError) so EventBridge retries, then sends the
    event to the on-failure destination."""
    try:
        event = parse_ecs_task_event(raw)
        if not is_judged(event.detail):
            return TaskOutcome(
                status="skipped", task_arn=event.detail.task_arn, version=event.detail.version
            ).model_dump(mode="json")
        if lambda_context is not None:  # lets an in-progress record expire with the invocation
            _ecs_idempotency_config().register_lambda_context(lambda_context)
        outcome: TaskOutcome = _idempotent_enforce()(request=event)
        return outcome.model_dump(mode="json")
    except LifeguardError as exc:
        logger.error("ECS task event failed", extra={"error_code": exc.code, "error": str(exc)})
        raise


def handle_admission(body: Any) -> tuple[int, dict[str, Any]]:
    """`POST /admission/validate`: an AdmissionReview v1 (JSON text or parsed) -> (200, the
    AdmissionReview answer). A body that is not an AdmissionReview is a 400 (the API server then
    applies the webhook's failurePolicy)."""
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise InputError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InputError("the body is not an AdmissionReview object")
    answer = review(parse_review(body), runtime.admission_deps())
    return 200, answer.to_json()


def authorize_admission(token_header: str | None) -> AuthResponse:
    """The custom authorizer: the admission route only, and only with the token of the secret.
    A token that cannot be checked (secret missing, unreadable) is refused, never let through."""
    try:
        allowed = is_authorized(token_header, runtime.admission_tokens())
    except LifeguardError as exc:
        logger.error("admission token cannot be checked", extra={"error_code": exc.code, "error": str(exc)})
        allowed = False
    if not allowed:
        logger.warning("admission call refused: bad or missing bearer token")
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=[AuthRoute(ADMISSION_PATH, ["POST"])], principal_id=ADMISSION_PRINCIPAL)
