"""Scan an image made of the given layers (path -> bytes or LayerEntry, one mapping a layer), the
way the analyzer tests build small images with overlays and whiteouts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import LayerEntry, build_layer, write_oci_layout
from chalicelib.models import ImageScan
from chalicelib.scanner import ScanOptions, scan_image
from chalicelib.vulndb.index import VulnIndex


def scan_layers(
    tmp_path: Path, index: VulnIndex, layers: list[Mapping[str, bytes | LayerEntry]]
) -> ImageScan:
    """The scan of a one-platform OCI layout written under `tmp_path/img`."""
    write_oci_layout(tmp_path / "img", [build_layer(files, sort=False) for files in layers])
    source = OCILayoutSource(tmp_path / "img")
    (image,) = source.resolve()
    return scan_image(source, image, index, ScanOptions())
