"""ECR logins (moto in-process) turned into registry credentials."""

from __future__ import annotations

import base64
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.ecr_auth import (
    caller_account_id,
    decode_authorization_token,
    ecr_account_of,
    ecr_basic_credentials,
    ecr_credentials_provider,
)
from chalicelib.errors import RegistryError

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3


def test_ecr_basic_credentials_decode_the_token(aws: Any) -> None:
    client = aws.client("ecr", region_name="us-east-1")
    token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    expected_password = base64.b64decode(token).decode().split(":", 1)[1]
    assert ecr_basic_credentials(ECR_HOST, client) == ("AWS", expected_password)
    assert expected_password


def test_provider_caches_and_ignores_other_registries(aws: Any) -> None:
    regions: list[str] = []

    def client_for(region: str) -> Any:
        regions.append(region)
        return aws.client("ecr", region_name=region)

    provider = ecr_credentials_provider(client_for)
    assert provider("ghcr.io") is None
    first = provider("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert first is not None and first[0] == "AWS"
    assert provider("123456789012.dkr.ecr.eu-west-1.amazonaws.com") == first
    assert regions == ["eu-west-1"]


def test_caller_account(aws: Any) -> None:
    assert caller_account_id(aws.client("sts", region_name="us-east-1")) == "123456789012"


def test_ecr_account_of() -> None:
    assert ecr_account_of(ECR_HOST) == "123456789012"
    assert ecr_account_of("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com") == "123456789012"
    assert ecr_account_of("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443") == "123456789012"
    assert ecr_account_of("ghcr.io") is None
    assert ecr_account_of("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io") is None


def test_bad_tokens_and_hosts() -> None:
    with pytest.raises(RegistryError, match="not base64 user:password"):
        decode_authorization_token("!!!")
    with pytest.raises(RegistryError, match="not base64 user:password"):
        decode_authorization_token(base64.b64encode(b"no-colon").decode())
    with pytest.raises(RegistryError, match="is not an ECR registry host"):
        ecr_basic_credentials("ghcr.io", object())


def test_api_failure_is_a_registry_error() -> None:
    class Failing:
        def get_authorization_token(self, **kwargs: Any) -> Any:
            raise RuntimeError("AccessDenied")

    with pytest.raises(RegistryError, match=r"GetAuthorizationToken failed for .*AccessDenied"):
        ecr_basic_credentials(ECR_HOST, Failing())
