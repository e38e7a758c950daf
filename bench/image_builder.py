"""The benchmark images: real files from this (Debian 12) machine, packed as an OCI image layout,
without network and without holding a layer in memory.

- base layer: `/var/lib/dpkg` (the real package database), `/etc` (os-release is a symlink there,
  as on every Debian image), `/usr/lib/os-release`, then real directories (`/usr/bin`,
  `/usr/lib/x86_64-linux-gnu`, `/usr/share/...`, ...), each up to a share of the size, until the
  image reaches its uncompressed target.
- app layer: the `*.dist-info` directories of this project's `.venv` (real wheels' metadata) under
  `app/.venv/...`, and npm's own `node_modules` tree (real `package.json` files) under
  `app/node_modules/`.

Why our own writer: `chalicelib.image.oci_writer` builds layers in memory (right for tests, wrong for
a 500 MB image). Here tarfile's stream mode writes into a gzip stream (level 6, as docker does)
through two hashers, so the diff_id and the blob digest come out of the same single pass.

Images are cached in `.bench-cache/images/<name>/` and rebuilt only when the recipe changes."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import CACHE, MIB, REPO, say
from chalicelib.image import oci

#: bump when the recipe changes, so cached images are rebuilt
RECIPE_VERSION = 4
GZIP_LEVEL = 6

#: (directory, share of the base layer's budget): walked in this order, sorted within
BASE_ROOTS: tuple[tuple[str, float], ...] = (
    ("/etc", 0.03),
    ("/var/lib/dpkg", 0.12),
    ("/usr/bin", 0.15),
    ("/usr/sbin", 0.03),
    ("/usr/lib/x86_64-linux-gnu", 0.25),
    ("/usr/lib/python3.11", 0.12),
    ("/usr/lib/python3", 0.06),
    ("/usr/lib/git-core", 0.03),
    ("/usr/share/doc", 0.04),
    ("/usr/share/man", 0.04),
    ("/usr/share/locale", 0.03),
    ("/usr/share/perl", 0.03),
    ("/usr/include", 0.05),
    # fillers, reached only when the directories above hold less than their share
    ("/usr/lib/gcc", 0.6),
    ("/usr/lib/llvm-14", 0.6),
    ("/usr/lib/jvm", 0.6),
)
#: always in the base layer, whatever the budget
BASE_MUST = ("/var/lib/dpkg/status", "/usr/lib/os-release", "/etc/os-release", "/etc/debian_version")


@dataclass(frozen=True)
class ImageSpec:
    name: str
    #: uncompressed size the whole image (both layers' tars) must reach
    target_bytes: int


MEDIUM = ImageSpec("debian12-medium", 240 * MIB)
LARGE = ImageSpec("debian12-large", 480 * MIB)


@dataclass(frozen=True)
class BuiltLayer:
    digest: str
    diff_id: str
    size: int  # compressed
    uncompressed: int
    files: int


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    layers: tuple[BuiltLayer, ...]

    @property
    def uncompressed(self) -> int:
        return sum(layer.uncompressed for layer in self.layers)

    @property
    def compressed(self) -> int:
        return sum(layer.size for layer in self.layers)

    def blob(self, layer: BuiltLayer) -> Path:
        return self.layout / "blobs" / "sha256" / layer.digest.split(":", 1)[1]

    def describe(self) -> str:
        return (
            f"{self.layout.name}: {len(self.layers)} layers, {self.uncompressed / MIB:.0f} MiB uncompressed, "
            f"{self.compressed / MIB:.0f} MiB gzip-{GZIP_LEVEL}, "
            f"{sum(layer.files for layer in self.layers)} files"
        )


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through to `sink`."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.hasher = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.count += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Directories, regular files and symlinks under `root` (itself included), depth first in
    name order; never follows links; skips what cannot be read and special files."""
    try:
        st = root.lstat()
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
        yield root, st
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    yield root, st
    for name in names:
        yield from _walk(root / name)


class _LayerWriter:
    """One gzip layer blob written as a stream into `blob_dir`."""

    def __init__(self, blob_dir: Path) -> None:
        self.blob_dir = blob_dir
        self.tmp = blob_dir / ".layer.tmp"
        self._file = self.tmp.open("wb")
        self._compressed = _HashingWriter(self._file)
        self._gzip = gzip.GzipFile(fileobj=self._compressed, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
        self._tar_bytes = _HashingWriter(self._gzip)
        self._tar = tarfile.open(fileobj=self._tar_bytes, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]  # noqa: SIM115 (closed in finish)
        self._seen: set[str] = set()
        self.files = 0

    @property
    def written(self) -> int:
        return self._tar_bytes.count

    def _parents(self, arcname: str) -> None:
        """Directory entries for every parent not written yet (a layer needs no more)."""
        parts = arcname.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self._seen:
                self._seen.add(parent)
                info = tarfile.TarInfo(parent)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                self._tar.addfile(info)

    def add(self, path: Path, st: os.stat_result, arcname: str) -> int:
        """Add one filesystem object as `arcname`; returns the data bytes it added."""
        if arcname in self._seen:
            return 0
        self._seen.add(arcname)
        info = tarfile.TarInfo(arcname)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            self._parents(arcname)
            info.type = tarfile.DIRTYPE
            self._tar.addfile(info)
            return 0
        if stat.S_ISLNK(st.st_mode):
            try:
                info.linkname = os.readlink(path)
            except OSError:
                return 0
            self._parents(arcname)
            info.type = tarfile.SYMTYPE
            self._tar.addfile(info)
            return 0
        try:
            handle = path.open("rb")
        except OSError:
            return 0
        with handle:
            info.size = os.fstat(handle.fileno()).st_size
            self._parents(arcname)
            self._tar.addfile(info, handle)
        self.files += 1
        return info.size

    def finish(self) -> BuiltLayer:
        self._tar.close()
        self._gzip.close()
        self._file.close()
        digest = self._compressed.digest
        final = self.blob_dir / digest.split(":", 1)[1]
        self.tmp.replace(final)
        return BuiltLayer(digest, self._tar_bytes.digest, self._compressed.count, self.written, self.files)


def _arcname(path: Path) -> str:
    return str(path).lstrip("/")


def _build_app_layer(blob_dir: Path) -> BuiltLayer:
    writer = _LayerWriter(blob_dir)
    site = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
    if site.is_dir():
        for dist in sorted(site.glob("*.dist-info")):
            for path, st in _walk(dist):
                rel = path.relative_to(site)
                writer.add(path, st, f"app/.venv/lib/python3.11/site-packages/{rel}")
    node_modules = Path("/usr/lib/node_modules/npm/node_modules")
    if node_modules.is_dir():
        for path, st in _walk(node_modules):
            writer.add(path, st, f"app/node_modules/{path.relative_to(node_modules)}")
    return writer.finish()


def _build_base_layer(blob_dir: Path, budget: int) -> BuiltLayer:
    writer = _LayerWriter(blob_dir)
    for must in BASE_MUST:
        path = Path(must)
        try:
            writer.add(path, path.lstat(), _arcname(path))
        except OSError:
            continue
    for root, share in BASE_ROOTS:
        if writer.written >= budget:
            break
        root_budget = writer.written + int(budget * share)
        for path, st in _walk(Path(root)):
            if writer.written >= min(root_budget, budget):
                break
            writer.add(path, st, _arcname(path))
    return writer.finish()


def _config(layers: list[BuiltLayer]) -> dict[str, Any]:
    return {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs.tar.gz / # debian:12, real files"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "COPY app /app # dist-info + node_modules"},
        ],
    }


def _write_json_blob(blob_dir: Path, doc: Any) -> tuple[str, int]:
    data = json.dumps(doc, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blob_dir / digest.split(":", 1)[1]).write_bytes(data)
    return digest, len(data)


def write_image_index(layout: Path, config: dict[str, Any], layers: Sequence[BuiltLayer]) -> None:
    """The config, manifest, index.json and oci-layout of a single-image layout whose layer blobs
    are already in `layout/blobs/sha256` (tag `latest`, linux/amd64)."""
    blob_dir = layout / "blobs" / "sha256"
    config_digest, config_size = _write_json_blob(blob_dir, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": oci.OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size} for layer in layers
        ],
    }
    manifest_digest, manifest_size = _write_json_blob(blob_dir, manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [
            {
                "mediaType": oci.OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {oci.REF_NAME_ANNOTATION: "latest"},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps(index, separators=(",", ":")))


def _build(spec: ImageSpec, layout: Path) -> list[BuiltLayer]:
    blob_dir = layout / "blobs" / "sha256"
    blob_dir.mkdir(parents=True)
    app = _build_app_layer(blob_dir)
    base = _build_base_layer(blob_dir, max(spec.target_bytes - app.uncompressed, 0))
    layers = [base, app]
    write_image_index(layout, _config(layers), layers)
    return layers


def _recipe(spec: ImageSpec) -> dict[str, Any]:
    return {"version": RECIPE_VERSION, "target_bytes": spec.target_bytes, "gzip_level": GZIP_LEVEL}


def ensure_image(spec: ImageSpec) -> BuiltImage:
    """The image for `spec`, from the cache when its recipe matches, else built now (atomically:
    into a temporary directory renamed into place)."""
    layout = CACHE / "images" / spec.name
    stamp = layout / "bench-image.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("recipe") == _recipe(spec):
            layers = tuple(BuiltLayer(**layer) for layer in saved["layers"])
            return BuiltImage(layout, layers)
    say(
        f"  building {spec.name} ({spec.target_bytes / MIB:.0f} MiB uncompressed) "
        "from this machine's files ..."
    )
    tmp = layout.with_name(layout.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    built = _build(spec, tmp)
    (tmp / "bench-image.json").write_text(
        json.dumps({"recipe": _recipe(spec), "layers": [layer.__dict__ for layer in built]}, indent=1)
    )
    shutil.rmtree(layout, ignore_errors=True)
    tmp.replace(layout)
    image = BuiltImage(layout, tuple(built))
    say(f"  built {image.describe()}")
    return image
