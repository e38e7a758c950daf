"""The composition root for the Lambda functions and the local API: builds boto3 clients, the
store, the vulnerability index and image sources from `Settings`, once per process (warm Lambdas
reuse them). `reset()` forgets everything (tests, the demo)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from chalicelib.ecr_auth import caller_account_id, ecr_credentials_provider
from chalicelib.enforcement.admission import AdmissionDeps
from chalicelib.enforcement.authorizer import TokenCache, secret_fetcher
from chalicelib.enforcement.clients import MemberClients
from chalicelib.enforcement.decision import DecisionConfig
from chalicelib.enforcement.ecs import EnforcementDeps
from chalicelib.errors import InputError, LifeguardError, VulnDBError
from chalicelib.image.model import ImageSource
from chalicelib.image.registry import RegistryClient, registry_source
from chalicelib.image.registry_config import ENV_ACCOUNTS, RegistryConfig
from chalicelib.policy import PolicyError, PolicyFile, load_policy
from chalicelib.rematch import RematchDeps
from chalicelib.rematch_queue import REMATCH_QUEUE
from chalicelib.scan_service import ScanDeps
from chalicelib.scanner import ScanOptions
from chalicelib.settings import Settings
from chalicelib.store import ScanStore
from chalicelib.store_models import SignatureRecord
from chalicelib.suppress import SuppressionRules, load_suppressions
from chalicelib.trust_service import Signer, Signing
from chalicelib.vulndb.index import VulnIndex

if TYPE_CHECKING:  # signing pulls in `cryptography`: imported on first use, not on a cold start
    from chalicelib.signing.kms import KmsSigner
    from chalicelib.signing.service import SignResult

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
def policy_file() -> PolicyFile | None:
    """`LIFEGUARD_POLICY` (a path, or s3://bucket/key read with the runtime's S3 client), loaded
    once per process: a new policy takes effect on the next cold start. None: the gate passes.
    An unreadable or invalid file raises PolicyError (scans fail and are retried: better than
    scanning with no gate)."""
    location = settings().policy
    if not location:
        return None
    try:
        if location.startswith("s3://"):
            bucket, _, key = location.removeprefix("s3://").partition("/")
            text = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        else:
            text = Path(location).read_text(encoding="utf-8")
    except Exception as exc:
        raise PolicyError(f"{location}: cannot read the policy file: {exc}") from exc
    policy = load_policy(text, location)
    _log.info("policy loaded from %s (%d repository overrides)", location, len(policy.repositories))
    return policy


@cache
def scan_deps() -> ScanDeps:
    return ScanDeps(
        store=store(),
        index=vuln_index,
        open_source=open_source,
        options=ScanOptions(suppressions=suppressions()),
        policy=policy_file(),
        signing=signing(),
    )


@cache
def rematch_deps() -> RematchDeps:
    """Re-matching uses the scan path's options (ignore-unfixed, suppressions, gate rules)."""
    deps = scan_deps()
    return RematchDeps(store=store(), index=fresh_vuln_index, options=deps.options, policy=deps.policy)


# --- enforcement (prevent-running): ECS task handler, admission webhook ---------------------------

#: the admission path answers the API server synchronously: short timeouts and one retry, so a
#: slow DynamoDB turns into the configured failure answer well inside the webhook's timeoutSeconds
_ADMISSION_BOTO_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=1
)


@cache
def account_id() -> str:
    """Our own account (STS GetCallerIdentity once per process)."""
    return caller_account_id(client("sts"))


def _client_with(service: str, region: str, credentials: dict[str, str] | None) -> Any:
    if credentials is None:
        return client(service, region)
    return boto3.session.Session(**credentials).client(service, region_name=region, config=_BOTO_CONFIG)


@cache
def member_clients() -> MemberClients:
    """Clients in member accounts: `LIFEGUARD_MEMBER_ROLE_NAME` (default lifeguard-member),
    `LIFEGUARD_EXTERNAL_ID`; our own account uses our own credentials."""
    return MemberClients(
        client("sts"),
        account_id,
        _client_with,
        role_name=settings().member_role_name,
        external_id=settings().external_id,
    )


@cache
def decision_config() -> DecisionConfig:
    return DecisionConfig(signing_key=settings().signing_key, registries=registry_config())


@cache
def enforcement_deps() -> EnforcementDeps:
    """`LIFEGUARD_DRY_RUN=true` records what enforce mode would do without doing it."""
    return EnforcementDeps(
        store=store(),
        config=decision_config(),
        mode=settings().enforce,
        ecs_client=lambda account, region: member_clients().client("ecs", account, region),
        dry_run=settings().dry_run,
    )


@cache
def admission_store() -> ScanStore:
    s = settings()
    ddb = boto3.session.Session().client("dynamodb", region_name=s.region, config=_ADMISSION_BOTO_CONFIG)
    return ScanStore(s.table, None, dynamodb=ddb, max_attempts=2, base_delay=0.01, max_delay=0.05)


@cache
def admission_deps() -> AdmissionDeps:
    s = settings()
    return AdmissionDeps(
        store=admission_store(),
        config=decision_config(),
        mode=s.enforce,
        failure=s.admission_failure,
        dry_run=settings().dry_run,
    )


@cache
def admission_tokens() -> TokenCache:
    return TokenCache(secret_fetcher(client("secretsmanager"), settings().admission_token_secret))


# --- signing (cosign layout, KMS key): docs/SIGNING.md ---------------------------------------------


@cache
def kms_signer() -> KmsSigner | None:
    """The `LIFEGUARD_SIGNING_KEY` signer; None when no key is configured (nothing is signed)."""
    from chalicelib.signing.kms import KmsSigner

    key = settings().signing_key
    return KmsSigner(client("kms"), key) if key else None


def _registry_client(registry: str) -> RegistryClient:
    return RegistryClient(registry, registry_config(), _credentials())


@cache
def signing() -> Signing | None:
    """Signs passing images in their own repository (pushes go through the registry's data plane
    with ECR credentials, like pulls)."""
    from chalicelib.signing.service import sign_image

    signer = kms_signer()
    if signer is None:
        return None

    def signer_for(registry: str) -> Signer:
        registry_client = _registry_client(registry)

        def sign(
            repository: str,
            digest: str,
            docker_reference: str,
            optional: Mapping[str, Any],
            attestation: Mapping[str, Any] | None,
        ) -> SignResult:
            return sign_image(
                registry_client,
                repository,
                digest,
                docker_reference,
                signer,
                optional=optional,
                attestation=attestation,
            )

        return sign

    return Signing(key=signer.key_uri, signer_for=signer_for)


def check_signature(record: SignatureRecord) -> tuple[bool | None, str | None]:
    """Re-verify a stored signature now: the `.sig` manifest in the registry against the public
    key of the record's KMS key. None with the reason when either cannot be reached."""
    if not record.registry or not record.repository:
        return None, "the signature record names no repository"
    from chalicelib.signing.kms import KmsSigner
    from chalicelib.signing.service import verify_image

    try:
        public_key = KmsSigner(client("kms"), record.key).public_key()
        result = verify_image(_registry_client(record.registry), record.repository, record.digest, public_key)
    except LifeguardError as exc:
        return None, str(exc)
    return result.verified, None if result.verified else "; ".join(result.reasons) or "no valid signature"


def reset() -> None:
    """Forget cached settings, clients and the index (tests and the demo change the environment)."""
    for fn in (
        kms_signer,
        signing,
        account_id,
        member_clients,
        decision_config,
        enforcement_deps,
        admission_store,
        admission_deps,
        admission_tokens,
        settings,
        client,
        store,
        registry_config,
        _credentials,
        suppressions,
        policy_file,
        scan_deps,
        rematch_queue_url,
        rematch_deps,
    ):
        fn.cache_clear()
    _index_cache.clear()
