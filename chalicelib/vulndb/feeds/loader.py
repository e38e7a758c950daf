"""`db build` inputs: one walk over files and directories that recognises each supported feed by
its content, so a cache directory can hold them side by side.

- `*.zip`: an OSV export (`<Ecosystem>/all.zip`); every `*.json` member is an OSV record.
- `*.json`: sniffed after parsing: a KEV catalog (`catalogVersion` + `vulnerabilities`), an Alpine
  secdb document (`distroversion` + `packages`), else one OSV record.
- `*.yaml` / `*.yml`: an Alpine secdb document.
- Download sidecars (`*.meta.json`, see `osv_download`) and partial downloads are skipped.

Besides the records, the walk notes for the index's `meta` table what each input was (its version:
the export's ETag/Last-Modified when `db update` fetched it, else mtime and a sha256 prefix; the
secdb release; the KEV catalogVersion) and keeps an order-independent fingerprint of the content
(`FeedReport.content_digest`), from which the index derives `db_version`."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.errors import InputError, OSVRecordError
from chalicelib.vulndb.feeds import alpine_secdb, kev
from chalicelib.vulndb.feeds.kev import KevEntry
from chalicelib.vulndb.feeds.osv_download import SIDECAR_SUFFIX, read_sidecar
from chalicelib.vulndb.osv import LoadReport, OSVRecord, load_json, record_from_json

log = logging.getLogger(__name__)

_MASK = (1 << 256) - 1
_JSON = ".json"
_YAML = frozenset({".yaml", ".yml"})
_HASH_CHUNK = 1 << 20


@dataclass
class FeedReport(LoadReport):
    """A `LoadReport` that also knows what each input was (`feeds`, for the index's meta table),
    the KEV entries (by CVE id; a later catalog replaces an earlier one's entry) and a fingerprint
    of every record read."""

    feeds: list[dict[str, Any]] = field(default_factory=list)
    kev: dict[str, KevEntry] = field(default_factory=dict)
    kev_catalogs: list[str] = field(default_factory=list)
    alpine_releases: set[str] = field(default_factory=set)
    _records_digest: int = 0

    def add_record(self, record: OSVRecord) -> None:
        """Count a record and fold it into the fingerprint: (id, modified, withdrawn) as OSV
        promises that `modified` changes with the content; records without it (secdb) by their
        content."""
        self.records += 1
        if record.modified:
            text = f"{record.id}\x1f{record.modified}\x1f{record.withdrawn or ''}"
        else:
            text = f"{record.id}\x1f#{record.model_dump_json(exclude_none=True)}"
        value = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
        self._records_digest = (self._records_digest + value) & _MASK  # multiset hash: order-free

    def content_digest(self, salt: str = "") -> str:
        """sha256 hex over `salt`, the records' fingerprint and the KEV entries: equal inputs give
        equal digests whatever order the files were read in."""
        digest = hashlib.sha256(f"{salt}\n{self._records_digest:064x}".encode())
        for cve_id in sorted(self.kev):
            entry = self.kev[cve_id]
            digest.update(f"\n{cve_id}|{entry.date_added}|{int(entry.ransomware)}".encode())
        return digest.hexdigest()


def iter_feed_records(paths: list[Path], report: FeedReport) -> Iterator[OSVRecord]:
    """Every record under `paths` (OSV and Alpine secdb); KEV catalogs land in `report.kev`.
    A missing path is an error; a bad file or record is reported in `report.rejected`."""
    for path in paths:
        report.sources.append(str(path))
        if path.is_dir():
            yield from _walk_dir(path, report)
        elif path.is_file():
            loose = _LooseOSV(path)
            yield from _file(path, report, loose)
            loose.close(report)
        else:
            raise OSVRecordError(f"{path}: no such file or directory")


def _wanted(file: Path) -> bool:
    name = file.name
    if name.endswith(SIDECAR_SUFFIX) or not file.is_file():
        return False
    return file.suffix in (".zip", _JSON) or file.suffix.lower() in _YAML


def _walk_dir(root: Path, report: FeedReport) -> Iterator[OSVRecord]:
    loose = _LooseOSV(root)
    for file in sorted(root.rglob("*")):
        if _wanted(file):
            yield from _file(file, report, loose)
    loose.close(report)


def _file(file: Path, report: FeedReport, loose: _LooseOSV) -> Iterator[OSVRecord]:
    if file.suffix == ".zip":
        yield from _zip(file, report)
    elif file.suffix.lower() in _YAML:
        raw = file.read_bytes()
        try:
            data = alpine_secdb.load_yaml(raw, str(file))
        except InputError as exc:
            _reject(report, str(exc))
            return
        if not alpine_secdb.is_secdb(data):
            _reject(
                report, f"{file}: a YAML input must be an Alpine secdb document (distroversion, packages)"
            )
            return
        yield from _secdb(file, raw, data, report)
    elif file.suffix == _JSON:
        raw = file.read_bytes()
        try:
            data = load_json(raw, str(file))
        except OSVRecordError as exc:
            _reject(report, str(exc))
            return
        if kev.is_kev(data):
            _kev(file, raw, data, report)
        elif alpine_secdb.is_secdb(data):
            yield from _secdb(file, raw, data, report)
        else:
            loose.add(file, raw)
            yield from _osv(data, str(file), report, loose)


def _osv(data: Any, origin: str, report: FeedReport, loose: _LooseOSV | None) -> Iterator[OSVRecord]:
    try:
        record = record_from_json(data, origin)
    except OSVRecordError as exc:
        _reject(report, str(exc))
        return
    report.add_record(record)
    if loose is not None:
        loose.records += 1
    yield record


def _zip(file: Path, report: FeedReport) -> Iterator[OSVRecord]:
    entry: dict[str, Any] = {"kind": "osv", "source": str(file), **file_version(file)}
    before = report.records
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise OSVRecordError(f"{file}: not a zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(_JSON):
                continue
            origin = f"{file}!{info.filename}"
            try:
                data = load_json(archive.read(info), origin)
            except OSVRecordError as exc:
                _reject(report, str(exc))
                continue
            yield from _osv(data, origin, report, None)
    entry["records"] = report.records - before
    report.feeds.append(entry)


def _secdb(file: Path, raw: bytes, data: dict[str, Any], report: FeedReport) -> Iterator[OSVRecord]:
    try:
        result = alpine_secdb.secdb_records(data, str(file))
    except InputError as exc:
        _reject(report, str(exc))
        return
    for problem in result.problems:
        _reject(report, problem)
    report.alpine_releases.add(result.distroversion)
    report.feeds.append(
        {
            "kind": alpine_secdb.SOURCE,
            "source": str(file),
            "distroversion": result.distroversion,
            "repository": result.reponame,
            "records": len(result.records),
            "not_affected": result.not_affected,
            **file_version(file, raw),
        }
    )
    for record in result.records:
        report.add_record(record)
        yield record


def _kev(file: Path, raw: bytes, data: dict[str, Any], report: FeedReport) -> None:
    try:
        catalog = kev.parse_catalog(data, str(file))
    except InputError as exc:
        _reject(report, str(exc))
        return
    for problem in catalog.problems:
        _reject(report, problem)
    for entry in catalog.entries:
        report.kev[entry.cve_id] = entry
    report.kev_catalogs.append(catalog.catalog_version)
    report.feeds.append(
        {
            "kind": kev.SOURCE,
            "source": str(file),
            "catalog_version": catalog.catalog_version,
            "date_released": catalog.date_released,
            "entries": len(catalog.entries),
            **file_version(file, raw),
        }
    )


def _reject(report: FeedReport, problem: str) -> None:
    log.warning("rejected feed input", extra={"error": problem})
    report.rejected.append(problem)


class _LooseOSV:
    """OSV JSON files read one by one under an input path: one `feeds` entry for all of them, with
    a sha256 over their relative names and contents (in walk order, which is sorted)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.records = 0
        self._hash = hashlib.sha256()

    def add(self, file: Path, raw: bytes) -> None:
        name = file.name if file == self.root else file.relative_to(self.root).as_posix()
        self.files += 1
        self._hash.update(f"{len(name)}:{name}{len(raw)}:".encode())
        self._hash.update(raw)

    def close(self, report: FeedReport) -> None:
        if self.files:
            report.feeds.append(
                {
                    "kind": "osv",
                    "source": str(self.root),
                    "files": self.files,
                    "records": self.records,
                    "sha256": self._hash.hexdigest()[:16],
                }
            )


def file_version(file: Path, raw: bytes | None = None) -> dict[str, Any]:
    """How to tell this copy of a feed file from another: the HTTP validators `db update` saved
    beside it, else its mtime and the first 16 hex digits of its sha256."""
    sidecar = read_sidecar(file)
    if sidecar is not None:
        found = {"url": sidecar.url, "etag": sidecar.etag, "last_modified": sidecar.last_modified}
        return {key: value for key, value in found.items() if value is not None}
    mtime = datetime.fromtimestamp(file.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if raw is not None:
        digest = hashlib.sha256(raw).hexdigest()
    else:
        hasher = hashlib.sha256()
        with file.open("rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                hasher.update(chunk)
        digest = hasher.hexdigest()
    return {"mtime": mtime, "sha256": digest[:16]}
