"""`db update`: OSV's per-ecosystem exports (`<base>/<Ecosystem>/all.zip`) into a local cache that
`db build --from` reads.

What a download guarantees, so a scheduled refresh can run it blindly:
- HTTPS only (plain `http://` is accepted for 127.0.0.1 / localhost, which is how the tests serve
  files); redirects are held to the same rule.
- Conditional: the ETag and Last-Modified of the cached copy live in a sidecar JSON
  (`all.zip.meta.json`) and go out as If-None-Match / If-Modified-Since; a 304 keeps the copy.
- Streaming to `all.zip.part`, never held in memory. The partial file has its own sidecar with the
  validators of the response it came from; an interrupted transfer resumes with `Range:` +
  `If-Range:` (strong ETag, else Last-Modified). Only a 206 whose Content-Range starts where the
  partial file ends is appended to; any other answer restarts the file. Interruptions are retried
  in the same call (`attempts`), and a partial file left by a killed process is resumed next time.
- Checked before use: the byte count must match Content-Length / Content-Range, and the zip must
  open and pass its CRC check (`check_zip`); a bad download is deleted, the error names the URL and
  the previous good copy is kept.
- Atomic: the complete file is renamed over the old one, then its sidecar is rewritten. A crash
  between the two leaves old validators beside a new file, which costs one full download next time
  and never keeps a stale file (the opposite order could).

Progress goes to a callback (the CLI prints it on stderr)."""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.errors import FeedError

#: checks a complete download before it replaces the previous copy (raises ValueError)
Validator = Callable[[Path], None]

log = logging.getLogger(__name__)

DEFAULT_OSV_URL = "https://osv-vulnerabilities.storage.googleapis.com"
#: the ecosystems whose packages Lifeguard finds and compares (OSV's export directory names)
DEFAULT_ECOSYSTEMS: tuple[str, ...] = (
    "Debian", "Ubuntu", "Alpine", "Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE",
    "Wolfi", "Chainguard", "PyPI", "npm", "Go", "Maven", "RubyGems", "Packagist", "NuGet", "crates.io",
)  # fmt: skip
ENV_URL = "LIFEGUARD_OSV_URL"
ENV_ECOSYSTEMS = "LIFEGUARD_OSV_ECOSYSTEMS"
EXPORT_NAME = "all.zip"
SIDECAR_SUFFIX = ".meta.json"
PART_SUFFIX = ".part"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CHUNK = 1 << 20
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Progress = Callable[[str], None]
Status = Literal["downloaded", "resumed", "not_modified"]


class Sidecar(BaseModel):
    """The HTTP validators of a cached (or partial) file, and where it came from."""

    model_config = ConfigDict(extra="ignore")

    url: str
    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None
    fetched_at: str | None = None


class DownloadResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    path: Path
    status: Status
    size: int
    etag: str | None = None
    last_modified: str | None = None


class _Interrupted(Exception):
    """A transfer that may succeed if tried again (connection cut, timeout, 5xx)."""


# -- configuration -----------------------------------------------------------------------------------


def osv_base_url(environ: Mapping[str, str]) -> str:
    """`LIFEGUARD_OSV_URL`, else OSV's public bucket."""
    return (environ.get(ENV_URL) or DEFAULT_OSV_URL).rstrip("/")


def configured_ecosystems(requested: Sequence[str] | None, environ: Mapping[str, str]) -> list[str]:
    """`--ecosystem` values when given, else `LIFEGUARD_OSV_ECOSYSTEMS` (comma-separated), else
    `DEFAULT_ECOSYSTEMS`; duplicates dropped, order kept. Names are OSV's export directories."""
    if requested:
        names = list(requested)
    elif environ.get(ENV_ECOSYSTEMS):
        names = environ[ENV_ECOSYSTEMS].split(",")
    else:
        names = list(DEFAULT_ECOSYSTEMS)
    cleaned = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    for name in cleaned:
        if "/" in name or "\\" in name or name.startswith(".") or ":" in name:
            raise FeedError(
                f"bad OSV ecosystem {name!r}: use an export name such as 'Debian' or 'crates.io' "
                "(no release suffix)"
            )
    return cleaned


def export_url(base_url: str, ecosystem: str) -> str:
    return f"{base_url.rstrip('/')}/{quote(ecosystem)}/{EXPORT_NAME}"


def export_path(cache_dir: Path, ecosystem: str) -> Path:
    return cache_dir / ecosystem / EXPORT_NAME


def check_url(url: str) -> None:
    """HTTPS, or plain HTTP to the loopback interface only; anything else is a `FeedError`."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return
    raise FeedError(f"refusing to download {url}: feeds are fetched over https:// only")


# -- sidecars ----------------------------------------------------------------------------------------


def sidecar_path(file: Path) -> Path:
    return file.with_name(file.name + SIDECAR_SUFFIX)


def read_sidecar(file: Path) -> Sidecar | None:
    """The validators saved beside `file`, or None (missing or unreadable: then nothing is
    conditional, which is always safe)."""
    path = sidecar_path(file)
    try:
        return Sidecar.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _write_sidecar(file: Path, sidecar: Sidecar) -> None:
    path = sidecar_path(file)
    fd, tmp = tempfile.mkstemp(prefix=".sidecar-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(sidecar.model_dump_json(exclude_none=True, indent=2))
    os.replace(tmp, path)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# -- integrity ---------------------------------------------------------------------------------------


def check_zip(path: Path) -> None:
    """`ValueError` unless `path` is a zip whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"not a valid zip archive: {exc}") from exc
    if bad is not None:
        raise ValueError(f"zip member {bad} is corrupt")


# -- downloading -------------------------------------------------------------------------------------


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0917 - the base class's signature
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> urllib.request.Request | None:
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def _opener(url: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_CheckedRedirects()]
    if urlsplit(url).hostname in LOCAL_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy
    return urllib.request.build_opener(*handlers)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _if_range(sidecar: Sidecar | None, url: str) -> str | None:
    """The validator that lets a server continue `url`'s partial file, if it has one we can use
    (If-Range needs a strong ETag or a date)."""
    if sidecar is None or sidecar.url != url:
        return None
    if sidecar.etag and not sidecar.etag.startswith("W/"):
        return sidecar.etag
    return sidecar.last_modified


def _content_range(value: str | None) -> tuple[int, int | None]:
    """(first byte, total size or None) of a `bytes first-last/total` header."""
    if not value or not value.startswith("bytes "):
        raise _Interrupted(f"206 without a usable Content-Range ({value!r})")
    span, _, total = value[6:].partition("/")
    first = span.partition("-")[0]
    try:
        return int(first), (int(total) if total.strip() not in ("", "*") else None)
    except ValueError:
        raise _Interrupted(f"206 with a malformed Content-Range ({value!r})") from None


def download(
    url: str,
    dest: Path,
    *,
    validate: Callable[[Path], None] | None = None,
    progress: Progress | None = None,
    label: str | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    retry_delay: float = 1.0,
) -> DownloadResult:
    """Bring `dest` up to date with `url` (module docstring: conditional, resumable, atomic).
    `validate` checks the complete file before it replaces `dest` (raise `ValueError`)."""
    check_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(url, dest, validate, progress or (lambda _line: None), label or url, timeout)
    resumed = False
    problem = ""
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            result, appended = transfer.attempt()
        except _Interrupted as exc:
            problem = str(exc)
            have = transfer.part.stat().st_size if transfer.part.exists() else 0
            log.info("download interrupted", extra={"url": url, "error": problem, "have": have})
            if attempt < attempts:
                transfer.say(f"{transfer.name}: interrupted ({problem}) with {_mib(have)} on disk; retrying")
                time.sleep(retry_delay * attempt)
            continue
        resumed = resumed or appended
        if resumed and result.status == "downloaded":
            result = result.model_copy(update={"status": "resumed"})
        return result
    part = transfer.part
    kept = f"; the partial file {part} is resumed next time" if part.exists() else ""
    raise FeedError(f"could not download {url}: {problem} (after {attempts} attempts{kept})")


@dataclass
class _Transfer:
    """One URL into one file: each `attempt` is one HTTP exchange."""

    url: str
    dest: Path
    validate: Callable[[Path], None] | None
    say: Progress
    name: str
    timeout: float

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + PART_SUFFIX)

    def attempt(self) -> tuple[DownloadResult, bool]:
        """(result, whether bytes were appended to an earlier partial file)."""
        url, dest, part = self.url, self.dest, self.part
        headers = {"User-Agent": "lifeguard (+db update)", "Accept-Encoding": "identity"}
        offset = part.stat().st_size if part.exists() else 0
        validator = _if_range(read_sidecar(part), url) if offset else None
        if offset and validator:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = validator
            self.say(f"{self.name}: resuming {url} at {_mib(offset)}")
        else:
            offset = 0
            cached = read_sidecar(dest) if dest.exists() else None
            if cached is not None and cached.url == url:
                if cached.etag:
                    headers["If-None-Match"] = cached.etag
                if cached.last_modified:
                    headers["If-Modified-Since"] = cached.last_modified
            self.say(f"{self.name}: GET {url}")
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked by check_url
        try:
            response = _opener(url).open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            return self._refused(exc), False
        except urllib.error.URLError as exc:
            raise _Interrupted(f"{exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
        with response:
            return self._receive(response, offset)

    def _refused(self, exc: urllib.error.HTTPError) -> DownloadResult:
        """A non-2xx answer: 304 keeps the cached copy; the rest raise."""
        if exc.code == 304:
            cached = read_sidecar(self.dest)
            self.say(f"{self.name}: not modified, keeping {self.dest}")
            return DownloadResult(
                url=self.url,
                path=self.dest,
                status="not_modified",
                size=self.dest.stat().st_size,
                etag=cached.etag if cached else None,
                last_modified=cached.last_modified if cached else None,
            )
        if exc.code == 416:  # our partial file does not fit the current object: start over
            _remove(self.part, sidecar_path(self.part))
            raise _Interrupted("the server rejected the resume range (416)") from exc
        if exc.code in _RETRY_STATUSES:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from exc
        raise FeedError(f"could not download {self.url}: HTTP {exc.code} {exc.reason}") from exc

    def _receive(self, response: http.client.HTTPResponse, offset: int) -> tuple[DownloadResult, bool]:
        url, dest, part = self.url, self.dest, self.part
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        appended = False
        if response.status == 206 and offset:
            first, total = _content_range(response.headers.get("Content-Range"))
            if first != offset:
                _remove(part, sidecar_path(part))
                raise _Interrupted(f"the server resumed at byte {first}, not {offset}")
            appended = True
        elif response.status == 200:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            offset = 0
            # validators first: a transfer cut from here on can be resumed against this object
            _write_sidecar(part, Sidecar(url=url, etag=etag, last_modified=last_modified, size=total))
        else:
            raise FeedError(f"could not download {url}: unexpected HTTP {response.status}")
        written = self._stream(response, offset, total)
        if total is not None and written != total:
            raise _Interrupted(f"connection closed after {written} of {total} bytes")
        if self.validate is not None:
            try:
                self.validate(part)
            except ValueError as exc:
                _remove(part, sidecar_path(part))
                kept = f"; kept the previous copy {dest}" if dest.exists() else ""
                raise FeedError(f"downloaded {url} is unusable: {exc}{kept}") from exc
        if appended:
            saved = read_sidecar(part)
            etag = etag or (saved.etag if saved else None)
            last_modified = last_modified or (saved.last_modified if saved else None)
        os.replace(part, dest)
        fetched = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _write_sidecar(
            dest, Sidecar(url=url, etag=etag, last_modified=last_modified, size=written, fetched_at=fetched)
        )
        _remove(sidecar_path(part))
        self.say(f"{self.name}: saved {_mib(written)} to {dest}")
        result = DownloadResult(
            url=url, path=dest, status="downloaded", size=written, etag=etag, last_modified=last_modified
        )
        return result, appended

    def _stream(self, response: http.client.HTTPResponse, offset: int, total: int | None) -> int:
        """Write the body to the partial file (appending after `offset` bytes); returns its size.
        Progress every 10% (or every 64 MiB when the size is unknown)."""
        written = offset
        step = max(total // 10, 1) if total else 64 << 20
        next_report = (written // step + 1) * step
        try:
            with self.part.open("ab" if offset else "wb") as fh:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    written += len(chunk)
                    if written >= next_report and (total is None or written < total):
                        shown = f"{_mib(written)} of {_mib(total)}" if total else _mib(written)
                        self.say(f"{self.name}: {shown}")
                        next_report = (written // step + 1) * step
                fh.flush()
                os.fsync(fh.fileno())
        except (OSError, http.client.HTTPException) as exc:
            raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
        return written


class DownloadJob(NamedTuple):
    """One feed file to fetch. `hint_on_404` is appended to a 404's message (a likely typo)."""

    label: str
    url: str
    dest: Path
    validate: Validator
    hint_on_404: str = ""


def download_all(
    jobs: Sequence[DownloadJob],
    *,
    progress: Progress | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    retry_delay: float = 1.0,
) -> list[DownloadResult]:
    """Download (or confirm) every job. Every job is tried; if any failed, one `FeedError` names
    each failure afterwards (the others are up to date on disk, a failed file's previous good copy
    is kept)."""
    results: list[DownloadResult] = []
    failures: list[str] = []
    for job in jobs:
        try:
            results.append(
                download(
                    job.url,
                    job.dest,
                    validate=job.validate,
                    progress=progress,
                    label=job.label,
                    timeout=timeout,
                    attempts=attempts,
                    retry_delay=retry_delay,
                )
            )
        except FeedError as exc:
            failures.append(f"{exc}{job.hint_on_404 if 'HTTP 404' in str(exc) else ''}")
    if failures:
        raise FeedError("; ".join(failures))
    return results


def osv_export_jobs(
    ecosystems: Sequence[str], cache_dir: Path, base_url: str = DEFAULT_OSV_URL
) -> list[DownloadJob]:
    return [
        DownloadJob(
            ecosystem,
            export_url(base_url, ecosystem),
            export_path(cache_dir, ecosystem),
            check_zip,
            f" (is {ecosystem!r} an OSV ecosystem?)",
        )
        for ecosystem in ecosystems
    ]


def update_osv_exports(
    ecosystems: Sequence[str],
    cache_dir: Path,
    *,
    base_url: str = DEFAULT_OSV_URL,
    progress: Progress | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    retry_delay: float = 1.0,
) -> list[DownloadResult]:
    """Download (or confirm) each ecosystem's `all.zip` into `cache_dir/<Ecosystem>/all.zip`."""
    return download_all(
        osv_export_jobs(ecosystems, cache_dir, base_url),
        progress=progress,
        timeout=timeout,
        attempts=attempts,
        retry_delay=retry_delay,
    )
