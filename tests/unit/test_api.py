"""The HTTP API's route logic: status codes, bodies and error bodies, against the store on moto."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib import api
from chalicelib.errors import EventError, InputError, LifeguardError, NotFoundError, StoreError
from chalicelib.models import Severity
from chalicelib.store import ScanStore
from tests.unit.test_store import (  # the store's fixtures and builders, shared on purpose
    REGISTRY,
    T0,
    aws,
    ddb,
    dg,
    meta,
    s3,
    scan_of,
    store,
    vuln,
)

__all__ = ["aws", "ddb", "s3", "store"]  # fixtures re-exported for pytest

IMAGE = dg(100)
INDEX = dg(101)
CHILD = dg(102)
UNKNOWN = dg(199)


@pytest.fixture
def loaded(store: ScanStore) -> ScanStore:
    store.put_scan(
        scan_of(
            IMAGE,
            [
                vuln("CVE-2024-0003", "zlib1g", Severity.LOW),
                vuln(
                    "CVE-2024-0001", "openssl", Severity.CRITICAL, aliases=["GHSA-abcd-efgh-ijkl"], cvss=9.8
                ),
                vuln("CVE-2024-0002", "openssl", Severity.HIGH),
                vuln("CVE-2024-0004", "openssl", Severity.MEDIUM),
                vuln("CVE-2024-0005", "openssl", Severity.UNKNOWN),
            ],
            gate="fail",
            reasons=["CRITICAL CVE-2024-0001"],
        ),
        meta("payments/api", tags=["v1"]),
    )
    store.put_scan(scan_of(CHILD, [], platform="linux/arm64"), meta(index_digest=INDEX))
    store.put_index(
        INDEX, [(CHILD, "linux/arm64")], meta("payments/api", T0 + timedelta(hours=1), tags=["v2"])
    )
    return store


def error_of(exc: BaseException) -> tuple[int, str, str]:
    status, body = api.error_body(exc)
    return status, body["error"]["code"], body["error"]["message"]


def call_error(fn: Any, *args: Any) -> tuple[int, str, str]:
    with pytest.raises(LifeguardError) as info:
        fn(*args)
    return error_of(info.value)


DIGEST_MESSAGE = "digest must be sha256: followed by 64 lowercase hex digits"


# --- GET /images/{digest} -----------------------------------------------------------------------


def test_get_image(loaded: ScanStore) -> None:
    status, body = api.get_image(loaded, {"digest": IMAGE})
    assert status == 200
    assert body["digest"] == IMAGE
    assert body["kind"] == "image"
    assert body["repository"] == "payments/api"
    assert body["registry"] == REGISTRY
    assert body["gate"] == "fail"
    assert body["vulnerabilities"] == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1, "UNKNOWN": 1}
    assert body["pushed_at"] == "2024-05-01T12:00:00Z"
    assert body["children"] == []

    status, body = api.get_image(loaded, {"digest": INDEX})
    assert (status, body["kind"], body["gate"], body["tags"]) == (200, "index", "pass", ["v2"])
    assert [(c["digest"], c["platform"], c["image"]["digest"]) for c in body["children"]] == [
        (CHILD, "linux/arm64", CHILD)
    ]
    # percent-encoded ':' as API Gateway may pass it
    assert api.get_image(loaded, {"digest": IMAGE.replace(":", "%3A")})[1]["digest"] == IMAGE


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,  # upper-case hex
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "a" * 64,
        "sha512:" + "a" * 64,
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_get_image_rejects_bad_digests(loaded: ScanStore, digest: str) -> None:
    assert call_error(api.get_image, loaded, {"digest": digest}) == (400, "bad_input", DIGEST_MESSAGE)


def test_get_image_missing_param_and_unknown(loaded: ScanStore) -> None:
    assert call_error(api.get_image, loaded, None) == (400, "bad_input", "digest is required")
    assert call_error(api.get_image, loaded, {"digest": UNKNOWN}) == (
        404,
        "not_found",
        f"no scan of image {UNKNOWN}",
    )


# --- GET /images/{digest}/findings --------------------------------------------------------------


def test_findings_worst_first_and_filters(loaded: ScanStore) -> None:
    status, body = api.list_findings(loaded, {"digest": IMAGE}, None)
    assert status == 200
    assert [f["id"] for f in body["items"]] == [
        "CVE-2024-0001",
        "CVE-2024-0002",
        "CVE-2024-0004",
        "CVE-2024-0003",
        "CVE-2024-0005",
    ]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert (first["severity"], first["cvss_score"], first["aliases"]) == (
        "CRITICAL",
        9.8,
        ["GHSA-abcd-efgh-ijkl"],
    )

    _, body = api.list_findings(loaded, {"digest": IMAGE}, {"severity": "high"})
    assert [f["id"] for f in body["items"]] == ["CVE-2024-0002"]
    _, body = api.list_findings(loaded, {"digest": IMAGE}, {"severity": " low , Critical"})
    assert [f["id"] for f in body["items"]] == ["CVE-2024-0001", "CVE-2024-0003"]
    _, body = api.list_findings(loaded, {"digest": IMAGE}, {"severity": "", "limit": "", "unknown": "x"})
    assert len(body["items"]) == 5


def test_findings_pagination_through_the_api(loaded: ScanStore) -> None:
    ids: list[str] = []
    query: dict[str, str] = {"limit": "2"}
    pages = 0
    while True:
        status, body = api.list_findings(loaded, {"digest": IMAGE}, query)
        assert status == 200
        pages += 1
        ids += [f["id"] for f in body["items"]]
        if body["next_cursor"] is None:
            break
        query = {"limit": "2", "cursor": body["next_cursor"]}
    assert pages == 3
    assert ids == ["CVE-2024-0001", "CVE-2024-0002", "CVE-2024-0004", "CVE-2024-0003", "CVE-2024-0005"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"severity": "SEVERE"},
            "severity: must be one or more of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, comma-separated",
        ),
        (
            {"severity": "HIGH,nope"},
            "severity: must be one or more of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, comma-separated",
        ),
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "201"}, "limit: Input should be less than or equal to 200"),
        ({"limit": "ten"}, "limit: Input should be a valid integer, unable to parse string as an integer"),
        ({"cursor": "garbage"}, "invalid cursor"),
        ({"cursor": "x" * 5000}, "cursor: String should have at most 4096 characters"),
    ],
)
def test_findings_bad_query(loaded: ScanStore, query: dict[str, str], message: str) -> None:
    assert call_error(api.list_findings, loaded, {"digest": IMAGE}, query) == (400, "bad_input", message)


def test_findings_bad_digest_unknown_digest_and_index(loaded: ScanStore) -> None:
    assert call_error(api.list_findings, loaded, {"digest": "sha256:abc"}, None) == (
        400,
        "bad_input",
        DIGEST_MESSAGE,
    )
    assert call_error(api.list_findings, loaded, {"digest": UNKNOWN}, {"severity": "HIGH"}) == (
        404,
        "not_found",
        f"no scan of image {UNKNOWN}",
    )
    assert call_error(api.list_findings, loaded, {"digest": INDEX}, None) == (
        400,
        "bad_input",
        f"{INDEX} is a multi-arch index; ask for one of its platforms: {CHILD} (linux/arm64)",
    )


def test_cursor_of_another_image_is_rejected(loaded: ScanStore) -> None:
    _, body = api.list_findings(loaded, {"digest": IMAGE}, {"limit": "1"})
    loaded.put_scan(scan_of(UNKNOWN, [vuln("CVE-2024-0009")]), meta())
    assert call_error(api.list_findings, loaded, {"digest": UNKNOWN}, {"cursor": body["next_cursor"]}) == (
        400,
        "bad_input",
        "invalid cursor",
    )


# --- GET /vulnerabilities/{id}/images -----------------------------------------------------------


def test_images_for_vulnerability(loaded: ScanStore) -> None:
    status, body = api.images_for_vulnerability(loaded, {"id": "CVE-2024-0001"}, None)
    assert status == 200
    assert body == {
        "items": [
            {
                "vulnerability_id": "CVE-2024-0001",
                "aliases": ["GHSA-abcd-efgh-ijkl"],
                "matched_alias": None,
                "digest": IMAGE,
                "index_digest": None,
                "registry": REGISTRY,
                "repository": "payments/api",
                "package": "openssl",
                "ecosystem": "Debian:12",
                "installed_version": "3.0.11-1~deb12u1",
                "fixed_version": "3.0.13-1~deb12u1",
                "severity": "CRITICAL",
                "cvss_score": 9.8,
                "path": "var/lib/dpkg/status",
            }
        ],
        "next_cursor": None,
    }
    _, body = api.images_for_vulnerability(loaded, {"id": "GHSA-abcd-efgh-ijkl"}, {"limit": "1"})
    assert [(i["digest"], i["matched_alias"]) for i in body["items"]] == [(IMAGE, "GHSA-abcd-efgh-ijkl")]
    assert api.images_for_vulnerability(loaded, {"id": "CVE-1999-0001"}, None) == (
        200,
        {"items": [], "next_cursor": None},
    )
    assert api.images_for_vulnerability(loaded, {"id": "RHSA-2024:1234"}, None)[0] == 200


@pytest.mark.parametrize(
    "vuln_id", ["C", "CVE 2024 1", "../../etc/passwd", "A" * 129, "-CVE-1", "CVE-2024-1;drop"]
)
def test_images_for_vulnerability_rejects_bad_ids(loaded: ScanStore, vuln_id: str) -> None:
    assert call_error(api.images_for_vulnerability, loaded, {"id": vuln_id}, None) == (
        400,
        "bad_input",
        "id must be a vulnerability id such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx",
    )


def test_images_for_vulnerability_bad_paging(loaded: ScanStore) -> None:
    assert call_error(api.images_for_vulnerability, loaded, {"id": "CVE-2024-0001"}, {"limit": "500"}) == (
        400,
        "bad_input",
        "limit: Input should be less than or equal to 200",
    )
    assert call_error(api.images_for_vulnerability, loaded, {"id": "CVE-2024-0001"}, {"cursor": "e30"}) == (
        400,
        "bad_input",
        "invalid cursor",
    )


# --- GET /images?repository= --------------------------------------------------------------------


def test_list_images(loaded: ScanStore) -> None:
    status, body = api.list_images(loaded, None, {"repository": "payments/api", "registry": REGISTRY})
    assert status == 200
    assert [(i["digest"], i["kind"], i["tags"]) for i in body["items"]] == [
        (INDEX, "index", ["v2"]),
        (IMAGE, "image", ["v1"]),
    ]
    assert body["items"][1]["pushed_at"] == "2024-05-01T12:00:00Z"
    _, page1 = api.list_images(loaded, None, {"repository": "payments/api", "limit": "1"})
    assert [i["digest"] for i in page1["items"]] == [INDEX]
    _, page2 = api.list_images(
        loaded, None, {"repository": "payments/api", "limit": "1", "cursor": page1["next_cursor"]}
    )
    assert ([i["digest"] for i in page2["items"]], page2["next_cursor"]) == ([IMAGE], None)
    assert api.list_images(loaded, None, {"repository": "payments/api", "registry": "ghcr.io"}) == (
        200,
        {"items": [], "next_cursor": None},
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (None, "repository: is required"),
        ({}, "repository: is required"),
        ({"repository": ""}, "repository: is required"),
        ({"registry": REGISTRY}, "repository: is required"),
        (
            {"repository": "Payments/API"},
            "repository: must be a repository name such as payments/api (lowercase, at most 256)",
        ),
        (
            {"repository": "payments//api"},
            "repository: must be a repository name such as payments/api (lowercase, at most 256)",
        ),
        (
            {"repository": "a" * 257},
            "repository: must be a repository name such as payments/api (lowercase, at most 256)",
        ),
        (
            {"repository": "payments/api", "registry": "https://ghcr.io"},
            "registry: must be a registry host[:port]",
        ),
        ({"repository": "payments/api", "limit": "0"}, "limit: Input should be greater than or equal to 1"),
    ],
)
def test_list_images_bad_query(loaded: ScanStore, query: dict[str, str] | None, message: str) -> None:
    assert call_error(api.list_images, loaded, None, query) == (400, "bad_input", message)


def test_list_images_cursor_bound_to_registry_choice(loaded: ScanStore) -> None:
    _, page = api.list_images(loaded, None, {"repository": "payments/api", "limit": "1"})
    query = {"repository": "payments/api", "registry": REGISTRY, "cursor": page["next_cursor"]}
    assert call_error(api.list_images, loaded, None, query) == (400, "bad_input", "invalid cursor")


# --- error bodies -------------------------------------------------------------------------------


def test_error_body() -> None:
    assert api.error_body(InputError("limit must be an integer")) == (
        400,
        {"error": {"code": "bad_input", "message": "limit must be an integer"}},
    )
    assert api.error_body(EventError("bad shape")) == (
        400,
        {"error": {"code": "bad_event", "message": "bad shape"}},
    )
    assert api.error_body(NotFoundError("no scan of image x")) == (
        404,
        {"error": {"code": "not_found", "message": "no scan of image x"}},
    )
    internal = (500, {"error": {"code": "internal_error", "message": "internal error"}})
    assert api.error_body(StoreError("writes to table lifeguard-prod still unprocessed")) == internal
    assert api.error_body(RuntimeError("arn:aws:dynamodb:us-east-1:123456789012:table/secret")) == internal
    assert api.error_body(KeyError("PK")) == internal
