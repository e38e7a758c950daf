"""The configuration contract: every variable read once at the edge into `Settings`, with the
documented defaults, and a bad value refused with a clear error instead of silently ignored."""

from __future__ import annotations

import pytest

from chalicelib.errors import InputError
from chalicelib.settings import Settings


def test_defaults_with_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.enforce, settings.admission_failure, settings.dry_run) == ("audit", "open", False)
    assert (settings.signing_key, settings.policy, settings.admission_token_secret) == (None, None, None)
    assert (settings.member_role_name, settings.external_id) == ("lifeguard-member", None)


def test_trust_variables_are_read() -> None:
    settings = Settings.from_env(
        {
            "LIFEGUARD_SIGNING_KEY": "awskms:///alias/lifeguard-signing",
            "LIFEGUARD_POLICY": "s3://bucket/policy.yaml",
            "LIFEGUARD_ENFORCE": " Enforce ",
            "LIFEGUARD_ADMISSION_FAILURE": "CLOSED",
            "LIFEGUARD_ADMISSION_TOKEN_SECRET": "lifeguard/admission-token",
            "LIFEGUARD_DRY_RUN": "true",
            "LIFEGUARD_MEMBER_ROLE_NAME": "security-audit",
            "LIFEGUARD_EXTERNAL_ID": "org-1234",
        }
    )
    assert settings.model_dump(
        include={
            "signing_key",
            "policy",
            "enforce",
            "admission_failure",
            "admission_token_secret",
            "dry_run",
            "member_role_name",
            "external_id",
        }
    ) == {
        "signing_key": "awskms:///alias/lifeguard-signing",
        "policy": "s3://bucket/policy.yaml",
        "enforce": "enforce",
        "admission_failure": "closed",
        "admission_token_secret": "lifeguard/admission-token",
        "dry_run": True,
        "member_role_name": "security-audit",
        "external_id": "org-1234",
    }


@pytest.mark.parametrize(
    ("name", "value"), [("LIFEGUARD_ENFORCE", "block"), ("LIFEGUARD_ADMISSION_FAILURE", "maybe")]
)
def test_a_bad_mode_is_refused(name: str, value: str) -> None:
    with pytest.raises(InputError, match="bad configuration"):
        Settings.from_env({name: value})
