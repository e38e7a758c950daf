"""RubyGems versions, ordered as `Gem::Version#<=>` orders them.

A version is accepted when it matches `Gem::Version`'s pattern (`1.2.3`, `1.2.a`, `1.0.0-rc1`;
a `-` reads as `.pre.`). It is split into runs of digits and runs of letters; the numeric
segments before the first letters and the segments after them each lose their trailing zeros; then
segments compare one by one, the shorter list padded with 0, letters below numbers
(`1.0.a < 1.0`), numbers numerically, letters byte by byte (case-sensitive).

Deliberate difference: `Gem::Version` reads a blank string as `0`; here it is an error.
"""

import re
from functools import lru_cache

from ._keys import PaddedKey, padded_key
from .errors import InvalidVersionError

FAMILY = "rubygems"

_RUBY_SPACE = "[ \t\r\n\f\v]"
_PATTERN = re.compile(
    rf"{_RUBY_SPACE}*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?){_RUBY_SPACE}*",
)
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")
_ZERO = (1, 0)


def _drop_trailing_zeros(segments: list[tuple[int, int | str]]) -> list[tuple[int, int | str]]:
    end = len(segments)
    while end and segments[end - 1] == _ZERO:
        end -= 1
    return segments[:end]


@lru_cache(maxsize=65536)
def sort_key(version: str) -> PaddedKey:
    """Parse once; the tuple orders like `Gem::Version#<=>` (letters (0, s) below numbers (1, n))."""
    match = _PATTERN.fullmatch(version)
    if match is None:
        raise InvalidVersionError(FAMILY, version, "malformed version number string")
    text = match.group(1).replace("-", ".pre.")
    segments: list[tuple[int, int | str]] = [
        (1, int(part)) if part.isdigit() else (0, part) for part in _SEGMENT.findall(text)
    ]
    first_letters = next((i for i, (kind, _) in enumerate(segments) if kind == 0), len(segments))
    canonical = _drop_trailing_zeros(segments[:first_letters]) + _drop_trailing_zeros(
        segments[first_letters:],
    )
    return padded_key(canonical, _ZERO)
