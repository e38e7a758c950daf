"""The Chalice app as a CDK construct (`chalice.cdk.Chalice`), plus the two things the construct
does not do for us: name the stage, and tell the caller what Chalice packaged (its SAM template),
so every function it contains can be checked against the registry and completed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import CfnResource
from chalice.cdk import Chalice
from constructs import Construct

from lifeguard_infra.package import add_bytecode

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


class _BytecodeChalice(Chalice):
    """Chalice's construct, with bytecode compiled into the zip before CDK stages it as an
    asset (see lifeguard_infra.package.add_bytecode)."""

    def _package_app(self) -> None:
        super()._package_app()
        add_bytecode(Path(self._sam_package_dir) / "deployment.zip")


class _StageScope(Construct):
    """Chalice names the stage after `str(scope)` (a construct path like `Stack/Id`); this scope
    answers with the stage name instead, so functions are `lifeguard-<stage>-<name>`."""

    def __init__(self, scope: Construct, construct_id: str, stage: str) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage

    def to_string(self) -> str:
        return self._stage


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """The construct writes its packages to `./chalice.out`: keep that out of the caller's cwd."""
    path.mkdir(parents=True, exist_ok=True)
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class ChaliceApp(Construct):
    """`chalice package` of `source_dir` for `stage`, included into the stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        work_dir: Path,
        stage: str,
        stage_config: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, construct_id)
        stage_scope = _StageScope(self, "Stage", stage)
        with _working_directory(work_dir):
            self.chalice = _BytecodeChalice(
                stage_scope, "Chalice", source_dir=str(source_dir), stage_config=dict(stage_config)
            )
        package_dir = Path(self.chalice._sam_package_dir)
        #: the SAM template as `chalice package` wrote it (before CDK's asset rewrite)
        self.sam: dict[str, Any] = json.loads((package_dir / "sam.json").read_text(encoding="utf-8"))

    def function_logical_ids(self) -> list[str]:
        return sorted(
            lid for lid, res in self.sam["Resources"].items() if res.get("Type") == SERVERLESS_FUNCTION
        )

    def events(self, logical_id: str) -> dict[str, Any]:
        """The function's `Events` as Chalice wrote them (type and properties by event name)."""
        events: dict[str, Any] = self.sam["Resources"][logical_id]["Properties"].get("Events", {})
        return events

    def resource(self, logical_id: str) -> CfnResource:
        resource = self.chalice.get_resource(logical_id)
        if not isinstance(resource, CfnResource):
            raise TypeError(f"{logical_id} is not a resource of the Chalice template")
        return resource
