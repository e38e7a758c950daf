"""The compiled vulnerability index: one SQLite file.

Layout (schema version 2):
- `meta(key, value)`: schema_version, built_at, db_version, record_count, sources, feeds (JSON list:
  what each input was and its version, see `feeds/loader.py`), alpine_secdb_releases (JSON list),
  kev_catalog_version, kev_count. `db_version` is a digest of the content (every record's id and
  `modified`, secdb records by content, the KEV entries, the schema version): rebuilding the same
  feeds gives the same version, any change gives a new one.
- `vulns(id, aliases, summary)`: one row per advisory; aliases as a JSON list.
- `affected(family, release, name, vuln_id, ranges, versions, severity, severity_source,
  cvss_score)`: one row per (advisory, affected package); looked up by the index on
  (family, release, name), O(log n). `ranges` is compact JSON `[[type, [[kind, version], ...]], ...]`
  with kind one of i/f/l/L (introduced, fixed, last_affected, limit); severity is decided at build
  time so matching does no CVSS scoring.
- `kev(cve_id, date_added, ransomware)`: CISA's Known Exploited Vulnerabilities catalog, looked up
  once per scan for every finding id and alias.

Writers build into a temporary file next to the target and rename it into place, so a reader never
sees a half-written index."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from chalicelib.errors import VulnDBError
from chalicelib.models import Severity
from chalicelib.vulndb.ecosystems import normalise_name, split_ecosystem
from chalicelib.vulndb.feeds.kev import KevEntry
from chalicelib.vulndb.osv import OSVRange, OSVRecord
from chalicelib.vulndb.severity import choose

if TYPE_CHECKING:
    from chalicelib.vulndb.feeds.loader import FeedReport

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
#: names per `IN (...)` query: well under SQLite's bound-parameter limit
_IN_CHUNK = 500
#: bump when how records become rows changes (severity choice, aliasing, skipped records): the
#: content version changes with it, so the fleet is re-matched although the feeds did not change
INDEX_LOGIC_VERSION = "3"
_EVENT_KINDS = (("introduced", "i"), ("fixed", "f"), ("last_affected", "l"), ("limit", "L"))

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vulns (id TEXT PRIMARY KEY, aliases TEXT NOT NULL, summary TEXT);
CREATE TABLE affected (
    family TEXT NOT NULL, release TEXT NOT NULL, name TEXT NOT NULL, vuln_id TEXT NOT NULL,
    ranges TEXT NOT NULL, versions TEXT NOT NULL,
    severity TEXT NOT NULL, severity_source TEXT NOT NULL, cvss_score REAL
);
CREATE TABLE kev (cve_id TEXT PRIMARY KEY, date_added TEXT NOT NULL, ransomware INTEGER NOT NULL);
"""
_INDEXES = "CREATE INDEX affected_lookup ON affected (family, release, name);"


class AffectedRow(NamedTuple):
    """One (advisory, affected package) row, decoded. A NamedTuple: thousands are built per scan
    and a frozen dataclass's __init__ cost more than the SQLite query."""

    vuln_id: str
    aliases: tuple[str, ...]
    summary: str | None
    ecosystem: str
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    versions: frozenset[str]
    severity: Severity
    severity_source: str
    cvss_score: float | None


def _compact_ranges(ranges: list[OSVRange]) -> list[list[object]]:
    out: list[list[object]] = []
    for rng in ranges:
        if rng.type not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not package versions
        events = [
            [kind, value]
            for event in rng.events
            for attr, kind in _EVENT_KINDS
            if (value := getattr(event, attr)) is not None
        ]
        if events:
            out.append([rng.type, events])
    return out


def build_index(paths: list[Path], out: Path) -> FeedReport:
    """Compile feed inputs (OSV JSON and exports, Alpine secdb, CISA KEV: `feeds/loader.py`) into the
    index at `out` (atomically replaced). Returns what was read and rejected. An empty input gives a
    valid empty index; the caller warns."""
    # imported here: the feed readers (PyYAML, zip walking) are for building, not for scanning
    from chalicelib.vulndb.feeds.loader import FeedReport, iter_feed_records

    out.parent.mkdir(parents=True, exist_ok=True)
    report = FeedReport()
    fd, tmp_name = tempfile.mkstemp(prefix=".vulndb-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with sqlite3.connect(tmp) as conn:
            conn.executescript(_SCHEMA)
            skipped_notices = _insert(conn, iter_feed_records(paths, report))
            conn.executemany(
                "INSERT OR REPLACE INTO kev VALUES (?, ?, ?)",
                sorted((e.cve_id, e.date_added, int(e.ransomware)) for e in report.kev.values()),
            )
            conn.executescript(_INDEXES)
            built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta = {
                "schema_version": SCHEMA_VERSION,
                "built_at": built_at,
                "db_version": content_version(report),
                "record_count": str(report.records),
                "sources": json.dumps(report.sources),
                "feeds": json.dumps(report.feeds, sort_keys=True),
                "alpine_secdb_releases": json.dumps(sorted(report.alpine_releases)),
                "kev_catalog_version": ",".join(report.kev_catalogs),
                "kev_count": str(len(report.kev)),
                "skipped_aggregate_notices": str(skipped_notices),
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def content_version(report: FeedReport) -> str:
    """`db_version`: `sha256:` + 24 hex digits of the content digest, salted with the schema."""
    salt = f"lifeguard-index-{SCHEMA_VERSION}-{INDEX_LOGIC_VERSION}"
    return "sha256:" + report.content_digest(salt=salt)[:24]


#: notices that bundle several per-CVE advisories (Ubuntu USN/LSN, Debian DSA/DLA/DTSA); the
#: per-CVE records (`UBUNTU-CVE-x`, `DEBIAN-CVE-x`) carry the same fixes with the distro's rating
_AGGREGATE_NOTICE_PREFIXES = ("USN-", "LSN-", "DSA-", "DLA-", "DTSA-")


def is_aggregate_notice(record: OSVRecord) -> bool:
    """A distro notice naming several upstream CVEs. Indexing it would report its fixes a second
    time, and treating its upstream list as aliases would merge unrelated CVEs into one finding."""
    return record.id.startswith(_AGGREGATE_NOTICE_PREFIXES) and len(record.upstream) > 1


def record_aliases(record: OSVRecord) -> list[str]:
    """`aliases`, plus the upstream id when there is exactly one (a `DEBIAN-CVE-x` record is the
    finding `CVE-x`); several upstream ids are related advisories, not other names of this one."""
    upstream = set(record.upstream) if len(record.upstream) == 1 else set()
    return sorted((set(record.aliases) | upstream) - {record.id})


def _insert(conn: sqlite3.Connection, records: Iterable[OSVRecord]) -> int:
    """Insert every record; returns how many aggregate notices were skipped."""
    skipped = 0
    vulns: list[tuple[str, str, str | None]] = []
    bare: list[tuple[str, str, str | None]] = []
    rows: list[tuple[object, ...]] = []
    for record in records:
        if record.withdrawn:
            continue
        if is_aggregate_notice(record):
            skipped += 1
            continue
        aliases = record_aliases(record)
        summary = record.summary or _first_line(record.details)
        # a record with neither aliases nor text (Alpine secdb's `CVE-x`) never replaces a richer one
        (vulns if aliases or summary else bare).append((record.id, json.dumps(aliases), summary))
        for affected in record.affected:
            if affected.package is None:
                continue
            family, release = split_ecosystem(affected.package.ecosystem)
            choice = choose(record, affected)
            rows.append(
                (
                    family,
                    release,
                    normalise_name(family, affected.package.name),
                    record.id,
                    json.dumps(_compact_ranges(affected.ranges), separators=(",", ":")),
                    json.dumps(affected.versions, separators=(",", ":")),
                    choice.severity.value,
                    choice.source,
                    choice.cvss_score,
                )
            )
        if len(rows) >= 10_000:
            _flush(conn, vulns, bare, rows)
    _flush(conn, vulns, bare, rows)
    return skipped


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0][:300] if text and text.strip() else None


def _flush(
    conn: sqlite3.Connection,
    vulns: list[tuple[str, str, str | None]],
    bare: list[tuple[str, str, str | None]],
    rows: list[tuple[object, ...]],
) -> None:
    # A later record with the same id replaces an earlier one (feeds are loaded in order).
    conn.executemany("INSERT OR REPLACE INTO vulns VALUES (?, ?, ?)", vulns)
    conn.executemany("INSERT OR IGNORE INTO vulns VALUES (?, ?, ?)", bare)
    conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    vulns.clear()
    bare.clear()
    rows.clear()


_SEVERITIES = {s.value: s for s in Severity}


@lru_cache(maxsize=131_072)
def _decode_strings(raw: str, separator: str) -> tuple[str, ...]:
    """A JSON list of strings as this module writes it (`json.dumps`, `separator` between items),
    split without the json module when nothing in it is escaped (ids and versions never need
    escapes; anything else falls back to json.loads): a 2,000-package match decodes thousands."""
    if raw == "[]":
        return ()
    if "\\" not in raw and raw.startswith('["') and raw.endswith('"]'):
        return tuple(raw[2:-2].split(f'"{separator}"'))
    return tuple(json.loads(raw))


@lru_cache(maxsize=65_536)
def _decode_versions(raw: str) -> frozenset[str]:
    return frozenset(_decode_strings(raw, ","))


@lru_cache(maxsize=131_072)
def _decode_ranges(raw: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple((rtype, tuple((kind, value) for kind, value in events)) for rtype, events in json.loads(raw))


class VulnIndex:
    """Read side of the index. Open once per process (Lambda warm starts reuse it)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise VulnDBError(
                f"no vulnerability index at {path}: build one with "
                "`python -m chalicelib db build --from OSV_DIR --out FILE`, or set LIFEGUARD_DB"
            )
        try:
            self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self.meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise VulnDBError(f"{path} is not a Lifeguard vulnerability index: {exc}") from exc
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise VulnDBError(
                f"{path} has index schema {self.meta.get('schema_version')!r}, "
                f"this Lifeguard reads {SCHEMA_VERSION!r}: rebuild it with `db build`"
            )
        self.path = path
        self._kev: dict[str, KevEntry] | None = None

    @property
    def version(self) -> str:
        return str(self.meta.get("db_version", "unknown"))

    def known_exploited(self, ids: Iterable[str]) -> dict[str, KevEntry]:
        """The KEV entries of those of `ids` that are on the catalog. The catalog is small (~1,500
        CVEs), so it is read whole on first use and kept: a scan's lookups are then dict hits,
        not one SQL query per 500 ids."""
        if self._kev is None:
            rows = self._conn.execute("SELECT cve_id, date_added, ransomware FROM kev")
            self._kev = {c: KevEntry(cve_id=c, date_added=d, ransomware=bool(r)) for c, d, r in rows}
        kev = self._kev
        return {i: kev[i] for i in ids if i in kev} if kev else {}

    def close(self) -> None:
        self._conn.close()

    def lookup_many(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], list[AffectedRow]]:
        """Rows for many (family, release, normalised name) keys: one query per release and chunk
        of names; JSON columns decoded once per distinct value per process (LRU caches: a warm
        Lambda scanning image after image meets the same advisories again)."""
        names_by_release: dict[tuple[str, str], set[str]] = {}
        for family, release, name in keys:
            names_by_release.setdefault((family, release), set()).add(name)
        found: dict[tuple[str, str, str], list[AffectedRow]] = {}
        severities, decode_strings, decode_ranges, decode_versions = (
            _SEVERITIES,
            _decode_strings,
            _decode_ranges,
            _decode_versions,
        )
        for (family, release), names in sorted(names_by_release.items()):
            ecosystem = f"{family}:{release}" if release else family
            ordered = sorted(names)
            for start in range(0, len(ordered), _IN_CHUNK):
                chunk = ordered[start : start + _IN_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                # only "?" placeholders are interpolated; every value is bound
                sql = (
                    "SELECT a.name, a.vuln_id, v.aliases, v.summary, a.ranges, a.versions, a.severity,"  # noqa: S608
                    " a.severity_source, a.cvss_score FROM affected a JOIN vulns v ON v.id = a.vuln_id"
                    f" WHERE a.family = ? AND a.release = ? AND a.name IN ({placeholders})"
                    " ORDER BY a.name, a.rowid"
                )
                rows_of_name: list[AffectedRow] = []
                current = None
                for name, vid, aliases, summary, ranges, vers, sev, source, score in self._conn.execute(
                    sql, (family, release, *chunk)
                ):
                    if name != current:  # rows come ordered by name: one dict entry per name
                        current = name
                        rows_of_name = found[(family, release, name)] = []
                    rows_of_name.append(
                        AffectedRow(
                            vid,
                            decode_strings(aliases, ", "),
                            summary,
                            ecosystem,
                            decode_ranges(ranges),
                            decode_versions(vers),
                            severities[sev],
                            source,
                            score,
                        )
                    )
        return found
