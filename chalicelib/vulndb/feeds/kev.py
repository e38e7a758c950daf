"""CISA's Known Exploited Vulnerabilities catalog (`known_exploited_vulnerabilities.json`).

The published format::

    {"title": ..., "catalogVersion": "2024.05.01", "dateReleased": "2024-05-01T16:00:00.000Z",
     "count": 1100, "vulnerabilities": [{"cveID": "CVE-2023-4911", "vendorProject": "GNU",
     "product": "GNU C Library", "vulnerabilityName": ..., "dateAdded": "2023-11-21",
     "shortDescription": ..., "requiredAction": ..., "dueDate": "2023-12-12",
     "knownRansomwareCampaignUse": "Unknown", "notes": ..., "cwes": ["CWE-122"]}, ...]}

The index keeps what a finding needs (`kev` table: cve_id, date_added, ransomware); the matcher flags
a finding whose id or any alias is listed. An entry that does not have a CVE id or a date is
reported and skipped; the catalog's `count` is checked against its list."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InputError

SOURCE = "cisa-kev"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class KevVulnerability(BaseModel):
    """One catalog entry; only the fields Lifeguard uses are typed, the rest is tolerated."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    cve_id: str = Field(alias="cveID", pattern=_CVE.pattern)
    date_added: str = Field(alias="dateAdded", pattern=_DATE.pattern)
    known_ransomware_campaign_use: str = Field(default="Unknown", alias="knownRansomwareCampaignUse")


@dataclass(frozen=True)
class KevEntry:
    """What the index stores per CVE. `ransomware` is `knownRansomwareCampaignUse == "Known"`."""

    cve_id: str
    date_added: str
    ransomware: bool


@dataclass
class KevCatalog:
    catalog_version: str
    date_released: str | None
    count: int
    entries: list[KevEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def is_kev(data: object) -> bool:
    """Whether a parsed JSON document is a KEV catalog."""
    return (
        isinstance(data, dict) and "catalogVersion" in data and isinstance(data.get("vulnerabilities"), list)
    )


def parse_catalog(data: dict[str, Any], origin: str) -> KevCatalog:
    """The catalog's entries, or `InputError` naming `origin` when it has no version."""
    version = data.get("catalogVersion")
    if not isinstance(version, str) or not version.strip():
        raise InputError(f"{origin}: KEV catalogVersion must be a non-empty string, got {version!r}")
    released = data.get("dateReleased")
    listed: list[Any] = data["vulnerabilities"]
    count = data.get("count")
    catalog = KevCatalog(
        catalog_version=version.strip(),
        date_released=released if isinstance(released, str) else None,
        count=len(listed),
    )
    if count != len(listed):
        catalog.problems.append(f"{origin}: KEV count says {count!r}, the catalog lists {len(listed)}")
    for position, raw in enumerate(listed):
        try:
            item = KevVulnerability.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            catalog.problems.append(f"{origin}: vulnerabilities[{position}]: {where}: {first['msg']}")
            continue
        catalog.entries.append(
            KevEntry(
                cve_id=item.cve_id,
                date_added=item.date_added,
                ransomware=item.known_ransomware_campaign_use.strip().lower() == "known",
            )
        )
    return catalog
