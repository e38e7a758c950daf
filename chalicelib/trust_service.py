"""What happens to trust after a gate decision: an image that passed is signed (cosign layout,
KMS key) with its scan attached as an attestation; an image that was signed and now fails is
flagged; a verdict that flipped between two scans of one digest is recorded as a change.

The Lambda scan path and re-matching call these functions; signing itself (KMS, registry pushes)
comes in as a `Signer` callable so this module stays testable without a registry, and so that the
decision "sign only what passed" lives in exactly one place."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.models import ImageScan
from chalicelib.observability import logger
from chalicelib.signing.claims import signature_claims, vuln_predicate
from chalicelib.store import ScanStore, timestamp_key
from chalicelib.store_models import AuditRecord, ChangeRecord, ImageRecord, ScanMeta, SignatureRecord


class SignedImage(Protocol):
    """What a signer reports back (`chalicelib.signing.service.SignResult`)."""

    @property
    def signature_tag(self) -> str: ...
    @property
    def signature_manifest_digest(self) -> str: ...
    @property
    def attestation_manifest_digest(self) -> str | None: ...
    @property
    def payload_sha256(self) -> str: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def signed_at(self) -> datetime: ...


class Signer(Protocol):
    """Signs `digest` in `repository` of the signer's registry; `docker_reference` is the
    simple-signing identity (the repository's full name)."""

    def __call__(
        self,
        repository: str,
        digest: str,
        docker_reference: str,
        optional: Mapping[str, Any],
        attestation: Mapping[str, Any] | None,
    ) -> SignedImage: ...


@dataclass(frozen=True)
class Signing:
    """The configured key (`LIFEGUARD_SIGNING_KEY`) and a signer per registry host."""

    key: str
    signer_for: Callable[[str], Signer]


def scan_id(digest: str, scanned_at: datetime) -> str:
    """A stable id of one scan of one image: what a signature's `optional` points back to."""
    return hashlib.sha256(f"{digest}\x1f{timestamp_key(scanned_at)}".encode()).hexdigest()[:24]


def signature_optional(digest: str, scans: Sequence[ImageScan], meta: ScanMeta) -> dict[str, str]:
    """The simple-signing payload's `optional` object: what a later checkpoint needs to trust the
    image without asking Lifeguard (scan id, verdict, counts, index version, scan time). For a
    multi-arch index, `scans` are its platforms and the counts are their sum."""
    verdict = "fail" if any(s.summary.gate == "fail" for s in scans) else "pass"
    db_version = scans[0].summary.db_version if scans else None
    optional = signature_claims(scan_id(digest, meta.scanned_at), verdict, db_version, scans)
    optional["lifeguard.scanned-at"] = timestamp_key(meta.scanned_at)
    return optional


def after_gate(
    scan: ImageScan,
    meta: ScanMeta,
    store: ScanStore,
    signing: Signing | None,
    *,
    actor: str,
    now: datetime,
) -> SignatureRecord | None:
    """Sign an image that passed (when a key is configured); flag the signatures of one that
    failed. Never signs a failing image. Returns the new signature record, if any."""
    digest = scan.image.digest
    if scan.summary.gate == "fail":
        _flag(store, digest, scan.summary.reasons, now)
        return None
    if signing is None:
        return None
    predicate = vuln_predicate(scan, scan.model_dump(mode="json"), meta.scanned_at)
    return _sign(digest, [scan], meta, store, signing, attestation=predicate, actor=actor, now=now)


def after_index_gate(
    index_digest: str,
    scans: Sequence[ImageScan],
    meta: ScanMeta,
    store: ScanStore,
    signing: Signing | None,
    *,
    actor: str,
    now: datetime,
) -> SignatureRecord | None:
    """A multi-arch index is signed when every platform passed (a task or pod that pulls by the
    index digest is checked against the index's signature); one failing platform flags it."""
    if any(s.summary.gate == "fail" for s in scans):
        reasons = [r for s in scans if s.summary.gate == "fail" for r in s.summary.reasons]
        _flag(store, index_digest, reasons, now)
        return None
    if signing is None or not scans:
        return None
    return _sign(index_digest, scans, meta, store, signing, attestation=None, actor=actor, now=now)


def _sign(
    digest: str,
    scans: Sequence[ImageScan],
    meta: ScanMeta,
    store: ScanStore,
    signing: Signing,
    *,
    attestation: Mapping[str, Any] | None,
    actor: str,
    now: datetime,
) -> SignatureRecord:
    reference = f"{meta.registry}/{meta.repository}"
    optional = signature_optional(digest, scans, meta)
    signed = signing.signer_for(meta.registry)(meta.repository, digest, reference, optional, attestation)
    record = SignatureRecord(
        digest=digest,
        key=signing.key,
        key_id=signed.key_id,
        signed_at=signed.signed_at,
        signer="lifeguard",
        verdict="pass",
        db_version=optional["lifeguard.db-version"] or None,
        registry=meta.registry,
        repository=meta.repository,
        signature_tag=signed.signature_tag,
        signature_manifest_digest=signed.signature_manifest_digest,
        attestation_manifest_digest=signed.attestation_manifest_digest,
        payload_sha256=signed.payload_sha256,
    )
    store.put_signature(record)
    store.put_audit(
        AuditRecord(
            id=f"sign-{optional['lifeguard.scan-id']}",
            at=now,
            actor=actor,
            action="sign",
            target=f"{reference}@{digest}",
            decision="allow",
            outcome="signed",
            reasons=[f"passed its gate with vulnerability index {record.db_version}"],
            images=[f"{reference}@{digest}"],
        )
    )
    logger.info("image signed", extra={"digest": digest, "signature_tag": signed.signature_tag})
    return record


def verdict_change(
    previous: ImageRecord | None, scan: ImageScan, meta: ScanMeta, now: datetime
) -> ChangeRecord | None:
    """A `verdict` change record when a re-scan of a digest flips the stored gate decision."""
    if previous is None or previous.gate is None or previous.gate == scan.summary.gate:
        return None
    return ChangeRecord(
        digest=scan.image.digest,
        kind="verdict",
        detected_at=now,
        db_version=scan.summary.db_version or "",
        previous_db_version=previous.db_version,
        registry=meta.registry,
        repository=meta.repository,
        gate=scan.summary.gate,
        previous_gate=previous.gate,
        reasons=list(scan.summary.reasons),
    )


def flag_after_rematch(
    store: ScanStore,
    digest: str,
    *,
    gate: str,
    previous_gate: str | None,
    reasons: Sequence[str],
    now: datetime,
) -> int:
    """Re-matching against newer data failed an image that passed: flag its signatures."""
    if gate != "fail" or previous_gate != "pass":
        return 0
    return _flag(store, digest, reasons, now)


def _flag(store: ScanStore, digest: str, reasons: Sequence[str], now: datetime) -> int:
    """Flag the signatures of an image that now fails its gate (scan, index or re-match path)."""
    flagged = store.flag_signatures(digest, reasons, now)
    if flagged:
        logger.warning("a signed image failed its gate", extra={"digest": digest, "signatures": flagged})
    return flagged
