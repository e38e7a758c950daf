"""Deployment settings: CDK context (`infra/cdk.json`, `-c key=value`), validated once.

Everything an operator chooses per organisation lives here; everything else is fixed by the code
(queue names, the signing-key alias, the member role name) and documented in docs/DEPLOY.md."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

#: fixed by the application's configuration contract (chalicelib/settings.py, enforcement)
SIGNING_KEY_ALIAS = "alias/lifeguard-signing"
MEMBER_ROLE_NAME = "lifeguard-member"
INDEX_KEY = "vulndb/vulndb.sqlite"
POLICY_KEY = "policy/policy.yaml"


class ConfigError(ValueError):
    """The deployment context is invalid; the message names the key."""


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: Chalice stage; part of function, table and role names
    stage: str = Field(default="prod", pattern=r"^[a-z][a-z0-9]{1,11}$")
    #: AWS Organizations id: the central bus accepts events only from this organisation
    organization_id: str = Field(alias="organizationId", pattern=r"^o-[a-z0-9]{10,32}$")
    #: the member role's sts:ExternalId (confused-deputy guard; not a secret)
    external_id: str = Field(alias="externalId", min_length=16, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    #: the account that runs Lifeguard (member stacks trust its function roles)
    lifeguard_account: str = Field(alias="lifeguardAccount", pattern=r"^\d{12}$")
    #: the region of the central bus (member forwarding rules target it)
    lifeguard_region: str = Field(alias="lifeguardRegion", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    #: LIFEGUARD_ACCOUNTS: member accounts whose ECR registries may be scanned
    accounts: tuple[str, ...] = ()
    #: LIFEGUARD_REGISTRY_ALLOWLIST: other registries (`host[:port]`) Lifeguard may contact
    registry_allowlist: tuple[str, ...] = Field(default=(), alias="registryAllowlist")
    enforce: Literal["audit", "enforce"] = "audit"
    admission_failure: Literal["open", "closed"] = Field(default="open", alias="admissionFailure")
    log_retention_days: int = Field(default=90, alias="logRetentionDays")
    alarm_email: str | None = Field(default=None, alias="alarmEmail")
    #: reserved concurrency per function (registry values); off for accounts with a low limit
    reserved_concurrency: bool = Field(default=True, alias="reservedConcurrency")
    #: set LIFEGUARD_POLICY to s3://<bucket>/policy/policy.yaml (upload the policy first)
    gate_policy: bool = Field(default=False, alias="gatePolicy")
    #: generation of the signing key: raising it creates a new key under the same alias; the old
    #: one is retained (its signatures stay verifiable with its public key). docs/DEPLOY.md
    signing_key_version: int = Field(default=1, ge=1, alias="signingKeyVersion")
    #: manage API Gateway's account-wide CloudWatch role (needed for API access logs); turn off
    #: where the organisation already sets it
    api_gateway_account_role: bool = Field(default=True, alias="apiGatewayAccountRole")

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DeploymentConfig:
        raw = context.get("lifeguard")
        if not isinstance(raw, Mapping):
            raise ConfigError('CDK context needs a "lifeguard" object (see infra/cdk.json)')
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"lifeguard.{where}: {first['msg']}") from exc

    def prefix(self) -> str:
        """`lifeguard-<stage>`: Chalice's own function-name prefix, reused for every name."""
        return f"lifeguard-{self.stage}"


def default_context() -> dict[str, Any]:
    """cdk.json's context, for `python infra/app.py` without the CDK CLI (the CLI passes it)."""
    loaded = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    context = loaded.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{CDK_JSON}: context must be an object")
    return context
