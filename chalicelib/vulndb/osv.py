"""OSV records in: pydantic models of the OSV schema (tolerant of unknown fields) and loaders for
directories of JSON files and OSV `all.zip` exports. A record that does not follow the schema is
reported (`OSVRecordError` with its origin) and skipped, never silently dropped."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import OSVRecordError

log = logging.getLogger(__name__)


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OSVEvent(_Tolerant):
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None


class OSVRange(_Tolerant):
    type: str
    repo: str | None = None
    events: list[OSVEvent] = Field(default_factory=list)


class OSVPackage(_Tolerant):
    ecosystem: str
    name: str
    purl: str | None = None


class OSVSeverity(_Tolerant):
    type: str
    score: str


class OSVAffected(_Tolerant):
    package: OSVPackage | None = None
    severity: list[OSVSeverity] = Field(default_factory=list)
    ranges: list[OSVRange] = Field(default_factory=list)
    versions: list[str] = Field(default_factory=list)
    ecosystem_specific: dict[str, Any] | None = None
    database_specific: dict[str, Any] | None = None


class OSVRecord(_Tolerant):
    id: str = Field(min_length=1)
    modified: str | None = None
    published: str | None = None
    withdrawn: str | None = None
    aliases: list[str] = Field(default_factory=list)
    #: ids this record derives from (OSV 1.6: a DEBIAN-CVE-x record's upstream is CVE-x)
    upstream: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    summary: str | None = None
    details: str | None = None
    severity: list[OSVSeverity] = Field(default_factory=list)
    affected: list[OSVAffected] = Field(default_factory=list)
    database_specific: dict[str, Any] | None = None


def parse_record(raw: bytes | str, origin: str) -> OSVRecord:
    """One OSV JSON document -> record, or `OSVRecordError` naming `origin` and the problem."""
    return record_from_json(load_json(raw, origin), origin)


def load_json(raw: bytes | str, origin: str) -> Any:
    """Parsed JSON, or `OSVRecordError` naming `origin` (feeds sniff the document before choosing
    a reader, so parsing and validating are separate steps)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OSVRecordError(f"{origin}: not JSON: {exc}") from exc


def record_from_json(data: Any, origin: str) -> OSVRecord:
    """An already-parsed OSV JSON document -> record, or `OSVRecordError` naming `origin`."""
    if not isinstance(data, dict):
        raise OSVRecordError(f"{origin}: an OSV record is a JSON object, got {type(data).__name__}")
    try:
        return OSVRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OSVRecordError(f"{origin}: {where}: {first['msg']}") from exc


@dataclass
class LoadReport:
    """What a load saw: records read, and the rejected ones with their reason (kept, not dropped)."""

    records: int = 0
    rejected: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def iter_records(paths: list[Path], report: LoadReport) -> Iterator[OSVRecord]:
    """Every record under `paths`: JSON files (recursively in directories) and `.zip` exports."""
    for path in paths:
        report.sources.append(str(path))
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                yield from _iter_file(file, report)
        elif path.exists():
            yield from _iter_file(path, report)
        else:
            raise OSVRecordError(f"{path}: no such file or directory")


def _iter_file(file: Path, report: LoadReport) -> Iterator[OSVRecord]:
    if file.suffix == ".zip" and file.is_file():
        yield from _iter_zip(file, report)
    elif file.suffix == ".json" and file.is_file():
        yield from _accept(file.read_bytes(), str(file), report)


def _iter_zip(file: Path, report: LoadReport) -> Iterator[OSVRecord]:
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise OSVRecordError(f"{file}: not a zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            yield from _accept(archive.read(info), f"{file}!{info.filename}", report)


def _accept(raw: bytes, origin: str, report: LoadReport) -> Iterator[OSVRecord]:
    try:
        record = parse_record(raw, origin)
    except OSVRecordError as exc:
        log.warning("rejected OSV record", extra={"origin": origin, "error": str(exc)})
        report.rejected.append(str(exc))
        return
    report.records += 1
    yield record
