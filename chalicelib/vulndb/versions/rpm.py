"""RPM versions (Red Hat, Rocky, AlmaLinux, Fedora, SUSE, openSUSE, Amazon Linux, ...), ordered as
librpm 4.18 orders `[epoch:]version[-release]` labels with `rpmvercmp`.

`rpmvercmp` skips separators (anything but ASCII letters, digits, `~`, `^`), then compares
segments: `~` sorts before everything, even the end of the string (`1.0~rc1 < 1.0`); `^` sorts
after the end of the string but before any segment (`1.0 < 1.0^git1 < 1.0.1`); a numeric segment
beats an alphabetic one; numbers compare numerically, letters with strcmp. When one string runs
out, the one with segments left wins. `sort_key` encodes each item as (kind rank, value) with the
ranks `~` < end < `^` < letters < digits, which turns that walk into a tuple comparison.

The label is split as librpm's `parseEVR` splits it: leading digits followed by `:` are the epoch
(missing = 0), the release is what follows the last `-`. librpm skips the release comparison when
one side has none, which is not transitive (`1 == 1-1`, `1 == 1-2`, `1-1 < 1-2`); here a missing
release sorts before every present one (`1 < 1- < 1-0`), as the shared vectors expect.
Only the empty string is rejected: librpm orders any other string.
"""

from functools import lru_cache

from .errors import InvalidVersionError

FAMILY = "rpm"

Segments = tuple[tuple[int, int | str], ...]
RpmKey = tuple[int, Segments, tuple[int, Segments] | tuple[int]]

_TILDE = (0, 0)
_END = (1, 0)
_CARET = (2, 0)
_ALPHA = 3
_DIGIT = 4
_NO_RELEASE = (0,)


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_alpha(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z"


def segments(text: str) -> Segments:
    """`rpmvercmp`'s walk over one string, as a tuple that orders like it."""
    items: list[tuple[int, int | str]] = []
    pos = 0
    size = len(text)
    while pos < size:
        char = text[pos]
        if char == "~":
            items.append(_TILDE)
            pos += 1
        elif char == "^":
            items.append(_CARET)
            pos += 1
        elif _is_digit(char):
            end = pos
            while end < size and _is_digit(text[end]):
                end += 1
            items.append((_DIGIT, int(text[pos:end])))
            pos = end
        elif _is_alpha(char):
            end = pos
            while end < size and _is_alpha(text[end]):
                end += 1
            items.append((_ALPHA, text[pos:end]))
            pos = end
        else:
            pos += 1
    items.append(_END)
    return tuple(items)


@lru_cache(maxsize=65536)
def sort_key(version: str) -> RpmKey:
    """Parse once; the tuple orders like librpm's EVR comparison."""
    if not version:
        raise InvalidVersionError(FAMILY, version, "version string is empty")
    epoch = 0
    rest = version
    digits = 0
    while digits < len(version) and _is_digit(version[digits]):
        digits += 1
    if version[digits : digits + 1] == ":":
        epoch = int(version[:digits]) if digits else 0
        rest = version[digits + 1 :]
    upstream, hyphen, release = rest.rpartition("-")
    if not hyphen:
        return (epoch, segments(rest), _NO_RELEASE)
    return (epoch, segments(upstream), (1, segments(release)))
