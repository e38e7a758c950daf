"""Signing with an AWS KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256), the way cosign's
`awskms://` provider does, so cosign verifies the result with the same key.

Message types — pinned by tests, keep them:
- up to 4,096 bytes (KMS's limit for a RAW message; the simple-signing payload always fits):
  `MessageType=RAW`. KMS hashes the message with SHA-256 and signs the hash, which is exactly
  "ECDSA with SHA-256 over the message" — what cosign and any verifier check. moto behaves the
  same for RAW, so the local tests exercise the real code path.
- larger messages (a DSSE attestation carrying a whole scan can be): `MessageType=DIGEST` with
  `Message=SHA-256(message)`. Real KMS then signs that digest as given (no second hash), giving the
  same signature as RAW would. moto 5.2.5 gets DIGEST wrong (it hashes the digest again), so that
  path is tested with a botocore Stubber that signs pre-hashed with a local P-256 key, as KMS does.

Every signature is checked against the key's public key before it is returned: a wrong message
type, key or algorithm fails here, loudly, rather than in a verifier weeks later."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from chalicelib.signing.errors import SigningError
from chalicelib.signing.key_uri import KmsKeyUri, parse_key_uri

SIGNING_ALGORITHM = "ECDSA_SHA_256"
KEY_SPEC = "ECC_NIST_P256"
#: the largest message KMS signs with MessageType=RAW
RAW_MESSAGE_LIMIT = 4096


def message_type_for(message: bytes) -> str:
    """`RAW` up to KMS's 4,096-byte limit, `DIGEST` (of the SHA-256) above it."""
    return "RAW" if len(message) <= RAW_MESSAGE_LIMIT else "DIGEST"


def _kms_failure(action: str, key: KmsKeyUri, exc: Exception) -> SigningError:
    """A one-line error with KMS's error code and message (they hold no secrets)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    else:
        detail = str(exc)
    return SigningError(f"KMS {action} with key {key.uri} failed: {detail}")


class KmsSigner:
    """Signs with one KMS key. `kms_client` is a boto3 KMS client in the key's region.

    The public key (GetPublicKey) is fetched once and cached; it also tells us the key is usable
    (SIGN_VERIFY, ECC_NIST_P256, ECDSA_SHA_256) before anything is signed. Thread-safe."""

    def __init__(self, kms_client: Any, key_uri: str | KmsKeyUri) -> None:
        self.key = key_uri if isinstance(key_uri, KmsKeyUri) else parse_key_uri(key_uri)
        self._kms = kms_client
        self._lock = threading.Lock()
        self._public_key: ec.EllipticCurvePublicKey | None = None
        self._key_id: str | None = None

    @property
    def key_uri(self) -> str:
        return self.key.uri

    @property
    def key_id(self) -> str | None:
        """The key ARN as KMS reports it: from Sign once something was signed (real KMS and moto
        both answer the ARN there), else from GetPublicKey (the ARN on real KMS; moto answers the
        bare key id)."""
        if self._key_id is None:
            self.public_key()
        return self._key_id

    def public_key(self) -> ec.EllipticCurvePublicKey:
        with self._lock:
            if self._public_key is None:
                self._public_key = self._fetch_public_key()
            return self._public_key

    def _fetch_public_key(self) -> ec.EllipticCurvePublicKey:
        try:
            answer = self._kms.get_public_key(KeyId=self.key.key_id)
        except (ClientError, BotoCoreError) as exc:
            raise _kms_failure("GetPublicKey", self.key, exc) from exc
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        usage = answer.get("KeyUsage")
        algorithms = answer.get("SigningAlgorithms") or []
        if spec != KEY_SPEC or usage != "SIGN_VERIFY" or SIGNING_ALGORITHM not in algorithms:
            raise SigningError(
                f"KMS key {self.key.uri} is {spec or 'of unknown spec'} for {usage or 'unknown usage'}; "
                f"Lifeguard signs with {KEY_SPEC} SIGN_VERIFY keys ({SIGNING_ALGORITHM})"
            )
        try:
            public = load_der_public_key(answer["PublicKey"])
        except (KeyError, ValueError) as exc:
            raise SigningError(f"KMS returned an unreadable public key for {self.key.uri}") from exc
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
            raise SigningError(f"KMS key {self.key.uri} is not a P-256 elliptic-curve key")
        self._key_id = self._key_id or answer.get("KeyId")
        return public

    def sign(self, message: bytes) -> bytes:
        """An ASN.1 DER ECDSA-P256-SHA256 signature over `message` (see the module docstring for
        RAW vs DIGEST), checked against the public key before it is returned."""
        public = self.public_key()
        message_type = message_type_for(message)
        body = message if message_type == "RAW" else hashlib.sha256(message).digest()
        try:
            answer = self._kms.sign(
                KeyId=self.key.key_id,
                Message=body,
                MessageType=message_type,
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _kms_failure("Sign", self.key, exc) from exc
        signature = answer.get("Signature")
        if not isinstance(signature, bytes) or not signature:
            raise SigningError(f"KMS Sign with key {self.key.uri} returned no signature")
        try:
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SigningError(
                f"KMS signature ({message_type}) by key {self.key.uri} does not verify with its public key"
            ) from None
        if isinstance(answer.get("KeyId"), str):
            self._key_id = answer["KeyId"]
        return signature
