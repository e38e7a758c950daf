"""OpenVEX documents (v0.2.0, and the older v0.0.x shapes still in circulation) -> VexStatement.

Validated with pydantic; anything malformed or incomplete is an InputError naming the file and
the place in it. Statements must be complete as the spec asks: a vulnerability, at least one
product, a status, a timestamp (their own or the document's), and for `not_affected` a
justification or an impact statement. Older documents give `vulnerability` as a string, products
and subcomponents as lists of purl strings, and subcomponents on the statement itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InputError
from chalicelib.suppress.purl_match import PurlPattern
from chalicelib.suppress.rules import VexProduct, VexStatement, VexStatus, normalize_id

CONTEXT_PREFIX = "https://openvex.dev/ns"
Justification = Literal[
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
]


class _Model(BaseModel):
    """Unknown fields are allowed (the format grows); the ones we read are checked."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Component(_Model):
    id: str | None = Field(default=None, alias="@id")
    identifiers: dict[str, str] = Field(default_factory=dict)
    hashes: dict[str, str] = Field(default_factory=dict)


class _Product(_Component):
    subcomponents: list[_Component | str] = Field(default_factory=list)


class _Vulnerability(_Model):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)


class _Statement(_Model):
    vulnerability: _Vulnerability | str
    products: list[_Product | str] = Field(default_factory=list)
    #: v0.0.x: subcomponents on the statement, for every product
    subcomponents: list[_Component | str] = Field(default_factory=list)
    status: VexStatus
    justification: Justification | None = None
    impact_statement: str | None = None
    action_statement: str | None = None
    status_notes: str | None = None
    timestamp: datetime | None = None


class _Document(_Model):
    context: str = Field(alias="@context")
    id: str | None = Field(default=None, alias="@id")
    timestamp: datetime | None = None
    statements: list[_Statement]


def load_vex(path: Path) -> list[VexStatement]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read VEX document {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"VEX document {path} is not UTF-8 text: {exc.reason}") from exc
    return parse_vex(text, str(path))


def parse_vex(text: str, name: str) -> list[VexStatement]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    context = data.get("@context") if isinstance(data, dict) else None
    if not isinstance(context, str) or not context.startswith(CONTEXT_PREFIX):
        raise InputError(f"{name}: not an OpenVEX document (@context must start with {CONTEXT_PREFIX})")
    try:
        doc = _Document.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # union members show up in the location as `_Product` / `str`: not what a person wrote
        where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("_") and p != "str")
        raise InputError(f"{name}: invalid OpenVEX document: {where}: {first['msg']}") from None
    label = f"{name} ({doc.id})" if doc.id else name
    return [_statement(s, i, doc, name, label) for i, s in enumerate(doc.statements)]


def _statement(raw: _Statement, i: int, doc: _Document, name: str, label: str) -> VexStatement:
    where = f"{name}: statements[{i}]"
    if isinstance(raw.vulnerability, str):
        vuln_name, aliases = raw.vulnerability.strip(), []
        if not vuln_name:
            raise InputError(f"{where}: empty vulnerability")
    else:
        vuln_name, aliases = raw.vulnerability.name.strip(), raw.vulnerability.aliases
    if not raw.products:
        raise InputError(f"{where}: a statement must name at least one product")
    timestamp = raw.timestamp or doc.timestamp
    if timestamp is None:
        raise InputError(f"{where}: no timestamp on the statement or the document")
    if raw.status == "not_affected" and not (raw.justification or raw.impact_statement):
        raise InputError(f"{where}: not_affected needs a justification or an impact_statement")
    try:
        shared = tuple(_pattern(c) for c in raw.subcomponents)
        products = tuple(_product(p, shared) for p in raw.products)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    return VexStatement(
        vulnerability=vuln_name,
        ids=frozenset(normalize_id(v) for v in (vuln_name, *aliases) if v.strip()),
        products=products,
        status=raw.status,
        timestamp=timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC),
        origin=f"{label} statements[{i}]",
        justification=raw.justification,
        impact_statement=raw.impact_statement,
        action_statement=raw.action_statement,
        status_notes=raw.status_notes,
    )


def _product(raw: _Product | str, shared: tuple[PurlPattern | None, ...]) -> VexProduct:
    if isinstance(raw, str):
        raw = _Product.model_validate({"@id": raw})
    subcomponents = (*shared, *(_pattern(c) for c in raw.subcomponents))
    purl = _pattern(raw)
    digests = {f"sha256:{h.lower()}" for k, h in raw.hashes.items() if k.lower() in ("sha-256", "sha256")}
    if purl is not None and purl.type == "oci":
        if purl.version and purl.version.startswith("sha256:"):
            digests.add(purl.version.lower())
        purl = None
    return VexProduct(
        image_digests=frozenset(digests),
        purl=purl,
        subcomponents=tuple(p for p in subcomponents if p is not None),
        narrowed=bool(subcomponents),
    )


def _pattern(raw: _Component | str) -> PurlPattern | None:
    """The component's purl (its `@id` when that is a purl, else `identifiers.purl`); None when it
    is named only otherwise (CPE, plain IRI): such a component never matches a package."""
    if isinstance(raw, str):
        text: str | None = raw
    elif raw.id and raw.id.startswith("pkg:"):
        text = raw.id
    else:
        text = raw.identifiers.get("purl")
    if not text or not text.startswith("pkg:"):
        return None
    return PurlPattern.parse(text)
