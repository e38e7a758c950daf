"""The admission webhook's bearer token: the Kubernetes API server cannot sign requests with
SigV4, so `POST /admission/validate` is the one route behind a token instead of IAM. The token is
the SecretString of a Secrets Manager secret (`LIFEGUARD_ADMISSION_TOKEN_SECRET`) and sits in the
webhook's kubeconfig (docs/ENFORCEMENT.md).

- Compared in constant time, on SHA-256 digests so that not even the length leaks.
- The secret is cached for `ttl` seconds (one GetSecretValue per warm Lambda per five minutes).
  After a rotation the new token is refused until the cache expires, unless a mismatch triggers
  a refresh: at most one every `refresh_interval` seconds, so a flood of bad tokens cannot turn
  into a flood of Secrets Manager calls.
- Neither token is ever logged."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.enforcement.errors import AuthorizerError

DEFAULT_TTL = 300.0
DEFAULT_REFRESH_INTERVAL = 30.0


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def secret_fetcher(secretsmanager: Any, secret_id: str | None) -> Callable[[], str]:
    """GetSecretValue(secret_id).SecretString; an unset, missing or empty secret is an
    AuthorizerError (and the request is refused)."""

    def fetch() -> str:
        if not secret_id:
            raise AuthorizerError(
                "LIFEGUARD_ADMISSION_TOKEN_SECRET is not set: the admission webhook refuses all calls"
            )
        try:
            value = secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
        except (ClientError, BotoCoreError) as exc:
            raise AuthorizerError(f"cannot read the admission token secret {secret_id}: {exc}") from exc
        if not value or not value.strip():
            raise AuthorizerError(f"the admission token secret {secret_id} has no SecretString")
        return str(value).strip()

    return fetch


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class TokenCache:
    def __init__(
        self,
        fetch: Callable[[], str],
        *,
        ttl: float = DEFAULT_TTL,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._token: bytes | None = None
        self._fetched_at = 0.0

    def _current(self, force: bool = False) -> bytes:
        with self._lock:
            now = self._clock()
            if self._token is None or force or now - self._fetched_at >= self._ttl:
                self._token = _digest(self._fetch())
                self._fetched_at = now
            return self._token

    def matches(self, presented: str) -> bool:
        wanted = _digest(presented)
        if hmac.compare_digest(wanted, self._current()):
            return True
        with self._lock:
            stale = self._clock() - self._fetched_at >= self._refresh_interval
        return stale and hmac.compare_digest(wanted, self._current(force=True))


def is_authorized(header: str | None, tokens: TokenCache) -> bool:
    token = bearer_token(header)
    return token is not None and tokens.matches(token)
