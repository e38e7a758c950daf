"""What each trigger does, between app.py's decorators and the services: parse the event, make the
call idempotent, turn failures into partial batch responses. No scanning logic here."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import ValidationError

from chalicelib import index_publisher, runtime
from chalicelib.errors import EventError, LifeguardError
from chalicelib.events import parse_ecr_event, parse_s3_object_created
from chalicelib.observability import logger
from chalicelib.rematch import DEFAULT_BATCH_SIZE, RematchBatch, iter_rematch_batches, rematch_batch
from chalicelib.rematch_queue import send_batches
from chalicelib.scan_service import ScanOutcome, ScanRequest, scan_pushed_image

#: a push is scanned once per day at most; later re-matching uses the stored SBOM (Part 2)
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@cache
def _idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[account, region, repository, digest, action]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    )


@cache
def _idempotent_scan() -> Callable[..., ScanOutcome]:
    persistence = DynamoDBPersistenceLayer(
        table_name=runtime.settings().idempotency_table, boto3_client=runtime.client("dynamodb")
    )

    def scan(request: ScanRequest) -> ScanOutcome:
        return scan_pushed_image(request, runtime.scan_deps())

    wrapped: Callable[..., ScanOutcome] = idempotent_function(
        scan,
        data_keyword_argument="request",
        persistence_store=persistence,
        config=_idempotency_config(),
        output_serializer=PydanticSerializer(model=ScanOutcome),
    )
    return wrapped


def reset() -> None:
    _idempotency_config.cache_clear()
    _idempotent_scan.cache_clear()


def handle_ecr_event(raw: Any, lambda_context: Any = None) -> dict[str, Any]:
    """One ECR Image Action event (a dict, or an SQS body). Raises typed errors: the caller decides
    whether that means a retry (SQS) or the async on-failure destination (EventBridge)."""
    event = parse_ecr_event(raw)
    request = ScanRequest.from_event(event)
    if request is None:
        logger.info(
            "event needs no scan",
            extra={"action": event.detail.action_type, "result": event.detail.result},
        )
        return {"status": "skipped", "digest": event.detail.image_digest}
    if lambda_context is not None:  # lets an in-progress record expire with the invocation
        _idempotency_config().register_lambda_context(lambda_context)
    outcome: ScanOutcome = _idempotent_scan()(request=request)
    return {"status": "scanned", **outcome.model_dump(mode="json")}


def _handle_record(record: SQSRecord, lambda_context: Any = None) -> dict[str, Any]:
    try:
        return handle_ecr_event(record.body, lambda_context)
    except LifeguardError as exc:
        logger.error(
            "scan request failed; the message stays on the queue (retry, then DLQ)",
            extra={"message_id": record.message_id, "error_code": exc.code, "error": str(exc)},
        )
        raise


def handle_scan_batch(raw: dict[str, Any], lambda_context: Any = None) -> PartialItemFailureResponse:
    """SQS batch: every record is tried; failed ones are reported back (ReportBatchItemFailures)
    so only they return to the queue. A failure never loses the rest of the batch."""
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(
        event=raw,
        record_handler=lambda record: _handle_record(record, lambda_context),
        processor=processor,
    )


# --- fleet-wide re-matching ----------------------------------------------------------------------


def handle_index_updated(raw: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """The fan-out: an S3 `Object Created` event for the index (through EventBridge), or any other
    event for a manual run. Loads the current index (ETag checked now), lists the images whose
    findings do not come from it yet and sends one re-match message per batch of them. Running it
    twice is harmless: the second run finds fewer (or no) images to re-match."""
    event = parse_s3_object_created(raw)
    location = runtime.settings().db
    if event is not None and event.url != location:
        logger.info("object is not the index; no re-match", extra={"object": event.url, "index": location})
        return {"status": "skipped", "object": event.url}
    index = runtime.fresh_vuln_index()
    batches = iter_rematch_batches(runtime.store(), index.version, batch_size)
    fanout = send_batches(runtime.client("sqs"), runtime.rematch_queue_url(), batches, index.version)
    logger.info("re-match fan-out sent", extra=fanout.model_dump())
    return {"status": "planned", **fanout.model_dump()}


def _handle_rematch_record(record: SQSRecord) -> dict[str, Any]:
    try:
        try:
            batch = RematchBatch.model_validate_json(record.body)
        except ValidationError as exc:
            raise EventError(f"not a re-match batch: {exc.errors()[0]['msg']}") from exc
        return rematch_batch(batch, runtime.rematch_deps()).model_dump(mode="json")
    except LifeguardError as exc:
        logger.error(
            "re-match request failed; the message stays on the queue (retry, then DLQ)",
            extra={"message_id": record.message_id, "error_code": exc.code, "error": str(exc)},
        )
        raise


def handle_rematch_batch(raw: dict[str, Any], lambda_context: Any = None) -> PartialItemFailureResponse:
    """SQS batch of re-match messages, with partial batch failures like `handle_scan_batch`.
    No idempotency table needed: an image already matched with the index version is a no-op."""
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=raw, record_handler=_handle_rematch_record, processor=processor)


def handle_refresh_index(
    fetch: index_publisher.FeedFetcher = index_publisher.download_feeds,
) -> dict[str, Any]:
    """The scheduled refresh: feeds -> index -> `LIFEGUARD_DB` in S3 (skipped when the content is
    unchanged). The upload's S3 event starts the re-match fan-out."""
    workdir = Path(tempfile.gettempdir()) / "lifeguard-refresh"
    published = index_publisher.refresh_index(runtime.client("s3"), runtime.settings().db, workdir, fetch)
    logger.info("vulnerability index refreshed", extra=published.model_dump())
    return published.model_dump()
