"""Sign and verify images in a registry: the two operations the CLI and the Lambda scan path call.

`sign_image` writes, for one manifest digest, a cosign signature (`.sig` tag, appended) and
optionally a vulnerability attestation (`.att` tag, appended), plus OCI 1.1 referrers where the
registry has that API. `verify_image` checks the `.sig` tag against a public key. Both take a
`RegistryClient` already bound to the image's registry (allow-list, mirrors, ECR credentials are
the caller's configuration) and never decide *whether* to sign: that policy lives with the caller
(`trust_service.after_gate` signs only images that passed)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from chalicelib.errors import DigestMismatchError, ManifestError, NotFoundError
from chalicelib.image.registry import RegistryClient, RegistryResponseError
from chalicelib.image.streams import check_digest
from chalicelib.signing import cosign_layout as layout
from chalicelib.signing import dsse, publish
from chalicelib.signing.kms import KmsSigner
from chalicelib.signing.payload import build_payload, payload_sha256
from chalicelib.signing.verify import check_layer

_log = logging.getLogger(__name__)
#: the largest `.sig` payload read back (cosign's are a few hundred bytes)
MAX_SIGNATURE_PAYLOAD = 1024 * 1024


@dataclass(frozen=True)
class SignResult:
    digest: str  # the signed manifest digest
    signature_tag: str  # sha256-<hex>.sig
    signature_manifest_digest: str
    attestation_manifest_digest: str | None
    payload_sha256: str  # hex sha256 of the simple-signing payload signed
    key_id: str | None  # KMS key ARN
    signed_at: datetime


@dataclass(frozen=True)
class VerifyResult:
    digest: str
    verified: bool  # a valid signature by the key bound to the digest exists
    signatures: int  # layers found in the .sig manifest
    valid: int  # of which verify with the key and bind to the digest
    optional: dict[str, Any] | None  # the `optional` object of the first valid payload
    reasons: list[str]  # why each invalid one failed (no secrets)


def sign_image(
    client: RegistryClient,
    repository: str,
    digest: str,
    docker_reference: str,
    signer: KmsSigner,
    *,
    optional: Mapping[str, Any] | None = None,
    attestation: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
) -> SignResult:
    """Sign `repository@digest`. `docker_reference` is the simple-signing identity and the
    attestation subject name (`REGISTRY/REPOSITORY`); `optional` the payload's claims;
    `attestation` the body of a cosign vuln/v1 predicate (None: no attestation). `chunk_size`:
    blobs larger than this are uploaded in chunks of it (default: the client's 8 MiB).

    Raises NotFoundError when the digest is not in the repository (nothing is written then),
    SigningError for KMS failures, RegistryError for registry ones."""
    check_digest(digest)
    sig_tag = layout.signature_tag(digest)
    if client.head_manifest(repository, digest) is None:
        raise NotFoundError(f"{client.registry}/{repository}@{digest} does not exist: nothing signed")

    payload = build_payload(docker_reference, digest, optional)
    signature = signer.sign(payload)
    sig_layer = layout.signature_layer(payload, base64.b64encode(signature).decode("ascii"))
    previous = publish.read_tag_layers(client, repository, sig_tag)
    sig_manifest = layout.tag_manifest(previous, sig_layer)
    sig_digest = publish.push_manifest(
        client, repository, sig_tag, sig_manifest, [sig_layer], chunk_size=chunk_size
    )

    att_layer: layout.Blob | None = None
    att_digest: str | None = None
    if attestation is not None:
        statement = dsse.statement(docker_reference, digest, dsse.VULN_PREDICATE_TYPE, attestation)
        att_layer = layout.attestation_layer(dsse.envelope(statement, signer.sign), dsse.VULN_PREDICATE_TYPE)
        att_tag = layout.attestation_tag(digest)
        att_manifest = layout.tag_manifest(publish.read_tag_layers(client, repository, att_tag), att_layer)
        att_digest = publish.push_manifest(
            client, repository, att_tag, att_manifest, [att_layer], chunk_size=chunk_size
        )

    if publish.referrers_supported(client, repository, digest):
        subject = publish.subject_descriptor(client, repository, digest)
        referrers = [(sig_layer, layout.SIG_ARTIFACT_TYPE)]
        if att_layer is not None:
            referrers.append((att_layer, layout.ATT_ARTIFACT_TYPE))
        for layer, artifact_type in referrers:
            manifest = layout.referrer_manifest(subject, layer, artifact_type)
            publish.push_manifest(client, repository, None, manifest, [], chunk_size=chunk_size)
        _log.info("referrers attached to %s/%s@%s", client.registry, repository, digest)

    result = SignResult(
        digest=digest,
        signature_tag=sig_tag,
        signature_manifest_digest=sig_digest,
        attestation_manifest_digest=att_digest,
        payload_sha256=payload_sha256(payload),
        key_id=signer.key_id,
        signed_at=datetime.now(UTC),
    )
    _log.info(
        "signed %s/%s@%s: %s (%d signatures)", client.registry, repository, digest, sig_tag, len(previous) + 1
    )
    return result


def verify_image(
    client: RegistryClient, repository: str, digest: str, public_key: EllipticCurvePublicKey
) -> VerifyResult:
    """Check every layer of `repository:sha256-<hex>.sig` against `public_key` and `digest`.
    A missing tag is "not verified" (0 signatures), not an error; an unreachable registry is."""
    check_digest(digest)
    sig_tag = layout.signature_tag(digest)
    try:
        layers = publish.read_tag_layers(client, repository, sig_tag)
    except ManifestError as exc:
        return VerifyResult(digest, False, 0, 0, None, [str(exc)])
    if not layers:
        missing = f"no signatures: {repository}:{sig_tag} does not exist"
        return VerifyResult(digest, False, 0, 0, None, [missing])
    valid, optional, reasons = 0, None, []
    for index, descriptor in enumerate(layers):
        try:
            payload = client.get_blob(
                repository, descriptor["digest"], descriptor["size"], limit=MAX_SIGNATURE_PAYLOAD
            )
        except (DigestMismatchError, ManifestError) as exc:
            reasons.append(f"signature {index + 1}: {exc}")
            continue
        except RegistryResponseError as exc:
            if exc.status != 404:
                raise
            reasons.append(f"signature {index + 1}: payload blob {descriptor['digest']} is missing")
            continue
        check = check_layer(descriptor, payload, public_key, digest)
        if check.valid:
            valid += 1
            if valid == 1:
                optional = check.optional
        else:
            reasons.append(f"signature {index + 1}: {check.reason}")
    return VerifyResult(digest, valid > 0, len(layers), valid, optional, reasons)
