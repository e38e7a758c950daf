"""Debian and Ubuntu versions, ordered as `dpkg --compare-versions` (dpkg 1.21) orders them.

A version is `[epoch:]upstream[-revision]`. Each of upstream and revision is compared as
alternating runs of non-digits and digits: non-digit runs character by character, where `~`
sorts before everything (even the end of the string), then the end of the run, then letters, then
every other character; digit runs numerically. dpkg pads the shorter string, so `1.0 > 1.0~rc1`
and `1.0-0 == 1.0`.

Strings are accepted and rejected as dpkg's `parseversion` does: its hard errors (empty, embedded
blanks, bad epoch, empty upstream or revision) raise `InvalidVersionError`; its warnings (a first
character that is not a digit, characters outside the allowed set) do not, because
`dpkg --compare-versions` still compares such versions (printing a warning). Deliberate
difference: dpkg reads an empty string as "no version" (lower than every version); here an empty
string is an error, because a package without a version is not something to order.
"""

from functools import lru_cache

from ._keys import PaddedKey, padded_key
from .errors import InvalidVersionError

FAMILY = "dpkg"

DpkgKey = tuple[int, PaddedKey, PaddedKey]

_BLANKS = " \t"
_C_SPACE = " \t\n\v\f\r"
_INT_MAX = 2**31 - 1
_DIGITS = frozenset(b"0123456789")
_TILDE = ord("~")


def _invalid(version: str, reason: str) -> InvalidVersionError:
    return InvalidVersionError(FAMILY, version, reason)


def _order(byte: int) -> int:
    """dpkg's `order()` for a non-digit byte. dpkg reads `char` as signed, so a byte >= 0x80 is
    negative there and `c + 256` maps it back to 128..255: below every ASCII punctuation mark."""
    if byte == _TILDE:
        return -1
    if 65 <= byte <= 90 or 97 <= byte <= 122:
        return byte
    if byte >= 0x80:
        return byte
    return byte + 256


def _part_key(part: str) -> PaddedKey:
    """Flatten upstream or revision into [weights of a non-digit run..., 0, number, ...]
    (0 = end of run, which dpkg also uses for "end of string"), then pad with 0."""
    data = part.encode("utf-8", "surrogatepass")
    flat: list[int] = []
    i = 0
    size = len(data)
    while i < size:
        while i < size and data[i] not in _DIGITS:
            flat.append(_order(data[i]))
            i += 1
        flat.append(0)
        start = i
        while i < size and data[i] in _DIGITS:
            i += 1
        flat.append(int(data[start:i]) if i > start else 0)
    return padded_key(flat, 0)


def _strtol_epoch(version: str, text: str) -> int:
    """The epoch as C `strtol` reads it, with `parseversion`'s checks around it."""
    i = 0
    while i < len(text) and text[i] in _C_SPACE:
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    digits_start = i
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    if i == digits_start:
        raise _invalid(version, "epoch in version is empty")
    if i != len(text):
        raise _invalid(version, "epoch in version is not number")
    value = sign * int(text[digits_start:i])
    if value < 0:
        raise _invalid(version, "epoch in version is negative")
    if value > _INT_MAX:
        raise _invalid(version, "epoch in version is too big")
    return value


@lru_cache(maxsize=65536)
def sort_key(version: str) -> DpkgKey:
    """Parse once; the tuple orders like `dpkg --compare-versions`."""
    text = version.strip(_BLANKS)
    if not text:
        raise _invalid(version, "version string is empty")
    if any(blank in text for blank in _BLANKS):
        raise _invalid(version, "version string has embedded spaces")
    if "\0" in text:
        raise _invalid(version, "version string has a NUL character")
    epoch = 0
    colon = text.find(":")
    if colon >= 0:
        epoch = _strtol_epoch(version, text[:colon])
        text = text[colon + 1 :]
        if not text:
            raise _invalid(version, "nothing after colon in version number")
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    elif not revision:
        raise _invalid(version, "revision number is empty")
    if not upstream:
        raise _invalid(version, "version number is empty")
    return (epoch, _part_key(upstream), _part_key(revision))
