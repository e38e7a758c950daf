"""The build-stage service: an ECR push becomes stored scans. Everything it needs comes in as
`ScanDeps`, so tests and the local demo run it against moto and a local registry unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from chalicelib.events import EcrImageActionEvent
from chalicelib.image.model import ImageSource
from chalicelib.image.registry_config import ecr_registry_host
from chalicelib.models import ImageScan
from chalicelib.observability import logger, record_scan_metrics
from chalicelib.policy import PolicyFile
from chalicelib.scanner import ScanOptions, scan_image
from chalicelib.store import ScanStore
from chalicelib.store_models import ScanMeta
from chalicelib.trust_service import Signing, after_gate, after_index_gate, verdict_change
from chalicelib.vulndb.index import VulnIndex


class ScanRequest(BaseModel):
    """One image to scan. The idempotency key is (account, region, repository, digest, action):
    the same push delivered twice is scanned once. The tag is carried along, not part of the key."""

    model_config = ConfigDict(frozen=True)

    account: str
    region: str
    repository: str
    digest: str
    action: Literal["PUSH"] = "PUSH"
    tag: str | None = None
    pushed_at: datetime

    @property
    def registry(self) -> str:
        return ecr_registry_host(self.account, self.region)

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"

    @classmethod
    def from_event(cls, event: EcrImageActionEvent) -> ScanRequest | None:
        """None for events that ask for no scan (a DELETE, a failed push)."""
        detail = event.detail
        if detail.action_type != "PUSH" or detail.result != "SUCCESS":
            return None
        return cls(
            account=event.account,
            region=event.region,
            repository=detail.repository_name,
            digest=detail.image_digest,
            tag=detail.image_tag,
            pushed_at=event.time or datetime.now(UTC),
        )


class ScannedImage(BaseModel):
    digest: str
    platform: str | None
    gate: Literal["pass", "fail"]
    vulnerabilities: int


class ScanOutcome(BaseModel):
    """What one request did: `kind` is `index` for a multi-arch push (one scan per child)."""

    digest: str
    repository: str
    kind: Literal["image", "index"]
    images: list[ScannedImage]
    db_version: str


@dataclass(frozen=True)
class ScanDeps:
    store: ScanStore
    index: Callable[[], VulnIndex]
    open_source: Callable[[str], ImageSource]
    options: ScanOptions = field(default_factory=ScanOptions)
    #: the gate's policy file (`LIFEGUARD_POLICY`); each request gets its repository's policy
    policy: PolicyFile | None = None
    #: the signing key and signer; None: nothing is signed (no `LIFEGUARD_SIGNING_KEY`)
    signing: Signing | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def scan_pushed_image(request: ScanRequest, deps: ScanDeps) -> ScanOutcome:
    logger.set_correlation_id(request.digest)
    logger.append_keys(image_digest=request.digest, repository=request.repository)
    source = deps.open_source(request.reference)
    images = source.resolve(all_platforms=True)
    is_index = any(image.index_digest == request.digest for image in images)
    index = deps.index()
    meta = ScanMeta(
        registry=request.registry,
        repository=request.repository,
        tags=[request.tag] if request.tag else [],
        pushed_at=request.pushed_at,
        index_digest=request.digest if is_index else None,
    )
    scanned: list[ScannedImage] = []
    scans: list[ImageScan] = []
    options = deps.options.for_repository(deps.policy, request.repository)
    for image in images:
        scan = scan_image(source, image, index, options)
        previous = deps.store.get_image(scan.image.digest)
        deps.store.put_scan(scan, meta)
        record_scan_metrics(scan)
        if (change := verdict_change(previous, scan, meta, deps.now())) is not None:
            deps.store.put_changes([change])
        after_gate(scan, meta, deps.store, deps.signing, actor="on_scan_request", now=deps.now())
        scans.append(scan)
        scanned.append(
            ScannedImage(
                digest=scan.image.digest,
                platform=scan.image.platform,
                gate=scan.summary.gate,
                vulnerabilities=len(scan.vulnerabilities),
            )
        )
        logger.info("image scanned", extra=scanned[-1].model_dump())
    if is_index:
        deps.store.put_index(request.digest, [(s.digest, s.platform) for s in scanned], meta)
        after_index_gate(
            request.digest, scans, meta, deps.store, deps.signing, actor="on_scan_request", now=deps.now()
        )
    return ScanOutcome(
        digest=request.digest,
        repository=request.repository,
        kind="index" if is_index else "image",
        images=scanned,
        db_version=index.version,
    )
