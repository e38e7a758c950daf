"""A planted secret is found (exact rule, path, line, masked form) and its value appears nowhere:
not in the CLI's JSON or table output, not in any log line, not in the Lambda's answer, not in
any DynamoDB item, not in any S3 object (the SBOM)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.cli import main
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.local.aws import ecr_push_event
from chalicelib.local.sample_image import SAMPLE_CONFIG, SAMPLE_LAYERS, SAMPLES, files_of
from chalicelib.vulndb.index import build_index
from tests.integration.conftest import OSV_FIXTURES, Stack

pytestmark = pytest.mark.integration

KEY_ID = "AKIA" + "J7K2M9Q4W6E8R1T3"  # fake, planted
SECRET_KEY = "Xq7Lp2" + "Vn9Rt4Bw8Zc3Md6Kf1Hs5Gj0Ya2Ue7Io4P"  # fake, 40 characters
ENV_PASSWORD = "Pw9" + "Qz4Xk7Nb2Vt8Lm5Rc3"  # fake
PLANTED = (KEY_ID, SECRET_KEY, ENV_PASSWORD)
SETTINGS = f'AWS_ACCESS_KEY_ID = "{KEY_ID}"\naws_secret_access_key = "{SECRET_KEY}"\n'


def _needles() -> list[str]:
    """Each value, and its tail (masking may show a value's first characters, never its end)."""
    return [n for value in PLANTED for n in (value, value[6:])]


def _assert_absent(text: str, where: str) -> None:
    for needle in _needles():
        assert needle not in text, f"a planted secret leaked into {where}"


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(layout, manifest digest, the secret layer's diff_id)."""
    layers = [build_layer(files_of(SAMPLES / "rootfs" / name)) for name in SAMPLE_LAYERS]
    layers.append(build_layer({"srv/app/settings.py": SETTINGS.encode()}))
    config: dict[str, Any] = json.loads(json.dumps(SAMPLE_CONFIG))
    config["config"]["Env"].append(f"DB_PASSWORD={ENV_PASSWORD}")
    layout = tmp_path_factory.mktemp("leaky") / "layout"
    info = write_oci_layout(layout, layers, config=config, tag="1.0")
    assert info.manifest_digest is not None
    return layout, info.manifest_digest, info.diff_ids[-1]


def _expected(layer: str) -> list[tuple[str, str, str, str | None, int, str]]:
    return [
        ("CRITICAL", "aws-access-key-id", "srv/app/settings.py", layer, 1,
         f'AWS_ACCESS_KEY_ID = "AKIA{"*" * 16}"'),
        ("CRITICAL", "aws-secret-access-key", "srv/app/settings.py", layer, 2,
         f'aws_secret_access_key = "Xq7L{"*" * 36}"'),
        ("MEDIUM", "generic-secret-assignment", "config:env", None, 3,
         f'DB_PASSWORD="Pw9Q{"*" * 17}"'),
    ]  # fmt: skip


def _rows(secrets: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None, int, str]]:
    return sorted(
        (s["severity"], s["rule_id"], s["path"], s["layer"], s["line"], s["masked"]) for s in secrets
    )


def test_cli_json_and_table_never_print_the_value(
    leaky: tuple[Path, str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    layout, _, layer = leaky
    db = tmp_path / "vulndb.sqlite"
    build_index([OSV_FIXTURES], db)
    caplog.set_level(logging.DEBUG)
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--format", "json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert _rows(doc["secrets"]) == sorted(_expected(layer))
    assert doc["summary"]["secrets"] == 3
    assert all(len(s["fingerprint"]) == 32 for s in doc["secrets"])
    _assert_absent(out.out + out.err, "the JSON output")
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--format", "table"]) == 0
    out = capsys.readouterr()
    _assert_absent(out.out + out.err, "the table output")
    assert caplog.records, "the scan logs something: the check below must look at real records"
    for record in caplog.records:
        _assert_absent(record.getMessage() + repr(record.__dict__), "a log record")
    _assert_absent(caplog.text, "the log text")


def _all_dynamodb_items(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in runtime.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def _all_s3_objects(bucket: str) -> dict[str, bytes]:
    s3 = runtime.client("s3")
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def test_lambda_path_stores_findings_but_never_the_value(
    stack: Stack,
    chalice_client: Client,
    leaky: tuple[Path, str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    layout, digest, layer = leaky
    caplog.set_level(logging.DEBUG)
    assert stack.push(layout, "team/leaky", "1.0") == digest
    result = chalice_client.lambda_.invoke("on_ecr_image_action", ecr_push_event("team/leaky", digest, "1.0"))
    assert result.payload["status"] == "scanned"
    _assert_absent(json.dumps(result.payload), "the Lambda's answer")

    stored = stack.store.list_secrets(digest)
    assert _rows([s.model_dump(mode="json") for s in stored]) == sorted(_expected(layer))
    record = stack.store.get_image(digest)
    assert record is not None

    items = _all_dynamodb_items(runtime.settings().table)
    secret_items = [
        i for i in items if i["PK"]["S"] == f"IMAGE#{digest}" and i["SK"]["S"].startswith("SECRET#")
    ]
    assert len(secret_items) == 3
    _assert_absent(json.dumps(items), "a DynamoDB item")

    bucket = runtime.settings().bucket
    assert bucket is not None
    objects = _all_s3_objects(bucket)
    assert record.sbom_key in objects
    for key, body in objects.items():
        _assert_absent(body.decode("utf-8", "replace"), f"S3 object {key}")

    out = capsys.readouterr()
    _assert_absent(out.out + out.err, "stdout/stderr")
    assert caplog.records
    for log_record in caplog.records:
        _assert_absent(log_record.getMessage() + repr(log_record.__dict__), "a log record")
