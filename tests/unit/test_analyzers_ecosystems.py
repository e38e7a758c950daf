"""OS -> OSV ecosystem names, and the purl builders' exact output."""

from __future__ import annotations

import pytest

from chalicelib.analyzers.ecosystems import os_family, os_package_ecosystem, osv_ecosystem
from chalicelib.analyzers.purls import (
    apk_purl,
    deb_purl,
    npm_purl,
    pypi_purl,
    upstream_qualifier,
)
from chalicelib.models import OSInfo


@pytest.mark.parametrize(
    ("family", "version", "ecosystem"),
    [
        ("debian", "12", "Debian:12"),
        ("debian", "12.5", "Debian:12"),
        ("debian", None, "Debian"),
        ("ubuntu", "22.04", "Ubuntu:22.04:LTS"),
        ("ubuntu", "24.04", "Ubuntu:24.04:LTS"),
        ("ubuntu", "20.04", "Ubuntu:20.04:LTS"),
        ("ubuntu", "23.10", "Ubuntu:23.10"),
        ("ubuntu", "21.04", "Ubuntu:21.04"),
        ("ubuntu", None, "Ubuntu"),
        ("alpine", "3.19.1", "Alpine:v3.19"),
        ("alpine", "3.20.0_alpha20240329", "Alpine:v3.20"),
        ("alpine", "3.9", "Alpine:v3.9"),
        ("alpine", "edge", "Alpine"),
        ("rhel", "9.3", "Red Hat"),
        ("rocky", "9.3", "Rocky Linux:9"),
        ("almalinux", "9.3", "AlmaLinux:9"),
        ("amzn", "2023", "Amazon Linux:2023"),
        ("amzn", "2", "Amazon Linux:2"),
        ("wolfi", "20230201", "Wolfi"),
        ("chainguard", None, "Chainguard"),
        ("opensuse-leap", "15.5", "openSUSE:Leap 15.5"),
        ("opensuse-tumbleweed", "20240101", "openSUSE:Tumbleweed"),
        ("sles", "15.5", "SUSE:Linux Enterprise Server 15 SP5"),
        ("sles", "15", "SUSE:Linux Enterprise Server 15"),
        ("Debian", "11", "Debian:11"),
        ("gentoo", "2.14", None),
        (None, "12", None),
    ],
)
def test_osv_ecosystem(family: str | None, version: str | None, ecosystem: str | None) -> None:
    assert osv_ecosystem(family, version) == ecosystem


def test_os_package_ecosystem_fallbacks() -> None:
    assert os_package_ecosystem(OSInfo(family="debian", version="12"), "debian") == "Debian:12"
    assert os_package_ecosystem(None, "debian") == "Debian"
    assert os_package_ecosystem(OSInfo(), "alpine") == "Alpine"
    # a version without a family belongs to nothing: ignored
    assert os_package_ecosystem(OSInfo(version="3.19.1"), "alpine") == "Alpine"
    assert os_package_ecosystem(OSInfo(family="linuxmint", version="21.3"), "debian") == "linuxmint:21.3"
    assert os_package_ecosystem(OSInfo(family="linuxmint"), "debian") == "linuxmint"


def test_os_family() -> None:
    assert os_family(OSInfo(family="Ubuntu", version="22.04"), "debian") == "ubuntu"
    assert os_family(None, "debian") == "debian"
    assert os_family(OSInfo(family=None), "alpine") == "alpine"


@pytest.mark.parametrize(
    ("args", "upstream"),
    [
        (("libc6", "2.36-9", "glibc", "2.36-9"), "glibc"),
        (("bash", "5.2.15-2+b8", "bash", "5.2.15-2"), "bash@5.2.15-2"),
        (("bsdutils", "1:2.38.1-5", "util-linux", "2.38.1-5"), "util-linux@2.38.1-5"),
        (("openssl", "3.0.11-1", "openssl", "3.0.11-1"), None),
        (("openssl", "3.0.11-1", None, None), None),
    ],
)
def test_upstream_qualifier(args: tuple[str, str, str | None, str | None], upstream: str | None) -> None:
    assert upstream_qualifier(*args) == upstream


def test_deb_purl() -> None:
    assert (
        deb_purl(
            "bsdutils",
            "1:2.38.1-5+deb12u3",
            namespace="debian",
            arch="amd64",
            distro="debian-12",
            upstream="util-linux@2.38.1-5+deb12u3",
        )
        == "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12"
        "&upstream=util-linux%402.38.1-5%2Bdeb12u3"
    )
    assert deb_purl("tzdata", "2025b-0", namespace="ubuntu") == "pkg:deb/ubuntu/tzdata@2025b-0"


def test_apk_purl() -> None:
    assert (
        apk_purl(
            "libssl3", "3.1.4-r5", namespace="alpine", arch="x86_64", distro="3.19.1", upstream="openssl"
        )
        == "pkg:apk/alpine/libssl3@3.1.4-r5?arch=x86_64&distro=3.19.1&upstream=openssl"
    )


@pytest.mark.parametrize(
    ("name", "version", "purl"),
    [
        ("PyYAML", "6.0", "pkg:pypi/pyyaml@6.0"),
        ("lazr.uri", "1.0.6", "pkg:pypi/lazr-uri@1.0.6"),
        ("Foo__Bar", "1.0+local", "pkg:pypi/foo-bar@1.0%2Blocal"),
    ],
)
def test_pypi_purl(name: str, version: str, purl: str) -> None:
    assert pypi_purl(name, version) == purl


@pytest.mark.parametrize(
    ("name", "version", "purl"),
    [
        ("@sigstore/bundle", "4.0.0", "pkg:npm/%40sigstore/bundle@4.0.0"),
        ("abbrev", "4.0.0", "pkg:npm/abbrev@4.0.0"),
        ("@types/node", "20.11.5", "pkg:npm/%40types/node@20.11.5"),
    ],
)
def test_npm_purl(name: str, version: str, purl: str) -> None:
    assert npm_purl(name, version) == purl


@pytest.mark.parametrize("name", ["@scope", "@/x", "@scope/", "a/b", "@s/a/b", "/"])
def test_npm_purl_rejects_names_it_cannot_carry(name: str) -> None:
    with pytest.raises(ValueError, match="npm"):
        npm_purl(name, "1.0.0")


@pytest.mark.parametrize("name", ["/", "-a", "a b", "a_"])
def test_pypi_purl_rejects_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        pypi_purl(name, "1.0")


def test_os_purl_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="deb purl"):
        deb_purl("/", "1", namespace="debian")
