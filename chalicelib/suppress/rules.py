"""The loaded suppression rules: plain frozen values, parsed once (CLI start, Lambda cold start) and
applied to every scan. Expiry is decided when a rule is applied, not when it is loaded, so a warm
Lambda does not keep applying a rule past its date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from chalicelib.suppress.purl_match import PurlPattern

VexStatus = Literal["not_affected", "affected", "fixed", "under_investigation"]
#: the VEX statuses that take a finding out of the report (and out of the gate)
SUPPRESSING_STATUSES: frozenset[str] = frozenset({"not_affected", "fixed"})


def normalize_id(vuln_id: str) -> str:
    """Ids compare case-insensitively (`ghsa-xvch-...` and `GHSA-xvch-...` are one advisory)."""
    return vuln_id.strip().upper()


@dataclass(frozen=True)
class IgnoreRule:
    """One rule of an ignore file. `packages` empty: every package; else any of them."""

    vulnerability_id: str
    origin: str
    packages: tuple[PurlPattern, ...] = ()
    #: the rule applies before this day and no longer on it (Trivy's `exp:`)
    expires: date | None = None
    reason: str | None = None

    def expired(self, today: date) -> bool:
        return self.expires is not None and today >= self.expires


@dataclass(frozen=True)
class VexProduct:
    """A statement's product: an image (by digest) or a package (by purl), optionally narrowed to
    subcomponents (packages inside it)."""

    #: `sha256:<hex>` digests that name the product as an image
    image_digests: frozenset[str] = frozenset()
    purl: PurlPattern | None = None
    subcomponents: tuple[PurlPattern, ...] = ()
    #: subcomponents were listed: only they are covered (none by purl: nothing is)
    narrowed: bool = False


@dataclass(frozen=True)
class VexStatement:
    vulnerability: str
    #: name and aliases, normalised
    ids: frozenset[str]
    products: tuple[VexProduct, ...]
    status: VexStatus
    timestamp: datetime
    origin: str
    justification: str | None = None
    impact_statement: str | None = None
    action_statement: str | None = None
    status_notes: str | None = None

    @property
    def suppresses(self) -> bool:
        return self.status in SUPPRESSING_STATUSES

    @property
    def explanation(self) -> str | None:
        """What a person reads next to the suppressed finding."""
        parts = [p for p in (self.justification, self.impact_statement, self.status_notes) if p]
        return "; ".join(parts) or None


@dataclass(frozen=True)
class SuppressionRules:
    """Ignore rules in file order, VEX statements in load order (documents in the order given,
    statements in document order): the order breaks timestamp ties, later wins."""

    ignore: tuple[IgnoreRule, ...] = ()
    vex: tuple[VexStatement, ...] = ()

    def expired(self, today: date) -> list[IgnoreRule]:
        return [rule for rule in self.ignore if rule.expired(today)]

    @property
    def empty(self) -> bool:
        return not self.ignore and not self.vex
