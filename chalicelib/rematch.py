"""Fleet-wide re-matching: when the vulnerability index changes, every stored image is matched again
from its SBOM (S3), without pulling the image, and what moved is written down as change records.

- `plan_rematch` lists the stored images whose findings do not come from the new index yet and cuts
  them into `RematchBatch`es: one SQS message each (the fan-out, `handlers.handle_index_updated`).
- `rematch_batch` re-matches one batch (`handlers.handle_rematch_batch`): per image, the SBOM's
  packages go through the same steps as a scan (match with the scan's options, suppressions, the
  gate with the scan's rules), the result is diffed against the stored findings
  (`diff_findings`: new / resolved / changed) and stored with `ScanStore.apply_rematch`.

Idempotent: an image whose summary already records the index version is left alone (a duplicate
delivery, or a second fan-out of the same index, changes nothing), and change records are keyed by
the batch's `planned_at`, so a redelivery after a crash half-way rewrites the same items.

AWS only through the store: the pure part (`diff_findings`, `rematched_scan`) is testable without it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import NotFoundError
from chalicelib.models import (
    ImageScan,
    Misconfiguration,
    SecretFinding,
    Vulnerability,
)
from chalicelib.observability import logger, metrics
from chalicelib.policy import PolicyFile
from chalicelib.scanner import ScanOptions, assess
from chalicelib.store import ScanStore
from chalicelib.store_models import ChangeRecord, ImageRecord, RematchWrite, StoredSbom, utc_now
from chalicelib.trust_service import flag_after_rematch
from chalicelib.vulndb.index import VulnIndex

#: digests per SQS message: small enough that one message is well inside a Lambda timeout (each
#: image is one S3 read, one match and a few DynamoDB calls) and a message far below 256 KiB
DEFAULT_BATCH_SIZE = 25
MAX_BATCH_SIZE = 100
#: the finding fields whose change is worth a `changed` record; others (summary, aliases, cvss
#: score) are refreshed silently
TRACKED_FIELDS = ("severity", "fixed_version", "known_exploited")
_DIGEST = r"^sha256:[0-9a-f]{64}$"


class RematchBatch(BaseModel):
    """One SQS message of the fan-out: re-match these images against `index_version`.

    `planned_at` is when the fan-out ran: it is the `detected_at` of every change the batch
    finds, so a redelivered message writes the same change records again, not new ones."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index_version: str = Field(min_length=1)
    planned_at: datetime
    digests: list[Annotated[str, Field(pattern=_DIGEST)]] = Field(min_length=1, max_length=MAX_BATCH_SIZE)
    #: position of this batch in its fan-out (for logs)
    sequence: int = Field(default=0, ge=0)


ImageStatus = Literal["rematched", "up_to_date", "skipped", "superseded"]


class ImageRematch(BaseModel):
    """What re-matching did to one image. `rematched`: summary and findings now come from
    `db_version`; `up_to_date`: they already did (no-op); `skipped`: nothing to re-match (no scan,
    a multi-arch index, no SBOM: see `reason`); `superseded`: a concurrent delivery stored the same
    version first."""

    digest: str
    status: ImageStatus
    reason: str | None = None
    db_version: str | None = None
    new: int = 0
    resolved: int = 0
    changed: int = 0
    gate: Literal["pass", "fail"] | None = None
    previous_gate: Literal["pass", "fail"] | None = None


class RematchOutcome(BaseModel):
    """One batch's result. `index_version` is the index actually used: the newest the worker
    could load, which may be newer than the one the batch was planned for."""

    planned_version: str
    index_version: str
    images: list[ImageRematch]

    def count(self, status: ImageStatus) -> int:
        return sum(1 for i in self.images if i.status == status)


@dataclass(frozen=True)
class RematchDeps:
    """`options` and `policy` must be the scan path's (`runtime.scan_deps()`): a re-match applies
    the same ignore-unfixed setting, suppressions and gate rules as a scan. `index` returns the
    current index (the runtime re-checks S3 before each batch)."""

    store: ScanStore
    index: Callable[[], VulnIndex]
    options: ScanOptions = field(default_factory=ScanOptions)
    #: the scan path's policy file: each image is gated by its repository's policy, as a scan is
    policy: PolicyFile | None = None
    now: Callable[[], datetime] = utc_now


# --- planning -------------------------------------------------------------------------------------


def iter_rematch_batches(
    store: ScanStore,
    index_version: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    planned_at: datetime | None = None,
) -> Iterator[RematchBatch]:
    """Batches of the stored images not yet matched with `index_version`, streamed (a fleet of a
    million images is never held in memory)."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")
    planned = planned_at or utc_now()
    chunk: list[str] = []
    sequence = 0
    for digest in store.iter_image_digests(not_db_version=index_version):
        chunk.append(digest)
        if len(chunk) == batch_size:
            yield RematchBatch(
                index_version=index_version, planned_at=planned, digests=chunk, sequence=sequence
            )
            chunk, sequence = [], sequence + 1
    if chunk:
        yield RematchBatch(index_version=index_version, planned_at=planned, digests=chunk, sequence=sequence)


def plan_rematch(
    store: ScanStore,
    index_version: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    planned_at: datetime | None = None,
) -> list[RematchBatch]:
    """Every batch of `iter_rematch_batches` at once (for callers that want the whole plan)."""
    return list(iter_rematch_batches(store, index_version, batch_size, planned_at=planned_at))


# --- the pure core --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingDiff:
    """One difference between the stored findings (`before`) and the re-matched ones (`after`)."""

    kind: Literal["new", "resolved", "changed"]
    before: Vulnerability | None
    after: Vulnerability | None
    changed_fields: tuple[str, ...] = ()

    @property
    def finding(self) -> Vulnerability:
        found = self.after or self.before
        assert found is not None
        return found


def finding_identity(vuln: Vulnerability) -> tuple[str, str, str, str, str, str]:
    """What makes a finding the same finding across matches: the advisory id and the package
    entry (name, ecosystem, path, purl, installed version; the SBOM does not change, so only the
    advisory side can). An advisory whose primary id changes (a CVE assigned to a GHSA-only
    finding) is therefore one `resolved` and one `new`."""
    return (vuln.id, vuln.package, vuln.ecosystem, vuln.path, vuln.purl or "", vuln.installed_version)


def _tracked(vuln: Vulnerability) -> tuple[object, ...]:
    return tuple(getattr(vuln, name) for name in TRACKED_FIELDS)


_KIND_ORDER = {"new": 0, "changed": 1, "resolved": 2}


def diff_findings(before: Sequence[Vulnerability], after: Sequence[Vulnerability]) -> list[FindingDiff]:
    """new (only after), resolved (only before), changed (both, with a different severity, fixed
    version or known-exploited flag). Ordered new, changed, resolved, then by severity (worst
    first), id, package and path: stable across runs.

    The stored side may hold one finding twice after a crashed re-match (its old and new severity
    have different keys): it counts as unchanged when either copy matches."""
    stored: dict[tuple[str, ...], list[Vulnerability]] = {}
    for vuln in before:
        stored.setdefault(finding_identity(vuln), []).append(vuln)
    diffs: list[FindingDiff] = []
    seen: set[tuple[str, ...]] = set()
    for vuln in after:
        key = finding_identity(vuln)
        if key in seen:
            continue
        seen.add(key)
        previous = stored.get(key)
        if not previous:
            diffs.append(FindingDiff("new", None, vuln))
        elif not any(_tracked(p) == _tracked(vuln) for p in previous):
            old = previous[0]
            moved = tuple(n for n in TRACKED_FIELDS if getattr(old, n) != getattr(vuln, n))
            diffs.append(FindingDiff("changed", old, vuln, moved))
    diffs += [FindingDiff("resolved", vulns[0], None) for key, vulns in stored.items() if key not in seen]
    diffs.sort(
        key=lambda d: (
            _KIND_ORDER[d.kind],
            -d.finding.severity.rank,
            d.finding.id,
            d.finding.package,
            d.finding.path,
            d.finding.installed_version,
        )
    )
    return diffs


def rematched_scan(
    sbom: StoredSbom,
    index: VulnIndex,
    options: ScanOptions,
    secrets: Sequence[SecretFinding] = (),
    misconfigurations: Sequence[Misconfiguration] = (),
) -> ImageScan:
    """The scan an image would get now, from its SBOM: the same steps as `scanner.scan_image`
    after the walk (match with the scan's options, suppressions, gate). Secrets and
    misconfigurations come from the stored scan (they depend on the layers, not on the index) so
    gate rules about them keep their verdict."""
    return assess(
        sbom.image, sbom.packages, index, options, secrets=secrets, misconfigurations=misconfigurations
    )


def change_records(
    diffs: Iterable[FindingDiff],
    record: ImageRecord,
    scan: ImageScan,
    detected_at: datetime,
) -> list[ChangeRecord]:
    """The change records of one image's re-match: one per finding diff, plus a `verdict` record
    when the gate's verdict flipped."""
    common = {
        "digest": record.digest,
        "detected_at": detected_at,
        "db_version": scan.summary.db_version or "unknown",
        "previous_db_version": record.db_version,
        "registry": record.registry,
        "repository": record.repository,
    }
    changes: list[ChangeRecord] = []
    for diff in diffs:
        vuln, before, after = diff.finding, diff.before, diff.after
        changes.append(
            ChangeRecord(
                **common,
                kind=diff.kind,
                vulnerability_id=vuln.id,
                aliases=list(vuln.aliases),
                package=vuln.package,
                ecosystem=vuln.ecosystem,
                installed_version=vuln.installed_version,
                path=vuln.path,
                purl=vuln.purl,
                changed_fields=list(diff.changed_fields),
                severity=after.severity if after else None,
                previous_severity=before.severity if before else None,
                fixed_version=after.fixed_version if after else None,
                previous_fixed_version=before.fixed_version if before else None,
                known_exploited=after.known_exploited if after else None,
                previous_known_exploited=before.known_exploited if before else None,
            )
        )
    if record.gate is not None and record.gate != scan.summary.gate:
        changes.append(
            ChangeRecord(
                **common,
                kind="verdict",
                gate=scan.summary.gate,
                previous_gate=record.gate,
                reasons=list(scan.summary.reasons),
            )
        )
    return changes


# --- the service ----------------------------------------------------------------------------------


def rematch_image(digest: str, batch: RematchBatch, index: VulnIndex, deps: RematchDeps) -> ImageRematch:
    """Re-match one stored image against `index` (see the module docstring)."""
    store = deps.store
    record = store.get_image(digest)
    if record is None:
        return ImageRematch(digest=digest, status="skipped", reason="no scan stored")
    if record.kind == "index":
        return ImageRematch(
            digest=digest, status="skipped", reason="a multi-arch index (its platforms are re-matched)"
        )
    if record.db_version == index.version:
        return ImageRematch(digest=digest, status="up_to_date", db_version=index.version, gate=record.gate)
    sbom = store.get_sbom(digest)
    if sbom is None:
        return ImageRematch(digest=digest, status="skipped", reason="no SBOM stored")
    options = deps.options.for_repository(deps.policy, record.repository)
    scan = rematched_scan(
        sbom, index, options, store.list_secrets(digest), store.list_misconfigurations(digest)
    )
    diffs = diff_findings(store.get_findings(digest), scan.vulnerabilities)
    changes = change_records(diffs, record, scan, batch.planned_at)
    write = RematchWrite(
        digest=digest,
        vulnerabilities=scan.vulnerabilities,
        changes=changes,
        db_version=index.version,
        gate=scan.summary.gate,
        reasons=scan.summary.reasons,
        policy=scan.summary.policy,
        suppressed=scan.summary.suppressed,
        rematched_at=deps.now(),
        expected_db_version=record.db_version,
        expected_scanned_at=record.scanned_at,
    )
    try:
        applied = store.apply_rematch(write)
    except NotFoundError:  # deleted between the read and the write
        return ImageRematch(digest=digest, status="skipped", reason="no scan stored")
    if applied:
        flag_after_rematch(
            store,
            digest,
            gate=write.gate,
            previous_gate=record.gate,
            reasons=write.reasons,
            now=write.rematched_at,
        )
    counts = {kind: sum(1 for d in diffs if d.kind == kind) for kind in ("new", "resolved", "changed")}
    return ImageRematch(
        digest=digest,
        status="rematched" if applied else "superseded",
        db_version=index.version,
        gate=scan.summary.gate,
        previous_gate=record.gate,
        **counts,
    )


def rematch_batch(batch: RematchBatch, deps: RematchDeps) -> RematchOutcome:
    """Re-match every image of one batch. Each image's result is independent; an error (store
    throttling, a corrupt SBOM) propagates so SQS redelivers the message, and the images already
    done are then `up_to_date` no-ops."""
    index = deps.index()
    if index.version != batch.index_version:
        logger.info(
            "re-matching with another index version than planned",
            extra={"planned_version": batch.index_version, "index_version": index.version},
        )
    images = []
    for digest in dict.fromkeys(batch.digests):
        result = rematch_image(digest, batch, index, deps)
        images.append(result)
        if result.status == "rematched" and (result.new or result.resolved or result.changed):
            logger.info("image re-matched with changes", extra=result.model_dump(mode="json"))
    outcome = RematchOutcome(planned_version=batch.index_version, index_version=index.version, images=images)
    record_rematch_metrics(outcome)
    logger.info(
        "re-match batch done",
        extra={
            "sequence": batch.sequence,
            "index_version": index.version,
            **{s: outcome.count(s) for s in ("rematched", "up_to_date", "skipped", "superseded")},
        },
    )
    return outcome


def record_rematch_metrics(outcome: RematchOutcome) -> None:
    """Images re-matched, and findings new / resolved / changed (EMF, flushed by the handler)."""
    metrics.add_metric(name="ImagesRematched", unit=MetricUnit.Count, value=outcome.count("rematched"))
    for kind in ("new", "resolved", "changed"):
        total = sum(getattr(i, kind) for i in outcome.images)
        metrics.add_metric(name=f"Findings{kind.title()}", unit=MetricUnit.Count, value=total)


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "FindingDiff",
    "ImageRematch",
    "RematchBatch",
    "RematchDeps",
    "RematchOutcome",
    "change_records",
    "diff_findings",
    "finding_identity",
    "iter_rematch_batches",
    "plan_rematch",
    "record_rematch_metrics",
    "rematch_batch",
    "rematch_image",
    "rematched_scan",
]
