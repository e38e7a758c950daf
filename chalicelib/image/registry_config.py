"""Which registries Lifeguard may contact, and how (see "contract — configuration").

Decisions, in one place:
- The allow-list is checked on the *logical* registry (the authority in the image reference)
  before any connection is opened. It holds `LIFEGUARD_REGISTRY_ALLOWLIST` plus the ECR
  registries `<account>.dkr.ecr.<region>.amazonaws.com` of `LIFEGUARD_ACCOUNTS` (default: the
  caller's account, which the edge passes in - this module never calls AWS). Matching is exact on
  `host[:port]`, the host compared case-insensitively; there are no wildcards.
- A mirror (`LIFEGUARD_REGISTRY_MIRRORS=registry=host:port`) moves the data plane of an allowed
  registry to another endpoint. That endpoint must itself be allowed or listed as insecure:
  a mirror can redirect traffic, so it is held to the same bar as a registry named directly.
  Credentials are still looked up for the logical registry (an ECR host keeps its ECR login).
- `LIFEGUARD_INSECURE_REGISTRIES` switches an authority (logical or mirror target) to plain HTTP;
  it never makes a registry allowed on its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import InputError, RegistryNotAllowedError
from chalicelib.image.reference import DOCKER_HUB, DOCKER_HUB_API, validate_authority

ENV_ALLOWLIST = "LIFEGUARD_REGISTRY_ALLOWLIST"
ENV_ACCOUNTS = "LIFEGUARD_ACCOUNTS"
ENV_INSECURE = "LIFEGUARD_INSECURE_REGISTRIES"
ENV_MIRRORS = "LIFEGUARD_REGISTRY_MIRRORS"
ENV_REGIONS = ("AWS_REGION", "AWS_DEFAULT_REGION")

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]+")


def _split(value: Any) -> Any:
    """Comma-separated env strings become lists; blanks are dropped."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _authority(value: str) -> str:
    try:
        return validate_authority(value)
    except InputError as exc:
        raise ValueError(str(exc)) from exc


def ecr_registry_host(account: str, region: str) -> str:
    """The ECR registry authority of an account in a region (China regions end in .com.cn)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


class Endpoint(BaseModel):
    """Where the API of a logical registry is reached: `base_url` + `/v2/...`."""

    model_config = ConfigDict(frozen=True)

    registry: str
    authority: str
    scheme: Literal["http", "https"]
    mirrored: bool = False

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.authority}"


class RegistryConfig(BaseModel):
    """The registry part of Lifeguard's configuration. Build it with `from_env` at the edge and
    pass it down; the fields also accept the raw comma-separated strings of the environment."""

    model_config = ConfigDict(frozen=True)

    allowlist: frozenset[str] = Field(default_factory=frozenset)
    accounts: tuple[str, ...] = ()
    region: str | None = None
    insecure: frozenset[str] = Field(default_factory=frozenset)
    mirrors: dict[str, str] = Field(default_factory=dict)

    @field_validator("allowlist", "insecure", mode="before")
    @classmethod
    def _authorities(cls, value: Any) -> Any:
        value = _split(value)
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(_authority(str(item)) for item in value)
        return value

    @field_validator("accounts", mode="before")
    @classmethod
    def _accounts(cls, value: Any) -> Any:
        value = _split(value)
        if isinstance(value, list | tuple):
            for account in value:
                if not _ACCOUNT_RE.fullmatch(str(account)):
                    raise ValueError(f"not a 12-digit AWS account id: {account!r}")
            return tuple(dict.fromkeys(str(a) for a in value))
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION_RE.fullmatch(value):
            raise ValueError(f"not an AWS region name: {value!r}")
        return value

    @field_validator("mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for item in _split(value):
                registry, sep, target = item.partition("=")
                if not sep or not registry.strip() or not target.strip():
                    raise ValueError(f"mirror entry {item!r} is not registry-host=host:port")
                pairs[registry.strip()] = target.strip()
            value = pairs
        if isinstance(value, Mapping):
            return {_authority(str(k)): _authority(str(v)) for k, v in value.items()}
        return value

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, caller_account: str | None = None
    ) -> RegistryConfig:
        """Read the LIFEGUARD_* variables (and AWS_REGION / AWS_DEFAULT_REGION for the ECR host
        names). `caller_account` is the default for LIFEGUARD_ACCOUNTS; the edge gets it from STS.
        Malformed values raise InputError naming the variable."""
        env = os.environ if environ is None else environ
        accounts = env.get(ENV_ACCOUNTS, "").strip() or (caller_account or "")
        region = next((env[name].strip() for name in ENV_REGIONS if env.get(name, "").strip()), None)
        raw = {
            "allowlist": env.get(ENV_ALLOWLIST, ""),
            "accounts": accounts,
            "region": region,
            "insecure": env.get(ENV_INSECURE, ""),
            "mirrors": env.get(ENV_MIRRORS, ""),
        }
        names = {
            "allowlist": ENV_ALLOWLIST,
            "accounts": ENV_ACCOUNTS,
            "region": "AWS_REGION",
            "insecure": ENV_INSECURE,
            "mirrors": ENV_MIRRORS,
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{names.get(str(err['loc'][0]), err['loc'][0]) if err['loc'] else 'config'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InputError(f"bad registry configuration: {problems}") from exc

    @property
    def ecr_hosts(self) -> frozenset[str]:
        """ECR registries of the configured accounts in the configured region (none without one)."""
        if self.region is None:
            return frozenset()
        return frozenset(ecr_registry_host(account, self.region) for account in self.accounts)

    @property
    def allowed(self) -> frozenset[str]:
        return self.allowlist | self.ecr_hosts

    def is_allowed(self, registry: str) -> bool:
        """Exact match of the normalised authority against the allow-list and the ECR hosts."""
        try:
            return validate_authority(registry) in self.allowed
        except InputError:
            return False

    def endpoint(self, registry: str) -> Endpoint:
        """Where to reach `registry`, after the allow-list check. Raises RegistryNotAllowedError
        (no connection has been attempted) when the registry, or its mirror, is not allowed."""
        try:
            logical = validate_authority(registry)
        except InputError as exc:
            raise RegistryNotAllowedError(str(exc)) from exc
        if logical not in self.allowed:
            raise RegistryNotAllowedError(
                f"registry {logical!r} is not allowed: add it to {ENV_ALLOWLIST} (or its account to "
                f"{ENV_ACCOUNTS} for ECR); Lifeguard did not contact it"
            )
        target = self.mirrors.get(logical)
        mirrored = target is not None
        if target is not None and target not in self.allowed and target not in self.insecure:
            raise RegistryNotAllowedError(
                f"mirror {target!r} of registry {logical!r} is not allowed: a mirror must be in "
                f"{ENV_ALLOWLIST} or {ENV_INSECURE}; Lifeguard did not contact it"
            )
        if target is None:
            target = DOCKER_HUB_API if logical == DOCKER_HUB else logical
        scheme: Literal["http", "https"] = "http" if target in self.insecure else "https"
        return Endpoint(registry=logical, authority=target, scheme=scheme, mirrored=mirrored)
