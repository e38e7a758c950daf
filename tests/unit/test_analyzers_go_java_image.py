"""Go binaries and Java archives through the real pipeline: a root filesystem (`dir:` source) walked
with the registered analyzers, then collected. Checks registration, layer/path stamping, that a
script in bin/ is read but gives nothing, and that a jar a Debian package installed is marked as
owned (so the matcher does not report it twice)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from chalicelib.analyzers import default_analyzers
from chalicelib.analyzers.dpkg import DpkgAnalyzer
from chalicelib.analyzers.gobinary import GoBinaryAnalyzer
from chalicelib.analyzers.java import JavaArchiveAnalyzer
from chalicelib.image.layout import DirSource
from chalicelib.image.walker import collect, walk_image
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STATUS = """Package: libslf4j-java
Status: install ok installed
Architecture: all
Version: 1.7.32-1

"""


def _fat_jar() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            "META-INF/maven/com.acme/service/pom.properties",
            "groupId=com.acme\nartifactId=service\nversion=3.1.4\n",
        )
        archive.writestr(
            "BOOT-INF/lib/commons-lang3-3.12.0.jar", (FIXTURES / "java/commons-lang3.jar").read_bytes()
        )
    return buffer.getvalue()


def _rootfs(root: Path) -> None:
    files = {
        "usr/local/bin/shfmt": (FIXTURES / "gobinary/shfmt-3.14.1-go1.27.1.buildinfo.elf").read_bytes(),
        "usr/sbin/gosu": (FIXTURES / "gobinary/gosu-1.14-go1.19.8.buildinfo.elf").read_bytes(),
        "usr/bin/hello": b"#!/bin/sh\necho hello\n",
        "usr/share/java/slf4j-api.jar": (FIXTURES / "java/slf4j-api.jar").read_bytes(),
        "app/service.jar": _fat_jar(),
        "var/lib/dpkg/status": STATUS.encode(),
        "var/lib/dpkg/info/libslf4j-java.list": b"/.\n/usr\n/usr/share/java/slf4j-api.jar\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_registered_and_collected_from_a_rootfs(tmp_path: Path) -> None:
    _rootfs(tmp_path / "root")
    source = DirSource(tmp_path / "root")
    [image] = source.resolve()
    analyzers = default_analyzers()
    assert sum(isinstance(a, GoBinaryAnalyzer) for a in analyzers) == 1
    assert sum(isinstance(a, JavaArchiveAnalyzer) for a in analyzers) == 1

    _, packages = collect(walk_image(source, image, analyzers), analyzers)
    found = [
        (p.ecosystem, p.name, p.version, p.path, p.owner) for p in packages if p.ecosystem in ("Go", "Maven")
    ]
    assert found == [
        ("Go", "github.com/google/renameio/v2", "v2.0.2", "usr/local/bin/shfmt", None),
        ("Go", "github.com/rogpeppe/go-internal", "v1.15.0", "usr/local/bin/shfmt", None),
        ("Go", "github.com/tianon/gosu", "(devel)", "usr/sbin/gosu", None),
        ("Go", "golang.org/x/sys", "v0.47.0", "usr/local/bin/shfmt", None),
        ("Go", "golang.org/x/term", "v0.45.0", "usr/local/bin/shfmt", None),
        ("Go", "mvdan.cc/editorconfig", "v0.3.0", "usr/local/bin/shfmt", None),
        ("Go", "mvdan.cc/sh/v3", "v3.14.1", "usr/local/bin/shfmt", None),
        ("Go", "stdlib", "1.19.8", "usr/sbin/gosu", None),
        ("Go", "stdlib", "1.27.1", "usr/local/bin/shfmt", None),
        ("Maven", "com.acme:service", "3.1.4", "app/service.jar", None),
        (
            "Maven",
            "org.apache.commons:commons-lang3",
            "3.12.0",
            "app/service.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar",
            None,
        ),
        ("Maven", "org.slf4j:slf4j-api", "1.7.32", "usr/share/java/slf4j-api.jar", "libslf4j-java"),
    ]
    [layer] = image.layers
    assert {p.layer for p in packages} == {layer.diff_id}


# -- the names and versions match OSV's Go and Maven records -----------------------------------------

GO_2024_2687 = {
    "schema_version": "1.6.0",
    "id": "GO-2024-2687",
    "modified": "2024-04-04T00:00:00Z",
    "aliases": ["CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"],
    "summary": "HTTP/2 CONTINUATION flood in net/http",
    "affected": [
        {
            "package": {"ecosystem": "Go", "name": "stdlib"},
            "ranges": [
                {
                    "type": "SEMVER",
                    "events": [
                        {"introduced": "0"},
                        {"fixed": "1.21.9"},
                        {"introduced": "1.22.0-0"},
                        {"fixed": "1.22.2"},
                    ],
                }
            ],
        }
    ],
}
GHSA_J288 = {
    "schema_version": "1.6.0",
    "id": "GHSA-j288-q9x7-2f5v",
    "modified": "2025-07-14T00:00:00Z",
    "aliases": ["CVE-2025-48924"],
    "summary": "Apache Commons Lang is vulnerable to Uncontrolled Recursion when processing long inputs",
    "affected": [
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.commons:commons-lang3"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.18.0"}]}],
        }
    ],
}


def test_found_packages_match_osv_go_and_maven_records(tmp_path: Path) -> None:
    """`stdlib` 1.19.8 of gosu is in GO-2024-2687's range (1.27.1 of shfmt is not); the
    commons-lang3 nested in the fat jar matches, the copy Debian's package owns does not."""
    root = tmp_path / "root"
    _rootfs(root)
    (root / "usr/share/java/commons-lang3.jar").write_bytes(
        (FIXTURES / "java/commons-lang3.jar").read_bytes()
    )
    with (root / "var/lib/dpkg/status").open("a") as status:
        status.write(
            "Package: libcommons-lang3-java\nStatus: install ok installed\nVersion: 3.12.0-2+deb12u1\n\n"
        )
    (root / "var/lib/dpkg/info/libcommons-lang3-java.list").write_text("/usr/share/java/commons-lang3.jar\n")
    osv = tmp_path / "osv"
    osv.mkdir()
    for record in (GO_2024_2687, GHSA_J288):
        (osv / f"{record['id']}.json").write_text(json.dumps(record))
    build_index([osv], tmp_path / "db.sqlite")

    source = DirSource(root)
    [image] = source.resolve()
    analyzers = [GoBinaryAnalyzer(), JavaArchiveAnalyzer(), DpkgAnalyzer()]
    _, packages = collect(walk_image(source, image, analyzers), analyzers)
    findings = match_packages(packages, VulnIndex(tmp_path / "db.sqlite"))
    assert sorted((f.id, f.package, f.installed_version, f.fixed_version, f.path) for f in findings) == [
        ("CVE-2023-45288", "stdlib", "1.19.8", "1.21.9", "usr/sbin/gosu"),
        (
            "CVE-2025-48924",
            "org.apache.commons:commons-lang3",
            "3.12.0",
            "3.18.0",
            "app/service.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar",
        ),
    ]
