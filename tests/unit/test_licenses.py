"""Declared licenses: the shared normalisation and tables (`analyzers/licenses.py`), Debian's DEP-5
copyright files (real ones from Debian 12) joined to dpkg packages after the walk, whiteouts
included."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.analyzers.base import FileResult
from chalicelib.analyzers.dpkg import DpkgAnalyzer, copyright_licenses, copyright_owner
from chalicelib.analyzers.licenses import (
    apply_package_licenses,
    classifier_license,
    normalize_license,
    normalize_licenses,
    spdx_expression,
    spdx_license_id,
    url_license,
)
from chalicelib.image.oci_writer import LayerEntry, whiteout
from chalicelib.models import Package
from chalicelib.vulndb.index import VulnIndex
from tests.layered_scan import scan_layers

TESTS = Path(__file__).parent.parent
DPKG = TESTS / "fixtures" / "analyzers" / "dpkg"
COPYRIGHT = DPKG / "copyright"
DEBIAN12 = (TESTS / "fixtures" / "analyzers" / "os-release" / "debian12").read_bytes()

# -- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  MIT ", "MIT"),
        ("GPL-2.0-only AND LGPL-2.1-or-later", "GPL-2.0-only AND LGPL-2.1-or-later"),
        ("UNKNOWN", None),
        ("unknown", None),
        ("NOASSERTION", None),
        ("  ", None),
        (None, None),
        (7, None),
        ("Apache 2.0", "Apache-2.0"),
        ("GPLv2+", "GPL-2.0-or-later"),
        ("GPL-3+", "GPL-3.0-or-later"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("LGPL v3", "LGPL v3"),  # not in the table: kept as written
        ("BSD", "BSD"),
        ("GPLv2+ and LGPLv2+", "GPLv2+ and LGPLv2+"),  # whole values only
    ],
)
def test_normalize_license(value: object, expected: str | None) -> None:
    assert normalize_license(value) == expected


def test_normalize_licenses_keeps_order_and_drops_repeats() -> None:
    assert normalize_licenses(["MIT", " ", "GPLv2", "MIT", None, "GPL-2.0-only", "ISC"]) == [
        "MIT",
        "GPL-2.0-only",
        "ISC",
    ]


@pytest.mark.parametrize(
    ("classifier", "expected"),
    [
        ("License :: OSI Approved :: MIT License", "MIT"),
        ("License :: OSI Approved :: BSD License", "BSD-3-Clause"),
        ("License :: OSI Approved :: Apache Software License", "Apache-2.0"),
        ("License :: OSI Approved :: GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
        ("License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)", "GPL-3.0-or-later"),
        ("License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"),
        ("License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
        ("License :: OSI Approved :: ISC License (ISCL)", "ISC"),
        ("License :: OSI Approved :: Python Software Foundation License", "PSF-2.0"),
        ("License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication", "CC0-1.0"),
        # unknown ones keep their text; groups and other classifiers give nothing
        ("License :: OSI Approved :: GNU General Public License (GPL)", "GNU General Public License (GPL)"),
        ("License :: Public Domain", "Public Domain"),
        ("License :: OSI Approved", None),
        ("License :: DFSG approved", None),
        ("Programming Language :: Python :: 3", None),
        ("License", None),
    ],
)  # fmt: skip
def test_classifier_license(classifier: str, expected: str | None) -> None:
    assert classifier_license(classifier) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://www.apache.org/licenses/LICENSE-2.0.txt", "Apache-2.0"),
        ("https://www.apache.org/licenses/LICENSE-2.0", "Apache-2.0"),
        ("https://www.apache.org/licenses/LICENSE-2.0.html", "Apache-2.0"),
        ("https://opensource.org/licenses/MIT", "MIT"),
        ("http://www.opensource.org/licenses/mit-license.php", "MIT"),
        ("https://spdx.org/licenses/BSD-2-Clause.html", "BSD-2-Clause"),
        ("https://www.gnu.org/licenses/lgpl-2.1.html", None),  # "only" or "or later"? unknown
        ("https://example.com/license", None),
    ],
)
def test_url_license(url: str, expected: str | None) -> None:
    assert url_license(url) == expected


@pytest.mark.parametrize(
    ("text", "license_id", "expression"),
    [
        ("MIT", "MIT", "MIT"),
        ("mit", "MIT", "MIT"),
        ("mit or apache-2.0", None, "MIT OR Apache-2.0"),
        ("( MIT OR ISC )  and  zlib", None, "(MIT OR ISC) AND Zlib"),
        ("GPL-2.0-only WITH Classpath-exception-2.0", None, "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("GPLv2+", None, None),
        ("Apache 2.0", None, None),
        ("MIT AND", None, None),
        ("", None, None),
    ],
)
def test_spdx_helpers(text: str, license_id: str | None, expression: str | None) -> None:
    assert spdx_license_id(text) == license_id
    assert spdx_expression(text) == expression


# -- Debian copyright files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "licenses"),
    [
        ("zlib1g", ["Zlib"]),
        ("tzdata", ["public-domain"]),
        ("ca-certificates", ["GPL-2.0-or-later", "MPL-2.0"]),
        ("libssl3", ["Apache-2.0", "Artistic or GPL-1+"]),
        (
            "bash",
            [
                "GPL-3.0-or-later",
                "GPL-3+ with Bison exception",
                "GPL-2.0-or-later",
                "GFDL-NIV-1.3",
                "Latex2e",
                "BSD-4-clause-UC and MIT-like",
                "permissive",
            ],
        ),
        ("base-files", []),  # free-form: not DEP-5
    ],
)
def test_real_debian_copyright_files(package: str, licenses: list[str]) -> None:
    path = f"usr/share/doc/{package}/copyright"
    analyzer = DpkgAnalyzer()
    assert analyzer.wants(path)
    result = analyzer.analyze(path, (COPYRIGHT / package).read_bytes())
    assert result.package_licenses == ({package: licenses} if licenses else {})
    assert (result.packages, result.owned_files) == ([], {})


def test_only_files_paragraphs_count() -> None:
    """A stand-alone license paragraph, a header `License:` and a `License:` inside continuation
    lines are not a `Files:` paragraph's license; CRLF and whitespace-only separators are fine."""
    text = (
        b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\r\n"
        b"Upstream-Name: x\r\nLicense: header-only\r\n \r\n"
        b"Files: *\r\nCopyright: 2020 A\r\n License: not-a-field\r\nLicense: GPL-2+\r\n"
        b" text of the license\r\n\t\r\n"
        b"Files: debian/*\nCopyright: 2021 B\n\nLicense: Expat\n\n"
        b"License: GPL-2+\n On Debian systems...\n\n"
        b"Files: lib/*\nLicense: MIT\n"
    )
    assert copyright_licenses(text) == ["GPL-2.0-or-later", "MIT"]
    assert copyright_licenses(b"This is Debian's prepackaged...\n\nFormat: x/copyright-format/1.0\n") == []


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("usr/share/doc/libc6/copyright", "libc6"),
        ("usr/share/doc/libc6/changelog.Debian.gz", None),
        ("usr/share/doc/copyright", None),
        ("usr/share/doc//copyright", None),
        ("usr/share/doc/a/b/copyright", None),
        ("usr/local/share/doc/a/copyright", None),
    ],
)
def test_copyright_owner_and_wants(path: str, owner: str | None) -> None:
    assert copyright_owner(path) == owner
    assert DpkgAnalyzer().wants(path) is (owner is not None)


def test_apply_package_licenses_fills_only_empty_ones_first_result_wins() -> None:
    def pkg(name: str, licenses: list[str]) -> Package:
        return Package(name=name, version="1", ecosystem="Debian:12", purl="", path="s", licenses=licenses)

    results = [
        FileResult(package_licenses={"a": ["MIT"]}),
        FileResult(package_licenses={"a": ["ISC"], "b": ["Zlib"]}),
    ]
    done = apply_package_licenses([pkg("a", []), pkg("b", ["Apache-2.0"]), pkg("c", [])], results)
    assert [(p.name, p.licenses) for p in done] == [("a", ["MIT"]), ("b", ["Apache-2.0"]), ("c", [])]


def test_image_joins_copyright_files_to_dpkg_packages_through_whiteouts(
    tmp_path: Path, index: VulnIndex
) -> None:
    """Base layer: the Debian 12 status and the packages' real copyright files (zlib1g's is a
    symlink, as for packages sharing a doc directory: never followed). Upper layer: deletes
    bash's copyright file and replaces tzdata's with a free-form one."""
    base: dict[str, bytes | LayerEntry] = {
        "etc/os-release": DEBIAN12,
        "var/lib/dpkg/status": (DPKG / "status").read_bytes(),
        "usr/share/doc/zlib1g": LayerEntry(kind="symlink", target="libssl3"),
    }
    for package in ("bash", "ca-certificates", "libssl3", "tzdata", "base-files"):
        base[f"usr/share/doc/{package}/copyright"] = (COPYRIGHT / package).read_bytes()
    base["usr/share/doc/not-installed/copyright"] = (COPYRIGHT / "zlib1g").read_bytes()
    upper = {
        whiteout("usr/share/doc/bash/copyright"): b"",
        "usr/share/doc/tzdata/copyright": b"Free-form text now.\n",
    }
    scan = scan_layers(tmp_path, index, [base, upper])
    licensed = {p.name: p.licenses for p in scan.packages if p.licenses}
    assert licensed == {
        "ca-certificates": ["GPL-2.0-or-later", "MPL-2.0"],
        "libssl3": ["Apache-2.0", "Artistic or GPL-1+"],
    }
    assert len(scan.packages) == 10
