"""The sample image of `make run` and the end-to-end tests: a Debian 12 base layer (dpkg status,
os-release) and an application layer (Python and npm packages) from `samples/rootfs/`, whose
package versions carry real advisories kept in `samples/osv/`."""

from __future__ import annotations

import os
from pathlib import Path

from chalicelib.image.oci_writer import ImageRefInfo, LayerEntry, build_layer, write_oci_layout

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_OSV = SAMPLES / "osv"
SAMPLE_LAYERS = ("base", "app")
SAMPLE_CONFIG = {
    "config": {
        "User": "app",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED=1"],
        "WorkingDir": "/srv/app",
        "Cmd": ["python3", "-m", "app"],
    }
}


def files_of(root: Path) -> dict[str, bytes | LayerEntry]:
    """A directory tree as layer entries: regular files and symlinks (kept as links), sorted."""
    files: dict[str, bytes | LayerEntry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                files[rel] = LayerEntry(kind="symlink", target=os.readlink(path))
            else:
                files[rel] = path.read_bytes()
    return files


def write_sample_layout(layout_dir: Path, tag: str = "1.0") -> ImageRefInfo:
    layers = [build_layer(files_of(SAMPLES / "rootfs" / name)) for name in SAMPLE_LAYERS]
    return write_oci_layout(layout_dir, layers, config=SAMPLE_CONFIG, tag=tag)
