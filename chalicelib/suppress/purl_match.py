"""Package URL patterns: how an ignore rule or a VEX product names a package.

A pattern without a version names every version of the package; with one, exactly that version.
Qualifiers the pattern gives must be present with the same value on the finding's purl (so
`?distro=debian-12` narrows to one release); qualifiers it leaves out match anything. The subpath
is not compared. Names are compared as packageurl-python normalises them (PyPI names PEP 503)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from packageurl import PackageURL


@dataclass(frozen=True)
class PurlPattern:
    text: str
    type: str
    namespace: str | None
    name: str
    version: str | None
    qualifiers: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> PurlPattern:
        """Raises ValueError naming what is wrong with `text`."""
        try:
            purl = PackageURL.from_string(text)
        except ValueError as exc:
            raise ValueError(f"invalid package URL: {exc}") from None
        return cls(
            text=text,
            type=purl.type,
            namespace=purl.namespace or None,
            name=purl.name,
            version=purl.version or None,
            qualifiers=tuple(sorted(_qualifiers(purl).items())),
        )

    def matches(self, purl: str | None) -> bool:
        """Does the installed package `purl` (always versioned) fall under this pattern?"""
        if purl is None:
            return False
        other = _parse(purl)
        if other is None:
            return False
        if (self.type, self.namespace, self.name) != (other.type, other.namespace or None, other.name):
            return False
        if self.version is not None and self.version != other.version:
            return False
        have = _qualifiers(other)
        return all(have.get(key) == value for key, value in self.qualifiers)


@lru_cache(maxsize=4096)
def _parse(text: str) -> PackageURL | None:
    """Cached: every finding's purl is compared with every rule."""
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _qualifiers(purl: PackageURL) -> dict[str, str]:
    raw = purl.qualifiers
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {}
