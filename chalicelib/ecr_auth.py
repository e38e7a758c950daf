"""ECR logins for the registry client: the one place the image code's credentials touch boto3.

`chalicelib.image.registry` takes a credentials provider (`registry host -> (user, password) |
None`); `ecr_credentials_provider` builds one from an ECR client. ECR answers a registry 401 with a
`Basic` challenge, and the password is the token from `GetAuthorizationToken` (base64 of
`AWS:<password>`, valid 12 hours)."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.errors import RegistryError

_ECR_HOST_RE = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)

Credentials = tuple[str, str]
# ECR tokens last 12 hours; refresh well before, in case a warm Lambda outlives one.
_TOKEN_TTL_SECONDS = 6 * 3600


def ecr_account_of(registry_host: str) -> str | None:
    """The account id of an ECR registry host, None for any other registry."""
    match = _ECR_HOST_RE.fullmatch(registry_host.split(":", 1)[0].lower())
    return match.group("account") if match else None


def decode_authorization_token(token: str) -> Credentials:
    """`base64("AWS:<password>")` -> ("AWS", password)."""
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise RegistryError("ECR authorization token is not base64 user:password") from exc
    if not sep or not user or not password:
        raise RegistryError("ECR authorization token is not base64 user:password")
    return user, password


def ecr_basic_credentials(registry_host: str, ecr_client: Any) -> Credentials:
    """Basic credentials for an ECR registry host, from `GetAuthorizationToken`.

    `ecr_client` is a boto3 ECR client for the registry's region. The token works for every ECR
    registry the caller may pull from (`registryIds` is deprecated), so a cross-account pull needs
    only the repository policy, or a client built from an assumed role."""
    if ecr_account_of(registry_host) is None:
        raise RegistryError(f"{registry_host!r} is not an ECR registry host")
    try:
        response = ecr_client.get_authorization_token()
    except Exception as exc:  # botocore raises many shapes; the caller needs one
        raise RegistryError(f"ECR GetAuthorizationToken failed for {registry_host}: {exc}") from exc
    data = response.get("authorizationData") or []
    if not data or "authorizationToken" not in data[0]:
        raise RegistryError(f"ECR GetAuthorizationToken returned no token for {registry_host}")
    return decode_authorization_token(data[0]["authorizationToken"])


def ecr_credentials_provider(
    client_for_region: Callable[[str], Any],
) -> Callable[[str], Credentials | None]:
    """A provider for the registry client: ECR hosts get a (cached) ECR login, other registries
    None (anonymous). `client_for_region(region)` returns a boto3 ECR client."""
    cache: dict[str, tuple[float, Credentials]] = {}
    lock = threading.Lock()

    def provider(registry_host: str) -> Credentials | None:
        match = _ECR_HOST_RE.fullmatch(registry_host.split(":", 1)[0].lower())
        if match is None:
            return None
        with lock:
            cached = cache.get(registry_host)
            if cached is None or cached[0] <= time.monotonic():
                credentials = ecr_basic_credentials(registry_host, client_for_region(match.group("region")))
                cached = (time.monotonic() + _TOKEN_TTL_SECONDS, credentials)
                cache[registry_host] = cached
            return cached[1]

    return provider


def caller_account_id(sts_client: Any) -> str:
    """The default for LIFEGUARD_ACCOUNTS: the account of the credentials in use."""
    return str(sts_client.get_caller_identity()["Account"])
