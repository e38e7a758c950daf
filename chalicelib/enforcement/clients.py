"""boto3 clients in the account an event comes from. ECS events of member accounts reach the
security account's default bus (an organization-wide rule forwards them), so stopping their task
means assuming `arn:aws:iam::<account>:role/<LIFEGUARD_MEMBER_ROLE_NAME>` (default
`lifeguard-member`) with `LIFEGUARD_EXTERNAL_ID`. In our own account no role is assumed.

Credentials are kept per account until five minutes before they expire, so a burst of events
from one member account assumes the role once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.enforcement.errors import EnforcementError

DEFAULT_ROLE_NAME = "lifeguard-member"
SESSION_NAME = "lifeguard-enforcement"
_REFRESH_BEFORE = timedelta(minutes=5)

#: (service, region, credentials or None for our own) -> client
ClientMaker = Callable[[str, str, dict[str, str] | None], Any]


class MemberClients:
    def __init__(
        self,
        sts: Any,
        own_account: Callable[[], str],
        make_client: ClientMaker,
        *,
        role_name: str = DEFAULT_ROLE_NAME,
        external_id: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sts = sts
        self._own_account = own_account
        self._make = make_client
        self._role_name = role_name
        self._external_id = external_id
        self._now = now
        self._lock = threading.Lock()
        self._credentials: dict[str, tuple[dict[str, str], datetime]] = {}

    def role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self._role_name}"

    def client(self, service: str, account: str, region: str) -> Any:
        if account == self._own_account():
            return self._make(service, region, None)
        return self._make(service, region, self._assume(account))

    def _assume(self, account: str) -> dict[str, str]:
        with self._lock:
            cached = self._credentials.get(account)
            if cached is not None and cached[1] - _REFRESH_BEFORE > self._now():
                return cached[0]
            kwargs: dict[str, Any] = {"RoleArn": self.role_arn(account), "RoleSessionName": SESSION_NAME}
            if self._external_id:
                kwargs["ExternalId"] = self._external_id
            try:
                creds = self._sts.assume_role(**kwargs)["Credentials"]
            except (ClientError, BotoCoreError) as exc:
                raise EnforcementError(f"cannot assume {self.role_arn(account)}: {exc}") from exc
            credentials = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
            expires = creds["Expiration"]
            expires = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
            self._credentials[account] = (credentials, expires)
            return credentials
