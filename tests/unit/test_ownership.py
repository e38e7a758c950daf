"""Language packages owned by an OS package (dpkg `.list`, apk `F:`/`R:`) are listed in the SBOM
with `owner` and not matched on their own. File lists are filtered as they are parsed, whiteouts
apply to them like to any file, and only installed owners count."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from chalicelib.analyzers.apk import ApkAnalyzer, iter_owned_files
from chalicelib.analyzers.base import FileResult
from chalicelib.analyzers.dpkg import DpkgAnalyzer, list_owner
from chalicelib.analyzers.ownership import keeps_path, list_path, mark_owned, owned_files, owner_of
from chalicelib.image.oci_writer import LayerEntry, whiteout
from chalicelib.models import ImageScan, Package
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages
from tests.layered_scan import scan_layers

TESTS = Path(__file__).parent.parent
FIXTURES = TESTS / "fixtures" / "ownership"
OS_RELEASE = TESTS / "fixtures" / "analyzers" / "os-release"
SIX_PKG_INFO = TESTS / "fixtures" / "analyzers" / "python" / "six-1.16.0.PKG-INFO"
DIST = "usr/lib/python3/dist-packages"
PIP_METADATA = "usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA"
PIP_REQUESTS = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n"


def pypi(result: ImageScan) -> list[tuple[str, str, str, str | None]]:
    return [(p.name, p.version, p.path, p.owner) for p in result.packages if p.ecosystem == "PyPI"]


def findings(result: ImageScan) -> list[tuple[str, str, str, str | None, str]]:
    return [(v.id, v.package, v.installed_version, v.fixed_version, v.path) for v in result.vulnerabilities]


# -- the path filter and list parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        (f"{DIST}/blinker-1.5.dist-info", True),
        (f"{DIST}/blinker-1.5.dist-info/METADATA", True),
        (f"{DIST}/blinker-1.5.dist-info/RECORD", False),
        (f"{DIST}/six-1.16.0.egg-info", True),
        (f"{DIST}/six-1.16.0.egg-info/PKG-INFO", True),
        (f"{DIST}/six-1.16.0.egg-info/top_level.txt", False),
        (f"{DIST}/perf-0.1.egg-info", True),  # distutils single-file egg-info (linux-perf)
        ("usr/lib/node_modules/npm/node_modules/semver/package.json", True),
        ("usr/share/nodejs/semver/package.json", True),
        ("usr/share/java/libintl.jar", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
        (f"{DIST}/requests/api.py", False),
        (DIST, False),
        ("usr/lib/python3/dist-packages/yaml/_yaml.cpython-311-x86_64-linux-gnu.so", False),
        ("usr/share/doc/python3-six/copyright", False),
        # programs: a distro's Go or Rust binary belongs to its package
        ("/usr/sbin/gosu", True),
        ("usr/bin/docker-registry", True),
        ("usr/libexec/docker/cli-plugins/docker-buildx", True),
        ("usr/bin/pydoc3.11.py", False),
        ("usr/share/man/man1/gosu.1.gz", False),
        ("var/lib/dpkg/status", False),
    ],
)
def test_keeps_only_manifest_paths(path: str, kept: bool) -> None:
    assert keeps_path(path) is kept


@pytest.mark.parametrize(
    ("line", "path"),
    [("/.", None), ("/", None), ("", None), ("  \n", None), ("/usr/lib/x\n", "usr/lib/x"), ("/usr/", "usr")],
)
def test_list_path(line: str, path: str | None) -> None:
    assert list_path(line) == path


def test_real_debian_lists_keep_the_metadata_and_its_directory() -> None:
    """`python3-six.list` and `python3-blinker.list` copied from a Debian 12 system: dpkg lists
    directories too, so both the `.egg-info`/`.dist-info` directory and the metadata file are
    there; nothing else of the packages is kept."""
    analyzer = DpkgAnalyzer()
    six = analyzer.analyze("var/lib/dpkg/info/python3-six.list", (FIXTURES / "python3-six.list").read_bytes())
    blinker = analyzer.analyze(
        "var/lib/dpkg/info/python3-blinker.list", (FIXTURES / "python3-blinker.list").read_bytes()
    )
    assert six == FileResult(
        owned_files={
            f"{DIST}/six-1.16.0.egg-info": "python3-six",
            f"{DIST}/six-1.16.0.egg-info/PKG-INFO": "python3-six",
        }
    )
    assert blinker.owned_files == {
        f"{DIST}/blinker-1.5.dist-info": "python3-blinker",
        f"{DIST}/blinker-1.5.dist-info/METADATA": "python3-blinker",
    }
    assert blinker.packages == [] and blinker.os is None


def test_dpkg_wants_list_files_only_directly_in_info() -> None:
    analyzer = DpkgAnalyzer()
    assert analyzer.wants("var/lib/dpkg/info/python3-six.list")
    assert analyzer.wants("var/lib/dpkg/info/python3-cffi-backend:amd64.list")
    assert not analyzer.wants("var/lib/dpkg/info/python3-six.md5sums")
    assert not analyzer.wants("var/lib/dpkg/info/python3-six.postinst")
    assert not analyzer.wants("var/lib/dpkg/info/.list")
    assert not analyzer.wants("var/lib/dpkg/info/sub/python3-six.list")
    assert not analyzer.wants("var/lib/dpkg/info/format")


def test_multiarch_list_names_the_package_without_arch() -> None:
    assert list_owner("var/lib/dpkg/info/python3-cffi-backend:amd64.list") == "python3-cffi-backend"
    assert list_owner("var/lib/dpkg/info/python3-six.list") == "python3-six"
    result = DpkgAnalyzer().analyze(
        "var/lib/dpkg/info/python3-cffi-backend:amd64.list",
        b"/.\n/usr\n/usr/lib/python3/dist-packages/cffi_backend.egg-info\n",
    )
    assert result.owned_files == {f"{DIST}/cffi_backend.egg-info": "python3-cffi-backend"}


def test_a_huge_list_keeps_only_the_relevant_paths() -> None:
    """200,000 entries (a texlive- or kernel-sized package): every 1,000th entry opens a dist-info
    directory with METADATA and RECORD; only the directory and METADATA are kept (400 of 200,000)."""
    lines = ["/."]
    for i in range(199_999):
        if i % 1000 == 0:
            lines.append(f"/usr/lib/python3/dist-packages/pkg{i}-1.0.dist-info")
        elif i % 1000 == 1:
            lines.append(f"/usr/lib/python3/dist-packages/pkg{i - 1}-1.0.dist-info/METADATA")
        elif i % 1000 == 2:
            lines.append(f"/usr/lib/python3/dist-packages/pkg{i - 2}-1.0.dist-info/RECORD")
        else:
            lines.append(f"/usr/share/texlive/texmf-dist/tex/latex/pkg{i // 1000}/file{i}.sty")
    assert len(lines) == 200_000
    content = ("\n".join(lines) + "\n").encode()
    result = DpkgAnalyzer().analyze("var/lib/dpkg/info/huge.list", content)
    assert len(result.owned_files) == 400
    assert set(result.owned_files.values()) == {"huge"}
    assert result.owned_files[f"{DIST}/pkg199000-1.0.dist-info/METADATA"] == "huge"
    assert f"{DIST}/pkg0-1.0.dist-info/RECORD" not in result.owned_files


def test_apk_files_and_folders() -> None:
    text = (FIXTURES / "apk-installed").read_text()
    assert list(iter_owned_files(text)) == [
        ("usr/lib/python3.11/site-packages/requests-2.31.0.dist-info", "py3-requests"),
        ("usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", "py3-requests"),
        ("usr/bin/npm", "npm"),
        ("usr/lib/node_modules/npm/package.json", "npm"),
        ("usr/lib/node_modules/npm/node_modules/semver/package.json", "npm"),
    ]
    result = ApkAnalyzer().analyze("lib/apk/db/installed", (FIXTURES / "apk-installed").read_bytes())
    assert [(p.name, p.version, p.source_name) for p in result.packages] == [
        ("py3-requests", "2.31.0-r1", "py3-requests"),
        ("npm", "10.2.5-r0", "npm"),
    ]
    assert len(result.owned_files) == 5


def test_apk_file_before_any_folder_and_block_without_name() -> None:
    text = "P:a\nV:1\nR:b.jar\n\nV:2\nF:usr/x.egg-info\nR:PKG-INFO\n\nP:c\nV:1\nF:/usr/y.egg-info/\n"
    assert list(iter_owned_files(text)) == [("b.jar", "a"), ("usr/y.egg-info", "c")]


# -- owners onto packages ------------------------------------------------------------------------


def _lang(path: str, owner: str | None = None) -> Package:
    return Package(name="requests", version="2.28.1", ecosystem="PyPI", purl="pkg:pypi/requests@2.28.1",
                   path=path, owner=owner)  # fmt: skip


def test_owner_of_file_then_metadata_directory() -> None:
    owned = {f"{DIST}/a-1.dist-info": "python3-a", f"{DIST}/b-1.egg-info/PKG-INFO": "python3-b", "x": "p"}
    assert owner_of(f"{DIST}/a-1.dist-info/METADATA", owned) == "python3-a"
    assert owner_of(f"{DIST}/b-1.egg-info/PKG-INFO", owned) == "python3-b"
    assert owner_of(f"{DIST}/b-1.egg-info", owned) is None
    assert owner_of("x/package.json", owned) is None  # only metadata directories stand for a file
    assert owner_of(f"{DIST}/c-1.dist-info/METADATA", owned) is None


def test_only_installed_owners_count() -> None:
    results = [
        FileResult(owned_files={"a/x.jar": "libx-java", "a/y.jar": "gone-java"}),
        FileResult(owned_files={"a/x.jar": "other-java"}),
    ]
    installed = [Package(name="libx-java", version="1", ecosystem="Debian:12", purl="p", path="s")]
    assert owned_files(results, installed) == {"a/x.jar": "libx-java"}
    assert owned_files(results, []) == {}


def test_mark_owned_keeps_order_and_other_fields() -> None:
    packages = [_lang(f"{DIST}/requests-2.28.1.egg-info/PKG-INFO"), _lang("usr/local/x/METADATA")]
    marked = mark_owned(packages, {f"{DIST}/requests-2.28.1.egg-info": "python3-requests"})
    assert [(p.path, p.owner) for p in marked] == [
        (f"{DIST}/requests-2.28.1.egg-info/PKG-INFO", "python3-requests"),
        ("usr/local/x/METADATA", None),
    ]
    assert marked[0].model_dump(exclude={"owner"}) == packages[0].model_dump(exclude={"owner"})
    assert mark_owned(packages, {}) is packages


def test_matcher_skips_owned_packages(index: VulnIndex) -> None:
    path = f"{DIST}/requests-2.28.1.egg-info/PKG-INFO"
    assert [v.id for v in match_packages([_lang(path)], index)] == ["CVE-2023-32681", "CVE-2024-35195"]
    assert match_packages([_lang(path, owner="python3-requests")], index) == []


# -- whole images --------------------------------------------------------------------------------


def _requests_list(layout: str) -> bytes:
    """Debian 12's python3-requests file list (egg-info), or the same package built as a wheel
    (dist-info, as pyproject-built packages like python3-blinker are), or a list naming only the
    dist-info directory."""
    text = (FIXTURES / "python3-requests.list").read_text()
    if layout == "egg-info":
        return text.encode()
    egg = "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info"
    dist = "/usr/lib/python3/dist-packages/requests-2.28.1.dist-info"
    kept = [line for line in text.splitlines() if not line.startswith(egg)]
    files = ["METADATA", "RECORD", "WHEEL", "top_level.txt"] if layout == "dist-info" else []
    return "\n".join([*kept, dist, *(f"{dist}/{name}" for name in files)]).encode() + b"\n"


def _debian_base(layout: str) -> dict[str, bytes | LayerEntry]:
    meta_dir = f"{DIST}/requests-2.28.1.{'egg-info' if layout == 'egg-info' else 'dist-info'}"
    meta_file = "PKG-INFO" if layout == "egg-info" else "METADATA"
    return {
        "etc/os-release": (OS_RELEASE / "debian12").read_bytes(),
        "var/lib/dpkg/status": (FIXTURES / "status").read_bytes(),
        "var/lib/dpkg/info/python3-blinker.list": (FIXTURES / "python3-blinker.list").read_bytes(),
        "var/lib/dpkg/info/python3-requests.list": _requests_list(layout),
        "var/lib/dpkg/info/python3-six.list": (FIXTURES / "python3-six.list").read_bytes(),
        f"{DIST}/blinker-1.5.dist-info/METADATA": (FIXTURES / "blinker-1.5.METADATA").read_bytes(),
        f"{meta_dir}/{meta_file}": (FIXTURES / "requests-2.28.1.PKG-INFO").read_bytes(),
        f"{DIST}/six-1.16.0.egg-info/PKG-INFO": SIX_PKG_INFO.read_bytes(),
    }


def _requests_path(layout: str) -> str:
    return f"{DIST}/requests-2.28.1.egg-info/PKG-INFO" if layout == "egg-info" else (
        f"{DIST}/requests-2.28.1.dist-info/METADATA"
    )  # fmt: skip


@pytest.mark.parametrize("layout", ["egg-info", "dist-info", "dist-info-directory-only"])
def test_debian_image_reports_distro_python_packages_once(
    tmp_path: Path, index: VulnIndex, layout: str
) -> None:
    """python3-requests 2.28.1 (dpkg) and a pip-installed requests 2.31.0 in /usr/local: both in the
    SBOM, only the pip one matched. Unowned, 2.28.1 would have matched two advisories."""
    result = scan_layers(tmp_path, index, [_debian_base(layout), {PIP_METADATA: PIP_REQUESTS}])
    assert result.image.os.family == "debian"
    assert pypi(result) == [
        ("blinker", "1.5", f"{DIST}/blinker-1.5.dist-info/METADATA", "python3-blinker"),
        ("requests", "2.28.1", _requests_path(layout), "python3-requests"),
        ("requests", "2.31.0", PIP_METADATA, None),
        ("six", "1.16.0", f"{DIST}/six-1.16.0.egg-info/PKG-INFO", "python3-six"),
    ]
    assert [(p.name, p.owner) for p in result.packages if p.ecosystem == "Debian:12"] == [
        ("python3-blinker", None),
        ("python3-requests", None),
        ("python3-six", None),
    ]
    assert findings(result) == [("CVE-2024-35195", "requests", "2.31.0", "2.32.0", PIP_METADATA)]
    assert result.summary.packages == 7


def test_whiteout_of_a_list_file_unowns(tmp_path: Path, index: VulnIndex) -> None:
    """A layer deleting `python3-requests.list` takes the ownership with it: the distro's requests
    is then matched like any other (three findings instead of one)."""
    layers: list[Mapping[str, bytes | LayerEntry]] = [
        _debian_base("egg-info"),
        {PIP_METADATA: PIP_REQUESTS},
        {whiteout("var/lib/dpkg/info/python3-requests.list"): b""},
    ]
    result = scan_layers(tmp_path, index, layers)
    egg = _requests_path("egg-info")
    assert [(name, owner) for name, _, _, owner in pypi(result)] == [
        ("blinker", "python3-blinker"),
        ("requests", None),
        ("requests", None),
        ("six", "python3-six"),
    ]
    assert findings(result) == [
        ("CVE-2023-32681", "requests", "2.28.1", "2.31.0", egg),
        ("CVE-2024-35195", "requests", "2.28.1", "2.32.0", egg),
        ("CVE-2024-35195", "requests", "2.31.0", "2.32.0", PIP_METADATA),
    ]


GOSU_STATUS = b"""
Package: gosu
Status: install ok installed
Priority: optional
Section: admin
Architecture: amd64
Source: gosu (1.14-1)
Version: 1.14-1+b6
Description: Simple Go-based setuid+setgid+setgroups+exec
"""


GO_1840 = {
    "schema_version": "1.3.1",
    "id": "GO-2023-1840",
    "modified": "2024-05-20T16:03:47Z",
    "aliases": ["CVE-2023-29403"],
    "summary": "Unsafe behavior in setuid/setgid binaries in runtime",
    "affected": [
        {
            "package": {"name": "stdlib", "ecosystem": "Go"},
            "ranges": [
                {
                    "type": "SEMVER",
                    "events": [
                        {"introduced": "0"},
                        {"fixed": "1.19.10"},
                        {"introduced": "1.20.0"},
                        {"fixed": "1.20.5"},
                    ],
                }
            ],
        }
    ],
}


def test_distro_go_binary_is_owned_and_not_matched(tmp_path: Path) -> None:
    """Debian's gosu (a Go program): its stdlib and main module are listed with `owner` = the deb
    and not matched (the deb's advisories cover it); the same binary copied to /app is not owned,
    and its stdlib 1.19.8 matches GO-2023-1840."""
    (tmp_path / "osv").mkdir()
    (tmp_path / "osv" / "GO-2023-1840.json").write_text(json.dumps(GO_1840))
    build_index([tmp_path / "osv"], tmp_path / "go.sqlite")
    index = VulnIndex(tmp_path / "go.sqlite")
    gosu = (TESTS / "fixtures" / "gobinary" / "gosu-1.14-go1.19.8.buildinfo.elf").read_bytes()
    base = _debian_base("egg-info")
    base["var/lib/dpkg/status"] = (FIXTURES / "status").read_bytes() + GOSU_STATUS
    base["var/lib/dpkg/info/gosu.list"] = (
        b"/.\n/usr\n/usr/sbin\n/usr/sbin/gosu\n/usr/share/man/man1/gosu.1.gz\n"
    )
    base["usr/sbin/gosu"] = gosu
    result = scan_layers(tmp_path, index, [base, {"app/gosu": gosu}])
    assert [(p.name, p.version, p.path, p.owner) for p in result.packages if p.ecosystem == "Go"] == [
        ("github.com/tianon/gosu", "(devel)", "app/gosu", None),
        ("github.com/tianon/gosu", "(devel)", "usr/sbin/gosu", "gosu"),
        ("stdlib", "1.19.8", "app/gosu", None),
        ("stdlib", "1.19.8", "usr/sbin/gosu", "gosu"),
    ]
    assert findings(result) == [("CVE-2023-29403", "stdlib", "1.19.8", "1.19.10", "app/gosu")]


def test_list_of_a_package_no_longer_installed_does_not_own(tmp_path: Path, index: VulnIndex) -> None:
    """`dpkg -r` keeps the `.list` (conffiles) with the package `deinstall ok config-files`; a list
    left behind must never hide a language package from matching."""
    base = _debian_base("egg-info")
    status = (FIXTURES / "status").read_text()
    base["var/lib/dpkg/status"] = status.replace(
        "Package: python3-requests\nStatus: install ok installed",
        "Package: python3-requests\nStatus: deinstall ok config-files",
    ).encode()
    result = scan_layers(tmp_path, index, [base])
    assert [(p.name, p.owner) for p in result.packages if p.name == "requests"] == [("requests", None)]
    assert [v.id for v in result.vulnerabilities] == ["CVE-2023-32681", "CVE-2024-35195"]


def test_alpine_image_py3_and_npm_owned_by_apk(tmp_path: Path, index: VulnIndex) -> None:
    """Alpine's py3-requests and the npm bundled in Alpine's `npm` package are owned; a
    virtualenv's requests is not, and is the only match."""
    site = "usr/lib/python3.11/site-packages"
    venv = "app/.venv/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"
    npm_json = b'{"name": "npm", "version": "10.2.5"}'
    semver_json = b'{"name": "semver", "version": "7.5.4"}'
    layers: list[Mapping[str, bytes | LayerEntry]] = [
        {
            "etc/os-release": (OS_RELEASE / "alpine319").read_bytes(),
            "lib/apk/db/installed": (FIXTURES / "apk-installed").read_bytes(),
            f"{site}/requests-2.31.0.dist-info/METADATA": PIP_REQUESTS,
            "usr/lib/node_modules/npm/package.json": npm_json,
            "usr/lib/node_modules/npm/node_modules/semver/package.json": semver_json,
        },
        {venv: PIP_REQUESTS},
    ]
    result = scan_layers(tmp_path, index, layers)
    assert [(p.ecosystem, p.name, p.version, p.owner) for p in result.packages] == [
        ("Alpine:v3.19", "npm", "10.2.5-r0", None),
        ("Alpine:v3.19", "py3-requests", "2.31.0-r1", None),
        ("PyPI", "requests", "2.31.0", None),
        ("PyPI", "requests", "2.31.0", "py3-requests"),
        ("npm", "npm", "10.2.5", "npm"),
        ("npm", "semver", "7.5.4", "npm"),
    ]
    assert [p.path for p in result.packages if p.ecosystem == "PyPI"] == [
        venv,
        f"{site}/requests-2.31.0.dist-info/METADATA",
    ]
    assert findings(result) == [("CVE-2024-35195", "requests", "2.31.0", "2.32.0", venv)]
