"""Typed errors of enforcement (subclasses of the product's LifeguardError, so callers that
already map `code` to retries and status codes need nothing new)."""

from __future__ import annotations

from chalicelib.errors import LifeguardError


class EnforcementError(LifeguardError):
    """An enforcement action (stop_task, assuming the member role) failed: the event is retried
    (EventBridge async retries, then the on-failure destination) and the failure is audited."""

    code = "enforcement_error"


class AuthorizerError(LifeguardError):
    """The admission webhook's token cannot be checked (no secret configured, unreadable secret):
    the request is refused, never let through."""

    code = "authorizer_error"
