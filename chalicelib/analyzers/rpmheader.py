"""One installed package's rpm header blob -> the fields Lifeguard needs.

Every rpm database backend (SQLite, Berkeley DB, NDB) stores the same thing per package: the
header as rpm keeps it in memory, without the 8-byte magic a `.rpm` file has. Layout (big-endian):

    il: u32   number of index entries
    dl: u32   size of the data store
    il x (tag: u32, type: u32, offset: u32, count: u32)
    dl bytes of data

Strings are NUL-terminated in the data store; STRING_ARRAY is `count` of them in a row; INT32
values are `count` big-endian u32s. The first entry is usually a region tag (63,
HEADER_IMMUTABLE) whose data is a trailer: it is simply not a tag we read.

The input is hostile (it comes from an image): every count and offset is bounds-checked, and a
header that fails is rejected with `HeaderError`, never an IndexError or a huge allocation."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118

TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

#: rpm's own limits (header_internal.h: HEADER_TAGS_MAX 0xffff, HEADER_DATA_MAX 256 MB)
MAX_ENTRIES = 0xFFFF
MAX_DATA = 256 * 1024 * 1024
_ENTRY = struct.Struct(">IIII")
_WANTED = frozenset(
    {
        TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_LICENSE, TAG_ARCH, TAG_OLDFILENAMES,
        TAG_SOURCERPM, TAG_DIRINDEXES, TAG_BASENAMES, TAG_DIRNAMES,
    }
)  # fmt: skip


class HeaderError(ValueError):
    """A header blob that is truncated, oversized or inconsistent."""


@dataclass(frozen=True)
class RpmHeader:
    """The parts of an installed package's header that a scan reports. `epoch` is None when the
    package has none (rpm treats that as 0 when comparing)."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str | None = None
    source_rpm: str | None = None
    license: str | None = None
    files: list[str] = field(default_factory=list)

    @property
    def evr(self) -> str:
        """`[epoch:]version-release`, the version string rpm tools print and OSV records use."""
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"


def _strings(data: bytes, offset: int, count: int) -> list[str]:
    """`count` NUL-terminated strings from `offset`; HeaderError when one runs off the end."""
    if count > len(data) - offset:  # every string takes at least its NUL
        raise HeaderError(f"string count {count} does not fit the data store")
    out: list[str] = []
    pos = offset
    for _ in range(count):
        end = data.find(b"\0", pos)
        if end < 0:
            raise HeaderError("unterminated string in the data store")
        out.append(data[pos:end].decode("utf-8", errors="replace"))
        pos = end + 1
    return out


def _int32s(data: bytes, offset: int, count: int) -> list[int]:
    if offset % 4 or offset + 4 * count > len(data):
        raise HeaderError(f"INT32 array of {count} at {offset} out of bounds")
    return list(struct.unpack_from(f">{count}I", data, offset))


def _read_entries(blob: bytes) -> tuple[dict[int, tuple[int, int, int]], bytes]:
    """{tag: (type, offset, count)} of the tags we want, and the data store."""
    if len(blob) < 8:
        raise HeaderError(f"header blob of {len(blob)} bytes is too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    if not 0 < il <= MAX_ENTRIES or dl > MAX_DATA:
        raise HeaderError(f"implausible header sizes il={il} dl={dl}")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise HeaderError(f"header claims {data_start + dl} bytes, blob has {len(blob)}")
    data = blob[data_start : data_start + dl]
    entries: dict[int, tuple[int, int, int]] = {}
    for i in range(il):
        tag, typ, offset, count = _ENTRY.unpack_from(blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if offset >= dl or count == 0 or count > dl:
            raise HeaderError(f"tag {tag}: offset {offset} / count {count} outside {dl} bytes")
        entries.setdefault(tag, (typ, offset, count))
    return entries, data


def _string(entries: dict[int, tuple[int, int, int]], data: bytes, tag: int) -> str | None:
    entry = entries.get(tag)
    if entry is None:
        return None
    typ, offset, _ = entry
    if typ not in (TYPE_STRING, TYPE_I18NSTRING, TYPE_STRING_ARRAY):
        raise HeaderError(f"tag {tag} has type {typ}, not a string")
    return _strings(data, offset, 1)[0]


def _string_array(entries: dict[int, tuple[int, int, int]], data: bytes, tag: int) -> list[str]:
    entry = entries.get(tag)
    if entry is None:
        return []
    typ, offset, count = entry
    if typ not in (TYPE_STRING_ARRAY, TYPE_I18NSTRING):
        raise HeaderError(f"tag {tag} has type {typ}, not a string array")
    return _strings(data, offset, count)


def _int32_array(entries: dict[int, tuple[int, int, int]], data: bytes, tag: int) -> list[int]:
    entry = entries.get(tag)
    if entry is None:
        return []
    typ, offset, count = entry
    if typ != TYPE_INT32:
        raise HeaderError(f"tag {tag} has type {typ}, not INT32")
    return _int32s(data, offset, count)


def file_paths(
    basenames: list[str], dirnames: list[str], dirindexes: list[int], oldfilenames: list[str]
) -> list[str]:
    """Absolute paths a package owns: DIRNAMES[DIRINDEXES[i]] + BASENAMES[i] (rpm >= 4), or the
    OLDFILENAMES of very old headers."""
    if not basenames:
        return list(oldfilenames)
    if len(dirindexes) != len(basenames):
        raise HeaderError(f"{len(basenames)} basenames but {len(dirindexes)} dir indexes")
    paths: list[str] = []
    for base, index in zip(basenames, dirindexes, strict=True):
        if index >= len(dirnames):
            raise HeaderError(f"dir index {index} outside {len(dirnames)} dirnames")
        paths.append(dirnames[index] + base)
    return paths


def parse_header(blob: bytes) -> RpmHeader:
    """The package in one header blob; HeaderError when it is malformed or lacks
    NAME/VERSION/RELEASE."""
    entries, data = _read_entries(blob)
    name = _string(entries, data, TAG_NAME)
    version = _string(entries, data, TAG_VERSION)
    release = _string(entries, data, TAG_RELEASE)
    if not name or not version or not release:
        raise HeaderError(f"header without NAME/VERSION/RELEASE ({name!r})")
    epochs = _int32_array(entries, data, TAG_EPOCH)
    files = file_paths(
        _string_array(entries, data, TAG_BASENAMES),
        _string_array(entries, data, TAG_DIRNAMES),
        _int32_array(entries, data, TAG_DIRINDEXES),
        _string_array(entries, data, TAG_OLDFILENAMES),
    )
    return RpmHeader(
        name=name,
        version=version,
        release=release,
        epoch=epochs[0] if epochs else None,
        arch=_string(entries, data, TAG_ARCH) or None,
        source_rpm=_string(entries, data, TAG_SOURCERPM) or None,
        license=_string(entries, data, TAG_LICENSE) or None,
        files=files,
    )


def split_source_rpm(source_rpm: str) -> tuple[str, str, str] | None:
    """`openssl-3.0.7-27.el9.src.rpm` -> (`openssl`, `3.0.7`, `27.el9`); None when the name does
    not have that shape (rpm builds it as NAME-VERSION-RELEASE.{src,nosrc}.rpm)."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if source_rpm.endswith(suffix):
            stem = source_rpm[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]
