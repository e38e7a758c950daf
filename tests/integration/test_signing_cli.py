"""`sign` / `verify` end to end: the CLI entry point against the real local registry (ECR-style
Basic auth, reached through the ECR host's mirror) and moto's KMS over HTTP. What the registry
serves is read back with plain HTTP and checked by the independent verifier of
tests/unit/test_signing.py (cryptography + the KMS public key only)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3

from chalicelib import runtime
from chalicelib.cli import main
from chalicelib.ecr_auth import ecr_credentials_provider
from chalicelib.image.registry import RegistryClient
from chalicelib.local.aws import ecr_host
from chalicelib.signing.kms import KmsSigner
from chalicelib.signing.service import sign_image
from tests.integration.conftest import ECR_PASSWORD, Stack
from tests.unit.test_signing import independent_verify_attestations, independent_verify_signatures

pytestmark = pytest.mark.integration

KEY = "awskms:///alias/lifeguard-it"
OTHER_KEY = "awskms:///alias/lifeguard-it-other"
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def keys(stack: Stack) -> dict[str, bytes]:
    """Two P-256 signing keys in moto's KMS (over HTTP); their public keys as DER."""
    kms = runtime.client("kms")
    der = {}
    for uri in (KEY, OTHER_KEY):
        alias = uri.removeprefix("awskms:///")
        key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        der[uri] = kms.get_public_key(KeyId=alias)["PublicKey"]
    return der


@pytest.fixture(scope="module")
def pushed(stack: Stack, sample: tuple[Path, str]) -> tuple[str, str]:
    layout, digest = sample
    assert stack.push(layout, "signing/app", "v1") == digest
    assert stack.push(layout, "signing/unsigned", "v1") == digest
    return f"registry:{ecr_host()}/signing/app:v1", digest


class Raw:
    """Plain HTTP reads from the local registry (Basic auth as ECR answers it), nothing of ours."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"http://{stack.registry.authority}/v2"
        token = base64.b64encode(f"AWS:{ECR_PASSWORD}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": ACCEPT}
        self.http = urllib3.PoolManager()

    def get(self, path: str) -> urllib3.BaseHTTPResponse:
        return self.http.request("GET", f"{self.base}/{path}", headers=self.headers)

    def manifest(self, repo: str, ref: str) -> dict[str, Any]:
        response = self.get(f"{repo}/manifests/{ref}")
        assert response.status == 200, (ref, response.status)
        return dict(json.loads(response.data))

    def blobs(self, repo: str) -> Callable[[str], bytes]:
        return lambda digest: bytes(self.get(f"{repo}/blobs/{digest}").data)


def _tag(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + "." + suffix


def test_sign_twice_and_verify(
    stack: Stack, pushed: tuple[str, str], keys: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, digest = pushed
    raw = Raw(stack)
    assert main(["sign", ref, "--key", KEY]) == 0
    first = raw.manifest("signing/app", _tag(digest, "sig"))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(
        f"signed {ecr_host()}/signing/app@{digest}: {_tag(digest, 'sig')} sha256:"
    )
    manifest_digest = out[0].rsplit(" ", 1)[1]
    assert (
        raw.get(f"signing/app/manifests/{_tag(digest, 'sig')}").headers["Docker-Content-Digest"]
        == manifest_digest
    )
    (payload,) = independent_verify_signatures(first, raw.blobs("signing/app"), keys[KEY], digest)
    assert payload["critical"]["identity"] == {"docker-reference": f"{ecr_host()}/signing/app"}
    assert payload["optional"] is None

    assert (
        main(["sign", f"{ecr_host()}/signing/app@{digest}", "--key", KEY]) == 0
    )  # prefix optional, by digest
    second = raw.manifest("signing/app", _tag(digest, "sig"))
    assert len(second["layers"]) == 2 and second["layers"][0] == first["layers"][0]
    assert len(independent_verify_signatures(second, raw.blobs("signing/app"), keys[KEY], digest)) == 2
    assert independent_verify_signatures(second, raw.blobs("signing/app"), keys[OTHER_KEY], digest) == []
    capsys.readouterr()

    assert main(["verify", ref, "--key", KEY]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"verified: {ecr_host()}/signing/app@{digest}: 2 of 2 signatures valid for key {KEY}"
    ]
    assert main(["verify", ref, "--key", OTHER_KEY]) == 1
    report = capsys.readouterr().out.splitlines()
    assert (
        report[0]
        == f"not verified: {ecr_host()}/signing/app@{digest}: 0 of 2 signatures valid for key {OTHER_KEY}"
    )
    assert report[1:] == [f"  signature {i}: signature does not verify with the key" for i in (1, 2)]


def test_verify_unsigned_and_errors(
    stack: Stack, pushed: tuple[str, str], keys: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _, digest = pushed
    unsigned = f"{ecr_host()}/signing/unsigned:v1"
    assert main(["verify", unsigned, "--key", KEY]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"not verified: {ecr_host()}/signing/unsigned@{digest}: 0 of 0 signatures valid for key {KEY}",
        f"  no signatures: signing/unsigned:{_tag(digest, 'sig')} does not exist",
    ]
    assert main(["verify", "registry:Bad Ref", "--key", KEY]) == 2
    assert capsys.readouterr().err == (
        "lifeguard: error: bad repository name in image reference 'registry:Bad Ref': 'library/Bad Ref' "
        "(lowercase letters, digits and . _ - separators, components joined by /)\n"
    )
    assert main(["verify", f"{ecr_host()}/signing/app:missing", "--key", KEY]) == 2
    assert capsys.readouterr().err == f"lifeguard: error: {ecr_host()}/signing/app:missing does not exist\n"
    assert main(["sign", "registry:evil.example/x:1", "--key", KEY]) == 2
    assert "registry 'evil.example' is not allowed" in capsys.readouterr().err
    assert main(["sign", unsigned, "--key", "awskms:///alias/nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "lifeguard: error: KMS GetPublicKey with key awskms:///alias/nope failed: NotFoundException"
    )
    assert main(["verify", unsigned, "--key", "alias/x"]) == 2
    assert (
        capsys.readouterr().err
        == "lifeguard: error: --key 'alias/x' is neither an awskms:// URI nor a PEM public key file\n"
    )


def test_sign_with_attestation(
    stack: Stack,
    sample: tuple[Path, str],
    keys: dict[str, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digest = sample[1]
    ref = f"{ecr_host()}/signing/attested:v1"
    stack.push(sample[0], "signing/attested", "v1")
    scan = small_scan(digest)
    scan_file = tmp_path / "scan.json"
    scan_file.write_text(json.dumps(scan))
    assert main(["sign", ref, "--key", KEY, "--attest", str(scan_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(
        f"attested {ecr_host()}/signing/attested@{digest}: {_tag(digest, 'att')} sha256:"
    )
    raw = Raw(stack)
    att = raw.manifest("signing/attested", _tag(digest, "att"))
    (statement,) = independent_verify_attestations(att, raw.blobs("signing/attested"), keys[KEY], digest)
    assert statement["predicateType"] == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert statement["subject"][0]["name"] == f"{ecr_host()}/signing/attested"
    assert statement["predicate"]["scanner"]["result"]["image"]["digest"] == digest
    assert statement["predicate"]["scanner"]["db"]["version"] == "osv-test-1"
    assert independent_verify_attestations(att, raw.blobs("signing/attested"), keys[OTHER_KEY], digest) == []
    sig = raw.manifest("signing/attested", _tag(digest, "sig"))
    (payload,) = independent_verify_signatures(sig, raw.blobs("signing/attested"), keys[KEY], digest)
    assert {k: v for k, v in payload["optional"].items() if k != "lifeguard.scan-id"} == {
        "lifeguard.verdict": "pass",
        "lifeguard.db-version": "osv-test-1",
        "lifeguard.vulnerabilities.critical": "0",
        "lifeguard.vulnerabilities.high": "0",
        "lifeguard.vulnerabilities.medium": "0",
        "lifeguard.vulnerabilities.low": "0",
        "lifeguard.vulnerabilities.unknown": "0",
    }
    assert main(["verify", ref, "--key", KEY]) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[1]
        .startswith("  lifeguard.db-version=osv-test-1 lifeguard.scan-id=")
    )
    # a scan of another image is refused before anything is signed
    scan_file.write_text(json.dumps(small_scan("sha256:" + "0" * 64)))
    assert main(["sign", ref, "--key", KEY, "--attest", str(scan_file)]) == 2
    assert (
        capsys.readouterr().err
        == f"lifeguard: error: {scan_file} is a scan of sha256:{'0' * 64}, not of {digest}\n"
    )


def test_chunked_upload_to_the_real_registry(
    stack: Stack, pushed: tuple[str, str], sample: tuple[Path, str], keys: dict[str, bytes]
) -> None:
    """A small chunk size forces POST + PATCH... + PUT for the attestation envelope."""
    _, digest = pushed
    sent: list[str] = []

    class Recording(urllib3.PoolManager):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> urllib3.BaseHTTPResponse:
            sent.append(method)
            return super().request(method, url, *args, **kwargs)

    stack.push(sample[0], "signing/chunked", "v1")
    credentials = ecr_credentials_provider(lambda region: runtime.client("ecr", region))
    client = RegistryClient(ecr_host(), runtime.registry_config(), credentials, pool=Recording())
    signer = KmsSigner(runtime.client("kms"), KEY)
    predicate = {
        "scanner": {
            "uri": "u",
            "version": "1",
            "db": {"uri": "", "version": "v"},
            "result": {"pad": "x" * 2000},
        }
    }
    result = sign_image(
        client,
        "signing/chunked",
        digest,
        f"{ecr_host()}/signing/chunked",
        signer,
        attestation=predicate,
        chunk_size=512,
    )
    raw = Raw(stack)
    att = raw.manifest("signing/chunked", _tag(digest, "att"))
    (layer,) = att["layers"]
    assert sent.count("PATCH") == math.ceil(layer["size"] / 512)
    assert layer["size"] > 2048
    (statement,) = independent_verify_attestations(att, raw.blobs("signing/chunked"), keys[KEY], digest)
    assert statement["predicate"] == predicate
    assert result.key_id is not None and result.key_id.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert (
        result.attestation_manifest_digest
        == raw.get(f"signing/chunked/manifests/{_tag(digest, 'att')}").headers["Docker-Content-Digest"]
    )


def small_scan(digest: str) -> dict[str, Any]:
    """A scan result small enough that its DSSE envelope's PAE stays under 4,096 bytes: moto signs
    RAW messages right but DIGEST ones wrong (the DIGEST path is unit-tested on a Stubber)."""
    return {
        "image": {
            "digest": digest,
            "config_digest": "sha256:" + "c" * 64,
            "os": {"family": "debian", "version": "12"},
        },
        "summary": {"packages": 3, "gate": "pass", "db_version": "osv-test-1", "scan_seconds": 0.5},
    }
