"""Registry authentication: answering a registry's 401 challenge, caching what it gives.

Requests start anonymous. On a 401:
- `Bearer realm=...,service=...,scope=...` (the Docker token protocol): a token is fetched from
  the realm (`GET realm?service=..&scope=..`, with Basic credentials when the provider has them)
  and cached per scope until shortly before `expires_in`. A `pull,push` token also serves pulls.
- `Basic` (htpasswd registries, and ECR, whose password is the `GetAuthorizationToken` token):
  the provider's credentials are sent from then on.

Credentials go only where they belong: the realm must be https, or http at an authority listed
in LIFEGUARD_INSECURE_REGISTRIES (local tests)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import urllib3

from chalicelib.errors import RegistryError

#: `registry host -> (user, password)`, or None for anonymous access. Called with the logical
#: registry (an ECR host stays an ECR host when mirrored).
CredentialsProvider = Callable[[str], tuple[str, str] | None]
#: GET a URL with headers, no redirects; connection failures raise RegistryError.
Fetch = Callable[[str, dict[str, str]], urllib3.BaseHTTPResponse]

TOKEN_DEFAULT_TTL = 60  # the token spec's default `expires_in`
_TOKEN_SLACK = 10
_PARAM_RE = re.compile(r'([A-Za-z][\w.-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')
_TOKEN_RE = re.compile(r"[A-Za-z][\w.-]*")


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: scheme lowercased, parameter names lowercased."""

    scheme: str
    params: dict[str, str]


def parse_www_authenticate(values: list[str]) -> list[Challenge]:
    """Parse `WWW-Authenticate` header values (RFC 7235: several challenges may share a header,
    parameter values may be quoted and contain commas)."""
    challenges: list[Challenge] = []
    for value in values:
        pos, current = 0, None
        while pos < len(value):
            if value[pos] in " \t,":
                pos += 1
                continue
            param = _PARAM_RE.match(value, pos)
            if param is not None and current is not None:
                quoted, bare = param.group(2), param.group(3)
                text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (bare or "")
                current.params[param.group(1).lower()] = text
                pos = param.end()
                continue
            token = _TOKEN_RE.match(value, pos)
            if token is None:
                break
            current = Challenge(token.group(0).lower(), {})
            challenges.append(current)
            pos = token.end()
    return challenges


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RegistryAuth:
    """The auth state of one registry client (thread-safe)."""

    def __init__(
        self,
        registry: str,
        credentials: CredentialsProvider | None,
        insecure: frozenset[str],
        fetch: Fetch,
        user_agent: str,
    ) -> None:
        self.registry = registry
        self._provider = credentials
        self._credentials: tuple[str, str] | None = None
        self._loaded = False
        self._insecure = insecure
        self._fetch = fetch
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self.basic: str | None = None

    def credentials(self) -> tuple[str, str] | None:
        """The provider's answer, asked once (ECR logins cost an API call)."""
        with self._lock:
            if not self._loaded and self._provider is not None:
                self._credentials = self._provider(self.registry)
                self._loaded = True
            return self._credentials

    def header(self, scope: str) -> str | None:
        """A cached token for `scope` (a pull,push token serves pulls too), else Basic once the
        registry asked for it, else None (anonymous)."""
        candidates = [scope, scope + ",push"] if scope.endswith(":pull") else [scope]
        now = time.monotonic()
        with self._lock:
            for candidate in candidates:
                token = self._tokens.get(candidate)
                if token is not None and token[1] > now:
                    return f"Bearer {token[0]}"
            return self.basic

    def answer(self, challenges: list[Challenge], scope: str, sent: str | None) -> None:
        """Prepare credentials for a retry after a 401 carrying `challenges`. `sent` is the
        Authorization we had sent, to tell rejected credentials from missing ones."""
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._fetch_token(bearer, scope)
            return
        if any(c.scheme == "basic" for c in challenges):
            credentials = self.credentials()
            if credentials is None:
                raise RegistryError(
                    f"registry {self.registry} requires authentication (Basic) and no credentials "
                    "are configured for it"
                )
            header = basic_header(*credentials)
            if sent == header:
                raise RegistryError(f"registry {self.registry} rejected the configured credentials")
            with self._lock:
                self.basic = header
            return
        schemes = ", ".join(c.scheme for c in challenges) or "none"
        raise RegistryError(
            f"registry {self.registry} answered 401 without a Bearer or Basic challenge ({schemes})"
        )

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        authority = parts.netloc.lower()
        if parts.scheme == "https" and authority:
            return
        if parts.scheme == "http" and authority in self._insecure:
            return
        raise RegistryError(
            f"registry {self.registry} names token realm {realm!r}: only https realms (or http "
            "ones listed in LIFEGUARD_INSECURE_REGISTRIES) are used"
        )

    def _fetch_token(self, challenge: Challenge, scope: str) -> None:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry}: Bearer challenge without a realm")
        self._check_realm(realm)
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        # Ask for what the operation needs (a push wants pull,push up front, even when the first
        # challenge came from a HEAD that names only pull) plus whatever the registry named.
        for wanted in dict.fromkeys(s for s in (scope, challenge.params.get("scope")) if s):
            query.append(("scope", wanted))
        url = realm + ("&" if urlsplit(realm).query else "?") + urlencode(query)
        headers = {"User-Agent": self._user_agent}
        credentials = self.credentials()
        if credentials is not None:
            headers["Authorization"] = basic_header(*credentials)
        response = self._fetch(url, headers)
        if response.status != 200:
            raise RegistryError(
                f"token realm {realm} refused a token for {scope or 'the registry'} (HTTP {response.status})"
                + ("" if credentials else "; no credentials are configured for this registry")
            )
        try:
            data = json.loads(response.data)
            token = data.get("token") or data.get("access_token")
            ttl = int(data.get("expires_in") or TOKEN_DEFAULT_TTL)
        except (ValueError, AttributeError, TypeError) as exc:
            raise RegistryError(f"token realm {realm} returned an unreadable answer") from exc
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token realm {realm} returned no token")
        with self._lock:
            self._tokens[scope] = (token, time.monotonic() + max(ttl - _TOKEN_SLACK, 1))
