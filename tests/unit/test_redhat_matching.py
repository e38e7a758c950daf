"""RHEL images against OSV's Red Hat records: OSV names one ecosystem per product and repository
(`Red Hat:enterprise_linux:9::appstream`, `...:9::baseos`), the image only says `rhel 9.4`. The
index keys every `enterprise_linux` product of a major release as (`Red Hat`, `9`), so a RHEL 9
image matches them all, and no RHEL 8 record nor other product streams (EUS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.analyzers.ecosystems import osv_ecosystem
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.models import OSInfo
from chalicelib.scanner import ScanOptions, scan_image
from chalicelib.vulndb.ecosystems import split_ecosystem
from chalicelib.vulndb.index import VulnIndex, build_index

TESTS = Path(__file__).parent.parent
SQLITE = (TESTS / "fixtures" / "rpm" / "rpmdb.sqlite").read_bytes()
RHEL94 = b'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'


def _record(vid: str, ecosystem: str, name: str, fixed: str) -> dict[str, object]:
    return {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": "2024-08-01T00:00:00Z",
        "summary": f"test record for {ecosystem}",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


RECORDS = [
    _record("RHSA-2024:0001", "Red Hat:enterprise_linux:9::appstream", "python-requests", "0:2.25.1-9.el9"),
    _record("RHSA-2024:0002", "Red Hat:enterprise_linux:9::baseos", "openssl", "1:3.0.7-28.el9_4"),
    _record("RHSA-2024:0003", "Red Hat:enterprise_linux:8::baseos", "bash", "0:9.9-1.el8"),
    _record("RHSA-2024:0004", "Red Hat:rhel_eus:9.4::baseos", "bash", "0:9.9-1.el9_4"),
    # fixed before the installed 5.1.8-6.el9: matches the release but does not affect the image
    _record("RHSA-2024:0005", "Red Hat:enterprise_linux:9::baseos", "bash", "0:5.1.8-5.el9"),
]


@pytest.mark.parametrize(
    ("ecosystem", "key"),
    [
        ("Red Hat:enterprise_linux:9::appstream", ("Red Hat", "9")),
        ("Red Hat:enterprise_linux:9::baseos", ("Red Hat", "9")),
        ("Red Hat:enterprise_linux:10::crb", ("Red Hat", "10")),
        ("Red Hat:enterprise_linux:8", ("Red Hat", "8")),
        ("Red Hat:9", ("Red Hat", "9")),
        ("Red Hat", ("Red Hat", "")),
        ("Red Hat:rhel_eus:9.4::baseos", ("Red Hat", "rhel_eus:9.4::baseos")),
        ("Red Hat:openstack:18.0::el9", ("Red Hat", "openstack:18.0::el9")),
        ("Rocky Linux:9", ("Rocky Linux", "9")),
        ("Ubuntu:22.04:LTS", ("Ubuntu", "22.04:LTS")),
    ],
)
def test_split_ecosystem_folds_rhel_products_into_the_major_release(
    ecosystem: str, key: tuple[str, str]
) -> None:
    assert split_ecosystem(ecosystem) == key


def test_rhel_os_maps_to_major_release() -> None:
    assert osv_ecosystem("rhel", "9.4") == "Red Hat"
    assert osv_ecosystem("rhel", "8") == "Red Hat"
    assert osv_ecosystem("rhel", None) == "Red Hat"


def test_rhel9_image_matches_appstream_and_baseos_records_not_rhel8(tmp_path: Path) -> None:
    feed = tmp_path / "osv"
    feed.mkdir()
    for record in RECORDS:
        (feed / f"{record['id']}.json").write_text(json.dumps(record))
    build_index([feed], tmp_path / "db.sqlite")
    index = VulnIndex(tmp_path / "db.sqlite")
    write_oci_layout(
        tmp_path / "img",
        [build_layer({"etc/os-release": RHEL94, "var/lib/rpm/rpmdb.sqlite": SQLITE})],
    )
    source = OCILayoutSource(tmp_path / "img")
    (image,) = source.resolve()
    try:
        scan = scan_image(source, image, index, ScanOptions())
    finally:
        index.close()
    assert scan.image.os == OSInfo(family="rhel", version="9.4")
    assert sorted({p.ecosystem for p in scan.packages if p.purl.startswith("pkg:rpm")}) == ["Red Hat"]
    found = [
        (v.id, v.package, v.ecosystem, v.installed_version, v.fixed_version) for v in scan.vulnerabilities
    ]
    assert sorted(found) == [
        ("RHSA-2024:0001", "python3-requests", "Red Hat", "2.25.1-8.el9", "0:2.25.1-9.el9"),
        ("RHSA-2024:0002", "openssl-libs", "Red Hat", "1:3.0.7-27.el9", "1:3.0.7-28.el9_4"),
    ]
