"""PyPI versions: PEP 440 as `packaging.version.Version` implements it (the reference itself).

`Version` objects are the sort key: they compare through a precomputed tuple, and parsing is
cached, so comparing is cheap. Anything `Version` rejects (`1.0-foo-bar`, `latest`, ...) raises
InvalidVersionError. Local versions sort after their public version (`1.0+local > 1.0`), as
`packaging` orders them.
"""

from functools import lru_cache

from packaging.version import InvalidVersion, Version

from .errors import InvalidVersionError

FAMILY = "pep440"


@lru_cache(maxsize=65536)
def sort_key(version: str) -> Version:
    """Parse once; `Version` objects order as PEP 440 says."""
    try:
        return Version(version)
    except InvalidVersion as exc:
        raise InvalidVersionError(FAMILY, version, f"not a PEP 440 version ({exc})") from None
