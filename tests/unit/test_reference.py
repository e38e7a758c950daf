"""Image reference parsing: the contract's `registry:HOST[:PORT]/REPO[:TAG|@DIGEST]` and friends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import InputError
from chalicelib.image.reference import Reference, parse_reference, validate_authority

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry:127.0.0.1:5000/app:1.0", Reference("127.0.0.1:5000", "app", "1.0", None)),
        ("127.0.0.1:5000/team/app", Reference("127.0.0.1:5000", "team/app", "latest", None)),
        (f"registry:localhost/app@{DIGEST}", Reference("localhost", "app", None, DIGEST)),
        (f"ghcr.io/org/app:v1@{DIGEST}", Reference("ghcr.io", "org/app", "v1", DIGEST)),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments/api:2024.05",
            Reference("123456789012.dkr.ecr.us-east-1.amazonaws.com", "payments/api", "2024.05", None),
        ),
        ("alpine", Reference("docker.io", "library/alpine", "latest", None)),
        ("alpine:3.19", Reference("docker.io", "library/alpine", "3.19", None)),
        ("bitnami/redis:7", Reference("docker.io", "bitnami/redis", "7", None)),
        ("docker.io/alpine", Reference("docker.io", "library/alpine", "latest", None)),
        ("index.docker.io/library/alpine:edge", Reference("docker.io", "library/alpine", "edge", None)),
        ("EXAMPLE.com:443/a/b/c:x_Y.z-1", Reference("example.com:443", "a/b/c", "x_Y.z-1", None)),
        ("[::1]:5000/app:1", Reference("[::1]:5000", "app", "1", None)),
        ("reg.io/a__b/c-d---e/f.g:t", Reference("reg.io", "a__b/c-d---e/f.g", "t", None)),
    ],
)
def test_parses_references(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


def test_ref_and_str_prefer_the_digest() -> None:
    ref = parse_reference(f"registry:reg.io:5000/app:v1@{DIGEST}")
    assert ref.ref == DIGEST
    assert str(ref) == f"reg.io:5000/app:v1@{DIGEST}"
    assert parse_reference("reg.io/app").ref == "latest"
    assert parse_reference("reg.io/app:v2").with_digest(DIGEST) == Reference("reg.io", "app", "v2", DIGEST)


def test_docker_hub_api_authority() -> None:
    assert parse_reference("alpine").api_authority == "registry-1.docker.io"
    assert parse_reference("quay.io/a/b").api_authority == "quay.io"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("registry:", "empty"),
        ("reg.io/App", "repository"),
        ("reg.io/app:", "tag"),
        ("reg.io/app:-bad", "tag"),
        ("reg.io/app:" + "t" * 129, "tag"),
        ("reg.io/app@sha256:abc", "digest"),
        ("reg.io/app@md5:" + "a" * 32, "digest"),
        ("reg.io//app", "repository"),
        ("reg.io/app/", "repository"),
        ("reg.io/a..b", "repository"),
        ("reg.io:99999/app", "port"),
        ("reg.io/" + "a" * 256, "longer"),
    ],
)
def test_rejects_malformed(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_reference(text)


def test_no_default_registry() -> None:
    with pytest.raises(InputError, match="names no registry host"):
        parse_reference("alpine", default_registry=None)
    assert parse_reference("localhost:5000/x", default_registry=None).registry == "localhost:5000"


def test_validate_authority() -> None:
    assert validate_authority(" Reg.IO:5000 ") == "reg.io:5000"
    with pytest.raises(InputError):
        validate_authority("http://reg.io")
    with pytest.raises(InputError):
        validate_authority("reg.io:0")


_component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.[a-z]{2,5}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    components=st.lists(_component, min_size=1, max_size=4),
    tag=st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    digest=st.none() | st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
)
def test_round_trip(
    host: str, port: int | None, components: list[str], tag: str | None, digest: str | None
) -> None:
    registry = f"{host}:{port}" if port else host
    text = (
        f"{registry}/{'/'.join(components)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    )
    ref = parse_reference(text)
    assert ref.registry == registry
    assert ref.repository == "/".join(components)
    assert ref.digest == digest
    assert ref.tag == (tag if tag else (None if digest else "latest"))
    assert parse_reference("registry:" + str(ref)) == ref
