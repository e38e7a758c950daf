"""Build the CDK app: the stacks a deployment consists of, from the CDK context."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk

from lifeguard_infra.config import DeploymentConfig, default_context
from lifeguard_infra.data_stack import DataStack
from lifeguard_infra.member_stacks import MemberForwardingStack, MemberRoleStack
from lifeguard_infra.service_stack import ServiceStack

REPO_ROOT = Path(__file__).resolve().parents[2]
#: where the Chalice construct packages the app (it writes `./chalice.out`)
DEFAULT_WORK_DIR = REPO_ROOT / "build" / "chalice"
DEFAULT_OUTDIR = REPO_ROOT / "infra" / "cdk.out"

STACK_IDS = ("LifeguardData", "LifeguardService", "LifeguardMemberRole", "LifeguardMemberForwarding")


@dataclass(frozen=True)
class Stacks:
    data: DataStack
    service: ServiceStack
    member_role: MemberRoleStack
    member_forwarding: MemberForwardingStack


def build(app: cdk.App, *, source_dir: Path = REPO_ROOT, work_dir: Path = DEFAULT_WORK_DIR) -> Stacks:
    config = DeploymentConfig.from_context({"lifeguard": app.node.try_get_context("lifeguard")})
    env = cdk.Environment(account=config.lifeguard_account, region=config.lifeguard_region)
    # `chalice package` builds boto3 clients while packaging (no call is made)
    os.environ.setdefault("AWS_DEFAULT_REGION", config.lifeguard_region)
    prefix = config.prefix()
    data = DataStack(app, "LifeguardData", config=config, env=env, stack_name=f"{prefix}-data")
    service = ServiceStack(
        app,
        "LifeguardService",
        config=config,
        data=data,
        source_dir=source_dir,
        work_dir=work_dir,
        env=env,
        stack_name=f"{prefix}-service",
    )
    synthesizer = cdk.CliCredentialsStackSynthesizer  # StackSets: no bootstrap in member accounts
    member_role = MemberRoleStack(
        app,
        "LifeguardMemberRole",
        config=config,
        stack_name=f"{prefix}-member-role",
        synthesizer=synthesizer(),
    )
    member_forwarding = MemberForwardingStack(
        app,
        "LifeguardMemberForwarding",
        config=config,
        patterns=service.forwarded_patterns(),
        stack_name=f"{prefix}-member-forwarding",
        synthesizer=synthesizer(),
    )
    for stack in (data, service, member_role, member_forwarding):
        cdk.Tags.of(stack).add("application", "lifeguard")
        cdk.Tags.of(stack).add("lifeguard:stage", config.stage)
    return Stacks(data, service, member_role, member_forwarding)


def synth() -> cdk.App:
    """`python infra/app.py`: any working directory; CDK_OUTDIR (else infra/cdk.out)."""
    outdir = Path(os.environ.get("CDK_OUTDIR") or DEFAULT_OUTDIR).resolve()
    source_dir = Path(os.environ.get("LIFEGUARD_APP_DIR") or REPO_ROOT).resolve()
    work_dir = Path(os.environ.get("LIFEGUARD_CHALICE_WORKDIR") or DEFAULT_WORK_DIR).resolve()
    shutil.rmtree(work_dir / "chalice.out", ignore_errors=True)  # one package per synthesis
    app = cdk.App(outdir=str(outdir), context=default_context())
    build(app, source_dir=source_dir, work_dir=work_dir)
    app.synth()
    return app
