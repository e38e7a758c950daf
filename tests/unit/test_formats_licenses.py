"""Declared licenses in the outputs: the JSON contract's `packages[].licenses`, CycloneDX
`components[].licenses` (id / expression / name) and SPDX `licenseDeclared` with
`hasExtractedLicensingInfos`, each document validated by the reference tool."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from chalicelib.formats.spdx import license_ref
from chalicelib.image.layout import parse_source
from chalicelib.models import ImageScan, Package
from chalicelib.render import render
from chalicelib.scanner import ScanOptions, scan_source
from chalicelib.vulndb.index import VulnIndex

#: the sample image's declared licenses (its dpkg status has no copyright files next to it)
SAMPLE_LICENSES = {
    "requests": ["Apache-2.0"],  # `License: Apache 2.0`
    "urllib3": ["MIT"],
    "@types/node": ["MIT"],
    "lodash": ["MIT"],
    "minimist": ["MIT"],
}
#: name -> declared licenses of the synthetic packages, one per output case
CASES: dict[str, list[str]] = {
    "id": ["MIT"],
    "id-lower-case": ["apache-2.0"],
    "expression": ["GPL-2.0-only AND LGPL-2.1-or-later"],
    "expression-lower-case": ["mit or isc"],
    "free-text": ["Artistic or GPL-1+"],
    "ids-and-text": ["BSD-3-Clause", "public-domain"],
    "ids-and-expression": ["Zlib", "MIT OR Apache-2.0"],
    "text-and-expression": ["GPL-3+ with Bison exception", "MIT OR Apache-2.0"],
    "none": [],
}


@pytest.fixture(scope="module")
def sample_scan(db: Path, sample: tuple[Path, str]) -> ImageScan:
    (result,) = scan_source(parse_source(f"oci:{sample[0]}"), VulnIndex(db), ScanOptions())
    return result


@pytest.fixture(scope="module")
def case_scan(sample_scan: ImageScan) -> ImageScan:
    packages = [
        Package(
            name=name,
            version="1.0.0",
            ecosystem="npm",
            purl=f"pkg:npm/{name}@1.0.0",
            path=f"node_modules/{name}/package.json",
            licenses=licenses,
        )
        for name, licenses in CASES.items()
    ]
    return sample_scan.model_copy(update={"packages": packages, "vulnerabilities": []})


def test_json_contract_packages_carry_licenses(sample_scan: ImageScan) -> None:
    doc = json.loads(render([sample_scan], "json", as_list=False))
    assert {p["name"]: p["licenses"] for p in doc["packages"] if p["licenses"]} == SAMPLE_LICENSES
    assert sum(1 for p in doc["packages"] if p["licenses"] == []) == 8  # the Debian packages


def test_sample_cyclonedx_and_spdx_licenses(sample_scan: ImageScan, tmp_path: Path) -> None:
    cdx = json.loads(render([sample_scan], "cyclonedx", as_list=False))
    assert {
        c["name"]: c["licenses"] for c in cdx["components"] if c["type"] == "library" and "licenses" in c
    } == {name: [{"license": {"id": ids[0]}}] for name, ids in SAMPLE_LICENSES.items()}
    path = tmp_path / "sample.spdx.json"
    path.write_text(render([sample_scan], "spdx", as_list=False))
    assert validate_full_spdx_document(parse_file(str(path))) == []
    spdx = json.loads(path.read_text())
    declared = {p["name"]: p["licenseDeclared"] for p in spdx["packages"][1:]}
    assert {n: d for n, d in declared.items() if d != "NOASSERTION"} == {
        name: ids[0] for name, ids in SAMPLE_LICENSES.items()
    }
    assert "hasExtractedLicensingInfos" not in spdx


def test_cyclonedx_license_choices_validate(case_scan: ImageScan) -> None:
    text = render([case_scan], "cyclonedx", as_list=False)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    components = {c["name"]: c.get("licenses") for c in json.loads(text)["components"]}
    assert components == {
        "debian": None,
        "id": [{"license": {"id": "MIT"}}],
        "id-lower-case": [{"license": {"id": "Apache-2.0"}}],
        "expression": [{"expression": "GPL-2.0-only AND LGPL-2.1-or-later"}],
        "expression-lower-case": [{"expression": "MIT OR ISC"}],
        "free-text": [{"license": {"name": "Artistic or GPL-1+"}}],
        "ids-and-text": [{"license": {"id": "BSD-3-Clause"}}, {"license": {"name": "public-domain"}}],
        "ids-and-expression": [{"expression": "(Zlib) AND (MIT OR Apache-2.0)"}],
        # an expression cannot sit next to license entries, nor join free text: names
        "text-and-expression": [
            {"license": {"name": "GPL-3+ with Bison exception"}},
            {"license": {"name": "MIT OR Apache-2.0"}},
        ],
        "none": None,
    }


def test_spdx_license_choices_validate(case_scan: ImageScan, tmp_path: Path) -> None:
    path = tmp_path / "cases.spdx.json"
    path.write_text(render([case_scan], "spdx", as_list=False))
    assert validate_full_spdx_document(parse_file(str(path))) == []
    doc = json.loads(path.read_text())
    artistic, bison, public = (
        license_ref(t) for t in ("Artistic or GPL-1+", "GPL-3+ with Bison exception", "public-domain")
    )
    digest = hashlib.sha256(b"Artistic or GPL-1+").hexdigest()[:8]
    assert artistic == f"LicenseRef-Artistic-or-GPL-1-{digest}"  # readable text + hash of the text
    assert {p["name"]: p["licenseDeclared"] for p in doc["packages"][2:]} == {
        "id": "MIT",
        "id-lower-case": "Apache-2.0",
        "expression": "GPL-2.0-only AND LGPL-2.1-or-later",
        "expression-lower-case": "MIT OR ISC",
        "free-text": artistic,
        "ids-and-text": f"BSD-3-Clause AND {public}",
        "ids-and-expression": "Zlib AND (MIT OR Apache-2.0)",
        "text-and-expression": f"{bison} AND (MIT OR Apache-2.0)",
        "none": "NOASSERTION",
    }
    assert doc["hasExtractedLicensingInfos"] == sorted(
        (
            {"licenseId": license_ref(text), "name": text, "extractedText": text}
            for text in ("Artistic or GPL-1+", "GPL-3+ with Bison exception", "public-domain")
        ),
        key=lambda info: info["licenseId"],
    )
    assert {p["licenseConcluded"] for p in doc["packages"]} == {"NOASSERTION"}
