"""Route logic behind the HTTP API's Chalice routes: validate the raw request pieces, call the store,
shape the JSON. app.py only wires routes to these functions and turns errors into responses with
`error_body`, so every rule about parameters and status codes lives (and is tested) here.

Every function takes `(store, path_params, query_params)` as Chalice hands them over (either may
be None), returns `(status, body)` and raises InputError (400) or NotFoundError (404). Unknown
query parameters are ignored; an empty one counts as absent."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import InputError, NotFoundError
from chalicelib.models import SEVERITIES_WORST_FIRST, Severity
from chalicelib.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, Page
from chalicelib.store import ScanStore
from chalicelib.store_models import SignatureRecord

Response = tuple[int, dict[str, Any]]
Params = Mapping[str, str] | None

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
#: CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, DSA-5678-1, RHSA-2024:1234, openSUSE-SU-2024:0001-1, GO-2024-1, ...
VULN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+\-]{1,127}")
#: the OCI distribution spec's repository name grammar (ECR's too), at most 256 characters
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
REGISTRY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_SEVERITY_NAMES = ", ".join(s.value for s in SEVERITIES_WORST_FIRST)

M = TypeVar("M", bound=BaseModel)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cursor: str | None = Field(default=None, max_length=MAX_CURSOR_LENGTH)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class FindingsQuery(PageQuery):
    """`severity` is case-insensitive and may be a comma-separated list (`critical,high`)."""

    severity: list[Severity] | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = [part.strip().upper() for part in value.split(",") if part.strip()]
        known = {s.value for s in Severity}
        if any(n not in known for n in names):
            raise ValueError(f"must be one or more of {_SEVERITY_NAMES}, comma-separated")
        return names or None


class ImagesQuery(PageQuery):
    repository: str
    registry: str | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if len(value) > 256 or not REPOSITORY_RE.fullmatch(value):
            raise ValueError("must be a repository name such as payments/api (lowercase, at most 256)")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and not REGISTRY_RE.fullmatch(value):
            raise ValueError("must be a registry host[:port]")
        return value


def _parse_query(model: type[M], params: Params) -> M:
    present = {k: v for k, v in (params or {}).items() if v not in ("", None)}
    try:
        return model.model_validate(present)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "query"
            msg = "is required" if err["type"] == "missing" else str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise InputError("; ".join(problems)) from None


def _path_param(params: Params, name: str) -> str:
    value = (params or {}).get(name)
    if not value:
        raise InputError(f"{name} is required")
    return unquote(value)  # API Gateway may hand over the segment still percent-encoded


def _digest(params: Params) -> str:
    digest = _path_param(params, "digest")
    if not DIGEST_RE.fullmatch(digest):
        raise InputError("digest must be sha256: followed by 64 lowercase hex digits")
    return digest


def _page_body(page: Page[Any]) -> dict[str, Any]:
    return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}


def get_image(store: ScanStore, path_params: Params, query_params: Params = None) -> Response:
    """GET /images/{digest}: the scan summary (a multi-arch index with its children's)."""
    digest = _digest(path_params)
    record = store.get_image(digest)
    if record is None:
        raise NotFoundError(f"no scan of image {digest}")
    return 200, record.model_dump(mode="json")


def list_findings(store: ScanStore, path_params: Params, query_params: Params = None) -> Response:
    """GET /images/{digest}/findings?severity=&cursor=&limit=: worst first, then by id.

    An index has no findings of its own (each platform is a different image): 400 naming them."""
    digest = _digest(path_params)
    query = _parse_query(FindingsQuery, query_params)
    record = store.get_image(digest)
    if record is None:
        raise NotFoundError(f"no scan of image {digest}")
    if record.kind == "index":
        children = ", ".join(
            f"{c.digest} ({c.platform})" if c.platform else c.digest for c in record.children
        )
        raise InputError(f"{digest} is a multi-arch index; ask for one of its platforms: {children}")
    page = store.list_findings(digest, frozenset(query.severity or ()), query.cursor, query.limit)
    return 200, _page_body(page)


def images_for_vulnerability(store: ScanStore, path_params: Params, query_params: Params = None) -> Response:
    """GET /vulnerabilities/{id}/images?cursor=&limit=: where a CVE (or any of its aliases) is.
    An id nobody has is an empty list, not a 404: we cannot tell unknown from absent."""
    vuln_id = _path_param(path_params, "id")
    if not VULN_ID_RE.fullmatch(vuln_id):
        raise InputError("id must be a vulnerability id such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx")
    query = _parse_query(PageQuery, query_params)
    return 200, _page_body(store.images_for_vulnerability(vuln_id, query.cursor, query.limit))


def list_images(store: ScanStore, path_params: Params = None, query_params: Params = None) -> Response:
    """GET /images?repository=NAME[&registry=HOST]&cursor=&limit=: newest push first. Repository
    names contain '/', hence a query parameter rather than a path segment."""
    query = _parse_query(ImagesQuery, query_params)
    page = store.images_for_repository(query.registry, query.repository, query.cursor, query.limit)
    return 200, _page_body(page)


def list_changes(store: ScanStore, path_params: Params, query_params: Params = None) -> Response:
    """GET /images/{digest}/changes?cursor=&limit=: what re-matching against newer vulnerability
    data changed in this image (new / resolved / changed findings, gate flips), newest first."""
    digest = _digest(path_params)
    query = _parse_query(PageQuery, query_params)
    if store.get_image(digest) is None:
        raise NotFoundError(f"no scan of image {digest}")
    return 200, _page_body(store.list_changes(digest, query.cursor, query.limit))


SignatureCheck = Callable[[SignatureRecord], tuple[bool | None, str | None]]
"""(verified, problem) of one stored signature, checked against the registry and the key: True /
False, or None with the reason when it could not be checked (registry or KMS unreachable)."""


def get_signature(
    store: ScanStore, check: SignatureCheck, path_params: Params, query_params: Params = None
) -> Response:
    """GET /images/{digest}/signature: every signature Lifeguard put on the image (key, time,
    verdict, flagged when the image failed its gate after it was signed), each re-verified now
    against the `.sig` manifest in the registry and the key's public key."""
    digest = _digest(path_params)
    records = store.get_signatures(digest)
    if not records:
        raise NotFoundError(f"no signature recorded for image {digest}")
    signatures = []
    for record in sorted(records, key=lambda r: r.signed_at, reverse=True):
        verified, problem = check(record)
        signatures.append(
            {**record.model_dump(mode="json"), "verified": verified, "verification_error": problem}
        )
    return 200, {"digest": digest, "signed": any(s["verified"] for s in signatures), "signatures": signatures}


def error_body(exc: BaseException) -> Response:
    """The JSON error for an exception. Anything but a caller's mistake is a 500 with a generic
    message: internals (table names, stack details) never reach the client; log `exc` instead."""
    if isinstance(exc, InputError):
        return 400, {"error": {"code": exc.code, "message": str(exc) or "bad request"}}
    if isinstance(exc, NotFoundError):
        return 404, {"error": {"code": exc.code, "message": str(exc) or "not found"}}
    return 500, {"error": {"code": "internal_error", "message": "internal error"}}
