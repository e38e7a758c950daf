"""scan_image(source, image, index) -> ImageScan: the whole build-stage pipeline, pure (no AWS).

Walk the layers once with every analyzer, settle the OS, match packages, apply ignore rules and VEX
statements, apply the gate."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from chalicelib.analyzers import default_analyzers
from chalicelib.analyzers.base import Analyzer
from chalicelib.analyzers.secrets import SecretAnalyzer, scan_image_config
from chalicelib.image.layout import DirSource
from chalicelib.image.model import ImageSource, ResolvedImage
from chalicelib.image.walker import collect, walk_image
from chalicelib.misconfig import MisconfigOptions, check_image
from chalicelib.models import (
    SEVERITIES_WORST_FIRST,
    ImageInfo,
    ImageScan,
    Misconfiguration,
    OSInfo,
    Package,
    ScanSummary,
    SecretFinding,
)
from chalicelib.policy import Policy, PolicyFile, evaluate, policy_for
from chalicelib.suppress import SuppressionRules, apply_suppressions
from chalicelib.vulndb.index import VulnIndex
from chalicelib.vulndb.matcher import match_packages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanOptions:
    platform: str | None = None
    all_platforms: bool = False
    ignore_unfixed: bool = False
    #: the gate's rules for this scan (one repository's effective policy: `for_repository`)
    gate: Policy = field(default_factory=Policy)
    #: ignore rules and VEX statements, applied after matching and before the gate
    suppressions: SuppressionRules = field(default_factory=SuppressionRules)
    #: image configuration checks (which label marks a production image, disabled rules)
    misconfig: MisconfigOptions = field(default_factory=MisconfigOptions)
    #: secrets are not looked for in the N lowest layers (the base image the team does not own;
    #: Trivy does the same): `--secret-skip-base-layers N`, reported as `secret_layers_skipped`
    secret_skip_layers: int = 0

    def for_repository(self, policy: PolicyFile | None, repository: str | None) -> ScanOptions:
        """These options with the gate of `repository` in `policy` (the file's default and the
        overrides that match it); unchanged without a policy file."""
        if policy is None:
            return self
        return replace(self, gate=policy_for(policy, repository))


def scan_source(source: ImageSource, index: VulnIndex, options: ScanOptions) -> list[ImageScan]:
    """Every image the options select from `source` (one, or one per platform)."""
    images = source.resolve(platform=options.platform, all_platforms=options.all_platforms)
    return [scan_image(source, image, index, options) for image in images]


def scan_image(
    source: ImageSource,
    image: ResolvedImage,
    index: VulnIndex,
    options: ScanOptions,
    analyzers: Sequence[Analyzer] | None = None,
) -> ImageScan:
    started = time.perf_counter()
    if analyzers is None:  # a directory tree is a build context or rootfs: lockfiles count too
        analyzers = default_analyzers(filesystem=isinstance(source, DirSource))
    analyzers = list(analyzers)
    secret_names = {a.name for a in analyzers if isinstance(a, SecretAnalyzer)}
    skipped = min(max(options.secret_skip_layers, 0), len(image.layers)) if secret_names else 0
    walked = walk_image(source, image, analyzers, base_layers=skipped, skip_in_base=secret_names)
    os_info, packages = collect(walked, analyzers)
    secrets = list(walked.secrets)
    if secret_names:  # secrets on: the config too
        diff_ids = [layer.diff_id for layer in image.layers]
        config_secrets = scan_image_config(image.config, diff_ids)
        secrets.extend(skip_base_layer_secrets(config_secrets, diff_ids, skipped))
    info = ImageInfo(
        digest=image.digest,
        config_digest=image.config_digest,
        platform=image.platform,
        os=os_info or OSInfo(),
        index_digest=image.index_digest,
        reference=image.reference,
    )
    misconfigurations = []  # a directory tree has no image config to check
    if not isinstance(source, DirSource):
        modes = {path: found.mode for path, found in walked.special_modes.items()}
        misconfigurations = check_image(image.config, packages, options.misconfig, image.annotations, modes)
    scan = assess(info, packages, index, options, secrets=secrets, misconfigurations=misconfigurations)
    scan.summary.scan_seconds = round(time.perf_counter() - started, 3)
    scan.summary.secret_layers_skipped = skipped
    log.info(
        "scanned image",
        extra={
            "digest": image.digest,
            "packages": len(packages),
            "vulnerabilities": len(scan.vulnerabilities),
            "secrets": len(scan.secrets),
            "misconfigurations": len(scan.misconfigurations),
        },
    )
    return scan


def skip_base_layer_secrets(
    secrets: Sequence[SecretFinding], diff_ids: Sequence[str], base_layers: int
) -> list[SecretFinding]:
    """The findings not tied to one of the `base_layers` lowest layers (a history entry that built
    a base layer). A diff id that also appears above the base (the same layer pushed twice) keeps
    its findings: that content is the application's too. Findings with no layer (`config:env`,
    `config:labels`) always stay."""
    base = set(diff_ids[:base_layers]) - set(diff_ids[base_layers:])
    return [s for s in secrets if s.layer is None or s.layer not in base]


def assess(
    image: ImageInfo,
    packages: list[Package],
    index: VulnIndex,
    options: ScanOptions,
    *,
    secrets: Sequence[SecretFinding] = (),
    misconfigurations: Sequence[Misconfiguration] = (),
) -> ImageScan:
    """Everything after the walk: match, suppress, gate, summarise. Shared by a fresh scan and by
    re-matching a stored SBOM, so both reach the same verdict for the same inputs."""
    vulns = match_packages(packages, index, ignore_unfixed=options.ignore_unfixed)
    scan = ImageScan(
        image=image,
        packages=packages,
        vulnerabilities=vulns,
        secrets=list(secrets),
        misconfigurations=list(misconfigurations),
    )
    scan = apply_suppressions(scan, options.suppressions)
    decision = evaluate(scan, options.gate)
    scan.summary = ScanSummary(
        packages=len(packages),
        vulnerabilities={
            s: sum(1 for v in scan.vulnerabilities if v.severity is s) for s in SEVERITIES_WORST_FIRST
        },
        secrets=len(scan.secrets),
        misconfigurations=len(scan.misconfigurations),
        suppressed=len(scan.suppressed),
        gate=decision.verdict,
        reasons=decision.reasons,
        policy=decision.policy,
        db_version=index.version,
    )
    return scan
