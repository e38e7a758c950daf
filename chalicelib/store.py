"""The DynamoDB single-table repository: the only module that knows the key layout (docs/DATA.md).

Why one table: every API read is one Query on one partition (an image, a vulnerability id, a
repository), whatever the data volume, and a scan's items are written together. The key builders
below are the layout; everything else in the module is plumbing around them:

- writes go through BatchWriteItem, 25 requests a call (moto accepts 26, DynamoDB does not),
  retrying UnprocessedItems with capped exponential backoff, then raising StoreError;
- numbers cross the boundary once: floats become Decimal on the way in, Decimals become int or
  float on the way out, and callers only ever see pydantic models;
- SBOMs (packages + image info) go to S3 so a vulnerability-data refresh can re-match images
  without pulling them again.

boto3 clients are passed in (tests give moto ones) and are typed Any: boto3 ships no stubs."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import InputError, NotFoundError, StoreError
from chalicelib.models import (
    SEVERITIES_WORST_FIRST,
    ImageScan,
    Misconfiguration,
    SecretFinding,
    Severity,
    Vulnerability,
)
from chalicelib.pagination import Page, check_limit, decode_cursor, encode_cursor, scope_of
from chalicelib.store_models import (
    AffectedImage,
    AuditRecord,
    ChangeRecord,
    ChildImage,
    ChildRef,
    ImageRecord,
    RematchWrite,
    RepositoryImage,
    ScanMeta,
    SignatureRecord,
    StoredSbom,
    TrustFacts,
    as_utc,
)

Item = dict[str, Any]
"""One DynamoDB item with plain Python values (str, int, float, bool, None, list, dict)."""

GSI1 = "GSI1"
BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100

SCAN_SK = "SCAN"
FINDING_PREFIX = "VULN#"
ALIAS_PREFIX = "ALIAS#"
SECRET_PREFIX = "SECRET#"  # noqa: S105 - a key prefix, not a secret
MISCONF_PREFIX = "MISCONF#"
REPO_IMAGE_PREFIX = "IMAGE#"
REPO_POINTER_PREFIX = "DIGEST#"
CHANGE_PREFIX = "CHANGE#"
SIGNATURE_PREFIX = "SIGNATURE#"
AUDIT_PREFIX = "AUDIT#"
#: the image summaries are listed (for fleet-wide re-matching) through GSI1 partitions
#: `SCANS#<0..f>`: sixteen shards so that no GSI partition takes every scan's write
IMAGE_LIST_SHARDS = "0123456789abcdef"
#: the finding item kinds a re-match replaces (secrets and misconfigurations come from the layers)
FINDING_OWNED_PREFIXES = (FINDING_PREFIX, ALIAS_PREFIX)
#: item kinds a scan owns in its image partition: a re-scan replaces exactly these
SCAN_OWNED_PREFIXES = (FINDING_PREFIX, ALIAS_PREFIX, SECRET_PREFIX, MISCONF_PREFIX)

_TABLE_KEYS = frozenset({"PK", "SK"})
_GSI1_KEYS = frozenset({"PK", "SK", "GSI1PK", "GSI1SK"})
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


# --- the key layout -------------------------------------------------------------------------------


def image_pk(digest: str) -> str:
    return f"IMAGE#{digest}"


def severity_key(severity: Severity) -> str:
    """One digit that sorts worst first: CRITICAL=0, HIGH=1, MEDIUM=2, LOW=3, UNKNOWN=4."""
    return str(Severity.CRITICAL.rank - severity.rank)


def _short_hash(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:12]


def finding_tail(vuln: Vulnerability) -> str:
    """`<id>#<package>#<entry>`: `entry` hashes what tells two entries of one package name apart
    (ecosystem, path, purl with its arch, version), so libc6:amd64 and libc6:i386, or two copies
    of one jar, stay two findings instead of overwriting each other."""
    entry = _short_hash(vuln.ecosystem, vuln.path, vuln.purl, vuln.installed_version)
    return f"{vuln.id}#{vuln.package}#{entry}"


def finding_sk(vuln: Vulnerability) -> str:
    return f"{FINDING_PREFIX}{severity_key(vuln.severity)}#{finding_tail(vuln)}"


def alias_sk(alias: str, vuln: Vulnerability) -> str:
    return f"{ALIAS_PREFIX}{alias}#{finding_tail(vuln)}"


def vuln_gsi_pk(vuln_id: str) -> str:
    """Upper-cased so lookups are case-insensitive (`cve-2024-1` finds `CVE-2024-1`, and GHSA ids,
    which mix cases in the wild, match however they are typed)."""
    return f"VULN#{vuln_id.upper()}"


def vuln_gsi_sk(digest: str, vuln: Vulnerability) -> str:
    return f"IMAGE#{digest}#{finding_tail(vuln)}"


def secret_sk(secret: SecretFinding) -> str:
    return f"{SECRET_PREFIX}{secret.fingerprint}#{_short_hash(secret.path, secret.layer, str(secret.line))}"


def misconf_sk(misconf: Misconfiguration) -> str:
    return f"{MISCONF_PREFIX}{misconf.id}#{_short_hash(misconf.message)}"


def repo_pk(registry: str, repository: str) -> str:
    return f"REPO#{registry}/{repository}"


def timestamp_key(value: datetime) -> str:
    """Fixed-width UTC ISO 8601, so string order is time order."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def repo_image_sk(pushed_at: datetime, digest: str) -> str:
    return f"{REPO_IMAGE_PREFIX}{timestamp_key(pushed_at)}#{digest}"


def repo_pointer_sk(digest: str) -> str:
    return f"{REPO_POINTER_PREFIX}{digest}"


def repo_name_gsi_pk(repository: str) -> str:
    return f"REPONAME#{repository}"


def repo_name_gsi_sk(pushed_at: datetime, registry: str, digest: str) -> str:
    return f"{timestamp_key(pushed_at)}#{registry}#{digest}"


def sbom_key(digest: str) -> str:
    return f"sboms/{digest}.json"


def image_list_gsi_pk(digest: str) -> str:
    """`SCANS#<shard>`, the shard a hex digit of a hash of the digest (sparse: only the summaries
    of scanned images carry it, so listing the fleet reads no finding or repository items)."""
    return f"SCANS#{_short_hash(digest)[0]}"


def change_tail(change: ChangeRecord) -> str:
    """`<kind>#<id>#<package>#<entry>` (as `finding_tail`), or `verdict` for a gate flip."""
    if change.kind == "verdict":
        return "verdict"
    entry = _short_hash(change.ecosystem, change.path, change.purl, change.installed_version)
    return f"{change.kind}#{change.vulnerability_id}#{change.package}#{entry}"


def change_sk(change: ChangeRecord) -> str:
    return f"{CHANGE_PREFIX}{timestamp_key(change.detected_at)}#{change_tail(change)}"


def changes_gsi_pk(day: date) -> str:
    return f"CHANGES#{day.isoformat()}"


def changes_gsi_sk(change: ChangeRecord) -> str:
    return f"{timestamp_key(change.detected_at)}#{change.digest}#{change_tail(change)}"


def signature_sk(key: str) -> str:
    """One signature item per (image, key): signing again with the same key replaces it."""
    return f"{SIGNATURE_PREFIX}{_short_hash(key)}"


def audit_pk(day: date) -> str:
    return f"{AUDIT_PREFIX}{day.isoformat()}"


def audit_sk(record: AuditRecord) -> str:
    return f"{timestamp_key(record.at)}#{record.id}"


# --- value conversion at the boundary --------------------------------------------------------------


def _to_dynamo(value: Any) -> Any:
    """JSON-mode values -> what TypeSerializer takes (floats as exact decimal strings)."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_from_dynamo(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(_to_dynamo(v)) for k, v in item.items()}


def deserialize_item(raw: Mapping[str, Any]) -> Item:
    return {k: _from_dynamo(_DESERIALIZER.deserialize(v)) for k, v in raw.items()}


def _plain_key(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v["S"]) for k, v in raw.items()}


def _typed_key(key: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}


def _merge_tags(*groups: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for tag in group:
            seen.setdefault(tag, None)
    return list(seen)


def _model_fields(item: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {n: item[n] for n in names if n in item}


# --- the repository --------------------------------------------------------------------------------


class ScanStore:
    """Scans, findings and repository listings in one DynamoDB table (+ SBOMs in S3)."""

    def __init__(
        self,
        table_name: str,
        bucket: str | None,
        dynamodb: Any = None,
        s3: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
    ) -> None:
        self.table_name = table_name
        self.bucket = bucket
        self._ddb: Any = dynamodb if dynamodb is not None else boto3.client("dynamodb")
        self._s3: Any = s3 if s3 is not None else (boto3.client("s3") if bucket else None)
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay

    # -- local set-up ------------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the table (on-demand, one overloaded GSI) if missing; for tests and `make run`.
        Production tables come from infra/ with the same definition."""
        try:
            self._ddb.create_table(
                TableName=self.table_name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK", "GSI1PK", "GSI1SK")
                ],
                KeySchema=[
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": GSI1,
                        "KeySchema": [
                            {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                            {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        self._ddb.get_waiter("table_exists").wait(
            TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def create_bucket(self) -> None:
        """Create the SBOM bucket if missing (us-east-1 refuses a LocationConstraint)."""
        if not self.bucket or self._s3 is None:
            raise InputError("no bucket configured")
        region = self._s3.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._s3.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            }:
                raise

    # -- writes ------------------------------------------------------------------------------------

    def put_scan(self, scan: ImageScan, meta: ScanMeta) -> None:
        """Store one image's scan, replacing any earlier scan of the same digest.

        Order matters for a crash half-way (the message is then redelivered): SBOM first (the
        summary points at it), then the new findings, then deletes of findings the new scan no
        longer has, then the summary and repository items last."""
        digest = scan.image.digest
        index_digest = meta.index_digest or scan.image.index_digest
        key = self._put_sbom(scan) if self.bucket else None

        owned = self._scan_owned_items(scan, meta, index_digest)
        stale = [k for k in self._existing_scan_keys(digest) if (k["PK"], k["SK"]) not in owned]

        counts = {s.value: 0 for s in SEVERITIES_WORST_FIRST}
        for vuln in scan.vulnerabilities:
            counts[vuln.severity.value] += 1
        gate = scan.summary.gate

        tags = list(meta.tags)
        repo_requests: list[dict[str, Any]] = []
        if index_digest is None:  # a platform of a multi-arch push is listed through its index
            tags, repo_requests = self._repo_requests(
                digest=digest,
                kind="image",
                meta=meta,
                extra={"platform": scan.image.platform, "gate": gate, "vulnerabilities": counts},
            )

        summary: Item = {
            "PK": image_pk(digest),
            "SK": SCAN_SK,
            "type": "scan",
            "kind": "image",
            "GSI1PK": image_list_gsi_pk(digest),
            "GSI1SK": digest,
            "digest": digest,
            "registry": meta.registry,
            "repository": meta.repository,
            "tags": tags,
            "pushed_at": timestamp_key(meta.pushed_at),
            "scanned_at": timestamp_key(meta.scanned_at),
            "index_digest": index_digest,
            "platform": scan.image.platform,
            "config_digest": scan.image.config_digest,
            "os": scan.image.os.model_dump(mode="json"),
            "vulnerabilities": counts,
            "packages": len(scan.packages),
            "secrets": len(scan.secrets),
            "misconfigurations": len(scan.misconfigurations),
            "suppressed": scan.summary.suppressed,
            "db_version": scan.summary.db_version,
            "gate": gate,
            "reasons": list(scan.summary.reasons),
            "policy": scan.summary.policy,
            "sbom_key": key,
        }
        requests = [{"PutRequest": {"Item": serialize_item(i)}} for i in owned.values()]
        requests += [{"DeleteRequest": {"Key": _typed_key(k)}} for k in stale]
        requests.append({"PutRequest": {"Item": serialize_item(summary)}})
        requests += repo_requests
        self._batch_write(requests)

    def put_index(
        self, index_digest: str, children: Sequence[tuple[str, str | None]], meta: ScanMeta
    ) -> None:
        """Store a multi-arch push under its index digest, linking to one scan per child manifest
        (each stored by `put_scan` with `meta.index_digest` set). The repository lists the index."""
        refs = [ChildRef(digest=d, platform=p) for d, p in children]
        tags, repo_requests = self._repo_requests(
            digest=index_digest, kind="index", meta=meta, extra={"platform": None, "gate": None}
        )
        summary: Item = {
            "PK": image_pk(index_digest),
            "SK": SCAN_SK,
            "type": "scan",
            "kind": "index",
            "digest": index_digest,
            "registry": meta.registry,
            "repository": meta.repository,
            "tags": tags,
            "pushed_at": timestamp_key(meta.pushed_at),
            "scanned_at": timestamp_key(meta.scanned_at),
            "children": [r.model_dump(mode="json") for r in refs],
        }
        stale = self._existing_scan_keys(index_digest)  # an index has no findings of its own
        requests = [{"DeleteRequest": {"Key": _typed_key(k)}} for k in stale]
        requests.append({"PutRequest": {"Item": serialize_item(summary)}})
        requests += repo_requests
        self._batch_write(requests)

    def _put_sbom(self, scan: ImageScan) -> str:
        key = sbom_key(scan.image.digest)
        body = {
            "format": "lifeguard-sbom",
            "version": 1,
            "image": scan.image.model_dump(mode="json"),
            "packages": [p.model_dump(mode="json") for p in scan.packages],
        }
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, separators=(",", ":")).encode(),
            ContentType="application/json",
        )
        return key

    def _scan_owned_items(
        self, scan: ImageScan, meta: ScanMeta, index_digest: str | None
    ) -> dict[tuple[str, str], Item]:
        """Findings (+ one pointer item per alias), secrets and misconfigurations, keyed by (PK, SK)
        so that duplicates collapse (DynamoDB rejects a batch with a key twice)."""
        digest = scan.image.digest
        pk = image_pk(digest)
        where = {
            "digest": digest,
            "index_digest": index_digest,
            "registry": meta.registry,
            "repository": meta.repository,
        }
        items = self._finding_items(digest, scan.vulnerabilities, where)
        for secret in scan.secrets:
            item = {"PK": pk, "SK": secret_sk(secret), "type": "secret", **secret.model_dump(mode="json")}
            items[(pk, item["SK"])] = item
        for misconf in scan.misconfigurations:
            item = {"PK": pk, "SK": misconf_sk(misconf), "type": "misconf", **misconf.model_dump(mode="json")}
            items[(pk, item["SK"])] = item
        return items

    def _finding_items(
        self, digest: str, vulnerabilities: Iterable[Vulnerability], where: Mapping[str, Any]
    ) -> dict[tuple[str, str], Item]:
        """The finding items of an image (+ one pointer item per alias), keyed by (PK, SK).
        `where` is copied onto each (digest, index digest, registry, repository: the blast radius)."""
        pk = image_pk(digest)
        items: dict[tuple[str, str], Item] = {}
        for vuln in vulnerabilities:
            fields = vuln.model_dump(mode="json")
            finding: Item = {
                "PK": pk,
                "SK": finding_sk(vuln),
                "type": "finding",
                "GSI1PK": vuln_gsi_pk(vuln.id),
                "GSI1SK": vuln_gsi_sk(digest, vuln),
                "severity_rank": vuln.severity.rank,
                **fields,
                **where,
            }
            items[(pk, finding["SK"])] = finding
            primary = vuln.id.upper()
            for alias in dict.fromkeys(a for a in vuln.aliases if a and a.upper() != primary):
                pointer = {k: v for k, v in finding.items() if k != "summary"}
                pointer.update(
                    SK=alias_sk(alias, vuln),
                    type="alias",
                    GSI1PK=vuln_gsi_pk(alias),
                    matched_alias=alias,
                )
                items[(pk, pointer["SK"])] = pointer
        return items

    def _existing_scan_keys(self, digest: str) -> list[dict[str, str]]:
        """Keys of the items an earlier scan of this digest wrote (consistent read: a re-scan
        must see the previous one's writes to delete what it no longer finds)."""
        keys: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "PK", "#sk": "SK"},
            "ExpressionAttributeValues": {":pk": {"S": image_pk(digest)}},
            "ProjectionExpression": "#pk, #sk",
            "ConsistentRead": True,
        }
        while True:
            resp = self._ddb.query(**kwargs)
            for raw in resp.get("Items", []):
                key = _plain_key(raw)
                if key["SK"].startswith(SCAN_OWNED_PREFIXES):
                    keys.append(key)
            if not resp.get("LastEvaluatedKey"):
                return keys
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _repo_requests(
        self, *, digest: str, kind: str, meta: ScanMeta, extra: Mapping[str, Any]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """The repository listing item for (repository, digest), plus its pointer.

        The listing is sorted by push time, so its sort key moves when a digest is pushed again
        (a new tag): the pointer `DIGEST#<digest>` remembers the current listing key so the old
        one is deleted and each digest is listed once. An older push time never moves it back
        (events arrive out of order); tags accumulate (tags seen pushed for this digest)."""
        pk = repo_pk(meta.registry, meta.repository)
        pointer = self._get_item(pk, repo_pointer_sk(digest))
        pushed_at = meta.pushed_at
        tags = list(meta.tags)
        requests: list[dict[str, Any]] = []
        if pointer is not None:
            tags = _merge_tags(pointer.get("tags") or [], meta.tags)
            previous = datetime.fromisoformat(str(pointer["pushed_at"]))
            pushed_at = max(pushed_at, previous)
        new_sk = repo_image_sk(pushed_at, digest)
        if pointer is not None and pointer.get("image_sk") != new_sk:
            requests.append(
                {"DeleteRequest": {"Key": _typed_key({"PK": pk, "SK": str(pointer["image_sk"])})}}
            )
        listing: Item = {
            "PK": pk,
            "SK": new_sk,
            "type": "repo_image",
            "GSI1PK": repo_name_gsi_pk(meta.repository),
            "GSI1SK": repo_name_gsi_sk(pushed_at, meta.registry, digest),
            "digest": digest,
            "kind": kind,
            "registry": meta.registry,
            "repository": meta.repository,
            "tags": tags,
            "pushed_at": timestamp_key(pushed_at),
            **extra,
        }
        marker: Item = {
            "PK": pk,
            "SK": repo_pointer_sk(digest),
            "type": "repo_digest",
            "image_sk": new_sk,
            "pushed_at": timestamp_key(pushed_at),
            "tags": tags,
        }
        requests += [
            {"PutRequest": {"Item": serialize_item(listing)}},
            {"PutRequest": {"Item": serialize_item(marker)}},
        ]
        return tags, requests

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            self._write_chunk(list(requests[start : start + BATCH_WRITE_MAX]))

    def _write_chunk(self, pending: list[dict[str, Any]]) -> None:
        """One BatchWriteItem, then its UnprocessedItems again after 0.05, 0.1, 0.2 ... s (capped),
        at most `max_attempts` calls in all. botocore already retries throttling errors; partial
        success is ours to retry."""
        for attempt in range(self._max_attempts):
            resp = self._ddb.batch_write_item(RequestItems={self.table_name: pending})
            pending = list((resp.get("UnprocessedItems") or {}).get(self.table_name) or [])
            if not pending:
                return
            if attempt + 1 < self._max_attempts:
                self._sleep(min(self._base_delay * 2**attempt, self._max_delay))
        raise StoreError(
            f"{len(pending)} writes to {self.table_name} still unprocessed "
            f"after {self._max_attempts} attempts"
        )

    # -- re-matching (docs/DATA.md, "Re-matching") --------------------------------------------------

    def iter_image_digests(self, *, not_db_version: str | None = None, page_size: int = 500) -> Iterator[str]:
        """Every scanned image's digest (not multi-arch indexes: they have no SBOM of their own),
        read page by page from the sparse `SCANS#<shard>` GSI1 partitions, never a table scan.
        `not_db_version` leaves out images whose findings already come from that index."""
        for shard in IMAGE_LIST_SHARDS:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": GSI1,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "GSI1PK", "#d": "digest"},
                "ExpressionAttributeValues": serialize_item({":pk": f"SCANS#{shard}"}),
                "ProjectionExpression": "#d",
                "Limit": page_size,
            }
            if not_db_version is not None:
                kwargs["FilterExpression"] = "attribute_not_exists(#v) OR #v <> :v"
                kwargs["ExpressionAttributeNames"]["#v"] = "db_version"
                kwargs["ExpressionAttributeValues"][":v"] = {"S": not_db_version}
            while True:
                resp = self._ddb.query(**kwargs)
                for raw in resp.get("Items", []):
                    yield str(raw["digest"]["S"])
                if not resp.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def get_sbom(self, digest: str) -> StoredSbom | None:
        """The SBOM `put_scan` stored for `digest`, or None when there is none (no bucket, or the
        object is gone)."""
        if not self.bucket or self._s3 is None:
            return None
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=sbom_key(digest))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        return StoredSbom.model_validate_json(body)

    def get_findings(self, digest: str) -> list[Vulnerability]:
        """All of an image's findings (consistent read), in key order: worst severity first."""
        items = self._query_all(image_pk(digest), FINDING_PREFIX, consistent=True)
        return [Vulnerability.model_validate(_model_fields(i, Vulnerability.model_fields)) for i in items]

    def apply_rematch(self, write: RematchWrite) -> bool:
        """Store one image's re-match: change records, then the new findings set (puts of what
        differs, deletes of what is gone: secrets and misconfigurations are left alone), then the
        repository listing's copy of gate and counts, then the summary, last, because its
        `db_version` is what makes a redelivered message a no-op. A crash half-way is repaired by
        the redelivery: change record keys are deterministic (the batch's `detected_at`), and
        finding writes are idempotent.

        Returns False when the summary already records `write.db_version` (a duplicate delivery
        finished first). Raises NotFoundError when the image has no summary, StoreError when the
        summary changed under us in another way (a re-scan): the message is then retried."""
        pk = image_pk(write.digest)
        summary = self._get_item(pk, SCAN_SK)
        if summary is None:
            raise NotFoundError(f"no scan of image {write.digest}")
        where = {k: summary.get(k) for k in ("digest", "index_digest", "registry", "repository")}

        requests = [{"PutRequest": {"Item": serialize_item(self._change_item(c))}} for c in write.changes]
        wanted = self._finding_items(write.digest, write.vulnerabilities, where)
        existing = {
            (str(i["PK"]), str(i["SK"])): i
            for prefix in FINDING_OWNED_PREFIXES
            for i in self._query_all(pk, prefix, consistent=True)
        }
        for key, item in wanted.items():
            if existing.get(key) != deserialize_item(serialize_item(item)):
                requests.append({"PutRequest": {"Item": serialize_item(item)}})
        requests += [
            {"DeleteRequest": {"Key": _typed_key({"PK": p, "SK": k})}}
            for p, k in existing
            if (p, k) not in wanted
        ]
        self._batch_write(requests)

        counts = {s.value: 0 for s in SEVERITIES_WORST_FIRST}
        for vuln in write.vulnerabilities:
            counts[vuln.severity.value] += 1
        listed = summary.get("index_digest") is None and summary.get("registry") and summary.get("repository")
        moved = summary.get("vulnerabilities") != counts or summary.get("gate") != write.gate
        if listed and moved:
            self._update_listing(str(summary["registry"]), str(summary["repository"]), write, counts)
        return self._update_summary(pk, write, counts)

    def _change_item(self, change: ChangeRecord) -> Item:
        return {
            "PK": image_pk(change.digest),
            "SK": change_sk(change),
            "type": "change",
            "GSI1PK": changes_gsi_pk(as_utc(change.detected_at).date()),
            "GSI1SK": changes_gsi_sk(change),
            **change.model_dump(mode="json"),
            "detected_at": timestamp_key(change.detected_at),
        }

    def _update_listing(self, registry: str, repository: str, write: RematchWrite, counts: Item) -> None:
        """The repository listing item copies gate and counts from the scan: keep them in step."""
        pk = repo_pk(registry, repository)
        pointer = self._get_item(pk, repo_pointer_sk(write.digest))
        if pointer is None or not pointer.get("image_sk"):
            return
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_typed_key({"PK": pk, "SK": str(pointer["image_sk"])}),
                UpdateExpression="SET #g = :g, #v = :v",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#g": "gate", "#v": "vulnerabilities"},
                ExpressionAttributeValues=serialize_item({":g": write.gate, ":v": counts}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # a listing moved by a concurrent push is rewritten by that push's scan

    def _update_summary(self, pk: str, write: RematchWrite, counts: Item) -> bool:
        names = {
            "#vulns": "vulnerabilities",
            "#db": "db_version",
            "#gate": "gate",
            "#reasons": "reasons",
            "#policy": "policy",
            "#at": "rematched_at",
            "#scanned": "scanned_at",
        }
        values: Item = {
            ":vulns": counts,
            ":db": write.db_version,
            ":gate": write.gate,
            ":reasons": list(write.reasons),
            ":policy": write.policy,
            ":at": timestamp_key(write.rematched_at),
        }
        sets = ["#vulns = :vulns", "#db = :db", "#gate = :gate", "#reasons = :reasons", "#at = :at"]
        sets.append("#policy = :policy")
        if write.suppressed is not None:
            names["#supp"] = "suppressed"
            values[":supp"] = write.suppressed
            sets.append("#supp = :supp")
        conditions = ["attribute_exists(PK)"]
        if write.expected_scanned_at is not None:
            values[":scanned"] = timestamp_key(write.expected_scanned_at)
            conditions.append("#scanned = :scanned")
        if write.expected_db_version is None:
            values[":null"] = "NULL"
            conditions.append("(attribute_not_exists(#db) OR attribute_type(#db, :null))")
        else:
            values[":expected"] = write.expected_db_version
            conditions.append("#db = :expected")
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_typed_key({"PK": pk, "SK": SCAN_SK}),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize_item(values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self._get_item(pk, SCAN_SK)
            if current is not None and current.get("db_version") == write.db_version:
                return False
            raise StoreError(
                f"the summary of {write.digest} changed during its re-match (a re-scan?): retry"
            ) from exc
        return True

    def list_changes(
        self, digest: str, cursor: str | None = None, limit: int | None = None
    ) -> Page[ChangeRecord]:
        """An image's change records, newest first."""
        pk = image_pk(digest)
        items, next_cursor = self._query_prefix(
            scope_of("changes", digest), pk, CHANGE_PREFIX, forward=False, cursor=cursor, limit=limit
        )
        return Page[ChangeRecord](
            items=[ChangeRecord.model_validate(_model_fields(i, ChangeRecord.model_fields)) for i in items],
            next_cursor=next_cursor,
        )

    def recent_changes(
        self, day: date, cursor: str | None = None, limit: int | None = None
    ) -> Page[ChangeRecord]:
        """Every image's change records detected on `day` (UTC), newest first: one GSI1 partition
        per day, `CHANGES#<yyyy-mm-dd>`."""
        gsi_pk = changes_gsi_pk(day)
        items, next_cursor = self._query_gsi1(
            "recent-changes", gsi_pk, forward=False, cursor=cursor, limit=limit
        )
        return Page[ChangeRecord](
            items=[ChangeRecord.model_validate(_model_fields(i, ChangeRecord.model_fields)) for i in items],
            next_cursor=next_cursor,
        )

    # -- reads -------------------------------------------------------------------------------------

    def get_image(self, digest: str) -> ImageRecord | None:
        """The summary of an image, or of a multi-arch index with each child's summary."""
        item = self._get_item(image_pk(digest), SCAN_SK)
        if item is None:
            return None
        record = _record_from_item(item)
        if record.kind != "index":
            return record
        refs = [ChildRef.model_validate(c) for c in item.get("children") or []]
        found = self._batch_get_scans([r.digest for r in refs])
        children = [
            ChildImage(
                digest=r.digest,
                platform=r.platform,
                image=_record_from_item(found[r.digest]) if r.digest in found else None,
            )
            for r in refs
        ]
        gates = [c.image.gate if c.image else None for c in children]
        gate: str | None = None
        if "fail" in gates:
            gate = "fail"
        elif gates and all(g == "pass" for g in gates):
            gate = "pass"
        reasons = [
            f"{c.platform or c.digest}: {reason}" for c in children if c.image for reason in c.image.reasons
        ]
        return record.model_copy(update={"children": children, "gate": gate, "reasons": reasons})

    def list_findings(
        self,
        digest: str,
        severity: Severity | Collection[Severity] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Vulnerability]:
        """An image's findings, worst severity first, then by id (the sort key does the sorting).
        One severity is a key prefix; several become a key range, plus a filter when they are not
        adjacent (e.g. CRITICAL,LOW)."""
        wanted = _severity_set(severity)
        pk = image_pk(digest)
        values: dict[str, Any] = {":pk": pk}
        names = {"#pk": "PK", "#sk": "SK"}
        filter_expression: str | None = None
        if not wanted:
            condition = "#pk = :pk AND begins_with(#sk, :prefix)"
            values[":prefix"] = FINDING_PREFIX
        else:
            digits = sorted(int(severity_key(s)) for s in wanted)
            if len(digits) == 1:
                condition = "#pk = :pk AND begins_with(#sk, :prefix)"
                values[":prefix"] = f"{FINDING_PREFIX}{digits[0]}#"
            else:
                condition = "#pk = :pk AND #sk BETWEEN :lo AND :hi"
                values[":lo"] = f"{FINDING_PREFIX}{digits[0]}#"
                values[":hi"] = f"{FINDING_PREFIX}{digits[-1]}$"  # '$' sorts right after '#'
                if digits[-1] - digits[0] + 1 != len(digits):
                    names["#sev"] = "severity"
                    placeholders = []
                    for n, sev in enumerate(sorted(wanted, key=lambda s: -s.rank)):
                        values[f":s{n}"] = sev.value
                        placeholders.append(f":s{n}")
                    filter_expression = f"#sev IN ({', '.join(placeholders)})"
        scope = scope_of("findings", digest, ",".join(sorted(s.value for s in wanted)))
        items, next_cursor = self._query_page(
            scope=scope,
            index=None,
            partition=("PK", pk),
            key_condition=condition,
            names=names,
            values=values,
            filter_expression=filter_expression,
            forward=True,
            cursor=cursor,
            limit=limit,
        )
        vulns = [Vulnerability.model_validate(_model_fields(i, Vulnerability.model_fields)) for i in items]
        return Page[Vulnerability](items=vulns, next_cursor=next_cursor)

    def _query_prefix(
        self, scope: str, pk: str, prefix: str, *, forward: bool, cursor: str | None, limit: int | None
    ) -> tuple[list[Item], str | None]:
        """One page of the items of partition `pk` whose sort key starts with `prefix`."""
        return self._query_page(
            scope=scope,
            index=None,
            partition=("PK", pk),
            key_condition="#pk = :pk AND begins_with(#sk, :prefix)",
            names={"#pk": "PK", "#sk": "SK"},
            values={":pk": pk, ":prefix": prefix},
            filter_expression=None,
            forward=forward,
            cursor=cursor,
            limit=limit,
        )

    def _query_gsi1(
        self, scope: str, gsi_pk: str, *, forward: bool, cursor: str | None, limit: int | None
    ) -> tuple[list[Item], str | None]:
        """One page of a whole GSI1 partition (blast radius, repository by name, changes by day)."""
        return self._query_page(
            scope=scope_of(scope, gsi_pk),
            index=GSI1,
            partition=("GSI1PK", gsi_pk),
            key_condition="#pk = :pk",
            names={"#pk": "GSI1PK"},
            values={":pk": gsi_pk},
            filter_expression=None,
            forward=forward,
            cursor=cursor,
            limit=limit,
        )

    def images_for_vulnerability(
        self, vuln_id: str, cursor: str | None = None, limit: int | None = None
    ) -> Page[AffectedImage]:
        """Every stored finding of `vuln_id` (primary id or alias, case-insensitive), by image
        digest. A platform of a multi-arch image is listed with its `index_digest`."""
        gsi_pk = vuln_gsi_pk(vuln_id)
        items, next_cursor = self._query_gsi1("vuln", gsi_pk, forward=True, cursor=cursor, limit=limit)
        affected = [
            AffectedImage.model_validate(
                {"vulnerability_id": i["id"], **_model_fields(i, AffectedImage.model_fields)}
            )
            for i in items
        ]
        return Page[AffectedImage](items=affected, next_cursor=next_cursor)

    def images_for_repository(
        self,
        registry: str | None,
        repository: str,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[RepositoryImage]:
        """Images pushed to a repository, newest push first. Without a registry, the repository
        name is looked up across every registry (through the GSI)."""
        if registry:
            pk = repo_pk(registry, repository)
            items, next_cursor = self._query_prefix(
                scope_of("repo", pk), pk, REPO_IMAGE_PREFIX, forward=False, cursor=cursor, limit=limit
            )
        else:
            gsi_pk = repo_name_gsi_pk(repository)
            items, next_cursor = self._query_gsi1(
                "reponame", gsi_pk, forward=False, cursor=cursor, limit=limit
            )
        images = [
            RepositoryImage.model_validate(_model_fields(i, RepositoryImage.model_fields)) for i in items
        ]
        return Page[RepositoryImage](items=images, next_cursor=next_cursor)

    def list_secrets(self, digest: str) -> list[SecretFinding]:
        """An image's secret findings (masked values and fingerprints only)."""
        items = self._query_all(image_pk(digest), SECRET_PREFIX)
        return [SecretFinding.model_validate(_model_fields(i, SecretFinding.model_fields)) for i in items]

    def list_misconfigurations(self, digest: str) -> list[Misconfiguration]:
        items = self._query_all(image_pk(digest), MISCONF_PREFIX)
        return [
            Misconfiguration.model_validate(_model_fields(i, Misconfiguration.model_fields)) for i in items
        ]

    # -- trust: signatures and the audit trail -----------------------------------------------------

    def put_signature(self, record: SignatureRecord) -> None:
        item: Item = {
            "PK": image_pk(record.digest),
            "SK": signature_sk(record.key),
            "type": "signature",
            **record.model_dump(mode="json"),
        }
        self._batch_write([{"PutRequest": {"Item": serialize_item(item)}}])

    def get_signatures(self, digest: str) -> list[SignatureRecord]:
        """Every key's signature on an image."""
        items = self._query_all(image_pk(digest), SIGNATURE_PREFIX, consistent=True)
        return [SignatureRecord.model_validate(_model_fields(i, SignatureRecord.model_fields)) for i in items]

    def flag_signatures(self, digest: str, reasons: Sequence[str], at: datetime) -> int:
        """Mark every signature of a signed image whose gate has since failed; returns how many
        were flagged. A signature already flagged keeps its first flag time."""
        flagged = 0
        for record in self.get_signatures(digest):
            if record.flagged:
                continue
            update = {"flagged": True, "flagged_at": as_utc(at), "flag_reasons": list(reasons)}
            self.put_signature(record.model_copy(update=update))
            flagged += 1
        return flagged

    def trust_facts(self, digests: Sequence[str], key: str | None) -> dict[str, TrustFacts]:
        """Scan summary and the `key` signature of each digest, in BatchGetItem calls (one for up
        to 50 digests): what the ECS handler and the admission webhook decide from."""
        unique = list(dict.fromkeys(digests))
        facts = {d: TrustFacts(digest=d) for d in unique}
        keys = [{"PK": image_pk(d), "SK": SCAN_SK} for d in unique]
        if key:
            keys += [{"PK": image_pk(d), "SK": signature_sk(key)} for d in unique]
        for item in self._batch_get(keys):
            digest = str(item["digest"])
            if digest not in facts:
                continue
            if item.get("SK") == SCAN_SK:
                facts[digest].image = _record_from_item(item)
            else:
                facts[digest].signature = SignatureRecord.model_validate(
                    _model_fields(item, SignatureRecord.model_fields)
                )
        return facts

    def put_changes(self, changes: Sequence[ChangeRecord]) -> None:
        """Change records written outside a re-match (a re-scan that flipped the verdict)."""
        self._batch_write([{"PutRequest": {"Item": serialize_item(self._change_item(c))}} for c in changes])

    def put_audit(self, record: AuditRecord) -> None:
        item: Item = {
            "PK": audit_pk(record.at.date()),
            "SK": audit_sk(record),
            "type": "audit",
            **record.model_dump(mode="json"),
        }
        self._batch_write([{"PutRequest": {"Item": serialize_item(item)}}])

    def list_audit(
        self, day: date, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[AuditRecord]:
        """One day's audit records, newest first."""
        pk = audit_pk(day)
        items, next_cursor = self._query_page(
            scope=scope_of("audit", pk),
            index=None,
            partition=("PK", pk),
            key_condition="#pk = :pk",
            names={"#pk": "PK"},
            values={":pk": pk},
            filter_expression=None,
            forward=False,
            cursor=cursor,
            limit=limit,
        )
        records = [AuditRecord.model_validate(_model_fields(i, AuditRecord.model_fields)) for i in items]
        return Page[AuditRecord](items=records, next_cursor=next_cursor)

    # -- read plumbing -----------------------------------------------------------------------------

    def _get_item(self, pk: str, sk: str) -> Item | None:
        resp = self._ddb.get_item(
            TableName=self.table_name, Key=_typed_key({"PK": pk, "SK": sk}), ConsistentRead=True
        )
        raw = resp.get("Item")
        return deserialize_item(raw) if raw else None

    def _batch_get_scans(self, digests: Sequence[str]) -> dict[str, Item]:
        keys = [{"PK": image_pk(d), "SK": SCAN_SK} for d in dict.fromkeys(digests)]
        return {str(item["digest"]): item for item in self._batch_get(keys)}

    def _batch_get(self, keys: Sequence[Mapping[str, str]]) -> list[Item]:
        """The items of `keys` that exist, 100 keys a call, retrying UnprocessedKeys."""
        found: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            typed = [_typed_key(k) for k in keys[start : start + BATCH_GET_MAX]]
            request: dict[str, Any] = {self.table_name: {"Keys": typed, "ConsistentRead": True}}
            for attempt in range(self._max_attempts):
                resp = self._ddb.batch_get_item(RequestItems=request)
                found += [deserialize_item(raw) for raw in resp.get("Responses", {}).get(self.table_name, [])]
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt + 1 < self._max_attempts:
                    self._sleep(min(self._base_delay * 2**attempt, self._max_delay))
            else:
                raise StoreError(
                    f"reads from {self.table_name} still unprocessed after {self._max_attempts} attempts"
                )
        return found

    def _query_all(self, pk: str, prefix: str, *, consistent: bool = False) -> list[Item]:
        items: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "PK", "#sk": "SK"},
            "ExpressionAttributeValues": serialize_item({":pk": pk, ":prefix": prefix}),
            "ConsistentRead": consistent,
        }
        while True:
            resp = self._ddb.query(**kwargs)
            items += [deserialize_item(raw) for raw in resp.get("Items", [])]
            if not resp.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _query_page(
        self,
        *,
        scope: str,
        index: str | None,
        partition: tuple[str, str],
        key_condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        filter_expression: str | None,
        forward: bool,
        cursor: str | None,
        limit: int | None,
    ) -> tuple[list[Item], str | None]:
        """One page of exactly `limit` items (fewer only on the last page).

        Reads limit+1 items so the last page says so (next_cursor None) instead of handing out a
        cursor to an empty page. The cursor is the key of the last item *returned*, not DynamoDB's
        LastEvaluatedKey: with a filter, or with the extra item, those differ."""
        size = check_limit(limit)
        key_names = _GSI1_KEYS if index else _TABLE_KEYS
        start = decode_cursor(cursor, scope, key_names, partition)
        collected: list[Item] = []
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": key_condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize_item(values),
                "ScanIndexForward": forward,
                "Limit": size + 1 - len(collected),
            }
            if index:
                kwargs["IndexName"] = index
            if filter_expression:
                kwargs["FilterExpression"] = filter_expression
            if start:
                kwargs["ExclusiveStartKey"] = _typed_key(start)
            resp = self._ddb.query(**kwargs)
            collected += [deserialize_item(raw) for raw in resp.get("Items", [])]
            last_key = resp.get("LastEvaluatedKey")
            if len(collected) > size or not last_key:
                break
            start = _plain_key(last_key)
        if len(collected) <= size:
            return collected, None
        page = collected[:size]
        return page, encode_cursor({k: str(page[-1][k]) for k in key_names}, scope)


def _severity_set(severity: Severity | Collection[Severity] | None) -> frozenset[Severity]:
    if severity is None:
        return frozenset()
    if isinstance(severity, str):
        return frozenset({Severity(severity)})
    return frozenset(Severity(s) for s in severity)


def _record_from_item(item: Mapping[str, Any]) -> ImageRecord:
    fields = _model_fields(item, (f for f in ImageRecord.model_fields if f != "children"))
    return ImageRecord.model_validate(fields)


__all__ = [
    "BATCH_WRITE_MAX",
    "GSI1",
    "ScanStore",
    "deserialize_item",
    "serialize_item",
    "timestamp_key",
]
