"""The fan-out's AWS edge: re-match batches onto the SQS queue `lifeguard-rematch-requests`, ten
messages per SendMessageBatch call (the API's maximum), retrying the entries SQS reports as failed.

The sqs client is passed in (moto in tests) and typed Any: boto3 ships no stubs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from chalicelib.errors import StoreError
from chalicelib.rematch import RematchBatch

REMATCH_QUEUE = "lifeguard-rematch-requests"
SEND_BATCH_MAX = 10


class FanOut(BaseModel):
    """What one fan-out sent: `messages` batches holding `images` digests in all."""

    index_version: str
    messages: int = 0
    images: int = 0


def send_batches(
    sqs: Any,
    queue_url: str,
    batches: Iterable[RematchBatch],
    index_version: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 5,
) -> FanOut:
    """Send every batch as one message. Entries SQS fails (throttling, a transient error) are sent
    again after 0.1, 0.2, 0.4 ... s; still failing after `max_attempts`, StoreError: the fan-out
    then fails and can be run again safely (already re-matched images are skipped)."""
    result = FanOut(index_version=index_version)
    pending: list[RematchBatch] = []
    for batch in batches:
        pending.append(batch)
        if len(pending) == SEND_BATCH_MAX:
            _send(sqs, queue_url, pending, sleep, max_attempts)
            result.messages += len(pending)
            result.images += sum(len(b.digests) for b in pending)
            pending = []
    if pending:
        _send(sqs, queue_url, pending, sleep, max_attempts)
        result.messages += len(pending)
        result.images += sum(len(b.digests) for b in pending)
    return result


def _send(
    sqs: Any, queue_url: str, batches: list[RematchBatch], sleep: Callable[[float], None], max_attempts: int
) -> None:
    entries = {str(n): batch.model_dump_json() for n, batch in enumerate(batches)}
    for attempt in range(max(1, max_attempts)):
        resp = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in entries.items()],
        )
        failed = {str(f["Id"]) for f in resp.get("Failed") or []}
        entries = {k: v for k, v in entries.items() if k in failed}
        if not entries:
            return
        if attempt + 1 < max_attempts:
            sleep(min(0.1 * 2**attempt, 5.0))
    raise StoreError(
        f"{len(entries)} re-match messages not accepted by {queue_url} after {max_attempts} attempts"
    )
