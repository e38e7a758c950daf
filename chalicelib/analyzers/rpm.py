"""Red Hat family and SUSE packages from the rpm database, in any of its three formats.

Which file: `rpmdb.sqlite` (SQLite), `Packages` (Berkeley DB hash) or `Packages.db` (NDB), under
`var/lib/rpm/` or `usr/lib/sysimage/rpm/` (Fedora and SUSE keep the database there and make
`var/lib/rpm` a symlink, which the walker records but never follows). The container formats are
read by `rpmdb.py`, each package's header blob by `rpmheader.py`.

What a package records (Trivy's and Syft's choices):
- `version` is `[epoch:]version-release` (`1:3.0.7-27.el9`), what `rpm -q` and OSV records use.
- `source_name` / `source_version` from SOURCERPM (`openssl-3.0.7-27.el9.src.rpm` -> `openssl`,
  `1:3.0.7-27.el9`: a source rpm carries no epoch of its own, the binary's is used, as Trivy
  does). Distro advisories name source packages, so that is what the matcher looks up. Without a
  usable SOURCERPM the package is its own source.
- `licenses`: the License tag (1014) as one string (`GPLv2+ and LGPLv2+` in older Red Hat
  releases, SPDX expressions in Fedora >= 38 / RHEL 10), lightly normalised
  (`analyzers/licenses.py`).
- `gpg-pubkey` entries are keys `rpm --import` stored, not software: skipped (as Trivy does).
- purl: `pkg:rpm/<os id>/<name>@<version>-<release>?arch=..&distro=<id>-<VERSION_ID>` with
  `epoch=<n>` as a qualifier (the purl spec, Trivy and Syft all put the epoch there, not in the
  version) and `upstream=<source name>` when it differs (as the deb/apk purls here do).

File ownership: the header's BASENAMES/DIRNAMES/DIRINDEXES give every path the package owns;
only paths that could be a language package's manifest are kept (`ownership.keeps_path`), so the
`python3-requests` rpm owns `.../requests-2.25.1-py3.9.egg-info/PKG-INFO` and PyPI advisories do
not report it a second time.

A damaged database (hostile or truncated input) never fails the scan: an unreadable file gives no
packages and a warning, an unreadable header skips that package with a warning."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import ClassVar

from packageurl import PackageURL

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.ecosystems import os_family, os_package_ecosystem
from chalicelib.analyzers.licenses import normalize_licenses
from chalicelib.analyzers.ownership import keeps_path, list_path
from chalicelib.analyzers.purls import upstream_qualifier
from chalicelib.analyzers.rpmdb import RpmDbError, bdb_blobs, ndb_blobs, sqlite_blobs
from chalicelib.analyzers.rpmheader import HeaderError, RpmHeader, parse_header, split_source_rpm
from chalicelib.models import OSInfo, Package

log = logging.getLogger(__name__)

_DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
_READERS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "rpmdb.sqlite": sqlite_blobs,
    "Packages": bdb_blobs,
    "Packages.db": ndb_blobs,
}
DB_PATHS: frozenset[str] = frozenset(d + f for d in _DIRS for f in _READERS)
_SKIPPED_NAMES = frozenset({"gpg-pubkey"})


def header_package(header: RpmHeader, path: str) -> Package:
    """The Package of one header (ecosystem and purl come in `finalize`)."""
    source_name, source_version = header.name, header.evr
    split = split_source_rpm(header.source_rpm) if header.source_rpm else None
    if split is not None:
        source_name = split[0]
        prefix = f"{header.epoch}:" if header.epoch is not None else ""
        source_version = f"{prefix}{split[1]}-{split[2]}"
    return Package(
        name=header.name,
        version=header.evr,
        ecosystem="",
        purl="",
        source_name=source_name,
        source_version=source_version,
        path=path,
        arch=header.arch,
        licenses=normalize_licenses([header.license]),
    )


def read_headers(path: str, content: bytes) -> Iterator[RpmHeader]:
    """Every parseable header of the database at `path`; damage is logged and skipped."""
    reader = _READERS[path.rpartition("/")[2]]
    try:
        for blob in reader(content):
            try:
                yield parse_header(blob)
            except HeaderError as exc:
                if len(blob) > 8:  # BDB record 0 is rpm's 4-byte counter, not a header
                    log.warning("%s: skipping an unreadable rpm header: %s", path, exc)
    except RpmDbError as exc:
        log.warning("%s: unreadable rpm database: %s", path, exc)


def rpm_purl(package: Package, *, namespace: str, distro: str | None) -> str:
    """`pkg:rpm/<namespace>/<name>@<version>-<release>?arch=..&distro=..&epoch=..&upstream=..`."""
    epoch, sep, version = package.version.partition(":")
    if not sep:
        epoch, version = "", package.version
    qualifiers = {
        "arch": package.arch,
        "distro": distro,
        "epoch": epoch,
        "upstream": upstream_qualifier(
            package.name, package.version, package.source_name, package.source_version
        ),
    }
    purl = PackageURL(
        type="rpm",
        namespace=namespace,
        name=package.name,
        version=version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    )
    return str(purl)


class RpmAnalyzer(Analyzer):
    name: ClassVar[str] = "rpm"
    #: a full CentOS 7 `Packages` is ~100 MB; bigger than this is not a real rpm database
    max_file_size: ClassVar[int] = 512 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return path in DB_PATHS

    def analyze(self, path: str, content: bytes) -> FileResult:
        packages: list[Package] = []
        owned: dict[str, str] = {}
        for header in read_headers(path, content):
            if header.name in _SKIPPED_NAMES:
                continue
            packages.append(header_package(header, path))
            for file in header.files:
                if keeps_path(file) and (image_path := list_path(file)) is not None:
                    owned.setdefault(image_path, header.name)
        return FileResult(packages=packages, owned_files=owned)

    def finalize(self, packages: list[Package], os: OSInfo | None) -> list[Package]:
        """Ecosystem (`Rocky Linux:9`) and purl from the OS. An image without os-release is taken
        for Red Hat of unknown release. A package found twice (the same database under both of
        its paths) is reported once."""
        family = os_family(os, "rhel")
        ecosystem = os_package_ecosystem(os, "rhel")
        version = os.version if os is not None and os.family else None
        distro = f"{family}-{version}" if version else None
        done: list[Package] = []
        seen: set[tuple[str, str, str | None]] = set()
        for package in packages:
            key = (package.name, package.version, package.arch)
            if key in seen:
                continue
            seen.add(key)
            try:
                purl = rpm_purl(package, namespace=family, distro=distro)
            except (TypeError, ValueError) as exc:
                log.warning("%s: no purl for %s %s: %s", package.path, package.name, package.version, exc)
                purl = ""
            done.append(package.model_copy(update={"ecosystem": ecosystem, "purl": purl}))
        return done
