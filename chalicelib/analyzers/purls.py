"""Package URLs (purl) for the packages the analyzers find, built with packageurl-python so that
encoding (`+` -> `%2B`, `@scope` -> `%40scope`) follows the spec.

Conventions, chosen to match what Trivy and Syft emit:
- deb: `pkg:deb/<os id>/<name>@<version>?arch=<arch>&distro=<os id>-<VERSION_ID>`; the version
  keeps its epoch (`1:2.38.1-5`), as the purl spec's deb examples do.
- apk: `pkg:apk/<os id>/<name>@<version>?arch=<arch>&distro=<VERSION_ID>` (Trivy's form).
- both: `upstream=<source>` when the source package has another name, `upstream=<source>@<ver>`
  when its version differs (Syft's form); absent when the source is the package itself.
- pypi: the name PEP 503-normalised (`PyYAML` -> `pyyaml`, `zope.interface` -> `zope-interface`).
- npm: the scope is the namespace (`pkg:npm/%40babel/core@7.23.0`).
Qualifiers are sorted by key (packageurl-python's canonical form).
"""

from __future__ import annotations

import logging
from functools import partial

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from chalicelib.models import Package

log = logging.getLogger(__name__)


def upstream_qualifier(
    name: str, version: str, source_name: str | None, source_version: str | None
) -> str | None:
    """Syft's `upstream` qualifier value, or None when the source package is the package itself."""
    source = source_name or name
    if source_version and source_version != version:
        return f"{source}@{source_version}"
    if source != name:
        return source
    return None


def _qualifiers(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value}


def _render(
    purl_type: str, namespace: str | None, name: str, version: str, qualifiers: dict[str, str] | None = None
) -> str:
    """The canonical purl string. packageurl-python raises TypeError as well as ValueError on
    names it cannot represent (e.g. `/`): both become ValueError, the one error callers handle."""
    try:
        return str(
            PackageURL(type=purl_type, namespace=namespace, name=name, version=version, qualifiers=qualifiers)
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot build a {purl_type} purl for {name!r}@{version!r}: {exc}") from exc


def os_purl(
    purl_type: str,
    name: str,
    version: str,
    *,
    namespace: str,
    arch: str | None = None,
    distro: str | None = None,
    upstream: str | None = None,
) -> str:
    """A distribution package's purl (`deb`, `apk`, `rpm`, ...): same qualifiers for every type."""
    return _render(
        purl_type, namespace, name, version, _qualifiers(arch=arch, distro=distro, upstream=upstream)
    )


deb_purl = partial(os_purl, "deb")
apk_purl = partial(os_purl, "apk")


def complete_os_packages(
    packages: list[Package], purl_type: str, *, ecosystem: str, namespace: str, distro: str | None
) -> list[Package]:
    """Give OS packages their ecosystem and purl once the image's OS is known (the `finalize` step
    of every OS package analyzer). A name no purl can carry keeps an empty purl, with a warning."""
    done: list[Package] = []
    for package in packages:
        upstream = upstream_qualifier(
            package.name, package.version, package.source_name, package.source_version
        )
        try:
            purl = os_purl(
                purl_type,
                package.name,
                package.version,
                namespace=namespace,
                arch=package.arch,
                distro=distro,
                upstream=upstream,
            )
        except ValueError as exc:
            log.warning("%s: no purl for %s %s: %s", package.path, package.name, package.version, exc)
            purl = ""
        done.append(package.model_copy(update={"ecosystem": ecosystem, "purl": purl}))
    return done


def pypi_purl(name: str, version: str) -> str:
    """ValueError when `name` is not a valid distribution name (PEP 508)."""
    return _render("pypi", None, canonicalize_name(name, validate=True), version)


def npm_purl(name: str, version: str) -> str:
    """`name` as npm writes it, scoped (`@scope/pkg`) or not; ValueError for other shapes with a
    `/` (they would read as a namespace)."""
    namespace: str | None = None
    if name.startswith("@"):
        namespace, _, name = name.partition("/")
        if namespace == "@" or not name:
            raise ValueError(f"invalid scoped npm name {namespace + '/' + name!r}")
    if "/" in name:
        raise ValueError(f"invalid npm name {name!r}")
    return _render("npm", namespace, name, version)


def gem_purl(name: str, version: str) -> str:
    """`pkg:gem/<name>@<version>` (RubyGems names have no namespace)."""
    return _render("gem", None, name, version)


def composer_purl(name: str, version: str) -> str:
    """`pkg:composer/<vendor>/<name>@<version>`; ValueError unless `name` is `vendor/name`."""
    vendor, slash, package = name.partition("/")
    if not slash or not vendor or not package or "/" in package:
        raise ValueError(f"invalid Composer name {name!r} (want vendor/name)")
    return _render("composer", vendor, package, version)


def nuget_purl(name: str, version: str) -> str:
    """`pkg:nuget/<name>@<version>`, the name as the package declares it (NuGet ids are
    case-insensitive; Trivy and Syft keep the declared case)."""
    return _render("nuget", None, name, version)


def cargo_purl(name: str, version: str) -> str:
    """`pkg:cargo/<name>@<version>`."""
    return _render("cargo", None, name, version)


def golang_purl(module: str, version: str) -> str:
    """`pkg:golang/<module path>@<version>`: the path's last element is the name, the rest the
    namespace (`pkg:golang/github.com/spf13/cobra@v1.8.0`); `stdlib` has no namespace."""
    namespace, _, name = module.rpartition("/")
    if not name:
        raise ValueError(f"invalid Go module path {module!r}")
    return _render("golang", namespace or None, name, version)


def maven_purl(group: str, artifact: str, version: str) -> str:
    """`pkg:maven/<groupId>/<artifactId>@<version>`."""
    if not group or not artifact:
        raise ValueError(f"Maven coordinates need a groupId and an artifactId: {group!r}:{artifact!r}")
    return _render("maven", group, artifact, version)
