"""What goes into a signature's `optional` claims and into a vuln attestation, for the CLI (`sign
--attest`) and the Lambda path (`trust_service`) alike: one vocabulary (`lifeguard.*`, string values
as cosign's `-a key=value` annotations are) whoever signed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib import __version__
from chalicelib.errors import InputError
from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan

SCANNER_URI = "https://github.com/lifeguard-security/lifeguard"


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_scan(data: bytes, digest: str, what: str) -> tuple[ImageScan, dict[str, Any]]:
    """A `scan --format json` document for `digest` (its manifest digest, or the index digest it
    came from), validated; also returned as plain JSON, which is what gets attested."""
    try:
        scan = ImageScan.model_validate_json(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "document"
        raise InputError(
            f"{what} is not one `lifeguard scan --format json` result: {where}: {problem['msg']}"
        ) from None
    if digest not in {scan.image.digest, scan.image.index_digest}:
        raise InputError(f"{what} is a scan of {scan.image.digest}, not of {digest}")
    return scan, scan.model_dump(mode="json")


def scan_optional(scan: ImageScan, scan_id: str) -> dict[str, str]:
    """The simple-signing `optional` claims for a scan."""
    return signature_claims(scan_id, scan.summary.gate, scan.summary.db_version, [scan])


def signature_claims(
    scan_id: str, verdict: str, db_version: str | None, scans: Sequence[ImageScan]
) -> dict[str, str]:
    """Scan id, verdict, index version and the vulnerability counts per severity (summed over
    `scans`: the platforms of a multi-arch index)."""
    counts = {s.value: 0 for s in SEVERITIES_WORST_FIRST}
    for scan in scans:
        for vuln in scan.vulnerabilities:
            counts[vuln.severity.value] += 1
    optional = {
        "lifeguard.scan-id": scan_id,
        "lifeguard.verdict": verdict,
        "lifeguard.db-version": db_version or "",
    }
    optional.update({f"lifeguard.vulnerabilities.{k.lower()}": str(v) for k, v in counts.items()})
    return optional


def scan_document_id(data: bytes) -> str:
    """The id of a scan given as a file: a content hash, so the signature names the very
    document the attestation carries."""
    return hashlib.sha256(data).hexdigest()[:24]


def vuln_predicate(scan: ImageScan, document: dict[str, Any], finished: datetime) -> dict[str, Any]:
    """cosign's vuln/v1 predicate (`invocation`, `scanner`, `metadata`) with the scan as result."""
    started = finished - timedelta(seconds=scan.summary.scan_seconds or 0.0)
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": SCANNER_URI,
            "version": __version__,
            "db": {"uri": "", "version": scan.summary.db_version or ""},
            "result": document,
        },
        "metadata": {"scanStartedOn": _rfc3339(started), "scanFinishedOn": _rfc3339(finished)},
    }
