"""Maven versions, ordered by the POM reference's "Version Order Specification" as OSV applies it.

The version is lower-cased and split into tokens at `.`, `-` and at every switch between digits and
other characters (a switch counts as `-`); each token remembers the separator before it. Empty
tokens read as `0`; `cr` reads as `rc`; `ga`, `final` and `release` read as the empty qualifier;
`a`, `b`, `m` directly followed by a number read as `alpha`, `beta`, `milestone`. Then null tokens
(`0`, empty) are trimmed from the end, and again before each remaining `-`, from the end to the
start: `1.0.0 == 1`, `1.0-alpha == 1-alpha`.

Versions compare token by token, the shorter padded with nulls of the other side's separator
(`0` after `.`, empty after `-`). With the same separator: numbers numerically, a real number above
a qualifier, qualifiers as `alpha < beta < milestone < rc < snapshot < "" < sp < other words`
(other words alphabetically). With different separators: `.qualifier < -qualifier < -number
< .number`.

The padding depends on the other version, so the key is a small object with rich comparisons
rather than a tuple. Nothing is rejected except the empty string: Maven orders any string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .errors import InvalidVersionError

FAMILY = "maven"

_DOT = "."
_DASH = "-"
_KEYWORDS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_UNKNOWN_KEYWORD = len(_KEYWORDS)
_ALIASES = {"cr": "rc", "ga": "", "final": "", "release": ""}
_SHORTHANDS = {"a": "alpha", "b": "beta", "m": "milestone"}
_NULL_VALUES = frozenset({"0", "", "final", "ga"})


class _Token:
    """One token: separator before it, value, and whether it is padding."""

    __slots__ = ("is_null", "number", "prefix", "value")

    def __init__(self, prefix: str, value: str, is_null: bool = False) -> None:
        self.prefix = prefix
        self.value = value
        self.is_null = is_null
        self.number = int(value) if value.isascii() and value.isdigit() else None

    def same(self, other: _Token) -> bool:
        return self.prefix == other.prefix and self.value == other.value

    def _separator_order(self) -> int:
        if self.number is not None:
            return 2 if self.prefix == _DASH else 3
        return 1 if self.prefix == _DASH else 0

    def less_than(self, other: _Token) -> bool:
        if self.prefix != other.prefix:
            return self._separator_order() < other._separator_order()
        if self.number is not None and other.number is not None:
            return self.number < other.number
        if self.number is not None and not self.is_null:
            return False
        if other.number is not None and not other.is_null:
            return True
        mine = _keyword_order(self.value)
        theirs = _keyword_order(other.value)
        if mine == _UNKNOWN_KEYWORD and theirs == _UNKNOWN_KEYWORD:
            return self.value < other.value
        return mine < theirs


def _keyword_order(value: str) -> int:
    try:
        return _KEYWORDS.index(value)
    except ValueError:
        return _UNKNOWN_KEYWORD


def _padding_for(token: _Token) -> _Token:
    if token.prefix == _DOT:
        # "sp" is the one qualifier above the empty one: pad it with the empty qualifier, not 0.
        return _Token(_DOT, "" if token.value == "sp" else "0", is_null=True)
    return _Token(_DASH, "", is_null=True)


class MavenKey:
    """Parsed Maven version; compare keys of the same ecosystem with <, ==, >."""

    __slots__ = ("tokens",)

    def __init__(self, tokens: tuple[_Token, ...]) -> None:
        self.tokens = tokens

    def _cmp(self, other: MavenKey) -> int:
        mine, theirs = self.tokens, other.tokens
        for index in range(max(len(mine), len(theirs))):
            left = mine[index] if index < len(mine) else _padding_for(theirs[index])
            right = theirs[index] if index < len(theirs) else _padding_for(mine[index])
            if left.same(right):
                continue
            return -1 if left.less_than(right) else 1
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenKey) and self._cmp(other) == 0

    def __hash__(self) -> int:
        # Trimming leaves no trailing nulls, so keys that compare equal have the same tokens.
        return hash(tuple((token.prefix, token.value) for token in self.tokens))

    def __lt__(self, other: Any) -> bool:
        return self._cmp(other) < 0

    def __gt__(self, other: Any) -> bool:
        return self._cmp(other) > 0

    def __le__(self, other: Any) -> bool:
        return self._cmp(other) <= 0

    def __ge__(self, other: Any) -> bool:
        return self._cmp(other) >= 0

    def __repr__(self) -> str:
        return "MavenKey(" + "".join(t.prefix + t.value for t in self.tokens) + ")"


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _split_transitions(raw: str) -> list[str]:
    """Split at every switch between a digit and a non-digit."""
    pieces: list[str] = []
    start = 0
    for index in range(1, len(raw)):
        if _is_digit(raw[index - 1]) != _is_digit(raw[index]):
            pieces.append(raw[start:index])
            start = index
    pieces.append(raw[start:])
    return pieces


def _tokenize(version: str) -> list[_Token]:
    tokens: list[_Token] = []
    prefix = _DOT
    raw = ""
    raw_tokens: list[tuple[str, str]] = []
    for char in version.lower():
        if char in (_DOT, _DASH):
            raw_tokens.append((prefix, raw))
            prefix, raw = char, ""
        else:
            raw += char
    raw_tokens.append((prefix, raw))
    for raw_prefix, raw_value in raw_tokens:
        pieces = _split_transitions(raw_value) if raw_value else [""]
        for index, piece in enumerate(pieces):
            value = piece or "0"
            value = _ALIASES.get(value, value)
            if index + 1 < len(pieces):
                value = _SHORTHANDS.get(value, value)
            if value.isascii() and value.isdigit():
                value = str(int(value))
            tokens.append(_Token(raw_prefix if index == 0 else _DASH, value))
    return tokens


def _trim(tokens: list[_Token]) -> list[_Token]:
    index = len(tokens) - 1
    while index > 0:
        if tokens[index].value in _NULL_VALUES:
            del tokens[index]
            index -= 1
            continue
        while index >= 0 and tokens[index].prefix != _DASH:
            index -= 1
        index -= 1
    return tokens


@lru_cache(maxsize=65536)
def sort_key(version: str) -> MavenKey:
    """Parse once; the key orders like OSV's Maven comparator."""
    if not version:
        raise InvalidVersionError(FAMILY, version, "version string is empty")
    return MavenKey(tuple(_trim(_tokenize(version))))
