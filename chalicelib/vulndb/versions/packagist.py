"""Packagist (Composer) versions, ordered as PHP's `version_compare` orders them after Composer
drops a leading `v`.

PHP canonicalizes the string (`-`, `_`, `+` and other non-alphanumerics become `.`, a `.` is
inserted between digits and letters), then compares the dot-separated parts: numbers numerically;
words by their class `dev < alpha = a < beta = b < RC = rc < (number) < pl = p`, where a word
belongs to the first class whose name it starts with and unknown words sort below `dev`; a number
against a word compares the number's class. When one side runs out, the next part of the longer
side decides: a number wins, a word compares against the number class (`1.0 > 1.0-dev`,
`1.0 < 1.0-pl1`). `sort_key` encodes parts as (class, number) and pads like PHP does.

Rejected: the empty string (PHP orders it below everything) and strings containing `#`, which
PHP treats as a number-like part that equals every number (`1.2.3.# == 1.2.3 == 1.2.3.1`, not an
order) and which Composer never accepts in a version.
"""

from functools import lru_cache

from ._keys import PaddedKey, padded_key
from .errors import InvalidVersionError

FAMILY = "packagist"

_SPECIAL_FORMS = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_UNKNOWN_FORM = -1
_NUMBER_CLASS = 4
# What a missing part compares as: PHP compares the rest of the longer version with "#N#".
_FILLER = (_NUMBER_CLASS, -1)


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _canonicalize(version: str) -> str:
    """PHP's `php_canonicalize_version`."""
    out = [version[0]]
    last = version[0]
    for char in version[1:]:
        previous_out = out[-1]
        if char in "-_+":
            if previous_out != ".":
                out.append(".")
        elif (last != "." and char != ".") and (_is_digit(last) != _is_digit(char)):
            if previous_out != ".":
                out.append(".")
            out.append(char)
        elif not char.isascii() or not char.isalnum():
            if previous_out != ".":
                out.append(".")
        else:
            out.append(char)
        last = char
    return "".join(out)


def _form_class(word: str) -> int:
    for name, order in _SPECIAL_FORMS:
        if word.startswith(name):
            return order
    return _UNKNOWN_FORM


def _part_key(part: str) -> tuple[int, int]:
    if part and _is_digit(part[0]):
        digits = 0
        while digits < len(part) and _is_digit(part[digits]):
            digits += 1
        return (_NUMBER_CLASS, int(part[:digits]))
    return (_form_class(part), 0)


@lru_cache(maxsize=65536)
def sort_key(version: str) -> PaddedKey:
    """Parse once; the tuple orders like `version_compare` (after Composer's `v` stripping)."""
    text = version[1:] if version[:1] in ("v", "V") else version
    if not text:
        raise InvalidVersionError(FAMILY, version, "version string is empty")
    if "#" in text:
        raise InvalidVersionError(FAMILY, version, "'#' is not allowed in a version")
    return padded_key((_part_key(part) for part in _canonicalize(text).split(".")), _FILLER)
