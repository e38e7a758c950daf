"""Rust crates compiled into ELF executables by `cargo auditable`: the `.dep-v0` section holds the
zlib-compressed JSON dependency list (`{"packages": [{"name", "version", "source", "kind",
"dependencies", "root"}, ...]}`, the format of the `auditable-serde` crate).

What is reported (documented choices):
- only `kind: "runtime"` crates (an absent `kind` means runtime, as `auditable-serde` omits the
  default): `build` crates (build scripts, proc macros) run at build time and are not in the
  executable. Trivy's Rust binary parser keeps runtime crates only, too.
- not the crates whose `source` is `local`: the workspace's own crates (the root binary crate and
  path dependencies). They are not published on crates.io, so a crates.io advisory about a crate
  of the same name would be a false match; the `Cargo.lock` analyzer drops them for the same
  reason. (Trivy keeps the root crate with relationship "root"; it has no advisories to match.)
  `crates.io`, `git`, `registry` and `other` sources are kept under ecosystem `crates.io`.

Bounds: the compressed section and the decompressed JSON are both size-limited (a zlib bomb
stops at `MAX_JSON_BYTES + 1` output bytes), and anything malformed yields no packages, never an
exception. Which files: the same executable paths as the Go analyzer (`executables.wants_path`), and
the walker's content gate (`wants_content`) passes only ELF files, so other files in bin/ are
never buffered for this analyzer."""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any, ClassVar

from chalicelib.analyzers.elf import parse_elf
from chalicelib.analyzers.executables import ElfAnalyzer
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.purls import cargo_purl
from chalicelib.models import Package

log = logging.getLogger(__name__)

ECOSYSTEM = "crates.io"
SECTION = ".dep-v0"
#: largest compressed section accepted (real ones are a few KiB even for 500-crate programs)
MAX_SECTION_BYTES = 8 * 1024 * 1024
#: largest decompressed JSON accepted
MAX_JSON_BYTES = 32 * 1024 * 1024
_RUNTIME = "runtime"
_LOCAL = "local"


class AuditDataError(ValueError):
    """A `.dep-v0` section that does not decompress or parse within the bounds."""


def decompress_bounded(data: bytes, limit: int = MAX_JSON_BYTES) -> bytes:
    """Inflate a zlib stream, refusing more than `limit` output bytes (zlib bombs) and truncated
    streams."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise AuditDataError(f"not a zlib stream: {exc}") from None
    if len(out) > limit:
        raise AuditDataError(f"audit data inflates beyond {limit} bytes")
    if not inflater.eof:
        raise AuditDataError("truncated zlib stream")
    return out


def read_audit_data(content: bytes) -> bytes | None:
    """The raw compressed `.dep-v0` section of an ELF file; None when there is none."""
    elf = parse_elf(content)
    section = elf.section(SECTION)
    if section is None or section.nobits:
        return None
    if section.size > MAX_SECTION_BYTES:
        raise AuditDataError(f"{SECTION} section of {section.size} bytes exceeds {MAX_SECTION_BYTES}")
    return elf.section_bytes(section)


def crates_of(document: Any) -> list[tuple[str, str]]:
    """(name, version) of the runtime, non-local crates of a decoded audit JSON, in its order."""
    if not isinstance(document, dict):
        raise AuditDataError("audit data is not a JSON object")
    packages = document.get("packages")
    if not isinstance(packages, list):
        raise AuditDataError("audit data has no 'packages' list")
    found: list[tuple[str, str]] = []
    for entry in packages:
        if not isinstance(entry, dict):
            continue
        if entry.get("kind", _RUNTIME) != _RUNTIME or entry.get("source") == _LOCAL:
            continue
        name, version = clean(entry.get("name")), clean(entry.get("version"))
        if name and version:
            found.append((name, version))
    return found


def parse_audit_json(raw: bytes) -> list[tuple[str, str]]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AuditDataError(f"audit data is not JSON: {exc}") from None
    return crates_of(document)


class RustBinaryAnalyzer(ElfAnalyzer):
    name: ClassVar[str] = "rust-binary"

    def packages_of_elf(self, path: str, content: bytes) -> list[Package]:
        compressed = read_audit_data(content)
        if compressed is None:
            return []
        crates = parse_audit_json(decompress_bounded(compressed))
        return build_packages(path, ECOSYSTEM, cargo_purl, crates)
