"""The analyzer interface (Trivy's design): the walker is generic, an analyzer says which paths it
wants and turns one file's bytes into packages or OS facts. Adding a format = one module with an
`Analyzer` subclass + one line in `analyzers/__init__.py`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from chalicelib.models import OSInfo, Package, SecretFinding


@dataclass
class FileResult:
    """What one analyzer found in one file. `os_priority` orders competing OS sources (higher wins:
    os-release beats alpine-release beats debian_version). `owned_files` maps image paths (relative,
    no leading '/') to the OS package whose file list names them, so a language package the
    distro installed is not reported twice (see `analyzers/ownership.py`).
    `package_licenses` maps package names to the licenses a file declares for packages the same
    analyzer reports from another file (Debian's `usr/share/doc/<pkg>/copyright`); the walker
    joins them after the walk (`licenses.apply_package_licenses`), so a deleted or replaced file
    counts as the overlay says."""

    packages: list[Package] = field(default_factory=list)
    os: OSInfo | None = None
    os_priority: int = 0
    owned_files: dict[str, str] = field(default_factory=dict)
    #: secrets found in the file (masked; the walker stamps the layer and keeps them whatever
    #: later layers do to the file: the bytes are still in the image's blobs)
    secrets: list[SecretFinding] = field(default_factory=list)
    package_licenses: dict[str, list[str]] = field(default_factory=dict)


#: how many leading bytes of a file `Analyzer.wants_content` sees
CONTENT_HEAD_BYTES = 16


class Analyzer(ABC):
    #: stable name; also the key the walker files results under
    name: ClassVar[str]
    #: files larger than this are never read for this analyzer (bounded memory)
    max_file_size: ClassVar[int] = 64 * 1024 * 1024

    @abstractmethod
    def wants(self, path: str) -> bool:
        """Cheap test on a normalised path (relative, no leading '/', e.g. `var/lib/dpkg/status`).
        Called for every regular file in every layer: string ops only."""

    def wants_content(self, head: bytes) -> bool:
        """Second cheap test, on the first `CONTENT_HEAD_BYTES` of a file `wants` accepted (fewer
        when the file is shorter), before the walker reads the rest: an analyzer of binary
        formats checks the magic here (ELF, zip), so a file it would reject after reading is never
        buffered. The default (True) reads every wanted file."""
        return True

    @abstractmethod
    def analyze(self, path: str, content: bytes) -> FileResult:
        """Parse one file. Raise nothing for odd content: skip what cannot be parsed (log it)."""

    def finalize(self, packages: list[Package], os: OSInfo | None) -> list[Package]:
        """Complete packages once the image's OS is known (OS package ecosystems like `Debian:12`
        and their purls need it). Language analyzers keep the default."""
        return packages
