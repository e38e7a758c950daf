"""The `sign` and `verify` commands (contract — the command line), behind `chalicelib.cli`.

Exit codes: `sign` 0 when signed, 2 on any error; `verify` 0 when a valid signature by the key
is bound to the digest, 1 when none is, 2 on error. Errors reach the CLI as LifeguardErrors, so
it prints one line and exits 2.

Configuration is `scan`'s (allow-list, insecure registries, mirrors from the environment) plus
ECR credentials for ECR hosts; boto3 follows `AWS_ENDPOINT_URL` (moto locally). A key URI with an
endpoint (`awskms://HOST:PORT/...`) sends KMS calls to `https://HOST:PORT`, as cosign does."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from chalicelib.ecr_auth import ecr_account_of, ecr_credentials_provider
from chalicelib.errors import InputError, NotFoundError
from chalicelib.image.reference import Reference, parse_reference
from chalicelib.image.registry import RegistryClient
from chalicelib.image.registry_config import ENV_ACCOUNTS, RegistryConfig
from chalicelib.signing.claims import load_scan, scan_document_id, scan_optional, vuln_predicate
from chalicelib.signing.errors import SigningError
from chalicelib.signing.key_uri import SCHEME, KmsKeyUri, parse_key_uri
from chalicelib.signing.kms import KmsSigner
from chalicelib.signing.service import SignResult, VerifyResult, sign_image, verify_image

EXIT_OK, EXIT_NOT_VERIFIED = 0, 1


@dataclass(frozen=True)
class Target:
    """The image a REF names, pinned to its digest, and a client for its registry."""

    reference: Reference
    digest: str
    client: RegistryClient

    @property
    def docker_reference(self) -> str:
        return f"{self.reference.registry}/{self.reference.repository}"

    def __str__(self) -> str:
        return f"{self.docker_reference}@{self.digest}"


def _aws(action: str, call: Callable[[], Any]) -> Any:
    """Run an AWS call of the set-up (STS, client creation) with one-line errors."""
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise SigningError(f"{action}: {exc}") from exc


def open_target(ref: str) -> Target:
    """Parse REF (`registry:` prefix optional, tag or digest), check the allow-list, resolve a tag
    to its digest (HEAD, else GET)."""
    from chalicelib import runtime

    reference = parse_reference(ref)
    if ecr_account_of(reference.registry) is not None and not _env_has(ENV_ACCOUNTS):
        config = _aws("reading the caller's account (STS)", runtime.registry_config)
    else:
        config = RegistryConfig.from_env()
    credentials = ecr_credentials_provider(lambda region: runtime.client("ecr", region))
    client = RegistryClient(reference.registry, config, credentials)
    digest = reference.digest or client.head_manifest(reference.repository, reference.ref)
    if digest is None:
        raise NotFoundError(f"{reference} does not exist")
    return Target(reference, digest, client)


def _env_has(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def kms_client(key: KmsKeyUri) -> Any:
    """A KMS client in the key's region (the ARN's, else the configured one)."""
    from chalicelib import runtime

    region = key.region or runtime.settings().region
    if key.endpoint is None:
        return runtime.client("kms", region)
    import boto3

    return boto3.session.Session().client("kms", region_name=region, endpoint_url=f"https://{key.endpoint}")


def load_public_key(key: str) -> tuple[ec.EllipticCurvePublicKey, str]:
    """`awskms://...` (GetPublicKey) or a PEM public key file (cosign.pub); and how to name it."""
    if key.startswith(SCHEME):
        signer = KmsSigner(kms_client(parse_key_uri(key)), key)
        return signer.public_key(), signer.key.uri
    path = Path(key)
    if not path.is_file():
        raise InputError(f"--key {key!r} is neither an awskms:// URI nor a PEM public key file")
    try:
        public = load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise InputError(f"--key {key}: not a PEM public key") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise InputError(f"--key {key}: not an elliptic-curve public key")
    return public, str(path)


def run_sign(
    ref: str, key: str, attest: Path | None, *, chunk_size: int | None = None
) -> tuple[Target, SignResult]:
    """Sign the digest REF names with the KMS key; with `attest`, also attach that scan."""
    signer = KmsSigner(kms_client(parse_key_uri(key)), key)
    target = open_target(ref)
    optional: dict[str, Any] | None = None
    predicate: dict[str, Any] | None = None
    if attest is not None:
        try:
            data = attest.read_bytes()
        except OSError as exc:
            raise InputError(f"--attest {attest}: {exc.strerror or exc}") from exc
        scan, document = load_scan(data, target.digest, str(attest))
        optional = scan_optional(scan, scan_document_id(data))
        predicate = vuln_predicate(scan, document, datetime.now(UTC))
    result = sign_image(
        target.client,
        target.reference.repository,
        target.digest,
        target.docker_reference,
        signer,
        optional=optional,
        attestation=predicate,
        chunk_size=chunk_size,
    )
    return target, result


def run_verify(ref: str, key: str) -> tuple[Target, VerifyResult, str]:
    public, key_name = load_public_key(key)
    target = open_target(ref)
    return target, verify_image(target.client, target.reference.repository, target.digest, public), key_name


def sign_report(target: Target, result: SignResult) -> list[str]:
    lines = [f"signed {target}: {result.signature_tag} {result.signature_manifest_digest}"]
    if result.attestation_manifest_digest is not None:
        att_tag = result.signature_tag.removesuffix(".sig") + ".att"
        lines.append(f"attested {target}: {att_tag} {result.attestation_manifest_digest}")
    return lines


def verify_report(target: Target, result: VerifyResult, key_name: str) -> list[str]:
    status = "verified" if result.verified else "not verified"
    lines = [f"{status}: {target}: {result.valid} of {result.signatures} signatures valid for key {key_name}"]
    if result.optional:
        lines.append("  " + " ".join(f"{k}={v}" for k, v in sorted(result.optional.items())))
    lines.extend(f"  {reason}" for reason in result.reasons)
    return lines
