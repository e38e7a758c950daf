"""The three rpm database formats -> the header blob of each installed package.

- SQLite (`rpmdb.sqlite`, rpm >= 4.16: RHEL 9, Fedora 33+, Amazon Linux 2023): table `Packages`
  (`hnum`, `blob`). Opened in memory from the bytes (`sqlite3.Connection.deserialize`), never from
  a path, read-only. A database in WAL mode is read as if in rollback mode (header bytes 18/19
  rewritten in our copy): the image holds no `-wal` sidecar worth trusting, and rpm checkpoints on
  close, so the main file has everything.
- Berkeley DB hash (`Packages`, RHEL/CentOS 7/8, Amazon Linux 2): parsed here page by page, as
  go-rpmdb does: the metadata page gives byte order and page size; every hash page's data items are
  header blobs, inline (H_KEYDATA) or in a chain of overflow pages (H_OFFPAGE). Keys are the
  package numbers and are not needed. Record 0 (rpm's counter, 4 bytes) is not a header and is
  dropped by the caller's parse.
- NDB (`Packages.db`, SUSE): rpm's own format (lib/backend/ndb/rpmpkg.c): a 16-byte header
  (`RpmP`, version 0, generation, number of slot pages, next package index; 32 bytes reserved),
  slot pages of 16-byte slots (`Slot`, package index, block offset, block count; block offset 0 =
  free), blobs at `blkoff * 16` framed by a `BlbS` head (magic, package index, timestamp, length)
  and a tail (adler32, length, `BlbE`), not checked here. Little-endian.

Every reader is bounded and defensive: sizes and page numbers come from hostile input, so each is
checked against the buffer, loops are guarded, and damage ends that reader with `RpmDbError`
(a whole database unusable) or skips one record (logged)."""

from __future__ import annotations

import logging
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class RpmDbError(ValueError):
    """A database file that cannot be read at all (wrong magic, truncated metadata, ...)."""


# --- SQLite -----------------------------------------------------------------------------------

_SQLITE_MAGIC = b"SQLite format 3\0"
_HAS_DESERIALIZE = hasattr(sqlite3.Connection, "deserialize")


def _sqlite_rows(image: bytes) -> list[tuple[object]]:
    """`SELECT blob FROM Packages` on a database held in memory. Python's `deserialize` needs an
    SQLite built with it (3.36+ does by default); otherwise the bytes go to a private temporary
    file opened read-only and immutable."""
    query = "SELECT blob FROM Packages ORDER BY hnum"
    if _HAS_DESERIALIZE:
        conn = sqlite3.connect(":memory:")
        try:
            conn.deserialize(image)
            conn.execute("PRAGMA query_only = ON")
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        path.write_bytes(image)
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()


def sqlite_blobs(content: bytes) -> Iterator[bytes]:
    """Header blobs of an `rpmdb.sqlite`, in package-number order."""
    if not content.startswith(_SQLITE_MAGIC) or len(content) < 100:
        raise RpmDbError("not an SQLite database")
    image = content
    if content[18] == 2 or content[19] == 2:  # WAL mode: read the main file as a rollback database
        image = content[:18] + b"\x01\x01" + content[20:]
    try:
        rows = _sqlite_rows(image)
    except sqlite3.DatabaseError as exc:
        raise RpmDbError(f"unreadable rpmdb.sqlite: {exc}") from exc
    for (blob,) in rows:
        if isinstance(blob, bytes):
            yield blob


# --- Berkeley DB hash ---------------------------------------------------------------------------

_HASH_MAGIC = 0x061561
_PAGE_HEADER = 26
_P_HASH_UNSORTED = 2
_P_OVERFLOW = 7
_P_HASH = 13
_H_KEYDATA = 1
_H_OFFPAGE = 3
_MIN_PAGE, _MAX_PAGE = 512, 65536


def _bdb_byte_order(content: bytes) -> str:
    if len(content) < 512:
        raise RpmDbError("Berkeley DB file shorter than its metadata page")
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", content, 12)[0] == _HASH_MAGIC:
            return order
    raise RpmDbError("not a Berkeley DB hash database (bad magic)")


def _overflow(content: bytes, order: str, page_size: int, first: int, total: int) -> bytes:
    """The `total` bytes of an overflow chain starting at page `first`."""
    pages = len(content) // page_size
    out = bytearray()
    seen: set[int] = set()
    pgno = first
    while len(out) < total:
        if pgno == 0 or pgno >= pages or pgno in seen:
            raise RpmDbError(f"broken overflow chain at page {pgno}")
        seen.add(pgno)
        base = pgno * page_size
        if content[base + 25] != _P_OVERFLOW:
            raise RpmDbError(f"page {pgno} is not an overflow page")
        (next_pgno,) = struct.unpack_from(order + "I", content, base + 16)
        (length,) = struct.unpack_from(order + "H", content, base + 22)
        if length > page_size - _PAGE_HEADER:
            raise RpmDbError(f"overflow page {pgno} claims {length} bytes")
        out += content[base + _PAGE_HEADER : base + _PAGE_HEADER + length]
        pgno = next_pgno
    return bytes(out[:total])


def _hash_page_values(content: bytes, order: str, page_size: int, pgno: int) -> Iterator[bytes]:
    base = pgno * page_size
    page = content[base : base + page_size]
    (entries,) = struct.unpack_from(order + "H", page, 20)
    if _PAGE_HEADER + 2 * entries > page_size:
        raise RpmDbError(f"page {pgno} claims {entries} entries")
    offsets = struct.unpack_from(f"{order}{entries}H", page, _PAGE_HEADER)
    for i in range(1, entries, 2):  # (key, data) pairs: the data items
        start = offsets[i]
        end = offsets[i - 1]  # items grow down from the page end: the previous one ends this one
        if not _PAGE_HEADER <= start < end <= page_size:
            log.warning("rpm Packages: page %d item %d has bad bounds, skipped", pgno, i)
            continue
        kind = page[start]
        if kind == _H_KEYDATA:
            yield page[start + 1 : end]
        elif kind == _H_OFFPAGE and end - start >= 12:
            first, total = struct.unpack_from(order + "II", page, start + 4)
            try:
                yield _overflow(content, order, page_size, first, total)
            except RpmDbError as exc:
                log.warning("rpm Packages: page %d item %d skipped: %s", pgno, i, exc)


def bdb_blobs(content: bytes) -> Iterator[bytes]:
    """Data items (header blobs) of a Berkeley DB hash `Packages` file, in page order."""
    order = _bdb_byte_order(content)
    (page_size,) = struct.unpack_from(order + "I", content, 20)
    if not _MIN_PAGE <= page_size <= _MAX_PAGE or page_size & (page_size - 1):
        raise RpmDbError(f"implausible Berkeley DB page size {page_size}")
    (last_pgno,) = struct.unpack_from(order + "I", content, 32)
    pages = min(last_pgno + 1, len(content) // page_size)
    for pgno in range(1, pages):
        if content[pgno * page_size + 25] in (_P_HASH, _P_HASH_UNSORTED):
            try:
                yield from _hash_page_values(content, order, page_size, pgno)
            except (RpmDbError, struct.error) as exc:
                log.warning("rpm Packages: page %d skipped: %s", pgno, exc)


# --- NDB --------------------------------------------------------------------------------------

_NDB_MAGIC = int.from_bytes(b"RpmP", "little")
_SLOT_MAGIC = int.from_bytes(b"Slot", "little")
_BLOB_MAGIC = int.from_bytes(b"BlbS", "little")
_NDB_PAGE = 4096
_SLOT_SIZE = 16
_BLOCK = 16
_BLOB_HEAD, _BLOB_TAIL = 16, 12
_NDB_HEADER_SLOTS = 2  # the 32-byte database header takes the first two slot positions


def ndb_blobs(content: bytes) -> Iterator[bytes]:
    """Header blobs of an NDB `Packages.db`, in slot order."""
    if len(content) < 16:
        raise RpmDbError("NDB file shorter than its header")
    magic, version, _generation, slot_pages = struct.unpack_from("<IIII", content, 0)
    if magic != _NDB_MAGIC:
        raise RpmDbError("not an NDB database (bad magic)")
    if version != 0:
        raise RpmDbError(f"NDB version {version} is not the one rpm writes (0)")
    if slot_pages == 0 or slot_pages * _NDB_PAGE > len(content):
        raise RpmDbError(f"NDB claims {slot_pages} slot pages, file has {len(content)} bytes")
    for slot in range(_NDB_HEADER_SLOTS, slot_pages * _NDB_PAGE // _SLOT_SIZE):
        smagic, pkgidx, blkoff, blkcnt = struct.unpack_from("<IIII", content, slot * _SLOT_SIZE)
        if smagic != _SLOT_MAGIC:
            log.warning("rpm Packages.db: slot %d has a bad magic, skipped", slot)
            continue
        if blkoff == 0:  # a free slot (rpmpkgReadSlots)
            continue
        if pkgidx == 0 or blkcnt == 0:
            log.warning("rpm Packages.db: slot %d is a bad entry, skipped", slot)
            continue
        start, size = blkoff * _BLOCK, blkcnt * _BLOCK
        if start < slot_pages * _NDB_PAGE or start + size > len(content) or size < _BLOB_HEAD + _BLOB_TAIL:
            log.warning("rpm Packages.db: package %d points outside the file, skipped", pkgidx)
            continue
        bmagic, bpkgidx, _bgen, length = struct.unpack_from("<IIII", content, start)
        if bmagic != _BLOB_MAGIC or bpkgidx != pkgidx or length > size - _BLOB_HEAD - _BLOB_TAIL:
            log.warning("rpm Packages.db: package %d has a bad blob head, skipped", pkgidx)
            continue
        yield content[start + _BLOB_HEAD : start + _BLOB_HEAD + length]
