"""OSV ecosystem names split into (family, release) for the index key, and package-name
normalisation per family, shared by the index builder and the matcher so both sides agree."""

from __future__ import annotations

import re

_PEP503 = re.compile(r"[-_.]+")
#: OSV's RHEL product names: `enterprise_linux:9::appstream`, `enterprise_linux:9::baseos`, ...
_RHEL_PRODUCT = re.compile(r"^enterprise_linux:(\d+)(?:::.*)?$")


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """`Debian:12` -> (`Debian`, `12`); `Ubuntu:22.04:LTS` -> (`Ubuntu`, `22.04:LTS`);
    `PyPI` -> (`PyPI`, '').

    Red Hat publishes one OSV ecosystem per product and repository
    (`Red Hat:enterprise_linux:9::appstream`, `...:9::baseos`, `...:9::crb`), while an image only
    says "RHEL 9.4": every `enterprise_linux` product of a major release keys as
    (`Red Hat`, `9`), which is what a RHEL image's packages carry (`Red Hat:9`). Other Red Hat
    products (`rhel_eus:9.4::baseos`, `openstack:18.0::el9`, ...) keep their full release, so they
    never match a plain RHEL image: their fixes belong to other update streams."""
    family, _, release = ecosystem.partition(":")
    if family == "Red Hat" and (product := _RHEL_PRODUCT.match(release)):
        return family, product.group(1)
    return family, release


def normalise_name(family: str, name: str) -> str:
    """PyPI names compare after PEP 503 normalisation; every other family compares names exactly."""
    if family == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name
