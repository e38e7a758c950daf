"""Choosing one severity per advisory, and saying where it came from.

Preference (as Trivy/Grype): the distribution's own rating for its package, then the highest
CVSS base score on the record (v4 or v3.x, scored with the `cvss` library), then the database's
own label (e.g. GitHub's `database_specific.severity`), else UNKNOWN."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cvss import CVSS3, CVSS4

from chalicelib.models import Severity
from chalicelib.vulndb.osv import OSVAffected, OSVRecord, OSVSeverity

log = logging.getLogger(__name__)

# Labels used by distributions and databases, lower-cased.
_LABELS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.LOW,
    "unimportant": Severity.LOW,
}
# Keys under ecosystem_specific / database_specific where distros put their rating.
_DISTRO_KEYS = ("severity", "urgency", "ubuntu_priority", "priority")
# `severity[].type` values that are a distro's own rating as a word: Ubuntu publishes its priority
# as `{"type": "Ubuntu", "score": "medium"}` in the record's `severity` list (OSV schema 1.7).
_DISTRO_SEVERITY_TYPES = frozenset({"Ubuntu"})


@dataclass(frozen=True)
class SeverityChoice:
    severity: Severity
    source: str
    cvss_score: float | None


def from_score(score: float) -> Severity:
    """CVSS qualitative bands (v3.1 and v4 share them)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.UNKNOWN


def cvss_base_score(entry: OSVSeverity) -> float | None:
    """Base score of a CVSS v3.x / v4 vector; None for other types or a vector that won't parse."""
    try:
        if entry.type == "CVSS_V3":
            return float(CVSS3(entry.score).base_score)
        if entry.type == "CVSS_V4":
            return float(CVSS4(entry.score).base_score)
    except Exception as exc:  # the cvss library raises several unrelated types
        log.debug("unparseable CVSS vector %r: %s", entry.score, exc)
    return None


def _label(value: Any) -> Severity | None:
    return _LABELS.get(value.strip().lower()) if isinstance(value, str) else None


def _distro_rating(record: OSVRecord, affected: OSVAffected) -> Severity | None:
    for bag in (affected.ecosystem_specific, affected.database_specific):
        for key in _DISTRO_KEYS:
            if bag and (found := _label(bag.get(key))):
                return found
    for entry in (*affected.severity, *record.severity):
        if entry.type in _DISTRO_SEVERITY_TYPES and (found := _label(entry.score)):
            return found
    return None


def choose(record: OSVRecord, affected: OSVAffected) -> SeverityChoice:
    scores = [s for e in (*record.severity, *affected.severity) if (s := cvss_base_score(e)) is not None]
    best_score = max(scores) if scores else None
    if rating := _distro_rating(record, affected):
        return SeverityChoice(rating, "distro", best_score)
    if best_score is not None:
        return SeverityChoice(from_score(best_score), "cvss", best_score)
    if record.database_specific and (label := _label(record.database_specific.get("severity"))):
        return SeverityChoice(label, "database", None)
    return SeverityChoice(Severity.UNKNOWN, "none", None)
