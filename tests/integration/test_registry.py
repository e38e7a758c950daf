"""The registry client against the real CNCF distribution registry on 127.0.0.1 (and small local
stub servers where the registry cannot misbehave on demand: redirects, 503s, tampered bytes)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import shutil
import socket
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from chalicelib.errors import DigestMismatchError, ManifestError, RegistryError, RegistryNotAllowedError
from chalicelib.image import oci
from chalicelib.image.registry import (
    RegistryClient,
    RegistryResponseError,
    push_oci_layout,
    registry_source,
)
from chalicelib.image.registry_config import RegistryConfig
from tests.registry_server import RegistryServer, TokenIssuer

pytestmark = pytest.mark.integration

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


# --- building images by hand -------------------------------------------------------------------


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@dataclass
class Built:
    manifest: bytes
    media_type: str
    config: bytes
    layers: list[tuple[bytes, str]]  # (gzip blob, diff_id)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha(self.config)

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha(b): b for b in [self.config, *(blob for blob, _ in self.layers)]}


def build_image(
    arch: str = "amd64", variant: str | None = None, layers: int = 3, docker: bool = False, tag: str = ""
) -> Built:
    """A small gzip-layered image whose content depends on `arch`, `layers` and `tag`."""
    built_layers = []
    for i in range(layers):
        tar = tar_of({f"etc/layer{i}.txt": f"{arch} {tag} layer {i}\n".encode()})
        built_layers.append((gzip.compress(tar, mtime=0), sha(tar)))
    config_doc: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in built_layers]},
    }
    if variant:
        config_doc["variant"] = variant
    config = json.dumps(config_doc, sort_keys=True).encode()
    media = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media,
        "config": {
            "mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG,
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": oci.DOCKER_LAYER_GZIP if docker else oci.OCI_LAYER_GZIP,
                "digest": sha(blob),
                "size": len(blob),
            }
            for blob, _ in built_layers
        ],
    }
    return Built(json.dumps(manifest, indent=1).encode(), media, config, built_layers)


def index_of(children: list[tuple[Built, str, str | None]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": oci.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {
                        "os": "linux",
                        "architecture": arch,
                        **({"variant": variant} if variant else {}),
                    },
                }
                for child, arch, variant in children
            ],
        }
    ).encode()


def push_image(client: RegistryClient, repo: str, image: Built, tag: str | None = None) -> str:
    for digest, blob in image.blobs.items():
        client.push_blob(repo, blob, digest)
    return client.push_manifest(repo, tag or image.digest, image.manifest, image.media_type)


def write_layout(root: Path, blobs: dict[str, bytes], manifests: list[dict[str, Any]]) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for digest, data in blobs.items():
        (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return root


def image_blobs(image: Built) -> dict[str, bytes]:
    return {**image.blobs, image.digest: image.manifest}


# --- clients -----------------------------------------------------------------------------------


class RecordingPool(urllib3.PoolManager):
    """A PoolManager that records (method, path) of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def urlopen(  # type: ignore[override]  # PoolManager narrows RequestMethods' signature too
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        self.calls.append((method, urllib3.util.parse_url(url).path or ""))
        return super().urlopen(method, url, redirect=redirect, **kw)


def local_config(*authorities: str) -> RegistryConfig:
    return RegistryConfig(allowlist=frozenset(authorities), insecure=frozenset(authorities))


def client_for(server: RegistryServer, **kwargs: Any) -> RegistryClient:
    return RegistryClient(server.authority, local_config(server.authority), **kwargs)


_counter = iter(range(1_000_000))


def unique_repo(prefix: str) -> str:
    return f"{prefix}/r{next(_counter)}"


# --- pull & push against the real registry ----------------------------------------------------


def test_push_then_pull_multilayer_image_by_tag_and_digest(registry_server: RegistryServer) -> None:
    client = client_for(registry_server)
    repo = unique_repo("lifeguard/app")
    image = build_image(tag="multi")
    assert push_image(client, repo, image, "v1") == image.digest

    fetched = client.get_manifest(repo, "v1")
    assert (fetched.digest, fetched.media_type, fetched.body) == (
        image.digest,
        oci.OCI_MANIFEST,
        image.manifest,
    )
    assert client.get_tag_list(repo) == ["v1"]
    assert client.head_manifest(repo, "v1") == image.digest
    assert client.head_manifest(repo, "nope") is None

    source = registry_source(f"registry:{registry_server.authority}/{repo}:v1", config=client.config)
    [resolved] = source.resolve()
    assert resolved.manifest_digest == image.digest
    assert resolved.index_digest is None
    assert resolved.config_digest == image.config_digest
    assert resolved.platform == "linux/amd64"
    assert resolved.reference == f"{registry_server.authority}/{repo}:v1"
    assert resolved.config["config"]["Env"] == ["PATH=/usr/bin"]
    assert [(layer.digest, layer.diff_id, layer.size) for layer in resolved.layers] == [
        (sha(blob), diff, len(blob)) for blob, diff in image.layers
    ]
    for layer, (blob, _) in zip(resolved.layers, image.layers, strict=True):
        with source.open_blob(layer) as stream:
            assert stream.read() == blob

    by_digest = registry_source(f"{registry_server.authority}/{repo}@{image.digest}", config=client.config)
    [again] = by_digest.resolve()
    assert (again.manifest_digest, again.config_digest) == (image.digest, image.config_digest)


def test_docker_schema2_manifest(registry_server: RegistryServer) -> None:
    client = client_for(registry_server)
    repo = unique_repo("lifeguard/docker")
    image = build_image(docker=True, layers=2, tag="docker")
    push_image(client, repo, image, "latest")
    fetched = client.get_manifest(repo, "latest")
    assert (fetched.media_type, fetched.digest) == (oci.DOCKER_MANIFEST, image.digest)
    [resolved] = registry_source(f"{registry_server.authority}/{repo}", config=client.config).resolve()
    assert [layer.media_type for layer in resolved.layers] == [oci.DOCKER_LAYER_GZIP] * 2


def test_two_platform_index_and_platform_selection(registry_server: RegistryServer) -> None:
    client = client_for(registry_server)
    repo = unique_repo("lifeguard/multi")
    amd64, arm64 = build_image("amd64", tag="idx"), build_image("arm64", "v8", layers=2, tag="idx")
    for image in (amd64, arm64):
        push_image(client, repo, image)
    index = index_of([(amd64, "amd64", None), (arm64, "arm64", "v8")])
    index_digest = client.push_manifest(repo, "multi", index, oci.OCI_INDEX)
    assert index_digest == sha(index)
    assert client.get_tag_list(repo) == ["multi"]  # children went by digest
    assert client.get_manifest(repo, "multi").media_type == oci.OCI_INDEX

    source = registry_source(f"{registry_server.authority}/{repo}:multi", config=client.config)
    [default] = source.resolve()
    assert (default.manifest_digest, default.index_digest, default.platform) == (
        amd64.digest,
        index_digest,
        "linux/amd64",
    )
    [arm] = source.resolve(platform="linux/arm64")
    assert (arm.manifest_digest, arm.platform, len(arm.layers)) == (arm64.digest, "linux/arm64/v8", 2)
    assert [i.manifest_digest for i in source.resolve(all_platforms=True)] == [amd64.digest, arm64.digest]
    with pytest.raises(
        ManifestError, match=r"no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8"
    ):
        source.resolve(platform="linux/s390x")
    [pinned] = registry_source(
        f"{registry_server.authority}/{repo}@{index_digest}", config=client.config
    ).resolve(platform="linux/arm64/v8")
    assert pinned.manifest_digest == arm64.digest


def test_chunked_and_monolithic_uploads(registry_server: RegistryServer) -> None:
    pool = RecordingPool()
    client = client_for(registry_server, pool=pool)
    repo = unique_repo("lifeguard/upload")
    data = random.Random(7).randbytes(200_000)
    digest = sha(data)
    base = f"/v2/{repo}/blobs"

    assert client.push_blob(repo, io.BytesIO(data), digest, chunk_size=65_536) is True
    methods = [method for method, _ in pool.calls]
    assert methods == ["HEAD", "POST", "PATCH", "PATCH", "PATCH", "PATCH", "PUT"]
    assert pool.calls[0] == ("HEAD", f"{base}/{digest}")
    assert pool.calls[1] == ("POST", f"{base}/uploads/")
    assert client.get_blob(repo, digest, len(data)) == data

    pool.calls.clear()
    assert client.push_blob(repo, data, digest) is False  # already there: HEAD only
    assert pool.calls == [("HEAD", f"{base}/{digest}")]

    other = random.Random(8).randbytes(50_000)
    pool.calls.clear()
    assert client.push_blob(repo, other, sha(other)) is True
    assert [method for method, _ in pool.calls] == ["HEAD", "POST", "PUT"]
    streamed = random.Random(9).randbytes(30_000)
    assert client.push_blob(repo, io.BytesIO(streamed), sha(streamed), size=len(streamed)) is True
    with client.open_blob(repo, sha(other), len(other)) as stream:
        assert stream.read() == other
    assert client.get_blob(repo, sha(streamed)) == streamed


def test_wrong_digests_are_rejected(registry_server: RegistryServer) -> None:
    pool = RecordingPool()
    client = client_for(registry_server, pool=pool)
    repo = unique_repo("lifeguard/wrong")
    image = build_image(tag="wrong")
    wrong = "sha256:" + "0" * 64

    with pytest.raises(DigestMismatchError, match="manifest to push"):
        client.push_manifest(repo, wrong, image.manifest, image.media_type)
    with pytest.raises(DigestMismatchError):
        client.push_blob(repo, image.config, wrong)
    assert pool.calls == []  # refused before any request

    # A stream is checked by the registry (monolithic) or by us (chunked, upload cancelled).
    with pytest.raises(DigestMismatchError, match="DIGEST_INVALID"):
        client.push_blob(repo, io.BytesIO(image.config), wrong, size=len(image.config))
    pool.calls.clear()
    with pytest.raises(DigestMismatchError, match=f"content digest {image.config_digest} != {wrong}"):
        client.push_blob(repo, io.BytesIO(image.config), wrong, chunk_size=64)
    assert pool.calls[-1][0] == "DELETE"
    assert client.blob_exists(repo, wrong) is False

    # The registry itself refuses a manifest whose blobs it does not have.
    with pytest.raises(RegistryResponseError) as info:
        client.push_manifest(repo, "v1", image.manifest, image.media_type)
    assert info.value.status == 400
    assert "MANIFEST_BLOB_UNKNOWN" in info.value.registry_codes


def test_tampered_storage_is_detected(make_registry: Callable[..., RegistryServer]) -> None:
    server = make_registry()
    client = client_for(server)
    repo = "lifeguard/tamper"
    image = build_image(tag="tamper")
    push_image(client, repo, image, "v1")
    source = registry_source(f"{server.authority}/{repo}:v1", config=client.config)
    [resolved] = source.resolve()

    layer = resolved.layers[1]
    path = server.blob_data_path(layer.digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    with (
        pytest.raises(DigestMismatchError, match=f"!= expected {layer.digest}"),
        source.open_blob(layer) as stream,
    ):
        stream.read(10)  # verification happens when the block ends, after draining
    with source.open_blob(resolved.layers[0]) as stream:
        assert stream.read() == image.layers[0][0]

    config_path = server.blob_data_path(image.config_digest)
    config_path.write_bytes(image.config.replace(b"amd64", b"arm64"))
    with pytest.raises(DigestMismatchError):
        source.resolve()

    manifest_path = server.blob_data_path(image.digest)
    manifest_path.write_bytes(image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(DigestMismatchError):
        client.get_manifest(repo, image.digest)
    with pytest.raises(DigestMismatchError):
        client.get_manifest(repo, "v1")


def test_not_found_errors_carry_code_and_reference(registry_server: RegistryServer) -> None:
    client = client_for(registry_server)
    repo = unique_repo("lifeguard/missing")
    push_image(client, repo, build_image(layers=1, tag="missing"), "v1")
    with pytest.raises(RegistryResponseError) as info:
        client.get_manifest(repo, "nope")
    assert info.value.status == 404
    assert info.value.registry_codes == ["MANIFEST_UNKNOWN"]
    assert f"manifest {registry_server.authority}/{repo}:nope" in str(info.value)
    assert info.value.code == "registry_error"
    with pytest.raises(RegistryResponseError) as unknown:
        client.get_tag_list("lifeguard/never-pushed")
    assert unknown.value.registry_codes == ["NAME_UNKNOWN"]
    with pytest.raises(RegistryResponseError) as blob, client.open_blob(repo, "sha256:" + "1" * 64):
        pass
    assert blob.value.registry_codes == ["BLOB_UNKNOWN"]


def test_tag_list_of_the_real_registry(registry_server: RegistryServer) -> None:
    client = client_for(registry_server)
    repo = unique_repo("lifeguard/tags")
    image = build_image(layers=1, tag="tags")
    for tag in ["c", "a", "b", "d", "e"]:
        push_image(client, repo, image, tag)
    # distribution 2.8 ignores `n` for tag lists and answers in storage order: one page.
    assert sorted(client.get_tag_list(repo)) == ["a", "b", "c", "d", "e"]


# --- configuration: allow-list and mirrors ----------------------------------------------------


def test_allowlist_refusal_opens_no_connection(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    authority = f"127.0.0.1:{listener.getsockname()[1]}"
    config = RegistryConfig(allowlist=frozenset({"ghcr.io"}), insecure=frozenset({authority}))
    pool = RecordingPool()
    try:
        with pytest.raises(RegistryNotAllowedError) as info:
            RegistryClient(authority, config, pool=pool)
        assert str(info.value) == (
            f"registry '{authority}' is not allowed: add it to LIFEGUARD_REGISTRY_ALLOWLIST (or its "
            "account to LIFEGUARD_ACCOUNTS for ECR); Lifeguard did not contact it"
        )
        with pytest.raises(RegistryNotAllowedError):
            registry_source(f"registry:{authority}/app:v1", config=config)
        layout = write_layout(tmp_path / "layout", {}, [])
        with pytest.raises(RegistryNotAllowedError):
            push_oci_layout(layout, f"{authority}/app:v1", config=config)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
        assert pool.calls == []
    finally:
        listener.close()


def test_mirror_routes_ecr_host_to_local_registry(registry_server: RegistryServer) -> None:
    config = RegistryConfig.from_env(
        {
            "LIFEGUARD_ACCOUNTS": "123456789012",
            "AWS_REGION": "us-east-1",
            "LIFEGUARD_INSECURE_REGISTRIES": registry_server.authority,
            "LIFEGUARD_REGISTRY_MIRRORS": f"{ECR_HOST}={registry_server.authority}",
        }
    )
    asked: list[str] = []

    def credentials(host: str) -> tuple[str, str] | None:
        asked.append(host)
        return None

    ecr = RegistryClient(ECR_HOST, config, credentials)
    assert ecr.endpoint.base_url == registry_server.url
    repo = unique_repo("payments/api")
    image = build_image(tag="mirror")
    push_image(ecr, repo, image, "v1")

    [resolved] = registry_source(f"registry:{ECR_HOST}/{repo}:v1", config=config).resolve()
    assert resolved.manifest_digest == image.digest
    assert resolved.reference == f"{ECR_HOST}/{repo}:v1"
    # The bytes really are in the local registry.
    assert client_for(registry_server).get_manifest(repo, "v1").digest == image.digest
    assert asked == []  # the anonymous local registry never challenged
    # The local registry is a mirror target, not a registry one may name directly.
    with pytest.raises(RegistryNotAllowedError):
        registry_source(f"{registry_server.authority}/{repo}:v1", config=config)


class _EcrTokenClient:
    """Answers GetAuthorizationToken like ECR (and moto) do: base64 of `AWS:<password>`. An
    in-process `moto.mock_aws()` here would reset the moto state the session's moto *server*
    shares; the moto-server path is covered end to end in test_pipeline.py."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_authorization_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        token = base64.b64encode(b"AWS:123456789012-auth-token").decode()
        return {"authorizationData": [{"authorizationToken": token}]}


def test_ecr_login_through_mirror_with_basic_auth(make_registry: Callable[..., RegistryServer]) -> None:
    from chalicelib.ecr_auth import ecr_credentials_provider

    ecr_client = _EcrTokenClient()
    server = make_registry(htpasswd={"AWS": "123456789012-auth-token"})
    regions: list[str] = []

    def client_for_region(region: str) -> Any:
        regions.append(region)
        return ecr_client

    provider = ecr_credentials_provider(client_for_region)
    config = RegistryConfig.model_validate(
        {
            "accounts": "123456789012",
            "region": "us-east-1",
            "insecure": server.authority,
            "mirrors": f"{ECR_HOST}={server.authority}",
        }
    )
    client = RegistryClient(ECR_HOST, config, provider)
    image = build_image(layers=2, tag="ecr")
    push_image(client, "payments/api", image, "v1")
    [resolved] = registry_source(f"{ECR_HOST}/payments/api:v1", config=config, credentials=provider).resolve()
    assert resolved.manifest_digest == image.digest
    assert regions == ["us-east-1"]  # one GetAuthorizationToken, cached afterwards
    assert ecr_client.calls == [
        {}
    ]  # registryIds is deprecated: the token covers every registry the role may pull


# --- auth flows against the real registry -----------------------------------------------------


def test_basic_auth_flows(make_registry: Callable[..., RegistryServer]) -> None:
    server = make_registry(htpasswd={"alice": "s3cret"})
    config = local_config(server.authority)
    image = build_image(layers=1, tag="basic")

    with pytest.raises(RegistryError, match="requires authentication \\(Basic\\) and no credentials"):
        RegistryClient(server.authority, config).get_manifest("app", "v1")
    with pytest.raises(RegistryError, match="rejected the configured credentials"):
        RegistryClient(server.authority, config, lambda host: ("alice", "wrong")).ping()

    pool = RecordingPool()
    client = RegistryClient(server.authority, config, lambda host: ("alice", "s3cret"), pool=pool)
    push_image(client, "app", image, "v1")
    assert client.get_manifest("app", "v1").digest == image.digest
    # One 401 round trip at the start, Basic sent up front afterwards.
    assert pool.calls[:2] == [("HEAD", f"/v2/app/blobs/{image.config_digest}")] * 2
    assert len(pool.calls) == 1 + 3 * 2 + 1 + 1  # challenge, (HEAD POST PUT) x 2 blobs, manifest, get


def test_bearer_token_flow(make_registry: Callable[..., RegistryServer]) -> None:
    issuer = TokenIssuer(users={"bob": "pw"}, anonymous_pull=True)
    server = make_registry(token=issuer)
    config = local_config(server.authority, issuer.authority)
    image = build_image(layers=2, tag="bearer")

    client = RegistryClient(server.authority, config, lambda host: ("bob", "pw"))
    assert push_image(client, "team/app", image, "v1") == image.digest
    [resolved] = registry_source(f"{server.authority}/team/app:v1", config=config).resolve()
    assert resolved.manifest_digest == image.digest
    assert client.get_tag_list("team/app") == ["v1"]  # served by the cached pull,push token

    assert issuer.requests == [
        ("bob", ["repository:team/app:pull,push", "repository:team/app:pull"]),
        (None, ["repository:team/app:pull"]),  # the anonymous source above
    ]

    anonymous = RegistryClient(server.authority, config)
    assert anonymous.get_manifest("team/app", "v1").digest == image.digest
    with pytest.raises(RegistryResponseError) as info:
        anonymous.push_manifest("team/app", "v2", image.manifest, image.media_type)
    assert (info.value.status, info.value.registry_codes) == (401, ["UNAUTHORIZED"])

    with pytest.raises(RegistryError, match="refused a token"):
        RegistryClient(server.authority, config, lambda host: ("bob", "bad")).get_manifest("team/app", "v1")
    plain_realm = local_config(server.authority)  # the realm's http authority is not insecure
    with pytest.raises(RegistryError, match="only https realms"):
        RegistryClient(server.authority, plain_realm).get_manifest("team/app", "v1")


# --- OCI layouts and skopeo interop ------------------------------------------------------------


def test_push_oci_layout_single_and_multi_platform(registry_server: RegistryServer, tmp_path: Path) -> None:
    config = local_config(registry_server.authority)
    client = RegistryClient(registry_server.authority, config)
    amd64, arm64 = build_image("amd64", tag="layout"), build_image("arm64", "v8", layers=1, tag="layout")
    index = index_of([(amd64, "amd64", None), (arm64, "arm64", "v8")])
    blobs = {**image_blobs(amd64), **image_blobs(arm64), sha(index): index}

    nested = write_layout(
        tmp_path / "nested",
        blobs,
        [
            {
                "mediaType": oci.OCI_INDEX,
                "digest": sha(index),
                "size": len(index),
                "annotations": {oci.REF_NAME_ANNOTATION: "multi"},
            },
            {
                "mediaType": oci.OCI_MANIFEST,
                "digest": amd64.digest,
                "size": len(amd64.manifest),
                "annotations": {oci.REF_NAME_ANNOTATION: "single"},
            },
        ],
    )
    repo = unique_repo("lifeguard/layout")
    assert push_oci_layout(
        nested, f"{registry_server.authority}/{repo}:multi", config=config, layout_ref="multi"
    ) == sha(index)
    assert client.push_oci_layout(nested, repo, "single", layout_ref="single") == amd64.digest
    assert sorted(client.get_tag_list(repo)) == ["multi", "single"]
    source = registry_source(f"{registry_server.authority}/{repo}:multi", config=config)
    assert [i.manifest_digest for i in source.resolve(all_platforms=True)] == [amd64.digest, arm64.digest]
    with pytest.raises(Exception, match="several images"):
        client.push_oci_layout(nested, repo, "x")

    flat = write_layout(
        tmp_path / "flat",
        {**image_blobs(amd64), **image_blobs(arm64)},
        json.loads(index)["manifests"],
    )
    digest = client.push_oci_layout(flat, repo, "flat")
    pushed = client.get_manifest(repo, "flat")
    assert (pushed.digest, pushed.media_type) == (digest, oci.OCI_INDEX)
    assert [m["digest"] for m in json.loads(pushed.body)["manifests"]] == [amd64.digest, arm64.digest]


skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


@skopeo
def test_skopeo_copies_layout_and_reads_ours(registry_server: RegistryServer, tmp_path: Path) -> None:
    image = build_image(tag="skopeo")
    layout = write_layout(
        tmp_path / "layout",
        image_blobs(image),
        [
            {
                "mediaType": oci.OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {oci.REF_NAME_ANNOTATION: "v1"},
            }
        ],
    )
    repo = unique_repo("lifeguard/skopeo")
    target = f"docker://{registry_server.authority}/{repo}"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:v1", f"{target}:v1"],
        check=True,
        timeout=30,
        capture_output=True,
    )
    config = local_config(registry_server.authority)
    [resolved] = registry_source(f"{registry_server.authority}/{repo}:v1", config=config).resolve()
    assert (resolved.manifest_digest, resolved.config_digest) == (image.digest, image.config_digest)

    # And the other way round: skopeo reads what our client pushed, byte for byte.
    arm64 = build_image("arm64", "v8", layers=1, tag="skopeo")
    client = RegistryClient(registry_server.authority, config)
    push_image(client, repo, arm64)
    index = index_of([(image, "amd64", None), (arm64, "arm64", "v8")])
    client.push_manifest(repo, "multi", index, oci.OCI_INDEX)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"{target}:multi"],
        check=True,
        timeout=30,
        capture_output=True,
    ).stdout
    assert raw == index


# --- misbehaving servers (stubs) ----------------------------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@dataclass
class Stub:
    server: ThreadingHTTPServer
    routes: dict[str, Handler]
    seen: list[tuple[str, str, str | None]]  # method, path, Authorization

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def stub() -> Iterator[Callable[[dict[str, Handler]], Stub]]:
    servers: list[ThreadingHTTPServer] = []

    def start(routes: dict[str, Handler]) -> Stub:
        seen: list[tuple[str, str, str | None]] = []

        class H(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                seen.append((self.command, self.path, self.headers.get("Authorization")))
                route = routes.get(self.path.split("?")[0])
                status, headers, body = route(self) if route else (404, {}, b"")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _serve

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return Stub(server, routes, seen)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_blob_redirect_drops_credentials_and_tampered_bytes_fail(
    stub: Callable[[dict[str, Handler]], Stub],
) -> None:
    good = b"layer bytes" * 100
    digest = sha(good)
    storage = stub({"/good": lambda h: (200, {}, good), "/bad": lambda h: (200, {}, good[:-1] + b"!")})

    def blob(target: str) -> Handler:
        def handle(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
            if h.headers.get("Authorization") != "Basic dTpw":  # u:p
                return 401, {"WWW-Authenticate": 'Basic realm="stub"'}, b""
            return 307, {"Location": f"http://{storage.authority}{target}"}, b""

        return handle

    bad_digest = "sha256:" + "2" * 64
    reg = stub({f"/v2/app/blobs/{digest}": blob("/good"), f"/v2/app/blobs/{bad_digest}": blob("/bad")})
    config = RegistryConfig(
        allowlist=frozenset({reg.authority}), insecure=frozenset({reg.authority, storage.authority})
    )
    client = RegistryClient(reg.authority, config, lambda host: ("u", "p"))
    assert client.get_blob("app", digest, len(good)) == good
    assert [auth for _, _, auth in reg.seen] == [None, "Basic dTpw"]
    assert storage.seen == [("GET", "/good", None)]  # no credentials to another origin

    with pytest.raises(DigestMismatchError, match=f"!= expected {bad_digest}"):
        client.get_blob("app", bad_digest, len(good))
    with pytest.raises(DigestMismatchError, match=f"registry sends {len(good)} bytes, descriptor says 5"):
        client.get_blob("app", digest, 5)

    refused = RegistryClient(
        reg.authority,
        RegistryConfig(allowlist=frozenset({reg.authority}), insecure=frozenset({reg.authority})),
        lambda host: ("u", "p"),
    )
    with pytest.raises(RegistryError, match="redirected to a refused URL"):
        refused.get_blob("app", digest)  # plain http to a non-insecure host


def test_retries_on_5xx_then_succeeds(stub: Callable[[dict[str, Handler]], Stub]) -> None:
    image = build_image(layers=1, tag="retry")
    answers = iter([503, 502, 200])

    def manifest(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        status = next(answers)
        return status, {"Content-Type": oci.OCI_MANIFEST}, image.manifest if status == 200 else b"busy"

    reg = stub({"/v2/app/manifests/v1": manifest})
    client = RegistryClient(reg.authority, local_config(reg.authority), backoff=0.01)
    assert client.get_manifest("app", "v1").digest == image.digest
    assert len(reg.seen) == 3

    always = stub(
        {"/v2/app/manifests/v1": lambda h: (503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"down"}]}')}
    )
    flaky = RegistryClient(always.authority, local_config(always.authority), retries=2, backoff=0.01)
    with pytest.raises(RegistryResponseError, match=r"HTTP 503 .*UNAVAILABLE: down") as info:
        flaky.get_manifest("app", "v1")
    assert info.value.status == 503
    assert len(always.seen) == 3


def test_bad_manifests(stub: Callable[[dict[str, Handler]], Stub]) -> None:
    image = build_image(layers=1, tag="bad")
    schema1 = json.dumps({"schemaVersion": 1, "name": "app", "tag": "old", "fsLayers": []}).encode()
    reg = stub(
        {
            "/v2/app/manifests/notjson": lambda h: (200, {"Content-Type": oci.OCI_MANIFEST}, b"<html>oops"),
            "/v2/app/manifests/old": lambda h: (200, {"Content-Type": "application/json"}, schema1),
            "/v2/app/manifests/lying": lambda h: (
                200,
                {"Content-Type": oci.OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + "3" * 64},
                image.manifest,
            ),
            f"/v2/app/manifests/{'sha256:' + '4' * 64}": lambda h: (200, {}, image.manifest),
        }
    )
    client = RegistryClient(reg.authority, local_config(reg.authority))
    with pytest.raises(ManifestError, match="not valid JSON"):
        client.get_manifest("app", "notjson")
    with pytest.raises(ManifestError, match="schema 1"):
        client.get_manifest("app", "old")
    with pytest.raises(
        DigestMismatchError, match=f"Docker-Content-Digest sha256:3{{64}} != content digest {image.digest}"
    ):
        client.get_manifest("app", "lying")
    with pytest.raises(DigestMismatchError):
        client.get_manifest("app", "sha256:" + "4" * 64)


def test_connection_refused_is_a_registry_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        authority = f"127.0.0.1:{sock.getsockname()[1]}"
    client = RegistryClient(authority, local_config(authority), retries=1, backoff=0.01)
    with pytest.raises(RegistryError, match=f"cannot reach registry {authority} at http://{authority}"):
        client.get_manifest("app", "v1")


def test_https_is_the_default(registry_server: RegistryServer) -> None:
    config = RegistryConfig(allowlist=frozenset({registry_server.authority}))  # allowed, not insecure
    client = RegistryClient(registry_server.authority, config, retries=0)
    assert client.endpoint.base_url == f"https://{registry_server.authority}"
    with pytest.raises(RegistryError, match="cannot reach registry"):
        client.ping()  # TLS handshake against a plain-HTTP server fails


def test_tag_list_follows_link_pagination(stub: Callable[[dict[str, Handler]], Stub]) -> None:
    def tags(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if "last=b" in h.path:
            return 200, {}, json.dumps({"name": "app", "tags": ["c"]}).encode()
        link = '</v2/app/tags/list?n=2&last=b>; rel="next"'
        return 200, {"Link": link}, json.dumps({"name": "app", "tags": ["a", "b"]}).encode()

    reg = stub({"/v2/app/tags/list": tags})
    client = RegistryClient(reg.authority, local_config(reg.authority))
    assert client.get_tag_list("app") == ["a", "b", "c"]
    assert [path for _, path, _ in reg.seen] == ["/v2/app/tags/list?n=1000", "/v2/app/tags/list?n=2&last=b"]
