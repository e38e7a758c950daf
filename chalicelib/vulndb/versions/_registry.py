"""Which comparator serves which OSV ecosystem, and the `Comparator` handle the matcher keeps."""

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from . import apk, dpkg, maven, packagist, pep440, rpm, rubygems, semver
from .errors import InvalidVersionError, UnknownEcosystemError


class SortKey(Protocol):
    """A parsed version. Keys from one `Comparator` are totally ordered; never mix families."""

    def __lt__(self, other: Any, /) -> bool: ...

    def __gt__(self, other: Any, /) -> bool: ...


KeyFunction = Callable[[str], SortKey]

# OSV ecosystem name (the part before the first ":") -> (family, cached parser).
# Distros OSV does not cover use their os-release name (ARCHITECTURE.md).
_ECOSYSTEMS: dict[str, tuple[str, KeyFunction]] = {
    "Debian": (dpkg.FAMILY, dpkg.sort_key),
    "Ubuntu": (dpkg.FAMILY, dpkg.sort_key),
    "Alpine": (apk.FAMILY, apk.sort_key),
    "Wolfi": (apk.FAMILY, apk.sort_key),
    "Chainguard": (apk.FAMILY, apk.sort_key),
    "MinimOS": (apk.FAMILY, apk.sort_key),
    "Red Hat": (rpm.FAMILY, rpm.sort_key),
    "Rocky Linux": (rpm.FAMILY, rpm.sort_key),
    "AlmaLinux": (rpm.FAMILY, rpm.sort_key),
    "Fedora": (rpm.FAMILY, rpm.sort_key),
    "CentOS": (rpm.FAMILY, rpm.sort_key),
    "Oracle Linux": (rpm.FAMILY, rpm.sort_key),
    "Amazon Linux": (rpm.FAMILY, rpm.sort_key),
    "SUSE": (rpm.FAMILY, rpm.sort_key),
    "openSUSE": (rpm.FAMILY, rpm.sort_key),
    "Mageia": (rpm.FAMILY, rpm.sort_key),
    "openEuler": (rpm.FAMILY, rpm.sort_key),
    "PyPI": (pep440.FAMILY, pep440.sort_key),
    "npm": (semver.NPM_FAMILY, semver.npm_sort_key),
    "Go": (semver.LENIENT_FAMILY, semver.lenient_sort_key),
    "crates.io": (semver.LENIENT_FAMILY, semver.lenient_sort_key),
    "NuGet": (semver.NUGET_FAMILY, semver.nuget_sort_key),
    "Maven": (maven.FAMILY, maven.sort_key),
    "RubyGems": (rubygems.FAMILY, rubygems.sort_key),
    "Packagist": (packagist.FAMILY, packagist.sort_key),
}

SUPPORTED_ECOSYSTEMS: tuple[str, ...] = tuple(sorted(_ECOSYSTEMS))


class Comparator:
    """The comparator of one ecosystem, resolved once. `key` parses once (cached per string);
    `compare` is then a tuple comparison. Errors name the ecosystem as the caller spelled it."""

    __slots__ = ("_parse", "ecosystem", "family")

    def __init__(self, ecosystem: str, family: str, parse: KeyFunction) -> None:
        self.ecosystem = ecosystem
        self.family = family
        self._parse = parse

    def key(self, version: str) -> SortKey:
        """The sort key of `version`; raises InvalidVersionError if the ecosystem rejects it."""
        try:
            return self._parse(version)
        except InvalidVersionError as exc:
            raise InvalidVersionError(self.ecosystem, version, exc.reason) from None

    def compare(self, a: str, b: str) -> int:
        """Negative, 0 or positive as `a` is older than, the same as, or newer than `b`."""
        key_a = self.key(a)
        key_b = self.key(b)
        return (key_a > key_b) - (key_a < key_b)

    def __repr__(self) -> str:
        return f"Comparator({self.ecosystem!r}, family={self.family!r})"


@lru_cache(maxsize=256)
def comparator(ecosystem: str) -> Comparator:
    """The comparator for an OSV ecosystem name, with or without its `:release` suffix."""
    if not isinstance(ecosystem, str):
        raise UnknownEcosystemError(repr(ecosystem), SUPPORTED_ECOSYSTEMS)
    entry = _ECOSYSTEMS.get(ecosystem.partition(":")[0])
    if entry is None:
        raise UnknownEcosystemError(ecosystem, SUPPORTED_ECOSYSTEMS)
    family, parse = entry
    return Comparator(ecosystem, family, parse)


def is_supported(ecosystem: str) -> bool:
    """Whether `comparator(ecosystem)` would succeed."""
    return ecosystem.partition(":")[0] in _ECOSYSTEMS


def sort_key(ecosystem: str, version: str) -> SortKey:
    """Cached parse of `version`; keys of one ecosystem family order like the reference tool."""
    return comparator(ecosystem).key(version)


def compare(ecosystem: str, a: str, b: str) -> int:
    """**contract** Negative, 0 or positive as `a` is older than, equal to, or newer than `b`
    in `ecosystem`'s own ordering. Raises UnknownEcosystemError or InvalidVersionError (both
    ValueError)."""
    return comparator(ecosystem).compare(a, b)
