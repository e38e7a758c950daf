"""apply_suppressions: aliases, package and image scoping, subcomponents, latest statement wins,
precedence, and summary counts."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from chalicelib.models import ImageInfo, ImageScan, Package, Severity, Suppressed, Vulnerability
from chalicelib.suppress import SuppressionRules, apply_suppressions, parse_ignore_lines, parse_vex

DIGEST = "sha256:" + "a" * 64
INDEX_DIGEST = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64
TODAY = date(2024, 5, 31)


def _vuln(vuln_id: str, aliases: list[str], package: str, purl: str, severity: Severity) -> Vulnerability:
    version = purl.partition("@")[2].partition("?")[0]
    return Vulnerability(
        id=vuln_id, aliases=aliases, package=package, ecosystem="x", installed_version=version,
        severity=severity, path="p", purl=purl,
    )  # fmt: skip


CURL = "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u1?arch=amd64&distro=debian-12"
LIBCURL = "pkg:deb/debian/libcurl4@7.88.1-10%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=curl"
REQUESTS = "pkg:pypi/requests@2.25.1"
MINIMIST = "pkg:npm/minimist@1.2.5"
APP = "pkg:npm/sample-app@1.0.0"


def _scan() -> ImageScan:
    vulns = [
        _vuln("CVE-2023-38545", ["DEBIAN-CVE-2023-38545"], "curl", CURL, Severity.CRITICAL),
        _vuln("CVE-2023-38545", ["DEBIAN-CVE-2023-38545"], "libcurl4", LIBCURL, Severity.CRITICAL),
        _vuln("CVE-2021-44906", ["GHSA-xvch-5gv4-984h"], "minimist", MINIMIST, Severity.CRITICAL),
        _vuln(
            "CVE-2023-32681", ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"], "requests", REQUESTS, Severity.MEDIUM
        ),
    ]
    packages = [
        Package(name=p.rpartition("/")[2].partition("@")[0], version="v", ecosystem="x", purl=p, path="p")
        for p in (CURL, LIBCURL, MINIMIST, REQUESTS, APP)
    ]
    return ImageScan(
        image=ImageInfo(digest=DIGEST, config_digest=OTHER, index_digest=INDEX_DIGEST),
        packages=packages,
        vulnerabilities=vulns,
    )


def _ignore(text: str) -> SuppressionRules:
    return SuppressionRules(ignore=tuple(parse_ignore_lines(text, "ig")))


def _vex(*statements: dict[str, Any], timestamp: str = "2024-01-01T00:00:00Z") -> SuppressionRules:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "timestamp": timestamp,
        "statements": list(statements),
    }
    return SuppressionRules(vex=tuple(parse_vex(json.dumps(doc), "vex.json")))


def _st(vuln: str, products: list[Any], status: str = "not_affected", **extra: Any) -> dict[str, Any]:
    statement = {"vulnerability": {"name": vuln}, "products": products, "status": status, **extra}
    if status == "not_affected":
        statement.setdefault("justification", "component_not_present")
    return statement


def _suppressed(scan: ImageScan) -> list[tuple[str, str, str, str, str, str | None]]:
    return [
        (s.vulnerability.id, s.vulnerability.package, s.source, s.status, s.rule, s.justification)
        for s in scan.suppressed
    ]


def _packages(rules: SuppressionRules) -> list[str]:
    return [s.vulnerability.package for s in apply_suppressions(_scan(), rules, TODAY).suppressed]


def _kept(scan: ImageScan) -> list[tuple[str, str]]:
    return [(v.id, v.package) for v in scan.vulnerabilities]


def test_ignore_by_alias_suppresses_the_cve_named_finding_and_recounts() -> None:
    scan = apply_suppressions(_scan(), _ignore("# not reachable\nghsa-j8r2-6x86-q33q\n"), TODAY)
    assert _suppressed(scan) == [
        ("CVE-2023-32681", "requests", "ignore-file", "ignored", "ig:2", "not reachable")
    ]
    assert _kept(scan) == [
        ("CVE-2023-38545", "curl"),
        ("CVE-2023-38545", "libcurl4"),
        ("CVE-2021-44906", "minimist"),
    ]
    assert scan.summary.suppressed == 1
    assert scan.summary.vulnerabilities == {
        Severity.CRITICAL: 3, Severity.HIGH: 0, Severity.MEDIUM: 0, Severity.LOW: 0, Severity.UNKNOWN: 0
    }  # fmt: skip


def test_ignore_package_scoping() -> None:
    cases = {
        "CVE-2023-38545 pkg:deb/debian/curl": ["curl"],
        "CVE-2023-38545 pkg:deb/debian/curl@7.88.1-10+deb12u1": ["curl"],
        "CVE-2023-38545 pkg:deb/debian/curl@7.88.1-10+deb12u2": [],
        "CVE-2023-38545 pkg:deb/debian/curl?distro=debian-12": ["curl"],
        "CVE-2023-38545 pkg:deb/debian/curl?distro=debian-11": [],
        "CVE-2023-38545 pkg:deb/ubuntu/curl": [],
        "CVE-2023-38545 pkg:deb/debian/curl pkg:deb/debian/libcurl4": ["curl", "libcurl4"],
        "CVE-2023-38545": ["curl", "libcurl4"],
        "CVE-2023-32681 pkg:pypi/Requests@2.25.1": ["requests"],
        "CVE-2023-32681 pkg:npm/requests": [],
        "CVE-2099-0001": [],
    }
    assert {rule: _packages(_ignore(rule)) for rule in cases} == cases


def test_expired_rules_no_longer_apply() -> None:
    rules = _ignore("CVE-2021-44906 exp:2024-06-01\nCVE-2023-32681 exp:2024-05-31\n")
    assert [r.origin for r in rules.expired(TODAY)] == ["ig:2"]
    assert [
        v.package for v in [s.vulnerability for s in apply_suppressions(_scan(), rules, TODAY).suppressed]
    ] == ["minimist"]
    later = apply_suppressions(_scan(), rules, date(2024, 6, 1))
    assert (later.suppressed, later.summary.suppressed) == ([], 0)


def test_first_matching_ignore_rule_is_reported() -> None:
    scan = apply_suppressions(
        _scan(), _ignore("CVE-2021-44906 pkg:npm/other\nCVE-2021-44906  # b\nCVE-2021-44906 # c\n"), TODAY
    )
    assert _suppressed(scan) == [("CVE-2021-44906", "minimist", "ignore-file", "ignored", "ig:2", "b")]


def test_vex_image_scoped_by_digest_or_index_digest() -> None:
    for digest, expected in ((DIGEST, 2), (INDEX_DIGEST, 2), (OTHER, 0)):
        rules = _vex(_st("CVE-2023-38545", [{"@id": f"pkg:oci/app@{digest.replace(':', '%3A')}"}]))
        assert len(apply_suppressions(_scan(), rules, TODAY).suppressed) == expected, digest
    by_hash = _vex(_st("CVE-2023-38545", [{"hashes": {"sha-256": "A" * 64}}]))
    assert len(apply_suppressions(_scan(), by_hash, TODAY).suppressed) == 2
    no_digest = _vex(_st("CVE-2023-38545", ["pkg:oci/app"]))
    assert apply_suppressions(_scan(), no_digest, TODAY).suppressed == []


def test_vex_package_scoped_and_alias() -> None:
    rules = _vex(
        _st("CVE-2023-38545", [{"@id": "pkg:deb/debian/libcurl4"}], impact_statement="not linked"),
        _st("GHSA-xvch-5gv4-984h", [{"identifiers": {"purl": "pkg:npm/minimist@1.2.5"}}], "fixed"),
        _st("CVE-2023-32681", [{"@id": "pkg:pypi/requests@2.31.0"}]),
    )
    scan = apply_suppressions(_scan(), rules, TODAY)
    assert _suppressed(scan) == [
        ("CVE-2023-38545", "libcurl4", "vex", "not_affected", "vex.json statements[0]",
         "component_not_present; not linked"),
        ("CVE-2021-44906", "minimist", "vex", "fixed", "vex.json statements[1]", None),
    ]  # fmt: skip
    assert _kept(scan) == [("CVE-2023-38545", "curl"), ("CVE-2023-32681", "requests")]
    assert scan.summary.suppressed == 2
    assert scan.summary.vulnerabilities[Severity.CRITICAL] == 1


def test_subcomponents_narrow_image_and_package_products() -> None:
    image_product = {"@id": f"pkg:oci/app@{DIGEST}", "subcomponents": [{"@id": "pkg:deb/debian/curl"}]}
    scan = apply_suppressions(_scan(), _vex(_st("CVE-2023-38545", [image_product])), TODAY)
    assert [s.vulnerability.package for s in scan.suppressed] == ["curl"]
    # a package product with subcomponents: the product must be in the image
    present = {"@id": "pkg:npm/sample-app", "subcomponents": ["pkg:npm/minimist"]}
    absent = {"@id": "pkg:npm/other-app", "subcomponents": ["pkg:npm/minimist"]}
    assert _packages(_vex(_st("CVE-2021-44906", [present]))) == ["minimist"]
    assert _packages(_vex(_st("CVE-2021-44906", [absent]))) == []
    # subcomponents named only by CPE match nothing, rather than widening to the whole image
    cpe_only = {
        "@id": f"pkg:oci/app@{DIGEST}",
        "subcomponents": [{"identifiers": {"cpe23": "cpe:2.3:a:haxx:curl"}}],
    }
    assert apply_suppressions(_scan(), _vex(_st("CVE-2023-38545", [cpe_only])), TODAY).suppressed == []


def test_latest_statement_wins() -> None:
    curl = [{"@id": "pkg:deb/debian/curl"}]
    not_affected_then_affected = _vex(
        _st("CVE-2023-38545", curl, timestamp="2024-01-01T00:00:00Z"),
        _st("CVE-2023-38545", curl, "affected", timestamp="2024-02-01T00:00:00Z"),
    )
    assert apply_suppressions(_scan(), not_affected_then_affected, TODAY).suppressed == []
    # order in the file does not matter, the timestamp does
    affected_later_in_file = _vex(
        _st("CVE-2023-38545", curl, "affected", timestamp="2024-01-01T00:00:00Z"),
        _st("CVE-2023-38545", curl, timestamp="2024-02-01T00:00:00+01:00"),
    )
    scan = apply_suppressions(_scan(), affected_later_in_file, TODAY)
    assert [(s.vulnerability.package, s.rule) for s in scan.suppressed] == [
        ("curl", "vex.json statements[1]")
    ]
    # same timestamp (inherited from the document): the later statement wins
    tie = _vex(_st("CVE-2023-38545", curl), _st("CVE-2023-38545", curl, "under_investigation"))
    assert apply_suppressions(_scan(), tie, TODAY).suppressed == []
    # a newer image-wide statement overrides an older package one for the same finding
    image = [{"@id": f"pkg:oci/app@{DIGEST}"}]
    mixed = _vex(
        _st("CVE-2023-38545", curl, "fixed", timestamp="2024-01-01T00:00:00Z"),
        _st("CVE-2023-38545", image, "affected", timestamp="2024-03-01T00:00:00Z"),
    )
    assert apply_suppressions(_scan(), mixed, TODAY).suppressed == []


def test_latest_wins_across_documents() -> None:
    curl = [{"@id": "pkg:deb/debian/curl"}]
    first = _vex(_st("CVE-2023-38545", curl, "fixed"), timestamp="2024-03-01T00:00:00Z")
    second = _vex(_st("CVE-2023-38545", curl, "affected"), timestamp="2024-02-01T00:00:00Z")
    rules = SuppressionRules(vex=first.vex + second.vex)
    assert [s.vulnerability.package for s in apply_suppressions(_scan(), rules, TODAY).suppressed] == ["curl"]


def test_ignore_rules_win_over_vex() -> None:
    rules = SuppressionRules(
        ignore=_ignore("CVE-2023-38545 pkg:deb/debian/curl\n").ignore,
        vex=_vex(_st("CVE-2023-38545", [{"@id": "pkg:deb/debian/curl"}], "affected")).vex,
    )
    assert _suppressed(apply_suppressions(_scan(), rules, TODAY)) == [
        ("CVE-2023-38545", "curl", "ignore-file", "ignored", "ig:1", None)
    ]


def test_no_rules_is_the_same_scan_and_earlier_suppressions_are_kept() -> None:
    scan = _scan()
    assert apply_suppressions(scan, SuppressionRules(), TODAY) is scan
    earlier = Suppressed(vulnerability=scan.vulnerabilities[0], source="vex", rule="r", status="fixed")
    scan = scan.model_copy(update={"vulnerabilities": scan.vulnerabilities[1:], "suppressed": [earlier]})
    after = apply_suppressions(scan, _ignore("CVE-2021-44906\n"), TODAY)
    assert [(s.vulnerability.package, s.rule) for s in after.suppressed] == [
        ("curl", "r"),
        ("minimist", "ig:1"),
    ]
    assert after.summary.suppressed == 2
    assert _kept(after) == [("CVE-2023-38545", "libcurl4"), ("CVE-2023-32681", "requests")]
