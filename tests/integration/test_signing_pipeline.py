"""The automatic path: an ECR push that passes its gate is signed by the Lambda with the KMS key in
`LIFEGUARD_SIGNING_KEY` (cosign layout in the same repository, the scan as a vuln attestation), the
signature is recorded and audited, and `GET /images/{digest}/signature` re-verifies it. An image
that fails its gate is never signed. Real parts: moto server (KMS, DynamoDB), docker-registry with
ECR auth, the Chalice app; the registry's bytes are checked by the independent verifier."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import handlers, runtime
from chalicelib.local.aws import ecr_host, ecr_push_event
from tests.integration.conftest import Stack
from tests.integration.test_signing_cli import Raw
from tests.unit.test_signing import independent_verify_attestations, independent_verify_signatures

pytestmark = pytest.mark.integration

KEY = "awskms:///alias/lifeguard-pipeline"
VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"


def _tag(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + "." + suffix


@pytest.fixture(scope="module")
def signing_key(stack: Stack) -> Iterator[bytes]:
    """A P-256 key in moto's KMS named by LIFEGUARD_SIGNING_KEY for this module; its public DER."""
    kms = runtime.client("kms")
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=KEY.removeprefix("awskms:///"), TargetKeyId=key_id)
    der = bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
    os.environ["LIFEGUARD_SIGNING_KEY"] = KEY
    runtime.reset()
    handlers.reset()
    try:
        yield der
    finally:
        del os.environ["LIFEGUARD_SIGNING_KEY"]
        runtime.reset()
        handlers.reset()


def _get(client: Client, path: str) -> tuple[int, Any]:
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def test_a_passing_push_is_signed_attested_recorded_and_reverified(
    stack: Stack, chalice_client: Client, signing_key: bytes, sample: tuple[Path, str]
) -> None:
    layout, digest = sample
    assert stack.push(layout, "trust/app", "1.0") == digest
    result = chalice_client.lambda_.invoke(
        "on_ecr_image_action", ecr_push_event("trust/app", digest, "1.0")
    ).payload
    assert result["status"] == "scanned" and [i["gate"] for i in result["images"]] == ["pass"]

    raw = Raw(stack)
    sig = raw.manifest("trust/app", _tag(digest, "sig"))
    (payload,) = independent_verify_signatures(sig, raw.blobs("trust/app"), signing_key, digest)
    assert payload["critical"]["identity"] == {"docker-reference": f"{ecr_host()}/trust/app"}
    optional = payload["optional"]
    assert optional["lifeguard.verdict"] == "pass"
    assert (optional["lifeguard.vulnerabilities.critical"], optional["lifeguard.vulnerabilities.high"]) == (
        "3",
        "6",
    )
    assert optional["lifeguard.db-version"] == runtime.vuln_index().version

    att = raw.manifest("trust/app", _tag(digest, "att"))
    (statement,) = independent_verify_attestations(att, raw.blobs("trust/app"), signing_key, digest)
    assert statement["predicateType"] == VULN_PREDICATE
    result_json = statement["predicate"]["scanner"]["result"]
    assert result_json["image"]["digest"] == digest and len(result_json["vulnerabilities"]) == 13

    (record,) = stack.store.get_signatures(digest)
    assert (record.key, record.verdict, record.signer, record.repository) == (
        KEY,
        "pass",
        "lifeguard",
        "trust/app",
    )
    assert record.key_id is not None and record.key_id.startswith("arn:aws:kms:")
    audits = stack.store.list_audit(datetime.now(UTC).date(), limit=200).items
    assert [(a.action, a.outcome) for a in audits if a.target == f"{ecr_host()}/trust/app@{digest}"] == [
        ("sign", "signed")
    ]

    status, body = _get(chalice_client, f"/images/{digest}/signature")
    assert status == 200
    assert body["signed"] is True
    (reported,) = body["signatures"]
    assert (reported["key"], reported["verdict"], reported["verified"], reported["flagged"]) == (
        KEY,
        "pass",
        True,
        False,
    )
    status, body = _get(chalice_client, "/images/sha256:" + "0" * 64 + "/signature")
    assert (status, body["error"]["code"]) == (404, "not_found")
