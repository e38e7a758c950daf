"""Signatures and the audit trail in the single table: one signature item per (image, key),
flagging after a failed gate, the trust facts enforcement reads in one batch, and audit pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.store import ScanStore
from chalicelib.store_models import AuditRecord, SignatureRecord
from tests.unit.test_store import dg, meta, scan_of

KEY = "awskms:///alias/lifeguard-signing"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(table_only_store: ScanStore) -> ScanStore:
    return table_only_store


def signature(digest: str, key: str = KEY, **extra: object) -> SignatureRecord:
    return SignatureRecord.model_validate(
        {
            "digest": digest,
            "key": key,
            "key_id": "arn:aws:kms:us-east-1:123456789012:key/k1",
            "signed_at": T0,
            "verdict": "pass",
            "signature_tag": f"sha256-{digest.removeprefix('sha256:')}.sig",
            "payload_sha256": "ab" * 32,
            **extra,
        }
    )


def test_one_signature_per_key_and_replace_on_resign(store: ScanStore) -> None:
    store.put_signature(signature(dg(1)))
    store.put_signature(signature(dg(1), key="awskms:///alias/other"))
    store.put_signature(signature(dg(1), signed_at=T0 + timedelta(hours=1)))
    found = sorted(store.get_signatures(dg(1)), key=lambda r: r.key)
    assert [(r.key, r.signed_at) for r in found] == [
        ("awskms:///alias/lifeguard-signing", T0 + timedelta(hours=1)),
        ("awskms:///alias/other", T0),
    ]
    assert store.get_signatures(dg(2)) == []


def test_flag_signatures_once(store: ScanStore) -> None:
    store.put_signature(signature(dg(1)))
    assert store.flag_signatures(dg(1), ["1 vulnerabilities at or above HIGH"], T0 + timedelta(days=1)) == 1
    assert store.flag_signatures(dg(1), ["later"], T0 + timedelta(days=2)) == 0
    (record,) = store.get_signatures(dg(1))
    assert (record.flagged, record.flagged_at, record.flag_reasons) == (
        True,
        T0 + timedelta(days=1),
        ["1 vulnerabilities at or above HIGH"],
    )


def test_trust_facts_reads_scan_and_the_configured_keys_signature(store: ScanStore) -> None:
    store.put_scan(scan_of(dg(1), [], gate="pass"), meta())
    store.put_scan(scan_of(dg(2), [], gate="fail"), meta())
    store.put_signature(signature(dg(1)))
    store.put_signature(signature(dg(2), key="awskms:///alias/other"))
    facts = store.trust_facts([dg(1), dg(2), dg(3), dg(1)], KEY)
    assert list(facts) == [dg(1), dg(2), dg(3)]
    gates = {d: f.image.gate if f.image else None for d, f in facts.items()}
    keys = {d: f.signature.key if f.signature else None for d, f in facts.items()}
    assert gates == {dg(1): "pass", dg(2): "fail", dg(3): None}
    assert keys == {dg(1): KEY, dg(2): None, dg(3): None}
    assert facts[dg(3)].image is None and facts[dg(3)].signature is None
    unsigned = store.trust_facts([dg(1)], None)
    assert unsigned[dg(1)].signature is None and unsigned[dg(1)].image is not None


def test_audit_pages_newest_first(store: ScanStore) -> None:
    for i in range(5):
        store.put_audit(
            AuditRecord(
                id=f"e{i}",
                at=T0 + timedelta(minutes=i),
                actor="on_ecs_task_state_change",
                action="stop_task",
                target=f"arn:aws:ecs:us-east-1:123456789012:task/c/{i}",
                decision="deny",
                outcome="would_stop",
                mode="audit",
                reasons=["unsigned"],
                event_id=f"ev-{i}",
            )
        )
    first = store.list_audit(date(2026, 11, 24), limit=3)
    assert [r.id for r in first.items] == ["e4", "e3", "e2"]
    assert first.next_cursor is not None
    second = store.list_audit(date(2026, 11, 24), limit=3, cursor=first.next_cursor)
    assert [r.id for r in second.items] == ["e1", "e0"] and second.next_cursor is None
    assert store.list_audit(date(2026, 11, 25)).items == []
