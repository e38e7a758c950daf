"""What each member account runs (as CloudFormation StackSets, see docs/DEPLOY.md): the role
Lifeguard assumes there, and the rules that forward ECR pushes and ECS task changes to the central
bus. Self-contained templates: no assets, no cross-stack references, no bootstrap needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration, Stack, aws_events, aws_events_targets, aws_iam
from constructs import Construct

from lifeguard_infra.config import MEMBER_ROLE_NAME, DeploymentConfig
from lifeguard_infra.grants import ECR_PULL_ACTIONS, ECR_PUSH_ACTIONS, ECS_ENFORCE_ACTIONS
from lifeguard_infra.registry import FUNCTIONS, Grant
from lifeguard_infra.routing import central_bus_name, event_pattern


def member_role_trusted_functions() -> list[str]:
    """Functions whose roles may assume the member role: those granted ASSUME_MEMBER_ROLE."""
    return sorted(spec.name for spec in FUNCTIONS if Grant.ASSUME_MEMBER_ROLE in spec.grants)


class MemberRoleStack(Stack):
    """`lifeguard-member`: exactly what Lifeguard does in a member account: read images and push
    signatures (ECR), describe and stop tasks (ECS enforcement). Trusted only by Lifeguard's
    function roles (by ARN, checked with aws:PrincipalArn) presenting the external id."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        trusted = [
            f"arn:{Aws.PARTITION}:iam::{config.lifeguard_account}:role/{config.prefix()}-{name}"
            for name in member_role_trusted_functions()
        ]
        principal = aws_iam.AccountPrincipal(config.lifeguard_account).with_conditions(
            {
                "StringEquals": {"sts:ExternalId": config.external_id},
                "ArnEquals": {"aws:PrincipalArn": trusted},
            }
        )
        repositories = f"arn:{Aws.PARTITION}:ecr:*:{Aws.ACCOUNT_ID}:repository/*"
        self.role = aws_iam.Role(
            self,
            "MemberRole",
            role_name=MEMBER_ROLE_NAME,
            description="Lifeguard (central security account): image scan, signature push, ECS enforcement",
            assumed_by=principal,
            max_session_duration=Duration.hours(1),
            inline_policies={
                "lifeguard": aws_iam.PolicyDocument(
                    statements=[
                        aws_iam.PolicyStatement(
                            sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
                        ),
                        aws_iam.PolicyStatement(
                            sid="EcrPullAndSignaturePush",
                            actions=sorted(ECR_PULL_ACTIONS + ECR_PUSH_ACTIONS),
                            resources=[repositories],
                        ),
                        aws_iam.PolicyStatement(
                            sid="EcsEnforce",
                            actions=list(ECS_ENFORCE_ACTIONS),
                            resources=[f"arn:{Aws.PARTITION}:ecs:*:{Aws.ACCOUNT_ID}:task/*"],
                        ),
                    ]
                )
            },
        )


class MemberForwardingStack(Stack):
    """Rules on a member account's default bus that forward Lifeguard's events to the central bus
    (deploy in every region where the account pushes images or runs tasks)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        patterns: Mapping[str, Mapping[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bus_arn = (
            f"arn:{Aws.PARTITION}:events:{config.lifeguard_region}:{config.lifeguard_account}"
            f":event-bus/{central_bus_name(config)}"
        )
        central = aws_events.EventBus.from_event_bus_arn(self, "CentralBus", bus_arn)
        role = aws_iam.Role(
            self,
            "ForwardRole",
            assumed_by=aws_iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge: forward ECR/ECS events to Lifeguard's central bus",
            inline_policies={
                "forward": aws_iam.PolicyDocument(
                    statements=[
                        aws_iam.PolicyStatement(
                            sid="PutEventsToCentralBus", actions=["events:PutEvents"], resources=[bus_arn]
                        )
                    ]
                )
            },
        )
        for name, pattern in sorted(patterns.items()):
            ident = "".join(part.capitalize() for part in name.split("_"))
            rule = aws_events.Rule(
                self,
                f"Forward{ident}",
                description=f"Forward to Lifeguard ({name} events)",
                event_pattern=event_pattern(pattern),
            )
            rule.add_target(aws_events_targets.EventBus(central, role=role))
