"""WWW-Authenticate parsing and the token / Basic state machine, without a network."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import RegistryError
from chalicelib.image.registry_auth import Challenge, RegistryAuth, basic_header, parse_www_authenticate


def test_parses_docker_hub_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    assert parse_www_authenticate([header]) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:samalba/my-app:pull,push",
            },
        )
    ]


def test_parses_several_challenges_unquoted_and_escaped_values() -> None:
    values = [
        'Basic realm="ECR", Bearer realm=https://r.example/t, error="insufficient_scope"',
        'Basic realm="a\\"b"',
    ]
    assert parse_www_authenticate(values) == [
        Challenge("basic", {"realm": "ECR"}),
        Challenge("bearer", {"realm": "https://r.example/t", "error": "insufficient_scope"}),
        Challenge("basic", {"realm": 'a"b'}),
    ]


def test_empty_and_scheme_only() -> None:
    assert parse_www_authenticate([]) == []
    assert parse_www_authenticate(["Negotiate"]) == [Challenge("negotiate", {})]


@given(
    realm=st.from_regex(r"https://[a-z]{1,10}\.example/[a-z,=/]{0,12}", fullmatch=True),
    service=st.text(
        st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=20
    ),
)
def test_round_trip_quoted_values(realm: str, service: str) -> None:
    [challenge] = parse_www_authenticate([f'Bearer realm="{realm}",service="{service}"'])
    assert challenge == Challenge("bearer", {"realm": realm, "service": service})


class FakeRealm:
    def __init__(self, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.status = status
        self.body = body if body is not None else {"token": "T1", "expires_in": 300}
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        self.calls.append((url, headers))
        return urllib3.HTTPResponse(
            body=json.dumps(self.body).encode(), status=self.status, preload_content=True
        )


def auth(
    realm: FakeRealm, credentials: tuple[str, str] | None = None, insecure: frozenset[str] = frozenset()
) -> RegistryAuth:
    return RegistryAuth("reg.io", (lambda host: credentials), insecure, realm, "test-agent")


def test_bearer_token_is_fetched_with_scopes_and_cached() -> None:
    realm = FakeRealm()
    state = auth(realm, ("bob", "pw"))
    scope = "repository:team/app:pull,push"
    challenge = Challenge(
        "bearer",
        {"realm": "https://auth.reg.io/token", "service": "reg", "scope": "repository:team/app:pull"},
    )
    assert state.header(scope) is None
    state.answer([challenge], scope, sent=None)
    assert realm.calls == [
        (
            "https://auth.reg.io/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush"
            "&scope=repository%3Ateam%2Fapp%3Apull",
            {"User-Agent": "test-agent", "Authorization": basic_header("bob", "pw")},
        )
    ]
    assert state.header(scope) == "Bearer T1"
    assert state.header("repository:team/app:pull") == "Bearer T1"  # push token serves pulls
    assert state.header("repository:other:pull") is None


def test_expired_token_is_not_used() -> None:
    state = auth(FakeRealm(body={"access_token": "T2", "expires_in": 1}))
    state.answer([Challenge("bearer", {"realm": "https://a.io/t"})], "repository:x:pull", sent=None)
    assert state.header("repository:x:pull") == "Bearer T2"  # ttl floor of 1 s
    state._tokens["repository:x:pull"] = ("T2", 0.0)
    assert state.header("repository:x:pull") is None


@pytest.mark.parametrize(
    ("realm", "insecure", "allowed"),
    [
        ("https://auth.io/token", frozenset(), True),
        ("http://auth.io/token", frozenset(), False),
        ("http://127.0.0.1:9/token", frozenset({"127.0.0.1:9"}), True),
        ("ftp://auth.io/token", frozenset({"auth.io"}), False),
    ],
)
def test_realm_must_be_https_or_insecure(realm: str, insecure: frozenset[str], allowed: bool) -> None:
    fake = FakeRealm()
    state = auth(fake, insecure=insecure)
    challenge = Challenge("bearer", {"realm": realm})
    if allowed:
        state.answer([challenge], "repository:x:pull", sent=None)
        assert len(fake.calls) == 1
    else:
        with pytest.raises(RegistryError, match="only https realms"):
            state.answer([challenge], "repository:x:pull", sent=None)
        assert fake.calls == []


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {}, "refused a token for repository:x:pull \\(HTTP 401\\); no credentials are configured"),
        (200, {"nothing": 1}, "returned no token"),
        (200, {"token": "t", "expires_in": "soon"}, "unreadable answer"),
    ],
)
def test_token_failures(status: int, body: dict[str, Any], message: str) -> None:
    state = auth(FakeRealm(status, body))
    with pytest.raises(RegistryError, match=message):
        state.answer([Challenge("bearer", {"realm": "https://a.io/t"})], "repository:x:pull", sent=None)


def test_basic_flow() -> None:
    state = auth(FakeRealm(), ("AWS", "secret"))
    state.answer([Challenge("basic", {"realm": "ECR"})], "repository:x:pull", sent=None)
    header = basic_header("AWS", "secret")
    assert header == "Basic QVdTOnNlY3JldA=="
    assert state.header("repository:anything:pull") == header
    with pytest.raises(RegistryError, match="rejected the configured credentials"):
        state.answer([Challenge("basic", {})], "repository:x:pull", sent=header)
    with pytest.raises(RegistryError, match="requires authentication \\(Basic\\)"):
        auth(FakeRealm()).answer([Challenge("basic", {})], "repository:x:pull", sent=None)
    with pytest.raises(RegistryError, match="without a Bearer or Basic challenge \\(negotiate\\)"):
        state.answer([Challenge("negotiate", {})], "repository:x:pull", sent=None)


def test_credentials_provider_is_asked_once() -> None:
    asked: list[str] = []

    def provider(host: str) -> tuple[str, str]:
        asked.append(host)
        return ("u", "p")

    state = RegistryAuth("reg.io:5000", provider, frozenset(), FakeRealm(), "ua")
    assert state.credentials() == ("u", "p")
    assert state.credentials() == ("u", "p")
    assert asked == ["reg.io:5000"]
