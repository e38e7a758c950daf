"""OS (os-release `ID` + `VERSION_ID`) -> OSV ecosystem name.

OS packages are matched against OSV records whose `affected[].package.ecosystem` names the distro
release (`Debian:12`, `Alpine:v3.19`, ...), so the spelling here must be OSV's exactly.

Decisions (the project docs should repeat them):
- Debian, Rocky, AlmaLinux: the major release only (`12.5` -> `Debian:12`), as OSV publishes.
- Ubuntu: `Ubuntu:<YY.MM>`, plus `:LTS` for even-year `.04` releases (OSV names those
  `Ubuntu:22.04:LTS`).
- Alpine: `Alpine:v<major>.<minor>` (`3.19.1` -> `Alpine:v3.19`).
- Red Hat: plain `Red Hat` (the contract's name); the matcher reads the major release from the
  purl's `distro=rhel-<VERSION_ID>` qualifier. OSV's Red Hat records carry a product
  suffix (`Red Hat:enterprise_linux:9::appstream`, `...:9::baseos`); the index keys every
  `enterprise_linux` product of a major release as (`Red Hat`, `9`)
  (`chalicelib.vulndb.ecosystems.split_ecosystem`), so a RHEL 9 image matches all of them and
  none of RHEL 8's. Without a version it stays plain `Red Hat`.
- Distros OSV does not cover follow the same `Name:release` pattern (`Amazon Linux:2023`,
  `Amazon Linux:2`, `CentOS:7`, `Oracle Linux:8`, `Fedora:39`), major release only for the
  enterprise ones whose VERSION_ID has minor releases.
- A known distro without a usable version gets its bare name (`Debian`).
- An unknown `ID` gets no OSV name (`osv_ecosystem` -> None); its OS packages then carry
  `<id>[:<version>]` (`os_package_ecosystem`), which matches nothing but says what it is.
"""

from __future__ import annotations

import re

from chalicelib.models import OSInfo

_MAJOR = re.compile(r"^(\d+)")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


def _major(version: str | None) -> str | None:
    match = _MAJOR.match(version or "")
    return match.group(1) if match else None


def _with_release(name: str, release: str | None) -> str:
    return f"{name}:{release}" if release else name


def _ubuntu(version: str | None) -> str:
    match = _MAJOR_MINOR.match(version or "")
    if not match:
        return "Ubuntu"
    year, month = int(match.group(1)), match.group(2)
    release = f"{year:02d}.{month}"
    lts = year % 2 == 0 and month == "04"
    return f"Ubuntu:{release}:LTS" if lts else f"Ubuntu:{release}"


def _alpine(version: str | None) -> str:
    match = _MAJOR_MINOR.match(version or "")
    return f"Alpine:v{int(match.group(1))}.{int(match.group(2))}" if match else "Alpine"


def _sles(version: str | None) -> str:
    """`15.5` -> `SUSE:Linux Enterprise Server 15 SP5` (`15` -> no service pack)."""
    match = re.match(r"^(\d+)(?:\.(\d+))?", version or "")
    if not match:
        return "SUSE:Linux Enterprise Server"
    major, sp = match.group(1), match.group(2)
    return f"SUSE:Linux Enterprise Server {major}" + (f" SP{sp}" if sp and sp != "0" else "")


def osv_ecosystem(family: str | None, version: str | None) -> str | None:
    """The OSV ecosystem for a distro we know, or None for an unknown (or missing) `family`."""
    if not family:
        return None
    family = family.lower()
    if family == "debian":
        return _with_release("Debian", _major(version))
    if family == "ubuntu":
        return _ubuntu(version)
    if family == "alpine":
        return _alpine(version)
    if family == "rhel":
        # the contract's name is plain `Red Hat`; the matcher takes the major release from the
        # package's purl (`distro=rhel-9.4`), see vulndb/matcher.py `match_key`
        return "Red Hat"
    if family == "rocky":
        return _with_release("Rocky Linux", _major(version))
    if family == "almalinux":
        return _with_release("AlmaLinux", _major(version))
    if family == "amzn":
        return _with_release("Amazon Linux", version)
    if family == "centos":
        return _with_release("CentOS", _major(version))
    if family == "ol":
        return _with_release("Oracle Linux", _major(version))
    if family == "fedora":
        return _with_release("Fedora", _major(version))
    if family == "wolfi":
        return "Wolfi"
    if family == "chainguard":
        return "Chainguard"
    if family == "opensuse-leap":
        return f"openSUSE:Leap {version}" if version else "openSUSE:Leap"
    if family == "opensuse-tumbleweed":
        return "openSUSE:Tumbleweed"
    if family == "sles":
        return _sles(version)
    return None


def os_family(os: OSInfo | None, default: str) -> str:
    """The distro family that owns an OS package: the image's os-release ID, else the package
    manager's native distro (a dpkg database with no os-release is Debian's)."""
    if os is not None and os.family:
        return os.family.lower()
    return default


def os_package_ecosystem(os: OSInfo | None, default_family: str) -> str:
    """Ecosystem for an OS package: OSV's name when the distro is known, else `<id>[:<version>]`."""
    family = os_family(os, default_family)
    version = os.version if os is not None and os.family else None
    known = osv_ecosystem(family, version)
    if known is not None:
        return known
    return _with_release(family, version)
