"""Analyzers: one module per file format, registered in `default_analyzers`."""

from __future__ import annotations

from chalicelib.analyzers.apk import ApkAnalyzer
from chalicelib.analyzers.base import Analyzer
from chalicelib.analyzers.cargo_lock import CargoLockAnalyzer
from chalicelib.analyzers.dotnet import DotnetDepsAnalyzer
from chalicelib.analyzers.dpkg import DpkgAnalyzer
from chalicelib.analyzers.gobinary import GoBinaryAnalyzer
from chalicelib.analyzers.java import JavaArchiveAnalyzer
from chalicelib.analyzers.npm import NpmPackageAnalyzer
from chalicelib.analyzers.npm_lock import NpmLockAnalyzer
from chalicelib.analyzers.os_release import OSReleaseAnalyzer
from chalicelib.analyzers.php import ComposerInstalledAnalyzer
from chalicelib.analyzers.pnpm_lock import PnpmLockAnalyzer
from chalicelib.analyzers.python import PythonPackageAnalyzer
from chalicelib.analyzers.rpm import RpmAnalyzer
from chalicelib.analyzers.ruby import RubyGemspecAnalyzer
from chalicelib.analyzers.rust_binary import RustBinaryAnalyzer
from chalicelib.analyzers.secrets import SecretAnalyzer
from chalicelib.analyzers.yarn_lock import YarnLockAnalyzer


def default_analyzers(*, filesystem: bool = False) -> list[Analyzer]:
    """A fresh instance of every analyzer a scan runs (fresh: analyzers may keep per-scan state).
    Adding a format = one module + one line here (lockfile formats: `lockfile_analyzers`).
    `filesystem`: the source is a directory tree (`dir:`), so lockfiles are read too."""
    analyzers: list[Analyzer] = [
        OSReleaseAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonPackageAnalyzer(),
        NpmPackageAnalyzer(),
        RubyGemspecAnalyzer(),
        ComposerInstalledAnalyzer(),
        DotnetDepsAnalyzer(),
        GoBinaryAnalyzer(),
        JavaArchiveAnalyzer(),
        RustBinaryAnalyzer(),
        SecretAnalyzer(),
    ]
    return analyzers + (lockfile_analyzers() if filesystem else [])


def lockfile_analyzers() -> list[Analyzer]:
    """Analyzers of lockfiles, which describe a build rather than an installation: run only on
    filesystem sources (`dir:`), as Trivy's `fs` scan does. In an image the installed packages
    (`node_modules/**/package.json`, binaries) are the truth and a leftover lockfile would
    double-report or report what was never installed."""
    return [NpmLockAnalyzer(), YarnLockAnalyzer(), PnpmLockAnalyzer(), CargoLockAnalyzer()]
