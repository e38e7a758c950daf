"""SPDX 2.3 JSON, built as a plain dict (the format is small and stable; `spdx-tools` parses and
validates it in the tests).

The image is the described package (`primaryPackagePurpose: CONTAINER`, DOCUMENT DESCRIBES it);
the OS (`OPERATING-SYSTEM`) and every package are CONTAINed by it. Packages carry their purl as a
`PACKAGE-MANAGER`/`purl` external reference and where they were found (`sourceInfo`: path and
layer). Nothing here is asserted that Lifeguard does not know: concluded licenses, download
locations and copyright are `NOASSERTION`. `licenseDeclared` is what the package metadata declares
(`Package.licenses`): each value as a canonical SPDX expression when it is one, else a
`LicenseRef-<text>-<hash>` whose text is listed in `hasExtractedLicensingInfos`; several values
are joined with `AND` (as Trivy does); no declared license is `NOASSERTION`. The namespace is
derived from the image digest, so reruns agree."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib import __version__
from chalicelib.analyzers.licenses import spdx_expression
from chalicelib.formats import package_key, package_refs
from chalicelib.models import ImageScan, Package

NAMESPACE_BASE = "https://lifeguard.invalid/spdx"
_NAMESPACE = uuid.UUID("0b6f8e1e-4f44-4a8a-8d77-3c6f1b2c9d21")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")
IMAGE_ID = "SPDXRef-Image"
NOASSERTION = "NOASSERTION"


def spdx_id(text: str) -> str:
    """An `SPDXRef-` id from any text: SPDX allows only letters, digits, `.` and `-`."""
    return "SPDXRef-" + _ID_UNSAFE.sub("-", text).strip("-")


def license_ref(text: str) -> str:
    """A stable `LicenseRef-` id for a license that is not SPDX: readable text plus a hash of it,
    so two texts that read alike after escaping stay distinct."""
    readable = _ID_UNSAFE.sub("-", text).strip("-")[:48].rstrip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"LicenseRef-{readable}-{digest}" if readable else f"LicenseRef-{digest}"


def declared_license(declared: list[str], extracted: dict[str, str]) -> str:
    """`licenseDeclared` for a package's declared licenses (module docstring); each LicenseRef
    used is added to `extracted` (id -> the declared text)."""
    parts: list[str] = []
    for text in declared:
        expression = spdx_expression(text)
        if expression is None:
            expression = license_ref(text)
            extracted[expression] = text
        parts.append(expression)
    if not parts:
        return NOASSERTION
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({part})" if " " in part else part for part in parts)


def _package(package: Package, ref: str, extracted: dict[str, str]) -> dict[str, Any]:
    source = f"found in {package.path}" + (f" (layer {package.layer})" if package.layer else "")
    if package.source_name:
        source += f"; source package {package.source_name} {package.source_version or ''}".rstrip()
    return {
        "SPDXID": spdx_id(f"Package-{ref}"),
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": declared_license(package.licenses, extracted),
        "copyrightText": NOASSERTION,
        "sourceInfo": source,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }
        ],
    }


def to_spdx(scan: ImageScan, created: datetime | None = None) -> dict[str, Any]:
    image = scan.image
    name = image.reference or image.digest
    created_at = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    image_pkg: dict[str, Any] = {
        "SPDXID": IMAGE_ID,
        "name": name,
        "versionInfo": image.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest.removeprefix("sha256:")}]
        if image.digest.startswith("sha256:")
        else [],
    }
    packages: list[dict[str, Any]] = [image_pkg]
    relationships: list[dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": IMAGE_ID}
    ]
    if image.os.family:
        os_id = spdx_id(f"OperatingSystem-{image.os.family}-{image.os.version or 'unknown'}")
        packages.append(
            {
                "SPDXID": os_id,
                "name": image.os.family,
                "versionInfo": image.os.version or NOASSERTION,
                "downloadLocation": NOASSERTION,
                "filesAnalyzed": False,
                "licenseConcluded": NOASSERTION,
                "licenseDeclared": NOASSERTION,
                "copyrightText": NOASSERTION,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
            }
        )
        relationships.append(
            {"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id}
        )
    refs = package_refs(scan.packages)
    extracted: dict[str, str] = {}
    for package in scan.packages:
        entry = _package(package, refs[package_key(package)], extracted)
        packages.append(entry)
        relationships.append(
            {"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS", "relatedSpdxElement": entry["SPDXID"]}
        )
    doc_uuid = uuid.uuid5(_NAMESPACE, f"{image.digest}|{scan.summary.db_version}")
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{NAMESPACE_BASE}/{_ID_UNSAFE.sub('-', name).strip('-')}-{doc_uuid}",
        "creationInfo": {"created": created_at, "creators": [f"Tool: lifeguard-{__version__}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": text, "extractedText": text} for ref, text in sorted(extracted.items())
        ]
    return document


def render_spdx(scan: ImageScan) -> str:
    return json.dumps(to_spdx(scan), indent=2)
