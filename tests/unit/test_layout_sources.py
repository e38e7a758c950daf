"""Local image sources: OCI layouts (tags, multi-platform indexes, Docker media types, digest
checks), docker-archive tarballs, directory trees, and `parse_source`. Images are written by
`oci_writer` into tmp_path; scans go through the real walker."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.errors import DigestMismatchError, InputError, ManifestError, SourceError
from chalicelib.image import oci
from chalicelib.image.layout import DirSource, DockerArchiveSource, OCILayoutSource, parse_source
from chalicelib.image.model import ImageSource, ResolvedImage
from chalicelib.image.oci_writer import (
    build_layer,
    diff_id,
    write_docker_archive,
    write_oci_index_layout,
    write_oci_layout,
)
from chalicelib.image.tarstream import EntryKind
from chalicelib.image.walker import WalkResult, walk_image
from chalicelib.models import Package


class PkgAnalyzer(Analyzer):
    """Every `*.pkg` file is one package: name = file stem, version = content."""

    name = "fake-pkg"

    def wants(self, path: str) -> bool:
        return path.endswith(".pkg")

    def analyze(self, path: str, content: bytes) -> FileResult:
        stem = path.rsplit("/", 1)[-1].removesuffix(".pkg")
        version = content.decode()
        purl = f"pkg:generic/{stem}@{version}"
        return FileResult(
            packages=[Package(name=stem, version=version, ecosystem="Fake", purl=purl, path=path)]
        )


def scan(source: ImageSource, image: ResolvedImage) -> list[tuple[str, str, str]]:
    """(path, version, layer diff_id) of every package the walker finds."""
    result: WalkResult = walk_image(source, image, [PkgAnalyzer()])
    return [
        (p.path, p.version, p.layer or "")
        for f in result.results.get("fake-pkg", [])
        for p in f.result.packages
    ]


LOWER = build_layer({"usr/lib/base.pkg": b"1.0", "etc/gone.pkg": b"0.1"})
UPPER = build_layer({"app/app.pkg": b"2.0", "etc/.wh.gone.pkg": b""}, "zstd")
ARM = build_layer({"usr/lib/base.pkg": b"1.0-arm"})


def _blob(root: Path, digest: str | None) -> Path:
    assert digest is not None
    return root / "blobs" / "sha256" / digest.split(":", 1)[1]


# -- OCI layout ----------------------------------------------------------------------------------


def test_single_image_layout_resolves_and_scans(tmp_path: Path) -> None:
    info = write_oci_layout(tmp_path, [LOWER, UPPER], config={"config": {"User": "app"}})
    [image] = OCILayoutSource(tmp_path).resolve()
    assert image.manifest_digest == info.manifest_digest
    assert image.digest == info.manifest_digest
    assert image.config_digest == info.config_digest
    assert [layer.diff_id for layer in image.layers] == [diff_id(LOWER), diff_id(UPPER)]
    assert [layer.media_type for layer in image.layers] == [oci.OCI_LAYER_GZIP, oci.OCI_LAYER_ZSTD]
    assert (image.platform, image.reference, image.index_digest) == ("linux/amd64", "latest", None)
    assert image.config["config"] == {"User": "app"}
    assert image.annotations == {oci.REF_NAME_ANNOTATION: "latest"}
    assert scan(OCILayoutSource(tmp_path), image) == [
        ("usr/lib/base.pkg", "1.0", diff_id(LOWER)),
        ("app/app.pkg", "2.0", diff_id(UPPER)),
    ]


def test_tag_selection(tmp_path: Path) -> None:
    one = write_oci_layout(tmp_path, [LOWER], tag="one")
    two = write_oci_layout(tmp_path, [LOWER, UPPER], tag="two")
    with pytest.raises(ManifestError, match=r"several images \(one, two\): name one as oci:DIR:TAG"):
        OCILayoutSource(tmp_path).resolve()
    [image] = OCILayoutSource(tmp_path, "two").resolve()
    assert (image.manifest_digest, image.reference, len(image.layers)) == (two.manifest_digest, "two", 2)
    [image] = OCILayoutSource(tmp_path, "one").resolve()
    assert image.manifest_digest == one.manifest_digest
    with pytest.raises(ManifestError, match=r"no image tagged 'three'.*tags: one, two"):
        OCILayoutSource(tmp_path, "three").resolve()
    # re-tagging replaces the entry instead of adding a duplicate
    write_oci_layout(tmp_path, [UPPER], tag="one")
    assert len(json.loads((tmp_path / "index.json").read_text())["manifests"]) == 2


def test_multi_platform_index(tmp_path: Path) -> None:
    info = write_oci_index_layout(
        tmp_path, {"linux/amd64": [LOWER, UPPER], "linux/arm64/v8": [ARM]}, tag="multi", attestations=True
    )
    source = OCILayoutSource(tmp_path)

    [default] = source.resolve()
    assert default.manifest_digest == info.images["linux/amd64"].manifest_digest
    assert (default.platform, default.index_digest, default.reference) == (
        "linux/amd64",
        info.index_digest,
        "multi",
    )

    [arm] = source.resolve(platform="linux/arm64")
    assert arm.manifest_digest == info.images["linux/arm64/v8"].manifest_digest
    assert arm.platform == "linux/arm64/v8"
    assert scan(source, arm) == [("usr/lib/base.pkg", "1.0-arm", diff_id(ARM))]
    assert source.resolve(platform="linux/aarch64/v8")[0].manifest_digest == arm.manifest_digest

    everything = source.resolve(all_platforms=True)  # attestation manifests are not images
    assert [i.platform for i in everything] == ["linux/amd64", "linux/arm64/v8"]
    assert {i.index_digest for i in everything} == {info.index_digest}

    with pytest.raises(
        ManifestError, match=r"no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8"
    ):
        source.resolve(platform="linux/s390x")
    with pytest.raises(ManifestError, match="no image for platform linux/arm64/v7"):
        source.resolve(platform="linux/arm64/v7")


def test_platform_manifests_listed_directly_in_index_json(tmp_path: Path) -> None:
    info = write_oci_index_layout(tmp_path, {"linux/arm64": [ARM], "linux/amd64": [LOWER]}, nested=False)
    [image] = OCILayoutSource(tmp_path).resolve()
    assert (image.manifest_digest, image.index_digest) == (info.images["linux/amd64"].manifest_digest, None)


def test_only_platform_is_the_default_and_a_missing_default_is_explained(tmp_path: Path) -> None:
    write_oci_index_layout(tmp_path / "one", {"linux/arm64": [ARM]})
    assert OCILayoutSource(tmp_path / "one").resolve()[0].platform == "linux/arm64"
    write_oci_index_layout(tmp_path / "two", {"linux/arm64": [ARM], "linux/arm/v7": [ARM]})
    with pytest.raises(
        ManifestError, match=r"no image for platform linux/amd64; available: .*choose one with --platform"
    ):
        OCILayoutSource(tmp_path / "two").resolve()


def test_docker_v2_schema2_media_types(tmp_path: Path) -> None:
    info = write_oci_index_layout(
        tmp_path, {"linux/amd64": [LOWER], "linux/arm64": [ARM]}, docker_media_types=True
    )
    manifest = json.loads(_blob(tmp_path, info.images["linux/amd64"].manifest_digest).read_text())
    assert manifest["mediaType"] == oci.DOCKER_MANIFEST
    source = OCILayoutSource(tmp_path)
    [image] = source.resolve(platform="linux/arm64")
    assert image.layers[0].media_type == oci.DOCKER_LAYER_GZIP
    assert scan(source, image) == [("usr/lib/base.pkg", "1.0-arm", diff_id(ARM))]


def test_tampered_layer_blob_is_a_digest_mismatch(tmp_path: Path) -> None:
    info = write_oci_layout(tmp_path, [LOWER])
    _blob(tmp_path, info.layer_digests[0]).write_bytes(build_layer({"usr/lib/base.pkg": b"6.6"}))
    source = OCILayoutSource(tmp_path)
    [image] = source.resolve()  # layers are checked while streaming, not at resolve
    with pytest.raises(DigestMismatchError, match=info.layer_digests[0]):
        scan(source, image)


def test_tampered_config_or_manifest_is_a_digest_mismatch(tmp_path: Path) -> None:
    info = write_oci_layout(tmp_path / "c", [LOWER])
    config = _blob(tmp_path / "c", info.config_digest)
    config.write_bytes(config.read_bytes().replace(b"amd64", b"arm64"))
    with pytest.raises(
        DigestMismatchError, match=f"image config: content digest .* != expected {info.config_digest}"
    ):
        OCILayoutSource(tmp_path / "c").resolve()

    info = write_oci_layout(tmp_path / "m", [LOWER])
    manifest = _blob(tmp_path / "m", info.manifest_digest)
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with pytest.raises(DigestMismatchError, match="size"):
        OCILayoutSource(tmp_path / "m").resolve()


def test_hostile_or_broken_index_json(tmp_path: Path) -> None:
    write_oci_layout(tmp_path, [LOWER])
    index = json.loads((tmp_path / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ManifestError, match="invalid or unsupported digest"):
        OCILayoutSource(tmp_path).resolve()

    index["manifests"][0]["digest"] = "sha256:" + "a" * 64
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(SourceError, match="missing from OCI layout"):
        OCILayoutSource(tmp_path).resolve()

    (tmp_path / "index.json").write_text("[1, 2]")
    with pytest.raises(ManifestError, match="expected a JSON object"):
        OCILayoutSource(tmp_path).resolve()

    with pytest.raises(SourceError, match="not an OCI image layout"):
        OCILayoutSource(tmp_path / "nowhere")


def test_unknown_fields_are_ignored_and_layer_count_is_checked(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "ok", [LOWER])
    index = json.loads((tmp_path / "ok/index.json").read_text())
    index["futureField"] = {"x": 1}
    index["manifests"][0]["annotations"] = None
    (tmp_path / "ok/index.json").write_text(json.dumps(index))
    assert OCILayoutSource(tmp_path / "ok").resolve()[0].reference is None

    write_oci_layout(tmp_path / "bad", [LOWER], config={"rootfs": {"type": "layers", "diff_ids": []}})
    with pytest.raises(ManifestError, match="has 1 layers but its config lists 0 diff_ids"):
        OCILayoutSource(tmp_path / "bad").resolve()


def test_writer_is_deterministic(tmp_path: Path) -> None:
    first = write_oci_index_layout(
        tmp_path / "a", {"linux/amd64": [build_layer({"x": b"1"})], "linux/arm64": [ARM]}
    )
    second = write_oci_index_layout(
        tmp_path / "b", {"linux/amd64": [build_layer({"x": b"1"})], "linux/arm64": [ARM]}
    )
    assert first == second
    assert (tmp_path / "a/index.json").read_bytes() == (tmp_path / "b/index.json").read_bytes()


# -- docker-archive ------------------------------------------------------------------------------


@pytest.mark.parametrize("oci_blobs", [False, True])
def test_docker_archive_round_trip(tmp_path: Path, oci_blobs: bool) -> None:
    layout = write_oci_layout(tmp_path / "layout", [LOWER, UPPER])
    info = write_docker_archive(
        tmp_path / "image.tar", [LOWER, UPPER], repo_tag="demo/app:1", oci_blobs=oci_blobs
    )
    assert info.diff_ids == layout.diff_ids

    source = DockerArchiveSource(tmp_path / "image.tar")
    [image] = source.resolve()
    assert (image.manifest_digest, image.digest) == (None, info.config_digest)
    assert [layer.diff_id for layer in image.layers] == layout.diff_ids
    assert [layer.digest for layer in image.layers] == layout.diff_ids  # docker save stores plain tars
    assert (image.platform, image.reference) == ("linux/amd64", "demo/app:1")
    oci_source = OCILayoutSource(tmp_path / "layout")
    assert scan(source, image) == scan(oci_source, oci_source.resolve()[0])
    assert scan(source, image) == [
        ("usr/lib/base.pkg", "1.0", diff_id(LOWER)),
        ("app/app.pkg", "2.0", diff_id(UPPER)),
    ]
    with pytest.raises(ManifestError, match=r"no image for platform linux/arm64.*available: linux/amd64"):
        source.resolve(platform="linux/arm64")
    assert (
        DockerArchiveSource(tmp_path / "image.tar", "demo/app:1").resolve()[0].config_digest
        == info.config_digest
    )
    with pytest.raises(ManifestError, match="no image tagged 'demo/app:2'; tags: demo/app:1"):
        DockerArchiveSource(tmp_path / "image.tar", "demo/app:2").resolve()


def test_docker_archive_tampering_and_compression(tmp_path: Path) -> None:
    write_docker_archive(tmp_path / "image.tar", [build_layer({"a.pkg": b"4711"})])
    data = (tmp_path / "image.tar").read_bytes()
    assert data.count(b"4711") == 1
    (tmp_path / "image.tar").write_bytes(data.replace(b"4711", b"4712"))
    source = DockerArchiveSource(tmp_path / "image.tar")
    [image] = source.resolve()
    with pytest.raises(DigestMismatchError):
        scan(source, image)

    (tmp_path / "image.tar.gz").write_bytes(b"\x1f\x8b" + data)
    with pytest.raises(SourceError, match="is compressed"):
        DockerArchiveSource(tmp_path / "image.tar.gz").resolve()


# -- dir -----------------------------------------------------------------------------------------


def make_tree(root: Path, outside: Path) -> None:
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/base.pkg").write_text("1.0")
    (root / "app").mkdir()
    (root / "app/app.pkg").write_text("2.0")
    (root / "etc").mkdir()
    os.symlink("../../../../host/etc/passwd", root / "etc/os-release.pkg")
    outside.mkdir()
    (outside / "secret.pkg").write_text("9.9")
    os.symlink(outside, root / "escape")  # a directory symlink leading out of the root
    os.mkfifo(root / "pipe.pkg")  # must neither block nor be read


def test_dir_source_streams_the_tree_without_following_links(tmp_path: Path) -> None:
    make_tree(tmp_path / "root", tmp_path / "outside")
    source = DirSource(tmp_path / "root")
    [image] = source.resolve()
    [layer] = image.layers
    assert layer.digest == layer.diff_id
    assert image.manifest_digest is None
    assert image.config["rootfs"]["diff_ids"] == [layer.digest]
    assert image.platform is None
    assert source.resolve()[0].config_digest == image.config_digest  # stable

    result = walk_image(source, image, [PkgAnalyzer()])
    found = [(f.path, f.result.packages[0].version) for f in result.results["fake-pkg"]]
    assert found == [("app/app.pkg", "2.0"), ("usr/lib/base.pkg", "1.0")]
    assert {p: (i.kind, i.target) for p, i in result.links.items()} == {
        "etc/os-release.pkg": (EntryKind.SYMLINK, "../../../../host/etc/passwd")
    }
    assert result.layers[0].entries == 8  # app etc usr usr/lib, 2 files, 2 symlinks; no fifo


def test_dir_source_notices_changes_during_the_scan(tmp_path: Path) -> None:
    make_tree(tmp_path / "root", tmp_path / "outside")
    source = DirSource(tmp_path / "root")
    [image] = source.resolve()
    (tmp_path / "root/usr/lib/base.pkg").write_text("1.1")
    with pytest.raises(DigestMismatchError, match="changed while it was scanned"):
        walk_image(source, image, [PkgAnalyzer()])


def test_dir_source_needs_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="is not a directory"):
        DirSource(tmp_path / "file")


# -- parse_source --------------------------------------------------------------------------------


def test_parse_source_local_schemes(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "lay:out", [LOWER], tag="v1")
    write_docker_archive(tmp_path / "image.tar", [LOWER])

    source = parse_source(f"oci:{tmp_path}/lay:out")
    assert isinstance(source, OCILayoutSource)
    assert (source.root, source.tag) == (tmp_path / "lay:out", None)
    source = parse_source(f"oci:{tmp_path}/lay:out:v1")
    assert isinstance(source, OCILayoutSource)
    assert (source.root, source.tag) == (tmp_path / "lay:out", "v1")
    assert source.resolve()[0].reference == "v1"

    archive = parse_source(f"docker-archive:{tmp_path}/image.tar")
    assert isinstance(archive, DockerArchiveSource)
    assert (archive.path, archive.ref) == (tmp_path / "image.tar", None)
    archive = parse_source(f"docker-archive:{tmp_path}/image.tar:lifeguard/test:latest")
    assert isinstance(archive, DockerArchiveSource)
    assert archive.ref == "lifeguard/test:latest"

    directory = parse_source(f"dir:{tmp_path}")
    assert isinstance(directory, DirSource)
    assert directory.path == tmp_path.resolve()


def test_parse_source_hands_registry_references_to_the_registry_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def registry_source(spec: str) -> ImageSource:
        calls.append(spec)
        return DirSource("/")

    fake = types.ModuleType("chalicelib.image.registry")
    fake.registry_source = registry_source  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chalicelib.image.registry", fake)
    for spec in (
        "registry:127.0.0.1:5000/team/app:1.0",
        "127.0.0.1:5000/team/app:1.0",
        "registry:ghcr.io/org/app@sha256:" + "a" * 64,
        "public.ecr.aws/lambda/python",
    ):
        assert isinstance(parse_source(spec), DirSource)
    assert calls == [
        "127.0.0.1:5000/team/app:1.0",
        "127.0.0.1:5000/team/app:1.0",
        "ghcr.io/org/app@sha256:" + "a" * 64,
        "public.ecr.aws/lambda/python",
    ]


@pytest.mark.parametrize("spec", ["docker://busybox", "ubuntu:22.04", "podman:foo/bar", "", "oci:"])
def test_parse_source_rejects_unknown_schemes(spec: str) -> None:
    with pytest.raises(InputError, match="use oci:DIR"):
        parse_source(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("oci:/nonexistent/layout", "no OCI image layout"),
        ("docker-archive:/nonexistent.tar", "no docker archive"),
    ],
)
def test_parse_source_missing_paths(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_source(spec)


# -- platform helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("want", "have", "matches"),
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/x86_64", "linux/amd64", True),
        ("linux/arm64", "linux/arm64/v8", True),
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm/v7", "linux/arm", True),
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/armhf", "linux/arm/v7", True),
        ("windows/amd64", "linux/amd64", False),
    ],
)
def test_platform_matching(want: str, have: str, matches: bool) -> None:
    assert oci.platform_matches(oci.parse_platform(want), oci.parse_platform(have)) is matches


@pytest.mark.parametrize("spec", ["linux", "linux/", "a/b/c/d"])
def test_bad_platform_strings(spec: str) -> None:
    with pytest.raises(InputError, match="invalid platform"):
        oci.parse_platform(spec)
