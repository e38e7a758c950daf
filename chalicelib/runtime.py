"""The composition root for the Lambda functions and the local API: builds boto3 clients, the
store, the vulnerability index and image sources from `Settings`, once per process (warm Lambdas
reuse them). `reset()` forgets everything (tests, the demo)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.ecr_auth import caller_account_id, ecr_credentials_provider
from chalicelib.errors import InputError, VulnDBError
from chalicelib.image.model import ImageSource
from chalicelib.image.registry import registry_source
from chalicelib.image.registry_config import ENV_ACCOUNTS, RegistryConfig
from chalicelib.rematch import RematchDeps
from chalicelib.rematch_queue import REMATCH_QUEUE
from chalicelib.scan_service import ScanDeps
from chalicelib.scanner import ScanOptions
from chalicelib.settings import Settings
from chalicelib.store import ScanStore
from chalicelib.suppress import SuppressionRules, load_suppressions
from chalicelib.vulndb.index import VulnIndex

_BOTO_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)
_log = logging.getLogger(__name__)
#: how often a warm process asks S3 whether the index changed
INDEX_RECHECK_SECONDS = 300


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def client(service: str, region: str | None = None) -> Any:
    """boto3 honours AWS_ENDPOINT_URL, which points every client at moto locally."""
    return boto3.session.Session().client(
        service, region_name=region or settings().region, config=_BOTO_CONFIG
    )


@cache
def store() -> ScanStore:
    s = settings()
    return ScanStore(s.table, s.bucket, dynamodb=client("dynamodb"), s3=client("s3"))


@cache
def registry_config() -> RegistryConfig:
    caller = None if os.environ.get(ENV_ACCOUNTS) else caller_account_id(client("sts"))
    return RegistryConfig.from_env(caller_account=caller)


@cache
def _credentials() -> Any:
    return ecr_credentials_provider(lambda region: client("ecr", region))


def open_source(reference: str) -> ImageSource:
    return registry_source(reference, config=registry_config(), credentials=_credentials())


class _IndexCache:
    """The index from a path, or from S3 into /tmp: fetched on a cold start, re-checked by ETag at
    most every INDEX_RECHECK_SECONDS, replaced by rename so no reader sees a half-written file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: VulnIndex | None = None
        self._etag: str | None = None
        self._checked = 0.0

    def clear(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
            self._index, self._etag, self._checked = None, None, 0.0

    def get(self, recheck: bool = False) -> VulnIndex:
        """`recheck` asks S3 now instead of waiting for the interval (re-matching must use the
        index it was asked to, not a copy a warm process fetched minutes ago)."""
        location = settings().db
        with self._lock:
            if not location.startswith("s3://"):
                if self._index is None:
                    self._index = VulnIndex(Path(location))
                return self._index
            if self._index is None or recheck or time.monotonic() - self._checked > INDEX_RECHECK_SECONDS:
                self._refresh_from_s3(location)
            assert self._index is not None
            return self._index

    def _refresh_from_s3(self, url: str) -> None:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        s3 = client("s3")
        try:
            etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
            if etag != self._etag or self._index is None:
                target = Path(tempfile.gettempdir()) / "lifeguard-vulndb.sqlite"
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".vulndb-")
                os.close(fd)
                s3.download_file(bucket, key, tmp)
                Path(tmp).replace(target)
                old, self._index, self._etag = self._index, VulnIndex(target), etag
                if old is not None:
                    old.close()
        except VulnDBError:
            raise
        except Exception as exc:
            if self._index is None:
                raise VulnDBError(f"cannot fetch the vulnerability index {url}: {exc}") from exc
        self._checked = time.monotonic()


_index_cache = _IndexCache()


def vuln_index(recheck: bool = False) -> VulnIndex:
    return _index_cache.get(recheck)


def fresh_vuln_index() -> VulnIndex:
    """The index, its S3 ETag checked now (one HEAD): what re-matching and the fan-out use."""
    return _index_cache.get(recheck=True)


@cache
def rematch_queue_url() -> str:
    configured = settings().rematch_queue_url
    if configured:
        return configured
    return str(client("sqs").get_queue_url(QueueName=REMATCH_QUEUE)["QueueUrl"])


@cache
def suppressions() -> SuppressionRules:
    """`LIFEGUARD_IGNORE_FILE` and `LIFEGUARD_VEX`, loaded once per process (local paths only:
    files shipped with the deployment package; s3:// is not supported yet)."""
    s = settings()
    for location in (s.ignore_file, *s.vex):
        if location and location.startswith("s3://"):
            raise InputError(f"bad configuration: {location}: s3:// ignore/VEX files are not supported yet")
    rules = load_suppressions(Path(s.ignore_file) if s.ignore_file else None, [Path(v) for v in s.vex])
    for rule in rules.expired(datetime.now(UTC).date()):
        _log.warning("ignore rule %s for %s expired on %s", rule.origin, rule.vulnerability_id, rule.expires)
    return rules


@cache
def scan_deps() -> ScanDeps:
    return ScanDeps(
        store=store(),
        index=vuln_index,
        open_source=open_source,
        options=ScanOptions(suppressions=suppressions()),
    )


@cache
def rematch_deps() -> RematchDeps:
    """Re-matching uses the scan path's options (ignore-unfixed, suppressions, gate rules)."""
    return RematchDeps(store=store(), index=fresh_vuln_index, options=scan_deps().options)


def reset() -> None:
    """Forget cached settings, clients and the index (tests and the demo change the environment)."""
    for fn in (
        settings,
        client,
        store,
        registry_config,
        _credentials,
        suppressions,
        scan_deps,
        rematch_queue_url,
        rematch_deps,
    ):
        fn.cache_clear()
    _index_cache.clear()
