"""Ubuntu matching: os-release -> OSV's Ubuntu ecosystem names, source-package matching within the
exact release (never `Ubuntu:Pro:22.04:LTS` or another release), and Ubuntu's own priority (OSV
`severity[]` entry of type `Ubuntu`) as the severity. Records are written in the shape Canonical
publishes (`UBUNTU-CVE-*` with `upstream`, `ecosystem_specific.binaries`/`availability`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.analyzers.ecosystems import osv_ecosystem
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.models import ImageScan, Severity
from chalicelib.scanner import ScanOptions, scan_image
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.osv import OSVAffected, OSVPackage, OSVRecord, OSVSeverity
from chalicelib.vulndb.severity import choose

TESTS = Path(__file__).parent.parent
UBUNTU_OSV = TESTS / "fixtures" / "osv-ubuntu"

#: a jammy dpkg status: two binaries of glibc and coreutils (no Source: field, source = itself)
JAMMY_STATUS = b"""Package: coreutils
Essential: yes
Status: install ok installed
Priority: required
Section: utils
Installed-Size: 7112
Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>
Architecture: amd64
Multi-Arch: foreign
Version: 8.32-4.1ubuntu1
Description: GNU core utilities

Package: libc-bin
Essential: yes
Status: install ok installed
Priority: required
Section: libs
Installed-Size: 2878
Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>
Architecture: amd64
Multi-Arch: foreign
Source: glibc
Version: 2.35-0ubuntu3.1
Description: GNU C Library: Binaries

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 13592
Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.35-0ubuntu3.1
Description: GNU C Library: Shared libraries
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VulnIndex:
    out = tmp_path_factory.mktemp("db") / "db.sqlite"
    report = build_index([UBUNTU_OSV, TESTS / "fixtures" / "osv"], out)
    assert report.rejected == []
    return VulnIndex(out)


def os_release(version: str, codename: str) -> bytes:
    return (
        f'PRETTY_NAME="Ubuntu {version}"\nNAME="Ubuntu"\nVERSION_ID="{version}"\n'
        f"VERSION_CODENAME={codename}\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME={codename}\n"
    ).encode()


def scan(tmp_path: Path, index: VulnIndex, version: str, codename: str, status: bytes) -> ImageScan:
    layer = build_layer({"etc/os-release": os_release(version, codename), "var/lib/dpkg/status": status})
    write_oci_layout(tmp_path / codename, [layer])
    source = OCILayoutSource(tmp_path / codename)
    (image,) = source.resolve()
    return scan_image(source, image, index, ScanOptions())


def rows(
    result: ImageScan,
) -> list[tuple[str, list[str], str, str, str | None, Severity, str | None, float | None]]:
    return [
        (
            v.id,
            v.aliases,
            v.package,
            v.ecosystem,
            v.fixed_version,
            v.severity,
            v.severity_source,
            v.cvss_score,
        )
        for v in result.vulnerabilities
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("14.04", "Ubuntu:14.04:LTS"),
        ("16.04", "Ubuntu:16.04:LTS"),
        ("18.04", "Ubuntu:18.04:LTS"),
        ("22.04", "Ubuntu:22.04:LTS"),
        ("24.10", "Ubuntu:24.10"),
        ("25.04", "Ubuntu:25.04"),
    ],
)
def test_ubuntu_release_names_are_osvs(version: str, expected: str) -> None:
    assert osv_ecosystem("ubuntu", version) == expected


def test_jammy_matches_its_release_by_source_package_with_ubuntu_priority(
    tmp_path: Path, index: VulnIndex
) -> None:
    """glibc's two binaries match UBUNTU-CVE-2023-4911 through `Source: glibc`; coreutils matches
    the unfixed UBUNTU-CVE-2016-2781 with Ubuntu's `low` beating its CVSS 6.5 (MEDIUM).
    UBUNTU-CVE-2023-4806 lists glibc for `Ubuntu:20.04:LTS` and `Ubuntu:Pro:22.04:LTS` with ranges
    that contain the installed version: neither is this image's release, so it does not match."""
    result = scan(tmp_path, index, "22.04", "jammy", JAMMY_STATUS)
    assert [(p.name, p.ecosystem, p.source_name) for p in result.packages] == [
        ("coreutils", "Ubuntu:22.04:LTS", "coreutils"),
        ("libc-bin", "Ubuntu:22.04:LTS", "glibc"),
        ("libc6", "Ubuntu:22.04:LTS", "glibc"),
    ]
    assert rows(result) == [
        ("CVE-2023-4911", ["UBUNTU-CVE-2023-4911"], "libc-bin", "Ubuntu:22.04:LTS", "2.35-0ubuntu3.4",
         Severity.HIGH, "distro", 7.8),
        ("CVE-2023-4911", ["UBUNTU-CVE-2023-4911"], "libc6", "Ubuntu:22.04:LTS", "2.35-0ubuntu3.4",
         Severity.HIGH, "distro", 7.8),
        ("CVE-2016-2781", ["UBUNTU-CVE-2016-2781"], "coreutils", "Ubuntu:22.04:LTS", None,
         Severity.LOW, "distro", 6.5),
    ]  # fmt: skip
    # the Pro and focal entries are in the index, under their own release keys
    found = index.lookup_many([("Ubuntu", "Pro:22.04:LTS", "glibc"), ("Ubuntu", "20.04:LTS", "glibc")])
    assert sorted((key[1], r.vuln_id) for key, hits in found.items() for r in hits) == [
        ("20.04:LTS", "UBUNTU-CVE-2023-4806"),
        ("Pro:22.04:LTS", "UBUNTU-CVE-2023-4806"),
    ]


def test_fixed_version_closes_the_jammy_range(tmp_path: Path, index: VulnIndex) -> None:
    fixed = JAMMY_STATUS.replace(b"Version: 2.35-0ubuntu3.1", b"Version: 2.35-0ubuntu3.4")
    result = scan(tmp_path, index, "22.04", "jammy", fixed)
    assert [(v.id, v.package) for v in result.vulnerabilities] == [("CVE-2016-2781", "coreutils")]


def test_the_same_packages_on_focal_match_focals_records_only(tmp_path: Path, index: VulnIndex) -> None:
    """Claiming 20.04 switches every record: 4911 (no focal entry) goes, 4806's focal entry comes."""
    result = scan(tmp_path, index, "20.04", "focal", JAMMY_STATUS)
    assert rows(result) == [
        ("CVE-2023-4806", ["UBUNTU-CVE-2023-4806"], "libc-bin", "Ubuntu:20.04:LTS", None,
         Severity.MEDIUM, "distro", 5.9),
        ("CVE-2023-4806", ["UBUNTU-CVE-2023-4806"], "libc6", "Ubuntu:20.04:LTS", None,
         Severity.MEDIUM, "distro", 5.9),
        ("CVE-2016-2781", ["UBUNTU-CVE-2016-2781"], "coreutils", "Ubuntu:20.04:LTS", None,
         Severity.LOW, "distro", 6.5),
    ]  # fmt: skip


def test_interim_release_without_lts_suffix(tmp_path: Path, index: VulnIndex) -> None:
    status = b"Package: coreutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9.4-3ubuntu6\n"
    result = scan(tmp_path, index, "24.10", "oracular", status)
    assert [(v.id, v.ecosystem, v.severity) for v in result.vulnerabilities] == [
        ("CVE-2016-2781", "Ubuntu:24.10", Severity.LOW)
    ]


def _record(severity: list[OSVSeverity], affected_severity: list[OSVSeverity] | None = None) -> OSVRecord:
    affected = OSVAffected(
        package=OSVPackage(ecosystem="Ubuntu:22.04:LTS", name="glibc"), severity=affected_severity or []
    )
    return OSVRecord(id="UBUNTU-CVE-2099-0001", severity=severity, affected=[affected])


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ([OSVSeverity(type="Ubuntu", score="critical")], (Severity.CRITICAL, "distro", None)),
        ([OSVSeverity(type="Ubuntu", score="negligible")], (Severity.LOW, "distro", None)),
        (
            [OSVSeverity(type="CVSS_V3", score="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
             OSVSeverity(type="Ubuntu", score="medium")],
            (Severity.MEDIUM, "distro", 9.8),
        ),
        # a word Lifeguard does not know is no rating: the CVSS score decides
        (
            [OSVSeverity(type="Ubuntu", score="untriaged"),
             OSVSeverity(type="CVSS_V3", score="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")],
            (Severity.CRITICAL, "cvss", 9.8),
        ),
        # `Ubuntu` is the only type read as a word; other types are not ratings
        ([OSVSeverity(type="CVSS_V2", score="high")], (Severity.UNKNOWN, "none", None)),
    ],
)  # fmt: skip
def test_ubuntu_priority_is_the_distro_rating(
    severity: list[OSVSeverity], expected: tuple[Severity, str, float | None]
) -> None:
    record = _record(severity)
    choice = choose(record, record.affected[0])
    assert (choice.severity, choice.source, choice.cvss_score) == expected


def test_priority_on_the_affected_entry_wins_over_the_records() -> None:
    record = _record([OSVSeverity(type="Ubuntu", score="low")], [OSVSeverity(type="Ubuntu", score="high")])
    assert choose(record, record.affected[0]).severity is Severity.HIGH
