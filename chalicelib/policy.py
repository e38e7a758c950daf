"""The gate: does a scan pass? One code path for the CLI (`--fail-on`) and the Lambda (policy
configuration). Part 4 widens the rules (counts, KEV, secrets, licenses, base OS); the decision and
every reason are kept on the scan summary either way."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan, Severity


class GateRules(BaseModel):
    """`fail_on`: fail when any vulnerability is at least this severe (UNKNOWN: any vulnerability).
    `fixable_only`: count only vulnerabilities that have a fixed version."""

    model_config = ConfigDict(frozen=True)

    fail_on: Severity | None = None
    fixable_only: bool = False


def evaluate(scan: ImageScan, rules: GateRules) -> tuple[Literal["pass", "fail"], list[str]]:
    reasons: list[str] = []
    if rules.fail_on is not None:
        threshold = rules.fail_on.rank
        counted = [
            v
            for v in scan.vulnerabilities
            if v.severity.rank >= threshold and (v.fixed_version or not rules.fixable_only)
        ]
        if counted:
            per = {s: sum(1 for v in counted if v.severity is s) for s in SEVERITIES_WORST_FIRST}
            detail = ", ".join(f"{s.value}: {n}" for s, n in per.items() if n)
            qualifier = "fixable " if rules.fixable_only else ""
            reasons.append(
                f"{len(counted)} {qualifier}vulnerabilities at or above {rules.fail_on.value} ({detail})"
            )
    return ("fail" if reasons else "pass"), reasons
