"""SARIF 2.1.0 for GitHub code scanning: one run, one rule per vulnerability id, secret rule and
misconfiguration rule, one result per finding.

GitHub's requirements followed here (docs "SARIF support for code scanning"): `version` 2.1.0 and
`$schema`; `runs[].tool.driver.name` and `rules[]` with `id`, `shortDescription`, `fullDescription`,
`help` (text + markdown) and `properties.security-severity` (a number as a string: GitHub maps
>= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low) and `properties.tags` containing `security`;
results with `ruleId`/`ruleIndex`, `level`, `message.text`, one physical location whose
`artifactLocation.uri` is a relative path (the package's file; a misconfiguration or a secret in
the image config points at `Dockerfile`, where the fix goes) with `region.startLine`, and
`partialFingerprints` so an alert survives reruns. Secret results carry the masked excerpt only."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chalicelib import __version__
from chalicelib.models import ImageScan, Severity, Vulnerability

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/lifeguard/lifeguard"
FINGERPRINT_KEY = "lifeguardFinding/v1"
#: severity -> security-severity when the finding has no CVSS score (Trivy's mapping)
SECURITY_SEVERITY = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}
MISCONFIG_URI = "Dockerfile"
LEAK_HELP = "Remove the secret from the image (it stays in every layer that has it) and rotate it."
_OS_PURLS = ("pkg:deb/", "pkg:apk/", "pkg:rpm/")


@dataclass
class _Rule:
    id: str
    name: str
    short: str
    full: str
    help_text: str
    help_markdown: str
    severity: Severity
    score: float
    tags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "shortDescription": {"text": self.short},
            "fullDescription": {"text": self.full},
            "defaultConfiguration": {"level": LEVEL[self.severity]},
            "help": {"text": self.help_text, "markdown": self.help_markdown},
            "properties": {
                "precision": "very-high",
                "security-severity": f"{self.score:.1f}",
                "tags": ["security", *self.tags, self.severity.value],
            },
        }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def artifact_uri(path: str) -> str:
    """A relative URI for an image path. Findings in the image config (secret paths `config:...`)
    point at the Dockerfile, like misconfigurations; other characters a URI cannot hold are
    percent-encoded (a `:` would otherwise read as a scheme)."""
    if path.startswith("config:"):
        return MISCONFIG_URI
    return quote(path, safe="/@+~-._!$&'()*,;=")


def _location(path: str, line: int | None = None) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(path)},
            "region": {"startLine": line if line and line > 0 else 1},
        }
    }


class _Builder:
    def __init__(self) -> None:
        self.rules: dict[str, _Rule] = {}
        self.index: dict[str, int] = {}
        self.results: list[dict[str, Any]] = []

    def rule(self, rule: _Rule) -> int:
        known = self.rules.get(rule.id)
        if known is None:
            self.rules[rule.id] = rule
            self.index[rule.id] = len(self.index)
        elif (rule.score, rule.severity.rank) > (known.score, known.severity.rank):
            known.score, known.severity = rule.score, rule.severity  # the worst instance rates it
        return self.index[rule.id]

    def result(self, rule_id: str, severity: Severity, text: str, location: dict[str, Any], fp: str) -> None:
        self.results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": self.index[rule_id],
                "level": LEVEL[severity],
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {FINGERPRINT_KEY: fp},
            }
        )


def _vulnerability_rule(v: Vulnerability, score: float) -> _Rule:
    fix = f"Fixed in {v.fixed_version}." if v.fixed_version else "No fixed version yet."
    summary = v.summary or f"{v.id} in {v.package}"
    aliases = f" (also {', '.join(v.aliases)})" if v.aliases else ""
    table = (
        "| Severity | Package | Installed | Fixed |\n| --- | --- | --- | --- |\n"
        f"| {v.severity.value} | {v.package} | {v.installed_version} | {v.fixed_version or '-'} |"
    )
    os_package = bool(v.purl and v.purl.startswith(_OS_PURLS))
    return _Rule(
        id=v.id,
        name="OsPackageVulnerability" if os_package else "LanguageSpecificPackageVulnerability",
        short=summary,
        full=f"{v.id}{aliases}: {summary}",
        help_text=f"Vulnerability {v.id}{aliases}\nSeverity: {v.severity.value}\nPackage: {v.package}\n"
        f"Installed: {v.installed_version}\n{fix}",
        help_markdown=f"**Vulnerability {v.id}**{aliases}\n\n{table}",
        severity=v.severity,
        score=score,
        tags=["vulnerability"],
    )


def to_sarif(scan: ImageScan) -> dict[str, Any]:
    image = scan.image
    target = image.reference or image.digest
    b = _Builder()
    for v in scan.vulnerabilities:
        score = v.cvss_score if v.cvss_score is not None else SECURITY_SEVERITY[v.severity]
        b.rule(_vulnerability_rule(v, score))
        b.result(
            v.id,
            v.severity,
            f"Package: {v.package}\nInstalled version: {v.installed_version}\nVulnerability: {v.id}\n"
            f"Severity: {v.severity.value}\nFixed version: {v.fixed_version or '(none)'}\nImage: {target}\n"
            f"Path: {v.path}",
            _location(v.path),
            _fingerprint(image.digest, v.id, v.package, v.installed_version, v.path),
        )
    for s in scan.secrets:
        rule_id = f"secret/{s.rule_id}"
        b.rule(
            _Rule(
                id=rule_id,
                name="Secret",
                short=f"Secret: {s.rule_id}",
                full=f"A secret matching rule {s.rule_id} is stored in the image.",
                help_text=LEAK_HELP,
                help_markdown=LEAK_HELP.replace("rotate it", "**rotate it**"),
                severity=s.severity,
                score=SECURITY_SEVERITY[s.severity],
                tags=["secret"],
            )
        )
        b.result(
            rule_id,
            s.severity,
            f"Secret {s.rule_id} in {s.path}" + (f" line {s.line}" if s.line else "") + f": {s.masked}",
            _location(s.path, s.line),
            s.fingerprint,
        )
    for m in scan.misconfigurations:
        b.rule(
            _Rule(
                id=m.id,
                name="ImageMisconfiguration",
                short=m.title,
                full=m.title,
                help_text=f"{m.remediation}\nReferences: {'; '.join(m.references)}",
                help_markdown=f"{m.remediation}\n\n" + "\n".join(f"- {r}" for r in m.references),
                severity=m.severity,
                score=SECURITY_SEVERITY[m.severity],
                tags=["misconfiguration"],
            )
        )
        b.result(
            m.id,
            m.severity,
            f"{m.message} Image: {target}",
            _location(MISCONFIG_URI),
            _fingerprint(image.digest, m.id, m.message),
        )
    driver = {
        "name": "Lifeguard",
        "fullName": "Lifeguard container security scanner",
        "version": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [r.as_dict() for r in b.rules.values()],
    }
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": b.results,
                "columnKind": "utf16CodeUnits",
                "properties": {
                    "imageDigest": image.digest,
                    "imageReference": image.reference,
                    "dbVersion": scan.summary.db_version,
                },
            }
        ],
    }


def render_sarif(scan: ImageScan) -> str:
    return json.dumps(to_sarif(scan), indent=2)
