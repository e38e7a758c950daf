"""The simple-signing payload cosign signs (containers/image "atomic container signature" shape,
as `sigstore/sigstore/pkg/signature/payload` marshals it):

    {"critical":{"identity":{"docker-reference":"REGISTRY/REPO"},
                 "image":{"docker-manifest-digest":"sha256:..."},
                 "type":"cosign container image signature"},
     "optional":{...} | null}

`critical` binds the signature to one manifest digest; `optional` carries Lifeguard's claims
(scan id, verdict, severity counts, index version). cosign's `Critical` struct declares its fields
in alphabetical order and `optional` is a Go map, so sorted keys reproduce Go's bytes exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InputError
from chalicelib.image.streams import check_digest
from chalicelib.signing.gojson import marshal

SIGNATURE_TYPE = "cosign container image signature"
#: KMS signs at most this many bytes with MessageType=RAW; the payload always fits
MAX_PAYLOAD_BYTES = 4096


class _Identity(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    docker_reference: str = Field(alias="docker-reference")


class _Image(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    docker_manifest_digest: str = Field(alias="docker-manifest-digest")


class Critical(BaseModel):
    identity: _Identity
    image: _Image
    type: str


class SimpleSigningPayload(BaseModel):
    """A parsed payload (unknown fields ignored, as cosign ignores them)."""

    critical: Critical
    optional: dict[str, Any] | None = None

    @property
    def digest(self) -> str:
        return self.critical.image.docker_manifest_digest

    @property
    def docker_reference(self) -> str:
        return self.critical.identity.docker_reference


def build_payload(docker_reference: str, digest: str, optional: Mapping[str, Any] | None = None) -> bytes:
    """The exact bytes to sign. `docker_reference` is the repository's full name without tag or
    digest (`123456789012.dkr.ecr.us-east-1.amazonaws.com/payments/api`), as cosign writes it."""
    check_digest(digest)
    if not docker_reference or "@" in docker_reference:
        raise InputError(f"docker reference must be REGISTRY/REPOSITORY, got {docker_reference!r}")
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(optional) if optional is not None else None,
    }
    try:
        data = marshal(document, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"signature `optional` values must be plain JSON: {exc}") from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InputError(
            f"simple-signing payload is {len(data)} bytes, more than {MAX_PAYLOAD_BYTES}: "
            "keep `optional` small"
        )
    return data


def parse_payload(data: bytes) -> SimpleSigningPayload:
    """Parse payload bytes read from a registry; InputError when they are not one."""
    try:
        return SimpleSigningPayload.model_validate_json(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "payload"
        raise InputError(f"not a simple-signing payload: {where}: {problem['msg']}") from None


def payload_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
