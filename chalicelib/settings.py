"""Runtime configuration from the environment (contract — configuration). Read once at the edge
and passed down; the core never reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.errors import InputError

DEFAULT_DB = Path.home() / ".cache" / "lifeguard" / "vulndb.sqlite"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table: str = "lifeguard"
    idempotency_table: str = "lifeguard-idempotency"
    bucket: str | None = None
    #: path or s3://bucket/key of the compiled vulnerability index
    db: str = str(DEFAULT_DB)
    region: str = "us-east-1"
    #: local path of an ignore file applied to every scan (`LIFEGUARD_IGNORE_FILE`)
    ignore_file: str | None = None
    #: local paths of OpenVEX documents applied to every scan (`LIFEGUARD_VEX`, comma-separated)
    vex: tuple[str, ...] = ()
    #: the re-match queue (`LIFEGUARD_REMATCH_QUEUE_URL`); None: looked up by its name
    rematch_queue_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw = {
            "table": env.get("LIFEGUARD_TABLE"),
            "idempotency_table": env.get("LIFEGUARD_IDEMPOTENCY_TABLE"),
            "bucket": env.get("LIFEGUARD_BUCKET"),
            "db": env.get("LIFEGUARD_DB"),
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "ignore_file": env.get("LIFEGUARD_IGNORE_FILE"),
            "vex": tuple(v.strip() for v in env.get("LIFEGUARD_VEX", "").split(",") if v.strip()),
            "rematch_queue_url": env.get("LIFEGUARD_REMATCH_QUEUE_URL"),
        }
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v})
        except ValidationError as exc:
            raise InputError(f"bad configuration: {exc.errors()[0]['msg']}") from exc
