"""Build small container images without Docker: layers, OCI image layouts (single and multi-arch)
and `docker save` archives. Used by the tests and the local demo.

Why deterministic: fixed mtimes, owners and entry order make every digest stable across runs, so
tests can compare digests and the demo's image ids do not churn. Hostile entries (traversal names,
absolute paths, whiteouts, links) can be written on purpose through `LayerEntry`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

from chalicelib.image import oci
from chalicelib.image.streams import Compression, open_decompressed, sha256_digest, sniff_compression

FIXED_MTIME = 0
FIXED_CREATED = "1970-01-01T00:00:00Z"

EntryType = Literal["file", "dir", "symlink", "hardlink", "fifo", "chardev", "blockdev"]
_TAR_TYPES: dict[str, bytes] = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
}
_DEFAULT_MODES = {"dir": 0o755, "symlink": 0o777}


@dataclass(frozen=True)
class LayerEntry:
    """One tar entry. `target` is the link target for symlinks and hardlinks."""

    kind: EntryType = "file"
    content: bytes = b""
    target: str = ""
    mode: int | None = None
    uid: int = 0
    gid: int = 0


def whiteout(path: str) -> str:
    """Name of the whiteout entry that deletes `path` from lower layers (`a/b` -> `a/.wh.b`)."""
    parent, _, base = path.rstrip("/").rpartition("/")
    return f"{parent}/.wh.{base}" if parent else f".wh.{base}"


def opaque(directory: str) -> str:
    """Name of the opaque marker that hides everything lower layers had under `directory`."""
    directory = directory.strip("/")
    return f"{directory}/.wh..wh..opq" if directory else ".wh..wh..opq"


def build_tar(
    files: Mapping[str, bytes | LayerEntry],
    *,
    sort: bool = True,
    tar_format: Literal["pax", "gnu", "ustar"] = "pax",
) -> bytes:
    """An uncompressed tar of `files`. Names are written exactly as given (hostile ones too)."""
    formats: dict[str, Literal[0, 1, 2]] = {"ustar": 0, "gnu": 1, "pax": 2}  # tarfile.*_FORMAT
    fmt = formats[tar_format]
    out = io.BytesIO()
    names = sorted(files) if sort else list(files)
    for name in names:
        spec = files[name]
        entry = spec if isinstance(spec, LayerEntry) else LayerEntry(content=spec)
        info = tarfile.TarInfo(name + "/" if entry.kind == "dir" and not name.endswith("/") else name)
        info.type = _TAR_TYPES[entry.kind]
        info.mode = entry.mode if entry.mode is not None else _DEFAULT_MODES.get(entry.kind, 0o644)
        info.mtime = FIXED_MTIME
        info.uid, info.gid = entry.uid, entry.gid
        info.uname = info.gname = ""
        info.linkname = entry.target
        info.size = len(entry.content) if entry.kind == "file" else 0
        out.write(info.tobuf(fmt, "utf-8", "surrogateescape"))
        if info.size:
            out.write(entry.content)
            out.write(bytes(-info.size % tarfile.BLOCKSIZE))
    out.write(bytes(2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def compress(data: bytes, compression: Literal["gzip", "zstd", "none"] = "gzip", level: int = 6) -> bytes:
    """Deterministic compression (gzip header mtime 0)."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=level, mtime=0)
    if compression == "zstd":
        return bytes(zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data))
    return data


def build_layer(
    files: Mapping[str, bytes | LayerEntry],
    compression: Literal["gzip", "zstd", "none"] = "gzip",
    *,
    sort: bool = True,
    tar_format: Literal["pax", "gnu", "ustar"] = "pax",
) -> bytes:
    """A layer blob: the tar of `files`, compressed. `sort=False` keeps the mapping's order (to
    put a whiteout after the file it must not hide, for instance)."""
    return compress(build_tar(files, sort=sort, tar_format=tar_format), compression)


def diff_id(layer: bytes) -> str:
    """sha256 of the uncompressed tar of a layer blob."""
    hasher = hashlib.sha256()
    chunks = open_decompressed(io.BytesIO(layer), 1 << 40, "layer")
    while chunk := chunks.read_chunk():
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _uncompressed(layer: bytes) -> bytes:
    chunks = open_decompressed(io.BytesIO(layer), 1 << 40, "layer")
    return b"".join(iter(chunks.read_chunk, b""))


_OCI_LAYER_TYPES = {
    Compression.GZIP: oci.OCI_LAYER_GZIP,
    Compression.ZSTD: oci.OCI_LAYER_ZSTD,
    Compression.NONE: oci.OCI_LAYER,
}


def _layer_media_type(layer: bytes, docker: bool) -> str:
    kind = sniff_compression(layer[:8])
    if docker:
        return oci.DOCKER_LAYER_GZIP if kind is Compression.GZIP else oci.DOCKER_LAYER
    return _OCI_LAYER_TYPES.get(kind, oci.OCI_LAYER)


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=None, separators=(",", ":"), sort_keys=False).encode()


@dataclass
class ImageRefInfo:
    """What was written: the digests a test needs to check a source or a scan against."""

    manifest_digest: str | None
    config_digest: str
    diff_ids: list[str]
    layer_digests: list[str]
    platform: str | None
    manifest_descriptor: dict[str, Any] = field(default_factory=dict)


@dataclass
class IndexRefInfo:
    index_digest: str
    images: dict[str, ImageRefInfo]


def image_config(
    layers: Sequence[bytes], config: Mapping[str, Any] | None, platform: str | None
) -> dict[str, Any]:
    """A valid image config for `layers`: given keys win; `rootfs` is derived unless given."""
    doc: dict[str, Any] = {"created": FIXED_CREATED}
    if platform:
        parts = platform.split("/")
        doc["architecture"], doc["os"] = parts[1], parts[0]
        if len(parts) > 2:
            doc["variant"] = parts[2]
    doc["config"] = {}
    doc["rootfs"] = {"type": "layers", "diff_ids": [diff_id(layer) for layer in layers]}
    doc["history"] = [{"created": FIXED_CREATED, "created_by": f"layer {i}"} for i in range(len(layers))]
    doc.update(config or {})
    return doc


def write_blob(layout_dir: str | os.PathLike[str], data: bytes) -> str:
    """Store `data` under blobs/sha256/ of a layout; return its digest."""
    digest = sha256_digest(data)
    blob_dir = Path(layout_dir) / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (blob_dir / digest.split(":", 1)[1]).write_bytes(data)
    return digest


def _write_image(
    layout_dir: Path,
    layers: Sequence[bytes],
    config: Mapping[str, Any] | None,
    platform: str | None,
    docker: bool,
) -> ImageRefInfo:
    config_doc = image_config(layers, config, platform)
    config_bytes = _json_bytes(config_doc)
    config_digest = write_blob(layout_dir, config_bytes)
    layer_descs: list[dict[str, Any]] = []
    for layer in layers:
        layer_descs.append(
            {
                "mediaType": _layer_media_type(layer, docker),
                "digest": write_blob(layout_dir, layer),
                "size": len(layer),
            }
        )
    manifest_type = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": layer_descs,
    }
    manifest_bytes = _json_bytes(manifest)
    manifest_digest = write_blob(layout_dir, manifest_bytes)
    descriptor: dict[str, Any] = {
        "mediaType": manifest_type,
        "digest": manifest_digest,
        "size": len(manifest_bytes),
    }
    if platform:
        parts = platform.split("/")
        descriptor["platform"] = {"architecture": parts[1], "os": parts[0]}
        if len(parts) > 2:
            descriptor["platform"]["variant"] = parts[2]
    return ImageRefInfo(
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        diff_ids=list(config_doc["rootfs"]["diff_ids"]),
        layer_digests=[d["digest"] for d in layer_descs],
        platform=platform,
        manifest_descriptor=descriptor,
    )


def _add_to_index_json(layout_dir: Path, descriptors: Sequence[dict[str, Any]], tag: str | None) -> None:
    """Add entries to index.json, replacing earlier entries with the same tag."""
    (layout_dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index_path = layout_dir / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
        if tag is not None:
            index["manifests"] = [
                d
                for d in index["manifests"]
                if (d.get("annotations") or {}).get(oci.REF_NAME_ANNOTATION) != tag
            ]
    for desc in descriptors:
        entry = dict(desc)
        if tag is not None:
            entry["annotations"] = {**entry.get("annotations", {}), oci.REF_NAME_ANNOTATION: tag}
        index["manifests"].append(entry)
    index_path.write_bytes(_json_bytes(index))


def write_oci_layout(
    layout_dir: str | os.PathLike[str],
    layers: Sequence[bytes],
    config: Mapping[str, Any] | None = None,
    tag: str | None = "latest",
    platform: str | None = "linux/amd64",
    *,
    docker_media_types: bool = False,
) -> ImageRefInfo:
    """Write one image into an OCI image layout (created or extended) under `tag`
    (`org.opencontainers.image.ref.name`). `docker_media_types` writes Docker v2 schema 2
    media types instead of OCI ones, as `skopeo --format v2s2` would."""
    root = Path(layout_dir)
    info = _write_image(root, layers, config, platform, docker_media_types)
    _add_to_index_json(root, [info.manifest_descriptor], tag)
    return info


def write_oci_index_layout(
    layout_dir: str | os.PathLike[str],
    images_per_platform: Mapping[str, Sequence[bytes] | tuple[Sequence[bytes], Mapping[str, Any] | None]],
    tag: str | None = "latest",
    *,
    nested: bool = True,
    docker_media_types: bool = False,
    attestations: bool = False,
) -> IndexRefInfo:
    """Write a multi-platform image: one image per `os/arch[/variant]` key, tied by an image index.

    `nested=True` (what skopeo and buildx write) stores the index as a blob that index.json points
    to; `nested=False` lists the platform manifests directly in index.json. `attestations` adds a
    buildx-style `unknown/unknown` attestation manifest per platform, which sources must skip."""
    root = Path(layout_dir)
    images: dict[str, ImageRefInfo] = {}
    descriptors: list[dict[str, Any]] = []
    for platform, spec in images_per_platform.items():
        layers, config = spec if isinstance(spec, tuple) else (spec, None)
        info = _write_image(root, layers, config, platform, docker_media_types)
        images[platform] = info
        descriptors.append(info.manifest_descriptor)
        if attestations:
            descriptors.append(_attestation(root, info.manifest_digest or ""))
    index_type = oci.DOCKER_MANIFEST_LIST if docker_media_types else oci.OCI_INDEX
    index_bytes = _json_bytes({"schemaVersion": 2, "mediaType": index_type, "manifests": descriptors})
    index_digest = write_blob(root, index_bytes)
    if nested:
        _add_to_index_json(
            root, [{"mediaType": index_type, "digest": index_digest, "size": len(index_bytes)}], tag
        )
    else:
        _add_to_index_json(root, descriptors, tag)
    return IndexRefInfo(index_digest=index_digest, images=images)


def _attestation(root: Path, subject_digest: str) -> dict[str, Any]:
    """A buildx-like in-toto attestation manifest (not a runnable image)."""
    statement = write_blob(root, b'{"_type":"https://in-toto.io/Statement/v0.1"}')
    config = write_blob(root, b"{}")
    manifest = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement, "size": 45}],
        }
    )
    return {
        "mediaType": oci.OCI_MANIFEST,
        "digest": write_blob(root, manifest),
        "size": len(manifest),
        "annotations": {
            oci.DOCKER_REFERENCE_TYPE: "attestation-manifest",
            "vnd.docker.reference.digest": subject_digest,
        },
        "platform": {"architecture": "unknown", "os": "unknown"},
    }


def write_docker_archive(
    path: str | os.PathLike[str],
    layers: Sequence[bytes],
    config: Mapping[str, Any] | None = None,
    repo_tag: str | None = "lifeguard/test:latest",
    *,
    platform: str | None = "linux/amd64",
    oci_blobs: bool = False,
) -> ImageRefInfo:
    """Write a `docker save` tarball. Layers are stored uncompressed, as Docker does.

    Default: the classic layout (`<config>.json`, `<id>/layer.tar`). `oci_blobs=True`: the layout of
    Docker 25+ (`blobs/sha256/...` referenced from manifest.json, legacy `<id>/layer.tar` kept as
    symlinks to the blobs)."""
    tars = [_uncompressed(layer) for layer in layers]
    config_doc = image_config(tars, config, platform)
    config_bytes = _json_bytes(config_doc)
    config_digest = sha256_digest(config_bytes)
    config_hex = config_digest.split(":", 1)[1]
    diff_ids: list[str] = list(config_doc["rootfs"]["diff_ids"])
    files: dict[str, bytes | LayerEntry] = {}
    layer_paths: list[str] = []
    layer_digests: list[str] = []
    for tar_bytes in tars:
        layer_digests.append(sha256_digest(tar_bytes))
        hex_id = layer_digests[-1].split(":", 1)[1]
        if oci_blobs:
            files[f"blobs/sha256/{hex_id}"] = tar_bytes
            files[f"{hex_id}/layer.tar"] = LayerEntry("symlink", target=f"../blobs/sha256/{hex_id}")
            layer_paths.append(f"blobs/sha256/{hex_id}")
        else:
            files[f"{hex_id}/layer.tar"] = tar_bytes
            files[f"{hex_id}/VERSION"] = b"1.0"
            layer_paths.append(f"{hex_id}/layer.tar")
    config_path = f"blobs/sha256/{config_hex}" if oci_blobs else f"{config_hex}.json"
    files[config_path] = config_bytes
    manifest = [{"Config": config_path, "RepoTags": [repo_tag] if repo_tag else None, "Layers": layer_paths}]
    files["manifest.json"] = _json_bytes(manifest)
    if repo_tag:
        repo, _, tag = repo_tag.rpartition(":")
        files["repositories"] = _json_bytes({repo: {tag: diff_ids[-1].split(":", 1)[1] if diff_ids else ""}})
    Path(path).write_bytes(build_tar(files))
    return ImageRefInfo(
        manifest_digest=None,
        config_digest=config_digest,
        diff_ids=diff_ids,
        layer_digests=layer_digests,
        platform=platform,
    )
