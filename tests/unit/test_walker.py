"""The layer walker: overlay semantics (whiteouts, opaque dirs, replacement), compression, bounds,
hostile archives, links, analyzer isolation and memory. Layers are built in memory with
`oci_writer`; a tiny in-memory source serves them with digest verification like the real ones."""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import tarfile
import tracemalloc
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, ClassVar, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.errors import DigestMismatchError, LayerError, ManifestError, UnsafeArchiveError
from chalicelib.image.model import ImageSource, LayerRef, ResolvedImage
from chalicelib.image.oci_writer import (
    LayerEntry,
    build_layer,
    build_tar,
    compress,
    diff_id,
    opaque,
    whiteout,
)
from chalicelib.image.streams import (
    Compression,
    DigestVerifyingReader,
    check_digest,
    sha256_digest,
    verified_stream,
)
from chalicelib.image.tarstream import EntryKind, TarReader
from chalicelib.image.walker import WalkLimits, WalkResult, collect, walk_image
from chalicelib.models import OSInfo, Package

# -- helpers -------------------------------------------------------------------------------------


class PkgAnalyzer(Analyzer):
    """Every `*.pkg` file is one package: name = file stem, version = content."""

    name = "fake-pkg"
    max_file_size = 4096

    def __init__(self) -> None:
        self.seen: list[str] = []

    def wants(self, path: str) -> bool:
        return path.endswith(".pkg")

    def analyze(self, path: str, content: bytes) -> FileResult:
        self.seen.append(path)
        if path.endswith("boom.pkg"):
            raise RuntimeError("analyzer bug")
        stem = path.rsplit("/", 1)[-1].removesuffix(".pkg")
        version = content.decode()
        return FileResult(
            packages=[
                Package(
                    name=stem,
                    version=version,
                    ecosystem="Fake",
                    purl=f"pkg:generic/{stem}@{version}",
                    path=path,
                )
            ]
        )

    def finalize(self, packages: list[Package], os: OSInfo | None) -> list[Package]:
        if os is None or os.version is None:
            return packages
        return [p.model_copy(update={"ecosystem": f"Fake:{os.version}"}) for p in packages]


class OSAnalyzer(Analyzer):
    """`etc/os-release` / `usr/lib/os-release` (priority 2) and `etc/debian_version` (priority 1):
    content is `family version`."""

    name = "fake-os"
    priorities: ClassVar[dict[str, int]] = {
        "etc/os-release": 2,
        "usr/lib/os-release": 2,
        "etc/debian_version": 1,
    }

    def __init__(self) -> None:
        self.seen: list[str] = []

    def wants(self, path: str) -> bool:
        return path in self.priorities

    def analyze(self, path: str, content: bytes) -> FileResult:
        self.seen.append(path)
        family, version = content.decode().split()
        return FileResult(os=OSInfo(family=family, version=version), os_priority=self.priorities[path])


class MemorySource(ImageSource):
    """Layers held in memory. `served` replaces the bytes served for a layer index (tampering)."""

    def __init__(self, layers: Sequence[bytes], served: Mapping[int, bytes] | None = None) -> None:
        self.blobs: dict[str, bytes] = {}
        refs = []
        for i, blob in enumerate(layers):
            digest = sha256_digest(blob)
            self.blobs[digest] = (served or {}).get(i, blob)
            refs.append(
                LayerRef(
                    digest=digest,
                    media_type="application/vnd.oci.image.layer.v1.tar",
                    size=len(blob),
                    diff_id=_diff_id_or_digest(blob),
                )
            )
        self.image = ResolvedImage(config_digest="sha256:" + "0" * 64, config={}, layers=refs)

    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        return [self.image]

    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        return verified_stream(io.BytesIO(self.blobs[layer.digest]), layer.digest, layer.size)


def _diff_id_or_digest(blob: bytes) -> str:
    try:
        return diff_id(blob)
    except LayerError:  # corrupt on purpose: any stable id will do
        return sha256_digest(blob)


def walk(
    layers: Sequence[bytes], analyzers: Sequence[Analyzer], limits: WalkLimits | None = None
) -> tuple[MemorySource, WalkResult]:
    source = MemorySource(layers)
    return source, walk_image(source, source.image, analyzers, limits or WalkLimits())


def found(result: WalkResult, analyzer: str = "fake-pkg") -> list[tuple[str, int, str]]:
    """(path, layer index, version) of every surviving package."""
    return [
        (f.path, f.layer_index, p.version)
        for f in result.results.get(analyzer, [])
        for p in f.result.packages
    ]


# -- overlay semantics ---------------------------------------------------------------------------


def three_layers() -> list[bytes]:
    lower = build_layer(
        {
            "a/one.pkg": b"1",
            "a/two.pkg": b"1",
            "b/x/deep.pkg": b"1",
            "b/x/y/deeper.pkg": b"1",
            "b/xy.pkg": b"1",  # shares a prefix with the whited-out b/x: must survive
            "c/keep.pkg": b"1",
            "c/sub/inner.pkg": b"1",
            "d/file.pkg": b"1",
            "e/f.pkg": b"1",
            "g/link.pkg": b"1",
            "h/old.pkg": b"1",
            "k/stay.pkg": b"1",
        }
    )
    middle = build_layer(
        {
            whiteout("a/one.pkg"): b"",
            whiteout("b/x"): b"",
            "c/also.pkg": b"2",  # same layer as the opaque marker that follows: survives it
            opaque("c"): b"",
            "c/new.pkg": b"2",
            "d/file.pkg": b"2",
            "e/f.pkg": LayerEntry("dir"),  # a directory replaces the lower file
            "e/f.pkg/inner.pkg": b"2",
            "g/link.pkg": LayerEntry("symlink", target="../a/two.pkg"),
            "h": b"now a file",  # a file replaces the lower directory h/ and all it held
            "m/same.pkg": b"2",
            whiteout("m/same.pkg"): b"",  # a whiteout never hides its own layer's files
        },
        sort=False,
    )
    upper = build_layer(
        {
            "a/one.pkg": b"3",  # back after its whiteout
            whiteout("c/new.pkg"): b"",
            ".wh.k": b"",  # root-level whiteout of a directory
        },
        sort=False,
    )
    return [lower, middle, upper]


def test_whiteouts_opaque_dirs_and_replacement_across_three_layers() -> None:
    analyzer = PkgAnalyzer()
    _, result = walk(three_layers(), [analyzer])

    assert found(result) == [
        ("a/two.pkg", 0, "1"),
        ("b/xy.pkg", 0, "1"),
        ("c/also.pkg", 1, "2"),
        ("d/file.pkg", 1, "2"),
        ("e/f.pkg/inner.pkg", 1, "2"),
        ("m/same.pkg", 1, "2"),
        ("a/one.pkg", 2, "3"),
    ]
    link = result.links["g/link.pkg"]
    assert (link.kind, link.target, link.layer_index) == (EntryKind.SYMLINK, "../a/two.pkg", 1)
    assert list(result.links) == ["g/link.pkg"]
    # whiteout markers are never handed to analyzers; links are not read through
    assert not any(".wh." in p for p in analyzer.seen)
    assert analyzer.seen[12:] == [
        "c/also.pkg",
        "c/new.pkg",
        "d/file.pkg",
        "e/f.pkg/inner.pkg",
        "m/same.pkg",
        "a/one.pkg",
    ]
    assert [s.entries for s in result.layers] == [12, 12, 3]
    assert [s.files_analyzed for s in result.layers] == [12, 5, 1]


def test_every_package_carries_its_layer_diff_id_and_collect_sorts() -> None:
    layers = three_layers()
    _, result = walk(layers, [PkgAnalyzer()])
    diff_ids = [diff_id(layer) for layer in layers]
    for found_file in result.results["fake-pkg"]:
        assert found_file.layer == diff_ids[found_file.layer_index]
        assert [p.layer for p in found_file.result.packages] == [diff_ids[found_file.layer_index]]

    os_info, packages = collect(result, [PkgAnalyzer()])
    assert os_info is None
    assert [(p.name, p.version, p.path, p.layer) for p in packages] == [
        ("also", "2", "c/also.pkg", diff_ids[1]),
        ("file", "2", "d/file.pkg", diff_ids[1]),
        ("inner", "2", "e/f.pkg/inner.pkg", diff_ids[1]),
        ("one", "3", "a/one.pkg", diff_ids[2]),
        ("same", "2", "m/same.pkg", diff_ids[1]),
        ("two", "1", "a/two.pkg", diff_ids[0]),
        ("xy", "1", "b/xy.pkg", diff_ids[0]),
    ]


def test_later_duplicate_entry_in_one_layer_wins() -> None:
    tar = build_tar({"a/dup.pkg": b"1"})[:-1024] + build_tar({"a/dup.pkg": b"2"})
    _, result = walk([compress(tar, "gzip")], [PkgAnalyzer()])
    assert found(result) == [("a/dup.pkg", 0, "2")]


def test_os_priority_then_higher_layer_and_finalize_sees_the_os() -> None:
    layers = [
        build_layer({"etc/os-release": b"debian 12", "var/lib/x.pkg": b"1.0"}),
        build_layer({"etc/debian_version": b"debian 99"}),  # lower priority: ignored
    ]
    analyzers: list[Analyzer] = [OSAnalyzer(), PkgAnalyzer()]
    _, result = walk(layers, analyzers)
    os_info, packages = collect(result, analyzers)
    assert os_info == OSInfo(family="debian", version="12")
    assert [(p.name, p.ecosystem) for p in packages] == [("x", "Fake:12")]

    layers.append(build_layer({"usr/lib/os-release": b"debian 13"}))  # same priority, higher layer
    _, result = walk(layers, analyzers)
    assert collect(result, analyzers)[0] == OSInfo(family="debian", version="13")


# -- compression ---------------------------------------------------------------------------------

FILES = {"usr/lib/a.pkg": b"1.0", "usr/lib/big.bin": bytes(300_000), "opt/b.pkg": b"2.0"}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_gzip_zstd_and_plain_layers_give_the_same_result(
    compression: Literal["gzip", "zstd", "none"],
) -> None:
    _, result = walk([build_layer(FILES, compression)], [PkgAnalyzer()])
    assert found(result) == [("opt/b.pkg", 0, "2.0"), ("usr/lib/a.pkg", 0, "1.0")]
    stats = result.layers[0]
    assert stats.compression == compression
    assert stats.bytes_decompressed == len(build_tar(FILES))
    assert stats.entries == 3


@pytest.mark.parametrize(
    ("kind", "pack"),
    [("bzip2", bz2.compress), ("xz", lzma.compress)],
)
def test_bzip2_and_xz_layers(kind: str, pack: object) -> None:
    assert callable(pack)
    _, result = walk([pack(build_tar(FILES))], [PkgAnalyzer()])
    assert result.layers[0].compression == kind
    assert found(result) == [("opt/b.pkg", 0, "2.0"), ("usr/lib/a.pkg", 0, "1.0")]


def test_multi_member_gzip_with_zero_padding() -> None:
    tar = build_tar(FILES)
    cut = 12345
    blob = gzip.compress(tar[:cut], mtime=0) + gzip.compress(tar[cut:], mtime=0) + bytes(100)
    _, result = walk([blob], [PkgAnalyzer()])
    assert found(result) == [("opt/b.pkg", 0, "2.0"), ("usr/lib/a.pkg", 0, "1.0")]


# -- hostile and broken layers -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../b", "a/b/..", "./../etc/passwd", "/"])
def test_traversal_and_absolute_entries_are_rejected(name: str) -> None:
    layer = build_layer({"ok.pkg": b"1", name: b"x"}, sort=False)
    with pytest.raises(UnsafeArchiveError) as excinfo:
        walk([layer], [PkgAnalyzer()])
    assert f"layer {diff_id(layer)}" in str(excinfo.value)
    assert repr(name) in str(excinfo.value)


def test_dot_slash_and_double_slashes_are_normalised_and_link_targets_may_climb() -> None:
    layer = build_layer(
        {
            "./a/one.pkg": b"1",
            "b//c/./two.pkg": b"2",
            "./": LayerEntry("dir"),
            "usr/lib/up.pkg": LayerEntry("symlink", target="../../../../../etc/x.pkg"),
        }
    )
    _, result = walk([layer], [PkgAnalyzer()])
    assert found(result) == [("a/one.pkg", 0, "1"), ("b/c/two.pkg", 0, "2")]
    assert result.links["usr/lib/up.pkg"].target == "../../../../../etc/x.pkg"


def test_bad_whiteout_name_is_rejected() -> None:
    with pytest.raises(UnsafeArchiveError, match="bad whiteout"):
        walk([build_layer({"a/.wh...": b""})], [PkgAnalyzer()])


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_decompression_bound(compression: Literal["gzip", "zstd", "none"]) -> None:
    layer = build_layer({"zeros.bin": bytes(4 * 1024 * 1024)}, compression)
    assert len(layer) < 100_000 or compression == "none"
    with pytest.raises(UnsafeArchiveError, match="decompresses to more than 1048576 bytes"):
        walk([layer], [PkgAnalyzer()], WalkLimits(max_layer_bytes=1024 * 1024))
    _, result = walk([layer], [PkgAnalyzer()], WalkLimits(max_layer_bytes=8 * 1024 * 1024))
    assert result.layers[0].bytes_decompressed == 4 * 1024 * 1024 + 3 * 512


def test_entry_count_bound() -> None:
    layer = build_layer({f"f{i}": b"" for i in range(20)})
    with pytest.raises(UnsafeArchiveError, match="more than 10 tar entries"):
        walk([layer], [PkgAnalyzer()], WalkLimits(max_entries=10))
    assert walk([layer], [PkgAnalyzer()], WalkLimits(max_entries=20))[1].layers[0].entries == 20


def test_oversized_pax_header_is_unsafe() -> None:
    layer = build_layer({"a/" + "x" * 3000 + ".pkg": b"1"})  # PAX path record of ~3 KB
    with pytest.raises(UnsafeArchiveError, match="PAX header of"):
        walk([layer], [PkgAnalyzer()], WalkLimits(max_header_bytes=1024))
    assert found(walk([layer], [PkgAnalyzer()])[1])[0][1:] == (0, "1")


def test_corrupt_gzip_header_is_a_layer_error() -> None:
    blob = bytearray(build_layer(FILES, "gzip"))
    blob[2] = 7  # compression method: not deflate
    with pytest.raises(LayerError, match="corrupt gzip data") as excinfo:
        walk([bytes(blob)], [PkgAnalyzer()])
    assert type(excinfo.value) is LayerError


def test_corrupt_gzip_checksum_is_a_layer_error() -> None:
    blob = bytearray(build_layer({"a.pkg": b"1"}, "gzip"))
    blob[-8] ^= 0xFF  # CRC32 trailer
    with pytest.raises(LayerError, match=r"corrupt gzip data.*incorrect data check") as excinfo:
        walk([bytes(blob)], [PkgAnalyzer()])
    assert type(excinfo.value) is LayerError


def test_corrupt_zstd_is_a_layer_error() -> None:
    blob = bytearray(build_layer(FILES, "zstd"))
    blob[4] ^= 0xFF  # frame header descriptor
    with pytest.raises(LayerError, match="corrupt zstd data") as excinfo:
        walk([bytes(blob)], [PkgAnalyzer()])
    assert type(excinfo.value) is LayerError


def test_not_a_tar_is_a_layer_error() -> None:
    with pytest.raises(LayerError, match="invalid tar header checksum"):
        walk([b"this is not a tar archive at all" * 40], [PkgAnalyzer()])


@pytest.mark.parametrize(
    ("cut", "message"),
    [(512 + 100, "truncated tar \\(in entry 'a.pkg'\\)"), (1536 + 300, "truncated tar header")],
)
def test_truncated_tar_is_a_layer_error(cut: int, message: str) -> None:
    tar = build_tar({"a.pkg": b"x" * 600, "b.pkg": b"2"})
    with pytest.raises(LayerError, match=message) as excinfo:
        walk([tar[:cut]], [PkgAnalyzer()])
    assert type(excinfo.value) is LayerError


def test_truncated_gzip_is_a_layer_error() -> None:
    blob = build_layer({"a.pkg": bytes(range(256)) * 400}, "gzip")
    with pytest.raises(LayerError, match="truncated") as excinfo:
        walk([blob[: len(blob) // 2]], [PkgAnalyzer()])
    assert type(excinfo.value) is LayerError


def test_tampered_blob_is_a_digest_mismatch() -> None:
    good = build_layer({"a.pkg": b"1"})
    other = build_layer({"a.pkg": b"2"})
    source = MemorySource([good], served={0: other})
    with pytest.raises(DigestMismatchError, match=f"expected {sha256_digest(good)}"):
        walk_image(source, source.image, [PkgAnalyzer()])
    # a tampered blob that is also corrupt reports the mismatch, not the corruption
    source = MemorySource([good], served={0: good[:10] + b"\x00" * (len(good) - 10)})
    with pytest.raises(DigestMismatchError):
        walk_image(source, source.image, [PkgAnalyzer()])


# -- links, analyzers, memory -------------------------------------------------------------------


def test_symlinked_os_release_is_recorded_not_followed() -> None:
    analyzer = OSAnalyzer()
    layers = [
        build_layer(
            {
                "etc/os-release": LayerEntry("symlink", target="../../../../host/etc/passwd"),
                "etc/debian_version": LayerEntry("hardlink", target="etc/passwd"),
                "etc/passwd": b"root:x:0:0::/root:/bin/sh",
            }
        )
    ]
    _, result = walk(layers, [analyzer])
    assert analyzer.seen == []
    assert result.results == {}
    assert {p: (i.kind, i.target) for p, i in result.links.items()} == {
        "etc/debian_version": (EntryKind.HARDLINK, "etc/passwd"),
        "etc/os-release": (EntryKind.SYMLINK, "../../../../host/etc/passwd"),
    }
    assert collect(result, [analyzer]) == (None, [])


def test_devices_and_fifos_are_ignored_but_shadow_lower_files() -> None:
    layers = [
        build_layer({"dev/x.pkg": b"1", "dev/y.pkg": b"1"}),
        build_layer({"dev/x.pkg": LayerEntry("chardev"), "dev/fifo.pkg": LayerEntry("fifo")}),
    ]
    analyzer = PkgAnalyzer()
    _, result = walk(layers, [analyzer])
    assert found(result) == [("dev/y.pkg", 0, "1")]
    assert analyzer.seen == ["dev/x.pkg", "dev/y.pkg"]


def test_analyzer_exception_is_logged_and_the_scan_continues(caplog: pytest.LogCaptureFixture) -> None:
    layer = build_layer({"a/boom.pkg": b"1", "b/fine.pkg": b"2"})
    with caplog.at_level(logging.ERROR, logger="chalicelib.image.walker"):
        _, result = walk([layer], [PkgAnalyzer()])
    assert found(result) == [("b/fine.pkg", 0, "2")]
    assert result.layers[0].analyzer_errors == 1
    [record] = caplog.records
    assert "fake-pkg" in record.getMessage()
    assert "a/boom.pkg" in record.getMessage()
    assert f"layer {diff_id(layer)}" in record.getMessage()


def test_files_over_the_analyzer_limit_are_not_read() -> None:
    analyzer = PkgAnalyzer()
    _, result = walk([build_layer({"big.pkg": b"9" * 5000, "small.pkg": b"1"})], [analyzer])
    assert analyzer.seen == ["small.pkg"]
    assert found(result) == [("small.pkg", 0, "1")]


def test_duplicate_analyzer_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        walk([build_layer({})], [PkgAnalyzer(), PkgAnalyzer()])


def test_memory_stays_flat_for_big_unwanted_files() -> None:
    big = 64 * 1024 * 1024
    layers = [build_layer({"big.bin": bytes(big), "a.pkg": b"1"}, "gzip"), build_tar({"raw.bin": bytes(big)})]
    source = MemorySource(layers)
    tracemalloc.start()
    try:
        result = walk_image(source, source.image, [PkgAnalyzer()])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found(result) == [("a.pkg", 0, "1")]
    assert peak < 6 * 1024 * 1024, peak


def test_wanted_file_is_read_once_without_doubling_memory() -> None:
    class BigAnalyzer(PkgAnalyzer):
        name = "big"
        max_file_size = 64 * 1024 * 1024

        def analyze(self, path: str, content: bytes) -> FileResult:
            self.seen.append(f"{path}:{len(content)}")
            return FileResult()

    size = 32 * 1024 * 1024
    analyzer = BigAnalyzer()
    source = MemorySource([build_tar({"huge.pkg": b"7" * size})])
    tracemalloc.start()
    try:
        walk_image(source, source.image, [analyzer])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert analyzer.seen == [f"huge.pkg:{size}"]
    assert peak < size * 1.5, peak


# -- the tar reader against Python's tarfile -----------------------------------------------------


class _Chunks:
    """A ChunkReader serving `data` in the given chunk sizes (cycled)."""

    def __init__(self, data: bytes, sizes: Sequence[int]) -> None:
        self.data, self.sizes, self.pos, self.i = data, sizes, 0, 0
        self.bytes_in = self.bytes_out = 0
        self.compression = Compression.NONE

    def read_chunk(self) -> bytes:
        size = self.sizes[self.i % len(self.sizes)]
        self.i += 1
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk


_name = st.text(alphabet="abcé_-.0", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
_entry = st.tuples(
    st.lists(_name, min_size=1, max_size=30).map("/".join),
    st.sampled_from(["file", "dir", "symlink", "hardlink"]),
    st.binary(max_size=1500),
    st.lists(_name, min_size=1, max_size=40).map("/".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(_entry, min_size=0, max_size=8),
    tar_format=st.sampled_from(["pax", "gnu"]),
    sizes=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=5),
)
def test_tar_reader_agrees_with_tarfile(
    entries: list[tuple[str, str, bytes, str]], tar_format: Literal["pax", "gnu"], sizes: list[int]
) -> None:
    files: dict[str, bytes | LayerEntry] = {}
    for name, kind, content, target in entries:
        files[name] = LayerEntry(kind, content=content if kind == "file" else b"", target=target)  # type: ignore[arg-type]
    tar = build_tar(files, sort=False, tar_format=tar_format)

    expected = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as reference:
        for member in reference:
            data = reference.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            expected.append(
                (
                    member.name.rstrip("/"),
                    member.type,
                    member.linkname if member.issym() or member.islnk() else "",
                    data,
                )
            )

    reader = TarReader(_Chunks(tar, sizes), "test", max_entries=100)
    got = []
    types = {
        EntryKind.FILE: tarfile.REGTYPE,
        EntryKind.DIR: tarfile.DIRTYPE,
        EntryKind.SYMLINK: tarfile.SYMTYPE,
        EntryKind.HARDLINK: tarfile.LNKTYPE,
    }
    for i, entry in enumerate(reader.entries()):
        data = reader.read_data() if entry.kind is EntryKind.FILE and i % 2 == 0 else None
        got.append((entry.name.rstrip("/"), types[entry.kind], entry.linkname, data))
    assert [(n, t, ln) for n, t, ln, _ in got] == [(n, t, ln) for n, t, ln, _ in expected]
    for (_, _, _, data), (_, _, _, want) in zip(got, expected, strict=True):
        if data is not None:
            assert data == want


def test_tar_reader_reads_ustar_prefix_and_base256_sizes() -> None:
    name = "d" * 120 + "/file.pkg"
    tar = build_tar({name: b"v1"}, tar_format="ustar")
    header = bytearray(tar[:512])
    assert header[345:350] == b"ddddd"  # the name is split into prefix + name
    entries = list(TarReader(_Chunks(tar, [4096]), "t", 10).entries())
    assert [(e.name, e.size) for e in entries] == [(name, 2)]

    # rewrite the size field in GNU base-256 and fix the checksum
    header[124:136] = b"\x80" + (2).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header)
    reader = TarReader(_Chunks(bytes(header) + tar[512:], [700]), "t", 10)
    [entry] = list(reader.entries())
    assert entry.size == 2


# -- stream wrappers -----------------------------------------------------------------------------


def test_digest_verifying_reader_drains_and_checks() -> None:
    data = b"layer bytes " * 1000
    reader = DigestVerifyingReader(io.BytesIO(data), sha256_digest(data), len(data))
    assert reader.read(5) == b"layer"
    reader.verify()  # drains the rest before checking
    assert reader.bytes_read == len(data)

    wrong = DigestVerifyingReader(io.BytesIO(data), sha256_digest(b"other"), len(data))
    with pytest.raises(DigestMismatchError, match=f"!= expected {sha256_digest(b'other')}"):
        wrong.verify()

    short = DigestVerifyingReader(io.BytesIO(data[:-1]), sha256_digest(data), len(data))
    with pytest.raises(DigestMismatchError, match=f"got {len(data) - 1} bytes, expected {len(data)}"):
        short.verify()

    endless = DigestVerifyingReader(io.BytesIO(data), sha256_digest(data), 100)
    with pytest.raises(DigestMismatchError, match="more than the expected 100 bytes"):
        endless.read(1000)


def test_verified_stream_checks_on_normal_exit_only() -> None:
    data = b"abc"
    with (
        pytest.raises(DigestMismatchError),
        verified_stream(io.BytesIO(data), sha256_digest(b"abd"), 3) as stream,
    ):
        assert stream.read(1) == b"a"
    with pytest.raises(KeyError), verified_stream(io.BytesIO(data), sha256_digest(b"abd"), 3):
        raise KeyError("not a layer problem: propagated as is")


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "A" * 64, "sha256:../../etc/passwd", "md5:" + "a" * 32, "sha256:" + "a" * 63, "sha256"],
)
def test_check_digest_refuses_anything_but_canonical_digests(digest: str) -> None:
    with pytest.raises(ManifestError, match="invalid or unsupported digest"):
        check_digest(digest)
    assert check_digest("sha512:" + "b" * 128) == "sha512:" + "b" * 128
