"""Where cosign keeps signatures and attestations, and the manifests that hold them.

Tag fallback (every registry, what cosign reads by default): in the image's own repository,
`sha256-<hex>.sig` (signatures) and `sha256-<hex>.att` (attestations) name an OCI image manifest
whose layers are the signed documents:
- `.sig` layer: the simple-signing payload, media type
  `application/vnd.dev.cosign.simplesigning.v1+json`, annotation
  `dev.cosignproject.cosign/signature` = base64 of the DER signature;
- `.att` layer: the DSSE envelope, media type `application/vnd.dsse.envelope.v1+json`,
  annotations `dev.cosignproject.cosign/signature` = "" (the signature is inside the envelope)
  and `predicateType`.
Signing again appends a layer and keeps every existing one (cosign's `mutate.AppendSignatures`);
the config is rebuilt as go-containerregistry builds it (one diff_id and one history entry per
layer), which cosign never reads but other tools expect to be consistent.

OCI 1.1 referrers (registries that answer `GET /v2/<name>/referrers/<digest>`): additionally one
manifest per signing, pushed by digest, with `subject` = the signed image and `artifactType`
`application/vnd.dev.cosign.artifact.sig.v1+json` (cosign's experimental OCI 1.1 mode) or
`application/vnd.in-toto+json` for attestations (cosign's `WriteAttestationsReferrer`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import InputError, ManifestError
from chalicelib.image import oci
from chalicelib.image.streams import check_digest, sha256_digest
from chalicelib.signing.gojson import marshal

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_TYPE_ANNOTATION = "predicateType"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
ATT_ARTIFACT_TYPE = "application/vnd.in-toto+json"
SIG_SUFFIX = "sig"
ATT_SUFFIX = "att"
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as go-containerregistry writes it


def artifact_tag(digest: str, suffix: str) -> str:
    """`sha256-<hex>.<suffix>`. Only sha256: a sha512 tag would exceed the 128-character limit."""
    algorithm, _, hex_ = check_digest(digest).partition(":")
    if algorithm != "sha256":
        raise InputError(f"cosign's tag layout needs a sha256 digest, got {digest}")
    return f"{algorithm}-{hex_}.{suffix}"


def signature_tag(digest: str) -> str:
    return artifact_tag(digest, SIG_SUFFIX)


def attestation_tag(digest: str) -> str:
    return artifact_tag(digest, ATT_SUFFIX)


@dataclass(frozen=True)
class Blob:
    """Bytes to store and the descriptor that names them."""

    data: bytes
    media_type: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, Any]:
        """OCI descriptor in go-containerregistry's field order."""
        desc: dict[str, Any] = {"mediaType": self.media_type, "size": len(self.data), "digest": self.digest}
        if self.annotations:
            desc["annotations"] = dict(sorted(self.annotations.items()))
        return desc


def signature_layer(payload: bytes, signature_b64: str) -> Blob:
    return Blob(payload, SIMPLE_SIGNING_MEDIA_TYPE, {SIGNATURE_ANNOTATION: signature_b64})


def attestation_layer(envelope: bytes, predicate_type: str) -> Blob:
    annotations = {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: predicate_type}
    return Blob(envelope, DSSE_MEDIA_TYPE, annotations)


@dataclass(frozen=True)
class Manifest:
    """A manifest to push: its bytes, the config blob it names, and its layer descriptors."""

    body: bytes
    config: Blob
    layers: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)

    @property
    def media_type(self) -> str:
        return oci.OCI_MANIFEST


def existing_layers(body: bytes, what: str) -> list[dict[str, Any]]:
    """The layer descriptors of a `.sig`/`.att` manifest already in the registry, kept verbatim
    (media type, digest, size, annotations) so appending never changes an earlier signature."""
    doc = oci.parse_json(body, what)
    layers = doc.get("layers")
    if doc.get("schemaVersion") != 2 or not isinstance(layers, list):
        raise ManifestError(f"{what} is not an image manifest with layers: refusing to overwrite it")
    kept: list[dict[str, Any]] = []
    for index, layer in enumerate(layers):
        if (
            not isinstance(layer, dict)
            or not isinstance(layer.get("digest"), str)
            or not isinstance(layer.get("size"), int)
        ):
            raise ManifestError(f"{what}: layer {index} is not a descriptor: refusing to overwrite it")
        check_digest(layer["digest"])
        kept.append(layer)
    return kept


def _config(layers: Sequence[Mapping[str, Any]]) -> Blob:
    """go-containerregistry's config for an image of static layers (diff_id = digest)."""
    config = {
        "architecture": "",
        "created": _ZERO_TIME,
        "history": [{"created": _ZERO_TIME} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "config": {},
    }
    return Blob(marshal(config), OCI_CONFIG_MEDIA_TYPE)


def tag_manifest(previous: Sequence[Mapping[str, Any]], new: Blob) -> Manifest:
    """The `.sig`/`.att` manifest: the previous layers, then `new` (appended, never replacing)."""
    layers = [dict(layer) for layer in previous] + [new.descriptor()]
    config = _config(layers)
    document = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers,
    }
    return Manifest(marshal(document), config, layers)


def referrer_manifest(subject: Mapping[str, Any], layer: Blob, artifact_type: str) -> Manifest:
    """An OCI 1.1 referrer: `subject` is the signed image's descriptor (mediaType, digest, size).
    Signatures use cosign's experimental layout (config media type = artifact type, config bytes
    as for the tag manifest); attestations its `WriteReferrer` one (empty config)."""
    subject_desc = {"mediaType": subject["mediaType"], "size": subject["size"], "digest": subject["digest"]}
    if artifact_type == SIG_ARTIFACT_TYPE:
        base = _config([layer.descriptor()])
        config = Blob(base.data, artifact_type)
    else:
        config = Blob(EMPTY_JSON, OCI_EMPTY_MEDIA_TYPE)
    document = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject_desc,
        "artifactType": artifact_type,
    }
    return Manifest(marshal(document), config, [layer.descriptor()])


def parse_referrers(body: bytes, what: str) -> list[dict[str, Any]]:
    """The descriptors of a referrers answer (an OCI image index)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ManifestError(f"{what} is not JSON") from exc
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        raise ManifestError(f"{what} is not an image index")
    return [m for m in manifests if isinstance(m, dict)]
