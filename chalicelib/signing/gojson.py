"""JSON bytes as Go's `encoding/json.Marshal` writes them.

A signature covers bytes, not a document: what cosign produced for the same payload is compact
JSON, object keys in struct-field order for structs and sorted for maps, non-ASCII as raw UTF-8,
and `<`, `>`, `&`, U+2028, U+2029 escaped (Go's HTML-safe default). Matching that exactly means a
payload built here is the one cosign would have built, which makes differences easy to spot when
comparing the two."""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def marshal(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact Go-style JSON. `sort_keys=True` for documents that Go holds as maps (or whose
    struct fields happen to be declared in alphabetical order, like the simple-signing payload).
    The escaped characters can only occur inside strings, so replacing them in the text is safe."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode("utf-8")
