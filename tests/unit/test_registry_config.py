"""Registry allow-list, ECR hosts, insecure registries and mirrors from the environment."""

from __future__ import annotations

import pytest

from chalicelib.errors import InputError, RegistryNotAllowedError
from chalicelib.image.registry_config import Endpoint, RegistryConfig, ecr_registry_host

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_from_env_reads_every_variable() -> None:
    config = RegistryConfig.from_env(
        {
            "LIFEGUARD_REGISTRY_ALLOWLIST": " ghcr.io , 127.0.0.1:5000,,Quay.IO",
            "LIFEGUARD_ACCOUNTS": "123456789012,210987654321,123456789012",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "LIFEGUARD_INSECURE_REGISTRIES": "127.0.0.1:5000",
            "LIFEGUARD_REGISTRY_MIRRORS": f"{ECR}=127.0.0.1:5000",
        }
    )
    assert config.allowlist == frozenset({"ghcr.io", "127.0.0.1:5000", "quay.io"})
    assert config.accounts == ("123456789012", "210987654321")
    assert config.region == "us-east-1"
    assert config.ecr_hosts == frozenset({ECR, "210987654321.dkr.ecr.us-east-1.amazonaws.com"})
    assert config.insecure == frozenset({"127.0.0.1:5000"})
    assert config.mirrors == {ECR: "127.0.0.1:5000"}


def test_empty_environment_allows_nothing() -> None:
    config = RegistryConfig.from_env({})
    assert config.allowed == frozenset()
    assert not config.is_allowed("docker.io")


def test_accounts_default_to_the_caller_and_region_falls_back() -> None:
    config = RegistryConfig.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}, caller_account="111122223333")
    assert config.ecr_hosts == frozenset({"111122223333.dkr.ecr.eu-west-1.amazonaws.com"})
    explicit = RegistryConfig.from_env(
        {"AWS_REGION": "eu-west-1", "LIFEGUARD_ACCOUNTS": "444455556666"}, caller_account="111122223333"
    )
    assert explicit.accounts == ("444455556666",)


def test_no_region_means_no_ecr_hosts() -> None:
    assert RegistryConfig.from_env({"LIFEGUARD_ACCOUNTS": "123456789012"}).ecr_hosts == frozenset()


def test_china_region_host() -> None:
    assert (
        ecr_registry_host("123456789012", "cn-north-1") == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIFEGUARD_ACCOUNTS": "12345"}, "LIFEGUARD_ACCOUNTS: .*12-digit"),
        ({"LIFEGUARD_REGISTRY_ALLOWLIST": "https://ghcr.io"}, "LIFEGUARD_REGISTRY_ALLOWLIST"),
        ({"LIFEGUARD_INSECURE_REGISTRIES": "a b"}, "LIFEGUARD_INSECURE_REGISTRIES"),
        ({"LIFEGUARD_REGISTRY_MIRRORS": "ghcr.io"}, "LIFEGUARD_REGISTRY_MIRRORS: .*registry-host=host:port"),
        ({"LIFEGUARD_REGISTRY_MIRRORS": "ghcr.io=http://x"}, "LIFEGUARD_REGISTRY_MIRRORS"),
        ({"AWS_REGION": "moon"}, "AWS_REGION: .*region"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        RegistryConfig.from_env(env)


def test_exact_matching() -> None:
    config = RegistryConfig(allowlist=frozenset({"reg.io:5000", "ghcr.io"}))
    assert config.is_allowed("reg.io:5000")
    assert config.is_allowed("GHCR.io")
    assert not config.is_allowed("reg.io")  # port is part of the authority
    assert not config.is_allowed("reg.io:5001")
    assert not config.is_allowed("ghcr.io:443")
    assert not config.is_allowed("evil.ghcr.io")
    assert not config.is_allowed("ghcr.io.evil.com")
    assert not config.is_allowed("not a host")


def test_endpoint_https_by_default_http_only_when_insecure() -> None:
    config = RegistryConfig.model_validate(
        {"allowlist": "ghcr.io,127.0.0.1:5000", "insecure": "127.0.0.1:5000,10.0.0.1:80"}
    )
    assert config.endpoint("ghcr.io") == Endpoint(registry="ghcr.io", authority="ghcr.io", scheme="https")
    local = config.endpoint("127.0.0.1:5000")
    assert (local.scheme, local.base_url, local.mirrored) == ("http", "http://127.0.0.1:5000", False)


def test_insecure_alone_does_not_allow() -> None:
    config = RegistryConfig.model_validate({"insecure": "127.0.0.1:5000"})
    with pytest.raises(RegistryNotAllowedError, match=r"'127\.0\.0\.1:5000' is not allowed"):
        config.endpoint("127.0.0.1:5000")


def test_refusal_message_names_the_variables() -> None:
    with pytest.raises(RegistryNotAllowedError) as info:
        RegistryConfig().endpoint("evil.example.com")
    assert str(info.value) == (
        "registry 'evil.example.com' is not allowed: add it to LIFEGUARD_REGISTRY_ALLOWLIST (or its "
        "account to LIFEGUARD_ACCOUNTS for ECR); Lifeguard did not contact it"
    )
    assert info.value.code == "registry_not_allowed"


def test_mirror_routes_the_data_plane() -> None:
    config = RegistryConfig.from_env(
        {
            "LIFEGUARD_ACCOUNTS": "123456789012",
            "AWS_REGION": "us-east-1",
            "LIFEGUARD_INSECURE_REGISTRIES": "127.0.0.1:5000",
            "LIFEGUARD_REGISTRY_MIRRORS": f"{ECR}=127.0.0.1:5000",
        }
    )
    endpoint = config.endpoint(ECR)
    assert endpoint == Endpoint(registry=ECR, authority="127.0.0.1:5000", scheme="http", mirrored=True)
    # The mirror target is reachable as a mirror (insecure), not as a registry of its own.
    with pytest.raises(RegistryNotAllowedError):
        config.endpoint("127.0.0.1:5000")


def test_mirror_target_must_be_allowed_or_insecure() -> None:
    config = RegistryConfig.model_validate({"allowlist": "ghcr.io", "mirrors": "ghcr.io=mirror.example.com"})
    with pytest.raises(
        RegistryNotAllowedError, match=r"mirror 'mirror\.example\.com' of registry 'ghcr\.io'"
    ):
        config.endpoint("ghcr.io")
    allowed = RegistryConfig.model_validate(
        {"allowlist": "ghcr.io,mirror.example.com", "mirrors": "ghcr.io=mirror.example.com"}
    )
    assert allowed.endpoint("ghcr.io").base_url == "https://mirror.example.com"


def test_mirror_of_a_disallowed_registry_is_refused() -> None:
    config = RegistryConfig.model_validate(
        {"insecure": "127.0.0.1:5000", "mirrors": "evil.io=127.0.0.1:5000"}
    )
    with pytest.raises(RegistryNotAllowedError, match=r"'evil\.io' is not allowed"):
        config.endpoint("evil.io")


def test_docker_hub_api_host() -> None:
    config = RegistryConfig.model_validate({"allowlist": "docker.io"})
    assert config.endpoint("docker.io").base_url == "https://registry-1.docker.io"
