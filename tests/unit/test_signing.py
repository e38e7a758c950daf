"""Signing format and KMS: the simple-signing payload's exact bytes, DSSE PAE, key URIs, KMS
message types (RAW on moto, DIGEST on a botocore Stubber that signs like real KMS), and an
independent verifier — written here with `cryptography` only, importing nothing from
chalicelib.signing — that accepts what Lifeguard signs and rejects tampering, another key and
another digest. The integration tests reuse that verifier on what the real registry serves."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from moto import mock_aws

from chalicelib.errors import InputError
from chalicelib.signing import dsse
from chalicelib.signing.errors import KeyUriError, SigningError
from chalicelib.signing.key_uri import parse_key_uri
from chalicelib.signing.kms import KmsSigner, message_type_for
from chalicelib.signing.payload import build_payload, parse_payload

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
REFERENCE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments/api"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"


# --- the independent verifier (cryptography + the KMS public key DER, nothing else) ------------


def independent_verify_signatures(
    manifest: Mapping[str, Any], blob: Callable[[str], bytes], public_der: bytes, digest: str
) -> list[dict[str, Any]]:
    """cosign's checks on a `.sig` manifest: each layer's payload hashes to its descriptor, its
    base64 DER ECDSA signature verifies over the payload (SHA-256), the payload is cosign's and
    names `digest`. Returns the payloads that pass."""
    key = load_der_public_key(public_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    valid = []
    for layer in manifest["layers"]:
        payload = blob(layer["digest"])
        if (
            layer["mediaType"] != SIMPLE_SIGNING
            or "sha256:" + hashlib.sha256(payload).hexdigest() != layer["digest"]
        ):
            continue
        signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        try:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        document = json.loads(payload)
        critical = document["critical"]
        if critical["type"] == "cosign container image signature" and (
            critical["image"]["docker-manifest-digest"] == digest
        ):
            valid.append(document)
    return valid


def independent_verify_attestations(
    manifest: Mapping[str, Any], blob: Callable[[str], bytes], public_der: bytes, digest: str
) -> list[dict[str, Any]]:
    """cosign verify-attestation's checks on a `.att` manifest: a DSSE envelope whose signature
    verifies over PAE(payloadType, payload), an in-toto v0.1 statement about `digest`."""
    key = load_der_public_key(public_der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    statements = []
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if layer["mediaType"] != DSSE_TYPE or "sha256:" + hashlib.sha256(data).hexdigest() != layer["digest"]:
            continue
        envelope = json.loads(data)
        payload = base64.b64decode(envelope["payload"])
        kind = envelope["payloadType"].encode()
        pae = (
            b"DSSEv1 "
            + str(len(kind)).encode()
            + b" "
            + kind
            + b" "
            + str(len(payload)).encode()
            + b" "
            + payload
        )
        for signature in envelope["signatures"]:
            try:
                key.verify(base64.b64decode(signature["sig"]), pae, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            statement = json.loads(payload)
            subject_digests = [f"sha256:{s['digest']['sha256']}" for s in statement["subject"]]
            if (
                envelope["payloadType"] == "application/vnd.in-toto+json"
                and statement["_type"] == "https://in-toto.io/Statement/v0.1"
                and statement["predicateType"] == layer["annotations"]["predicateType"]
                and digest in subject_digests
            ):
                statements.append(statement)
            break
    return statements


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def moto_kms() -> Iterator[tuple[Any, str]]:
    """An in-process moto KMS with an ECC_NIST_P256 signing key behind `alias/lifeguard-test`."""
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
        client.create_alias(AliasName="alias/lifeguard-test", TargetKeyId=key["KeyId"])
        yield client, key["Arn"]


def _der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _stubbed_kms(local_key: ec.EllipticCurvePrivateKey) -> tuple[Any, Stubber]:
    client = boto3.client(
        "kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "get_public_key",
        {
            "KeyId": KEY_ARN,
            "PublicKey": _der(local_key),
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        },
        {"KeyId": "alias/lifeguard-test"},
    )
    return client, stubber


# --- payload -------------------------------------------------------------------------------------


def test_payload_bytes_are_cosigns() -> None:
    payload = build_payload(REFERENCE, DIGEST, {"lifeguard.verdict": "pass", "lifeguard.scan-id": "a<b&c>"})
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"123456789012.dkr.ecr.us-east-1.amazonaws.com/'
        b'payments/api"},"image":{"docker-manifest-digest":"sha256:' + b"ab" * 32 + b'"},"type":"cosign '
        b'container image signature"},"optional":{"lifeguard.scan-id":"a\\u003cb\\u0026c\\u003e",'
        b'"lifeguard.verdict":"pass"}}'
    )
    assert build_payload(REFERENCE, DIGEST).endswith(
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert build_payload(REFERENCE, DIGEST, {"n": "é"}).endswith('"optional":{"n":"é"}}'.encode())


def test_payload_round_trip_and_errors() -> None:
    parsed = parse_payload(build_payload(REFERENCE, DIGEST, {"k": "v"}))
    assert (parsed.digest, parsed.docker_reference, parsed.optional) == (DIGEST, REFERENCE, {"k": "v"})
    with pytest.raises(InputError, match=r"not a simple-signing payload: critical\.image"):
        parse_payload(b'{"critical":{"identity":{"docker-reference":"x"},"type":"t"}}')
    with pytest.raises(InputError, match="more than 4096"):
        build_payload(REFERENCE, DIGEST, {"big": "x" * 5000})
    with pytest.raises(InputError, match="REGISTRY/REPOSITORY"):
        build_payload(f"{REFERENCE}@{DIGEST}", DIGEST)


# --- DSSE ----------------------------------------------------------------------------------------


def test_pae_bytes_exact() -> None:
    # the DSSE specification's own test vector, then the in-toto type cosign uses
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert (
        dsse.pae("application/vnd.in-toto+json", b'{"a":1}')
        == b'DSSEv1 28 application/vnd.in-toto+json 7 {"a":1}'
    )
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_statement_and_envelope() -> None:
    body = dsse.statement(REFERENCE, DIGEST, VULN, {"scanner": {"uri": "u"}})
    assert body == (
        b'{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"' + VULN.encode() + b'","subject":'
        b'[{"name":"' + REFERENCE.encode() + b'","digest":{"sha256":"' + b"ab" * 32 + b'"}}],'
        b'"predicate":{"scanner":{"uri":"u"}}}'
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signed: list[bytes] = []

    def sign(message: bytes) -> bytes:
        signed.append(message)
        return key.sign(message, ec.ECDSA(hashes.SHA256()))

    envelope = json.loads(dsse.envelope(body, sign))
    assert signed == [dsse.pae("application/vnd.in-toto+json", body)]
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["signatures"][0]["keyid"] == ""
    assert base64.b64decode(envelope["payload"]) == body
    assert dsse.verify_envelope(dsse.envelope(body, sign), key.public_key()) == body
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(InputError, match="no DSSE signature verifies"):
        dsse.verify_envelope(dsse.envelope(body, sign), other)


# --- key URIs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "key_id", "endpoint", "region"),
    [
        ("awskms:///alias/lifeguard-signing", "alias/lifeguard-signing", None, None),
        (
            "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
            None,
        ),
        (
            "awskms:///mrk-1234abcd12ab34cd56ef1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            None,
            None,
        ),
        (f"awskms:///{KEY_ARN}", KEY_ARN, None, "us-east-1"),
        (
            "awskms:///arn:aws:kms:eu-west-1:111122223333:alias/sign",
            "arn:aws:kms:eu-west-1:111122223333:alias/sign",
            None,
            "eu-west-1",
        ),
        ("awskms://localhost:4566/alias/x", "alias/x", "localhost:4566", None),
        (f"awskms://kms.example:443/{KEY_ARN}", KEY_ARN, "kms.example:443", "us-east-1"),
    ],
)
def test_key_uri_forms(uri: str, key_id: str, endpoint: str | None, region: str | None) -> None:
    parsed = parse_key_uri(uri)
    assert (parsed.key_id, parsed.endpoint, parsed.region, parsed.uri) == (key_id, endpoint, region, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "alias/x",
        "awskms:///",
        "awskms:///key/abc",
        "gcpkms://projects/p",
        "awskms:///arn:aws:kms:us-east-1:1:key/x",
    ],
)
def test_key_uri_rejects(uri: str) -> None:
    with pytest.raises(KeyUriError, match="not an AWS KMS key URI"):
        parse_key_uri(uri)


# --- KMS message types ---------------------------------------------------------------------------


def test_message_type_boundary() -> None:
    assert message_type_for(b"x" * 4096) == "RAW"
    assert message_type_for(b"x" * 4097) == "DIGEST"


def test_moto_raw_path_verifies_independently(moto_kms: tuple[Any, str]) -> None:
    client, arn = moto_kms
    signer = KmsSigner(client, "awskms:///alias/lifeguard-test")
    payload = build_payload(REFERENCE, DIGEST, {"lifeguard.verdict": "pass"})
    signature = signer.sign(payload)
    assert signer.key_id == arn  # Sign answers the ARN
    public_der = client.get_public_key(KeyId="alias/lifeguard-test")["PublicKey"]
    public = load_der_public_key(public_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, payload + b" ", ec.ECDSA(hashes.SHA256()))
    # a 4,096-byte message is still RAW
    public.verify(signer.sign(b"y" * 4096), b"y" * 4096, ec.ECDSA(hashes.SHA256()))


def test_a_digest_signed_like_unpatched_moto_is_caught() -> None:
    """moto 5.2.5 hashes a DIGEST message again (real KMS does not; chalicelib.local.moto_kms
    patches the local server): a KMS that answers like that is refused by the signer's own check
    instead of a signature nobody can verify being stored."""
    local_key = ec.generate_private_key(ec.SECP256R1())
    message = b"z" * 4097
    digest = hashlib.sha256(message).digest()
    client, stubber = _stubbed_kms(local_key)
    stubber.add_response(
        "sign",
        {"KeyId": KEY_ARN, "Signature": local_key.sign(digest, ec.ECDSA(hashes.SHA256()))},
        {
            "KeyId": "alias/lifeguard-test",
            "Message": digest,
            "MessageType": "DIGEST",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    with (
        stubber,
        pytest.raises(
            SigningError, match=r"signature \(DIGEST\) by key awskms:///alias/lifeguard-test does not"
        ),
    ):
        KmsSigner(client, "awskms:///alias/lifeguard-test").sign(message)


def test_digest_path_signs_the_sha256_like_real_kms() -> None:
    """A Stubber KMS that signs the given digest pre-hashed with a local P-256 key, as real KMS
    does for MessageType=DIGEST: the signature verifies over the whole message."""
    local_key = ec.generate_private_key(ec.SECP256R1())
    message = b"m" * 4097
    digest = hashlib.sha256(message).digest()
    client, stubber = _stubbed_kms(local_key)
    stubber.add_response(
        "sign",
        {
            "KeyId": KEY_ARN,
            "Signature": local_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
        {
            "KeyId": "alias/lifeguard-test",
            "Message": digest,
            "MessageType": "DIGEST",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    with stubber:
        signer = KmsSigner(client, "awskms:///alias/lifeguard-test")
        signature = signer.sign(message)
        stubber.assert_no_pending_responses()
    local_key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert signer.key_id == KEY_ARN


def test_raw_path_on_stub_sends_the_message() -> None:
    local_key = ec.generate_private_key(ec.SECP256R1())
    message = b"r" * 4096
    client, stubber = _stubbed_kms(local_key)
    stubber.add_response(
        "sign",
        {"KeyId": KEY_ARN, "Signature": local_key.sign(message, ec.ECDSA(hashes.SHA256()))},
        {
            "KeyId": "alias/lifeguard-test",
            "Message": message,
            "MessageType": "RAW",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    with stubber:
        KmsSigner(client, "awskms:///alias/lifeguard-test").sign(message)
        stubber.assert_no_pending_responses()


def test_unusable_keys_and_kms_errors(moto_kms: tuple[Any, str]) -> None:
    client, _ = moto_kms
    rsa = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    with pytest.raises(SigningError, match="is RSA_2048 for SIGN_VERIFY; Lifeguard signs with ECC_NIST_P256"):
        KmsSigner(client, f"awskms:///{rsa}").public_key()
    with pytest.raises(
        SigningError, match="KMS GetPublicKey with key awskms:///alias/missing failed: NotFoundException"
    ):
        KmsSigner(client, "awskms:///alias/missing").sign(b"x")


# --- the independent verifier on Lifeguard's output ---------------------------------------------


def test_independent_verifier_accepts_and_rejects(moto_kms: tuple[Any, str]) -> None:
    client, _ = moto_kms
    signer = KmsSigner(client, "awskms:///alias/lifeguard-test")
    payload = build_payload(REFERENCE, DIGEST, {"lifeguard.verdict": "pass"})
    layer_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    manifest = {
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "size": len(payload),
                "digest": layer_digest,
                "annotations": {
                    "dev.cosignproject.cosign/signature": base64.b64encode(signer.sign(payload)).decode()
                },
            }
        ]
    }
    der = client.get_public_key(KeyId="alias/lifeguard-test")["PublicKey"]
    blobs = {layer_digest: payload}
    accepted = independent_verify_signatures(manifest, blobs.__getitem__, der, DIGEST)
    assert [doc["optional"] for doc in accepted] == [{"lifeguard.verdict": "pass"}]
    # another digest
    assert independent_verify_signatures(manifest, blobs.__getitem__, der, OTHER_DIGEST) == []
    # another key
    other = _der(ec.generate_private_key(ec.SECP256R1()))
    assert independent_verify_signatures(manifest, blobs.__getitem__, other, DIGEST) == []
    # a tampered payload, re-described so only the signature can catch it
    tampered = payload.replace(b'"pass"', b'"fail"')
    tampered_digest = "sha256:" + hashlib.sha256(tampered).hexdigest()
    forged = {"layers": [{**manifest["layers"][0], "digest": tampered_digest, "size": len(tampered)}]}
    assert independent_verify_signatures(forged, {tampered_digest: tampered}.__getitem__, der, DIGEST) == []


# --- the CLI's helpers (no network) ------------------------------------------------------------


def test_kms_client_endpoint_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import runtime
    from chalicelib.signing.commands import kms_client

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    runtime.reset()
    try:
        with_endpoint = kms_client(parse_key_uri("awskms://kms.local:4566/alias/x"))
        assert (with_endpoint.meta.endpoint_url, with_endpoint.meta.region_name) == (
            "https://kms.local:4566",
            "us-west-2",
        )
        by_arn = kms_client(parse_key_uri("awskms:///arn:aws:kms:eu-west-1:111122223333:alias/x"))
        assert (by_arn.meta.endpoint_url, by_arn.meta.region_name) == (
            "https://kms.eu-west-1.amazonaws.com",
            "eu-west-1",
        )
    finally:
        runtime.reset()


def test_verify_key_from_pem_file(tmp_path: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from chalicelib.signing.commands import load_public_key

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = tmp_path / "cosign.pub"
    pem.write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    loaded, name = load_public_key(str(pem))
    assert (loaded.public_numbers(), name) == (key.public_numbers(), str(pem))
    pem.write_text("not a key")
    with pytest.raises(InputError, match=r"cosign\.pub: not a PEM public key"):
        load_public_key(str(pem))


def test_scan_claims() -> None:
    from datetime import UTC, datetime

    from chalicelib.signing.claims import load_scan, scan_document_id, scan_optional, vuln_predicate

    data = json.dumps(
        {
            "image": {"digest": DIGEST, "config_digest": OTHER_DIGEST},
            "vulnerabilities": [
                {
                    "id": "CVE-1",
                    "package": "p",
                    "ecosystem": "PyPI",
                    "installed_version": "1",
                    "severity": "HIGH",
                    "path": "p",
                }
            ],
            "summary": {"gate": "fail", "db_version": "v7", "scan_seconds": 2.0},
        }
    ).encode()
    scan, document = load_scan(data, DIGEST, "scan.json")
    assert scan_optional(scan, scan_document_id(data)) == {
        "lifeguard.scan-id": hashlib.sha256(data).hexdigest()[:24],
        "lifeguard.verdict": "fail",
        "lifeguard.db-version": "v7",
        "lifeguard.vulnerabilities.critical": "0",
        "lifeguard.vulnerabilities.high": "1",
        "lifeguard.vulnerabilities.medium": "0",
        "lifeguard.vulnerabilities.low": "0",
        "lifeguard.vulnerabilities.unknown": "0",
    }
    predicate = vuln_predicate(scan, document, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert predicate["metadata"] == {
        "scanStartedOn": "2026-01-02T03:04:03Z",
        "scanFinishedOn": "2026-01-02T03:04:05Z",
    }
    assert predicate["scanner"]["db"] == {"uri": "", "version": "v7"}
    assert predicate["scanner"]["result"]["image"]["digest"] == DIGEST
    with pytest.raises(InputError, match=rf"scan\.json is a scan of {DIGEST}, not of {OTHER_DIGEST}"):
        load_scan(data, OTHER_DIGEST, "scan.json")
    with pytest.raises(
        InputError, match=r"scan\.json is not one `lifeguard scan --format json` result: document"
    ):
        load_scan(b"[]", DIGEST, "scan.json")
