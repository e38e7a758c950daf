"""The stateful half: keys, tables, the bucket, the webhook secret.

Kept apart from the service stack so that a tear-down or re-creation of the service (functions,
API, queues, rules) never touches data. Tables, bucket, keys and secret are also retained when
this stack is deleted (docs/DEPLOY.md, tear-down). References go one way only (service -> data),
so the data stack never waits on the service."""

from __future__ import annotations

from typing import Any

from aws_cdk import (
    Aws,
    Duration,
    RemovalPolicy,
    Stack,
    aws_dynamodb,
    aws_iam,
    aws_kms,
    aws_s3,
    aws_secretsmanager,
)
from constructs import Construct

from lifeguard_infra.config import SIGNING_KEY_ALIAS, DeploymentConfig
from lifeguard_infra.skips import skip

#: the main table's TTL attribute (epoch seconds); items without it never expire
TABLE_TTL_ATTRIBUTE = "expires_at"
#: Powertools' DynamoDB persistence layer: key and TTL attributes of the idempotency table
IDEMPOTENCY_KEY_ATTRIBUTE = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"


class DataStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix = config.prefix()

        self.data_key = aws_kms.Key(
            self,
            "DataKey",
            alias=f"alias/{prefix}-data",
            description="Lifeguard data at rest: tables, bucket, logs, secret, alert topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_services_on_data_key()

        self.table = aws_dynamodb.Table(
            self,
            "Table",
            table_name=prefix,
            partition_key=aws_dynamodb.Attribute(name="PK", type=aws_dynamodb.AttributeType.STRING),
            sort_key=aws_dynamodb.Attribute(name="SK", type=aws_dynamodb.AttributeType.STRING),
            billing_mode=aws_dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=aws_dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=aws_dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TABLE_TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # chalicelib/store.py: one overloaded GSI, GSI1PK/GSI1SK, ALL projection
        self.table.add_global_secondary_index(
            index_name="GSI1",
            partition_key=aws_dynamodb.Attribute(name="GSI1PK", type=aws_dynamodb.AttributeType.STRING),
            sort_key=aws_dynamodb.Attribute(name="GSI1SK", type=aws_dynamodb.AttributeType.STRING),
            projection_type=aws_dynamodb.ProjectionType.ALL,
        )
        self.idempotency_table = aws_dynamodb.Table(
            self,
            "IdempotencyTable",
            table_name=f"{prefix}-idempotency",
            partition_key=aws_dynamodb.Attribute(
                name=IDEMPOTENCY_KEY_ATTRIBUTE, type=aws_dynamodb.AttributeType.STRING
            ),
            billing_mode=aws_dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=aws_dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=aws_dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.access_logs = aws_s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{prefix}-access-logs-{Aws.ACCOUNT_ID}-{Aws.REGION}",
            # S3 server access logging can only deliver to SSE-S3 buckets
            encryption=aws_s3.BucketEncryption.S3_MANAGED,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip(self.access_logs, "CKV_AWS_18")
        self.bucket = aws_s3.Bucket(
            self,
            "Artifacts",
            bucket_name=f"{prefix}-artifacts-{Aws.ACCOUNT_ID}-{Aws.REGION}",
            encryption=aws_s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="index-history",
                    prefix="vulndb/",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                aws_s3.LifecycleRule(
                    id="sbom-history",
                    prefix="sboms/",
                    noncurrent_version_expiration=Duration.days(90),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                aws_s3.LifecycleRule(
                    id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

        # S3 -> EventBridge `Object Created` starts the re-match fan-out (on_index_updated). Set on
        # the CloudFormation resource itself: CDK's `event_bridge_enabled` adds a custom-resource
        # Lambda with s3:PutBucketNotification on every bucket.
        bucket_resource = self.bucket.node.default_child
        assert isinstance(bucket_resource, aws_s3.CfnBucket)
        bucket_resource.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        # a new construct id per generation: CloudFormation creates a new key and, the old one
        # being retained, only drops it from the stack (asymmetric keys cannot rotate in place)
        version = config.signing_key_version
        self.signing_key = aws_kms.Key(
            self,
            "SigningKey" if version == 1 else f"SigningKeyV{version}",
            description=f"Lifeguard image signatures (cosign-compatible, ECDSA P-256), generation {version}",
            key_spec=aws_kms.KeySpec.ECC_NIST_P256,
            key_usage=aws_kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip(self.signing_key, "CKV_AWS_7")
        self.signing_alias = aws_kms.Alias(
            self, "SigningKeyAlias", alias_name=SIGNING_KEY_ALIAS, target_key=self.signing_key
        )

        self.token_secret = aws_secretsmanager.Secret(
            self,
            "AdmissionToken",
            secret_name=f"{prefix}/admission-webhook-token",
            description="Bearer token the EKS API server sends to POST /admission/validate",
            encryption_key=self.data_key,
            generate_secret_string=aws_secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _allow_services_on_data_key(self) -> None:
        """Services that use the key on Lifeguard's behalf: CloudWatch Logs (encrypted log groups),
        EventBridge (rules deliver to encrypted queues and DLQs), CloudWatch alarms (publish to
        the encrypted alert topic). Lifeguard's own roles get key use through IAM (grants.py)."""
        self.data_key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchLogs",
                principals=[aws_iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        self.data_key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="EventBridge",
                principals=[aws_iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        # AWS documents no source condition for alarm actions; the topic policy still decides
        # who may publish
        self.data_key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchAlarms",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )
