"""`scan dir:PATH` reads lockfiles and the small language formats; an image never reports a
lockfile (its installed `node_modules/**/package.json` are the truth)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.image.oci_writer import build_layer, write_oci_layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ANALYZERS = FIXTURES / "analyzers"
DEPS = "dotnet/app.deps.json"
COMPOSER = "php/vendor/composer/installed.json"
LOCKFILE = ANALYZERS / "lockfiles" / "npm-v3" / "package-lock.json"


def _tree(root: Path) -> Path:
    """A build context: a Node app with its lockfile, a Rust crate, a PHP vendor dir, a .NET app
    and a Ruby bundle."""
    (root / "web").mkdir(parents=True)
    shutil.copy(LOCKFILE, root / "web" / "package-lock.json")
    (root / "svc").mkdir()
    shutil.copy(ANALYZERS / "lockfiles" / "Cargo.lock", root / "svc" / "Cargo.lock")
    (root / "php" / "vendor" / "composer").mkdir(parents=True)
    shutil.copy(
        ANALYZERS / "php" / "installed-v1.json", root / "php" / "vendor" / "composer" / "installed.json"
    )
    (root / "dotnet").mkdir()
    shutil.copy(ANALYZERS / "dotnet" / "app.deps.json", root / "dotnet" / "app.deps.json")
    (root / "bundle" / "specifications").mkdir(parents=True)
    shutil.copy(
        ANALYZERS / "ruby" / "rake-13.0.6.gemspec", root / "bundle" / "specifications" / "rake-13.0.6.gemspec"
    )
    return root


def test_dir_scan_reports_lockfile_packages_and_findings(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path / "ctx")
    assert main(["scan", f"dir:{root}", "--db", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    packages = sorted(
        (p["ecosystem"], p["name"], p["version"], p["purl"], p["path"]) for p in doc["packages"]
    )
    assert packages == [
        ("NuGet", "Newtonsoft.Json", "12.0.1", "pkg:nuget/Newtonsoft.Json@12.0.1", DEPS),
        ("NuGet", "System.Text.Encodings.Web", "4.7.1", "pkg:nuget/System.Text.Encodings.Web@4.7.1", DEPS),
        ("Packagist", "monolog/monolog", "1.25.1", "pkg:composer/monolog/monolog@1.25.1", COMPOSER),
        ("Packagist", "psr/log", "1.1.0", "pkg:composer/psr/log@1.1.0", COMPOSER),
        ("RubyGems", "rake", "13.0.6", "pkg:gem/rake@13.0.6", "bundle/specifications/rake-13.0.6.gemspec"),
        ("crates.io", "itoa", "1.0.9", "pkg:cargo/itoa@1.0.9", "svc/Cargo.lock"),
        ("crates.io", "smallvec", "1.6.0", "pkg:cargo/smallvec@1.6.0", "svc/Cargo.lock"),
        ("npm", "@types/node", "20.11.0", "pkg:npm/%40types/node@20.11.0", "web/package-lock.json"),
        ("npm", "lodash", "4.17.15", "pkg:npm/lodash@4.17.15", "web/package-lock.json"),
        ("npm", "minimist", "1.2.5", "pkg:npm/minimist@1.2.5", "web/package-lock.json"),
        ("npm", "undici-types", "5.26.5", "pkg:npm/undici-types@5.26.5", "web/package-lock.json"),
    ]  # fmt: skip
    vulns = sorted((v["id"], v["package"], v["installed_version"], v["fixed_version"], v["path"])
                   for v in doc["vulnerabilities"])  # fmt: skip
    assert vulns == [
        ("CVE-2020-28500", "lodash", "4.17.15", "4.17.21", "web/package-lock.json"),
        ("CVE-2020-8203", "lodash", "4.17.15", "4.17.19", "web/package-lock.json"),
        ("CVE-2021-23337", "lodash", "4.17.15", "4.17.21", "web/package-lock.json"),
        ("CVE-2021-44906", "minimist", "1.2.5", "1.2.6", "web/package-lock.json"),
    ]
    cve = next(v for v in doc["vulnerabilities"] if v["id"] == "CVE-2020-8203")
    assert (cve["aliases"], cve["ecosystem"]) == (["GHSA-p6mc-m468-83gw"], "npm")
    assert doc["summary"]["packages"] == 11


def test_image_ignores_lockfiles_but_reads_installed_packages(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.dumps({"name": "lodash", "version": "4.17.21"}).encode()
    layer = build_layer({
        "app/package-lock.json": LOCKFILE.read_bytes(),
        "app/node_modules/lodash/package.json": manifest,
        "app/Cargo.lock": (ANALYZERS / "lockfiles" / "Cargo.lock").read_bytes(),
    })  # fmt: skip
    write_oci_layout(tmp_path / "img", [layer])
    assert main(["scan", f"oci:{tmp_path / 'img'}", "--db", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["version"], p["path"]) for p in doc["packages"]] == [
        ("lodash", "4.17.21", "app/node_modules/lodash/package.json")
    ]
    assert doc["vulnerabilities"] == []
