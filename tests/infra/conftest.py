"""Synthesize the CDK app once per session, the way an operator does (`python infra/app.py` in a
subprocess, another working directory, CDK_OUTDIR), from a copy of the app without
requirements.txt: Chalice then packages the app alone and nothing is downloaded. The real
package, with its dependencies, is built and checked by `make package`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "infra") not in sys.path:
    sys.path.append(str(REPO / "infra"))  # appended: the repository's own app.py stays first

STACKS = ("LifeguardData", "LifeguardService", "LifeguardMemberRole", "LifeguardMemberForwarding")


def _copy_app(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "chalicelib", target / "chalicelib", ignore=ignore)
    shutil.copy2(REPO / "app.py", target / "app.py")
    (target / ".chalice").mkdir()
    shutil.copy2(REPO / ".chalice" / "config.json", target / ".chalice" / "config.json")


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("infra")
    project = root / "project"
    project.mkdir()
    _copy_app(project)
    outdir = root / "cdk.out"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "LIFEGUARD_APP_DIR": str(project),
        "LIFEGUARD_CHALICE_WORKDIR": str(root / "work"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "PIP_NO_INDEX": "1",
    }
    env.pop("AWS_DEFAULT_REGION", None)
    done = subprocess.run(
        [sys.executable, str(REPO / "infra" / "app.py")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    yield outdir


@pytest.fixture(scope="session")
def templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((cdk_out / f"{name}.template.json").read_text(encoding="utf-8")) for name in STACKS
    }


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res["Type"] == kind}


def one(template: dict[str, Any], kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    """The single resource of `kind` whose properties include `props` (exact values)."""
    found = [
        (lid, res)
        for lid, res in resources_of(template, kind).items()
        if all(res.get("Properties", {}).get(k) == v for k, v in props.items())
    ]
    assert len(found) == 1, f"{len(found)} {kind} with {props}"
    return found[0]
