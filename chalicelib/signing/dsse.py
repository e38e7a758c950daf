"""Attestations: an in-toto statement (v0.1, as cosign 2 writes for `cosign attest`) in a DSSE
envelope. The DSSE signature covers PAE(payloadType, payload), never the JSON around it:

    PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body     (lengths in ASCII decimal bytes)

cosign's vulnerability predicate is `https://cosign.sigstore.dev/attestation/vuln/v1`; its body
(invocation, scanner {uri, version, db, result}, metadata {scanStartedOn, scanFinishedOn}) comes
from the caller."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InputError
from chalicelib.image.streams import check_digest
from chalicelib.signing.gojson import marshal

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
VULN_PREDICATE_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(subject_name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any]) -> bytes:
    """The in-toto statement bytes (fields in in-toto-golang's struct order)."""
    algorithm, _, hex_ = check_digest(digest).partition(":")
    document = {
        "_type": STATEMENT_TYPE,
        "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": {algorithm: hex_}}],
        "predicate": dict(predicate),
    }
    try:
        return marshal(document)
    except (TypeError, ValueError) as exc:
        raise InputError(f"attestation predicate must be plain JSON: {exc}") from exc


def envelope(
    payload: bytes, sign: Callable[[bytes], bytes], payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> bytes:
    """A signed DSSE envelope (JSON bytes) with one signature, `keyid` empty as cosign leaves it
    for KMS keys."""
    signature = sign(pae(payload_type, payload))
    document = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode("ascii")}],
    }
    return marshal(document)


class _Signature(BaseModel):
    keyid: str = ""
    sig: str


class Envelope(BaseModel):
    """A parsed DSSE envelope (as read from an `.att` layer)."""

    model_config = ConfigDict(populate_by_name=True)

    payload_type: str = Field(alias="payloadType")
    payload: str
    signatures: list[_Signature]

    def payload_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.payload, validate=True)
        except binascii.Error as exc:
            raise InputError("DSSE payload is not base64") from exc


def parse_envelope(data: bytes) -> Envelope:
    try:
        return Envelope.model_validate_json(data)
    except ValidationError as exc:
        raise InputError(f"not a DSSE envelope: {exc.errors()[0]['msg']}") from None


def verify_envelope(data: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The envelope's payload when one of its signatures verifies over PAE with `public_key`;
    InputError otherwise."""
    parsed = parse_envelope(data)
    payload = parsed.payload_bytes()
    message = pae(parsed.payload_type, payload)
    for signature in parsed.signatures:
        try:
            raw = base64.b64decode(signature.sig, validate=True)
            public_key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error):
            continue
        return payload
    raise InputError("no DSSE signature verifies with the key")
