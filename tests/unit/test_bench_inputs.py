"""The benchmark inputs are right (never their timings): the streaming layer writer produces a valid
layer with the digests it claims, and the generated OSV feed parses, has the promised mix, and shapes
versions on the side of the installed version it says."""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from bench.feed import around, write_feed
from bench.image_builder import _LayerWriter, _walk
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.osv import parse_record
from chalicelib.vulndb.versions import compare


def test_layer_writer_streams_a_valid_layer_with_its_digests(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_bytes(b"bench\n")
    (src / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    writer = _LayerWriter(blobs)
    for path, st in _walk(src / "etc"):
        writer.add(path, st, "etc" + str(path)[len(str(src / "etc")) :])
    writer.add(src / "etc" / "hostname", os.lstat(src / "etc" / "hostname"), "etc/hostname")  # duplicate
    layer = writer.finish()

    blob = (blobs / layer.digest.split(":", 1)[1]).read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    tar_bytes = gzip.decompress(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    assert layer.uncompressed == len(tar_bytes)
    assert layer.files == 1
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        assert [(m.name, m.type) for m in members] == [
            ("etc", tarfile.DIRTYPE),
            ("etc/hostname", tarfile.REGTYPE),
            ("etc/os-release", tarfile.SYMTYPE),
        ]
        assert members[2].linkname == "../usr/lib/os-release"
        handle = tar.extractfile(members[1])
        assert handle is not None and handle.read() == b"bench\n"
    assert list(blobs.iterdir()) == [blobs / layer.digest.split(":", 1)[1]]


@pytest.mark.parametrize(
    ("ecosystem", "version"),
    [
        ("Debian:12", "7.88.1-10+deb12u5"),
        ("Debian:12", "1:2.38.1-5+deb12u1"),
        ("Debian:12", "3.0.11-1~deb12u2"),
        ("Alpine:v3.19", "3.1.4-r5"),
        ("PyPI", "2.31.0"),
        ("PyPI", "0.0.5"),
        ("npm", "4.17.21"),
        ("npm", "1.0.0"),
    ],
)
def test_around_brackets_the_installed_version(ecosystem: str, version: str) -> None:
    shaped = around(ecosystem, version)
    assert shaped is not None
    above, below = shaped
    assert compare(ecosystem, below, version) < 0 < compare(ecosystem, above, version)


def test_around_gives_up_on_versions_it_cannot_shape() -> None:
    assert around("npm", "1.0") is None
    assert around("PyPI", "not a version") is None


def test_generated_feed_parses_and_has_the_promised_mix(tmp_path: Path) -> None:
    feed = tmp_path / "all.zip"
    assert write_feed(feed, 50, [], seed=3) == 50
    ecosystems: collections.Counter[str] = collections.Counter()
    with zipfile.ZipFile(feed) as archive:
        names = archive.namelist()
        for name in names:
            record = parse_record(archive.read(name), name)
            assert name == f"{record.id}.json"
            assert record.affected and record.details
            ecosystems[record.affected[0].package.ecosystem if record.affected[0].package else ""] += 1
    assert len(set(names)) == 50
    # 40/25/20/15 % of 50, rounded down, the remainder to Debian
    assert ecosystems == {"Debian:12": 21, "npm": 12, "PyPI": 10, "Alpine:v3.19": 7}
    db = tmp_path / "index.sqlite"
    report = build_index([feed], db)
    assert (report.records, report.rejected) == (50, [])
    index = VulnIndex(db)
    assert index.meta["record_count"] == "50"
    index.close()
