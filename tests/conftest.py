"""Shared pytest fixtures. One section per subsystem; keep each fixture small and documented.
Helpers that are more than a fixture live in their own module under tests/ (e.g.
tests/registry_server.py) and are only wired up here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import settings
from moto import mock_aws

from chalicelib.store import ScanStore
from chalicelib.vulndb.index import VulnIndex
from tests.registry_server import RegistryServer, require_registry, start_registry

# --- hypothesis: the same examples on every run (a red CI run must be reproducible); explore new
# ones on purpose with HYPOTHESIS_PROFILE=explore ----------------------------------------------------
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# --- OCI registry (real docker-registry on 127.0.0.1) -----------------------------------------


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One anonymous registry for the whole session (HTTP). Use unique repository names per test;
    blobs are shared across repositories, so never tamper with storage here (use make_registry)."""
    require_registry()
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """A factory for registries private to one test (`htpasswd=`, `token=` variants); all are
    stopped when the test ends."""
    require_registry()
    started: list[RegistryServer] = []

    def make(**kwargs: Any) -> RegistryServer:
        server = start_registry(tmp_path / f"registry-{len(started)}", **kwargs)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


# --- the sample image and the fixture vulnerability index (CLI, format and suppression tests) --


@pytest.fixture(scope="session")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index built from tests/fixtures/osv with the real `db build` command."""
    from chalicelib.cli import main

    out = tmp_path_factory.mktemp("db") / "vulndb.sqlite"
    assert (
        main(["db", "build", "--from", str(Path(__file__).parent / "fixtures" / "osv"), "--out", str(out)])
        == 0
    )
    return out


@pytest.fixture(scope="session")
def index(db: Path) -> VulnIndex:
    """The fixture index (tests/fixtures/osv) opened once; modules that need another index define
    their own `index` fixture, which takes precedence."""
    return VulnIndex(db)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sample image of `make run` as an OCI layout, and its manifest digest."""
    from chalicelib.local.sample_image import write_sample_layout

    layout = tmp_path_factory.mktemp("sample") / "layout"
    info = write_sample_layout(layout)
    assert info.manifest_digest is not None
    return layout, info.manifest_digest


# --- DynamoDB store on in-process moto ----------------------------------------------------------


@pytest.fixture
def table_only_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScanStore]:
    """A ScanStore on moto in-process, table only (no SBOM bucket): for trust items and audits."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        st = ScanStore(
            "lifeguard-test", None, boto3.client("dynamodb", region_name="us-east-1"), sleep=lambda _s: None
        )
        st.create_table()
        yield st
