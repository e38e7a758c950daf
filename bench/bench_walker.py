"""Benchmark of the layer walker against `gzip -dc` over the same layers (target: within 1.5x).

Two gzip layers: the virtualenv's site-packages (a realistic language layer: many small and some
large files) and a synthetic worst case of 100,000 tiny files. Each is scanned with the default
analyzers through an OCI layout, exactly as `lifeguard scan oci:...` reads it.

Run: `.venv/bin/python -m bench.bench_walker [LAYOUT_DIR ...]` (extra OCI layouts are timed too).
"""

import gzip
import io
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

from chalicelib.analyzers import default_analyzers
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import write_oci_layout
from chalicelib.image.walker import walk_image


def _site_packages_layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(sysconfig.get_paths()["purelib"], arcname="usr/lib/python3/site-packages")
    return gzip.compress(out.getvalue(), compresslevel=6, mtime=0)


def _tiny_files_layer(count: int = 100_000) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for i in range(count):
            data = b"module.exports = %d;\n" % i
            info = tarfile.TarInfo(f"app/node_modules/pkg{i // 40}/lib/file{i}.js")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), compresslevel=6, mtime=0)


def _gzip_dc_seconds(layout: Path) -> float:
    source = OCILayoutSource(layout)
    [image] = source.resolve()
    start = time.perf_counter()
    for layer in image.layers:
        blob = layout / "blobs" / "sha256" / layer.digest.split(":", 1)[1]
        subprocess.run(["gzip", "-dc", str(blob)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _walk_seconds(layout: Path) -> tuple[float, int, int]:
    source = OCILayoutSource(layout)
    [image] = source.resolve()
    start = time.perf_counter()
    result = walk_image(source, image, default_analyzers())
    seconds = time.perf_counter() - start
    return seconds, sum(s.entries for s in result.layers), sum(s.bytes_decompressed for s in result.layers)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layouts = {"site-packages": Path(tmp) / "site", "100k tiny files": Path(tmp) / "tiny"}
        write_oci_layout(layouts["site-packages"], [_site_packages_layer()])
        write_oci_layout(layouts["100k tiny files"], [_tiny_files_layer()])
        for extra in sys.argv[1:]:
            layouts[extra] = Path(extra)
        print(f"{'layout':<20} {'entries':>9} {'MiB':>8} {'gzip -dc':>9} {'walk':>8} {'ratio':>6}")
        for name, layout in layouts.items():
            baseline = min(_gzip_dc_seconds(layout) for _ in range(2))
            walk, entries, size = min(_walk_seconds(layout) for _ in range(2))
            print(
                f"{name:<20} {entries:>9} {size / 2**20:>8.1f} {baseline:>8.2f}s {walk:>7.2f}s "
                f"{walk / baseline:>5.2f}x"
            )


if __name__ == "__main__":
    main()
