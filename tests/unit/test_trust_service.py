"""After the gate: a passing image is signed (once per key, with its scan as the attestation) and
audited, a failing one never is and flags earlier signatures, a multi-arch index is signed only
when every platform passed, and a re-scan that flips the verdict leaves a change record. The
signer is a recording fake here; the real cosign layout is tested in test_signing*."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from chalicelib import api
from chalicelib.errors import NotFoundError
from chalicelib.models import Severity
from chalicelib.store import ScanStore
from chalicelib.store_models import SignatureRecord
from chalicelib.trust_service import (
    Signing,
    after_gate,
    after_index_gate,
    flag_after_rematch,
    scan_id,
    signature_optional,
    verdict_change,
)
from tests.unit.test_store import REGISTRY, dg, meta, scan_of, vuln

KEY = "awskms:///alias/lifeguard-signing"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeSigned:
    signature_tag: str
    signature_manifest_digest: str
    attestation_manifest_digest: str | None
    payload_sha256: str
    key_id: str | None
    signed_at: datetime


@dataclass
class FakeSigner:
    calls: list[tuple[str, str, str, str, dict[str, Any], Mapping[str, Any] | None]] = field(
        default_factory=list
    )

    def signing(self) -> Signing:
        def signer_for(registry: str) -> Any:
            def sign(
                repository: str,
                digest: str,
                docker_reference: str,
                optional: Mapping[str, Any],
                attestation: Mapping[str, Any] | None,
            ) -> FakeSigned:
                self.calls.append(
                    (registry, repository, digest, docker_reference, dict(optional), attestation)
                )
                return FakeSigned(
                    signature_tag=f"sha256-{digest[7:]}.sig",
                    signature_manifest_digest="sha256:" + "5" * 64,
                    attestation_manifest_digest=None if attestation is None else "sha256:" + "a" * 64,
                    payload_sha256="7" * 64,
                    key_id="arn:aws:kms:us-east-1:123456789012:key/k1",
                    signed_at=NOW,
                )

            return sign

        return Signing(key=KEY, signer_for=signer_for)


@pytest.fixture
def store(table_only_store: ScanStore) -> ScanStore:
    return table_only_store


def test_passing_image_is_signed_with_its_scan_and_audited(store: ScanStore) -> None:
    fake = FakeSigner()
    scan = scan_of(dg(1), [vuln("CVE-2024-1", severity=Severity.LOW)], gate="pass")
    record = after_gate(scan, meta(), store, fake.signing(), actor="on_scan_request", now=NOW)
    assert record is not None
    ((registry, repository, digest, reference, optional, attestation),) = fake.calls
    assert (registry, repository, digest, reference) == (
        REGISTRY,
        "payments/api",
        dg(1),
        f"{REGISTRY}/payments/api",
    )
    assert optional == {
        "lifeguard.scan-id": scan_id(dg(1), meta().scanned_at),
        "lifeguard.verdict": "pass",
        "lifeguard.db-version": "2024-05-01T00:00:00Z",
        "lifeguard.scanned-at": "2024-05-01T12:05:00.000000Z",
        "lifeguard.vulnerabilities.critical": "0",
        "lifeguard.vulnerabilities.high": "0",
        "lifeguard.vulnerabilities.medium": "0",
        "lifeguard.vulnerabilities.low": "1",
        "lifeguard.vulnerabilities.unknown": "0",
    }
    assert attestation is not None
    assert attestation["scanner"]["result"]["image"]["digest"] == dg(1)
    assert attestation["scanner"]["db"]["version"] == "2024-05-01T00:00:00Z"
    (stored,) = store.get_signatures(dg(1))
    assert stored == record
    assert (stored.key, stored.verdict, stored.signer, stored.signature_tag) == (
        KEY,
        "pass",
        "lifeguard",
        f"sha256-{dg(1).removeprefix('sha256:')}.sig",
    )
    (audit,) = store.list_audit(date(2026, 11, 24)).items
    assert (audit.action, audit.outcome, audit.decision, audit.target) == (
        "sign",
        "signed",
        "allow",
        f"{REGISTRY}/payments/api@{dg(1)}",
    )


def test_failing_image_is_never_signed_and_flags_an_earlier_signature(store: ScanStore) -> None:
    fake = FakeSigner()
    after_gate(scan_of(dg(1), [], gate="pass"), meta(), store, fake.signing(), actor="t", now=NOW)
    failing = scan_of(dg(1), [], gate="fail", reasons=["max_severity: 1 vulnerabilities at or above HIGH"])
    later = NOW + timedelta(days=1)
    assert after_gate(failing, meta(), store, fake.signing(), actor="t", now=later) is None
    assert len(fake.calls) == 1
    (stored,) = store.get_signatures(dg(1))
    assert (stored.flagged, stored.flagged_at, stored.flag_reasons) == (
        True,
        later,
        ["max_severity: 1 vulnerabilities at or above HIGH"],
    )


def test_no_key_no_signature(store: ScanStore) -> None:
    assert after_gate(scan_of(dg(1), [], gate="pass"), meta(), store, None, actor="t", now=NOW) is None
    assert store.get_signatures(dg(1)) == []


def test_index_signed_only_when_every_platform_passed(store: ScanStore) -> None:
    fake = FakeSigner()
    amd = scan_of(dg(1), [vuln("CVE-2024-1", severity=Severity.HIGH)], gate="pass")
    arm = scan_of(dg(2), [vuln("CVE-2024-2", severity=Severity.HIGH)], platform="linux/arm64", gate="pass")
    record = after_index_gate(dg(9), [amd, arm], meta(), store, fake.signing(), actor="t", now=NOW)
    assert record is not None and record.digest == dg(9)
    (call,) = fake.calls
    assert call[2] == dg(9)
    assert call[4]["lifeguard.vulnerabilities.high"] == "2"
    assert call[5] is None  # the attestations are on the platforms
    bad = arm.model_copy(
        update={"summary": arm.summary.model_copy(update={"gate": "fail", "reasons": ["x"]})}
    )
    assert after_index_gate(dg(9), [amd, bad], meta(), store, fake.signing(), actor="t", now=NOW) is None
    assert len(fake.calls) == 1
    (stored,) = store.get_signatures(dg(9))
    assert stored.flagged and stored.flag_reasons == ["x"]


def test_verdict_change_only_on_a_flip(store: ScanStore) -> None:
    store.put_scan(scan_of(dg(1), [], gate="pass"), meta())
    previous = store.get_image(dg(1))
    failing = scan_of(dg(1), [], gate="fail", reasons=["allow_secrets: 1 secret found"])
    change = verdict_change(previous, failing, meta(), NOW)
    assert change is not None
    assert (change.kind, change.previous_gate, change.gate, change.reasons) == (
        "verdict",
        "pass",
        "fail",
        ["allow_secrets: 1 secret found"],
    )
    store.put_changes([change])
    assert [c.kind for c in store.list_changes(dg(1), None, None).items] == ["verdict"]
    assert verdict_change(previous, scan_of(dg(1), [], gate="pass"), meta(), NOW) is None
    assert verdict_change(None, failing, meta(), NOW) is None


def test_flag_after_rematch_only_pass_to_fail(store: ScanStore) -> None:
    after_gate(scan_of(dg(1), [], gate="pass"), meta(), store, FakeSigner().signing(), actor="t", now=NOW)
    assert flag_after_rematch(store, dg(1), gate="fail", previous_gate="fail", reasons=["r"], now=NOW) == 0
    assert flag_after_rematch(store, dg(1), gate="pass", previous_gate="pass", reasons=["r"], now=NOW) == 0
    assert flag_after_rematch(store, dg(1), gate="fail", previous_gate="pass", reasons=["r"], now=NOW) == 1


def test_signature_route_reports_and_reverifies(store: ScanStore) -> None:
    after_gate(scan_of(dg(1), [], gate="pass"), meta(), store, FakeSigner().signing(), actor="t", now=NOW)
    checked: list[SignatureRecord] = []

    def check(record: SignatureRecord) -> tuple[bool | None, str | None]:
        checked.append(record)
        return True, None

    status, body = api.get_signature(store, check, {"digest": dg(1)})
    assert status == 200 and body["signed"] is True and body["digest"] == dg(1)
    (sig,) = body["signatures"]
    assert (sig["key"], sig["verdict"], sig["verified"], sig["verification_error"], sig["flagged"]) == (
        KEY,
        "pass",
        True,
        None,
        False,
    )
    assert sig["signed_at"] == "2026-11-24T10:00:00Z"
    status, body = api.get_signature(store, lambda r: (None, "registry unreachable"), {"digest": dg(1)})
    assert body["signed"] is False and body["signatures"][0]["verification_error"] == "registry unreachable"
    with pytest.raises(NotFoundError, match="no signature recorded"):
        api.get_signature(store, check, {"digest": dg(2)})


def test_index_claims_sum_the_platforms() -> None:
    amd = scan_of(dg(1), [vuln("CVE-2024-1", severity=Severity.LOW)], gate="pass")
    arm = scan_of(dg(2), [vuln("CVE-2024-2", severity=Severity.LOW)], gate="fail")
    optional = signature_optional(dg(9), [amd, arm], meta())
    assert (optional["lifeguard.verdict"], optional["lifeguard.vulnerabilities.low"]) == ("fail", "2")
