"""CycloneDX 1.6 JSON (with vulnerabilities) through cyclonedx-python-lib, the reference library.

Layout (as Trivy and Syft write container SBOMs): the image is `metadata.component` (type
`container`, bom-ref = image digest), the OS is an `operating-system` component, every package a
`library` component with its purl and `lifeguard:*` properties (path, layer, source package)
and its declared licenses (`components[].licenses`: `license.id` for an SPDX license id,
`expression` for an SPDX expression, `license.name` for anything else; several declared values
are one license entry each, or, when one of them is a compound expression, one `(a) AND (b)`
expression as Trivy writes them: the schema does not allow expressions and licenses side by side).
Each finding is one `vulnerabilities[]` entry: rating from our severity and CVSS score, `affects`
naming the package component with the installed version `affected` and the fix `unaffected`,
aliases as `references`. The serial number is derived from the image digest and the index version,
so the same scan gives the same document apart from the timestamp."""

from __future__ import annotations

import uuid
from decimal import Decimal

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from chalicelib import __version__
from chalicelib.analyzers.licenses import spdx_expression, spdx_license_id
from chalicelib.formats import package_key, package_refs, vulnerable_package
from chalicelib.models import ImageScan, Package
from chalicelib.models import Vulnerability as Finding

_NAMESPACE = uuid.UUID("6f1c9a56-62c4-4c5e-9f1e-6c1b7f1f0c11")
_SEVERITY = {
    "CRITICAL": VulnerabilitySeverity.CRITICAL,
    "HIGH": VulnerabilitySeverity.HIGH,
    "MEDIUM": VulnerabilitySeverity.MEDIUM,
    "LOW": VulnerabilitySeverity.LOW,
    "UNKNOWN": VulnerabilitySeverity.UNKNOWN,
}


def _purl(text: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def component_licenses(declared: list[str]) -> list[License]:
    """CycloneDX licenses for a package's declared licenses (module docstring)."""
    ids = [spdx_license_id(text) for text in declared]
    entries: list[License] = [
        DisjunctiveLicense(id=i) if i else DisjunctiveLicense(name=text)
        for text, i in zip(declared, ids, strict=True)
    ]
    if not any(i is None and spdx_expression(text) for text, i in zip(declared, ids, strict=True)):
        return entries  # SPDX ids and free text only: one entry each
    joined = declared[0] if len(declared) == 1 else " AND ".join(f"({text})" for text in declared)
    expression = spdx_expression(joined)
    return [LicenseExpression(expression)] if expression is not None else entries


def _component(package: Package, ref: str) -> Component:
    props = [Property(name="lifeguard:path", value=package.path)]
    if package.layer:
        props.append(Property(name="lifeguard:layer", value=package.layer))
    if package.source_name:
        props.append(Property(name="lifeguard:source_name", value=package.source_name))
    if package.source_version:
        props.append(Property(name="lifeguard:source_version", value=package.source_version))
    if package.owner:
        props.append(Property(name="lifeguard:owner", value=package.owner))
    props.append(Property(name="lifeguard:ecosystem", value=package.ecosystem))
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=_purl(package.purl),
        bom_ref=ref,
        properties=props,
        licenses=component_licenses(package.licenses),
    )


def _vulnerability(finding: Finding, ref: str, index: int) -> Vulnerability:
    rating = VulnerabilityRating(
        source=VulnerabilitySource(name="lifeguard"),
        severity=_SEVERITY[finding.severity.value],
        score=Decimal(str(finding.cvss_score)) if finding.cvss_score is not None else None,
    )
    versions = [
        BomTargetVersionRange(version=finding.installed_version, status=ImpactAnalysisAffectedStatus.AFFECTED)
    ]
    if finding.fixed_version:
        versions.append(
            BomTargetVersionRange(
                version=finding.fixed_version, status=ImpactAnalysisAffectedStatus.UNAFFECTED
            )
        )
    props = [Property(name="lifeguard:path", value=finding.path)]
    if finding.fixed_version:
        props.append(Property(name="lifeguard:fixed_version", value=finding.fixed_version))
    if finding.known_exploited:
        props.append(Property(name="lifeguard:known_exploited", value="true"))
    return Vulnerability(
        bom_ref=f"vuln-{index}-{finding.id}",
        id=finding.id,
        source=VulnerabilitySource(name="osv"),
        references=[
            VulnerabilityReference(id=a, source=VulnerabilitySource(name="osv")) for a in finding.aliases
        ],
        ratings=[rating],
        description=finding.summary,
        recommendation=(
            f"Upgrade {finding.package} to {finding.fixed_version} or later."
            if finding.fixed_version
            else "No fixed version is known yet."
        ),
        affects=[BomTarget(ref=ref, versions=versions)],
        properties=props,
    )


def to_bom(scan: ImageScan) -> Bom:
    """The scan as a cyclonedx-python-lib `Bom` (tests validate its JSON with the library)."""
    image = scan.image
    bom = Bom(serial_number=uuid.uuid5(_NAMESPACE, f"{image.digest}|{scan.summary.db_version}"))
    root = Component(
        type=ComponentType.CONTAINER,
        name=image.reference or image.digest,
        version=image.digest,
        bom_ref=image.digest,
        properties=[
            Property(name="lifeguard:config_digest", value=image.config_digest),
            *([Property(name="lifeguard:platform", value=image.platform)] if image.platform else []),
        ],
    )
    bom.metadata.component = root
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="lifeguard", version=__version__)
    )
    components: list[Component] = []
    if image.os.family:
        components.append(
            Component(
                type=ComponentType.OPERATING_SYSTEM,
                name=image.os.family,
                version=image.os.version,
                bom_ref=f"os-{image.os.family}-{image.os.version or 'unknown'}",
            )
        )
    refs = package_refs(scan.packages)
    components += [_component(p, refs[package_key(p)]) for p in scan.packages]
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    by_fields = vulnerable_package(scan.packages)
    for i, finding in enumerate(scan.vulnerabilities):
        package = by_fields.get(
            (finding.package, finding.installed_version, finding.path, finding.layer or "")
        )
        ref = refs[package_key(package)] if package is not None else image.digest
        bom.vulnerabilities.add(_vulnerability(finding, ref, i))
    return bom


def render_cyclonedx(scan: ImageScan) -> str:
    return JsonV1Dot6(to_bom(scan)).output_as_string(indent=2)
