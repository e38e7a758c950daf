""".NET dependencies: the `<app>.deps.json` file the SDK writes next to every published app, which
the host reads to resolve assemblies, so it names exactly the NuGet packages the app runs with.

`libraries` maps `Name/Version` to `{"type": "package" | "project" | "reference", ...}`; only
`package` entries are NuGet packages (`project` is the app's own code), as in Trivy."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.langpkg import build_packages, clean
from chalicelib.analyzers.purls import nuget_purl

log = logging.getLogger(__name__)

ECOSYSTEM = "NuGet"


def parse_deps_json(content: bytes) -> list[tuple[str, str]] | None:
    """(name, version) of every `package` library, or None when the file is not a deps.json."""
    try:
        document: Any = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    libraries = document.get("libraries") if isinstance(document, dict) else None
    if not isinstance(libraries, dict):
        return None
    found: list[tuple[str, str]] = []
    for key, library in libraries.items():
        if not isinstance(library, dict) or library.get("type") != "package":
            continue
        name, _, version = key.partition("/")
        name_, version_ = clean(name), clean(version)
        if name_ and version_ and "/" not in version_:
            found.append((name_, version_))
    return found


class DotnetDepsAnalyzer(Analyzer):
    name: ClassVar[str] = "dotnet"
    max_file_size: ClassVar[int] = 32 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return path.endswith(".deps.json")

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_deps_json(content)
        if found is None:
            log.warning("%s: not a .NET deps.json (no libraries object); skipped", path)
            return FileResult()
        return FileResult(packages=build_packages(path, ECOSYSTEM, nuget_purl, found))
