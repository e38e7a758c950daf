"""Each `Grant` of the registry as explicit IAM statements: the reviewed replacement for Chalice's
policy autogeneration. Actions are always listed one by one; resources are always scoped, except
where AWS offers no resource-level permission (`WILDCARD_RESOURCE_ACTIONS`, checked by tests)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, aws_dynamodb, aws_iam, aws_kms, aws_s3, aws_secretsmanager, aws_sqs

from lifeguard_infra.config import INDEX_KEY, MEMBER_ROLE_NAME, POLICY_KEY, SIGNING_KEY_ALIAS
from lifeguard_infra.registry import Grant

#: the only actions allowed on `"Resource": "*"`: AWS defines no resource type for them.
#: ecr:GetAuthorizationToken returns a registry-wide token; X-Ray segments belong to no resource.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)

ECR_PULL_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:DescribeImages",
)
ECR_PUSH_ACTIONS = (
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
ECS_ENFORCE_ACTIONS = ("ecs:DescribeTasks", "ecs:StopTask")


@dataclass(frozen=True)
class Resources:
    """What the grants point at (from the data stack)."""

    table: aws_dynamodb.ITable
    idempotency_table: aws_dynamodb.ITable
    bucket: aws_s3.IBucket
    data_key: aws_kms.IKey
    queues: dict[str, aws_sqs.IQueue]
    token_secret: aws_secretsmanager.ISecret
    organization_id: str


@dataclass(frozen=True)
class Stmt:
    """One Allow statement; statements with the same `sid` are merged into one."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, str], ...] = ()


def _stmt(sid: str, actions: tuple[str, ...], resources: list[str]) -> Stmt:
    return Stmt(sid, actions, tuple(resources))


def _data_key(_sid: str, actions: tuple[str, ...], res: Resources) -> Stmt:
    return Stmt("DataKey", actions, (res.data_key.key_arn,))


def _objects(res: Resources, prefix: str) -> str:
    return str(res.bucket.arn_for_objects(f"{prefix}*"))


def _keys() -> str:
    return f"arn:{Aws.PARTITION}:kms:{Aws.REGION}:{Aws.ACCOUNT_ID}:key/*"


def _repositories() -> str:
    return f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{Aws.ACCOUNT_ID}:repository/*"


def statements(grant: Grant, res: Resources) -> list[Stmt]:
    """The statements of one grant. A new grant is one branch here plus its Grant member."""
    table_arns = [res.table.table_arn, f"{res.table.table_arn}/index/*"]
    if grant is Grant.TABLE_READ:
        return [
            _stmt("TableRead", ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"), table_arns),
            _data_key("TableKey", ("kms:Decrypt",), res),
        ]
    if grant is Grant.TABLE_WRITE:
        return [
            _stmt(
                "TableWrite",
                (
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                ),
                table_arns,
            ),
            _data_key("TableKey", ("kms:Decrypt", "kms:GenerateDataKey"), res),
        ]
    if grant is Grant.IDEMPOTENCY:
        return [
            _stmt(
                "Idempotency",
                ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
                [res.idempotency_table.table_arn],
            ),
            _data_key("IdempotencyKey", ("kms:Decrypt", "kms:GenerateDataKey"), res),
        ]
    if grant is Grant.SBOM_READ:
        return [
            _stmt("SbomRead", ("s3:GetObject",), [_objects(res, "sboms/")]),
            _data_key("SbomKey", ("kms:Decrypt",), res),
        ]
    if grant is Grant.SBOM_WRITE:
        return [
            _stmt("SbomWrite", ("s3:GetObject", "s3:PutObject"), [_objects(res, "sboms/")]),
            _data_key("SbomKey", ("kms:Decrypt", "kms:GenerateDataKey"), res),
        ]
    if grant is Grant.INDEX_READ:
        return [
            _stmt("IndexRead", ("s3:GetObject",), [res.bucket.arn_for_objects(INDEX_KEY)]),
            _data_key("IndexKey", ("kms:Decrypt",), res),
        ]
    if grant is Grant.INDEX_PUBLISH:
        return [
            _stmt(
                "IndexPublish",
                ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"),
                [_objects(res, "vulndb/")],
            ),
            _data_key("IndexKey", ("kms:Decrypt", "kms:GenerateDataKey"), res),
        ]
    if grant is Grant.POLICY_READ:
        return [
            _stmt("PolicyRead", ("s3:GetObject",), [res.bucket.arn_for_objects(POLICY_KEY)]),
            _data_key("PolicyKey", ("kms:Decrypt",), res),
        ]
    if grant is Grant.REMATCH_SEND:
        return [
            _stmt("RematchSend", ("sqs:SendMessage", "sqs:GetQueueUrl"), [res.queues["rematch"].queue_arn]),
            _data_key("RematchKey", ("kms:Decrypt", "kms:GenerateDataKey"), res),
        ]
    if grant is Grant.ECR_PULL:
        return [
            _stmt("EcrToken", ("ecr:GetAuthorizationToken",), ["*"]),
            _stmt("EcrPull", ECR_PULL_ACTIONS, [_repositories()]),
        ]
    if grant is Grant.ECR_SIGNATURE_PUSH:
        return [_stmt("EcrSignaturePush", ECR_PUSH_ACTIONS, [_repositories()])]
    if grant is Grant.SIGN:
        # by alias, not by key ARN: a new key generation (DEPLOY.md, rotation) moves the alias, and
        # the roles follow without a cross-stack reference that CloudFormation could not update
        return [
            Stmt(
                "Sign",
                ("kms:Sign", "kms:GetPublicKey"),
                (_keys(),),
                (("ForAnyValue:StringEquals", "kms:ResourceAliases", SIGNING_KEY_ALIAS),),
            )
        ]
    if grant is Grant.VERIFY:
        # public keys of signing keys, current and retired generations (signatures outlive a key)
        return [
            Stmt(
                "Verify",
                ("kms:GetPublicKey",),
                (_keys(),),
                (("StringEquals", "kms:KeyUsage", "SIGN_VERIFY"),),
            )
        ]
    if grant is Grant.ECS_ENFORCE:
        return [
            _stmt(
                "EcsEnforce",
                ECS_ENFORCE_ACTIONS,
                [f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:task/*"],
            )
        ]
    if grant is Grant.ASSUME_MEMBER_ROLE:
        return [
            Stmt(
                "AssumeMemberRole",
                ("sts:AssumeRole",),
                (f"arn:{Aws.PARTITION}:iam::*:role/{MEMBER_ROLE_NAME}",),
                (("StringEquals", "aws:ResourceOrgID", res.organization_id),),
            )
        ]
    if grant is Grant.ADMISSION_TOKEN:
        return [
            _stmt("AdmissionToken", ("secretsmanager:GetSecretValue",), [res.token_secret.secret_arn]),
            _data_key("AdmissionTokenKey", ("kms:Decrypt",), res),
        ]
    raise ValueError(f"grant {grant} has no statements")


def policy_document(stmts: list[Stmt]) -> aws_iam.PolicyDocument:
    """Merge statements by sid (union of actions and resources; conditions must agree) into one
    policy document with sorted, de-duplicated actions: what a reviewer reads."""
    merged: dict[str, tuple[set[str], list[str], tuple[tuple[str, str, str], ...]]] = {}
    for st in stmts:
        actions, resources, conditions = merged.setdefault(st.sid, (set(), [], st.conditions))
        if conditions != st.conditions:
            raise ValueError(f"statement {st.sid}: conflicting conditions")
        actions.update(st.actions)
        resources.extend(r for r in st.resources if r not in resources)
    document = aws_iam.PolicyDocument()
    for sid, (actions, resources, conditions) in merged.items():
        cond: dict[str, dict[str, str]] = {}
        for operator, key, value in conditions:
            cond.setdefault(operator, {})[key] = value
        document.add_statements(
            aws_iam.PolicyStatement(
                sid=sid, actions=sorted(actions), resources=resources, conditions=cond or None
            )
        )
    return document
