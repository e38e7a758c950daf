"""The local stack for end-to-end tests: moto in server mode (real HTTP wire protocol), the real
docker-registry with ECR-style Basic auth (user `AWS`, password = the token moto's
GetAuthorizationToken returns), the vulnerability index built from tests/fixtures/osv, and the
Chalice app driven through `chalice.test.Client`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import handlers, runtime
from chalicelib.image.registry import push_oci_layout
from chalicelib.local.aws import (
    LOCAL_ACCOUNT,
    create_idempotency_table,
    ecr_host,
    local_environment,
    start_moto,
)
from chalicelib.store import ScanStore
from chalicelib.vulndb.index import build_index
from tests.registry_server import RegistryServer, start_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
OSV_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "osv"
#: moto's GetAuthorizationToken answers base64("AWS:<account>-auth-token")
ECR_PASSWORD = f"{LOCAL_ACCOUNT}-auth-token"


@dataclass
class Stack:
    registry: RegistryServer
    endpoint: str
    store: ScanStore

    def push(self, layout: Path, repository: str, tag: str) -> str:
        """Push an OCI layout to the ECR host (mirrored to the local registry) with ECR auth."""
        from chalicelib.ecr_auth import ecr_credentials_provider

        credentials = ecr_credentials_provider(lambda region: runtime.client("ecr", region))
        return push_oci_layout(
            layout,
            f"{ecr_host()}/{repository}:{tag}",
            config=runtime.registry_config(),
            credentials=credentials,
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    registry = start_registry(tmp_path_factory.mktemp("ecr-registry"), htpasswd={"AWS": ECR_PASSWORD})
    aws = start_moto()
    db = tmp_path_factory.mktemp("vulndb") / "vulndb.sqlite"
    build_index([OSV_FIXTURES], db)
    saved = dict(os.environ)
    os.environ.update(local_environment(aws.endpoint, db, registry.authority))
    runtime.reset()
    handlers.reset()
    try:
        store = runtime.store()
        store.create_table()
        store.create_bucket()
        create_idempotency_table(runtime.client("dynamodb"), runtime.settings().idempotency_table)
        yield Stack(registry=registry, endpoint=aws.endpoint, store=store)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset()
        handlers.reset()
        aws.stop()
        registry.stop()


@pytest.fixture(scope="session")
def chalice_client(stack: Stack) -> Iterator[Client]:
    import app

    with Client(app.app, stage_name="local", project_dir=str(REPO_ROOT)) as client:
        yield client


def sqs_event(client: Client, bodies: list[str]) -> dict[str, Any]:
    event: dict[str, Any] = client.events.generate_sqs_event(
        message_bodies=bodies, queue_name="lifeguard-scan-requests"
    )
    for i, record in enumerate(event["Records"]):
        record["messageId"] = f"msg-{i}"
    return event
