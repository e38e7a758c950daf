"""pydantic domain models shared by the scanner, the store, the API and the CLI.

Field names of `ImageScan` and its parts are the JSON output contract (`--format json`); add
fields, never rename them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """Higher is worse; UNKNOWN ranks lowest so `--fail-on LOW` does not trip on it."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.UNKNOWN: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
SEVERITIES_WORST_FIRST: tuple[Severity, ...] = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
    Severity.UNKNOWN,
)


class OSInfo(BaseModel):
    """`family` is the os-release ID (debian, alpine, ubuntu, rhel, amzn, ...)."""

    family: str | None = None
    version: str | None = None


class Package(BaseModel):
    """One installed package, as found in one file of one layer."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str | None = None
    source_version: str | None = None
    layer: str | None = None
    path: str
    arch: str | None = None
    #: the OS package (name) whose file list includes `path`: a language package the distro
    #: ships. It is listed in the SBOM but not matched on its own, so nothing is reported twice.
    owner: str | None = None
    #: declared licenses as the package metadata states them (SPDX ids or expressions where the
    #: format has them, e.g. `MIT`, `Apache-2.0 OR MIT`; free text otherwise); empty when unknown
    licenses: list[str] = Field(default_factory=list)


class Vulnerability(BaseModel):
    id: str
    aliases: list[str] = Field(default_factory=list)
    package: str
    ecosystem: str
    installed_version: str
    fixed_version: str | None = None
    severity: Severity = Severity.UNKNOWN
    cvss_score: float | None = None
    path: str
    # Beyond the contract's required fields: useful to people, kept stable too.
    purl: str | None = None
    layer: str | None = None
    severity_source: str | None = None
    summary: str | None = None
    #: on CISA's Known Exploited Vulnerabilities catalog (any of id/aliases)
    known_exploited: bool = False
    kev_date_added: str | None = None


class Suppressed(BaseModel):
    """A finding an ignore rule or a VEX statement suppressed: kept and shown, never silent."""

    vulnerability: Vulnerability
    #: `ignore-file` or `vex`
    source: str
    #: the rule or document that matched (file path and line, or VEX document id)
    rule: str
    #: VEX status (`not_affected`, `fixed`) or `ignored`
    status: str
    justification: str | None = None


class SecretFinding(BaseModel):
    rule_id: str
    severity: Severity
    path: str
    layer: str | None = None
    line: int | None = None
    masked: str
    fingerprint: str


class Misconfiguration(BaseModel):
    id: str
    severity: Severity
    title: str
    message: str
    remediation: str
    references: list[str] = Field(default_factory=list)


class ImageInfo(BaseModel):
    digest: str
    config_digest: str
    platform: str | None = None
    os: OSInfo = Field(default_factory=OSInfo)
    index_digest: str | None = None
    reference: str | None = None


class ScanSummary(BaseModel):
    packages: int = 0
    vulnerabilities: dict[Severity, int] = Field(
        default_factory=lambda: {s: 0 for s in SEVERITIES_WORST_FIRST}
    )
    secrets: int = 0
    #: lowest layers not searched for secrets (`--secret-skip-base-layers`): 0 = all searched
    secret_layers_skipped: int = 0
    misconfigurations: int = 0
    suppressed: int = 0
    gate: Literal["pass", "fail"] = "pass"
    reasons: list[str] = Field(default_factory=list)
    #: which policy decided: `[name@]sha256:<16 hex>` of its rules (docs/POLICY.md); None: no rule
    policy: str | None = None
    db_version: str | None = None
    scan_seconds: float | None = None


class ImageScan(BaseModel):
    image: ImageInfo
    packages: list[Package] = Field(default_factory=list)
    vulnerabilities: list[Vulnerability] = Field(default_factory=list)
    secrets: list[SecretFinding] = Field(default_factory=list)
    misconfigurations: list[Misconfiguration] = Field(default_factory=list)
    suppressed: list[Suppressed] = Field(default_factory=list)
    summary: ScanSummary = Field(default_factory=ScanSummary)
