"""Publishing the compiled vulnerability index to S3 (the scheduled `refresh_index` function):
download the feeds (`db update`), compile them (`db build`) into /tmp, upload the file to the
versioned object named by `LIFEGUARD_DB` (`s3://<bucket>/vulndb/vulndb.sqlite`).

The upload is what starts fleet-wide re-matching (S3 -> EventBridge `Object Created` ->
`on_index_updated`), so an index whose content did not change is not uploaded again: its
`content-sha256` (over every table but `meta`, whose build time changes every run) is kept in the
object's metadata and compared first. A daily refresh with no new advisories therefore re-matches
nothing.

Scanner functions read the object with an ETag re-check (`runtime`); S3 replaces an object
atomically, so they never see a half-uploaded index. The s3 client is passed in and typed Any."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from chalicelib.errors import InputError, VulnDBError
from chalicelib.vulndb.index import VulnIndex, build_index

#: object metadata keys (S3 stores them as x-amz-meta-*)
META_FINGERPRINT = "content-sha256"
META_DB_VERSION = "db-version"
META_RECORDS = "record-count"
#: an index with fewer records than this share of the published one is refused: a feed that came
#: back nearly empty would otherwise "resolve" findings across the whole fleet
MIN_RECORD_RATIO = 0.5
CONTENT_TYPE = "application/vnd.sqlite3"


class PublishedIndex(BaseModel):
    """The index now at `url`. `uploaded` is False when the built index had the content already
    published (nothing was written; `db_version`, `etag` and `version_id` are the published
    object's)."""

    url: str
    db_version: str
    fingerprint: str
    uploaded: bool
    etag: str | None = None
    version_id: str | None = None


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); anything else is a configuration error."""
    if not url.startswith("s3://"):
        raise InputError(f"bad configuration: the index location {url!r} is not an s3:// URL")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise InputError(f"bad configuration: {url!r} names no bucket and key")
    return bucket, key


def index_fingerprint(path: Path) -> str:
    """sha256 over the rows of every table but `meta`, in a fixed order: equal for two builds of
    the same feed content whatever their build time or insertion order."""
    digest = hashlib.sha256()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise VulnDBError(f"cannot open {path}: {exc}") from exc
    try:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' ORDER BY name"
            )
        ]
        for table in tables:
            columns = [str(row[1]) for row in conn.execute(f'PRAGMA table_info("{table}")')]
            order = ", ".join(f'"{c}"' for c in columns)
            digest.update(f"\x1e{table}\x1f{order}\x1e".encode())
            for row in conn.execute(f'SELECT {order} FROM "{table}" ORDER BY {order}'):  # noqa: S608
                digest.update(repr(row).encode())
                digest.update(b"\n")
    except sqlite3.Error as exc:
        raise VulnDBError(f"{path} is not a readable index: {exc}") from exc
    finally:
        conn.close()
    return digest.hexdigest()


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        # 403 too: without s3:ListBucket a missing key answers 403, and a first publish must work
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "403"}:
            return None
        raise
    return head


def publish_index(s3: Any, path: Path, url: str, *, force: bool = False) -> PublishedIndex:
    """Upload the index at `path` to `url` unless the object there already has its content, or
    has more than twice its records (VulnDBError: a broken feed must not resolve the fleet's
    findings). `force` uploads anyway. Returns the published object's version and ETag."""
    bucket, key = parse_s3_url(url)
    index = VulnIndex(path)  # refuses a file that is not a readable index of our schema
    try:
        version = index.version
        records = int(index.meta.get("record_count") or 0)
    finally:
        index.close()
    fingerprint = index_fingerprint(path)
    current = _head(s3, bucket, key)
    metadata = (current or {}).get("Metadata") or {}
    if not force and current is not None and metadata.get(META_FINGERPRINT) == fingerprint:
        return PublishedIndex(
            url=url,
            db_version=str(metadata.get(META_DB_VERSION) or version),
            fingerprint=fingerprint,
            uploaded=False,
            etag=current.get("ETag"),
            version_id=current.get("VersionId"),
        )
    published_records = int(metadata.get(META_RECORDS) or 0)
    if not force and records < published_records * MIN_RECORD_RATIO:
        raise VulnDBError(
            f"refusing to publish an index of {records} records over one of {published_records} "
            f"({url}): a feed is probably missing or truncated"
        )
    s3.upload_file(
        str(path),
        bucket,
        key,
        ExtraArgs={
            "ContentType": CONTENT_TYPE,
            "Metadata": {META_FINGERPRINT: fingerprint, META_DB_VERSION: version, META_RECORDS: str(records)},
        },
    )
    uploaded = _head(s3, bucket, key) or {}
    return PublishedIndex(
        url=url,
        db_version=version,
        fingerprint=fingerprint,
        uploaded=True,
        etag=uploaded.get("ETag"),
        version_id=uploaded.get("VersionId"),
    )


def build_and_publish(s3: Any, sources: Sequence[Path], url: str, workdir: Path) -> PublishedIndex:
    """`db build` of `sources` into `workdir` (Lambda: /tmp), then `publish_index`. The local file
    is removed afterwards: /tmp is small and shared with the scanner's cached index."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "vulndb-build.sqlite"
    try:
        build_index(list(sources), out)
        return publish_index(s3, out, url)
    finally:
        out.unlink(missing_ok=True)


FeedFetcher = Callable[[Path], Sequence[Path]]


def download_feeds(cache_dir: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """`db update` for the refresh function, as the CLI runs it: OSV's per-ecosystem exports, the
    Alpine secdb releases and the CISA KEV catalog (configured by the same environment variables,
    `feeds/update.py`) into `cache_dir`, conditional and resumable; returns the paths `db build`
    compiles. Raises FeedError naming every download that failed (the refresh then publishes
    nothing: a partial feed set would resolve findings that are not)."""
    from chalicelib.vulndb.feeds.update import configured_feeds, update_feeds

    env = os.environ if environ is None else environ
    return update_feeds(configured_feeds(env), cache_dir).sources


def refresh_index(s3: Any, url: str, workdir: Path, fetch: FeedFetcher = download_feeds) -> PublishedIndex:
    """The scheduled refresh: feeds -> index -> S3. `fetch` is `download_feeds` in AWS (tests
    give a function that returns local fixtures). The feed cache under `workdir` is kept between
    warm invocations (conditional downloads); the built index is not."""
    cache = workdir / "feeds"
    cache.mkdir(parents=True, exist_ok=True)
    sources = list(fetch(cache))
    try:
        return build_and_publish(s3, sources, url, workdir)
    except OSError as exc:  # a full /tmp, most likely
        shutil.rmtree(cache, ignore_errors=True)
        raise VulnDBError(f"cannot build the index in {workdir}: {exc}") from exc
