"""Checking cosign signatures: what `cosign verify --key ... --insecure-ignore-tlog` checks for
each layer of a `.sig` manifest, without the transparency log:
1. the layer is a simple-signing payload and carries a `dev.cosignproject.cosign/signature`;
2. the signature (base64, ASN.1 DER ECDSA) verifies over the payload bytes with the key (SHA-256);
3. the payload is cosign's (`critical.type`) and binds the digest being verified
   (`critical.image.docker-manifest-digest`).
Every failing layer gets a reason; none of them contains key material or signature bytes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.errors import InputError
from chalicelib.signing.cosign_layout import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from chalicelib.signing.payload import SIGNATURE_TYPE, parse_payload


@dataclass(frozen=True)
class LayerCheck:
    """The verdict on one layer: `optional` of its payload when valid, else why not."""

    valid: bool
    optional: dict[str, Any] | None = None
    reason: str | None = None


def check_layer(
    descriptor: Mapping[str, Any], payload: bytes, public_key: ec.EllipticCurvePublicKey, digest: str
) -> LayerCheck:
    """Verify one `.sig` layer (its descriptor as in the manifest, its blob bytes)."""
    if descriptor.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
        media_type = descriptor.get("mediaType")
        return LayerCheck(False, reason=f"media type {media_type!r} is not a cosign signature")
    annotations = descriptor.get("annotations")
    encoded = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(encoded, str) or not encoded:
        return LayerCheck(False, reason="no signature annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return LayerCheck(False, reason="signature annotation is not base64")
    try:
        public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return LayerCheck(False, reason="signature does not verify with the key")
    try:
        parsed = parse_payload(payload)
    except InputError as exc:
        return LayerCheck(False, reason=str(exc))
    if parsed.critical.type != SIGNATURE_TYPE:
        return LayerCheck(False, reason=f"payload type {parsed.critical.type!r} is not {SIGNATURE_TYPE!r}")
    if parsed.digest != digest:
        return LayerCheck(False, reason=f"payload signs {parsed.digest}, not {digest}")
    return LayerCheck(True, optional=parsed.optional)
