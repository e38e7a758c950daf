"""Version comparison per ecosystem (**contract**: `compare(ecosystem, a, b) -> int`).

One module per family, each with a cached `sort_key(version)` whose results compare like the
ecosystem's reference tool:

- Debian, Ubuntu: `dpkg` module, reference `dpkg --compare-versions` (dpkg 1.21);
- Alpine, Wolfi, Chainguard, MinimOS: `apk`, apk-tools 2;
- Red Hat, Rocky Linux, AlmaLinux, Fedora, CentOS, Oracle Linux, Amazon Linux, SUSE, openSUSE,
  Mageia, openEuler: `rpm`, librpm 4.18 `rpmvercmp` on `[epoch:]version[-release]`;
- PyPI: `pep440`, `packaging.version.Version`;
- npm: `semver` (strict), node-semver 7 `compare`;
- Go, crates.io, NuGet: `semver` (lenient), semver 2.0.0 as OSV applies it;
- Maven, RubyGems, Packagist: `maven`, `rubygems`, `packagist`, OSV's semantics.

Ecosystem names are OSV's, case-sensitive; a `:release` suffix (`Debian:12`) is ignored. Each
module's docstring says exactly what it accepts, rejects and where it deliberately differs.

For speed, resolve the ecosystem once with `comparator(ecosystem)` and use its `key(version)`
(parsing is cached per string) or `compare(a, b)`; keys of one comparator compare with `<`, `==`,
`>` and sort with `sorted(..., key=c.key)`. Never compare keys of different families.
"""

from ._registry import (
    SUPPORTED_ECOSYSTEMS,
    Comparator,
    SortKey,
    comparator,
    compare,
    is_supported,
    sort_key,
)
from .errors import InvalidVersionError, UnknownEcosystemError

__all__ = [
    "SUPPORTED_ECOSYSTEMS",
    "Comparator",
    "InvalidVersionError",
    "SortKey",
    "UnknownEcosystemError",
    "comparator",
    "compare",
    "is_supported",
    "sort_key",
]
