"""A minimal, defensive ELF reader: just enough to find a section or segment by name or kind and
to read bytes at a virtual address, which is all the binary analyzers need (Go build info).

Why not pyelftools: it parses far more than needed and would be one more dependency; the few
header fields used here are fixed by the ELF spec. Every offset and size read from the file is
checked against the buffer, so a truncated or hostile file gives `ELFError`, never an
IndexError or a huge allocation."""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
_PT_LOAD = 1
_PF_W = 2
#: more section or program headers than this is not a real binary
_MAX_HEADERS = 65535


class ELFError(ValueError):
    """The bytes are not a well-formed ELF file (truncated, inconsistent offsets)."""


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    offset: int
    size: int
    nobits: bool


@dataclass(frozen=True)
class Segment:
    kind: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


@dataclass(frozen=True)
class ELFFile:
    """The parsed headers of one ELF file held in memory."""

    data: memoryview
    is64: bool
    little_endian: bool
    sections: tuple[Section, ...]
    segments: tuple[Segment, ...]

    @property
    def byte_order(self) -> str:
        return "<" if self.little_endian else ">"

    def section(self, name: str) -> Section | None:
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def section_bytes(self, section: Section) -> bytes:
        if section.nobits:
            return b""
        return bytes(_slice(self.data, section.offset, section.size))

    def first_writable_load(self) -> Segment | None:
        """The first loadable writable segment: where Go's data (and its build info) lives when
        the section headers have been stripped."""
        for segment in self.segments:
            if segment.kind == _PT_LOAD and segment.flags & _PF_W:
                return segment
        return None

    def read_at(self, vaddr: int, size: int) -> bytes:
        """`size` bytes at virtual address `vaddr`, from the loadable segment holding them."""
        for segment in self.segments:
            if segment.kind != _PT_LOAD:
                continue
            if segment.vaddr <= vaddr and vaddr + size <= segment.vaddr + segment.filesz:
                return bytes(_slice(self.data, segment.offset + vaddr - segment.vaddr, size))
        raise ELFError(f"address {vaddr:#x}+{size} is not in any loadable segment")


def is_elf(content: bytes) -> bool:
    return content[:4] == ELF_MAGIC


def _slice(data: memoryview, offset: int, size: int) -> memoryview:
    if offset < 0 or size < 0 or offset + size > len(data):
        raise ELFError(f"range {offset}+{size} is outside the file ({len(data)} bytes)")
    return data[offset : offset + size]


def _unpack(fmt: str, data: memoryview, offset: int) -> tuple[int, ...]:
    return struct.unpack_from(fmt, _slice(data, offset, struct.calcsize(fmt)))


def parse_elf(content: bytes) -> ELFFile:
    """Parse the ELF header, program headers and section headers (with names) of `content`."""
    data = memoryview(content)
    if not is_elf(content) or len(content) < 16:
        raise ELFError("not an ELF file")
    ei_class, ei_data = content[4], content[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ELFError(f"unknown ELF class {ei_class} or data encoding {ei_data}")
    is64, little = ei_class == 2, ei_data == 1
    bo = "<" if little else ">"
    if is64:
        phoff, shoff = _unpack(bo + "QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum, shstrndx = _unpack(bo + "HHHHH", data, 0x36)
    else:
        phoff, shoff = _unpack(bo + "II", data, 0x1C)
        phentsize, phnum, shentsize, shnum, shstrndx = _unpack(bo + "HHHHH", data, 0x2A)
    if phnum > _MAX_HEADERS or shnum > _MAX_HEADERS:
        raise ELFError("too many headers")
    segments = tuple(_segment(data, bo, is64, phoff + i * phentsize) for i in range(phnum if phoff else 0))
    raw_sections = [_section(data, bo, is64, shoff + i * shentsize) for i in range(shnum if shoff else 0)]
    names = b""
    if raw_sections and shstrndx < len(raw_sections):
        _, _, _, str_offset, str_size = raw_sections[shstrndx]
        names = bytes(_slice(data, str_offset, str_size))
    sections = tuple(
        Section(name=_name(names, name_off), addr=addr, offset=offset, size=size, nobits=kind == 8)
        for name_off, kind, addr, offset, size in raw_sections
    )
    return ELFFile(data=data, is64=is64, little_endian=little, sections=sections, segments=segments)


def _segment(data: memoryview, bo: str, is64: bool, at: int) -> Segment:
    if is64:
        kind, flags, offset, vaddr, _paddr, filesz = _unpack(bo + "IIQQQQ", data, at)
    else:
        kind, offset, vaddr, _paddr, filesz, _memsz, flags = _unpack(bo + "IIIIIII", data, at)
    return Segment(kind=kind, flags=flags, offset=offset, vaddr=vaddr, filesz=filesz)


def _section(data: memoryview, bo: str, is64: bool, at: int) -> tuple[int, int, int, int, int]:
    """(name offset, type, addr, file offset, size) of one section header."""
    if is64:
        name, kind, _flags, addr, offset, size = _unpack(bo + "IIQQQQ", data, at)
    else:
        name, kind, _flags, addr, offset, size = _unpack(bo + "IIIIII", data, at)
    return name, kind, addr, offset, size


def _name(names: bytes, offset: int) -> str:
    if offset >= len(names):
        return ""
    end = names.find(b"\0", offset)
    return names[offset : end if end >= 0 else len(names)].decode("latin-1")
