"""sign_image / verify_image against an in-memory OCI registry (a fake urllib3 pool behind the
real RegistryClient): `.sig`/`.att` manifests, append semantics, chunked blobs, and the OCI 1.1
referrers variant (`subject` + `artifactType`), which the local registry 2.8.2 cannot serve."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import urllib3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from moto import mock_aws

from chalicelib.errors import NotFoundError
from chalicelib.image.registry import RegistryClient
from chalicelib.image.registry_config import RegistryConfig
from chalicelib.signing.kms import KmsSigner
from chalicelib.signing.service import sign_image, verify_image
from tests.unit.test_signing import KEY_ARN, independent_verify_attestations, independent_verify_signatures

HOST = "registry.example:5000"
REPO = "team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


#: what the fake answers: status, body, headers
Answer = tuple[int, bytes, dict[str, str]]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    """Just enough of the distribution API: manifests by tag/digest, blobs (monolithic and
    chunked uploads), and optionally `GET /v2/<name>/referrers/<digest>`."""

    referrers: bool = False
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: Any = None, **kw: Any
    ) -> Answer:
        parts = urlsplit(url)
        path = parts.path.removeprefix("/v2/")
        self.requests.append((method, path))
        data = body if isinstance(body, bytes) else b""
        if "/blobs/uploads/" in path:
            return self._upload(method, path, parse_qs(parts.query), data)
        if "/manifests/" in path:
            repo, _, ref = path.partition("/manifests/")
            return self._manifest(method, repo, ref, data, headers)
        if "/blobs/" in path:
            _, _, digest = path.partition("/blobs/")
            if digest not in self.blobs:
                return _response(404)
            return _response(200, b"" if method == "HEAD" else self.blobs[digest])
        if "/referrers/" in path and self.referrers:
            repo, _, subject = path.partition("/referrers/")
            found = []
            for (r, ref), (raw, media_type) in self.manifests.items():
                doc = json.loads(raw)
                if (
                    r == repo
                    and ref.startswith("sha256:")
                    and doc.get("subject", {}).get("digest") == subject
                ):
                    found.append(
                        {
                            "mediaType": media_type,
                            "digest": ref,
                            "size": len(raw),
                            "artifactType": doc.get("artifactType"),
                        }
                    )
            index = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": found,
            }
            return _response(200, json.dumps(index).encode())
        return _response(404, b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}')

    def _manifest(self, method: str, repo: str, ref: str, data: bytes, headers: dict[str, str]) -> Answer:
        if method == "PUT":
            digest = _digest(data)
            for layer in [json.loads(data)["config"], *json.loads(data)["layers"]]:
                if layer["digest"] not in self.blobs:
                    return _response(400, b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob"}]}')
            self.manifests[(repo, ref)] = self.manifests[(repo, digest)] = (data, headers["Content-Type"])
            return _response(201, headers={"Docker-Content-Digest": digest})
        if (repo, ref) not in self.manifests:
            return _response(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
        raw, media_type = self.manifests[(repo, ref)]
        answer = {"Content-Type": media_type, "Docker-Content-Digest": _digest(raw)}
        return _response(200, b"" if method == "HEAD" else raw, headers=answer)

    def _upload(self, method: str, path: str, query: dict[str, list[str]], data: bytes) -> Answer:
        repo, _, upload = path.partition("/blobs/uploads/")
        if method == "POST":
            upload = str(uuid.uuid4())
            self.uploads[upload] = bytearray()
            return _response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload}"})
        buffer = self.uploads[upload]
        buffer.extend(data)
        if method == "PATCH":
            headers = {"Location": f"/v2/{repo}/blobs/uploads/{upload}", "Range": f"0-{len(buffer) - 1}"}
            return _response(202, headers=headers)
        digest = query["digest"][0]
        if _digest(bytes(buffer)) != digest:
            return _response(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"digest"}]}')
        self.blobs[digest] = bytes(buffer)
        return _response(201, headers={"Docker-Content-Digest": digest})

    def add_image(self) -> str:
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        self.blobs[_digest(config)] = config
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        digest = _digest(manifest)
        self.manifests[(REPO, "v1")] = self.manifests[(REPO, digest)] = (manifest, OCI_MANIFEST)
        return digest

    def manifest(self, ref: str) -> dict[str, Any]:
        return dict(json.loads(self.manifests[(REPO, ref)][0]))


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    return status, body, headers or {}


class _Pool:
    """Adapts FakeRegistry to the PoolManager interface the client uses (preload honoured)."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.HTTPResponse:
        status, body, headers = self.registry.request(method, url, **kwargs)
        return urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers=headers,
            status=status,
            preload_content=kwargs.get("preload_content", True),
            decode_content=False,
        )


def _client(registry: FakeRegistry) -> RegistryClient:
    config = RegistryConfig(allowlist=frozenset({HOST}))
    return RegistryClient(HOST, config, pool=_Pool(registry))  # type: ignore[arg-type]


@pytest.fixture
def kms() -> Iterator[tuple[KmsSigner, bytes]]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key = client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
        client.create_alias(AliasName="alias/unit", TargetKeyId=key["KeyId"])
        yield (
            KmsSigner(client, "awskms:///alias/unit"),
            client.get_public_key(KeyId="alias/unit")["PublicKey"],
        )


def test_sign_appends_and_verifies(kms: tuple[KmsSigner, bytes]) -> None:
    signer, der = kms
    registry = FakeRegistry()
    digest = registry.add_image()
    client = _client(registry)
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    first = sign_image(client, REPO, digest, f"{HOST}/{REPO}", signer, optional={"lifeguard.verdict": "pass"})
    assert first.signature_tag == tag
    assert first.attestation_manifest_digest is None
    one = registry.manifest(tag)
    assert first.signature_manifest_digest == _digest(registry.manifests[(REPO, tag)][0])
    second = sign_image(
        client, REPO, digest, f"{HOST}/{REPO}", signer, optional={"lifeguard.verdict": "fail"}
    )
    two = registry.manifest(tag)
    assert len(one["layers"]) == 1 and len(two["layers"]) == 2
    assert two["layers"][0] == one["layers"][0]  # the first signature is kept as it was
    assert second.signature_manifest_digest != first.signature_manifest_digest
    assert second.payload_sha256 == hashlib.sha256(registry.blobs[two["layers"][1]["digest"]]).hexdigest()
    assert two["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(registry.blobs[two["config"]["digest"]])
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in two["layers"]]
    assert [
        doc["optional"]["lifeguard.verdict"]
        for doc in independent_verify_signatures(two, registry.blobs.__getitem__, der, digest)
    ] == ["pass", "fail"]

    result = verify_image(client, REPO, digest, signer.public_key())
    assert (result.verified, result.signatures, result.valid, result.reasons) == (True, 2, 2, [])
    assert result.optional == {"lifeguard.verdict": "pass"}
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    refused = verify_image(client, REPO, digest, other)
    assert (refused.verified, refused.signatures, refused.valid) == (False, 2, 0)
    assert refused.reasons == [
        "signature 1: signature does not verify with the key",
        "signature 2: signature does not verify with the key",
    ]
    # no referrers API here: nothing was pushed by digest with a subject
    assert not any(path.endswith("/referrers/" + digest) and m != "GET" for m, path in registry.requests)


def test_verify_unsigned_and_tampered(kms: tuple[KmsSigner, bytes]) -> None:
    signer, _ = kms
    registry = FakeRegistry()
    digest = registry.add_image()
    client = _client(registry)
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    unsigned = verify_image(client, REPO, digest, signer.public_key())
    assert (unsigned.verified, unsigned.signatures, unsigned.reasons) == (
        False,
        0,
        [f"no signatures: {REPO}:{tag} does not exist"],
    )
    sign_image(client, REPO, digest, f"{HOST}/{REPO}", signer)
    # a payload for another digest, carrying the valid signature of this one: refused
    manifest = registry.manifest(tag)
    layer = manifest["layers"][0]
    forged = registry.blobs[layer["digest"]].replace(digest.encode(), ("sha256:" + "0" * 64).encode())
    registry.blobs[_digest(forged)] = forged
    manifest["layers"].append({**layer, "digest": _digest(forged), "size": len(forged)})
    registry.manifests[(REPO, tag)] = (json.dumps(manifest).encode(), OCI_MANIFEST)
    result = verify_image(client, REPO, digest, signer.public_key())
    assert (result.verified, result.signatures, result.valid) == (True, 2, 1)
    assert result.reasons == ["signature 2: signature does not verify with the key"]
    assert result.optional is None


def test_sign_refuses_unknown_digest(kms: tuple[KmsSigner, bytes]) -> None:
    signer, _ = kms
    registry = FakeRegistry()
    registry.add_image()
    missing = "sha256:" + "1" * 64
    with pytest.raises(NotFoundError, match=f"{HOST}/{REPO}@{missing} does not exist: nothing signed"):
        sign_image(_client(registry), REPO, missing, f"{HOST}/{REPO}", signer)
    assert not any(method == "PUT" for method, _ in registry.requests)


class LocalKms:
    """A KMS client double with real KMS semantics (RAW: SHA-256 of the message is signed;
    DIGEST: the given digest is signed as is), for attestations above 4,096 bytes, which moto
    signs wrongly (see test_signing.test_moto_digest_quirk_is_caught)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[str] = []

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return {
            "KeyId": KEY_ARN,
            "PublicKey": der,
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        }

    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        self.calls.append(MessageType)
        if MessageType == "DIGEST":
            signature = self.key.sign(Message, ec.ECDSA(Prehashed(hashes.SHA256())))
        else:
            signature = self.key.sign(Message, ec.ECDSA(hashes.SHA256()))
        return {"KeyId": KEY_ARN, "Signature": signature, "SigningAlgorithm": SigningAlgorithm}


def test_attestation_chunked() -> None:
    kms_double = LocalKms()
    signer = KmsSigner(kms_double, "awskms:///alias/unit")
    der = kms_double.get_public_key("alias/unit")["PublicKey"]
    registry = FakeRegistry()
    digest = registry.add_image()
    predicate = {
        "scanner": {
            "uri": "u",
            "version": "1",
            "db": {"uri": "", "version": "v"},
            "result": {"x": "y" * 5000},
        }
    }
    result = sign_image(
        _client(registry), REPO, digest, f"{HOST}/{REPO}", signer, attestation=predicate, chunk_size=1024
    )
    att = registry.manifest("sha256-" + digest.removeprefix("sha256:") + ".att")
    assert result.attestation_manifest_digest == _digest(registry.manifests[(REPO, att_tag(digest))][0])
    (layer,) = att["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"] == {
        "dev.cosignproject.cosign/signature": "",
        "predicateType": "https://cosign.sigstore.dev/attestation/vuln/v1",
    }
    assert layer["size"] > 5000
    assert kms_double.calls == ["RAW", "DIGEST"]  # the payload, then the > 4,096-byte PAE
    (statement,) = independent_verify_attestations(att, registry.blobs.__getitem__, der, digest)
    assert statement["predicate"] == predicate
    assert statement["subject"] == [
        {"name": f"{HOST}/{REPO}", "digest": {"sha256": digest.removeprefix("sha256:")}}
    ]
    patches = sum(1 for method, path in registry.requests if method == "PATCH")
    assert patches == -(-layer["size"] // 1024)  # every 1 KiB chunk of the envelope, nothing else
    envelope = json.loads(registry.blobs[layer["digest"]])
    assert base64.b64decode(envelope["payload"]).startswith(b'{"_type":"https://in-toto.io/Statement/v0.1"')


def att_tag(digest: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + ".att"


def test_referrers_with_subject(kms: tuple[KmsSigner, bytes]) -> None:
    signer, der = kms
    registry = FakeRegistry(referrers=True)
    digest = registry.add_image()
    image_body = registry.manifests[(REPO, digest)][0]
    sign_image(_client(registry), REPO, digest, f"{HOST}/{REPO}", signer, attestation={"scanner": {}})
    referrers = {
        json.loads(raw)["artifactType"]: json.loads(raw)
        for (repo, ref), (raw, _) in registry.manifests.items()
        if ref.startswith("sha256:") and b'"subject"' in raw
    }
    assert sorted(referrers) == [
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.in-toto+json",
    ]
    subject = {"mediaType": OCI_MANIFEST, "size": len(image_body), "digest": digest}
    sig = referrers["application/vnd.dev.cosign.artifact.sig.v1+json"]
    assert sig["subject"] == subject
    assert sig["config"]["mediaType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert sig["layers"] == registry.manifest("sha256-" + digest.removeprefix("sha256:") + ".sig")["layers"]
    assert len(independent_verify_signatures(sig, registry.blobs.__getitem__, der, digest)) == 1
    att = referrers["application/vnd.in-toto+json"]
    assert att["subject"] == subject
    assert att["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "size": 2,
        "digest": _digest(b"{}"),
    }
    assert len(independent_verify_attestations(att, registry.blobs.__getitem__, der, digest)) == 1
    # pushed by digest (no tag), and the referrers API now lists both
    status, listing, _ = registry.request("GET", f"https://{HOST}/v2/{REPO}/referrers/{digest}", headers={})
    assert status == 200
    assert sorted(m["artifactType"] for m in json.loads(listing)["manifests"]) == sorted(referrers)
