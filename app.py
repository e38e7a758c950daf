"""Chalice wiring only: each trigger parses its input and calls one function (chalicelib.handlers
for events, chalicelib.api for routes). No logic here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import (
    AuthRequest,
    AuthResponse,
    Chalice,
    CloudWatchEvent,
    ConvertToMiddleware,
    IAMAuthorizer,
    Rate,
    Response,
    SQSEvent,
)

from chalicelib import api, handlers, runtime
from chalicelib.enforcement import handlers as enforcement
from chalicelib.observability import logger, metrics, tracer

app = Chalice(app_name="lifeguard")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
iam = IAMAuthorizer()

ECR_PUSH_PATTERN = {
    "source": ["aws.ecr"],
    "detail-type": ["ECR Image Action"],
    "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]},
}
SCAN_QUEUE = "lifeguard-scan-requests"
REMATCH_QUEUE = "lifeguard-rematch-requests"
#: S3 -> EventBridge when the published index is written (the bucket has EventBridge notifications
#: on; Chalice cannot package `on_s3_event` for an existing bucket). The handler checks the exact
#: bucket and key against LIFEGUARD_DB.
INDEX_UPDATED_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"object": {"key": [{"prefix": "vulndb/"}]}},
}


@app.on_cw_event(ECR_PUSH_PATTERN, name="on_ecr_image_action")
def on_ecr_image_action(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.handle_ecr_event(event.to_dict(), event.context)


@app.on_sqs_message(queue=SCAN_QUEUE, batch_size=5, name="on_scan_request")
def on_scan_request(event: SQSEvent) -> dict[str, Any]:
    return dict(handlers.handle_scan_batch(event.to_dict(), event.context))


@app.on_cw_event(INDEX_UPDATED_PATTERN, name="on_index_updated")
def on_index_updated(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.handle_index_updated(event.to_dict())


@app.on_sqs_message(queue=REMATCH_QUEUE, batch_size=1, name="on_rematch_request")
def on_rematch_request(event: SQSEvent) -> dict[str, Any]:
    return dict(handlers.handle_rematch_batch(event.to_dict(), event.context))


@app.schedule(Rate(1, unit=Rate.DAYS), name="refresh_index")
def refresh_index(event: CloudWatchEvent) -> dict[str, Any]:
    return handlers.handle_refresh_index()


def _respond(call: Callable[[], api.Response]) -> Response:
    try:
        status, body = call()
    except Exception as exc:
        status, body = api.error_body(exc)
        if status >= 500:
            logger.exception("API request failed")
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _request() -> tuple[Mapping[str, str] | None, Mapping[str, str] | None]:
    request = app.current_request
    assert request is not None
    return request.uri_params, request.query_params


@app.route("/images/{digest}", methods=["GET"], authorizer=iam)
def get_image(digest: str) -> Response:
    return _respond(lambda: api.get_image(runtime.store(), *_request()))


@app.route("/images/{digest}/findings", methods=["GET"], authorizer=iam)
def list_findings(digest: str) -> Response:
    return _respond(lambda: api.list_findings(runtime.store(), *_request()))


@app.route("/images/{digest}/changes", methods=["GET"], authorizer=iam)
def list_changes(digest: str) -> Response:
    return _respond(lambda: api.list_changes(runtime.store(), *_request()))


@app.route("/vulnerabilities/{vuln_id}/images", methods=["GET"], authorizer=iam)
def images_for_vulnerability(vuln_id: str) -> Response:
    return _respond(lambda: api.images_for_vulnerability(runtime.store(), {"id": vuln_id}, _request()[1]))


@app.route("/images", methods=["GET"], authorizer=iam)
def list_images() -> Response:
    return _respond(lambda: api.list_images(runtime.store(), None, _request()[1]))


@app.route("/images/{digest}/signature", methods=["GET"], authorizer=iam)
def get_signature(digest: str) -> Response:
    return _respond(lambda: api.get_signature(runtime.store(), runtime.check_signature, *_request()))


# --- enforcement (prevent-running): docs/ENFORCEMENT.md --------------------------------------------

ECS_TASK_PATTERN = {
    "source": ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    "detail": {"lastStatus": ["PENDING", "RUNNING"]},
}
ADMISSION_PATH = "/admission/validate"


@app.on_cw_event(ECS_TASK_PATTERN, name="on_ecs_task_state_change")
def on_ecs_task_state_change(event: CloudWatchEvent) -> dict[str, Any]:
    return enforcement.handle_ecs_task_event(event.to_dict(), event.context)


@app.authorizer()
def admission_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """The one route without IAM auth: the Kubernetes API server sends a bearer token."""
    return enforcement.authorize_admission(auth_request.token)


@app.route(
    ADMISSION_PATH, methods=["POST"], authorizer=admission_authorizer, content_types=["application/json"]
)
def admission_validate() -> Response:
    request = app.current_request
    assert request is not None
    return _respond(lambda: enforcement.handle_admission(request.raw_body))
