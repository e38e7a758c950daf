"""Helpers that turn "compare two sequences, the shorter one padded with a filler" into a plain
tuple, so that comparing two versions is one C-level tuple comparison instead of a Python loop.

Several ecosystems (dpkg, RubyGems, ...) compare element by element and pad the shorter version
with a filler value (0 for dpkg, the number 0 for RubyGems). Plain tuple comparison gets that
wrong: it ranks a proper prefix first, while with padding `1.0` is newer than `1.0~rc1` (the filler
beats `~`) and `1` equals `1.0`. `padded_key` encodes only the elements that differ from the
filler, each tagged with its side of the filler and its position, and ends with a sentinel that
stands for "filler from here on":

- an element above the filler at index i becomes (1, -i, e): at the first difference, the
  version that has the bigger element earlier wins;
- an element below the filler at index i becomes (-1, i, e): the version that has the smaller
  element earlier loses;
- the sentinel (0,) sits between the two kinds, exactly like the filler itself.

Comparing two such keys as tuples gives the same answer as comparing the padded sequences
element by element (the unit tests check this against a direct implementation).
"""

from collections.abc import Iterable
from typing import Any

PaddedKey = tuple[tuple[Any, ...], ...]

_END: tuple[int] = (0,)


def padded_key(elements: Iterable[Any], filler: Any) -> PaddedKey:
    """Encode `elements` so that tuple order equals filler-padded element-wise order."""
    out: list[tuple[Any, ...]] = []
    for index, element in enumerate(elements):
        if element == filler:
            continue
        if element > filler:
            out.append((1, -index, element))
        else:
            out.append((-1, index, element))
    out.append(_END)
    return tuple(out)
