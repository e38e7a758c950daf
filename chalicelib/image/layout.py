"""Local image sources: an OCI image layout directory, a `docker save` tarball and a plain directory
tree, plus `parse_source`, which turns a SOURCE argument into the right source.

Why local sources read blobs in place: nothing is extracted to disk. An OCI layout is read blob by
blob; a docker-archive's members are read at their offsets inside the tarball; a directory is
streamed as a tar built on the fly. All of them hand the walker the same thing (`ImageSource`), so
the analyzers and the whiteout logic see one code path whatever the origin."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import os
import re
import stat
import tarfile
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, cast

from chalicelib.errors import DigestMismatchError, InputError, ManifestError, SourceError
from chalicelib.image import oci
from chalicelib.image.model import ImageSource, LayerRef, ResolvedImage
from chalicelib.image.streams import (
    READ_SIZE,
    IterStream,
    check_digest,
    sha256_digest,
    sniff_compression,
    verified_stream,
    verify_bytes,
)

log = logging.getLogger(__name__)

MAX_INDEX_JSON_BYTES = 64 * 1024 * 1024
MAX_DOCKER_MANIFEST_BYTES = 16 * 1024 * 1024


# -- OCI image layout ----------------------------------------------------------------------------


class OCILayoutSource(ImageSource):
    """An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).

    `tag` selects index.json entries by `org.opencontainers.image.ref.name` (or containerd's
    `io.containerd.image.name`); it is needed only when the layout holds several tags. Every
    manifest, index and config read is checked against its digest and size; layer blobs are
    checked as they stream."""

    def __init__(self, layout_dir: str | os.PathLike[str], tag: str | None = None) -> None:
        self.root = Path(layout_dir)
        self.tag = tag
        if not (self.root / "index.json").is_file():
            raise SourceError(f"{self.root} is not an OCI image layout (no index.json)")

    def __repr__(self) -> str:
        return f"OCILayoutSource({str(self.root)!r}, tag={self.tag!r})"

    def _blob_path(self, digest: str) -> Path:
        algorithm, hex_digest = check_digest(digest).split(":", 1)
        return self.root / "blobs" / algorithm / hex_digest

    def _fetch(self, desc: oci.Descriptor, what: str) -> bytes:
        try:
            with self._blob_path(desc.digest).open("rb") as handle:
                data = handle.read(desc.size + 1)
        except FileNotFoundError:
            raise SourceError(f"{what} {desc.digest} is missing from OCI layout {self.root}") from None
        return verify_bytes(data, desc.digest, desc.size, what)

    def _entries(self) -> tuple[list[oci.Descriptor], str | None]:
        """The index.json entries for the chosen tag, and that tag."""
        path = self.root / "index.json"
        if path.stat().st_size > MAX_INDEX_JSON_BYTES:
            raise ManifestError(f"{path} is larger than {MAX_INDEX_JSON_BYTES} bytes")
        index = oci.parse_index(path.read_bytes(), f"{path}")
        entries = index.manifests

        def names(desc: oci.Descriptor) -> list[str]:
            return [
                value
                for key in (oci.REF_NAME_ANNOTATION, oci.CONTAINERD_NAME_ANNOTATION)
                if (value := desc.annotations.get(key))
            ]

        tags = sorted(
            {
                d.annotations[oci.REF_NAME_ANNOTATION]
                for d in entries
                if oci.REF_NAME_ANNOTATION in d.annotations
            }
        )
        if self.tag is not None:
            chosen = [d for d in entries if d.annotations.get(oci.REF_NAME_ANNOTATION) == self.tag]
            chosen = chosen or [d for d in entries if self.tag in names(d)]
            if not chosen:
                raise ManifestError(
                    f"no image tagged {self.tag!r} in OCI layout {self.root}; "
                    f"tags: {', '.join(tags) or 'none'}"
                )
            return chosen, self.tag
        if len(tags) > 1:
            raise ManifestError(
                f"OCI layout {self.root} holds several images ({', '.join(tags)}): name one as oci:DIR:TAG"
            )
        if len(tags) == 1:
            return [d for d in entries if d.annotations.get(oci.REF_NAME_ANNOTATION) == tags[0]], tags[0]
        return entries, None

    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        entries, tag = self._entries()
        return oci.resolve_descriptors(
            self._fetch, entries, platform=platform, all_platforms=all_platforms, reference=tag
        )

    @contextmanager
    def _open(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        try:
            handle = self._blob_path(layer.digest).open("rb")
        except FileNotFoundError:
            raise SourceError(f"layer {layer.digest} is missing from OCI layout {self.root}") from None
        with handle, verified_stream(handle, layer.digest, layer.size) as stream:
            yield stream

    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        return self._open(layer)


# -- docker save tarball -------------------------------------------------------------------------


class _Window(io.RawIOBase):
    """At most `size` bytes of `handle` from its current position: one member of a tarball."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        super().__init__()
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._handle.read(size)
        self._left -= len(data)
        return data


_BLOB_PATH = re.compile(r"^blobs/(sha256/[a-f0-9]{64}|sha512/[a-f0-9]{128})$")
_LEGACY_CONFIG = re.compile(r"^([a-f0-9]{64})\.json$")


class DockerArchiveSource(ImageSource):
    """A `docker save` tarball (uncompressed), read in place.

    manifest.json names the config and the layer members; layers are plain tars (classic format,
    `<id>/layer.tar`) or OCI blobs (Docker 25+, `blobs/sha256/<hex>`). diff_ids come from the
    config. `ref` picks one of several images by RepoTag. There is no manifest, so the image digest
    is the config digest."""

    def __init__(self, path: str | os.PathLike[str], ref: str | None = None) -> None:
        self.path = Path(path)
        self.ref = ref
        self._members: dict[str, tarfile.TarInfo] | None = None
        self._layer_members: dict[str, tarfile.TarInfo] = {}

    def __repr__(self) -> str:
        return f"DockerArchiveSource({str(self.path)!r}, ref={self.ref!r})"

    def _index(self) -> dict[str, tarfile.TarInfo]:
        if self._members is not None:
            return self._members
        try:
            with self.path.open("rb") as handle:
                head = handle.read(8)
                if sniff_compression(head).value != "none":
                    raise SourceError(
                        f"{self.path} is compressed; decompress it first (docker save writes a plain tar)"
                    )
                handle.seek(0)
                with tarfile.open(fileobj=handle, mode="r:") as tar:
                    members = tar.getmembers()
        except OSError as exc:
            raise SourceError(f"cannot read docker archive {self.path}: {exc}") from None
        except tarfile.TarError as exc:
            raise SourceError(f"{self.path} is not a docker-archive tarball: {exc}") from None
        self._members = {os.path.normpath(m.name).lstrip("/"): m for m in members}
        return self._members

    def _member(self, name: str) -> tarfile.TarInfo:
        """A regular-file member by name, following in-archive symlinks (never outside it)."""
        members = self._index()
        current = os.path.normpath(name)
        for _ in range(8):
            member = members.get(current)
            if member is None:
                raise ManifestError(f"{self.path}: manifest.json names {name!r}, which is not in the archive")
            if member.isfile():
                return member
            if not member.issym():
                raise ManifestError(f"{self.path}: {name!r} is not a regular file")
            target = os.path.normpath(os.path.join(os.path.dirname(current), member.linkname))
            if target.startswith(("../", "/")) or target == "..":
                raise ManifestError(f"{self.path}: {name!r} links outside the archive")
            current = target
        raise ManifestError(f"{self.path}: too many symlinks resolving {name!r}")

    def _read_member(self, member: tarfile.TarInfo, limit: int) -> bytes:
        if member.size > limit:
            raise ManifestError(f"{self.path}: {member.name} is larger than {limit} bytes")
        with self.path.open("rb") as handle:
            handle.seek(member.offset_data)
            data = handle.read(member.size)
        if len(data) != member.size:
            raise SourceError(f"{self.path}: truncated member {member.name}")
        return data

    def _choose(self) -> dict[str, Any]:
        raw = self._read_member(self._member("manifest.json"), MAX_DOCKER_MANIFEST_BYTES)
        try:
            entries = json.loads(raw)
        except ValueError as exc:
            raise ManifestError(f"{self.path}: manifest.json is not JSON ({exc})") from None
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise ManifestError(f"{self.path}: manifest.json must be a non-empty list of images")
        if self.ref is not None:
            chosen = [e for e in entries if self.ref in (e.get("RepoTags") or [])]
            if not chosen:
                raise ManifestError(f"{self.path}: no image tagged {self.ref!r}; tags: {_repo_tags(entries)}")
            return cast(dict[str, Any], chosen[0])
        if len(entries) > 1:
            raise ManifestError(
                f"{self.path} holds {len(entries)} images ({_repo_tags(entries)}): "
                "name one as docker-archive:FILE:REPO:TAG"
            )
        return cast(dict[str, Any], entries[0])

    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        entry = self._choose()
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise ManifestError(f"{self.path}: manifest.json entry lacks Config/Layers")
        config_bytes = self._read_member(self._member(config_name), oci.MAX_CONFIG_BYTES)
        config_digest = sha256_digest(config_bytes)
        named = _digest_from_name(config_name)
        if named is not None:
            verify_bytes(config_bytes, named, what=f"{self.path}: config {config_name}")
        config, raw_config = oci.parse_config(config_bytes, f"{self.path}: config {config_name}")
        diff_ids = config.rootfs.diff_ids
        if len(diff_ids) != len(layer_names):
            raise ManifestError(
                f"{self.path}: {len(layer_names)} layers but the config lists {len(diff_ids)} diff_ids"
            )
        layers: list[LayerRef] = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            member = self._member(str(name))
            # classic layer.tar files are the uncompressed tar: their digest is the diff_id
            digest = _digest_from_name(str(name)) or diff_id
            self._layer_members[digest] = member
            layers.append(
                LayerRef(digest=digest, media_type=oci.DOCKER_LAYER, size=member.size, diff_id=diff_id)
            )
        image = ResolvedImage(
            config_digest=config_digest,
            config=raw_config,
            layers=layers,
            platform=config.platform,
            reference=self.ref or next(iter(entry.get("RepoTags") or []), None),
        )
        if platform is not None and not all_platforms:
            want = oci.parse_platform(platform)
            if image.platform is None or not oci.platform_matches(want, oci.parse_platform(image.platform)):
                raise ManifestError(
                    f"no image for platform {want} in {self.path}; "
                    f"available: {image.platform or 'none declared'}"
                )
        return [image]

    @contextmanager
    def _open(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        member = self._layer_members.get(layer.digest)
        if member is None:
            raise SourceError(f"layer {layer.digest} is not part of {self.path} (resolve first)")
        with self.path.open("rb") as handle:
            handle.seek(member.offset_data)
            window = cast(IO[bytes], _Window(handle, member.size))
            with verified_stream(window, layer.digest, layer.size) as stream:
                yield stream

    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        return self._open(layer)


def _repo_tags(entries: list[Any]) -> str:
    tags = [t for e in entries for t in (e.get("RepoTags") or [])]
    return ", ".join(tags) or "untagged"


def _digest_from_name(name: str) -> str | None:
    """`blobs/sha256/<hex>` or `<hex>.json` name their content's digest; other names do not."""
    normalized = os.path.normpath(name)
    if match := _BLOB_PATH.match(normalized):
        return match.group(1).replace("/", ":")
    if match := _LEGACY_CONFIG.match(normalized):
        return f"sha256:{match.group(1)}"
    return None


# -- directory tree ------------------------------------------------------------------------------

_MAX_DIR_DEPTH = 256


def _header(name: str, kind: bytes, size: int = 0, mode: int = 0o644, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.linkname = linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _file_chunks(dir_fd: int, name: str, path: str, size: int, mode: int) -> Iterator[bytes]:
    """Header + content + padding of one regular file, opened without following symlinks.

    The size is the one seen by lstat when the header is written: a file that grows is cut, one
    that shrinks is padded (the layer digest check then reports that the tree changed)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        log.warning("dir source: skipping unreadable %s: %s", path, exc)
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        yield _header(path, tarfile.REGTYPE, size, mode)
        left = size
        while left > 0:
            data = handle.read(min(left, READ_SIZE))
            if not data:
                yield bytes(left)
                break
            left -= len(data)
            yield data
    if size % tarfile.BLOCKSIZE:
        yield bytes(tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)


def _dir_chunks(dir_fd: int, prefix: str, depth: int) -> Iterator[bytes]:
    """Tar chunks for the directory open at `dir_fd`, sorted by name, never following symlinks
    (entries are opened relative to their parent's descriptor with O_NOFOLLOW)."""
    with os.scandir(dir_fd) as scan:
        names = sorted(entry.name for entry in scan)
    for name in names:
        path = prefix + name
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            log.warning("dir source: skipping %s: %s", path, exc)
            continue
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if depth >= _MAX_DIR_DEPTH:
                log.warning("dir source: not descending into %s: deeper than %d", path, _MAX_DIR_DEPTH)
                continue
            try:
                sub_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                log.warning("dir source: skipping unreadable directory %s: %s", path, exc)
                continue
            try:
                yield _header(path + "/", tarfile.DIRTYPE, mode=mode)
                yield from _dir_chunks(sub_fd, path + "/", depth + 1)
            finally:
                os.close(sub_fd)
        elif stat.S_ISLNK(st.st_mode):
            yield _header(path, tarfile.SYMTYPE, mode=mode, linkname=os.readlink(name, dir_fd=dir_fd))
        elif stat.S_ISREG(st.st_mode):
            yield from _file_chunks(dir_fd, name, path, st.st_size, mode)
        # devices, fifos and sockets are left out: nothing to analyze, and a fifo would block


def dir_tar_chunks(root: str | os.PathLike[str]) -> Generator[bytes, None, None]:
    """The tree under `root` as a deterministic tar stream (sorted names, mtime 0, owner 0)."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield from _dir_chunks(root_fd, "", 0)
    finally:
        os.close(root_fd)
    yield bytes(2 * tarfile.BLOCKSIZE)


class DirSource(ImageSource):
    """A directory tree (build context, unpacked rootfs) as an image of one synthetic layer.

    The layer is the tree as a tar built on the fly; its digest (also its diff_id) is computed at
    `resolve` by streaming that tar once, and checked again while the walker reads it, so a tree
    that changes during the scan is reported (`DigestMismatchError`) instead of silently mixed.
    Symlinks are recorded as symlinks, never followed; nothing outside the root is read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.realpath(path))
        if not self.path.is_dir():
            raise SourceError(f"{path} is not a directory")

    def __repr__(self) -> str:
        return f"DirSource({str(self.path)!r})"

    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        hasher = hashlib.sha256()
        size = 0
        for chunk in dir_tar_chunks(self.path):
            hasher.update(chunk)
            size += len(chunk)
        digest = "sha256:" + hasher.hexdigest()
        config: dict[str, Any] = {
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest]},
            "history": [{"created_by": "lifeguard dir source"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        layer = LayerRef(digest=digest, media_type=oci.OCI_LAYER, size=size, diff_id=digest)
        return [ResolvedImage(config_digest=sha256_digest(config_bytes), config=config, layers=[layer])]

    @contextmanager
    def _open(self, layer: LayerRef) -> Iterator[IO[bytes]]:
        chunks = dir_tar_chunks(self.path)
        stream = cast(IO[bytes], IterStream(chunks))
        try:
            with verified_stream(stream, layer.digest, layer.size) as verified:
                yield verified
        except DigestMismatchError as exc:
            raise DigestMismatchError(f"{self.path} changed while it was scanned ({exc})") from exc
        finally:
            chunks.close()  # closes the directory descriptors now, not at garbage collection

    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        return self._open(layer)


# -- SOURCE argument -----------------------------------------------------------------------------

_SCHEMES = ("oci", "docker-archive", "dir", "registry")
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PLAIN_REFERENCE = re.compile(
    rf"^[a-zA-Z0-9.-]+(?::[0-9]+)?/{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_USAGE = "use oci:DIR[:TAG], docker-archive:FILE, dir:PATH or registry:HOST[:PORT]/REPO[:TAG|@DIGEST]"


def _split_path_and_ref(rest: str, exists: Any) -> tuple[str, str | None]:
    """`PATH[:REF]` where PATH may itself contain colons: the longest prefix that exists wins."""
    if exists(rest):
        return rest, None
    for idx in range(len(rest) - 1, 0, -1):
        if rest[idx] == ":" and exists(rest[:idx]):
            return rest[:idx], rest[idx + 1 :] or None
    return rest, None


def parse_source(spec: str) -> ImageSource:
    """Turn a SOURCE argument (see the command-line contract) into an `ImageSource`.

    `registry:...` and plain `HOST/REPO...` go to `chalicelib.image.registry.registry_source`
    (given the reference without the `registry:` prefix), imported only then."""
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in _SCHEMES:
        if not rest:
            raise InputError(f"image source {spec!r} is missing its {scheme} part; {_USAGE}")
        if scheme == "oci":
            layout_dir, tag = _split_path_and_ref(
                rest, lambda p: os.path.isfile(os.path.join(p, "index.json"))
            )
            if not os.path.isdir(layout_dir):
                raise SourceError(f"no OCI image layout at {layout_dir}")
            return OCILayoutSource(layout_dir, tag)
        if scheme == "docker-archive":
            archive, ref = _split_path_and_ref(rest, os.path.isfile)
            if not os.path.isfile(archive):
                raise SourceError(f"no docker archive at {archive}")
            return DockerArchiveSource(archive, ref)
        if scheme == "dir":
            return DirSource(rest)
        return _registry_source(rest)
    if _PLAIN_REFERENCE.match(spec):
        return _registry_source(spec)
    raise InputError(f"unknown image source {spec!r}: {_USAGE}")


def _registry_source(reference: str) -> ImageSource:
    registry = importlib.import_module("chalicelib.image.registry")
    return cast(ImageSource, registry.registry_source(reference))
