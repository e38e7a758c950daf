"""Least privilege, checked on the synthesized templates: explicit actions only, scoped
resources, one reviewed action set per function, and the member-account role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lifeguard_infra.grants import WILDCARD_RESOURCE_ACTIONS
from lifeguard_infra.registry import FUNCTIONS

from tests.infra.conftest import STACKS, one, resources_of

LOGS_AND_TRACING = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}
TABLE_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
TABLE_WRITE = TABLE_READ | {
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
}  # fmt: skip
SCAN = LOGS_AND_TRACING | TABLE_WRITE | {
    "s3:GetObject", "s3:PutObject",
    "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages",
    "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
    "kms:Sign", "kms:GetPublicKey", "kms:Decrypt", "kms:GenerateDataKey", "sts:AssumeRole",
}  # fmt: skip
#: the reviewed permissions of every function (a change here is a change a reviewer must see)
EXPECTED_ACTIONS = {
    "api_handler": LOGS_AND_TRACING | TABLE_WRITE | {
        "s3:GetObject", "kms:Decrypt", "kms:GenerateDataKey", "kms:GetPublicKey", "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
        "ecr:DescribeImages", "sts:AssumeRole",
    },
    "admission_authorizer": LOGS_AND_TRACING | {"secretsmanager:GetSecretValue", "kms:Decrypt"},
    "on_scan_request": SCAN | {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
    },
    "on_ecr_image_action": SCAN | {"sqs:SendMessage"},
    "on_index_updated": LOGS_AND_TRACING | {
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "s3:GetObject",
        "sqs:SendMessage", "sqs:GetQueueUrl", "kms:Decrypt", "kms:GenerateDataKey",
    },
    "on_rematch_request": LOGS_AND_TRACING | TABLE_WRITE | {
        "s3:GetObject",
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
        "kms:Decrypt", "kms:GenerateDataKey",
    },
    "refresh_index": LOGS_AND_TRACING | {
        "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "sqs:SendMessage", "kms:Decrypt",
        "kms:GenerateDataKey",
    },
    "on_ecs_task_state_change": LOGS_AND_TRACING | TABLE_WRITE | {
        "ecs:DescribeTasks", "ecs:StopTask", "kms:Decrypt", "kms:GenerateDataKey", "sts:AssumeRole",
        "sqs:SendMessage",
    },
}  # fmt: skip


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _identity_statements(templates: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(stack, role or policy logical id, statement) of every identity policy."""
    for stack in STACKS:
        for lid, res in templates[stack]["Resources"].items():
            props = res.get("Properties", {})
            documents = []
            if res["Type"] == "AWS::IAM::Role":
                documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
            elif res["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
                documents = [props["PolicyDocument"]]
            for document in documents:
                for statement in document["Statement"]:
                    yield stack, lid, statement


def _role_actions(templates: dict[str, Any], role_lid: str) -> set[str]:
    role = templates["LifeguardService"]["Resources"][role_lid]["Properties"]
    return {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
    }


def test_identity_policies_name_every_action_and_scope_every_resource(templates: dict[str, Any]) -> None:
    wildcard_uses = set()
    for stack, lid, statement in _identity_statements(templates):
        assert statement["Effect"] == "Allow", (stack, lid)
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], (stack, lid, actions)
        assert "NotAction" not in statement and "NotResource" not in statement
        resources = _as_list(statement["Resource"])
        if "*" in resources:
            assert resources == ["*"]
            assert set(actions) <= WILDCARD_RESOURCE_ACTIONS, (stack, lid, actions)
            wildcard_uses.update(actions)
    assert wildcard_uses == WILDCARD_RESOURCE_ACTIONS


def test_no_role_uses_managed_policies(templates: dict[str, Any]) -> None:
    for stack in STACKS:
        for lid, role in resources_of(templates[stack], "AWS::IAM::Role").items():
            assert "ManagedPolicyArns" not in role["Properties"], (stack, lid)
        assert resources_of(templates[stack], "AWS::IAM::ManagedPolicy") == {}


def test_roles_are_the_registry_functions_and_nothing_from_chalice(templates: dict[str, Any]) -> None:
    roles = resources_of(templates["LifeguardService"], "AWS::IAM::Role")
    named = sorted(r["Properties"].get("RoleName", "") for r in roles.values())
    assert named == sorted([f"lifeguard-prod-{spec.name}" for spec in FUNCTIONS] + [""])  # + API Gateway's
    (apigw,) = [r for r in roles.values() if "RoleName" not in r["Properties"]]
    assert apigw["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_function_permissions_are_the_reviewed_set(templates: dict[str, Any], spec: Any) -> None:
    role_lid = templates["LifeguardService"]["Resources"][spec.logical_id]["Properties"]["Role"][
        "Fn::GetAtt"
    ][0]
    assert _role_actions(templates, role_lid) == EXPECTED_ACTIONS[spec.name]


def test_scoped_resources_of_sensitive_actions(templates: dict[str, Any]) -> None:
    """Signing only with the signing key, ECS only on tasks, AssumeRole only on the member role
    inside the organisation, the webhook token only from its secret."""
    by_sid: dict[str, list[dict[str, Any]]] = {}
    for _, _, statement in _identity_statements(templates):
        by_sid.setdefault(statement.get("Sid", ""), []).append(statement)
    keys = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":kms:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":key/*",
            ],
        ]
    }
    for statement in by_sid["Sign"]:
        assert statement["Action"] == ["kms:GetPublicKey", "kms:Sign"]
        assert statement["Resource"] == keys
        assert statement["Condition"] == {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/lifeguard-signing"}
        }
    for statement in by_sid["Verify"]:
        assert statement["Action"] == "kms:GetPublicKey"
        assert statement["Resource"] == keys
        assert statement["Condition"] == {"StringEquals": {"kms:KeyUsage": "SIGN_VERIFY"}}
    assert len(by_sid["Sign"]) == 2 and len(by_sid["Verify"]) == 1
    for statement in by_sid["EcsEnforce"]:
        assert statement["Resource"]["Fn::Join"][1][-1] == ":task/*"
    for statement in by_sid["AssumeMemberRole"]:
        assert statement["Resource"] == {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/lifeguard-member"]]
        }
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-exampleorgid"}}
    (token,) = by_sid["AdmissionToken"]
    assert token["Resource"] == {
        "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefAdmissionToken45F5E3857838FC35"
    }
    for statement in by_sid["EcrPull"] + by_sid["EcrSignaturePush"]:
        assert statement["Resource"]["Fn::Join"][1][-1] == ":repository/*"


def test_resource_policies_grant_no_wildcard_actions(templates: dict[str, Any]) -> None:
    """Allow statements of key, bucket, queue, topic and bus policies name their actions. The one
    exception is AWS's default key-policy statement (the account itself, so that IAM decides);
    CDK's Secret adds `kms:GenerateDataKey*`/`kms:ReEncrypt*` via Secrets Manager only."""
    exceptions = []
    for stack in STACKS:
        for res in templates[stack]["Resources"].values():
            props = res.get("Properties", {})
            document = props.get("KeyPolicy") or props.get("PolicyDocument")
            if res["Type"] == "AWS::Events::EventBusPolicy":
                document = {"Statement": [props["Statement"]]}
            if document is None or res["Type"].startswith("AWS::IAM::"):
                continue
            for statement in document["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                wild = [a for a in _as_list(statement["Action"]) if "*" in a]
                if wild:
                    exceptions.append((res["Type"], tuple(wild), repr(statement.get("Condition"))))
    assert sorted(exceptions) == sorted(
        [
            ("AWS::KMS::Key", ("kms:*",), "None"),
            ("AWS::KMS::Key", ("kms:*",), "None"),
            (
                "AWS::KMS::Key",
                ("kms:GenerateDataKey*", "kms:ReEncrypt*"),
                repr({"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}),
            ),
        ]
    )


def test_member_role_is_exactly_what_lifeguard_does_in_a_member_account(templates: dict[str, Any]) -> None:
    _, role = one(templates["LifeguardMemberRole"], "AWS::IAM::Role", RoleName="lifeguard-member")
    props = role["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    trusted = [
        {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, f":iam::111111111111:role/lifeguard-prod-{name}"],
            ]
        }
        for name in ["api_handler", "on_ecr_image_action", "on_ecs_task_state_change", "on_scan_request"]
    ]
    assert trust == {
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"sts:ExternalId": "lifeguard-replace-me-0000"},
            "ArnEquals": {"aws:PrincipalArn": trusted},
        },
        "Effect": "Allow",
        "Principal": {
            "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:root"]]}
        },
    }
    assert props["MaxSessionDuration"] == 3600
    (policy,) = props["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["EcrToken"]["Action"] == "ecr:GetAuthorizationToken"
    assert statements["EcrPullAndSignaturePush"]["Action"] == sorted(
        [
            "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
            "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage",
            "ecr:UploadLayerPart",
        ]
    )  # fmt: skip
    assert statements["EcrPullAndSignaturePush"]["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":ecr:*:", {"Ref": "AWS::AccountId"}, ":repository/*"],
        ]
    }
    assert statements["EcsEnforce"]["Action"] == ["ecs:DescribeTasks", "ecs:StopTask"]
    assert statements["EcsEnforce"]["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ecs:*:", {"Ref": "AWS::AccountId"}, ":task/*"]]
    }
    assert sorted(statements) == ["EcrPullAndSignaturePush", "EcrToken", "EcsEnforce"]


def test_member_forwarding_sends_ecr_pushes_and_ecs_task_changes_to_the_central_bus(
    templates: dict[str, Any],
) -> None:
    forwarding = templates["LifeguardMemberForwarding"]
    bus = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":events:us-east-1:111111111111:event-bus/lifeguard-prod-events",
            ],
        ]
    }
    rules = resources_of(forwarding, "AWS::Events::Rule")
    patterns = sorted(r["Properties"]["EventPattern"]["detail-type"][0] for r in rules.values())
    assert patterns == ["ECR Image Action", "ECS Task State Change"]
    (role_lid,) = resources_of(forwarding, "AWS::IAM::Role")
    for rule in rules.values():
        assert "EventBusName" not in rule["Properties"]  # the member's default bus
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == bus
        assert target["RoleArn"] == {"Fn::GetAtt": [role_lid, "Arn"]}
    role = forwarding["Resources"][role_lid]["Properties"]
    assert role["Policies"][0]["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus, "Sid": "PutEventsToCentralBus"}
    ]


@pytest.mark.parametrize("stack", ["LifeguardMemberRole", "LifeguardMemberForwarding"])
def test_member_stacks_are_self_contained_for_stacksets(templates: dict[str, Any], stack: str) -> None:
    """No assets, no imports from other stacks, no CDK bootstrap in member accounts."""
    text = repr(templates[stack])
    assert "Fn::ImportValue" not in text
    assert "BootstrapVersion" not in text
    assert "cdk-hnb659fds" not in text
