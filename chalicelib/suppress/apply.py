"""apply_suppressions: move the findings that ignore rules or VEX statements cover out of
`vulnerabilities` into `suppressed`, with what suppressed them. Runs after matching and before
the gate, so severity counts and the gate see only what is left.

Precedence: an unexpired ignore rule suppresses first (it is the user's unconditional choice; the
first matching rule in file order is the one reported). Otherwise the VEX statements about the
finding (same vulnerability by name or alias, a product that covers it) are ordered by timestamp,
ties by load order, and the latest decides: `not_affected` / `fixed` suppress, `affected` /
`under_investigation` keep the finding."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan, Suppressed, Vulnerability
from chalicelib.suppress.rules import (
    IgnoreRule,
    SuppressionRules,
    VexProduct,
    VexStatement,
    normalize_id,
)

IGNORE_SOURCE = "ignore-file"
VEX_SOURCE = "vex"
IGNORED_STATUS = "ignored"


@dataclass(frozen=True)
class _Image:
    """What the products of VEX statements are compared with."""

    digests: frozenset[str]
    package_purls: tuple[str, ...]


def apply_suppressions(scan: ImageScan, rules: SuppressionRules, today: date | None = None) -> ImageScan:
    """A copy of `scan` with the covered findings moved to `suppressed` and the summary's severity
    counts and `suppressed` recomputed. The gate is the caller's to evaluate afterwards.
    `today` (UTC by default) decides which ignore rules have expired."""
    if rules.empty:
        return scan
    today = today or datetime.now(UTC).date()
    active = [rule for rule in rules.ignore if not rule.expired(today)]
    image = _Image(
        digests=frozenset(d.lower() for d in (scan.image.digest, scan.image.index_digest) if d),
        package_purls=tuple(p.purl for p in scan.packages),
    )
    by_id: dict[str, list[tuple[int, VexStatement]]] = defaultdict(list)
    for order, statement in enumerate(rules.vex):
        for vuln_id in statement.ids:
            by_id[vuln_id].append((order, statement))
    kept: list[Vulnerability] = []
    suppressed = list(scan.suppressed)
    for vuln in scan.vulnerabilities:
        ids = {normalize_id(vuln.id), *(normalize_id(a) for a in vuln.aliases)}
        found = _by_ignore(vuln, ids, active) or _by_vex(vuln, ids, by_id, image)
        if found is None:
            kept.append(vuln)
        else:
            suppressed.append(found)
    summary = scan.summary.model_copy(
        update={
            "vulnerabilities": {s: sum(1 for v in kept if v.severity is s) for s in SEVERITIES_WORST_FIRST},
            "suppressed": len(suppressed),
        }
    )
    return scan.model_copy(update={"vulnerabilities": kept, "suppressed": suppressed, "summary": summary})


def _by_ignore(vuln: Vulnerability, ids: set[str], rules: Sequence[IgnoreRule]) -> Suppressed | None:
    for rule in rules:
        if normalize_id(rule.vulnerability_id) not in ids:
            continue
        if rule.packages and not any(p.matches(vuln.purl) for p in rule.packages):
            continue
        return Suppressed(
            vulnerability=vuln,
            source=IGNORE_SOURCE,
            rule=rule.origin,
            status=IGNORED_STATUS,
            justification=rule.reason,
        )
    return None


def _by_vex(
    vuln: Vulnerability,
    ids: set[str],
    by_id: dict[str, list[tuple[int, VexStatement]]],
    image: _Image,
) -> Suppressed | None:
    candidates = {order: s for vuln_id in ids for order, s in by_id.get(vuln_id, ())}
    covering = [
        (s.timestamp, order, s)
        for order, s in candidates.items()
        if any(_covers(p, vuln, image) for p in s.products)
    ]
    if not covering:
        return None
    _, _, latest = max(covering, key=lambda c: (c[0], c[1]))
    if not latest.suppresses:
        return None
    return Suppressed(
        vulnerability=vuln,
        source=VEX_SOURCE,
        rule=latest.origin,
        status=latest.status,
        justification=latest.explanation,
    )


def _covers(product: VexProduct, vuln: Vulnerability, image: _Image) -> bool:
    """An image product covers its findings; a package product covers that package. Subcomponents
    narrow either to the packages they name (a package product must then be in the image)."""
    if product.image_digests & image.digests:
        in_scope = True
    elif product.purl is not None:
        if not product.narrowed:
            return product.purl.matches(vuln.purl)
        in_scope = any(product.purl.matches(p) for p in image.package_purls)
    else:
        return False
    if not product.narrowed:
        return in_scope
    return in_scope and any(s.matches(vuln.purl) for s in product.subcomponents)
