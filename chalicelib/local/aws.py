"""Local AWS for the demo and the integration tests: moto in server mode (real wire protocol over
HTTP), the environment that points Lifeguard at it, the resources Lifeguard expects, and
real-shaped ECR events."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.image.registry_config import ecr_registry_host

LOCAL_ACCOUNT = "123456789012"  # moto's default account
LOCAL_REGION = "us-east-1"
LOCAL_BUCKET = "lifeguard-local"


@dataclass
class LocalAws:
    server: Any  # moto.server.ThreadedMotoServer (moto is a development dependency)
    endpoint: str

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> LocalAws:
    from moto.server import ThreadedMotoServer

    from chalicelib.local.moto_kms import patch_moto_kms_digest

    patch_moto_kms_digest()  # moto signs DIGEST messages wrongly; see the module

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return LocalAws(server=server, endpoint=f"http://{host}:{port}")


def local_environment(endpoint: str, db: Path, registry_authority: str | None) -> dict[str, str]:
    """Variables that point Lifeguard at local AWS; with a local registry, the ECR registry host's
    data plane is mirrored to it (moto has no ECR layer APIs)."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        "LIFEGUARD_TABLE": "lifeguard",
        "LIFEGUARD_IDEMPOTENCY_TABLE": "lifeguard-idempotency",
        "LIFEGUARD_BUCKET": LOCAL_BUCKET,
        "LIFEGUARD_DB": str(db),
        "LIFEGUARD_ACCOUNTS": LOCAL_ACCOUNT,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Lifeguard",
    }
    if registry_authority:
        env["LIFEGUARD_REGISTRY_MIRRORS"] = f"{ecr_host()}={registry_authority}"
        env["LIFEGUARD_INSECURE_REGISTRIES"] = registry_authority
    return env


def ecr_host() -> str:
    return ecr_registry_host(LOCAL_ACCOUNT, LOCAL_REGION)


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    """The Powertools idempotency table: partition key `id` (the CDK stack makes the real one)."""
    existing = dynamodb.list_tables()["TableNames"]
    if name not in existing:
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def ecr_push_event(
    repository: str, digest: str, tag: str | None, region: str = LOCAL_REGION
) -> dict[str, Any]:
    """An `ECR Image Action` PUSH event exactly as EventBridge delivers it (no tag when pushed by
    digest)."""
    detail: dict[str, Any] = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "action-type": "PUSH",
    }
    if tag is not None:
        detail["image-tag"] = tag
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": LOCAL_ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }
