"""The layer walker: one streaming pass over each layer of an image, in order, handing each file an
analyzer wants to that analyzer, then merging the layers' results the way an overlay filesystem
merges the layers themselves (whiteouts, opaque directories, replacement).

Why a merge of results instead of a merged filesystem: we never unpack anything. Memory holds one
wanted file at a time plus what analyzers returned; files nobody wants are skipped in the
decompressed stream without being copied out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from chalicelib.analyzers.base import CONTENT_HEAD_BYTES, Analyzer, FileResult
from chalicelib.analyzers.licenses import apply_package_licenses
from chalicelib.analyzers.ownership import mark_owned, owned_files
from chalicelib.errors import LayerError, UnsafeArchiveError
from chalicelib.image.model import ImageSource, LayerRef, ResolvedImage
from chalicelib.image.streams import open_decompressed
from chalicelib.image.tarstream import EntryKind, TarEntry, TarReader
from chalicelib.models import OSInfo, Package, SecretFinding

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(frozen=True)
class WalkLimits:
    """Per-layer bounds that keep a hostile or absurd layer from exhausting the scanner."""

    #: most decompressed bytes in one layer (decompression bombs)
    max_layer_bytes: int = 8 * 1024**3
    #: most tar headers in one layer
    max_entries: int = 1_000_000
    #: largest PAX header / GNU long name accepted
    max_header_bytes: int = 1024 * 1024


@dataclass
class LayerStats:
    """What one layer cost: for progress reporting and metrics."""

    index: int
    diff_id: str
    digest: str
    compression: str = ""
    entries: int = 0
    bytes_compressed: int = 0
    bytes_decompressed: int = 0
    files_analyzed: int = 0
    analyzer_errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class FoundFile:
    """One analyzer's result for one file that survives the layer merge."""

    path: str
    layer: str  # the layer's diff_id
    layer_index: int
    result: FileResult


@dataclass(frozen=True)
class LinkInfo:
    """A symlink or hardlink at a path some analyzer wants: recorded, never followed."""

    kind: EntryKind
    target: str
    layer: str
    layer_index: int


#: permission bits the image configuration checks want to know about: setuid, setgid, other-write
SPECIAL_MODE_BITS = 0o6002


@dataclass(frozen=True)
class FileMode:
    """A regular file with a setuid, setgid or world-writable mode, in the merged filesystem."""

    mode: int
    layer: str
    layer_index: int


@dataclass
class WalkResult:
    #: analyzer name -> surviving results, ordered by (layer index, path)
    results: dict[str, list[FoundFile]] = field(default_factory=dict)
    #: links at wanted paths that survive the merge
    links: dict[str, LinkInfo] = field(default_factory=dict)
    layers: list[LayerStats] = field(default_factory=list)
    #: secrets of every layer, deleted or overwritten files included (Trivy's behaviour: the
    #: bytes are in the image's blobs); a finding repeated unchanged in a higher layer is kept
    #: once, with the layer that introduced it
    secrets: list[SecretFinding] = field(default_factory=list)
    #: regular files with `SPECIAL_MODE_BITS` that survive the merge, by path (from headers only)
    special_modes: dict[str, FileMode] = field(default_factory=dict)


def normalize_path(name: str, context: str) -> str | None:
    """Relative, slash-separated path of a tar entry (`./a//b/` -> `a/b`); None for the root.

    Absolute names and `..` components are refused outright (`UnsafeArchiveError`): no legitimate
    image layer needs them and they are the classic way to escape an extraction root."""
    path = name[2:] if name.startswith("./") else name
    if path.startswith("/"):
        raise UnsafeArchiveError(f"{context}: unsafe entry {name!r}: absolute path")
    if path.endswith("/"):
        path = path.rstrip("/")
    if path and not path.startswith((".", "/")) and "//" not in path and "/." not in path:
        return path  # the common case: already clean, nothing to split
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafeArchiveError(f"{context}: unsafe entry {name!r}: '..' path component")
    return "/".join(parts) if parts else None


def _ancestors(path: str) -> list[str]:
    """`a/b/c` -> ["", "a", "a/b"]: every directory containing the path, root included."""
    out = [""]
    idx = path.find("/")
    while idx >= 0:
        out.append(path[:idx])
        idx = path.find("/", idx + 1)
    return out


@dataclass
class _Stored:
    layer_index: int
    results: dict[str, FileResult] = field(default_factory=dict)
    link: LinkInfo | None = None


class _Merge:
    """Results of the layers seen so far, keyed by path, with overlay semantics applied as each
    entry arrives. `under` indexes stored paths by every ancestor directory so that deleting a
    subtree costs what it deletes, not what is stored."""

    def __init__(self) -> None:
        self.stored: dict[str, _Stored] = {}
        self.under: dict[str, set[str]] = {}

    def put(self, path: str, item: _Stored) -> None:
        if path in self.stored:
            self._remove(path)
        self.stored[path] = item
        for anc in _ancestors(path):
            self.under.setdefault(anc, set()).add(path)

    def _remove(self, path: str) -> None:
        del self.stored[path]
        for anc in _ancestors(path):
            members = self.under[anc]
            members.discard(path)
            if not members:
                del self.under[anc]

    def hide_lower(self, path: str, layer_index: int, *, exact: bool, below: bool) -> None:
        """Drop results from layers below `layer_index` at `path` (exact) and/or under it (below).

        A whiteout only applies to lower layers: results of its own layer are kept."""
        if exact:
            item = self.stored.get(path)
            if item is not None and item.layer_index < layer_index:
                self._remove(path)
        if below:
            members = self.under.get(path)
            if members:
                for p in [p for p in members if self.stored[p].layer_index < layer_index]:
                    self._remove(p)

    def replace(self, path: str, layer_index: int, *, subtree: bool) -> None:
        """A new entry at `path`: whatever was recorded there before (lower layer, or an earlier
        duplicate entry of this layer) is gone; a non-directory also hides lower contents below."""
        if path in self.stored:
            self._remove(path)
        if subtree:
            self.hide_lower(path, layer_index, exact=False, below=True)


def _has_content_gate(analyzer: Analyzer) -> bool:
    """Whether the analyzer overrides `wants_content` (the default accepts everything, so the
    walker does not even peek for analyzers that keep it)."""
    return type(analyzer).wants_content is not Analyzer.wants_content


def _stamp(result: FileResult, diff_id: str) -> FileResult:
    """A copy of `result` whose packages carry the layer they were found in."""
    return FileResult(
        packages=[p.model_copy(update={"layer": diff_id}) for p in result.packages],
        os=result.os,
        os_priority=result.os_priority,
        owned_files=result.owned_files,
        package_licenses=result.package_licenses,
    )


class _LayerWalk:
    """Walks one layer: whiteouts, shadowing and analysis for each entry in stream order."""

    def __init__(
        self,
        merge: _Merge,
        analyzers: Sequence[Analyzer],
        layer: LayerRef,
        index: int,
        stats: LayerStats,
        *,
        secrets: list[SecretFinding] | None = None,
        special_modes: dict[str, FileMode] | None = None,
    ) -> None:
        self.secrets = secrets if secrets is not None else []
        self.special_modes = special_modes if special_modes is not None else {}
        self.merge = merge
        self.analyzers = analyzers
        #: analyzers that look at a file's first bytes before it is read (`wants_content`)
        self.gated = tuple(a for a in analyzers if _has_content_gate(a))
        self.layer = layer
        self.index = index
        self.stats = stats
        self.context = f"layer {layer.diff_id}"

    def run(self, tar: TarReader) -> None:
        # Once per entry of every layer: locals instead of attribute lookups, and the overlay
        # bookkeeping only when something is stored at or under the path.
        merge, index, context, analyzers = self.merge, self.index, self.context, self.analyzers
        stored, under = merge.stored, merge.under
        file_kind, dir_kind = EntryKind.FILE, EntryKind.DIR
        modes = self.special_modes
        for entry in tar.entries():
            path = normalize_path(entry.name, context)
            if path is None:
                continue
            kind = entry.kind
            if kind is dir_kind:
                # a directory replaces a lower non-directory at its path; lower contents merge
                if path in stored:
                    merge.replace(path, index, subtree=False)
                continue
            slash = path.rfind("/")
            if path.startswith(WHITEOUT_PREFIX, slash + 1):
                self._whiteout(path[:slash] if slash >= 0 else "", path[slash + 1 :], entry.name)
                continue
            # any non-directory replaces whatever lower layers had at its path, subtree included
            if path in stored or path in under:
                merge.replace(path, index, subtree=True)
            if modes and path in modes:  # replaced by this entry
                del modes[path]
            if kind is file_kind and entry.mode & SPECIAL_MODE_BITS:
                modes[path] = FileMode(entry.mode, self.layer.diff_id, index)
            try:
                wanting = [a for a in analyzers if a.wants(path)]
            except Exception:
                wanting = self._wanting(path)
            if not wanting:
                continue
            if kind is file_kind:
                self._analyze(tar, entry, path, wanting)
            elif kind is EntryKind.SYMLINK or kind is EntryKind.HARDLINK:
                link = LinkInfo(kind, entry.linkname, self.layer.diff_id, index)
                merge.put(path, _Stored(index, link=link))

    def _whiteout(self, parent: str, base: str, raw_name: str) -> None:
        if base == OPAQUE_MARKER:
            self.merge.hide_lower(parent, self.index, exact=False, below=True)
            self._hide_modes(parent + "/" if parent else "", exact="")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other reserved `.wh..wh.` names (AUFS metadata): neither files nor whiteouts
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise UnsafeArchiveError(f"{self.context}: unsafe entry {raw_name!r}: bad whiteout name")
        victim = f"{parent}/{target}" if parent else target
        self.merge.hide_lower(victim, self.index, exact=True, below=True)
        self._hide_modes(victim + "/", exact=victim)

    def _hide_modes(self, prefix: str, exact: str) -> None:
        """Whiteouts for `special_modes`: lower layers' files at `exact` or under `prefix` go
        (a handful of entries: a linear pass per whiteout is cheap)."""
        modes = self.special_modes
        for path in [
            p for p, m in modes.items() if m.layer_index < self.index and (p == exact or p.startswith(prefix))
        ]:
            del modes[path]

    def _wanting(self, path: str) -> list[Analyzer]:
        """The analyzers that want `path`, one at a time (the slow path once one of them raised)."""
        wanting: list[Analyzer] = []
        for analyzer in self.analyzers:
            try:
                if analyzer.wants(path):
                    wanting.append(analyzer)
            except Exception:
                log.exception("analyzer %s failed in wants(%r) (%s)", analyzer.name, path, self.context)
                self.stats.analyzer_errors += 1
        return wanting

    def _content_gate(self, tar: TarReader, path: str, readers: list[Analyzer]) -> list[Analyzer]:
        """The readers still interested once the gated ones have seen the file's first bytes
        (peeked, not consumed: the file is read in full only if someone is left)."""
        head = tar.peek_data(CONTENT_HEAD_BYTES)
        kept: list[Analyzer] = []
        for analyzer in readers:
            if analyzer not in self.gated:
                kept.append(analyzer)
                continue
            try:
                if analyzer.wants_content(head):
                    kept.append(analyzer)
            except Exception:
                log.exception(
                    "analyzer %s failed in wants_content(%r) (%s)", analyzer.name, path, self.context
                )
                self.stats.analyzer_errors += 1
        return kept

    def _analyze(self, tar: TarReader, entry: TarEntry, path: str, wanting: list[Analyzer]) -> None:
        readers = [a for a in wanting if entry.size <= a.max_file_size]
        if len(readers) < len(wanting):
            log.info(
                "skipping %s (%d bytes, %s): larger than max_file_size of %s",
                path,
                entry.size,
                self.context,
                ", ".join(a.name for a in wanting if a not in readers),
            )
        if not readers:
            return
        if self.gated and any(a in self.gated for a in readers):
            readers = self._content_gate(tar, path, readers)
            if not readers:
                return  # nobody wants the rest: `entries()` skips it unread
        content = tar.read_data()
        self.stats.files_analyzed += 1
        item = _Stored(self.index)
        for analyzer in readers:
            try:
                result = analyzer.analyze(path, content)
                if result.secrets:
                    diff_id = self.layer.diff_id
                    self.secrets.extend(s.model_copy(update={"layer": diff_id}) for s in result.secrets)
                if result.packages or result.os is not None or result.owned_files or result.package_licenses:
                    item.results[analyzer.name] = _stamp(result, self.layer.diff_id)
            except Exception:
                log.exception(
                    "analyzer %s failed on %s (%s); scan continues", analyzer.name, path, self.context
                )
                self.stats.analyzer_errors += 1
        if item.results:
            self.merge.put(path, item)


def walk_image(
    source: ImageSource,
    image: ResolvedImage,
    analyzers: Sequence[Analyzer],
    limits: WalkLimits = WalkLimits(),  # frozen dataclass: an immutable default
    progress: Callable[[LayerStats], None] | None = None,
    *,
    base_layers: int = 0,
    skip_in_base: Collection[str] = (),
) -> WalkResult:
    """Stream every layer of `image` once, in order, through `analyzers`; merge the results.

    The analyzers named in `skip_in_base` do not run on the `base_layers` lowest layers (secret
    scanning skips the base image the application team does not own, as Trivy does): those
    layers are still walked, so whiteouts and the other analyzers see them.

    Raises `LayerError` (corrupt or truncated layer), `UnsafeArchiveError` (traversal, bombs, too
    many entries) and `DigestMismatchError` (from the source, when a blob is not what its digest
    says). Analyzer exceptions are logged and never stop the scan. `progress` is called after each
    layer with its stats."""
    names = [a.name for a in analyzers]
    if len(set(names)) != len(names):
        raise ValueError(f"analyzer names must be unique: {names}")
    merge = _Merge()
    result = WalkResult()
    base_analyzers = [a for a in analyzers if a.name not in skip_in_base]
    for index, layer in enumerate(image.layers):
        stats = LayerStats(index=index, diff_id=layer.diff_id, digest=layer.digest)
        started = time.perf_counter()
        context = f"layer {layer.diff_id}"
        layer_analyzers = base_analyzers if index < base_layers else analyzers
        walk = _LayerWalk(
            merge,
            layer_analyzers,
            layer,
            index,
            stats,
            secrets=result.secrets,
            special_modes=result.special_modes,
        )
        with source.open_blob(layer) as raw:
            chunks = open_decompressed(raw, limits.max_layer_bytes, context)
            stats.compression = str(chunks.compression)
            tar = TarReader(chunks, context, limits.max_entries, limits.max_header_bytes)
            try:
                walk.run(tar)
            except (ValueError, UnicodeError, IndexError) as exc:  # a parser bug must not look like a crash
                raise LayerError(f"{context}: unreadable tar: {exc}") from exc
            finally:
                stats.entries = tar.entries_read
            stats.bytes_compressed = chunks.bytes_in
            stats.bytes_decompressed = chunks.bytes_out
        stats.seconds = time.perf_counter() - started
        result.layers.append(stats)
        log.debug("walked %s: %s", context, stats)
        if progress is not None:
            progress(stats)

    for path, item in merge.stored.items():
        if item.link is not None:
            result.links[path] = item.link
        for name, file_result in item.results.items():
            found = FoundFile(path, image.layers[item.layer_index].diff_id, item.layer_index, file_result)
            result.results.setdefault(name, []).append(found)
    for found_list in result.results.values():
        found_list.sort(key=lambda f: (f.layer_index, f.path))
    result.links = dict(sorted(result.links.items()))
    result.secrets = _first_seen(result.secrets)
    result.special_modes = dict(sorted(result.special_modes.items()))
    return result


def _first_seen(secrets: list[SecretFinding]) -> list[SecretFinding]:
    """One finding per (rule, path, line, fingerprint): the lowest layer's, in walk order."""
    seen: set[tuple[str, str, int | None, str]] = set()
    out: list[SecretFinding] = []
    for secret in secrets:
        key = (secret.rule_id, secret.path, secret.line, secret.fingerprint)
        if key not in seen:
            seen.add(key)
            out.append(secret)
    return out


def collect(walk_result: WalkResult, analyzers: Sequence[Analyzer]) -> tuple[OSInfo | None, list[Package]]:
    """The image's OS and all its packages.

    The OS comes from the result with the highest `os_priority` (ties: the higher layer, then the
    later path). Each analyzer then finalizes its own packages knowing the OS. A package whose
    manifest an installed OS package's file list names gets `owner` (see `analyzers/ownership.py`);
    one without licenses of its own gets those another file of its analyzer declared for it
    (`licenses.apply_package_licenses`: Debian copyright files).
    Packages are sorted by (ecosystem, name, version, path, layer) so output is deterministic."""
    best: tuple[int, int, str] | None = None
    os_info: OSInfo | None = None
    for found_list in walk_result.results.values():
        for found in found_list:
            if found.result.os is None:
                continue
            key = (found.result.os_priority, found.layer_index, found.path)
            if best is None or key > best:
                best, os_info = key, found.result.os
    packages: list[Package] = []
    owned: dict[str, str] = {}
    for analyzer in analyzers:
        found_list = walk_result.results.get(analyzer.name, [])
        own = [p for f in found_list for p in f.result.packages]
        try:
            done = analyzer.finalize(own, os_info)
        except Exception:
            log.exception("analyzer %s failed in finalize; keeping its packages as found", analyzer.name)
            done = own
        done = apply_package_licenses(done, (f.result for f in found_list))
        packages.extend(done)
        for path, owner in owned_files((f.result for f in found_list), done).items():
            owned.setdefault(path, owner)
    packages = mark_owned(packages, owned)
    packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path, p.layer or ""))
    return os_info, packages
