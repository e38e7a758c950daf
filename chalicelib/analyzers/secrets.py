"""Secrets in image files and in the image config: rules from `secret_rules.py`, values never kept.

A finding carries the rule, the path, the line, a masked excerpt of that line (every matched value
on it replaced by `*` after at most 4 characters, and any other long token-like run masked too) and
a fingerprint: the first 32 hex digits of sha256(rule id, value). The fingerprint is stable across
scans and images (the same leaked key is one key everywhere) and is not the value; for a
low-entropy value (a short database password) a hash can be brute-forced, which is why the
fingerprint is only a prefix and the value itself is stored, logged and printed nowhere.

Cost control, in order: `wants` drops skipped names, binary extensions and allow-listed trees with
string operations; files over `max_file_size` are never read; a NUL byte in the first 8 KiB means
binary (skipped); the lowercased content is searched once for every rule keyword (`bytes in`,
C speed) and only rules with a keyword hit run their regex."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.secret_rules import (
    ALLOW_VALUE_REGEX,
    ALLOW_VALUE_SUBSTRINGS,
    BUILTIN_ALLOW_PATHS,
    RULES,
    SKIP_EXTENSIONS,
    SKIP_FILENAMES,
    SecretRule,
)
from chalicelib.models import SecretFinding

MAX_FILE_SIZE = 1024 * 1024
BINARY_SNIFF = 8192
EXCERPT_CHARS = 80
REVEAL_CHARS = 4
FINGERPRINT_HEX = 32
#: token-like runs this long are masked in excerpts even when no rule matched them
_TOKEN_RUN = re.compile(rb"[A-Za-z0-9+/_-]{20,}=*")
_DIGIT = re.compile(rb"[0-9]")
_LETTER = re.compile(rb"[A-Za-z]")


@dataclass(frozen=True)
class SecretConfig:
    """`allow_paths` are regexes searched in the relative path (`()` scans everything);
    `max_file_size` bounds what is read (at most the analyzer's 1 MiB class limit)."""

    rules: tuple[SecretRule, ...] = RULES
    allow_paths: tuple[str, ...] = BUILTIN_ALLOW_PATHS
    max_file_size: int = MAX_FILE_SIZE


@dataclass(frozen=True)
class _Hit:
    rule: SecretRule
    start: int  # where the match starts (its line is the finding's line)
    value_start: int
    value_end: int
    value: bytes


def shannon_entropy(value: bytes) -> float:
    """Bits per character of `value` (0 for empty)."""
    if not value:
        return 0.0
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values())


def fingerprint(rule_id: str, value: bytes) -> str:
    """Stable, non-reversible id of one secret value under one rule (see the module docstring)."""
    return hashlib.sha256(rule_id.encode() + b"\x00" + value).hexdigest()[:FINGERPRINT_HEX]


def is_binary(content: bytes) -> bool:
    return b"\x00" in content[:BINARY_SNIFF]


def _allowed_value(value: bytes) -> bool:
    lowered = value.lower()
    if any(s.encode() in lowered for s in ALLOW_VALUE_SUBSTRINGS):
        return True
    return ALLOW_VALUE_REGEX.match(value) is not None


def _matches(rule: SecretRule, content: bytes, lowered: bytes) -> Iterator[re.Match[bytes]]:
    """The rule's matches: a full search, or (anchored rules) a match tried at each keyword."""
    if not rule.anchored:
        yield from rule.regex.finditer(content)
        return
    positions: set[int] = set()
    for needle in rule.keyword_bytes:
        at = lowered.find(needle)
        while at >= 0:
            positions.add(at)
            at = lowered.find(needle, at + 1)
    end = -1
    for at in sorted(positions):
        if at < end:
            continue  # inside the previous match
        match = rule.regex.match(content, at)
        if match is not None:
            end = match.end()
            yield match


def _find(path: str, content: bytes, rules: Sequence[SecretRule]) -> list[_Hit]:
    lowered = content.lower()
    hits: list[_Hit] = []
    for rule in rules:
        if rule.paths is not None and rule.paths.search(path) is None:
            continue
        if not any(k in lowered for k in rule.keyword_bytes):
            continue
        for match in _matches(rule, content, lowered):
            value = match.group("secret")
            if _allowed_value(value):
                continue
            if rule.min_entropy is not None and shannon_entropy(value) < rule.min_entropy:
                continue
            if rule.needs_digit and _DIGIT.search(value) is None:
                continue
            hits.append(_Hit(rule, match.start(), match.start("secret"), match.end("secret"), value))
    # one finding per value: a specific rule wins over the generic one matching the same bytes
    hits.sort(key=lambda h: (h.value_start, h.rule.min_entropy is not None, h.rule.id))
    kept: list[_Hit] = []
    for hit in hits:
        if any(hit.value_start < k.value_end and k.value_start < hit.value_end for k in kept):
            continue
        kept.append(hit)
    return kept


def _excerpt(content: bytes, hit: _Hit, hits: Sequence[_Hit]) -> str:
    """The hit's line, every value on it masked, trimmed to ~80 characters around the hit."""
    line_start = content.rfind(b"\n", 0, hit.start) + 1
    line_end = content.find(b"\n", hit.start)
    if line_end < 0:
        line_end = len(content)
    line = bytearray(content[line_start:line_end])
    masked = bytearray(len(line))  # 1 where a byte is already masked
    for other in hits:
        lo, hi = max(other.value_start, line_start), min(other.value_end, line_end)
        if lo >= hi:
            continue
        reveal = min(REVEAL_CHARS, len(other.value) // 4) if lo == other.value_start else 0
        for i in range(lo - line_start, hi - line_start):
            masked[i] = 1
            if i >= lo - line_start + reveal:
                line[i] = 0x2A
    for run in _TOKEN_RUN.finditer(bytes(line)):
        token = run.group()
        if not (_DIGIT.search(token) and _LETTER.search(token)):
            continue  # an identifier such as `aws_secret_access_key`, not a token
        for i in range(run.start() + REVEAL_CHARS, run.end()):
            if not masked[i]:
                line[i] = 0x2A
    anchor = max(hit.value_start, line_start) - line_start
    lo = max(0, min(anchor - EXCERPT_CHARS // 3, len(line) - EXCERPT_CHARS))
    text = bytes(line[lo : lo + EXCERPT_CHARS]).decode("utf-8", "replace")
    text = text.replace("\r", "").replace("\t", " ")
    return ("..." if lo > 0 else "") + text.strip() + ("..." if lo + EXCERPT_CHARS < len(line) else "")


def scan_content(
    path: str, content: bytes, rules: Sequence[SecretRule] = RULES, *, layer: str | None = None
) -> list[SecretFinding]:
    """Findings in one text file, in file order. Binary content (NUL in the first 8 KiB) has none."""
    if is_binary(content):
        return []
    hits = _find(path, content, rules)
    return [
        SecretFinding(
            rule_id=hit.rule.id,
            severity=hit.rule.severity,
            path=path,
            layer=layer,
            line=content.count(b"\n", 0, hit.start) + 1,
            masked=_excerpt(content, hit, hits),
            fingerprint=fingerprint(hit.rule.id, hit.value),
        )
        for hit in hits
    ]


class SecretAnalyzer(Analyzer):
    name: ClassVar[str] = "secrets"
    max_file_size: ClassVar[int] = MAX_FILE_SIZE

    def __init__(self, config: SecretConfig | None = None) -> None:
        self.config = config or SecretConfig()
        self._allow = re.compile("|".join(self.config.allow_paths)) if self.config.allow_paths else None

    def wants(self, path: str) -> bool:
        base = path[path.rfind("/") + 1 :]
        if base in SKIP_FILENAMES:
            return False
        dot = base.rfind(".")
        if dot > 0 and base[dot + 1 :].lower() in SKIP_EXTENSIONS:
            return False
        return self._allow is None or self._allow.search(path) is None

    def analyze(self, path: str, content: bytes) -> FileResult:
        if len(content) > self.config.max_file_size:
            return FileResult()
        return FileResult(secrets=scan_content(path, content, self.config.rules))


def _history_layers(config: dict[str, Any], diff_ids: Sequence[str]) -> list[str | None]:
    """The layer each history entry made (None for `empty_layer` entries, or when the history does
    not line up with the layers)."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    out: list[str | None] = []
    index = 0
    for entry in history:
        empty = isinstance(entry, dict) and entry.get("empty_layer") is True
        if empty or index >= len(diff_ids):
            out.append(None)
        else:
            out.append(diff_ids[index])
            index += 1
    if index != len(diff_ids):
        return [None] * len(history)
    return out


def scan_image_config(
    config: dict[str, Any], diff_ids: Sequence[str] = (), rules: Sequence[SecretRule] = RULES
) -> list[SecretFinding]:
    """Secrets in the image config: `config:env` (line = 1-based position in `Env`, each entry
    scanned as `NAME="value"` so assignment rules see it), `config:labels` (line = position in
    sorted key order) and `config:history[i]` (line within `created_by`, layer = the layer that
    history entry built)."""
    findings: list[SecretFinding] = []
    inner = config.get("config")
    inner = inner if isinstance(inner, dict) else {}
    env = inner.get("Env")
    for number, entry in enumerate(env if isinstance(env, list) else [], start=1):
        if isinstance(entry, str):
            name, _, value = entry.partition("=")
            found = scan_content("config:env", f'{name}="{value}"'.encode(), rules)
            findings.extend(f.model_copy(update={"line": number}) for f in found)
    labels = inner.get("Labels")
    labels = labels if isinstance(labels, dict) else {}
    for number, key in enumerate(sorted(labels), start=1):
        if isinstance(labels[key], str):
            found = scan_content("config:labels", f'{key}="{labels[key]}"'.encode(), rules)
            findings.extend(f.model_copy(update={"line": number}) for f in found)
    history = config.get("history")
    layers = _history_layers(config, diff_ids)
    for i, entry in enumerate(history if isinstance(history, list) else []):
        created_by = entry.get("created_by") if isinstance(entry, dict) else None
        if isinstance(created_by, str):
            layer = layers[i] if i < len(layers) else None
            findings.extend(scan_content(f"config:history[{i}]", created_by.encode(), rules, layer=layer))
    return findings
