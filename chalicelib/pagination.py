"""Opaque cursors and pages for every list the API returns.

A cursor is base64url (no padding) of a small JSON object: the DynamoDB key of the last item
returned and a short hash of the query it belongs to. The scope hash lets us refuse a cursor that
was minted for another query (another digest, another severity filter) with a clean 400 instead of
letting DynamoDB fail, or silently paging through the wrong partition. Cursors are not secret
(every caller is IAM-authenticated) so they are not signed; they are checked, not trusted.

Pure: no boto3 here; the store turns the plain string keys into AttributeValues."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from chalicelib.errors import InputError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: long enough for any key we mint (keys are < 1 KiB each), short enough to bound parsing work
MAX_CURSOR_LENGTH = 4096
_CURSOR_VERSION = 1

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; `next_cursor` is None on the last page."""

    items: list[T] = Field(default_factory=list)
    next_cursor: str | None = None


def check_limit(limit: int | None) -> int:
    """Default 50, at most 200: one page must stay one small DynamoDB read and one small response."""
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return limit


def scope_of(*parts: str) -> str:
    """A short, stable fingerprint of a query's identity (never its values in clear)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def encode_cursor(key: dict[str, str], scope: str) -> str:
    """Make an opaque cursor from the key of the last item of a page."""
    payload = json.dumps({"v": _CURSOR_VERSION, "s": scope, "k": key}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None,
    scope: str,
    key_names: frozenset[str],
    partition: tuple[str, str],
) -> dict[str, str] | None:
    """Turn a cursor back into a start key, or raise InputError.

    `key_names` are exactly the attributes the start key must have (table keys, plus the index
    keys for a GSI query); `partition` is (attribute, value) of the partition being queried, which
    the key must match so a tampered cursor cannot steer the query anywhere else."""
    if cursor is None or cursor == "":
        return None
    invalid = InputError("invalid cursor")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise invalid from exc
    if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION or data.get("s") != scope:
        raise invalid
    key = data.get("k")
    if not isinstance(key, dict) or set(key) != key_names:
        raise invalid
    if not all(isinstance(v, str) and v for v in key.values()):
        raise invalid
    attr, value = partition
    if key[attr] != value:
        raise invalid
    return {str(k): str(v) for k, v in key.items()}
