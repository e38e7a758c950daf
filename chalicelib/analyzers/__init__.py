"""Analyzers: one module per file format, registered in `default_analyzers`."""

from __future__ import annotations

from chalicelib.analyzers.apk import ApkAnalyzer
from chalicelib.analyzers.base import Analyzer
from chalicelib.analyzers.dpkg import DpkgAnalyzer
from chalicelib.analyzers.npm import NpmPackageAnalyzer
from chalicelib.analyzers.os_release import OSReleaseAnalyzer
from chalicelib.analyzers.python import PythonPackageAnalyzer


def default_analyzers() -> list[Analyzer]:
    """A fresh instance of every analyzer a scan runs (fresh: analyzers may keep per-scan state).
    Adding a format = one module + one line here."""
    return [
        OSReleaseAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        PythonPackageAnalyzer(),
        NpmPackageAnalyzer(),
    ]
