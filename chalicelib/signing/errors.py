"""Typed errors of the signing package (kept here so `chalicelib.errors` stays the core's)."""

from __future__ import annotations

from chalicelib.errors import InputError, LifeguardError


class SigningError(LifeguardError):
    """KMS refused or failed to sign, or returned something that does not verify."""

    code = "signing_error"


class KeyUriError(InputError):
    """A `--key` / `LIFEGUARD_SIGNING_KEY` value that is not an `awskms://` URI KMS understands."""

    code = "bad_key_uri"
