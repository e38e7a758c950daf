"""What the analyzers of executables share (Go build info, cargo-auditable): which paths may be
programs, the ELF gate that skips everything else unread, the size bound, and turning unreadable
binaries into a logged empty result."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.elf import is_elf
from chalicelib.models import Package

log = logging.getLogger(__name__)

#: top-level directories where images put their programs (`COPY server /app/server`); files are
#: taken at most `_APP_DEPTH` directories down, so language trees below them are not
_APP_ROOTS = ("opt/", "app/", "srv/", "ko-app/")
_APP_DEPTH = 2
#: extensions of files that are never programs, even in bin/
_NOT_BINARY = frozenset(
    {
        "sh", "bash", "py", "pyc", "pl", "pm", "rb", "js", "mjs", "cjs", "php", "lua", "tcl",
        "txt", "md", "rst", "json", "yaml", "yml", "toml", "xml", "html", "css", "conf", "cfg",
        "ini", "jar", "war", "ear", "gz", "xz", "bz2", "zst", "zip", "tar", "tgz", "png", "jpg",
        "svg", "ico", "h", "c", "go", "java", "class", "a", "o", "la", "pc", "mo", "po", "gif",
    }
)  # fmt: skip


def wants_path(path: str) -> bool:
    """Cheap guess that `path` is an executable (string operations only).

    - in a `bin/`, `sbin/` or `libexec/` directory at any depth (usr/bin, usr/local/bin, go/bin,
      opt/x/bin, usr/libexec/docker/cli-plugins): any name but known text/archive extensions;
    - at the image root (`/manager`, `/server`) or at most two directories under opt/, app/, srv/,
      ko-app/ (`/app/server`, `/opt/tool/tool`): names without an extension that are not all
      capitals (`LICENSE`, `METADATA`, `RECORD` are not programs)."""
    slash = path.rfind("/")
    base = path[slash + 1 :]
    dot = base.rfind(".")
    if slash >= 0:
        directory = path[:slash]
        framed = f"/{directory}/"
        if "/bin/" in framed or "/sbin/" in framed or "/libexec/" in framed:
            return dot <= 0 or base[dot + 1 :].lower() not in _NOT_BINARY
        if not path.startswith(_APP_ROOTS) or directory.count("/") >= _APP_DEPTH:
            return False
    return dot <= 0 and not base.isupper()


class ElfAnalyzer(Analyzer):
    """Base of the executable analyzers: subclasses implement `packages_of_elf`, which may raise
    any `ValueError` (ELF, build-info or audit-data errors) for a binary it cannot read."""

    max_file_size: ClassVar[int] = 256 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return wants_path(path)

    def wants_content(self, head: bytes) -> bool:
        """Only ELF files: anything else in bin/ (scripts, data) is skipped unread."""
        return is_elf(head)

    def analyze(self, path: str, content: bytes) -> FileResult:
        if not is_elf(content):
            return FileResult()
        try:
            packages = self.packages_of_elf(path, content)
        except ValueError as exc:
            log.info("%s: unreadable for %s: %s", path, self.name, exc)
            return FileResult()
        return FileResult(packages=packages)

    @abstractmethod
    def packages_of_elf(self, path: str, content: bytes) -> list[Package]:
        """The packages an ELF file declares (empty when it carries no such data)."""
