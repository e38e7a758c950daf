"""Byte streams the image sources and the walker share: digest verification of blobs as they are
read, and bounded streaming decompression of layers.

Why here and not in each source: every source (registry, OCI layout, docker-archive, dir) must give
the same guarantees - content is checked against the digest that named it, and a layer can never
make us allocate or decompress more than a fixed bound - so the mechanics live in one place."""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import IO, Protocol, cast

import zstandard

from chalicelib.errors import DigestMismatchError, LayerError, ManifestError, UnsafeArchiveError

#: Size of the reads we make from raw (compressed) streams.
READ_SIZE = 1024 * 1024
#: Most decompressed bytes one `read_chunk` returns: the walker's working set per layer.
CHUNK_SIZE = 1024 * 1024

#: When a layer fails to parse, at most this much of the rest is read to tell corruption from tampering.
MAX_DRAIN_ON_ERROR = 64 * 1024 * 1024

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def check_digest(digest: str) -> str:
    """Validate a digest string (`sha256:<64 hex>` or `sha512:<128 hex>`) and return it.

    Digests become file names in layouts and URL segments in registries, so anything else (upper
    case, `..`, other algorithms) is refused before it is used."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ManifestError(f"invalid or unsupported digest {digest!r}")
    return digest


def new_hasher(digest: str) -> hashlib._Hash:
    """A hashlib object for the algorithm `digest` names."""
    algorithm = check_digest(digest).split(":", 1)[0]
    return hashlib.new(algorithm)


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_bytes(
    data: bytes, expected_digest: str, expected_size: int | None = None, what: str = "blob"
) -> bytes:
    """Check a small, fully read blob (manifest, config) against its descriptor; return it."""
    if expected_size is not None and len(data) != expected_size:
        raise DigestMismatchError(f"{what} {expected_digest}: size {len(data)} != expected {expected_size}")
    hasher = new_hasher(expected_digest)
    hasher.update(data)
    actual = f"{hasher.name}:{hasher.hexdigest()}"
    if actual != expected_digest:
        raise DigestMismatchError(f"{what}: content digest {actual} != expected {expected_digest}")
    return data


class DigestVerifyingReader(io.RawIOBase):
    """Wraps a raw blob stream; hashes every byte read and checks the digest (and size) at the end.

    `verify()` drains whatever the consumer did not read (a tar reader stops at the end-of-archive
    marker, trailing padding still belongs to the blob) and raises `DigestMismatchError` on a
    mismatch. Reading past `expected_size` fails at once, so a hostile server cannot stream
    forever. Reusable by every source, including the registry client."""

    def __init__(self, raw: IO[bytes], expected_digest: str, expected_size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self._hasher = new_hasher(expected_digest)
        self.bytes_read = 0
        self._eof = False
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        if self._eof:
            return b""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_SIZE), b""))
        if size == 0:
            return b""
        data = self._raw.read(size)
        if not data:
            self._eof = True
            return b""
        self._hasher.update(data)
        self.bytes_read += len(data)
        if self.expected_size is not None and self.bytes_read > self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected_digest}: more than the expected {self.expected_size} bytes"
            )
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def drain(self) -> None:
        """Read (and hash) the rest of the stream."""
        while self.read(READ_SIZE):
            pass

    def verify(self) -> None:
        """Drain the rest, then raise `DigestMismatchError` unless size and digest match."""
        if self._verified:
            return
        self.drain()
        if self.expected_size is not None and self.bytes_read != self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected_digest}: got {self.bytes_read} bytes, expected {self.expected_size}"
            )
        actual = f"{self._hasher.name}:{self._hasher.hexdigest()}"
        if actual != self.expected_digest:
            raise DigestMismatchError(f"blob content digest {actual} != expected {self.expected_digest}")
        self._verified = True


@contextmanager
def verified_stream(
    raw: IO[bytes], expected_digest: str, expected_size: int | None = None
) -> Iterator[IO[bytes]]:
    """Yield `raw` wrapped in a `DigestVerifyingReader`; verify when the block ends normally.

    When the block fails with a `LayerError` (corrupt gzip, bad tar) and at most
    `MAX_DRAIN_ON_ERROR` bytes remain, the rest is drained and checked too: if the content is not
    what the digest names, the precise `DigestMismatchError` is raised instead (chained), since
    "the blob was tampered with or truncated" is the real cause. Larger remainders are not
    downloaded just to refine an error.
    """
    reader = DigestVerifyingReader(raw, expected_digest, expected_size)
    try:
        yield cast(IO[bytes], reader)
    except LayerError as exc:
        remaining = None if expected_size is None else expected_size - reader.bytes_read
        if isinstance(exc, UnsafeArchiveError) or remaining is None or remaining > MAX_DRAIN_ON_ERROR:
            raise
        try:
            reader.verify()
        except DigestMismatchError as mismatch:
            raise mismatch from exc
        raise
    reader.verify()


class IterStream(io.RawIOBase):
    """A readable stream over an iterable of byte chunks (e.g. a tar built on the fly)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._it = iter(chunks)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest = [self._buf[self._pos :], *self._it]
            self._buf, self._pos = b"", 0
            return b"".join(rest)
        while self._pos >= len(self._buf):
            try:
                self._buf, self._pos = next(self._it), 0
            except StopIteration:
                return b""
        data = self._buf[self._pos : self._pos + size]
        self._pos += len(data)
        return data


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"
    NONE = "none"


_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
)


def sniff_compression(head: bytes) -> Compression:
    """Compression of a blob from its first bytes. Media types lie (Docker labels uncompressed
    layers `tar.gzip` in places), magic bytes do not."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


class ChunkReader(Protocol):
    """What the tar parser consumes: decompressed bytes in bounded chunks."""

    #: decompressed bytes produced so far
    bytes_out: int
    #: raw (compressed) bytes consumed so far
    bytes_in: int
    compression: Compression

    def read_chunk(self) -> bytes:
        """Up to CHUNK_SIZE decompressed bytes; b"" at the end of the stream."""


class _Decompressor:
    """Streaming decompression of one layer blob, bounded in output size.

    Every decompressor call is given an output ceiling (`max_length`), so a small hostile input can
    never expand into more than one chunk in memory; the running total is checked against
    `max_bytes` (decompression bombs) and exceeding it raises `UnsafeArchiveError`."""

    def __init__(self, raw: IO[bytes], max_bytes: int, context: str) -> None:
        self._raw = raw
        self.max_bytes = max_bytes
        self.context = context
        self.bytes_out = 0
        self.bytes_in = 0
        head = self._read_raw(8)
        self.compression = sniff_compression(head)
        self._pending = head
        self._next: Callable[[], bytes] = self._select(self.compression)

    def _read_raw(self, size: int) -> bytes:
        data = self._raw.read(size)
        self.bytes_in += len(data)
        return data

    def _take_raw(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._read_raw(READ_SIZE)

    def _select(self, compression: Compression) -> Callable[[], bytes]:
        if compression is Compression.NONE:
            return self._take_raw
        if compression is Compression.ZSTD:
            reader = zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], IterStream(iter(self._take_raw, b""))),
                read_size=READ_SIZE,
                read_across_frames=True,
            )
            return lambda: reader.read(CHUNK_SIZE)
        if compression is Compression.GZIP:
            self._zlib = zlib.decompressobj(wbits=31)
            return self._gzip_chunk
        self._std = bz2.BZ2Decompressor() if compression is Compression.BZIP2 else lzma.LZMADecompressor()
        return self._std_chunk

    def read_chunk(self) -> bytes:
        try:
            data = self._next()
        except (zlib.error, zstandard.ZstdError, OSError, EOFError, lzma.LZMAError) as exc:
            raise LayerError(f"{self.context}: corrupt {self.compression} data: {exc}") from exc
        self.bytes_out += len(data)
        if self.bytes_out > self.max_bytes:
            raise UnsafeArchiveError(
                f"{self.context}: decompresses to more than {self.max_bytes} bytes (decompression bomb?)"
            )
        return data

    def _gzip_chunk(self) -> bytes:
        """Next decompressed chunk of a (possibly multi-member) gzip stream."""
        d = self._zlib
        while True:
            if d.eof:
                rest = d.unused_data.lstrip(b"\x00")
                while not rest:
                    more = self._take_raw()
                    if not more:
                        return b""
                    rest = more.lstrip(b"\x00")  # zero padding after the last member is allowed
                if not rest.startswith(b"\x1f\x8b"[: len(rest)]):
                    raise LayerError(f"{self.context}: garbage after gzip data")
                self._zlib = d = zlib.decompressobj(wbits=31)
                data = rest
            elif d.unconsumed_tail:
                data = d.unconsumed_tail
            else:
                data = self._take_raw()
                if not data:
                    raise LayerError(f"{self.context}: gzip stream truncated")
            out = d.decompress(data, CHUNK_SIZE)
            if out:
                return out

    def _std_chunk(self) -> bytes:
        """bzip2 / xz: same incremental API (`max_length`, `needs_input`, `eof`, `unused_data`);
        concatenated streams (pbzip2, pixz) are followed like gzip members."""
        while True:
            d = self._std
            if d.eof:
                rest = d.unused_data or self._take_raw()
                if not rest:
                    return b""
                self._std = d = (
                    bz2.BZ2Decompressor()
                    if self.compression is Compression.BZIP2
                    else lzma.LZMADecompressor()
                )
                data = rest
            elif d.needs_input:
                data = self._take_raw()
                if not data:
                    raise LayerError(f"{self.context}: {self.compression} stream truncated")
            else:
                data = b""
            out = d.decompress(data, CHUNK_SIZE)
            if out:
                return out


def open_decompressed(raw: IO[bytes], max_bytes: int, context: str) -> ChunkReader:
    """Sniff the compression of `raw` and return a bounded decompressed chunk stream.

    `context` (e.g. "layer sha256:...") prefixes every error message so a failure names its layer.
    """
    return _Decompressor(raw, max_bytes, context)
