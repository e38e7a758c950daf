"""`make run`: the whole build-stage path on one machine, no AWS account needed.

moto (server mode) plays AWS, Debian's docker-registry plays ECR's data plane, a sample image is
built as an OCI layout and pushed, a real-shaped `ECR Image Action` event goes through the real
Chalice handler, and the API is served locally against the same state."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

from chalice.app import Chalice

from chalicelib import handlers, runtime
from chalicelib.events import parse_ecr_event
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.registry import push_oci_layout
from chalicelib.local.aws import (
    LOCAL_ACCOUNT,
    create_idempotency_table,
    ecr_host,
    ecr_push_event,
    local_environment,
    start_moto,
)
from chalicelib.local.registry_process import RegistryProcess, registry_binary, start_registry_process
from chalicelib.local.sample_image import SAMPLE_OSV, SAMPLES, write_sample_layout
from chalicelib.models import SEVERITIES_WORST_FIRST
from chalicelib.scan_service import ScanDeps, ScanRequest, scan_pushed_image
from chalicelib.vulndb.index import build_index

REPOSITORY = "sample/app"
TAG = "1.0"
SIGNING_KEY = "awskms:///alias/lifeguard-signing"
REPO_ROOT = Path(__file__).resolve().parents[1]
#: a small sample of CISA's Known Exploited Vulnerabilities catalog (samples/kev/README.md)
SAMPLE_KEV = SAMPLES / "kev" / "known_exploited_vulnerabilities.json"


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(port: int = 8000, serve: bool = True) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="lifeguard-demo-"))
    aws = start_moto()
    registry: RegistryProcess | None = None
    try:
        _say(f"local AWS (moto server): {aws.endpoint}")
        if registry_binary():
            registry = start_registry_process(workdir / "registry")
            _say(f"local OCI registry (docker-registry): {registry.url}, serving {ecr_host()}")
        else:
            _say("docker-registry is not installed: the sample image is scanned from its OCI layout")
        db = workdir / "vulndb.sqlite"
        report = build_index([SAMPLE_OSV, SAMPLE_KEV], db)
        _say(
            f"vulnerability index: {report.records} OSV records from {SAMPLE_OSV}, "
            f"{len(report.kev)} known-exploited CVEs from {SAMPLE_KEV} -> {db}"
        )
        os.environ.update(local_environment(aws.endpoint, db, registry.authority if registry else None))
        if registry is not None:  # signatures are pushed next to the image: only with a registry
            os.environ["LIFEGUARD_SIGNING_KEY"] = SIGNING_KEY
        runtime.reset()
        handlers.reset()
        _provision(signing=registry is not None)

        layout = workdir / "layout"
        info = write_sample_layout(layout, TAG)
        digest = info.manifest_digest
        assert digest is not None
        _say(f"sample image: {layout} ({digest})")
        if registry is not None:
            pushed = push_oci_layout(
                layout, f"{ecr_host()}/{REPOSITORY}:{TAG}", config=runtime.registry_config()
            )
            _say(f"pushed to {ecr_host()}/{REPOSITORY}:{TAG} -> {pushed}")
            result = _send_push_event(digest)
        else:
            request = ScanRequest.from_event(parse_ecr_event(ecr_push_event(REPOSITORY, digest, TAG)))
            assert request is not None
            deps = ScanDeps(runtime.store(), runtime.vuln_index, lambda _ref: OCILayoutSource(layout))
            result = scan_pushed_image(request, deps).model_dump(mode="json")
        _say(f"handler result: {result}")
        _print_findings(digest)
        _print_signatures(digest)
        if serve:
            _serve(port, digest)
        return 0
    finally:
        if registry is not None:
            registry.stop()
        aws.stop()


def _provision(*, signing: bool) -> None:
    settings = runtime.settings()
    store = runtime.store()
    store.create_table()
    store.create_bucket()
    create_idempotency_table(runtime.client("dynamodb"), settings.idempotency_table)
    runtime.client("ecr").create_repository(repositoryName=REPOSITORY)
    if signing:
        kms = runtime.client("kms")
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=SIGNING_KEY.removeprefix("awskms:///"), TargetKeyId=key)
        _say(f"signing key (moto KMS, ECC_NIST_P256): {SIGNING_KEY}")


def _chalice_app() -> Chalice:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import app

    chalice_app: Chalice = app.app
    return chalice_app


def _send_push_event(digest: str) -> object:
    from chalice.test import Client

    event = ecr_push_event(REPOSITORY, digest, TAG)
    _say(f"sending ECR Image Action PUSH event {event['id']} to on_ecr_image_action")
    with Client(_chalice_app(), stage_name="local", project_dir=str(REPO_ROOT)) as client:
        return client.lambda_.invoke("on_ecr_image_action", event).payload


def _print_findings(digest: str) -> None:
    store = runtime.store()
    record = store.get_image(digest)
    assert record is not None, "the scan was not stored"
    counts = record.vulnerabilities or {}
    _say(
        f"stored in DynamoDB: {record.packages} packages, "
        + ", ".join(f"{s.value} {counts.get(s, 0)}" for s in SEVERITIES_WORST_FIRST)
    )
    page = store.list_findings(digest, limit=200)
    for vuln in page.items:
        fix = vuln.fixed_version or "no fix"
        kev = f"  KNOWN EXPLOITED (CISA KEV, added {vuln.kev_date_added})" if vuln.known_exploited else ""
        _say(f"  {vuln.severity.value:<8} {vuln.id:<16} {vuln.package} {vuln.installed_version} ({fix}){kev}")


def _print_signatures(digest: str) -> None:
    for record in runtime.store().get_signatures(digest):
        verified, problem = runtime.check_signature(record)
        state = "verifies" if verified else f"does NOT verify ({problem})"
        _say(
            f"signed: {record.registry}/{record.repository}:{record.signature_tag} by {record.key} "
            f"(verdict {record.verdict}; attestation {record.attestation_manifest_digest}); {state}"
        )


def _serve(port: int, digest: str) -> None:
    from chalice.config import Config
    from chalice.local import create_local_server

    server = create_local_server(_chalice_app(), Config(chalice_stage="local"), "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    _say("\nThe API (IAM auth is enforced by API Gateway in AWS; locally it is open):")
    for path in (
        f"/images/{digest}",
        f"/images/{digest}/findings?severity=CRITICAL,HIGH",
        f"/images/{digest}/signature",
        "/vulnerabilities/CVE-2023-4911/images",
        "/vulnerabilities/GHSA-j8r2-6x86-q33q/images",
        f"/images?repository={REPOSITORY}",
    ):
        _say(f"  curl -s '{base}{path}'")
    _say(f"\nlocal account {LOCAL_ACCOUNT}; press Ctrl-C to stop")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
