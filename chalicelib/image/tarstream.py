"""A forward-only tar reader over decompressed chunks, written for the walker's hot loop.

Why not `tarfile.open(mode="r|")`: the walker must skip the data of files no analyzer wants as
cheaply as possible, and tarfile's stream mode copies every byte through 10 KiB reads and builds a
full `TarInfo` per member. This reader parses only what the walker needs (name, type, size, link
target) from ustar / GNU / PAX headers and skips data by moving an index over the current
decompressed chunk. It handles: POSIX ustar prefixes, GNU long names and long links (`L`/`K`), PAX
extended headers (`path`, `linkpath`, `size`), base-256 numbers, old GNU sparse headers (skipped as
"other"), V7 directories (trailing `/`). Anything malformed is a `LayerError`; oversized metadata is
an `UnsafeArchiveError`."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from chalicelib.errors import LayerError, UnsafeArchiveError
from chalicelib.image.streams import ChunkReader

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_CHECKSUM_SPACES = 8 * 0x20


class EntryKind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"  # devices, fifos, sparse files, vendor types: never read


_KIND_BY_TYPE: dict[bytes, EntryKind] = {
    b"0": EntryKind.FILE,
    b"\x00": EntryKind.FILE,
    b"7": EntryKind.FILE,
    b"1": EntryKind.HARDLINK,
    b"2": EntryKind.SYMLINK,
    b"3": EntryKind.OTHER,
    b"4": EntryKind.OTHER,
    b"5": EntryKind.DIR,
    b"6": EntryKind.OTHER,
}
#: types whose size field does not count data blocks (as in Go's archive/tar and Python's tarfile)
_HEADER_ONLY = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))


@dataclass(slots=True)
class TarEntry:
    name: str
    kind: EntryKind
    size: int
    linkname: str
    #: permission bits of a regular file (0 for other kinds: not parsed, to keep the loop cheap)
    mode: int = 0


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstr(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


class TarReader:
    """Iterate entries with `entries()`; while positioned on a regular file, `read_data()` returns
    its content once. Data not read is skipped when iteration moves on."""

    def __init__(
        self, source: ChunkReader, context: str, max_entries: int, max_header_bytes: int = 1024 * 1024
    ) -> None:
        self._src = source
        self.context = context
        self.max_entries = max_entries
        self.max_header_bytes = max_header_bytes
        self.headers = 0  # every header block, extension records included (bounded)
        self.entries_read = 0  # entries yielded
        self._buf = b""
        self._pos = 0
        self._data_left = 0  # data bytes of the current entry not yet consumed
        self._pad_left = 0  # padding after them
        self._current = ""

    # -- buffer primitives -------------------------------------------------------------------

    def _take(self, n: int) -> bytes:
        """Exactly `n` bytes, or fewer only at the end of the stream."""
        end = self._pos + n
        if end <= len(self._buf):
            data = self._buf[self._pos : end]
            self._pos = end
            return data
        out = io.BytesIO()
        out.write(memoryview(self._buf)[self._pos :])
        self._buf, self._pos = b"", 0
        have = out.tell()
        while have < n:
            chunk = self._src.read_chunk()
            if not chunk:
                break
            need = n - have
            if len(chunk) > need:
                out.write(memoryview(chunk)[:need])
                self._buf, self._pos = chunk, need
                have = n
            else:
                out.write(chunk)
                have += len(chunk)
        return out.getvalue()

    def _skip(self, n: int) -> None:
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        self._buf, self._pos = b"", 0
        while n > 0:
            chunk = self._src.read_chunk()
            if not chunk:
                raise LayerError(f"{self.context}: truncated tar (in entry {self._current!r})")
            if len(chunk) >= n:
                self._buf, self._pos = chunk, n
                return
            n -= len(chunk)

    def _take_exact(self, n: int) -> bytes:
        data = self._take(n)
        if len(data) != n:
            raise LayerError(f"{self.context}: truncated tar (in entry {self._current!r})")
        return data

    # -- header parsing ----------------------------------------------------------------------

    def _number(self, field: bytes) -> int:
        """A numeric header field: octal text (NUL/space terminated) or GNU base-256."""
        try:
            return int(field.partition(b"\x00")[0], 8)  # the usual "0000644\0": one C call
        except ValueError:
            pass
        if field and field[0] & 0x80:  # base-256 (GNU), big-endian two's complement
            value = int.from_bytes(field[1:], "big")
            if field[0] == 0xFF:
                value -= 1 << (8 * (len(field) - 1))
            elif field[0] != 0x80:
                raise LayerError(f"{self.context}: bad base-256 number in tar header")
            return value
        text = field.replace(b"\x00", b" ").strip()
        if not text:
            return 0
        try:
            return int(text, 8)
        except ValueError:
            raise LayerError(
                f"{self.context}: invalid tar header (after {self._current!r}): bad number {field!r}"
            ) from None

    def _check_checksum(self, block: bytes) -> None:
        """The header checksum: sum of the header bytes with the checksum field read as spaces.

        Summed with adler32 over two 256-byte halves (each half's sum fits below its modulus, so it
        is exact) because `sum(block)` costs more than the rest of the header parsing."""
        view = memoryview(block)
        total = (zlib.adler32(view[:256]) & 0xFFFF) + (zlib.adler32(view[256:]) & 0xFFFF) - 2
        try:
            stored = self._number(block[148:156])
        except LayerError:
            stored = -1
        unsigned = total - sum(block[148:156]) + _CHECKSUM_SPACES
        if stored == unsigned:
            return
        signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + _CHECKSUM_SPACES
        if stored != signed:
            raise LayerError(
                f"{self.context}: invalid tar header checksum (after {self._current!r}); "
                "not a tar archive or corrupt"
            )

    def _meta_data(self, size: int, what: str) -> bytes:
        if size > self.max_header_bytes:
            raise UnsafeArchiveError(
                f"{self.context}: {what} of {size} bytes exceeds {self.max_header_bytes}"
            )
        data = self._take_exact(size)
        self._skip(-size % BLOCK)
        return data

    def _parse_pax(self, data: bytes) -> dict[str, str]:
        """PAX records: `<len> <key>=<value>\\n`, len counting the whole record."""
        records: dict[str, str] = {}
        pos = 0
        while pos < len(data):
            if data[pos] == 0:  # some writers pad with NULs
                break
            space = data.find(b" ", pos)
            try:
                length = int(data[pos:space])
            except ValueError:
                raise LayerError(f"{self.context}: malformed PAX header") from None
            record = data[space + 1 : pos + length]
            if length <= 0 or space < 0 or not record.endswith(b"\n") or b"=" not in record:
                raise LayerError(f"{self.context}: malformed PAX header")
            key, _, value = record[:-1].partition(b"=")
            records[_decode(key)] = _decode(value)
            pos += length
        return records

    def entries(self) -> Iterator[TarEntry]:
        """Yield every entry; stops at the end-of-archive block (or at a clean end of stream).

        This is the hot loop of a scan (once per file of every layer): the common case - a ustar
        header with no extension records - takes the shortest path."""
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        take, number, kinds = self._take, self._number, _KIND_BY_TYPE
        while True:
            # skip the previous entry's unread data and read the next header, in place when both
            # lie in the current chunk (the usual case for small files)
            pos = self._pos + self._data_left + self._pad_left
            self._data_left = self._pad_left = 0
            end = pos + BLOCK
            if end <= len(self._buf):
                block = self._buf[pos:end]
                self._pos = end
            else:
                self._skip(pos - self._pos)
                block = take(BLOCK)
            if len(block) < BLOCK:
                if not block:
                    return
                raise LayerError(f"{self.context}: truncated tar header (after {self._current!r})")
            if block == _ZERO_BLOCK:
                return
            self.headers += 1
            if self.headers > self.max_entries:
                raise UnsafeArchiveError(f"{self.context}: more than {self.max_entries} tar entries")
            self._check_checksum(block)
            typeflag = block[156:157]
            size = number(block[124:136])
            if size < 0:
                raise LayerError(f"{self.context}: negative size in tar header")
            kind = kinds.get(typeflag)
            if kind is None:
                if typeflag == b"x":
                    pax = self._parse_pax(self._meta_data(size, "PAX header"))
                    continue
                if typeflag == b"g":
                    self._meta_data(size, "PAX global header")  # like Go's archive/tar: not applied
                    continue
                if typeflag == b"L":
                    long_name = _decode(_cstr(self._meta_data(size, "GNU long name")))
                    continue
                if typeflag == b"K":
                    long_link = _decode(_cstr(self._meta_data(size, "GNU long link")))
                    continue
                kind = EntryKind.OTHER

            if long_name is not None:
                name = long_name
                long_name = None
            elif pax and "path" in pax:
                name = pax["path"]
            else:
                raw_name = block[:100].partition(b"\x00")[0]
                if block[257:263] == b"ustar\x00" and block[345] != 0:  # POSIX ustar prefix field
                    raw_name = block[345:500].partition(b"\x00")[0] + b"/" + raw_name
                name = raw_name.decode("utf-8", "surrogateescape")
            linkname = ""
            if kind is EntryKind.SYMLINK or kind is EntryKind.HARDLINK:
                if long_link is not None:
                    linkname = long_link
                elif pax and "linkpath" in pax:
                    linkname = pax["linkpath"]
                else:
                    linkname = _decode(_cstr(block[157:257]))
            long_link = None
            if pax:
                if "size" in pax:
                    try:
                        size = int(pax["size"])
                    except ValueError:
                        raise LayerError(f"{self.context}: bad PAX size for {name!r}") from None
                if any(k.startswith("GNU.sparse.") for k in pax):
                    kind = EntryKind.OTHER
                pax = {}
            if kind is EntryKind.FILE and typeflag == b"\x00" and name.endswith("/"):
                kind = EntryKind.DIR  # V7 tar
            elif typeflag == b"S" and block[482]:  # old GNU sparse: extension headers follow
                while self._take_exact(BLOCK)[504]:
                    pass
            self._current = name
            data_size = 0 if typeflag in _HEADER_ONLY else size
            self._data_left = data_size
            self._pad_left = -data_size % BLOCK
            self.entries_read += 1
            if kind is EntryKind.FILE:
                try:
                    mode = int(block[100:108].partition(b"\x00")[0], 8) & 0o7777
                except ValueError:  # an odd encoding: the mode stays unknown, never fatal
                    mode = 0
                yield TarEntry(name, kind, size, linkname, mode)
            else:
                yield TarEntry(name, kind, 0, linkname)

    def peek_data(self, n: int) -> bytes:
        """The first `n` bytes (fewer for a shorter file or a truncated stream) of the current
        regular file, without consuming them: `read_data()` still returns the whole content, and
        when it is never called the data is skipped as usual. Buffers at most one extra chunk;
        call before `read_data()`."""
        n = min(n, self._data_left)
        buf, pos = self._buf, self._pos
        while len(buf) - pos < n:
            chunk = self._src.read_chunk()
            if not chunk:
                break
            buf, pos = buf[pos:] + chunk, 0
        self._buf, self._pos = buf, pos
        return buf[pos : pos + n]

    def read_data(self) -> bytes:
        """The whole content of the current regular file (call at most once per entry)."""
        data = self._take_exact(self._data_left)
        self._data_left = 0
        return data
