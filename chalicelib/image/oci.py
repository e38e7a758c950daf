"""OCI / Docker v2 schema 2 documents (manifest, index, image config) as tolerant pydantic models,
plus the platform selection and manifest resolution every source shares.

Why shared: an OCI layout on disk and a registry differ only in how a blob is fetched. Both hand
`resolve_descriptors` a `fetch` function; selection of tags' platforms, nested indexes, digest
checks and validation happen here once. Unknown fields are ignored everywhere (registries and
build tools add their own)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import InputError, ManifestError
from chalicelib.image.model import DEFAULT_PLATFORM, LayerRef, ResolvedImage
from chalicelib.image.streams import check_digest

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

MANIFEST_TYPES = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset((OCI_INDEX, DOCKER_MANIFEST_LIST))
CONFIG_TYPES = frozenset((OCI_CONFIG, DOCKER_CONFIG))
#: every media type the `Accept` header of a manifest request should list
ACCEPTED_MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"

#: registries refuse manifests over 4 MiB; we refuse to read more
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_INDEX_DEPTH = 4


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Platform(_Doc):
    architecture: str
    os: str
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


class Descriptor(_Doc):
    media_type: str = Field(default="", alias="mediaType")
    digest: str
    size: int = Field(ge=0)
    urls: list[str] | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")

    @field_validator("digest")
    @classmethod
    def _valid_digest(cls, value: str) -> str:
        try:
            return check_digest(value)
        except ManifestError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("annotations", mode="before")
    @classmethod
    def _null_annotations(cls, value: Any) -> Any:
        return {} if value is None else value


class Manifest(_Doc):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    config: Descriptor
    layers: list[Descriptor] = Field(default_factory=list)
    annotations: dict[str, str] = Field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")

    @field_validator("layers", "annotations", mode="before")
    @classmethod
    def _nulls(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "layers" else {}
        return value


class Index(_Doc):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    manifests: list[Descriptor] = Field(default_factory=list)
    annotations: dict[str, str] = Field(default_factory=dict)
    subject: Descriptor | None = None

    @field_validator("manifests", "annotations", mode="before")
    @classmethod
    def _nulls(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "manifests" else {}
        return value


class RootFS(_Doc):
    type: str = "layers"
    diff_ids: list[str] = Field(default_factory=list)

    @field_validator("diff_ids")
    @classmethod
    def _valid_digests(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                check_digest(value)
            except ManifestError as exc:
                raise ValueError(str(exc)) from None
        return values


class HistoryEntry(_Doc):
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False


class ContainerConfig(_Doc):
    user: str | None = Field(default=None, alias="User")
    exposed_ports: dict[str, Any] | None = Field(default=None, alias="ExposedPorts")
    env: list[str] | None = Field(default=None, alias="Env")
    entrypoint: list[str] | None = Field(default=None, alias="Entrypoint")
    cmd: list[str] | None = Field(default=None, alias="Cmd")
    volumes: dict[str, Any] | None = Field(default=None, alias="Volumes")
    working_dir: str | None = Field(default=None, alias="WorkingDir")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    stop_signal: str | None = Field(default=None, alias="StopSignal")
    healthcheck: dict[str, Any] | None = Field(default=None, alias="Healthcheck")


class ImageConfig(_Doc):
    architecture: str = ""
    os: str = ""
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")
    created: str | None = None
    author: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFS
    history: list[HistoryEntry] = Field(default_factory=list)

    @field_validator("history", mode="before")
    @classmethod
    def _null_history(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def platform(self) -> str | None:
        if not self.os or not self.architecture:
            return None
        return str(Platform(os=self.os, architecture=self.architecture, variant=self.variant))


_M = TypeVar("_M", bound=_Doc)


# -- parsing -----------------------------------------------------------------------------------


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object, or `ManifestError` naming `what`."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: expected a JSON object")
    return doc


def _validate(model: type[_M], doc: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ManifestError(f"{what}: {problems}") from None


def document_kind(doc: dict[str, Any], media_type_hint: str | None = None) -> str:
    """ "manifest" or "index", from the document's own mediaType, else the hint, else its shape."""
    media_type = doc.get("mediaType") or media_type_hint or ""
    if media_type in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("Docker schema 1 manifests are not supported (re-push the image)")
    if media_type in INDEX_TYPES:
        return "index"
    if media_type in MANIFEST_TYPES:
        return "manifest"
    if "manifests" in doc:
        return "index"
    if "layers" in doc or "config" in doc:
        return "manifest"
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def parse_manifest(data: bytes, what: str = "manifest") -> Manifest:
    return _validate(Manifest, parse_json(data, what), what)


def parse_index(data: bytes, what: str = "image index") -> Index:
    return _validate(Index, parse_json(data, what), what)


def parse_config(data: bytes, what: str = "image config") -> tuple[ImageConfig, dict[str, Any]]:
    """The typed config and the raw JSON object (kept whole for config analyzers)."""
    doc = parse_json(data, what)
    return _validate(ImageConfig, doc, what), doc


# -- platforms ---------------------------------------------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def parse_platform(spec: str) -> Platform:
    """`os/arch[/variant]` (as `--platform` takes it) -> Platform, with common aliases."""
    parts = spec.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError(f"invalid platform {spec!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    os_name, arch = parts[0].lower(), parts[1].lower()
    variant = parts[2].lower() if len(parts) == 3 else None
    if arch == "armhf":
        arch, variant = "arm", variant or "v7"
    elif arch == "armel":
        arch, variant = "arm", variant or "v6"
    return Platform(os=os_name, architecture=_ARCH_ALIASES.get(arch, arch), variant=variant)


def platform_matches(want: Platform, have: Platform) -> bool:
    """Same OS and architecture; the variant only matters when `want` names one (absent variants
    count as the architecture's default: arm64 -> v8, arm -> v7)."""
    have_arch = _ARCH_ALIASES.get(have.architecture.lower(), have.architecture.lower())
    if want.os != have.os.lower() or want.architecture != have_arch:
        return False
    if want.variant is None:
        return True
    default = _DEFAULT_VARIANT.get(have_arch)
    return want.variant == ((have.variant or default or "").lower())


# -- resolution --------------------------------------------------------------------------------

#: fetch(descriptor, what) -> the blob's bytes, already checked against the descriptor's digest
Fetch = Callable[[Descriptor, str], bytes]


@dataclass
class _Leaf:
    descriptor: Descriptor
    index_digest: str | None
    platform: Platform | None


def _is_attestation(desc: Descriptor) -> bool:
    if desc.annotations.get(DOCKER_REFERENCE_TYPE) == "attestation-manifest":
        return True
    return (
        desc.platform is not None
        and desc.platform.os == "unknown"
        and desc.platform.architecture == "unknown"
    )


def _fetch_checked(fetch: Fetch, desc: Descriptor, limit: int, what: str) -> bytes:
    if desc.size > limit:
        raise ManifestError(f"{what} {desc.digest} is {desc.size} bytes, more than the {limit} accepted")
    return fetch(desc, what)


def _leaves(
    fetch: Fetch, descriptors: Sequence[Descriptor], index_digest: str | None, depth: int
) -> list[_Leaf]:
    """Flatten nested indexes into image manifests, skipping attestations and other artifacts."""
    if depth > MAX_INDEX_DEPTH:
        raise ManifestError(f"image indexes nested more than {MAX_INDEX_DEPTH} deep")
    leaves: list[_Leaf] = []
    for desc in descriptors:
        if _is_attestation(desc):
            continue
        if desc.media_type in INDEX_TYPES:
            data = _fetch_checked(fetch, desc, MAX_MANIFEST_BYTES, "image index")
            index = _validate(Index, parse_json(data, "image index"), f"image index {desc.digest}")
            leaves.extend(_leaves(fetch, index.manifests, desc.digest, depth + 1))
        elif desc.media_type in MANIFEST_TYPES or not desc.media_type:
            leaves.append(_Leaf(desc, index_digest, desc.platform))
        else:
            log.debug("skipping descriptor %s of media type %s", desc.digest, desc.media_type)
    return leaves


def _load_image(fetch: Fetch, leaf: _Leaf, reference: str | None) -> ResolvedImage:
    desc = leaf.descriptor
    data = _fetch_checked(fetch, desc, MAX_MANIFEST_BYTES, "manifest")
    doc = parse_json(data, f"manifest {desc.digest}")
    if document_kind(doc, desc.media_type) != "manifest":
        raise ManifestError(f"manifest {desc.digest}: is an index but its descriptor says {desc.media_type}")
    manifest = _validate(Manifest, doc, f"manifest {desc.digest}")
    if manifest.config.media_type not in CONFIG_TYPES:
        raise ManifestError(
            f"manifest {desc.digest} is not a container image "
            f"(config media type {manifest.config.media_type!r})"
        )
    config_bytes = _fetch_checked(fetch, manifest.config, MAX_CONFIG_BYTES, "image config")
    config, raw_config = parse_config(config_bytes, f"image config {manifest.config.digest}")
    diff_ids = config.rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise ManifestError(
            f"manifest {desc.digest} has {len(manifest.layers)} layers but its config lists "
            f"{len(diff_ids)} diff_ids"
        )
    layers = [
        LayerRef(digest=layer.digest, media_type=layer.media_type, size=layer.size, diff_id=diff_id)
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True)
    ]
    platform = config.platform or (str(leaf.platform) if leaf.platform else None)
    return ResolvedImage(
        config_digest=manifest.config.digest,
        config=raw_config,
        layers=layers,
        platform=platform,
        manifest_digest=desc.digest,
        index_digest=leaf.index_digest,
        reference=reference,
        annotations={**desc.annotations, **manifest.annotations},
    )


def resolve_descriptors(
    fetch: Fetch,
    descriptors: Sequence[Descriptor],
    *,
    platform: str | None = None,
    all_platforms: bool = False,
    reference: str | None = None,
    index_digest: str | None = None,
) -> list[ResolvedImage]:
    """Resolve descriptors (the entries of a layout's index.json, or a registry's root manifest)
    to images: nested indexes are followed, then one platform is chosen - `platform` if given,
    else the only one, else linux/amd64 - or all of them with `all_platforms`.

    A platform that is not there is a `ManifestError` listing the available ones."""
    leaves = _leaves(fetch, descriptors, index_digest, 0)
    if not leaves:
        raise ManifestError("no container image manifest found")
    loaded: dict[int, ResolvedImage] = {}

    def platform_of(i: int) -> Platform | None:
        leaf = leaves[i]
        if leaf.platform is None:  # not in the index: the config says
            loaded[i] = image = _load_image(fetch, leaf, reference)
            leaf.platform = parse_platform(image.platform) if image.platform else None
        return leaf.platform

    def image_of(i: int) -> ResolvedImage:
        return loaded[i] if i in loaded else _load_image(fetch, leaves[i], reference)

    if all_platforms:
        return [image_of(i) for i in range(len(leaves))]
    if platform is None and len(leaves) == 1:
        return [image_of(0)]
    want = parse_platform(platform or DEFAULT_PLATFORM)
    for i in range(len(leaves)):
        have = platform_of(i)
        if have is not None and platform_matches(want, have):
            return [image_of(i)]
    available = sorted({str(p) for i in range(len(leaves)) if (p := platform_of(i)) is not None})
    raise ManifestError(
        f"no image for platform {want}; available: {', '.join(available) or 'none declared'}"
        + ("" if platform else " (choose one with --platform)")
    )
