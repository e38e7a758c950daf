"""`db update`: OSV export downloads against a local HTTP server serving zips the tests build."""

from __future__ import annotations

import io
import json
import random
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.errors import FeedError
from chalicelib.vulndb.feeds.osv_download import (
    DEFAULT_ECOSYSTEMS,
    DEFAULT_OSV_URL,
    check_url,
    configured_ecosystems,
    download,
    export_url,
    osv_base_url,
    read_sidecar,
    update_osv_exports,
)
from chalicelib.vulndb.index import VulnIndex

LAST_MODIFIED = "Mon, 15 Jan 2024 10:00:00 GMT"


def osv_zip(*ids: str, padding: int = 0) -> bytes:
    """An OSV export: one PyPI record per id, plus `padding` random bytes stored uncompressed (a
    member the loader ignores) so transfers are big enough to cut in the middle."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for vid in ids:
            record = {
                "id": vid,
                "modified": "2024-01-15T00:00:00Z",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
                    }
                ],
            }
            zf.writestr(f"{vid}.json", json.dumps(record))
        if padding:
            noise = random.Random(7).randbytes(padding)
            zf.writestr(zipfile.ZipInfo("padding.bin"), noise, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


@dataclass
class Served:
    body: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = LAST_MODIFIED
    #: how many full responses to cut after `cut_after` bytes of body (then close the connection)
    cuts: int = 0
    cut_after: int = 0
    redirect: str | None = None


@dataclass
class FeedServer:
    url: str
    files: dict[str, Served] = field(default_factory=dict)
    #: (path, headers) of every request, in order
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        state.requests.append((self.path, dict(self.headers.items())))
        item = state.files.get(self.path)
        if item is None:
            self.send_error(404, "Not Found")
            return
        if item.redirect:
            self.send_response(302)
            self.send_header("Location", item.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if (inm is not None and inm == item.etag) or (inm is None and ims and ims == item.last_modified):
            self.send_response(304)
            self.end_headers()
            return
        body, status, start = item.body, 200, 0
        wanted, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        if wanted and if_range in (item.etag, item.last_modified):
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(item.body):
                self.send_error(416, "Range Not Satisfiable")
                return
            body, status = item.body[start:], 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(item.body) - 1}/{len(item.body)}")
        self.send_header("Content-Length", str(len(body)))
        if item.etag:
            self.send_header("ETag", item.etag)
        if item.last_modified:
            self.send_header("Last-Modified", item.last_modified)
        self.end_headers()
        if item.cuts and status == 200:
            item.cuts -= 1
            self.wfile.write(body[: item.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    state: FeedServer


@pytest.fixture
def server() -> Iterator[FeedServer]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = FeedServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _update(server: FeedServer, cache: Path, *ecosystems: str, lines: list[str] | None = None) -> str:
    results = update_osv_exports(
        list(ecosystems),
        cache,
        base_url=server.url,
        progress=None if lines is None else lines.append,
        retry_delay=0,
    )
    assert len(results) == len(ecosystems)
    return results[0].status


def test_first_download_then_304_then_a_new_version(server: FeedServer, tmp_path: Path) -> None:
    first = osv_zip("PYSEC-1", "PYSEC-2")
    server.files["/PyPI/all.zip"] = Served(first)
    cache = tmp_path / "cache"
    lines: list[str] = []

    assert _update(server, cache, "PyPI", lines=lines) == "downloaded"
    target = cache / "PyPI" / "all.zip"
    assert target.read_bytes() == first
    assert json.loads((cache / "PyPI" / "all.zip.meta.json").read_text())["etag"] == '"v1"'
    sidecar = read_sidecar(target)
    assert sidecar is not None
    assert (sidecar.url, sidecar.etag, sidecar.last_modified, sidecar.size) == (
        f"{server.url}/PyPI/all.zip",
        '"v1"',
        LAST_MODIFIED,
        len(first),
    )
    assert lines[0] == f"PyPI: GET {server.url}/PyPI/all.zip"
    assert lines[-1] == f"PyPI: saved 0.0 MiB to {target}"
    assert sorted(p.name for p in (cache / "PyPI").iterdir()) == ["all.zip", "all.zip.meta.json"]
    assert "If-None-Match" not in server.requests[0][1]

    inode = target.stat().st_ino
    assert _update(server, cache, "PyPI") == "not_modified"
    path, headers = server.requests[-1]
    assert (path, headers["If-None-Match"], headers["If-Modified-Since"]) == (
        "/PyPI/all.zip",
        '"v1"',
        LAST_MODIFIED,
    )
    assert target.stat().st_ino == inode  # not rewritten
    assert target.read_bytes() == first

    second = osv_zip("PYSEC-1", "PYSEC-2", "PYSEC-3")
    server.files["/PyPI/all.zip"] = Served(second, etag='"v2"', last_modified="Tue, 16 Jan 2024 10:00:00 GMT")
    assert _update(server, cache, "PyPI") == "downloaded"
    assert target.read_bytes() == second
    assert read_sidecar(target) is not None
    assert read_sidecar(target).etag == '"v2"'  # type: ignore[union-attr]
    assert len(server.requests) == 3


def test_last_modified_alone_makes_the_request_conditional(server: FeedServer, tmp_path: Path) -> None:
    server.files["/Go/all.zip"] = Served(osv_zip("GO-1"), etag=None)
    assert _update(server, tmp_path, "Go") == "downloaded"
    assert _update(server, tmp_path, "Go") == "not_modified"
    headers = server.requests[-1][1]
    assert "If-None-Match" not in headers
    assert headers["If-Modified-Since"] == LAST_MODIFIED


def test_a_cut_transfer_is_resumed_with_range_and_if_range(server: FeedServer, tmp_path: Path) -> None:
    body = osv_zip("PYSEC-1", padding=300_000)
    server.files["/PyPI/all.zip"] = Served(body, cuts=1, cut_after=123_456)
    lines: list[str] = []
    assert _update(server, tmp_path, "PyPI", lines=lines) == "resumed"
    assert (tmp_path / "PyPI" / "all.zip").read_bytes() == body
    assert len(server.requests) == 2
    assert "Range" not in server.requests[0][1]
    resumed = server.requests[1][1]
    assert (resumed["Range"], resumed["If-Range"]) == ("bytes=123456-", '"v1"')
    assert "If-None-Match" not in resumed
    assert any(line.startswith("PyPI: interrupted (connection closed after 123456 of ") for line in lines)
    assert f"PyPI: resuming {server.url}/PyPI/all.zip at 0.1 MiB" in lines
    assert sorted(p.name for p in (tmp_path / "PyPI").iterdir()) == ["all.zip", "all.zip.meta.json"]


def test_a_partial_file_left_behind_is_resumed_by_the_next_run(server: FeedServer, tmp_path: Path) -> None:
    body = osv_zip("PYSEC-1", padding=200_000)
    server.files["/PyPI/all.zip"] = Served(body, cuts=1, cut_after=50_000)
    url = f"{server.url}/PyPI/all.zip"
    dest = tmp_path / "all.zip"
    with pytest.raises(FeedError, match=r"could not download .*connection closed after 50000 of \d+ bytes"):
        download(url, dest, attempts=1, retry_delay=0)
    part = tmp_path / "all.zip.part"
    assert part.stat().st_size == 50_000
    assert not dest.exists()

    result = download(url, dest, attempts=1, retry_delay=0)
    assert (result.status, result.size, result.etag) == ("resumed", len(body), '"v1"')
    assert dest.read_bytes() == body
    assert server.requests[-1][1]["Range"] == "bytes=50000-"
    assert not part.exists()
    assert not (tmp_path / "all.zip.part.meta.json").exists()


def test_a_partial_file_of_another_version_restarts(server: FeedServer, tmp_path: Path) -> None:
    old = osv_zip("PYSEC-1", padding=100_000)
    server.files["/PyPI/all.zip"] = Served(old, cuts=1, cut_after=40_000)
    url = f"{server.url}/PyPI/all.zip"
    dest = tmp_path / "all.zip"
    with pytest.raises(FeedError):
        download(url, dest, attempts=1)
    new = osv_zip("PYSEC-1", "PYSEC-9", padding=100_000)
    server.files["/PyPI/all.zip"] = Served(new, etag='"v2"')  # If-Range "v1" no longer matches: 200
    result = download(url, dest, attempts=1)
    assert result.status == "downloaded"
    assert server.requests[-1][1]["If-Range"] == '"v1"'
    assert dest.read_bytes() == new


def test_a_corrupt_zip_is_an_error_and_the_previous_copy_stays(server: FeedServer, tmp_path: Path) -> None:
    good = osv_zip("PYSEC-1")
    server.files["/PyPI/all.zip"] = Served(good)
    assert _update(server, tmp_path, "PyPI") == "downloaded"

    server.files["/PyPI/all.zip"] = Served(b"<html>maintenance</html>", etag='"v2"')
    url = f"{server.url}/PyPI/all.zip"
    with pytest.raises(FeedError) as caught:
        _update(server, tmp_path, "PyPI")
    assert str(caught.value) == (
        f"downloaded {url} is unusable: not a valid zip archive: File is not a zip file; "
        f"kept the previous copy {tmp_path / 'PyPI' / 'all.zip'}"
    )
    assert (tmp_path / "PyPI" / "all.zip").read_bytes() == good
    assert read_sidecar(tmp_path / "PyPI" / "all.zip").etag == '"v1"'  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "PyPI").iterdir()) == ["all.zip", "all.zip.meta.json"]


def test_a_zip_with_a_bad_crc_is_rejected(server: FeedServer, tmp_path: Path) -> None:
    body = bytearray(osv_zip("PYSEC-1", padding=1000))
    start = bytes(body).index(b"padding.bin") + len("padding.bin") + 10  # inside the stored member
    body[start] ^= 0xFF
    server.files["/PyPI/all.zip"] = Served(bytes(body))
    with pytest.raises(FeedError, match=r"is unusable: zip member padding.bin is corrupt$"):
        _update(server, tmp_path, "PyPI")
    assert not (tmp_path / "PyPI" / "all.zip").exists()


def test_404_is_a_clear_error_naming_the_url(server: FeedServer, tmp_path: Path) -> None:
    server.files["/PyPI/all.zip"] = Served(osv_zip("PYSEC-1"))
    with pytest.raises(FeedError) as caught:
        _update(server, tmp_path, "PyPI", "Nope")
    assert str(caught.value) == (
        f"could not download {server.url}/Nope/all.zip: HTTP 404 Not Found (is 'Nope' an OSV ecosystem?)"
    )
    assert (tmp_path / "PyPI" / "all.zip").is_file()  # the others were still fetched
    assert len(server.requests) == 2  # a 404 is not retried


def test_only_https_or_loopback_http(server: FeedServer, tmp_path: Path) -> None:
    for url in ("http://example.com/Debian/all.zip", "ftp://example.com/x.zip", "file:///etc/passwd"):
        with pytest.raises(FeedError, match="feeds are fetched over https:// only"):
            check_url(url)
    check_url("https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip")
    check_url("http://localhost:8080/x")
    check_url("http://127.0.0.1/x")
    # a redirect is held to the same rule, before anything is fetched from its target
    server.files["/PyPI/all.zip"] = Served(b"", redirect="http://example.invalid/PyPI/all.zip")
    with pytest.raises(FeedError, match=r"refusing to download http://example\.invalid/PyPI/all\.zip"):
        _update(server, tmp_path, "PyPI")


def test_configuration_cli_then_environment_then_defaults() -> None:
    env = {"LIFEGUARD_OSV_ECOSYSTEMS": " Debian, Alpine ,,Debian", "LIFEGUARD_OSV_URL": "http://127.0.0.1:9/"}
    assert configured_ecosystems(["PyPI", "npm", "PyPI"], env) == ["PyPI", "npm"]
    assert configured_ecosystems(None, env) == ["Debian", "Alpine"]
    assert configured_ecosystems([], {}) == list(DEFAULT_ECOSYSTEMS)
    assert DEFAULT_ECOSYSTEMS[:3] == ("Debian", "Ubuntu", "Alpine")
    assert {"Red Hat", "crates.io", "Maven", "NuGet"} <= set(DEFAULT_ECOSYSTEMS)
    with pytest.raises(FeedError, match="bad OSV ecosystem 'Debian:12'"):
        configured_ecosystems(["Debian:12"], {})
    with pytest.raises(FeedError, match=r"bad OSV ecosystem '\.\./etc'"):
        configured_ecosystems(["../etc"], {})
    assert osv_base_url(env) == "http://127.0.0.1:9"
    assert osv_base_url({}) == DEFAULT_OSV_URL == "https://osv-vulnerabilities.storage.googleapis.com"
    assert export_url(DEFAULT_OSV_URL, "Red Hat") == f"{DEFAULT_OSV_URL}/Red%20Hat/all.zip"
    assert (
        export_url("https://mirror.example/osv/", "crates.io")
        == "https://mirror.example/osv/crates.io/all.zip"
    )


def test_cli_db_update_then_build(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/PyPI/all.zip"] = Served(osv_zip("PYSEC-1", "PYSEC-2"))
    server.files["/Red%20Hat/all.zip"] = Served(osv_zip("RHSA-1"))
    monkeypatch.setenv("LIFEGUARD_OSV_URL", server.url)
    monkeypatch.setenv("LIFEGUARD_OSV_ECOSYSTEMS", "PyPI,Red Hat")
    monkeypatch.setenv("LIFEGUARD_KEV_URL", "none")  # KEV and secdb: tests/unit/test_feeds_update.py
    monkeypatch.setenv("LIFEGUARD_ALPINE_RELEASES", "none")
    cache, out = tmp_path / "feeds", tmp_path / "vulndb.sqlite"
    argv = ["db", "update", "--cache-dir", str(cache), "--build", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"PyPI: GET {server.url}/PyPI/all.zip" in err
    assert f"Red Hat: saved 0.0 MiB to {cache / 'Red Hat' / 'all.zip'}" in err
    assert f"{cache}: 2 downloaded, 0 unchanged" in err
    assert f"wrote {out}: 3 records, 0 rejected" in err
    index = VulnIndex(out)
    feeds = json.loads(index.meta["feeds"])
    assert [(f["source"], f["etag"], f["last_modified"], f["records"]) for f in feeds] == [
        (str(cache / "PyPI" / "all.zip"), '"v1"', LAST_MODIFIED, 2),
        (str(cache / "Red Hat" / "all.zip"), '"v1"', LAST_MODIFIED, 1),
    ]

    assert main(["db", "update", "--cache-dir", str(cache), "--ecosystem", "PyPI"]) == 0
    assert f"{cache}: 0 downloaded, 1 unchanged" in capsys.readouterr().err
    assert main(["db", "update", "--cache-dir", str(cache), "--build"]) == 2
    assert capsys.readouterr().err == "lifeguard: error: db update --build needs --out FILE\n"
    assert main(["db", "update", "--cache-dir", str(cache), "--ecosystem", "Nope"]) == 2
    assert "HTTP 404 Not Found (is 'Nope' an OSV ecosystem?)" in capsys.readouterr().err
