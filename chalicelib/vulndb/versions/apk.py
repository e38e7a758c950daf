"""Alpine, Wolfi and Chainguard versions, ordered as apk-tools 2 (`apk version -t`) orders them.

Grammar (Gentoo's): `number{.number}...{letter}{_suffix{number}}...{-r#}`, suffixes
`alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p`.

apk-tools 2 walks both strings as a stream of tokens (digit, letter, suffix, suffix number,
revision, end). Token values are compared while the token kinds agree; at the first place where
the kinds differ, a pre-release suffix loses, otherwise the version whose next token comes later in
the grammar loses (`1.2 < 1.2.1 < 1.2a`, `1.2_rc1 < 1.2 < 1.2_p1 < 1.2-r1`). A number after a
dot that starts with `0` is compared as a string (apk turns its leading zeros into a negative
value), so `1.05 < 1.1`. `sort_key` turns each token into (rank of its kind, value), which makes
that walk a plain tuple comparison.

Rejected (InvalidVersionError):
- strings apk-tools 2 itself reports invalid (`apk_version_validate`): upper-case letters,
  unknown suffixes (`_blah`), anything after the revision (`1-r0-1`, `1-ruff`), `~hash`, ...;
- a letter right after a dot (`0.r1`, `0.8.21.r2`): apk-tools 2 reads it as an empty number plus a
  letter and orders `0.r1` after `0r2`, newer apk-tools reject it; rejecting keeps our order
  consistent with the shared vectors;
- the empty string (apk reads it as `0`; an empty version is not something to order).

Numbers are compared exactly; apk-tools 2.10 keeps them in a C `int` and wraps above 2**31.
"""

from functools import lru_cache

from .errors import InvalidVersionError

FAMILY = "apk"

ApkKey = tuple[tuple[int, int], ...]

_INVALID = -1
_DIGIT_OR_ZERO = 0
_DIGIT = 1
_LETTER = 2
_SUFFIX = 3
_SUFFIX_NO = 4
_REVISION_NO = 5
_END = 6

_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
# Rank of a pre-release suffix token: below every other kind, so it loses at a kind mismatch.
_PRE_RELEASE_RANK = -10
_END_TOKEN = (-_END, 0)
# Kind changes apk allows although they go "backwards" in the grammar.
_ALLOWED_BACKWARDS = frozenset(
    {(_DIGIT, _DIGIT_OR_ZERO), (_SUFFIX_NO, _SUFFIX), (_LETTER, _DIGIT)},
)


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _invalid(version: str, reason: str) -> InvalidVersionError:
    return InvalidVersionError(FAMILY, version, reason)


def _next_kind(version: str, kind: int, pos: int) -> tuple[int, int]:
    """apk's `next_token`: the kind of the token at `pos` (consuming its separator)."""
    char = version[pos]
    if kind in (_DIGIT, _DIGIT_OR_ZERO) and "a" <= char <= "z":
        new = _LETTER
    elif kind == _LETTER and _is_digit(char):
        new = _DIGIT
    elif kind == _SUFFIX and _is_digit(char):
        new = _SUFFIX_NO
    else:
        if char == ".":
            new = _DIGIT_OR_ZERO
        elif char == "_":
            new = _SUFFIX
        elif char == "-" and version[pos + 1 : pos + 2] == "r":
            new = _REVISION_NO
            pos += 1
        else:
            new = _INVALID
        pos += 1
    if new < kind and (kind, new) not in _ALLOWED_BACKWARDS:
        new = _INVALID
    return new, pos


def _read_suffix(version: str, pos: int) -> tuple[int, int]:
    """Suffix value (pre-release ones negative) and the position after its name."""
    for index, name in enumerate(_PRE_SUFFIXES):
        if version.startswith(name, pos):
            return index - len(_PRE_SUFFIXES), pos + len(name)
    for index, name in enumerate(_POST_SUFFIXES):
        if version.startswith(name, pos):
            return index, pos + len(name)
    raise _invalid(version, f"unknown suffix at {version[pos - 1 :]!r}")


def _read_number(version: str, pos: int) -> tuple[int, int]:
    end = pos
    while end < len(version) and _is_digit(version[end]):
        end += 1
    return (int(version[pos:end]) if end > pos else 0), end


@lru_cache(maxsize=65536)
def sort_key(version: str) -> ApkKey:
    """Parse once; the tuple orders like apk-tools 2."""
    if not version:
        raise _invalid(version, "version string is empty")
    tokens: list[tuple[int, int]] = []
    kind = _DIGIT
    pos = 0
    size = len(version)
    while True:
        if pos >= size:
            # apk: a kind announced by a separator at the very end reads as value 0, then end.
            tokens.append((-kind, 0))
            break
        follow = _INVALID
        if kind == _DIGIT_OR_ZERO and version[pos] == "0":
            end = pos
            while end < size and version[end] == "0":
                end += 1
            value, pos, follow = pos - end, end, _DIGIT
        elif kind in (_DIGIT_OR_ZERO, _DIGIT, _SUFFIX_NO, _REVISION_NO):
            start = pos
            value, pos = _read_number(version, pos)
            if kind == _DIGIT_OR_ZERO and pos == start and pos < size and "a" <= version[pos] <= "z":
                raise _invalid(version, "a letter must follow a number, not a dot")
        elif kind == _LETTER:
            value, pos = ord(version[pos]), pos + 1
        else:  # _SUFFIX
            value, pos = _read_suffix(version, pos)
        rank = _PRE_RELEASE_RANK if kind == _SUFFIX and value < 0 else -kind
        tokens.append((rank, value))
        if pos >= size:
            break
        if follow != _INVALID:
            kind = follow
        else:
            kind, pos = _next_kind(version, kind, pos)
            if kind == _INVALID:
                raise _invalid(version, f"unexpected text at {version[pos - 1 :]!r}")
    tokens.append(_END_TOKEN)
    return tuple(tokens)
