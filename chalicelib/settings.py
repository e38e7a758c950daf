"""Runtime configuration from the environment (contract — configuration). Read once at the edge
and passed down; the core never reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

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
    #: the gate's policy file, a path or s3://bucket/key (`LIFEGUARD_POLICY`); None: the gate passes
    policy: str | None = None
    #: `awskms:///alias/NAME` (or a key id / ARN) that signs passing images (`LIFEGUARD_SIGNING_KEY`);
    #: None: nothing is signed, and enforcement treats every image as unsigned
    signing_key: str | None = None
    #: `audit` (default: decisions are recorded, nothing is stopped) or `enforce` (`LIFEGUARD_ENFORCE`)
    enforce: Literal["audit", "enforce"] = "audit"
    #: what the admission webhook answers when it cannot decide (`LIFEGUARD_ADMISSION_FAILURE`)
    admission_failure: Literal["open", "closed"] = "open"
    #: name or ARN of the Secrets Manager secret holding the admission webhook's bearer token
    #: (`LIFEGUARD_ADMISSION_TOKEN_SECRET`)
    admission_token_secret: str | None = None
    #: `LIFEGUARD_DRY_RUN=true`: enforcement records what enforce mode would do, and does nothing
    dry_run: bool = False
    #: the role assumed in member accounts (`LIFEGUARD_MEMBER_ROLE_NAME`) and its external id
    #: (`LIFEGUARD_EXTERNAL_ID`)
    member_role_name: str = "lifeguard-member"
    external_id: str | None = None

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
            "policy": env.get("LIFEGUARD_POLICY"),
            "signing_key": env.get("LIFEGUARD_SIGNING_KEY"),
            "enforce": env.get("LIFEGUARD_ENFORCE", "").strip().lower() or None,
            "admission_failure": env.get("LIFEGUARD_ADMISSION_FAILURE", "").strip().lower() or None,
            "admission_token_secret": env.get("LIFEGUARD_ADMISSION_TOKEN_SECRET"),
            "dry_run": env.get("LIFEGUARD_DRY_RUN", "").strip().lower() in ("1", "true", "yes", "on"),
            "member_role_name": env.get("LIFEGUARD_MEMBER_ROLE_NAME", "").strip(),
            "external_id": env.get("LIFEGUARD_EXTERNAL_ID", "").strip(),
        }
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v})
        except ValidationError as exc:
            raise InputError(f"bad configuration: {exc.errors()[0]['msg']}") from exc
