"""The policy gate on its two paths, one code path: the command line (`--policy`, `--fail-on` on
top, exit codes 0 / 1 / 2) on the sample image, and the Lambda path (`LIFEGUARD_POLICY` from a file
or S3, the request's repository picking its override, the verdict, reasons and policy identity
stored with the scan, returned by the API and kept by re-matching)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import api, runtime
from chalicelib.cli import _gate, main
from chalicelib.image.layout import DirSource, OCILayoutSource
from chalicelib.image.reference import Reference
from chalicelib.models import Severity
from chalicelib.policy import Policy, PolicyError, PolicyFile, load_policy, policy_for
from chalicelib.rematch import RematchBatch, RematchDeps, rematch_batch
from chalicelib.scan_service import ScanDeps, ScanRequest, scan_pushed_image
from chalicelib.store import ScanStore
from chalicelib.vulndb.index import VulnIndex
from tests.unit.test_store import REGION, aws, ddb, s3, store

__all__ = ["aws", "ddb", "s3", "store"]  # fixtures re-exported for pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE_POLICY = Path(__file__).resolve().parents[2] / "samples" / "policy.yaml"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def kev_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture index plus the KEV sample: glibc's CVE-2023-4911 is known-exploited."""
    out = tmp_path_factory.mktemp("kevdb") / "vulndb.sqlite"
    assert (
        main(["db", "build", "--from", str(FIXTURES / "osv"), str(FIXTURES / "kev"), "--out", str(out)]) == 0
    )
    return out


def scan_cli(
    capsys: pytest.CaptureFixture[str], layout: Path, db: Path, *extra: str
) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = main(["scan", f"oci:{layout}", "--db", str(db), "--format", "json", *extra])
    out = capsys.readouterr()
    return code, json.loads(out.out)["summary"] if out.out else {}, out.err


def identity(text: str, repository: str | None = None) -> str | None:
    return policy_for(load_policy(text, "p"), repository).identity()


# --- the command line -----------------------------------------------------------------------------

FAILING = """
max_counts: {CRITICAL: 2}
blocked_licenses: [MIT]
allowed_os: {debian: "13"}
blocked_packages:
  - name: glibc
    ecosystem: Debian
    versions: "<2.36-9+deb12u3"
"""


def test_policy_fails_with_every_reason_and_its_identity(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    policy = tmp_path / "policy.yaml"
    policy.write_text(FAILING)
    code, summary, err = scan_cli(capsys, layout, db, "--policy", str(policy))
    assert (code, err) == (1, "")
    assert (summary["gate"], summary["policy"]) == ("fail", identity(FAILING))
    assert summary["reasons"] == [
        "max_counts: 3 CRITICAL vulnerabilities, at most 2 allowed",
        "blocked_packages: 2 blocked packages: "
        "libc-bin 2.36-9+deb12u1 (Debian:12) by glibc [Debian] <2.36-9+deb12u3, "
        "libc6 2.36-9+deb12u1 (Debian:12) by glibc [Debian] <2.36-9+deb12u3",
        "blocked_licenses: 4 packages with a blocked license: @types/node 20.8.10 (MIT), "
        "lodash 4.17.15 (MIT), minimist 1.2.5 (MIT), urllib3 1.26.4 (MIT)",
        "allowed_os: debian 12 is older than the minimum release 13",
    ]


def test_passing_policy_exits_0_and_json_works_too(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    text = json.dumps(
        {
            "name": "ci",
            "max_counts": {"CRITICAL": 3, "HIGH": 6},
            "allow_known_exploited": False,
            "allow_secrets": False,
            "blocked_packages": ["log4j-*"],
            "allowed_os": {"debian": "12", "alpine": "3.19"},
        }
    )
    policy = tmp_path / "policy.json"
    policy.write_text(text)
    code, summary, err = scan_cli(capsys, layout, db, "--policy", str(policy))
    assert (code, err, summary["gate"], summary["reasons"]) == (0, "", "pass", [])
    assert summary["policy"] == identity(text)
    assert str(summary["policy"]).startswith("ci@sha256:")


def test_fail_on_with_policy_is_the_stricter_of_both(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    policy = tmp_path / "policy.yaml"
    policy.write_text("fail_on: CRITICAL\nfixable_only: true\n")
    high = ["fail_on: 9 vulnerabilities at or above HIGH (CRITICAL: 3, HIGH: 6)"]
    code, summary, _ = scan_cli(capsys, layout, db, "--policy", str(policy), "--fail-on", "high")
    assert (code, summary["reasons"]) == (1, high)
    policy.write_text("fail_on: HIGH\n")
    code, summary, _ = scan_cli(capsys, layout, db, "--policy", str(policy), "--fail-on", "critical")
    assert (code, summary["reasons"]) == (1, high)
    policy.write_text("fail_on: LOW\nfixable_only: true\n")
    code, summary, _ = scan_cli(capsys, layout, db, "--policy", str(policy))
    assert (code, summary["reasons"]) == (
        1,
        ["fail_on: 12 fixable vulnerabilities at or above LOW (CRITICAL: 3, HIGH: 6, MEDIUM: 3)"],
    )
    # --fail-on alone is the policy `fail_on: X`, and says so
    code, summary, _ = scan_cli(capsys, layout, db, "--fail-on", "high")
    assert (code, summary["reasons"], summary["policy"]) == (
        1,
        high,
        Policy(fail_on=Severity.HIGH).identity(),
    )
    code, summary, _ = scan_cli(capsys, layout, db)
    assert (code, summary["gate"], summary["policy"]) == (0, "pass", None)


def test_known_exploited_rule_on_the_kev_index(
    kev_db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    policy = tmp_path / "policy.yaml"
    policy.write_text("allow_known_exploited: false\n")
    code, summary, _ = scan_cli(capsys, layout, kev_db, "--policy", str(policy))
    assert (code, summary["reasons"]) == (
        1,
        ["allow_known_exploited: 2 known-exploited vulnerabilities (CVE-2023-4911 in libc-bin, libc6)"],
    )


def test_the_sample_policy_on_the_sample_image(
    kev_db: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    code, summary, _ = scan_cli(capsys, layout, kev_db, "--policy", str(SAMPLE_POLICY))
    assert (code, summary["policy"]) == (1, identity(SAMPLE_POLICY.read_text()))
    assert summary["reasons"] == [
        "fail_on: 3 fixable vulnerabilities at or above CRITICAL (CRITICAL: 3)",
        "allow_known_exploited: 2 known-exploited vulnerabilities (CVE-2023-4911 in libc-bin, libc6)",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fail_on: HIGH\nmax_severity: HIGH\n", "unknown key 'max_severity' (did you mean 'fail_on'?)"),
        ("fail_on: [HIGH\n", "not valid YAML or JSON at line 2: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_invalid_policy_exits_2_with_one_line(
    db: Path,
    sample: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    text: str,
    problem: str,
) -> None:
    layout, _ = sample
    policy = tmp_path / "bad.yaml"
    policy.write_text(text)
    code, summary, err = scan_cli(capsys, layout, db, "--policy", str(policy), "--fail-on", "high")
    assert (code, summary, err) == (2, {}, f"lifeguard: error: {policy}: {problem}\n")


def test_a_registry_source_gets_its_repository_override(tmp_path: Path) -> None:
    policy = load_policy("fail_on: CRITICAL\nrepositories:\n  - match: 'payments/*'\n    fail_on: LOW\n", "p")

    class Remote(OCILayoutSource):
        def __init__(self) -> None:
            self.reference = Reference("127.0.0.1:5000", "payments/api", "v1")

    assert _gate(policy, None, Remote()).fail_on is Severity.LOW
    local = DirSource(str(tmp_path))  # not a registry: the file's default
    assert _gate(policy, Severity.HIGH, local).fail_on is Severity.HIGH
    assert _gate(policy, None, local).fail_on is Severity.CRITICAL
    assert _gate(None, None, local) == Policy()


# --- the Lambda path ------------------------------------------------------------------------------

SERVICE_POLICY = """
name: lambda
fail_on: CRITICAL
repositories:
  - match: "sandbox/*"
    fail_on: null
    allow_known_exploited: false
"""


def request(repository: str, digest: str) -> ScanRequest:
    return ScanRequest(
        account="123456789012", region=REGION, repository=repository, digest=digest, tag="v1", pushed_at=NOW
    )


def test_scan_service_stores_the_repository_verdict_reasons_and_policy(
    store: ScanStore, db: Path, kev_db: Path, sample: tuple[Path, str]
) -> None:
    layout, digest = sample
    policy = load_policy(SERVICE_POLICY, "s3://cfg/policy.yaml")
    index, kev_index = VulnIndex(db), VulnIndex(kev_db)
    deps = ScanDeps(
        store=store,
        index=lambda: index,
        open_source=lambda _ref: OCILayoutSource(layout),
        policy=policy,
        now=lambda: NOW,
    )
    outcome = scan_pushed_image(request("payments/api", digest), deps)
    assert [(i.digest, i.gate) for i in outcome.images] == [(digest, "fail")]
    status, body = api.get_image(store, {"digest": digest})
    assert (status, body["gate"], body["policy"]) == (200, "fail", identity(SERVICE_POLICY))
    assert body["reasons"] == ["fail_on: 3 vulnerabilities at or above CRITICAL (CRITICAL: 3)"]

    # the same image pushed to a sandbox repository: that override decides (and is named)
    scan_pushed_image(request("sandbox/try", digest), deps)
    record = store.get_image(digest)
    assert record is not None
    sandbox = identity(SERVICE_POLICY, "sandbox/try")
    assert (record.gate, record.reasons, record.policy) == ("pass", [], sandbox)
    assert sandbox is not None and sandbox.startswith("lambda@sha256:") and sandbox != body["policy"]

    # re-matching with the KEV index applies the same repository's policy: the verdict flips
    batch = RematchBatch(index_version=kev_index.version, planned_at=NOW, digests=[digest])
    rematch = RematchDeps(store=store, index=lambda: kev_index, policy=policy, now=lambda: NOW)
    [result] = rematch_batch(batch, rematch).images
    assert (result.status, result.previous_gate, result.gate) == ("rematched", "pass", "fail")
    record = store.get_image(digest)
    assert record is not None
    assert (record.gate, record.policy, record.reasons) == (
        "fail",
        sandbox,
        ["allow_known_exploited: 2 known-exploited vulnerabilities (CVE-2023-4911 in libc-bin, libc6)"],
    )
    index.close()
    kev_index.close()


@pytest.fixture
def runtime_env(monkeypatch: pytest.MonkeyPatch, aws: None) -> Any:
    runtime.reset()
    yield monkeypatch
    runtime.reset()


def test_runtime_loads_the_policy_from_s3_or_a_path_once(
    runtime_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="policy.yaml", Body=SERVICE_POLICY.encode())
    runtime_env.setenv("LIFEGUARD_POLICY", "s3://cfg/policy.yaml")
    loaded = runtime.policy_file()
    assert isinstance(loaded, PolicyFile)
    assert loaded == load_policy(SERVICE_POLICY, "x")
    s3.put_object(Bucket="cfg", Key="policy.yaml", Body=b"fail_on: LOW\n")
    assert runtime.policy_file() is loaded  # once per process (cold start)
    assert runtime.scan_deps().policy is loaded and runtime.rematch_deps().policy is loaded

    runtime.reset()
    local = tmp_path / "policy.yaml"
    local.write_text("fail_on: HIGH\n")
    runtime_env.setenv("LIFEGUARD_POLICY", str(local))
    policy = runtime.policy_file()
    assert policy is not None and policy.fail_on is Severity.HIGH

    runtime.reset()
    runtime_env.delenv("LIFEGUARD_POLICY")
    assert runtime.policy_file() is None


def test_runtime_rejects_a_bad_or_missing_policy(runtime_env: pytest.MonkeyPatch) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="bad.yaml", Body=b"allow_secret: false\n")
    runtime_env.setenv("LIFEGUARD_POLICY", "s3://cfg/bad.yaml")
    with pytest.raises(PolicyError) as bad:
        runtime.policy_file()
    assert str(bad.value) == "s3://cfg/bad.yaml: unknown key 'allow_secret' (did you mean 'allow_secrets'?)"
    runtime.reset()
    runtime_env.setenv("LIFEGUARD_POLICY", "s3://cfg/missing.yaml")
    with pytest.raises(PolicyError) as missing:
        runtime.policy_file()
    assert str(missing.value).startswith("s3://cfg/missing.yaml: cannot read the policy file: ")
    assert "NoSuchKey" in str(missing.value)
