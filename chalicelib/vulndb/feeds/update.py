"""`db update` and the scheduled refresh: every feed the index is built from, downloaded into one
cache directory that `db build` then reads.

Layout of the cache (`--cache-dir`; in Lambda `/tmp/lifeguard-refresh/feeds`)::

    <Ecosystem>/all.zip                              OSV export, one per ecosystem
    alpine-secdb/<release>/{main,community}.json     Alpine secdb, one per release and repository
    cisa-kev/known_exploited_vulnerabilities.json    CISA KEV catalog

Every file goes through `osv_download.download`, so all three feeds share its guarantees
(HTTPS only, conditional with a sidecar, resumable, atomic rename). Each kind has its own check of
the complete file before it replaces the previous one: a zip that opens with good CRCs, a KEV
catalog `kev.is_kev` accepts with at least one usable entry, a secdb document `is_secdb` accepts
for the release asked for. A maintenance page or a truncated body therefore never replaces a good
copy.

Which feeds, from the command line first, then the environment, then the defaults:
- OSV: see `osv_download.configured_ecosystems`.
- KEV: `--kev` / `--no-kev`, else `LIFEGUARD_KEV_URL` (`none` turns it off), else CISA's URL.
- Alpine secdb: `--alpine-release` (repeatable), else `LIFEGUARD_ALPINE_RELEASES` (comma list;
  `none` turns it off), else `DEFAULT_ALPINE_RELEASES`; from `LIFEGUARD_ALPINE_SECDB_URL`, else
  secdb.alpinelinux.org. OSV's Alpine export covers every release already; secdb adds Alpine's own
  fix data for the releases listed (the matcher merges the two into one finding per CVE).

Every download is tried; failures are reported together at the end (`FeedError`), so one broken
feed never stops the others from being brought up to date."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.errors import FeedError, InputError
from chalicelib.vulndb.feeds import alpine_secdb, kev
from chalicelib.vulndb.feeds.osv_download import (
    PART_SUFFIX,
    DownloadJob,
    DownloadResult,
    Progress,
    Validator,
    configured_ecosystems,
    download_all,
    export_path,
    osv_base_url,
    osv_export_jobs,
)

DEFAULT_KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
DEFAULT_ALPINE_SECDB_URL = "https://secdb.alpinelinux.org"
#: Alpine releases whose secdb is fetched by default: recent releases that images still use
DEFAULT_ALPINE_RELEASES: tuple[str, ...] = ("v3.18", "v3.19", "v3.20", "v3.21", "v3.22")
SECDB_REPOSITORIES: tuple[str, ...] = ("main", "community")
ENV_KEV_URL = "LIFEGUARD_KEV_URL"
ENV_ALPINE_RELEASES = "LIFEGUARD_ALPINE_RELEASES"
ENV_ALPINE_SECDB_URL = "LIFEGUARD_ALPINE_SECDB_URL"
#: the value of `LIFEGUARD_KEV_URL` / `LIFEGUARD_ALPINE_RELEASES` (and `--alpine-release`) that
#: turns the feed off
OFF = "none"
KEV_DIR = "cisa-kev"
KEV_NAME = "known_exploited_vulnerabilities.json"
SECDB_DIR = "alpine-secdb"

_RELEASE = re.compile(r"v?(\d+\.\d+)|edge")


class FeedPlan(BaseModel):
    """What one `db update` fetches. `kev_url` None = no KEV; no releases = no secdb."""

    model_config = ConfigDict(frozen=True)

    osv_url: str
    ecosystems: tuple[str, ...]
    kev_url: str | None
    alpine_secdb_url: str
    alpine_releases: tuple[str, ...]

    def sources(self, cache_dir: Path) -> list[Path]:
        """The files `db build` compiles after this plan ran: exactly the configured ones (a
        release dropped from the configuration stops counting even if its file is still cached)."""
        paths = [export_path(cache_dir, e) for e in self.ecosystems]
        paths += [secdb_path(cache_dir, r, repo) for r in self.alpine_releases for repo in SECDB_REPOSITORIES]
        if self.kev_url is not None:
            paths.append(kev_path(cache_dir))
        return paths


class FeedUpdate(BaseModel):
    """The outcome of `update_feeds`: one result per file, and the paths to build from."""

    model_config = ConfigDict(frozen=True)

    results: list[DownloadResult]
    sources: list[Path]


# -- configuration -----------------------------------------------------------------------------------


def kev_url(enabled: bool | None, environ: Mapping[str, str]) -> str | None:
    """The KEV catalog's URL, or None when the feed is off. `enabled` is `--kev` (True) /
    `--no-kev` (False) / neither (None: `LIFEGUARD_KEV_URL` decides, `none` = off)."""
    configured = (environ.get(ENV_KEV_URL) or "").strip()
    if enabled is False or (enabled is None and configured.lower() == OFF):
        return None
    if not configured or configured.lower() == OFF:
        return DEFAULT_KEV_URL
    return configured


def alpine_secdb_url(environ: Mapping[str, str]) -> str:
    """`LIFEGUARD_ALPINE_SECDB_URL`, else secdb.alpinelinux.org."""
    return (environ.get(ENV_ALPINE_SECDB_URL) or DEFAULT_ALPINE_SECDB_URL).strip().rstrip("/")


def configured_alpine_releases(requested: Sequence[str] | None, environ: Mapping[str, str]) -> list[str]:
    """`--alpine-release` values when given, else `LIFEGUARD_ALPINE_RELEASES` (comma list), else
    `DEFAULT_ALPINE_RELEASES`; `none` alone turns secdb off. Releases are secdb's directory
    names: `v3.19` (a missing `v` is added) or `edge`. Duplicates dropped, order kept."""
    if requested:
        names = list(requested)
    elif environ.get(ENV_ALPINE_RELEASES, "").strip():
        names = environ[ENV_ALPINE_RELEASES].split(",")
    else:
        names = list(DEFAULT_ALPINE_RELEASES)
    cleaned = [n.strip() for n in names if n.strip()]
    if any(n.lower() == OFF for n in cleaned):
        if len(cleaned) > 1:
            raise FeedError(f"bad Alpine releases {cleaned}: '{OFF}' turns secdb off and stands alone")
        return []
    releases: list[str] = []
    for name in cleaned:
        match = _RELEASE.fullmatch(name)
        if match is None:
            raise FeedError(f"bad Alpine release {name!r}: use secdb's names such as 'v3.20' or 'edge'")
        releases.append(f"v{match.group(1)}" if match.group(1) else name)
    return list(dict.fromkeys(releases))


def configured_feeds(
    environ: Mapping[str, str],
    *,
    ecosystems: Sequence[str] | None = None,
    kev_enabled: bool | None = None,
    alpine_releases: Sequence[str] | None = None,
) -> FeedPlan:
    """The plan for the command-line choices given (None = not given) over `environ`."""
    return FeedPlan(
        osv_url=osv_base_url(environ),
        ecosystems=tuple(configured_ecosystems(ecosystems, environ)),
        kev_url=kev_url(kev_enabled, environ),
        alpine_secdb_url=alpine_secdb_url(environ),
        alpine_releases=tuple(configured_alpine_releases(alpine_releases, environ)),
    )


def kev_path(cache_dir: Path) -> Path:
    return cache_dir / KEV_DIR / KEV_NAME


def secdb_url(base_url: str, release: str, repository: str) -> str:
    return f"{base_url.rstrip('/')}/{release}/{repository}.json"


def secdb_path(cache_dir: Path, release: str, repository: str) -> Path:
    return cache_dir / SECDB_DIR / release / f"{repository}.json"


# -- checks of a complete download (ValueError = keep the previous copy) -------------------------------


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise ValueError(f"not JSON: {exc}") from exc


def check_kev(path: Path) -> None:
    """A KEV catalog (`catalogVersion` + `vulnerabilities`) with at least one usable entry: an
    empty catalog would clear the known-exploited flag on every finding."""
    data = _json(path)
    if not kev.is_kev(data):
        raise ValueError("not a CISA KEV catalog (no catalogVersion and vulnerabilities list)")
    try:
        catalog = kev.parse_catalog(data, path.name.removesuffix(PART_SUFFIX))
    except InputError as exc:
        raise ValueError(str(exc)) from exc
    if not catalog.entries:
        raise ValueError("the KEV catalog lists no usable vulnerabilities")


def secdb_check(release: str, repository: str) -> Validator:
    """The check for `<release>/<repository>.json`: a secdb document of that release (a mirror that
    answers with another release's file would file its fixes under the wrong ecosystem)."""

    def check(path: Path) -> None:
        data = _json(path)
        if not alpine_secdb.is_secdb(data):
            raise ValueError("not an Alpine secdb document (no distroversion and packages list)")
        if data["distroversion"] != release:
            raise ValueError(f"its distroversion is {data['distroversion']!r}, not {release!r}")
        reponame = data.get("reponame")
        if reponame is not None and reponame != repository:
            raise ValueError(f"its reponame is {reponame!r}, not {repository!r}")

    return check


# -- downloading -------------------------------------------------------------------------------------


def update_feeds(
    plan: FeedPlan,
    cache_dir: Path,
    *,
    progress: Progress | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    retry_delay: float = 1.0,
) -> FeedUpdate:
    """Download (or confirm) every file of `plan` into `cache_dir`. Every file is tried; if any
    failed, a `FeedError` names each failure afterwards (the others are up to date on disk, and a
    failed file's previous good copy is kept)."""
    jobs = osv_export_jobs(plan.ecosystems, cache_dir, plan.osv_url)
    jobs += [
        DownloadJob(
            f"Alpine secdb {release}/{repo}",
            secdb_url(plan.alpine_secdb_url, release, repo),
            secdb_path(cache_dir, release, repo),
            secdb_check(release, repo),
            f" (is {release!r} an Alpine release?)",
        )
        for release in plan.alpine_releases
        for repo in SECDB_REPOSITORIES
    ]
    if plan.kev_url is not None:
        jobs.append(DownloadJob("CISA KEV", plan.kev_url, kev_path(cache_dir), check_kev))
    results = download_all(
        jobs, progress=progress, timeout=timeout, attempts=attempts, retry_delay=retry_delay
    )
    return FeedUpdate(results=results, sources=plan.sources(cache_dir))
