"""ScanStore against moto in-process: exact items, batching, retries, pagination and the reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import InputError, StoreError
from chalicelib.models import (
    SEVERITIES_WORST_FIRST,
    ImageInfo,
    ImageScan,
    Misconfiguration,
    OSInfo,
    Package,
    ScanSummary,
    SecretFinding,
    Severity,
    Vulnerability,
)
from chalicelib.pagination import encode_cursor
from chalicelib.store import ScanStore, finding_sk, finding_tail, misconf_sk, secret_sk
from chalicelib.store_models import ScanMeta

REGION = "us-east-1"
TABLE = "lifeguard-test"
BUCKET = "lifeguard-sboms-test"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def dg(n: int) -> str:
    return f"sha256:{n:064x}"


def vuln(
    vid: str,
    package: str = "openssl",
    severity: Severity = Severity.HIGH,
    *,
    aliases: list[str] | None = None,
    installed: str = "3.0.11-1~deb12u1",
    fixed: str | None = "3.0.13-1~deb12u1",
    cvss: float | None = None,
    ecosystem: str = "Debian:12",
    path: str = "var/lib/dpkg/status",
) -> Vulnerability:
    return Vulnerability(
        id=vid,
        aliases=aliases or [],
        package=package,
        ecosystem=ecosystem,
        installed_version=installed,
        fixed_version=fixed,
        severity=severity,
        cvss_score=cvss,
        path=path,
        purl=f"pkg:deb/debian/{package}@{installed}?arch=amd64",
        summary=f"summary of {vid}",
    )


def scan_of(
    digest: str,
    vulns: list[Vulnerability],
    *,
    platform: str = "linux/amd64",
    gate: Literal["pass", "fail"] = "pass",
    reasons: list[str] | None = None,
    secrets: list[SecretFinding] | None = None,
    misconfs: list[Misconfiguration] | None = None,
) -> ImageScan:
    packages = [
        Package(
            name="openssl",
            version="3.0.11-1~deb12u1",
            ecosystem="Debian:12",
            purl="pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64",
            path="var/lib/dpkg/status",
            layer="sha256:" + "1" * 64,
        ),
        Package(
            name="zlib1g",
            version="1:1.2.13.dfsg-1",
            ecosystem="Debian:12",
            purl="pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64",
            source_name="zlib",
            path="var/lib/dpkg/status",
            layer="sha256:" + "1" * 64,
        ),
    ]
    return ImageScan(
        image=ImageInfo(
            digest=digest,
            config_digest="sha256:" + "c" * 64,
            platform=platform,
            os=OSInfo(family="debian", version="12"),
        ),
        packages=packages,
        vulnerabilities=vulns,
        secrets=secrets or [],
        misconfigurations=misconfs or [],
        summary=ScanSummary(
            gate=gate,
            reasons=reasons or [],
            db_version="2024-05-01T00:00:00Z",
            suppressed=1,
        ),
    )


def meta(
    repository: str = "payments/api",
    pushed_at: datetime = T0,
    *,
    tags: list[str] | None = None,
    registry: str = REGISTRY,
    index_digest: str | None = None,
) -> ScanMeta:
    return ScanMeta(
        registry=registry,
        repository=repository,
        tags=["v1"] if tags is None else tags,
        pushed_at=pushed_at,
        scanned_at=T0 + timedelta(minutes=5),
        index_digest=index_digest,
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def ddb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def store(ddb: Any, s3: Any) -> ScanStore:
    st = ScanStore(TABLE, BUCKET, ddb, s3, sleep=lambda _s: None)
    st.create_table()
    st.create_bucket()
    return st


def all_items(ddb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        resp = ddb.scan(**kwargs)
        items += resp["Items"]
        if "LastEvaluatedKey" not in resp:
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def all_keys(ddb: Any) -> list[tuple[str, str]]:
    return sorted((i["PK"]["S"], i["SK"]["S"]) for i in all_items(ddb))


def raw_item(ddb: Any, pk: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}})["Item"]
    return item


class BatchRecorder:
    """Counts BatchWriteItem calls and their sizes through botocore's event hooks (the real
    client, so moto still does the work)."""

    def __init__(self, client: Any) -> None:
        self.sizes: list[int] = []
        client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.sizes.append(sum(len(v) for v in params["RequestItems"].values()))


# --- writes: exact items ------------------------------------------------------------------------


def test_put_scan_writes_exact_items(store: ScanStore, ddb: Any, s3: Any) -> None:
    d = dg(1)
    v1 = vuln("CVE-2024-0001", "openssl", Severity.CRITICAL, aliases=["GHSA-aaaa-bbbb-cccc"], cvss=9.8)
    v2 = vuln("CVE-2024-0002", "zlib1g", Severity.MEDIUM, installed="1:1.2.13.dfsg-1", fixed=None)
    v3 = vuln("CVE-2024-0003", "openssl", Severity.LOW, cvss=3.1)
    secret = SecretFinding(
        rule_id="aws-access-key-id",
        severity=Severity.CRITICAL,
        path="app/.env",
        line=3,
        masked="AKIA************MPLE",
        fingerprint="fp1",
    )
    misconf = Misconfiguration(
        id="LG-CFG-001",
        severity=Severity.HIGH,
        title="Runs as root",
        message="no USER",
        remediation="add USER",
    )
    scan = scan_of(
        d, [v1, v2, v3], gate="fail", reasons=["CRITICAL CVE-2024-0001"], secrets=[secret], misconfs=[misconf]
    )
    store.put_scan(scan, meta(tags=["v1", "latest"]))

    pk = f"IMAGE#{d}"
    tail1 = finding_tail(v1)
    assert all_keys(ddb) == sorted(
        [
            (pk, "SCAN"),
            (pk, f"VULN#0#{tail1}"),
            (pk, f"VULN#2#{finding_tail(v2)}"),
            (pk, f"VULN#3#{finding_tail(v3)}"),
            (pk, f"ALIAS#GHSA-aaaa-bbbb-cccc#{tail1}"),
            (pk, secret_sk(secret)),
            (pk, misconf_sk(misconf)),
            (f"REPO#{REGISTRY}/payments/api", f"IMAGE#2024-05-01T12:00:00.000000Z#{d}"),
            (f"REPO#{REGISTRY}/payments/api", f"DIGEST#{d}"),
        ]
    )
    assert secret_sk(secret).startswith("SECRET#fp1#")
    assert misconf_sk(misconf).startswith("MISCONF#LG-CFG-001#")

    summary = raw_item(ddb, pk, "SCAN")
    assert summary["kind"] == {"S": "image"}
    assert summary["vulnerabilities"] == {
        "M": {
            "CRITICAL": {"N": "1"},
            "HIGH": {"N": "0"},
            "MEDIUM": {"N": "1"},
            "LOW": {"N": "1"},
            "UNKNOWN": {"N": "0"},
        }
    }
    assert summary["packages"] == {"N": "2"}
    assert summary["secrets"] == {"N": "1"}
    assert summary["sbom_key"] == {"S": f"sboms/{d}.json"}
    assert summary["tags"] == {"L": [{"S": "v1"}, {"S": "latest"}]}
    assert summary["index_digest"] == {"NULL": True}

    finding = raw_item(ddb, pk, f"VULN#0#{tail1}")
    assert finding["cvss_score"] == {"N": "9.8"}
    assert finding["severity_rank"] == {"N": "4"}
    assert finding["GSI1PK"] == {"S": "VULN#CVE-2024-0001"}
    assert finding["GSI1SK"] == {"S": f"IMAGE#{d}#{tail1}"}
    alias = raw_item(ddb, pk, f"ALIAS#GHSA-aaaa-bbbb-cccc#{tail1}")
    assert alias["GSI1PK"] == {"S": "VULN#GHSA-AAAA-BBBB-CCCC"}
    assert alias["matched_alias"] == {"S": "GHSA-aaaa-bbbb-cccc"}
    assert "summary" not in alias

    sbom = json.loads(s3.get_object(Bucket=BUCKET, Key=f"sboms/{d}.json")["Body"].read())
    assert sbom["image"]["digest"] == d
    assert [p["name"] for p in sbom["packages"]] == ["openssl", "zlib1g"]

    assert store.list_secrets(d) == [secret]
    assert store.list_misconfigurations(d) == [misconf]


def test_get_image_converts_numbers_and_dates(store: ScanStore) -> None:
    d = dg(2)
    store.put_scan(scan_of(d, [vuln("CVE-2024-0001", cvss=7.5)], gate="fail", reasons=["r1"]), meta())
    record = store.get_image(d)
    assert record is not None
    assert record.kind == "image"
    assert record.repository == "payments/api"
    assert record.registry == REGISTRY
    assert record.pushed_at == T0
    assert record.scanned_at == T0 + timedelta(minutes=5)
    assert record.vulnerabilities == {
        Severity.CRITICAL: 0,
        Severity.HIGH: 1,
        Severity.MEDIUM: 0,
        Severity.LOW: 0,
        Severity.UNKNOWN: 0,
    }
    assert type(record.packages) is int and record.packages == 2
    assert record.os is not None and record.os.family == "debian"
    assert (record.gate, record.reasons, record.suppressed) == ("fail", ["r1"], 1)
    assert record.db_version == "2024-05-01T00:00:00Z"
    [finding] = store.list_findings(d).items
    assert type(finding.cvss_score) is float and finding.cvss_score == 7.5
    assert store.get_image(dg(999)) is None


def test_rescan_replaces_findings_and_leaves_no_stale_items(store: ScanStore, ddb: Any) -> None:
    d = dg(3)
    keep = vuln("CVE-2024-0001", aliases=["GHSA-keep-keep-keep"])
    gone = vuln("CVE-2024-0002", "zlib1g", aliases=["GHSA-gone-gone-gone"])
    moved = vuln("CVE-2024-0003", severity=Severity.LOW)
    store.put_scan(scan_of(d, [keep, gone, moved]), meta())
    assert len([k for _, k in all_keys(ddb) if k.startswith(("VULN#", "ALIAS#"))]) == 5

    rescored = vuln("CVE-2024-0003", severity=Severity.CRITICAL)  # severity changed: its key moves
    store.put_scan(scan_of(d, [keep, rescored]), meta())

    pk = f"IMAGE#{d}"
    finding_keys = sorted(k for p, k in all_keys(ddb) if p == pk and k != "SCAN")
    assert finding_keys == sorted(
        [finding_sk(keep), finding_sk(rescored), f"ALIAS#GHSA-keep-keep-keep#{finding_tail(keep)}"]
    )
    assert [v.id for v in store.list_findings(d).items] == ["CVE-2024-0003", "CVE-2024-0001"]
    assert store.images_for_vulnerability("CVE-2024-0002").items == []
    assert store.images_for_vulnerability("GHSA-gone-gone-gone").items == []
    record = store.get_image(d)
    assert record is not None and record.vulnerabilities is not None
    assert record.vulnerabilities[Severity.CRITICAL] == 1
    assert record.vulnerabilities[Severity.LOW] == 0
    # the repository still lists the digest once
    assert [i.digest for i in store.images_for_repository(REGISTRY, "payments/api").items] == [d]


def test_same_id_and_package_in_two_entries_stay_two_findings(store: ScanStore) -> None:
    d = dg(4)
    amd64 = vuln("CVE-2024-0001", "libc6")
    i386 = amd64.model_copy(update={"purl": "pkg:deb/debian/libc6@3.0.11-1~deb12u1?arch=i386"})
    store.put_scan(scan_of(d, [amd64, i386, amd64]), meta())
    items = store.list_findings(d).items
    assert sorted(v.purl or "" for v in items) == sorted([amd64.purl or "", i386.purl or ""])


# --- batching, retries --------------------------------------------------------------------------


def sixty_findings() -> list[Vulnerability]:
    return [vuln(f"CVE-2024-{i:04d}", severity=SEVERITIES_WORST_FIRST[i % 5]) for i in range(60)]


def test_sixty_findings_are_written_25_per_batch_and_paged(store: ScanStore, ddb: Any) -> None:
    recorder = BatchRecorder(ddb)
    d = dg(5)
    vulns = sixty_findings()
    store.put_scan(scan_of(d, vulns), meta())
    # 60 findings, then the summary, the repository listing and its pointer
    assert recorder.sizes == [25, 25, 13]

    expected = [v.id for v in sorted(vulns, key=lambda v: (-v.severity.rank, v.id))]
    assert expected[:3] == ["CVE-2024-0000", "CVE-2024-0005", "CVE-2024-0010"]
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = store.list_findings(d, None, cursor, 25)
        pages.append([v.id for v in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [25, 25, 10]
    assert [i for p in pages for i in p] == expected
    assert store.list_findings(d).items[0].severity is Severity.CRITICAL
    assert len(store.list_findings(d).items) == 50  # default limit
    assert store.list_findings(d, limit=60).next_cursor is None


def test_rescan_from_sixty_to_two_deletes_in_batches(store: ScanStore, ddb: Any) -> None:
    d = dg(6)
    vulns = sixty_findings()
    store.put_scan(scan_of(d, vulns), meta())
    recorder = BatchRecorder(ddb)
    store.put_scan(scan_of(d, vulns[:2]), meta())
    # 2 puts + 58 deletes + summary + listing + pointer
    assert recorder.sizes == [25, 25, 13]
    assert [v.id for v in store.list_findings(d).items] == ["CVE-2024-0000", "CVE-2024-0001"]


def test_severity_filters(store: ScanStore) -> None:
    d = dg(7)
    vulns = sixty_findings()
    store.put_scan(scan_of(d, vulns), meta())

    def ids(sevs: set[Severity]) -> list[str]:
        return [v.id for v in sorted(vulns, key=lambda v: (-v.severity.rank, v.id)) if v.severity in sevs]

    high = store.list_findings(d, Severity.HIGH)
    assert [v.id for v in high.items] == ids({Severity.HIGH})
    assert len(high.items) == 12
    adjacent = store.list_findings(d, {Severity.CRITICAL, Severity.HIGH}, limit=200)
    assert [v.id for v in adjacent.items] == ids({Severity.CRITICAL, Severity.HIGH})

    # not adjacent: key range + filter; pages must still be full and exact
    wanted = {Severity.CRITICAL, Severity.LOW}
    collected: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = store.list_findings(d, wanted, cursor, 5)
        collected += [v.id for v in page.items]
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert collected == ids(wanted)
    assert sizes == [5, 5, 5, 5, 4]


def test_cursor_and_limit_validation(store: ScanStore) -> None:
    d = dg(8)
    store.put_scan(scan_of(d, sixty_findings()), meta())
    store.put_scan(scan_of(dg(9), sixty_findings()), meta())
    cursor = store.list_findings(d, limit=10).next_cursor
    assert cursor is not None
    assert len(store.list_findings(d, cursor=cursor, limit=10).items) == 10

    for bad in ["not-base64!!", "e30", cursor[:-4]]:
        with pytest.raises(InputError, match="invalid cursor"):
            store.list_findings(d, cursor=bad)
    with pytest.raises(InputError, match="invalid cursor"):  # another image's cursor
        store.list_findings(dg(9), cursor=cursor)
    with pytest.raises(InputError, match="invalid cursor"):  # another filter's cursor
        store.list_findings(d, Severity.HIGH, cursor=cursor)
    from chalicelib.pagination import scope_of

    forged = encode_cursor({"PK": f"IMAGE#{dg(9)}", "SK": "VULN#"}, scope_of("findings", d, ""))
    with pytest.raises(InputError, match="invalid cursor"):  # right scope, wrong partition
        store.list_findings(d, cursor=forged)
    for limit in (0, 201, -1):
        with pytest.raises(InputError, match="limit"):
            store.list_findings(d, limit=limit)


class FlakyBatchClient:
    """Delegates to a real client, but BatchWriteItem leaves work unprocessed: the second half of
    the first `flaky_calls` calls (or everything, forever, with `always=True`)."""

    def __init__(self, client: Any, flaky_calls: int = 1, always: bool = False) -> None:
        self._client = client
        self._flaky_left = flaky_calls
        self._always = always
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        [(table, requests)] = RequestItems.items()
        self.calls.append(len(requests))
        if self._always:
            return {"UnprocessedItems": {table: requests}}
        if self._flaky_left > 0:
            self._flaky_left -= 1
            half = len(requests) // 2
            self._client.batch_write_item(RequestItems={table: requests[:half]})
            return {"UnprocessedItems": {table: requests[half:]}}
        result: dict[str, Any] = self._client.batch_write_item(RequestItems=RequestItems)
        return result


def test_unprocessed_items_are_retried_with_backoff(store: ScanStore, ddb: Any) -> None:
    flaky = FlakyBatchClient(ddb, flaky_calls=2)
    sleeps: list[float] = []
    st = ScanStore(TABLE, None, flaky, sleep=sleeps.append)
    d = dg(10)
    st.put_scan(scan_of(d, [vuln("CVE-2024-0001"), vuln("CVE-2024-0002"), vuln("CVE-2024-0003")]), meta())
    # 6 requests: 3 done, 3 back; 1 done, 2 back; 2 done
    assert flaky.calls == [6, 3, 2]
    assert sleeps == [0.05, 0.1]
    assert [v.id for v in st.list_findings(d).items] == ["CVE-2024-0001", "CVE-2024-0002", "CVE-2024-0003"]
    record = st.get_image(d)
    assert record is not None and record.sbom_key is None


def test_unprocessed_items_give_up_with_store_error(store: ScanStore, ddb: Any) -> None:
    stuck = FlakyBatchClient(ddb, always=True)
    sleeps: list[float] = []
    st = ScanStore(TABLE, None, stuck, sleep=sleeps.append, max_attempts=4, base_delay=0.1, max_delay=0.3)
    with pytest.raises(StoreError, match="4 attempts") as info:
        st.put_scan(scan_of(dg(11), [vuln("CVE-2024-0001")]), meta())
    assert info.value.code == "store_error"
    assert stuck.calls == [4, 4, 4, 4]
    assert sleeps == [0.1, 0.2, 0.3]


# --- blast radius -------------------------------------------------------------------------------


def test_images_for_vulnerability_across_images_and_aliases(store: ScanStore) -> None:
    a, b, c = dg(20), dg(21), dg(22)
    store.put_scan(
        scan_of(
            a,
            [vuln("CVE-2024-1000", "openssl", Severity.CRITICAL, aliases=["GHSA-xxxx-yyyy-zzzz"], cvss=9.1)],
        ),
        meta("payments/api"),
    )
    store.put_scan(
        scan_of(
            b,
            [
                vuln("CVE-2024-1000", "libssl3", Severity.HIGH, installed="3.0.9-1", fixed="3.0.13-1"),
                vuln("CVE-2024-1000", "openssl", Severity.HIGH, installed="3.0.9-1", fixed=None),
                vuln("CVE-2024-2000", "zlib1g"),
            ],
        ),
        meta("payments/worker", registry="registry.example.com:5000"),
    )
    # a record known only by its GHSA id, whose alias is the CVE
    store.put_scan(
        scan_of(
            c,
            [
                vuln(
                    "GHSA-xxxx-yyyy-zzzz",
                    "cryptography",
                    aliases=["CVE-2024-1000"],
                    ecosystem="PyPI",
                    installed="41.0.0",
                    fixed="42.0.4",
                    path="usr/lib/python3/dist-packages/cryptography-41.0.0.dist-info/METADATA",
                )
            ],
        ),
        meta("tools/cli"),
    )

    got = store.images_for_vulnerability("CVE-2024-1000")
    assert [
        (
            i.digest,
            i.repository,
            i.package,
            i.installed_version,
            i.fixed_version,
            i.severity,
            i.vulnerability_id,
        )
        for i in got.items
    ] == [
        (
            a,
            "payments/api",
            "openssl",
            "3.0.11-1~deb12u1",
            "3.0.13-1~deb12u1",
            Severity.CRITICAL,
            "CVE-2024-1000",
        ),
        (b, "payments/worker", "libssl3", "3.0.9-1", "3.0.13-1", Severity.HIGH, "CVE-2024-1000"),
        (b, "payments/worker", "openssl", "3.0.9-1", None, Severity.HIGH, "CVE-2024-1000"),
        (c, "tools/cli", "cryptography", "41.0.0", "42.0.4", Severity.HIGH, "GHSA-xxxx-yyyy-zzzz"),
    ]
    assert got.items[0].cvss_score == 9.1
    assert got.items[1].registry == "registry.example.com:5000"
    assert [i.matched_alias for i in got.items] == [None, None, None, "CVE-2024-1000"]
    assert got.next_cursor is None

    by_alias = store.images_for_vulnerability("ghsa-XXXX-yyyy-zzzz")  # case-insensitive
    assert [(i.digest, i.package, i.vulnerability_id, i.matched_alias) for i in by_alias.items] == [
        (a, "openssl", "CVE-2024-1000", "GHSA-xxxx-yyyy-zzzz"),
        (c, "cryptography", "GHSA-xxxx-yyyy-zzzz", None),
    ]
    assert by_alias.items[0].aliases == ["GHSA-xxxx-yyyy-zzzz"]

    # pages of one through the GSI
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        page = store.images_for_vulnerability("CVE-2024-1000", cursor, 1)
        seen += [(i.digest, i.package) for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [(a, "openssl"), (b, "libssl3"), (b, "openssl"), (c, "cryptography")]
    assert store.images_for_vulnerability("CVE-1999-0001").items == []
    with pytest.raises(InputError):
        store.images_for_vulnerability(
            "CVE-2024-2000", cursor=store.images_for_vulnerability("CVE-2024-1000", None, 1).next_cursor
        )


# --- repository listing -------------------------------------------------------------------------


def test_repository_listing_newest_first(store: ScanStore, ddb: Any) -> None:
    d1, d2, d3, other = dg(30), dg(31), dg(32), dg(33)
    store.put_scan(scan_of(d2, []), meta(pushed_at=T0 + timedelta(hours=2), tags=["v2"]))
    store.put_scan(scan_of(d1, [], gate="fail"), meta(pushed_at=T0 + timedelta(hours=1), tags=["v1"]))
    store.put_scan(scan_of(d3, []), meta(pushed_at=T0 + timedelta(hours=3), tags=["v3"]))
    store.put_scan(scan_of(other, []), meta(pushed_at=T0 + timedelta(hours=4), registry="ghcr.io"))
    store.put_scan(scan_of(dg(34), []), meta("payments/api-v2", pushed_at=T0 + timedelta(hours=5)))

    listing = store.images_for_repository(REGISTRY, "payments/api")
    assert [(i.digest, i.tags) for i in listing.items] == [(d3, ["v3"]), (d2, ["v2"]), (d1, ["v1"])]
    assert listing.items[2].gate == "fail"
    assert listing.items[0].pushed_at == T0 + timedelta(hours=3)
    assert listing.items[0].vulnerabilities == {s: 0 for s in SEVERITIES_WORST_FIRST}
    assert listing.next_cursor is None

    anywhere = store.images_for_repository(None, "payments/api")
    assert [(i.registry, i.digest) for i in anywhere.items] == [
        ("ghcr.io", other),
        (REGISTRY, d3),
        (REGISTRY, d2),
        (REGISTRY, d1),
    ]
    first = store.images_for_repository(None, "payments/api", None, 3)
    assert [i.digest for i in first.items] == [other, d3, d2]
    rest = store.images_for_repository(None, "payments/api", first.next_cursor, 3)
    assert ([i.digest for i in rest.items], rest.next_cursor) == ([d1], None)

    # d1 pushed again with a new tag: it moves to the top, once, with both tags
    store.put_scan(scan_of(d1, []), meta(pushed_at=T0 + timedelta(hours=6), tags=["latest"]))
    listing = store.images_for_repository(REGISTRY, "payments/api")
    assert [(i.digest, i.tags) for i in listing.items] == [(d1, ["v1", "latest"]), (d3, ["v3"]), (d2, ["v2"])]
    # a late event with an older push time does not move it back
    store.put_scan(scan_of(d1, []), meta(pushed_at=T0, tags=["v1"]))
    assert [i.digest for i in store.images_for_repository(REGISTRY, "payments/api").items] == [d1, d3, d2]
    repo_keys = [k for p, k in all_keys(ddb) if p == f"REPO#{REGISTRY}/payments/api"]
    assert len(repo_keys) == 6  # 3 listings + 3 pointers

    p1 = store.images_for_repository(REGISTRY, "payments/api", None, 2)
    assert [i.digest for i in p1.items] == [d1, d3]
    p2 = store.images_for_repository(REGISTRY, "payments/api", p1.next_cursor, 2)
    assert ([i.digest for i in p2.items], p2.next_cursor) == ([d2], None)
    assert store.images_for_repository(REGISTRY, "nothing/here").items == []


# --- multi-arch ---------------------------------------------------------------------------------


def test_index_digest_with_two_children(store: ScanStore) -> None:
    index, amd, arm = dg(40), dg(41), dg(42)
    store.put_scan(
        scan_of(amd, [vuln("CVE-2024-0001")], platform="linux/amd64"),
        meta(index_digest=index, tags=["v1"]),
    )
    store.put_index(index, [(amd, "linux/amd64"), (arm, "linux/arm64")], meta(tags=["v1"]))

    pending = store.get_image(index)
    assert pending is not None
    assert (pending.kind, pending.gate, pending.tags) == ("index", None, ["v1"])
    assert [(c.digest, c.platform, c.image is not None) for c in pending.children] == [
        (amd, "linux/amd64", True),
        (arm, "linux/arm64", False),
    ]

    store.put_scan(
        scan_of(
            arm,
            [vuln("CVE-2024-0002", severity=Severity.CRITICAL)],
            platform="linux/arm64",
            gate="fail",
            reasons=["CRITICAL CVE-2024-0002"],
        ),
        meta(index_digest=index),
    )
    record = store.get_image(index)
    assert record is not None
    assert record.gate == "fail"
    assert record.reasons == ["linux/arm64: CRITICAL CVE-2024-0002"]
    children = {c.platform: c.image for c in record.children}
    assert children["linux/amd64"] is not None and children["linux/amd64"].gate == "pass"
    assert children["linux/arm64"] is not None and children["linux/arm64"].vulnerabilities is not None
    assert children["linux/arm64"].vulnerabilities[Severity.CRITICAL] == 1
    assert record.vulnerabilities is None

    child = store.get_image(amd)
    assert child is not None and child.index_digest == index

    # the repository lists the index only
    listing = store.images_for_repository(REGISTRY, "payments/api")
    assert [(i.digest, i.kind, i.gate) for i in listing.items] == [(index, "index", None)]
    # findings of a platform carry the index digest
    [hit] = store.images_for_vulnerability("CVE-2024-0002").items
    assert (hit.digest, hit.index_digest) == (arm, index)


def test_numbers_survive_the_round_trip() -> None:
    from chalicelib.store import deserialize_item, serialize_item

    raw = serialize_item({"a": 9.8, "b": 3, "c": {"d": [0.1, 2]}, "e": None, "f": float("nan")})
    assert raw["a"] == {"N": "9.8"}
    assert raw["f"] == {"NULL": True}
    back = deserialize_item(raw)
    assert back == {"a": 9.8, "b": 3, "c": {"d": [0.1, 2]}, "e": None, "f": None}
    assert type(back["b"]) is int and type(back["a"]) is float
    assert Decimal("9.8") == Decimal(raw["a"]["N"])
