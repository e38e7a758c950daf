"""Semantic versions: npm (node-semver 7, strict) and the lenient form used for Go, crates.io and
NuGet.

Both order as semver 2.0.0 section 11: major, minor, patch numerically; a pre-release sorts before
its release; pre-release identifiers compare one by one, numbers numerically and below
alphanumerics (compared in ASCII order), a longer list of equal identifiers wins; build metadata
(`+...`) is ignored, so `1.0.0+a == 1.0.0+b`.

npm (`npm_sort_key`) accepts exactly what `new SemVer(v)` accepts (node-semver 7.x, not loose):
surrounding whitespace is trimmed, one optional leading `v`, exactly three numbers without leading
zeros and at most 2**53-1, identifiers without leading zeros, at most 256 characters. `1.0`,
`=1.0.0`, `v01.0.0`, `1.0.0-01` are rejected. Numeric pre-release identifiers are compared as
JavaScript numbers (doubles), as node-semver does.

Lenient (`lenient_sort_key`, Go / crates.io / NuGet), following OSV's own comparator: optional
leading `v`; one to N dot-separated numbers of any size, leading zeros allowed, missing ones are 0
(`1 == 1.0.0`); numbers after the N-th join the front of the pre-release (so `1.1.3.4 < 1.1.3`, as
OSV's comparator files them under the pre-release); the rest of the string is `-pre-release` and/or
`+build`, and text that starts with neither is read as a pre-release (`1.0.0rc1`). NuGet compares
pre-release labels case-insensitively and has four numbers. Rejected: empty strings, strings that do
not start with a number, whitespace and control characters.
"""

import re
from functools import lru_cache

from .errors import InvalidVersionError

NPM_FAMILY = "npm"
LENIENT_FAMILY = "semver"
NUGET_FAMILY = "nuget"

# A pre-release identifier key: (0, number) sorts below (1, text), as semver wants.
Identifier = tuple[int, float] | tuple[int, int] | tuple[int, str]
PreRelease = tuple[int, *tuple[Identifier, ...]]
NpmKey = tuple[int, int, int, PreRelease]
LenientKey = tuple[tuple[int, ...], PreRelease]

_RELEASE: PreRelease = (1,)

_NUM = r"0|[1-9][0-9]*"
_NON_NUM = r"[0-9]*[a-zA-Z-][a-zA-Z0-9-]*"
_PRE_ID = rf"(?:{_NUM}|{_NON_NUM})"
_BUILD_ID = r"[a-zA-Z0-9-]+"
_NPM_FULL = re.compile(
    rf"v?({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?",
)
_NPM_MAX_LENGTH = 256
_MAX_SAFE_INTEGER = 2**53 - 1
# What JavaScript's String.prototype.trim() removes.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_LENIENT_HEAD = re.compile(r"v?([0-9][0-9.]*)")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


@lru_cache(maxsize=65536)
def npm_sort_key(version: str) -> NpmKey:
    """Parse once, as node-semver 7 `new SemVer(version)` (strict) parses."""
    if len(version) > _NPM_MAX_LENGTH:
        raise InvalidVersionError(NPM_FAMILY, version, f"longer than {_NPM_MAX_LENGTH} characters")
    match = _NPM_FULL.fullmatch(version.strip(_JS_WHITESPACE))
    if match is None:
        raise InvalidVersionError(NPM_FAMILY, version, "not a strict semver version (node-semver)")
    major, minor, patch = (int(match.group(i)) for i in (1, 2, 3))
    for name, number in (("major", major), ("minor", minor), ("patch", patch)):
        if number > _MAX_SAFE_INTEGER:
            raise InvalidVersionError(NPM_FAMILY, version, f"{name} version above 2**53-1")
    pre = match.group(4)
    if pre is None:
        return (major, minor, patch, _RELEASE)
    ids: list[Identifier] = [(0, float(i)) if _is_number(i) else (1, i) for i in pre.split(".")]
    return (major, minor, patch, (0, *ids))


def _pre_release(identifiers: list[str]) -> PreRelease:
    if not identifiers:
        return _RELEASE
    ids: list[Identifier] = [(0, int(i)) if _is_number(i) else (1, i) for i in identifiers]
    return (0, *ids)


def _lenient(family: str, version: str, size: int, fold_case: bool) -> LenientKey:
    if _FORBIDDEN.search(version):
        raise InvalidVersionError(family, version, "contains whitespace or control characters")
    head = _LENIENT_HEAD.match(version)
    if head is None:
        raise InvalidVersionError(family, version, "does not start with a number")
    numbers = [int(part) for part in head.group(1).split(".") if part]
    rest = version[head.end() :]
    release, extra = numbers[:size], numbers[size:]
    release += [0] * (size - len(release))
    pre_text = rest.partition("+")[0]
    pre_text = pre_text.removeprefix("-")
    if fold_case:
        pre_text = pre_text.lower()
    identifiers = [str(number) for number in extra]
    if pre_text:
        identifiers += pre_text.split(".")
    return (tuple(release), _pre_release(identifiers))


@lru_cache(maxsize=65536)
def lenient_sort_key(version: str) -> LenientKey:
    """Go and crates.io: semver with optional `v`, missing numbers as 0, big numbers allowed."""
    return _lenient(LENIENT_FAMILY, version, 3, fold_case=False)


@lru_cache(maxsize=65536)
def nuget_sort_key(version: str) -> LenientKey:
    """NuGet: four numbers, pre-release labels compared case-insensitively."""
    return _lenient(NUGET_FAMILY, version, 4, fold_case=True)
