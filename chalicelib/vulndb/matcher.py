"""Packages -> vulnerabilities, with OSV range semantics.

- Distro packages (dpkg, apk, ...) match by their SOURCE package and source version, within their
  own release only (`Debian:12` never matches a `Debian:11` record): that is how distributions
  publish advisories.
- Range semantics follow the OSV schema: events are ordered by the ecosystem's version rules,
  `introduced` opens, `fixed` closes (exclusive), `last_affected` closes (inclusive), `limit` is an
  upper bound on the whole range; explicit `versions` match exactly; `GIT` ranges are ignored.
- Several records about one advisory (a GHSA and its CVE, an OSV and its PYSEC) are merged into one
  finding per (advisory, package entry); the id is the smallest CVE id among them, the rest are
  aliases, so the choice is stable across runs.
- Findings whose id or any alias is on the CISA KEV catalog (the index's `kev` table) are flagged
  `known_exploited`, with the date CISA added them.
- Packages with an `owner` (a language package a dpkg/apk file list names) are not matched: their
  OS package is, by source package, with the distro's fixes."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable, Iterable
from functools import cmp_to_key, lru_cache
from typing import NamedTuple

from chalicelib.models import Package, Severity, Vulnerability
from chalicelib.vulndb import versions
from chalicelib.vulndb.ecosystems import normalise_name, split_ecosystem
from chalicelib.vulndb.index import AffectedRow, VulnIndex

log = logging.getLogger(__name__)

Compare = Callable[[str, str], int]

#: families whose packages are matched by source package (OS distributions)
DISTRO_FAMILIES = frozenset(
    {
        "Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard", "Red Hat", "Rocky Linux", "AlmaLinux",
        "SUSE", "openSUSE", "Amazon Linux", "Oracle Linux", "Photon OS", "Mageia", "openEuler",
    }
)  # fmt: skip
_SEMVER_NATIVE = frozenset({"npm", "Go", "crates.io"})
_SOURCE_RANK = {"distro": 3, "cvss": 2, "database": 1, "none": 0}


class _Hit(NamedTuple):
    row: AffectedRow
    fixed: str | None


def match_key(package: Package) -> tuple[str, str, str, str] | None:
    """(family, release, lookup name, version to compare) for a package, None if unmatchable."""
    if not package.ecosystem:
        return None
    family, release = split_ecosystem(package.ecosystem)
    if family == "Red Hat" and not release:
        release = _rhel_major(package.purl)
    if family in DISTRO_FAMILIES:
        name = package.source_name or package.name
        version = package.source_version or package.version
    else:
        name, version = package.name, package.version
    return family, release, normalise_name(family, name), version


_RHEL_DISTRO = re.compile(r"[?&]distro=rhel-([0-9]+)")


def _rhel_major(purl: str) -> str:
    """RHEL packages carry the contract's plain `Red Hat` ecosystem; the release they are matched
    in (OSV's `Red Hat:enterprise_linux:<major>::*` records, indexed as release `<major>`) comes
    from the purl's `distro=rhel-9.4` qualifier. Without one, only release-less records apply."""
    found = _RHEL_DISTRO.search(purl)
    return found.group(1) if found else ""


def match_packages(
    packages: Iterable[Package], index: VulnIndex, ignore_unfixed: bool = False
) -> list[Vulnerability]:
    # A language package an OS package owns (`owner`) is covered by its owner's advisories: it
    # stays in the SBOM but is not matched on its own, so nothing is reported twice.
    keyed = [(pkg, key) for pkg in packages if pkg.owner is None and (key := match_key(pkg)) is not None]
    # a burst of short-lived allocations with no cycles: the cyclic GC only costs time here
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _match(keyed, index, ignore_unfixed)
    finally:
        if gc_was_enabled:
            gc.enable()


def _match(
    keyed: list[tuple[Package, tuple[str, str, str, str]]], index: VulnIndex, ignore_unfixed: bool
) -> list[Vulnerability]:
    rows_by_key = index.lookup_many((fam, rel, name) for _, (fam, rel, name, _) in keyed)
    findings: list[Vulnerability] = []
    for pkg, (family, release, name, version) in keyed:
        rows = rows_by_key.get((family, release, name))
        if not rows:
            continue
        hits = _hits(rows, pkg.ecosystem, family, version)
        for group in _group_by_advisory(hits):
            finding = _finding(pkg, group, pkg.ecosystem)
            if ignore_unfixed and finding.fixed_version is None:
                continue
            findings.append(finding)
    flag_known_exploited(findings, index)
    worst_first = _WORST_FIRST
    findings.sort(key=lambda v: (worst_first[v.severity], v.id, v.package, v.path))
    return findings


def flag_known_exploited(findings: list[Vulnerability], index: VulnIndex) -> None:
    """Set `known_exploited` / `kev_date_added` on findings whose id or any alias is on the CISA KEV
    catalog: one index query for the whole scan. The earliest date wins if several ids are listed."""
    listed = index.known_exploited({i for f in findings for i in (f.id, *f.aliases)})
    if not listed:
        return
    for finding in findings:
        dates = [listed[i].date_added for i in (finding.id, *finding.aliases) if i in listed]
        if dates:
            finding.known_exploited = True
            finding.kev_date_added = min(dates)


def _hits(rows: list[AffectedRow], ecosystem: str, family: str, version: str) -> list[_Hit]:
    hits = []
    installed: dict[str, versions.SortKey] = {}  # the package's version parsed once per ecosystem
    for row in rows:
        try:
            affected, fixed = is_affected(row, ecosystem, family, version, installed)
        except ValueError as exc:  # a version the ecosystem's rules reject, on either side
            log.debug("cannot compare %s %s against %s: %s", ecosystem, version, row.vuln_id, exc)
            continue
        if affected:
            hits.append(_Hit(row, fixed))
    return hits


def is_affected(
    row: AffectedRow,
    ecosystem: str,
    family: str,
    version: str,
    installed: dict[str, versions.SortKey] | None = None,
) -> tuple[bool, str | None]:
    """Whether `version` is affected by `row`, and the fix that closes the range containing it.
    SEMVER ranges outside semver-native ecosystems use lenient semver (OSV's rule). `installed`
    caches `version`'s sort key per ecosystem across the rows of one package."""
    keys = {} if installed is None else installed
    for range_type, events in row.ranges:
        eco = ecosystem if range_type == "ECOSYSTEM" or family in _SEMVER_NATIVE else "Go"
        key = keys.get(eco)
        if key is None:
            key = keys[eco] = versions.comparator(eco).key(version)
        affected, fixed = _in_range(eco, key, events)
        if affected:
            return True, fixed
    return version in row.versions, None


#: sort position of a severity, worst first (a dict hit instead of the `rank` property per finding)
_WORST_FIRST = {severity: -severity.rank for severity in Severity}

_Event = tuple[versions.SortKey | None, str, str]


@lru_cache(maxsize=65_536)
def _ordered_events(
    ecosystem: str, events: tuple[tuple[str, str], ...]
) -> tuple[tuple[_Event, ...], tuple[versions.SortKey, ...]]:
    """A range's events in version order (`introduced: 0` first) and its limits, parsed once per
    process: the same ranges come back for every image with that package."""
    key = versions.comparator(ecosystem).key
    ordered = sorted(
        ((0, None) if kind == "i" and value == "0" else (1, key(value)), kind, value)
        for kind, value in events
        if kind != "L"
    )
    limits = tuple(key(value) for kind, value in events if kind == "L")
    return tuple((event_key, kind, value) for (_, event_key), kind, value in ordered), limits


def _in_range(
    ecosystem: str, installed: versions.SortKey, events: tuple[tuple[str, str], ...]
) -> tuple[bool, str | None]:
    """OSV's evaluation: walk the events in version order; the last one at or below the installed
    version (its sort key) decides. The fix is the next `fixed` event above it (none when
    `last_affected` comes first). Keys only promise `<` and `>`, hence `not a < b` for `a >= b`."""
    ordered, limits = _ordered_events(ecosystem, events)
    affected, position = False, -1
    for i, (event_key, kind, _value) in enumerate(ordered):
        if kind == "i" and (event_key is None or not installed < event_key):
            affected, position = True, i
        elif event_key is not None and (
            (kind == "f" and not installed < event_key) or (kind == "l" and installed > event_key)
        ):
            affected, position = False, i
    if not affected or (limits and all(not installed < limit for limit in limits)):
        return False, None
    for _, kind, value in ordered[position + 1 :]:
        if kind in ("f", "l"):
            return True, value if kind == "f" else None
    return True, None


def _group_by_advisory(hits: list[_Hit]) -> list[list[_Hit]]:
    """Union of records sharing any id or alias."""
    if len(hits) < 2:
        return [hits] if hits else []
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for hit in hits:
        for alias in hit.row.aliases:
            parent[find(alias)] = find(hit.row.vuln_id)
    groups: dict[str, list[_Hit]] = {}
    for hit in hits:
        groups.setdefault(find(hit.row.vuln_id), []).append(hit)
    return list(groups.values())


def primary_id(ids: set[str]) -> str:
    """CVE first, then the smallest id: stable whatever order the records came in."""
    if len(ids) == 1:
        return next(iter(ids))
    cves = [i for i in ids if i.startswith("CVE-")]
    return min(cves) if cves else min(ids)


def _finding(pkg: Package, group: list[_Hit], ecosystem: str) -> Vulnerability:
    if len(group) == 1:  # the common case: one record, nothing to merge (and no sorting)
        rated, fixed = group[0]
        if rated.aliases:
            ids = {rated.vuln_id, *rated.aliases}
            vid = primary_id(ids)
            aliases = sorted(ids - {vid})
        else:
            vid, aliases = rated.vuln_id, []
        score, summary = rated.cvss_score, rated.summary
    else:
        ids = {h.row.vuln_id for h in group} | {a for h in group for a in h.row.aliases}
        vid = primary_id(ids)
        rated = max(
            group, key=lambda h: (_SOURCE_RANK.get(h.row.severity_source, 0), h.row.severity.rank)
        ).row
        scores = [h.row.cvss_score for h in group if h.row.cvss_score is not None]
        score = max(scores) if scores else None
        fixes = [h.fixed for h in group if h.fixed]
        fixed = max(fixes, key=cmp_to_key(_fix_order(ecosystem))) if fixes else None
        summary = next((h.row.summary for h in group if h.row.vuln_id == vid and h.row.summary), None)
        summary = summary or next((h.row.summary for h in group if h.row.summary), None)
        aliases = sorted(ids - {vid})
    return Vulnerability(
        id=vid,
        aliases=aliases,
        package=pkg.name,
        ecosystem=ecosystem,
        installed_version=pkg.version,
        fixed_version=fixed,
        severity=rated.severity,
        cvss_score=score,
        path=pkg.path,
        purl=pkg.purl or None,
        layer=pkg.layer,
        severity_source=rated.severity_source,
        summary=summary,
    )


def _fix_order(ecosystem: str) -> Compare:
    cmp = versions.comparator(ecosystem).compare

    def order(a: str, b: str) -> int:
        try:
            return cmp(a, b)
        except ValueError:
            return (a > b) - (a < b)

    return order
