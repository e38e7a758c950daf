"""Fleet-wide re-matching: the diff (exact new / resolved / changed), the change records, planning,
and `rematch_batch` against the store on moto with real compiled indexes (exact items, exact
idempotency: a second run leaves every item as it was, and so does a redelivery after a crash)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import NotFoundError, StoreError
from chalicelib.models import ImageInfo, OSInfo, Package, Severity
from chalicelib.policy import Policy
from chalicelib.rematch import (
    FindingDiff,
    RematchBatch,
    RematchDeps,
    change_records,
    diff_findings,
    plan_rematch,
    rematch_batch,
    rematched_scan,
)
from chalicelib.scanner import ScanOptions
from chalicelib.store import ScanStore, change_sk, image_list_gsi_pk
from chalicelib.store_models import ChangeRecord, ImageRecord, RematchWrite, StoredSbom
from chalicelib.vulndb.index import VulnIndex, build_index
from tests.unit.test_store import (  # the store's fixtures and builders, shared on purpose
    REGISTRY,
    T0,
    BatchRecorder,
    all_items,
    aws,
    ddb,
    dg,
    meta,
    s3,
    scan_of,
    store,
    vuln,
)

__all__ = ["aws", "ddb", "s3", "store"]  # fixtures re-exported for pytest

PLANNED = datetime(2024, 6, 2, 8, 30, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 2, 8, 31, 0, tzinfo=UTC)


# --- the diff, pure -------------------------------------------------------------------------------


def test_diff_new_resolved_changed_with_exact_fields() -> None:
    kept = vuln("CVE-2024-0001", "openssl", Severity.HIGH)
    rescored_before = vuln("CVE-2024-0002", "openssl", Severity.MEDIUM)
    rescored_after = rescored_before.model_copy(update={"severity": Severity.CRITICAL})
    refixed_before = vuln("CVE-2024-0003", "zlib1g", Severity.LOW, installed="1:1.2.13.dfsg-1", fixed=None)
    refixed_after = refixed_before.model_copy(update={"fixed_version": "1:1.2.13.dfsg-3"})
    kev_before = vuln("CVE-2024-0004", "curl", Severity.HIGH)
    kev_after = kev_before.model_copy(update={"known_exploited": True, "kev_date_added": "2024-06-01"})
    only_text = vuln("CVE-2024-0005", "curl", Severity.LOW)
    only_text_after = only_text.model_copy(
        update={"summary": "reworded", "cvss_score": 3.3, "aliases": ["X-1"]}
    )
    gone = vuln("CVE-2024-0006", "openssl", Severity.CRITICAL)
    appeared = vuln("CVE-2024-0007", "zlib1g", Severity.UNKNOWN, installed="1:1.2.13.dfsg-1")
    appeared_high = vuln("CVE-2024-0008", "curl", Severity.HIGH)

    before = [kept, rescored_before, refixed_before, kev_before, only_text, gone]
    after = [appeared, kept, refixed_after, rescored_after, kev_after, only_text_after, appeared_high]
    diffs = diff_findings(before, after)

    assert [(d.kind, d.finding.id, d.changed_fields) for d in diffs] == [
        ("new", "CVE-2024-0008", ()),
        ("new", "CVE-2024-0007", ()),
        ("changed", "CVE-2024-0002", ("severity",)),
        ("changed", "CVE-2024-0004", ("known_exploited",)),
        ("changed", "CVE-2024-0003", ("fixed_version",)),
        ("resolved", "CVE-2024-0006", ()),
    ]
    assert diffs[2] == FindingDiff("changed", rescored_before, rescored_after, ("severity",))
    assert diffs[5] == FindingDiff("resolved", gone, None)
    assert diffs[0].before is None and diffs[0].after == appeared_high


def test_diff_identity_is_the_package_entry_not_the_name() -> None:
    amd64 = vuln("CVE-2024-0001", "libc6")
    i386 = amd64.model_copy(update={"purl": "pkg:deb/debian/libc6@3.0.11-1~deb12u1?arch=i386"})
    other_path = amd64.model_copy(update={"path": "usr/lib/other/status"})
    diffs = diff_findings([amd64], [amd64, i386, other_path])
    assert [(d.kind, d.finding.purl, d.finding.path) for d in diffs] == [
        ("new", "pkg:deb/debian/libc6@3.0.11-1~deb12u1?arch=amd64", "usr/lib/other/status"),
        ("new", "pkg:deb/debian/libc6@3.0.11-1~deb12u1?arch=i386", "var/lib/dpkg/status"),
    ]
    # a CVE assigned to a GHSA-only finding changes the primary id: resolved + new
    ghsa = vuln("GHSA-aaaa-bbbb-cccc", "lodash")
    cve = ghsa.model_copy(update={"id": "CVE-2024-9999", "aliases": ["GHSA-aaaa-bbbb-cccc"]})
    assert [(d.kind, d.finding.id) for d in diff_findings([ghsa], [cve])] == [
        ("new", "CVE-2024-9999"),
        ("resolved", "GHSA-aaaa-bbbb-cccc"),
    ]


def test_diff_of_equal_sets_is_empty_and_duplicates_from_a_crash_count_once() -> None:
    a = vuln("CVE-2024-0001", severity=Severity.HIGH)
    b = vuln("CVE-2024-0002", severity=Severity.LOW)
    assert diff_findings([a, b], [b, a]) == []
    assert diff_findings([], []) == []
    # a crash between writing the new severity's item and deleting the old one leaves both
    new_a = a.model_copy(update={"severity": Severity.CRITICAL})
    assert diff_findings([a, new_a, b], [new_a, b]) == []
    assert [(d.kind, d.finding.id) for d in diff_findings([a, b], [])] == [
        ("resolved", "CVE-2024-0001"),
        ("resolved", "CVE-2024-0002"),
    ]


def test_change_records_carry_before_and_after_and_a_verdict_flip() -> None:
    before = vuln("CVE-2024-0002", "openssl", Severity.MEDIUM)
    after = before.model_copy(update={"severity": Severity.CRITICAL})
    gone = vuln("CVE-2024-0006", "zlib1g", Severity.LOW, fixed=None)
    record = ImageRecord(
        digest=dg(1), registry=REGISTRY, repository="payments/api", db_version="v1", gate="pass"
    )
    scan = scan_of(
        dg(1), [after], gate="fail", reasons=["fail_on: 1 vulnerabilities at or above CRITICAL (CRITICAL: 1)"]
    )
    scan.summary.db_version = "v2"
    diffs = [FindingDiff("changed", before, after, ("severity",)), FindingDiff("resolved", gone, None)]
    changes = change_records(diffs, record, scan, PLANNED)
    common = {
        "digest": dg(1),
        "detected_at": PLANNED,
        "db_version": "v2",
        "previous_db_version": "v1",
        "registry": REGISTRY,
        "repository": "payments/api",
    }
    assert changes == [
        ChangeRecord(
            **common,
            kind="changed",
            vulnerability_id="CVE-2024-0002",
            package="openssl",
            ecosystem="Debian:12",
            installed_version="3.0.11-1~deb12u1",
            path="var/lib/dpkg/status",
            purl="pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64",
            changed_fields=["severity"],
            severity=Severity.CRITICAL,
            previous_severity=Severity.MEDIUM,
            fixed_version="3.0.13-1~deb12u1",
            previous_fixed_version="3.0.13-1~deb12u1",
            known_exploited=False,
            previous_known_exploited=False,
        ),
        ChangeRecord(
            **common,
            kind="resolved",
            vulnerability_id="CVE-2024-0006",
            package="zlib1g",
            ecosystem="Debian:12",
            installed_version="3.0.11-1~deb12u1",
            path="var/lib/dpkg/status",
            purl="pkg:deb/debian/zlib1g@3.0.11-1~deb12u1?arch=amd64",
            previous_severity=Severity.LOW,
            previous_fixed_version=None,
            previous_known_exploited=False,
        ),
        ChangeRecord(
            **common,
            kind="verdict",
            gate="fail",
            previous_gate="pass",
            reasons=["fail_on: 1 vulnerabilities at or above CRITICAL (CRITICAL: 1)"],
        ),
    ]


# --- real indexes ---------------------------------------------------------------------------------


def debian_record(
    vid: str,
    source: str,
    *,
    fixed: str | None,
    urgency: str,
    summary: str = "",
    withdrawn: bool = False,
    modified: str = "2024-05-01T00:00:00Z",
) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed:
        events.append({"fixed": fixed})
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": f"DEBIAN-{vid}",
        "modified": modified,
        "upstream": [vid],
        "summary": summary or f"{source}: {vid}",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"urgency": urgency},
            }
        ],
    }
    if withdrawn:
        record["withdrawn"] = modified
    return record


V1_RECORDS = [
    debian_record("CVE-2024-1001", "zlib", fixed="1:1.2.13.dfsg-2", urgency="medium"),
    debian_record("CVE-2024-1002", "openssl", fixed="3.0.11-1~deb12u2", urgency="high"),
    debian_record("CVE-2024-1003", "curl", fixed="7.88.1-10+deb12u5", urgency="low"),
]
V2 = "2024-06-01T00:00:00Z"
V2_RECORDS = [
    # rescored and re-fixed: `changed`
    debian_record("CVE-2024-1001", "zlib", fixed="1:1.2.13.dfsg-3", urgency="critical", modified=V2),
    # withdrawn: `resolved`
    debian_record(
        "CVE-2024-1002", "openssl", fixed="3.0.11-1~deb12u2", urgency="high", withdrawn=True, modified=V2
    ),
    # reworded only: no record, but the stored finding gets the new text
    debian_record(
        "CVE-2024-1003",
        "curl",
        fixed="7.88.1-10+deb12u5",
        urgency="low",
        summary="curl: reworded",
        modified=V2,
    ),
    # unfixed and new: `new`
    debian_record("CVE-2024-1004", "zlib", fixed=None, urgency="high", modified=V2),
]


#: v2 also lists CVE-2024-1001 as known exploited (CISA KEV catalog format)
KEV_CATALOG = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2024.06.01",
    "dateReleased": "2024-06-01T16:00:00.000Z",
    "count": 1,
    "vulnerabilities": [
        {"cveID": "CVE-2024-1001", "dateAdded": "2024-06-01", "knownRansomwareCampaignUse": "Unknown"}
    ],
}


def build(
    tmp_path: Path, name: str, records: list[dict[str, Any]], kev: dict[str, Any] | None = None
) -> VulnIndex:
    src = tmp_path / f"{name}-osv"
    src.mkdir()
    for record in records:
        (src / f"{record['id']}.json").write_text(json.dumps(record))
    if kev is not None:
        (src / "known_exploited_vulnerabilities.json").write_text(json.dumps(kev))
    out = tmp_path / f"{name}.sqlite"
    build_index([src], out)
    return VulnIndex(out)


def sample_sbom(digest: str) -> StoredSbom:
    def deb(name: str, version: str, source: str) -> Package:
        return Package(
            name=name,
            version=version,
            ecosystem="Debian:12",
            purl=f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
            source_name=source,
            source_version=version,
            layer="sha256:" + "1" * 64,
            path="var/lib/dpkg/status",
        )

    return StoredSbom(
        image=ImageInfo(
            digest=digest,
            config_digest="sha256:" + "c" * 64,
            platform="linux/amd64",
            os=OSInfo(family="debian", version="12"),
        ),
        packages=[
            deb("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
            deb("libssl3", "3.0.11-1~deb12u1", "openssl"),
            deb("curl", "7.88.1-10+deb12u1", "curl"),
        ],
    )


OPTIONS = ScanOptions(gate=Policy(fail_on=Severity.CRITICAL))


@pytest.fixture
def indexes(tmp_path: Path) -> tuple[VulnIndex, VulnIndex]:
    v1, v2 = build(tmp_path, "v1", V1_RECORDS), build(tmp_path, "v2", V2_RECORDS, KEV_CATALOG)
    assert v1.version != v2.version
    return v1, v2


def stored_image(store: ScanStore, digest: str, index: VulnIndex) -> None:
    """An image scanned with `index`, stored like the scan path does (SBOM in S3 included)."""
    scan = rematched_scan(sample_sbom(digest), index, OPTIONS)
    assert [(v.id, v.package, v.severity.value) for v in scan.vulnerabilities] == [
        ("CVE-2024-1002", "libssl3", "HIGH"),
        ("CVE-2024-1001", "zlib1g", "MEDIUM"),
        ("CVE-2024-1003", "curl", "LOW"),
    ]
    store.put_scan(scan, meta())


def deps(store: ScanStore, index: VulnIndex) -> RematchDeps:
    return RematchDeps(store=store, index=lambda: index, options=OPTIONS, now=lambda: NOW)


def snapshot(ddb: Any) -> list[dict[str, Any]]:
    return sorted(all_items(ddb), key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def test_rematch_writes_findings_changes_summary_and_listing(
    store: ScanStore, ddb: Any, indexes: tuple[VulnIndex, VulnIndex]
) -> None:
    v1, v2 = indexes
    d = dg(41)
    stored_image(store, d, v1)
    batch = RematchBatch(index_version=v2.version, planned_at=PLANNED, digests=[d])

    outcome = rematch_batch(batch, deps(store, v2))

    [result] = outcome.images
    assert (outcome.planned_version, outcome.index_version) == (v2.version, v2.version)
    assert (result.status, result.new, result.resolved, result.changed) == ("rematched", 1, 1, 1)
    assert (result.previous_gate, result.gate, result.db_version) == ("pass", "fail", v2.version)

    findings = store.list_findings(d).items
    assert [
        (v.severity.value, v.id, v.package, v.fixed_version, v.summary, v.kev_date_added) for v in findings
    ] == [
        ("CRITICAL", "CVE-2024-1001", "zlib1g", "1:1.2.13.dfsg-3", "zlib: CVE-2024-1001", "2024-06-01"),
        ("HIGH", "CVE-2024-1004", "zlib1g", None, "zlib: CVE-2024-1004", None),
        ("LOW", "CVE-2024-1003", "curl", "7.88.1-10+deb12u5", "curl: reworded", None),
    ]
    assert store.images_for_vulnerability("CVE-2024-1002").items == []
    assert store.images_for_vulnerability("DEBIAN-CVE-2024-1002").items == []
    assert [(i.digest, i.package) for i in store.images_for_vulnerability("DEBIAN-CVE-2024-1004").items] == [
        (d, "zlib1g")
    ]

    changes = store.list_changes(d).items
    assert [(c.kind, c.vulnerability_id, c.package, c.changed_fields) for c in changes] == [
        ("verdict", None, None, []),
        ("resolved", "CVE-2024-1002", "libssl3", []),
        ("new", "CVE-2024-1004", "zlib1g", []),
        ("changed", "CVE-2024-1001", "zlib1g", ["severity", "fixed_version", "known_exploited"]),
    ]
    assert {(c.detected_at, c.db_version, c.previous_db_version) for c in changes} == {
        (PLANNED, v2.version, v1.version)
    }
    changed = changes[3]
    assert (changed.previous_severity, changed.severity) == (Severity.MEDIUM, Severity.CRITICAL)
    assert (changed.previous_fixed_version, changed.fixed_version) == ("1:1.2.13.dfsg-2", "1:1.2.13.dfsg-3")
    assert (changed.previous_known_exploited, changed.known_exploited) == (False, True)
    assert (changes[1].previous_severity, changes[1].severity) == (Severity.HIGH, None)
    assert (changes[0].previous_gate, changes[0].gate) == ("pass", "fail")
    assert changes[0].reasons == ["fail_on: 1 vulnerabilities at or above CRITICAL (CRITICAL: 1)"]
    fleet = store.recent_changes(PLANNED.date())
    assert [(c.digest, c.kind) for c in fleet.items] == [(d, c.kind) for c in changes]
    assert store.recent_changes(datetime(2024, 6, 3).date()).items == []

    record = store.get_image(d)
    assert record is not None and record.vulnerabilities is not None
    assert {k.value: n for k, n in record.vulnerabilities.items()} == {
        "CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0,
    }  # fmt: skip
    assert (record.db_version, record.gate, record.rematched_at) == (v2.version, "fail", NOW)
    assert record.reasons == ["fail_on: 1 vulnerabilities at or above CRITICAL (CRITICAL: 1)"]
    assert (record.scanned_at, record.packages, record.tags) == (T0.replace(minute=5), 3, ["v1"])
    [listed] = store.images_for_repository(REGISTRY, "payments/api").items
    assert listed.gate == "fail" and listed.vulnerabilities is not None
    assert listed.vulnerabilities[Severity.CRITICAL] == 1


def test_second_run_and_duplicate_delivery_change_nothing(
    store: ScanStore, ddb: Any, indexes: tuple[VulnIndex, VulnIndex]
) -> None:
    v1, v2 = indexes
    d = dg(42)
    stored_image(store, d, v1)
    batch = RematchBatch(index_version=v2.version, planned_at=PLANNED, digests=[d, d])
    first = rematch_batch(batch, deps(store, v2))
    assert [i.status for i in first.images] == ["rematched"]  # the repeated digest is done once
    after_first = snapshot(ddb)

    later = RematchBatch(index_version=v2.version, planned_at=datetime(2024, 6, 3, tzinfo=UTC), digests=[d])
    for again in (batch, later):
        outcome = rematch_batch(again, deps(store, v2))
        assert [(i.status, i.new, i.resolved, i.changed) for i in outcome.images] == [("up_to_date", 0, 0, 0)]
    assert snapshot(ddb) == after_first
    assert plan_rematch(store, v2.version) == []


def test_an_index_with_the_same_answers_writes_only_the_summary(
    store: ScanStore, ddb: Any, indexes: tuple[VulnIndex, VulnIndex]
) -> None:
    v1, _ = indexes
    d = dg(48)
    stored_image(store, d, v1)
    same = build(
        v1.path.parent,
        "v1-again",
        [*V1_RECORDS, debian_record("CVE-2024-1009", "bash", fixed=None, urgency="low")],
    )
    assert same.version != v1.version  # another index, no answer changes for this image
    before = {(i["PK"]["S"], i["SK"]["S"]): i for i in all_items(ddb)}
    recorder = BatchRecorder(ddb)
    updates: list[str] = []
    ddb.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem",
        lambda params, **_: updates.append(params["Key"]["SK"]["S"]),
    )
    batch = RematchBatch(index_version=same.version, planned_at=PLANNED, digests=[d])
    [result] = rematch_batch(batch, deps(store, same)).images
    assert (result.status, result.new, result.resolved, result.changed) == ("rematched", 0, 0, 0)
    assert recorder.sizes == [] and updates == ["SCAN"]  # no finding, change or listing write
    after = {(i["PK"]["S"], i["SK"]["S"]): i for i in all_items(ddb)}
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {(f"IMAGE#{d}", "SCAN")}
    assert after[(f"IMAGE#{d}", "SCAN")]["db_version"] == {"S": same.version}


def test_redelivery_after_a_crash_before_the_summary_writes_each_change_once(
    store: ScanStore, ddb: Any, indexes: tuple[VulnIndex, VulnIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = indexes
    d = dg(43)
    stored_image(store, d, v1)
    batch = RematchBatch(index_version=v2.version, planned_at=PLANNED, digests=[d])

    def crash(*_args: Any, **_kwargs: Any) -> bool:
        raise StoreError("lambda timed out")

    with monkeypatch.context() as patch:
        patch.setattr(ScanStore, "_update_summary", crash)
        with pytest.raises(StoreError):
            rematch_batch(batch, deps(store, v2))
    record = store.get_image(d)
    assert record is not None and record.db_version == v1.version  # not committed

    outcome = rematch_batch(batch, deps(store, v2))
    # the findings were already replaced: the redelivery finds no more diffs, only the verdict flip
    assert [(i.status, i.new, i.resolved, i.changed) for i in outcome.images] == [("rematched", 0, 0, 0)]
    kinds = [c.kind for c in store.list_changes(d).items]
    assert kinds == ["verdict", "resolved", "new", "changed"]  # same keys rewritten, none doubled
    record = store.get_image(d)
    assert record is not None and (record.db_version, record.gate) == (v2.version, "fail")


def test_apply_rematch_loses_to_a_finished_duplicate_and_fails_on_a_rescan(
    store: ScanStore, indexes: tuple[VulnIndex, VulnIndex]
) -> None:
    v1, _ = indexes
    d = dg(44)
    stored_image(store, d, v1)
    record = store.get_image(d)
    assert record is not None
    write = RematchWrite(
        digest=d,
        vulnerabilities=[],
        db_version="v9",
        gate="pass",
        rematched_at=NOW,
        expected_db_version=record.db_version,
        expected_scanned_at=record.scanned_at,
    )
    assert store.apply_rematch(write) is True
    assert store.apply_rematch(write) is False  # the summary already says v9
    assert store.list_findings(d).items == []

    rescan = scan_of(d, [vuln("CVE-2024-0001")])
    store.put_scan(rescan, meta().model_copy(update={"scanned_at": NOW}))
    with pytest.raises(StoreError, match="changed during its re-match"):
        store.apply_rematch(write.model_copy(update={"db_version": "v10"}))
    with pytest.raises(NotFoundError):
        store.apply_rematch(write.model_copy(update={"digest": dg(999)}))


def test_images_without_scan_sbom_or_findings_of_their_own_are_skipped(
    store: ScanStore, s3: Any, indexes: tuple[VulnIndex, VulnIndex]
) -> None:
    v1, v2 = indexes
    child, index_digest, no_sbom = dg(45), dg(46), dg(47)
    store.put_scan(scan_of(child, []), meta(index_digest=index_digest))
    store.put_index(index_digest, [(child, "linux/amd64")], meta())
    stored_image(store, no_sbom, v1)
    s3.delete_object(Bucket=store.bucket, Key=f"sboms/{no_sbom}.json")
    batch = RematchBatch(
        index_version=v2.version, planned_at=PLANNED, digests=[index_digest, no_sbom, dg(998)]
    )
    outcome = rematch_batch(batch, deps(store, v2))
    assert [(i.digest, i.status, i.reason) for i in outcome.images] == [
        (index_digest, "skipped", "a multi-arch index (its platforms are re-matched)"),
        (no_sbom, "skipped", "no SBOM stored"),
        (dg(998), "skipped", "no scan stored"),
    ]
    # the platform of the index is listed for re-matching, the index itself is not
    assert sorted(d for b in plan_rematch(store, v2.version) for d in b.digests) == sorted([child, no_sbom])


# --- planning -------------------------------------------------------------------------------------


def test_plan_lists_every_image_not_yet_on_the_version_in_batches(store: ScanStore) -> None:
    stale = [dg(100 + n) for n in range(30)]
    current = [dg(200), dg(201)]
    for digest in stale:
        store.put_scan(scan_of(digest, []), meta())
    for digest in current:
        scan = scan_of(digest, [])
        scan.summary.db_version = "v2"
        store.put_scan(scan, meta())
    assert len({image_list_gsi_pk(d) for d in stale}) > 8  # spread over the shards

    batches = plan_rematch(store, "v2", batch_size=7, planned_at=PLANNED)
    assert [len(b.digests) for b in batches] == [7, 7, 7, 7, 2]
    assert [b.sequence for b in batches] == [0, 1, 2, 3, 4]
    assert {(b.index_version, b.planned_at) for b in batches} == {("v2", PLANNED)}
    assert sorted(d for b in batches for d in b.digests) == sorted(stale)
    assert sorted(store.iter_image_digests(page_size=3)) == sorted(stale + current)
    with pytest.raises(ValueError, match="batch_size"):
        plan_rematch(store, "v2", batch_size=101)


def test_change_keys_sort_newest_first_within_an_image() -> None:
    older = ChangeRecord(digest=dg(1), kind="new", detected_at=PLANNED, db_version="v2", vulnerability_id="A")
    newer = older.model_copy(update={"detected_at": NOW})
    assert change_sk(older).startswith("CHANGE#2024-06-02T08:30:00.000000Z#new#A#")
    assert change_sk(newer) > change_sk(older)
    verdict = ChangeRecord(digest=dg(1), kind="verdict", detected_at=PLANNED, db_version="v2")
    assert change_sk(verdict) == "CHANGE#2024-06-02T08:30:00.000000Z#verdict"


def test_rematched_scan_matches_like_a_scan(indexes: tuple[VulnIndex, VulnIndex]) -> None:
    _, v2 = indexes
    unfixed_hidden = ScanOptions(ignore_unfixed=True)
    scan = rematched_scan(sample_sbom(dg(1)), v2, unfixed_hidden)
    assert [v.id for v in scan.vulnerabilities] == ["CVE-2024-1001", "CVE-2024-1003"]
    assert (scan.summary.db_version, scan.summary.gate, scan.summary.packages) == (v2.version, "pass", 3)
    assert [v.aliases for v in scan.vulnerabilities] == [["DEBIAN-CVE-2024-1001"], ["DEBIAN-CVE-2024-1003"]]


def test_batch_message_validates_its_digests() -> None:
    with pytest.raises(ValueError, match="should match pattern"):
        RematchBatch(index_version="v2", planned_at=PLANNED, digests=["latest"])
    with pytest.raises(ValueError, match="at least 1"):
        RematchBatch(index_version="v2", planned_at=PLANNED, digests=[])
    body = RematchBatch(index_version="v2", planned_at=PLANNED, digests=[dg(1)]).model_dump_json()
    assert json.loads(body) == {
        "index_version": "v2",
        "planned_at": "2024-06-02T08:30:00Z",
        "digests": [dg(1)],
        "sequence": 0,
    }
