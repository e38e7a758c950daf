"""`.lifeguardignore`: Trivy's `.trivyignore` line format, plus package scoping and reasons.

    # comment lines directly above a rule (no blank line between) are its reason
    CVE-2023-1234
    GHSA-xvch-5gv4-984h pkg:npm/minimist          # inline comment: the reason
    CVE-2023-5678 pkg:pypi/requests@2.25.1 exp:2025-01-01

One vulnerability id (a CVE or any alias) first; then any number of `pkg:` package URLs (any of
them matches; none: every package) and at most one `exp:YYYY-MM-DD`. The structured form
(`.json`, `.yaml`, `.yml`) is Trivy's `.trivyignore.yaml` subset `vulnerabilities: [{id, purls,
expired_at, statement}]`. Every error names the file and line (or entry)."""

from __future__ import annotations

import importlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InputError
from chalicelib.suppress.purl_match import PurlPattern
from chalicelib.suppress.rules import IgnoreRule

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INLINE_COMMENT = re.compile(r"\s#\s?(?P<text>.*)$")
_STRUCTURED_SUFFIXES = (".json", ".yaml", ".yml")


def load_ignore_file(path: Path) -> list[IgnoreRule]:
    """Rules of the file at `path`, format chosen by suffix (line format unless .json/.yaml/.yml)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read ignore file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"ignore file {path} is not UTF-8 text: {exc.reason}") from exc
    if path.suffix.lower() in _STRUCTURED_SUFFIXES:
        return parse_structured_ignore(text, str(path), yaml=path.suffix.lower() != ".json")
    return parse_ignore_lines(text, str(path))


def parse_ignore_lines(text: str, name: str) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    comments: list[str] = []
    after_rule = False
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line:
            comments, after_rule = [], False
            continue
        if line.startswith("#"):
            if after_rule:
                comments, after_rule = [], False
            if note := line.lstrip("#").strip():
                comments.append(note)
            continue
        reason = " ".join(comments) or None
        if found := _INLINE_COMMENT.search(line):
            reason = found.group("text").strip() or reason
            line = line[: found.start()].strip()
        rules.append(_parse_rule(line, f"{name}:{number}", reason))
        after_rule = True
    return rules


def _parse_rule(line: str, origin: str, reason: str | None) -> IgnoreRule:
    first, *rest = line.split()
    if first.lower().startswith(("pkg:", "exp:")) or not _ID.fullmatch(first):
        raise InputError(f"{origin}: expected a vulnerability id first, got {first!r}")
    packages: list[PurlPattern] = []
    expires: date | None = None
    for token in rest:
        if token.startswith("pkg:"):
            try:
                packages.append(PurlPattern.parse(token))
            except ValueError as exc:
                raise InputError(f"{origin}: {exc}") from None
        elif token.startswith("exp:"):
            if expires is not None:
                raise InputError(f"{origin}: more than one exp: date")
            expires = _parse_date(token.removeprefix("exp:"), origin)
        else:
            raise InputError(
                f"{origin}: unexpected {token!r} after {first}: expected pkg:PURL or exp:YYYY-MM-DD"
            )
    return IgnoreRule(
        vulnerability_id=first, origin=origin, packages=tuple(packages), expires=expires, reason=reason
    )


def _parse_date(value: str, origin: str) -> date:
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InputError(f"{origin}: invalid expiry date {value!r}: expected exp:YYYY-MM-DD")


class _StructuredRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    purls: list[str] = Field(default_factory=list)
    expired_at: date | None = None
    statement: str | None = None


class _StructuredFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vulnerabilities: list[_StructuredRule] = Field(default_factory=list)


def parse_structured_ignore(text: str, name: str, yaml: bool) -> list[IgnoreRule]:
    data = _load_yaml(text, name) if yaml else _load_json(text, name)
    try:
        doc = _StructuredFile.model_validate({} if data is None else data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{name}: {where}: {first['msg']}") from None
    rules: list[IgnoreRule] = []
    for i, entry in enumerate(doc.vulnerabilities):
        origin = f"{name}: vulnerabilities[{i}]"
        if not _ID.fullmatch(entry.id.strip()):
            raise InputError(f"{origin}: invalid vulnerability id {entry.id!r}")
        try:
            packages = tuple(PurlPattern.parse(p) for p in entry.purls)
        except ValueError as exc:
            raise InputError(f"{origin}: {exc}") from None
        rules.append(
            IgnoreRule(
                vulnerability_id=entry.id.strip(),
                origin=origin,
                packages=packages,
                expires=entry.expired_at,
                reason=entry.statement,
            )
        )
    return rules


def _load_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def _load_yaml(text: str, name: str) -> Any:
    """PyYAML is not a runtime dependency of the Lambda package: imported only when asked for."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise InputError(f"{name}: reading YAML needs PyYAML; use the line format or JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise InputError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
