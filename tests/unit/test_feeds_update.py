"""`db update` beyond OSV: the CISA KEV catalog and Alpine secdb downloaded next to the OSV exports
(same local HTTP server as `test_osv_download`), checked before they replace a good copy, and
built into one index with them."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.errors import FeedError
from chalicelib.models import Package
from chalicelib.vulndb.feeds import alpine_secdb
from chalicelib.vulndb.feeds.osv_download import read_sidecar
from chalicelib.vulndb.feeds.update import (
    DEFAULT_ALPINE_RELEASES,
    DEFAULT_ALPINE_SECDB_URL,
    DEFAULT_KEV_URL,
    FeedPlan,
    configured_alpine_releases,
    configured_feeds,
    kev_url,
    update_feeds,
)
from chalicelib.vulndb.index import VulnIndex, build_index
from chalicelib.vulndb.matcher import match_packages
from tests.unit.test_osv_download import LAST_MODIFIED, FeedServer, Served, server

__all__ = ["server"]  # the fixture, re-exported for pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
SECDB = FIXTURES / "alpine-secdb"
#: records of v3.10 main / community (every (advisory, package) with a fix; counted once by hand)
SECDB_V310_RECORDS = {"main": 1158, "community": 712}


def secdb_json(release: str, repository: str) -> bytes:
    """A shared secdb YAML fixture as the live feed publishes it (JSON, same structure)."""
    path = SECDB / release / f"{repository}.yaml"
    return json.dumps(alpine_secdb.load_yaml(path.read_bytes(), str(path))).encode()


def debian_export() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name in ("DEBIAN-CVE-2023-4911.json", "DEBIAN-CVE-2023-38545.json"):
            archive.write(FIXTURES / "osv" / name, name)
    return buf.getvalue()


def serve_all(server: FeedServer) -> dict[str, str]:
    """All three feeds on the server; returns the environment that points `db update` at them."""
    server.files["/osv/Debian/all.zip"] = Served(debian_export())
    server.files["/secdb/v3.10/main.json"] = Served(secdb_json("v3.10", "main"), etag='"main-1"')
    server.files["/secdb/v3.10/community.json"] = Served(secdb_json("v3.10", "community"), etag='"comm-1"')
    server.files["/kev/kev.json"] = Served(KEV.read_bytes(), etag='"kev-1"')
    return {
        "LIFEGUARD_OSV_URL": f"{server.url}/osv",
        "LIFEGUARD_OSV_ECOSYSTEMS": "Debian",
        "LIFEGUARD_ALPINE_SECDB_URL": f"{server.url}/secdb/",
        "LIFEGUARD_ALPINE_RELEASES": "v3.10",
        "LIFEGUARD_KEV_URL": f"{server.url}/kev/kev.json",
    }


def packages() -> list[Package]:
    return [
        Package(
            name="libc6",
            version="2.36-9+deb12u1",
            ecosystem="Debian:12",
            purl="pkg:deb/debian/libc6@2.36-9+deb12u1",
            source_name="glibc",
            source_version="2.36-9+deb12u1",
            path="var/lib/dpkg/status",
        ),
        Package(
            name="musl",
            version="1.1.22-r2",
            ecosystem="Alpine:v3.10",
            purl="pkg:apk/alpine/musl@1.1.22-r2?distro=3.10.2",
            source_name="musl",
            source_version="1.1.22-r2",
            path="lib/apk/db/installed",
        ),
    ]


def test_kev_and_secdb_land_beside_the_osv_exports_and_build_into_the_index(
    server: FeedServer, tmp_path: Path
) -> None:
    environ = serve_all(server)
    cache = tmp_path / "feeds"
    plan = configured_feeds(environ)
    lines: list[str] = []
    update = update_feeds(plan, cache, progress=lines.append, retry_delay=0)

    expected_sources = [
        cache / "Debian" / "all.zip",
        cache / "alpine-secdb" / "v3.10" / "main.json",
        cache / "alpine-secdb" / "v3.10" / "community.json",
        cache / "cisa-kev" / "known_exploited_vulnerabilities.json",
    ]
    assert update.sources == expected_sources
    assert [(r.path, r.status, r.etag) for r in update.results] == [
        (expected_sources[0], "downloaded", '"v1"'),
        (expected_sources[1], "downloaded", '"main-1"'),
        (expected_sources[2], "downloaded", '"comm-1"'),
        (expected_sources[3], "downloaded", '"kev-1"'),
    ]
    assert [path for path, _ in server.requests] == [
        "/osv/Debian/all.zip",
        "/secdb/v3.10/main.json",
        "/secdb/v3.10/community.json",
        "/kev/kev.json",
    ]
    assert expected_sources[3].read_bytes() == KEV.read_bytes()
    assert f"CISA KEV: GET {server.url}/kev/kev.json" in lines
    assert f"Alpine secdb v3.10/main: GET {server.url}/secdb/v3.10/main.json" in lines
    kev_sidecar = read_sidecar(expected_sources[3])
    assert kev_sidecar is not None
    assert (kev_sidecar.url, kev_sidecar.etag, kev_sidecar.last_modified) == (
        f"{server.url}/kev/kev.json",
        '"kev-1"',
        LAST_MODIFIED,
    )

    out = tmp_path / "vulndb.sqlite"
    report = build_index(update.sources, out)
    assert (report.records, report.rejected) == (2 + sum(SECDB_V310_RECORDS.values()), [])
    index = VulnIndex(out)
    assert (index.meta["kev_catalog_version"], index.meta["kev_count"]) == ("2023.11.21", "3")
    assert json.loads(index.meta["alpine_secdb_releases"]) == ["v3.10"]
    feeds = json.loads(index.meta["feeds"])
    assert [(f["kind"], f["source"], f.get("etag")) for f in feeds] == [
        ("osv", str(expected_sources[0]), '"v1"'),
        ("alpine-secdb", str(expected_sources[1]), '"main-1"'),
        ("alpine-secdb", str(expected_sources[2]), '"comm-1"'),
        ("cisa-kev", str(expected_sources[3]), '"kev-1"'),
    ]
    found = [
        (
            v.id,
            v.aliases,
            v.package,
            v.installed_version,
            v.fixed_version,
            v.known_exploited,
            v.kev_date_added,
        )
        for v in match_packages(packages(), index)
    ]
    assert found == [
        ("CVE-2023-4911", ["DEBIAN-CVE-2023-4911"], "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3", True,
         "2023-11-21"),
        ("CVE-2019-14697", [], "musl", "1.1.22-r2", "1.1.22-r3", False, None),
    ]  # fmt: skip

    # the next run is conditional: every file answers 304 and stays as it was
    inode = expected_sources[3].stat().st_ino
    again = update_feeds(plan, cache, retry_delay=0)
    assert [r.status for r in again.results] == ["not_modified"] * 4
    assert again.sources == expected_sources
    assert [(path, headers.get("If-None-Match")) for path, headers in server.requests[4:]] == [
        ("/osv/Debian/all.zip", '"v1"'),
        ("/secdb/v3.10/main.json", '"main-1"'),
        ("/secdb/v3.10/community.json", '"comm-1"'),
        ("/kev/kev.json", '"kev-1"'),
    ]
    assert expected_sources[3].stat().st_ino == inode


BAD_KEV_BODIES = [
    (b"<html>Access Denied</html>", "not JSON: Expecting value: line 1 column 1 (char 0)"),
    (
        b'{"title": "x", "vulnerabilities": []}',
        "not a CISA KEV catalog (no catalogVersion and vulnerabilities list)",
    ),
    (
        b'{"catalogVersion": "2024.01.01", "count": 0, "vulnerabilities": []}',
        "the KEV catalog lists no usable vulnerabilities",
    ),
    (
        b'{"catalogVersion": 7, "vulnerabilities": [{"cveID": "CVE-2024-1"}]}',
        "known_exploited_vulnerabilities.json: KEV catalogVersion must be a non-empty string, got 7",
    ),
]


@pytest.mark.parametrize(("body", "problem"), BAD_KEV_BODIES)
def test_a_bad_kev_body_keeps_the_previous_catalog(
    server: FeedServer, tmp_path: Path, body: bytes, problem: str
) -> None:
    environ = serve_all(server)
    plan = configured_feeds(environ)
    cache = tmp_path / "feeds"
    update_feeds(plan, cache, retry_delay=0)
    kev_file = cache / "cisa-kev" / "known_exploited_vulnerabilities.json"

    server.files["/kev/kev.json"] = Served(body, etag='"kev-2"')
    server.files["/secdb/v3.10/main.json"] = Served(secdb_json("v3.11", "main"), etag='"main-2"')
    server.files["/osv/Debian/all.zip"] = Served(debian_export(), etag='"v2"')
    with pytest.raises(FeedError) as caught:
        update_feeds(plan, cache, retry_delay=0)
    url = f"{server.url}/kev/kev.json"
    secdb = cache / "alpine-secdb" / "v3.10" / "main.json"
    assert str(caught.value) == (
        f"downloaded {server.url}/secdb/v3.10/main.json is unusable: its distroversion is 'v3.11', "
        f"not 'v3.10'; kept the previous copy {secdb}; "
        f"downloaded {url} is unusable: {problem}; "
        f"kept the previous copy {kev_file}"
    )
    assert kev_file.read_bytes() == KEV.read_bytes()
    assert read_sidecar(kev_file).etag == '"kev-1"'  # type: ignore[union-attr]
    assert sorted(p.name for p in kev_file.parent.iterdir()) == [kev_file.name, f"{kev_file.name}.meta.json"]
    assert secdb.read_bytes() == secdb_json("v3.10", "main")
    # the feeds that were good are up to date all the same
    assert read_sidecar(cache / "Debian" / "all.zip").etag == '"v2"'  # type: ignore[union-attr]


def test_a_missing_release_and_a_non_https_url_are_reported_together(
    server: FeedServer, tmp_path: Path
) -> None:
    environ = serve_all(server) | {
        "LIFEGUARD_ALPINE_RELEASES": "3.99",
        "LIFEGUARD_KEV_URL": "http://cisa.example/kev.json",
    }
    with pytest.raises(FeedError) as caught:
        update_feeds(configured_feeds(environ), tmp_path, retry_delay=0)
    assert str(caught.value) == (
        f"could not download {server.url}/secdb/v3.99/main.json: HTTP 404 Not Found "
        "(is 'v3.99' an Alpine release?); "
        f"could not download {server.url}/secdb/v3.99/community.json: HTTP 404 Not Found "
        "(is 'v3.99' an Alpine release?); "
        "refusing to download http://cisa.example/kev.json: feeds are fetched over https:// only"
    )
    assert [path for path, _ in server.requests] == [
        "/osv/Debian/all.zip",
        "/secdb/v3.99/main.json",
        "/secdb/v3.99/community.json",
    ]  # nothing was sent to the plain-HTTP host
    assert (tmp_path / "Debian" / "all.zip").is_file()


def test_configuration_cli_then_environment_then_defaults() -> None:
    assert (
        kev_url(None, {})
        == DEFAULT_KEV_URL
        == ("https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json")
    )
    mirror = {"LIFEGUARD_KEV_URL": "https://mirror.example/kev.json"}
    assert kev_url(None, mirror) == kev_url(True, mirror) == "https://mirror.example/kev.json"
    assert kev_url(False, mirror) is None
    assert kev_url(None, {"LIFEGUARD_KEV_URL": "None"}) is None
    assert kev_url(True, {"LIFEGUARD_KEV_URL": "none"}) == DEFAULT_KEV_URL
    assert kev_url(None, {"LIFEGUARD_KEV_URL": ""}) == DEFAULT_KEV_URL

    env = {"LIFEGUARD_ALPINE_RELEASES": " v3.20, 3.19,,v3.20 ,edge"}
    assert configured_alpine_releases(None, env) == ["v3.20", "v3.19", "edge"]
    assert configured_alpine_releases(["3.18"], env) == ["v3.18"]
    assert configured_alpine_releases(None, {}) == list(DEFAULT_ALPINE_RELEASES)
    assert configured_alpine_releases(None, {"LIFEGUARD_ALPINE_RELEASES": "none"}) == []
    assert configured_alpine_releases(["none"], env) == []
    with pytest.raises(FeedError, match=r"bad Alpine release '\.\./v3\.19'"):
        configured_alpine_releases(["../v3.19"], {})
    with pytest.raises(FeedError, match="'none' turns secdb off and stands alone"):
        configured_alpine_releases(["v3.19", "none"], {})

    assert configured_feeds({}) == FeedPlan(
        osv_url="https://osv-vulnerabilities.storage.googleapis.com",
        ecosystems=configured_feeds({}).ecosystems,
        kev_url=DEFAULT_KEV_URL,
        alpine_secdb_url=DEFAULT_ALPINE_SECDB_URL,
        alpine_releases=DEFAULT_ALPINE_RELEASES,
    )
    assert DEFAULT_ALPINE_SECDB_URL == "https://secdb.alpinelinux.org"
    plan = configured_feeds(
        {"LIFEGUARD_ALPINE_SECDB_URL": "https://secdb.example/alpine/"},
        ecosystems=["PyPI"],
        kev_enabled=False,
        alpine_releases=["v3.19"],
    )
    assert (plan.ecosystems, plan.kev_url, plan.alpine_secdb_url, plan.alpine_releases) == (
        ("PyPI",),
        None,
        "https://secdb.example/alpine",
        ("v3.19",),
    )
    assert plan.sources(Path("/c")) == [
        Path("/c/PyPI/all.zip"),
        Path("/c/alpine-secdb/v3.19/main.json"),
        Path("/c/alpine-secdb/v3.19/community.json"),
    ]


def test_cli_db_update_fetches_all_three_and_builds(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in serve_all(server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIFEGUARD_ALPINE_RELEASES", "none")
    cache, out = tmp_path / "feeds", tmp_path / "vulndb.sqlite"
    argv = ["db", "update", "--cache-dir", str(cache), "--alpine-release", "3.10"]
    assert main([*argv, "--build", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{cache}: 4 downloaded, 0 unchanged" in err
    assert f"wrote {out}: {2 + sum(SECDB_V310_RECORDS.values())} records, 0 rejected" in err
    index = VulnIndex(out)
    assert (index.meta["kev_count"], json.loads(index.meta["alpine_secdb_releases"])) == ("3", ["v3.10"])
    flagged = [(v.id, v.known_exploited) for v in match_packages(packages(), index)]
    assert flagged == [("CVE-2023-4911", True), ("CVE-2019-14697", False)]

    assert main([*argv, "--kev"]) == 0
    assert f"{cache}: 0 downloaded, 4 unchanged" in capsys.readouterr().err
    # without --alpine-release the environment's "none" applies; --no-kev wins over the URL
    before = len(server.requests)
    assert main(["db", "update", "--cache-dir", str(cache), "--no-kev"]) == 0
    assert [path for path, _ in server.requests[before:]] == ["/osv/Debian/all.zip"]
    assert f"{cache}: 0 downloaded, 1 unchanged" in capsys.readouterr().err
    # LIFEGUARD_KEV_URL=none turns KEV off too (no request leaves for cisa.gov)
    monkeypatch.setenv("LIFEGUARD_KEV_URL", "none")
    before = len(server.requests)
    assert main(["db", "update", "--cache-dir", str(cache)]) == 0
    assert [path for path, _ in server.requests[before:]] == ["/osv/Debian/all.zip"]
