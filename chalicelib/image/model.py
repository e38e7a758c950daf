"""What every image source hands to the walker: a resolved single-platform image whose layer blobs
can be opened as streams. Sources differ only in where bytes come from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class LayerRef:
    """One layer: `digest` names the blob as stored (compressed), `diff_id` the uncompressed tar
    (from the image config's rootfs.diff_ids, the contract's `layer` value). A `dir:` source has a
    single synthetic layer with `digest == diff_id`."""

    digest: str
    media_type: str
    size: int
    diff_id: str


@dataclass
class ResolvedImage:
    """One image for one platform. `manifest_digest` is None when the source has no manifest
    (docker-archive, dir): the scan then reports the config digest as the image digest."""

    config_digest: str
    config: dict[str, Any]
    layers: list[LayerRef]
    platform: str | None = None
    manifest_digest: str | None = None
    index_digest: str | None = None
    reference: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.manifest_digest or self.config_digest


class ImageSource(ABC):
    """A place images come from. `resolve` picks platforms; `open_blob` streams one layer blob and
    verifies its digest once fully read (raising `DigestMismatchError`)."""

    @abstractmethod
    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        """The images to scan: one for `platform` (default linux/amd64, or the only one there is),
        or every platform of an index when `all_platforms`."""

    @abstractmethod
    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        """A readable stream of the layer blob as stored (possibly compressed)."""
