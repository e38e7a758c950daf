"""Which language packages an OS package owns, so that nothing is reported twice.

A distro ships language packages of its own (Debian's `python3-requests`, Alpine's `py3-requests`,
the npm that Alpine's `npm` package bundles). Their manifests are on disk, so the Python and npm
analyzers report them too; the distro's advisories already cover them through the OS package
(with the distro's backported fixes), and matching them again against PyPI/npm advisories would
report the same flaw twice, or a flaw the distro has patched. As Trivy does, a language package
whose manifest an OS package's file list names is owned by that OS package: Lifeguard keeps it in
the SBOM with `Package.owner` set and does not match it on its own.

File lists are big (an image can own 100k files) and almost all of it is irrelevant here, so the
OS analyzers keep only paths a language analyzer could report as a package's `path`
(`keeps_path`), plus the `.dist-info` / `.egg-info` directories themselves (a list may name the
directory only). When a new language analyzer reports a new kind of manifest, add its suffix to
`_KEPT_SUFFIXES`.

Ownership is honoured only when the owner is an installed package the same analyzer reported: a
`.list` file left behind for a package that is no longer installed, or an image whose dpkg status
was deleted, must not hide a language package from matching (a miss is worse than a duplicate)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chalicelib.analyzers.base import FileResult
from chalicelib.analyzers.executables import wants_path as may_be_program
from chalicelib.models import Package

# Python: wheel/pip METADATA, setuptools PKG-INFO, single-file distutils egg-info and the two
# directories; npm: package.json; Ruby specifications; Java archives. Programs: `keeps_path`.
_KEPT_SUFFIXES = (
    ".dist-info/METADATA",
    ".dist-info",
    ".egg-info/PKG-INFO",
    ".egg-info",
    "/package.json",
    ".gemspec",
    ".jar",
    ".war",
    ".ear",
)
_METADATA_DIRS = (".dist-info", ".egg-info")


def keeps_path(path: str) -> bool:
    """True for a path that could be a language package's manifest or its metadata directory, or
    a program in a bin/ directory (a distro's Go or Rust binary: its modules are the distro
    package's, matched through it). String tests only: called for every line of every file list."""
    return path.endswith(_KEPT_SUFFIXES) or (("bin/" in path or "libexec/" in path) and may_be_program(path))


def list_path(line: str) -> str | None:
    """An absolute path from a file list (`/usr/lib/x`, `/.`) -> the image path (`usr/lib/x`), or
    None for the root and blank lines."""
    path = line.strip().lstrip("/")
    if path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    return path if path and path != "." else None


def owned_files(results: Iterable[FileResult], installed: Iterable[Package]) -> dict[str, str]:
    """path -> owner from one analyzer's surviving results, keeping only owners among the packages
    that analyzer reported as installed. The first owner seen for a path wins (results come in
    (layer, path) order), so the outcome is deterministic."""
    names = {package.name for package in installed}
    owned: dict[str, str] = {}
    for result in results:
        for path, owner in result.owned_files.items():
            if owner in names:
                owned.setdefault(path, owner)
    return owned


def owner_of(path: str, owned: Mapping[str, str]) -> str | None:
    """The owner of a package found at `path`: the path itself, else (Python) its `.dist-info` /
    `.egg-info` directory when only the directory is listed."""
    owner = owned.get(path)
    if owner is not None:
        return owner
    parent = path.rpartition("/")[0]
    return owned.get(parent) if parent.endswith(_METADATA_DIRS) else None


def mark_owned(packages: list[Package], owned: Mapping[str, str]) -> list[Package]:
    """`packages` with `owner` set on each package whose manifest an OS package owns."""
    if not owned:
        return packages
    marked: list[Package] = []
    for package in packages:
        owner = owner_of(package.path, owned)
        if owner is not None and package.owner is None:
            marked.append(package.model_copy(update={"owner": owner}))
        else:
            marked.append(package)
    return marked
