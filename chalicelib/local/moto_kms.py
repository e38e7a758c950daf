"""Make moto's KMS sign `MessageType=DIGEST` the way real KMS does, for the local stack only.

moto 5.2.5 ignores `MessageType` and hashes whatever it is given, so a DIGEST request (the SHA-256
of a message too big for RAW's 4,096 bytes: a DSSE attestation of a real scan) comes back signed
over sha256(sha256(message)), which no verifier accepts. Real KMS signs the given digest as is
(pre-hashed ECDSA). Lifeguard's signer checks every signature against the public key, so against
unpatched moto the attestation path fails loudly instead of storing a bad signature.

This patch is for the moto server the demo and the integration tests start in-process: it
remembers a DIGEST request's message type for the thread serving it and lets the ECC key sign the
digest pre-hashed. The unit tests pin real KMS's behaviour independently with a botocore Stubber
(tests/unit/test_signing.py), so the patch cannot hide a bug in Lifeguard's own DIGEST handling."""

from __future__ import annotations

import threading
from typing import Any

_state = threading.local()
_patched = False


def patch_moto_kms_digest() -> None:
    """Idempotent; imports moto (a development dependency) only when called."""
    global _patched  # noqa: PLW0603 - one process-wide patch, applied once
    if _patched:
        return
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms import responses, utils

    original_response_sign = responses.KmsResponse.sign
    original_key_sign = utils.ECDSAPrivateKey.sign
    hash_for = {
        "ECDSA_SHA_256": hashes.SHA256(),
        "ECDSA_SHA_384": hashes.SHA384(),
        "ECDSA_SHA_512": hashes.SHA512(),
    }

    def response_sign(self: Any) -> str:
        _state.digest = self._get_param("MessageType") == "DIGEST"
        try:
            return str(original_response_sign(self))
        finally:
            _state.digest = False

    def key_sign(self: Any, message: bytes, signing_algorithm: str) -> bytes:
        if not getattr(_state, "digest", False):
            return bytes(original_key_sign(self, message, signing_algorithm))
        algorithm = hash_for[signing_algorithm]
        if len(message) != algorithm.digest_size:
            raise ValueError(
                f"a {signing_algorithm} digest is {algorithm.digest_size} bytes, got {len(message)}"
            )
        return bytes(self.private_key.sign(message, ec.ECDSA(Prehashed(algorithm))))

    responses.KmsResponse.sign = response_sign  # type: ignore[method-assign]
    utils.ECDSAPrivateKey.sign = key_sign  # type: ignore[method-assign]
    _patched = True
