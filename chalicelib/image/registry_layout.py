"""Copying an image from an OCI image layout (a directory) into a registry.

Used by the demo and the tests to seed a registry, and later to push signatures. The registry
must never see a manifest before what it references, so blobs go first, then child manifests
(by digest), then the top-level manifest under its tag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.errors import DigestMismatchError, InputError
from chalicelib.image import oci
from chalicelib.image.streams import check_digest, verify_bytes

if TYPE_CHECKING:
    from chalicelib.image.registry import RegistryClient


def push_layout(
    client: RegistryClient, layout_dir: Path, repository: str, tag: str, *, layout_ref: str | None = None
) -> str:
    """Copy an image from an OCI image layout into `repository:tag`; returns the pushed
    (top-level) manifest digest.

    The image is the index.json entry whose `org.opencontainers.image.ref.name` is
    `layout_ref`, else the only entry. When index.json lists several platform manifests and
    no `layout_ref` is given, they are pushed under a new OCI index built from their
    descriptors (ref.name annotations dropped). Nested indexes are copied whole, children by
    digest first, so the registry never sees a manifest before what it references."""
    root = layout_dir
    if not (root / "oci-layout").is_file() or not (root / "index.json").is_file():
        raise InputError(f"{root} is not an OCI image layout (no oci-layout / index.json)")
    top = oci.parse_index((root / "index.json").read_bytes(), f"{root}/index.json")
    descriptors = top.manifests
    if layout_ref is not None:
        descriptors = [d for d in descriptors if d.annotations.get(oci.REF_NAME_ANNOTATION) == layout_ref]
        if not descriptors:
            raise InputError(f"{root}: no manifest named {layout_ref!r} in index.json")
    if not descriptors:
        raise InputError(f"{root}: index.json lists no manifests")
    if len(descriptors) == 1:
        return _push_descriptor(client, root, repository, descriptors[0], tag)
    if layout_ref is None and any(d.platform is None for d in descriptors):
        names = sorted({d.annotations.get(oci.REF_NAME_ANNOTATION, d.digest) for d in descriptors})
        raise InputError(f"{root} holds several images ({', '.join(names)}): say which with layout_ref")
    for descriptor in descriptors:
        _push_descriptor(client, root, repository, descriptor, None)
    index = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [_clean_descriptor(d) for d in descriptors],
    }
    body = json.dumps(index, separators=(",", ":")).encode()
    return client.push_manifest(repository, tag, body, oci.OCI_INDEX)


def _push_descriptor(
    client: RegistryClient, root: Path, repository: str, descriptor: oci.Descriptor, tag: str | None
) -> str:
    """Push one layout entry: blobs first, then children, then the manifest itself."""
    body = verify_bytes(
        _layout_blob(root, descriptor.digest).read_bytes(), descriptor.digest, descriptor.size, "manifest"
    )
    doc = oci.parse_json(body, f"manifest {descriptor.digest}")
    kind = oci.document_kind(doc, descriptor.media_type)
    media_type = (
        doc.get("mediaType")
        or descriptor.media_type
        or (oci.OCI_INDEX if kind == "index" else oci.OCI_MANIFEST)
    )
    if kind == "index":
        for child in oci.parse_index(body).manifests:
            _push_descriptor(client, root, repository, child, None)
    else:
        manifest = oci.parse_manifest(body, f"manifest {descriptor.digest}")
        for blob in [manifest.config, *manifest.layers]:
            path = _layout_blob(root, blob.digest)
            if path.stat().st_size != blob.size:
                raise DigestMismatchError(
                    f"layout blob {blob.digest}: {path.stat().st_size} bytes, descriptor says {blob.size}"
                )
            with path.open("rb") as stream:
                client.push_blob(repository, stream, blob.digest, size=blob.size)
    return client.push_manifest(repository, tag or descriptor.digest, body, str(media_type))


def _layout_blob(root: Path, digest: str) -> Path:
    algorithm, hex_ = check_digest(digest).split(":", 1)
    path = root / "blobs" / algorithm / hex_
    if not path.is_file():
        raise InputError(f"{root}: blob {digest} is missing from the layout")
    return path


def _clean_descriptor(descriptor: oci.Descriptor) -> dict[str, Any]:
    data = descriptor.model_dump(by_alias=True, exclude_none=True)
    annotations = {k: v for k, v in descriptor.annotations.items() if k != oci.REF_NAME_ANNOTATION}
    if annotations:
        data["annotations"] = annotations
    else:
        data.pop("annotations", None)
    return data
