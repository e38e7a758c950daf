"""Installed Python distributions: `*.dist-info/METADATA` (wheels, pip), `*.egg-info/PKG-INFO`
(setuptools, Debian's python3-* packages) and `*.egg-info` when it is itself the PKG-INFO file
(distutils-era installs).

Core metadata is RFC 822 headers followed by a body that can be a whole README: only the header
block (up to the first blank line) is decoded and parsed. `Name` is kept as written; the purl
carries the PEP 503-normalised name.

Licenses, in Trivy's order of trust: `License-Expression` (metadata 2.4, an SPDX expression);
else `License` when it is a name rather than a license text pasted into the field (one line,
shorter than `LICENSE_FIELD_MAX`); else the `Classifier: License :: ...` lines, mapped to SPDX
ids (`analyzers/licenses.py`)."""

from __future__ import annotations

import logging
import re
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import ClassVar

from chalicelib.analyzers.base import Analyzer, FileResult
from chalicelib.analyzers.licenses import classifier_license, normalize_license, normalize_licenses
from chalicelib.analyzers.purls import pypi_purl
from chalicelib.models import Package

log = logging.getLogger(__name__)

ECOSYSTEM = "PyPI"
_SUFFIXES = (".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
#: a `License` value this long (or on several lines) is a license text, not a license name
LICENSE_FIELD_MAX = 100


def header_block(content: bytes) -> str:
    """The metadata headers only: everything before the first blank line, decoded leniently."""
    match = _END_OF_HEADERS.search(content)
    head = content[: match.start()] if match else content
    return head.decode("utf-8", errors="replace")


def parse_metadata(content: bytes) -> tuple[str, str, list[str]] | None:
    """(Name, Version, licenses) from core metadata, or None when Name or Version is missing."""
    headers = HeaderParser(policy=compat32).parsestr(header_block(content))
    name = str(headers.get("Name") or "").strip()
    version = str(headers.get("Version") or "").strip()
    if not name or not version:
        return None
    return name, version, metadata_licenses(headers)


def metadata_licenses(headers: Message) -> list[str]:
    """The declared licenses of parsed core metadata (module docstring for the order)."""
    expression = normalize_license(str(headers.get("License-Expression") or ""))
    if expression is not None:
        return [expression]
    field = str(headers.get("License") or "").strip()
    if field and "\n" not in field and len(field) < LICENSE_FIELD_MAX:
        license_name = normalize_license(field)
        if license_name is not None:
            return [license_name]
    classifiers = (classifier_license(str(c)) for c in headers.get_all("Classifier") or [])
    return normalize_licenses(classifiers)


class PythonPackageAnalyzer(Analyzer):
    name: ClassVar[str] = "python"
    max_file_size: ClassVar[int] = 16 * 1024 * 1024

    def wants(self, path: str) -> bool:
        return path.endswith(_SUFFIXES)

    def analyze(self, path: str, content: bytes) -> FileResult:
        found = parse_metadata(content)
        if found is None:
            log.warning("%s: no Name/Version in Python metadata; skipped", path)
            return FileResult()
        name, version, licenses = found
        try:
            purl = pypi_purl(name, version)
        except ValueError as exc:
            log.warning("%s: no purl for %s %s: %s", path, name, version, exc)
            return FileResult()
        return FileResult(
            packages=[
                Package(
                    name=name, version=version, ecosystem=ECOSYSTEM, purl=purl, path=path, licenses=licenses
                )
            ]
        )
