"""The data stack: tables, bucket, keys, secret (what survives a tear-down)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import one, resources_of


def test_main_table_matches_the_store(templates: dict[str, Any]) -> None:
    """Key schema and GSI as chalicelib/store.py's create_table; on-demand, PITR, KMS, TTL."""
    _, table = one(templates["LifeguardData"], "AWS::DynamoDB::Table", TableName="lifeguard-prod")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "GSI1",
            "KeySchema": [
                {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert sorted(a["AttributeName"] for a in props["AttributeDefinitions"]) == [
        "GSI1PK",
        "GSI1SK",
        "PK",
        "SK",
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_idempotency_table_matches_powertools(templates: dict[str, Any]) -> None:
    """Powertools' DynamoDB persistence layer: key `id`, TTL `expiration` (chalicelib/handlers.py)."""
    _, table = one(templates["LifeguardData"], "AWS::DynamoDB::Table", TableName="lifeguard-prod-idempotency")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]}
    assert table["DeletionPolicy"] == "Retain"


def test_artifact_bucket_is_private_encrypted_versioned_and_tls_only(templates: dict[str, Any]) -> None:
    template = Template.from_json(templates["LifeguardData"])
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "BucketName": {
                        "Fn::Join": [
                            "",
                            [
                                "lifeguard-prod-artifacts-",
                                {"Ref": "AWS::AccountId"},
                                "-",
                                {"Ref": "AWS::Region"},
                            ],
                        ]
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {
                                "BucketKeyEnabled": True,
                                "ServerSideEncryptionByDefault": {
                                    "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]},
                                    "SSEAlgorithm": "aws:kms",
                                },
                            }
                        ]
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": "AccessLogs8B620ECA"},
                        "LogFilePrefix": "artifacts/",
                    },
                }
            ),
        },
    )
    bucket = templates["LifeguardData"]["Resources"]["Artifacts82DD59A1"]
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["index-history"] == {
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        "Id": "index-history",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        "Prefix": "vulndb/",
        "Status": "Enabled",
    }
    assert rules["sbom-history"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert rules["abort-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # the TLS-only policy: deny every request without aws:SecureTransport
    _, policy = one(templates["LifeguardData"], "AWS::S3::BucketPolicy", Bucket={"Ref": "Artifacts82DD59A1"})
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": [
                {"Fn::GetAtt": ["Artifacts82DD59A1", "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": ["Artifacts82DD59A1", "Arn"]}, "/*"]]},
            ],
        }
    ]
    # no custom-resource Lambda for the notifications (CDK's event_bridge_enabled would add one)
    assert resources_of(templates["LifeguardData"], "AWS::Lambda::Function") == {}


def test_signing_key_is_p256_sign_verify_under_the_configured_alias(templates: dict[str, Any]) -> None:
    lid, key = one(templates["LifeguardData"], "AWS::KMS::Key", KeySpec="ECC_NIST_P256")
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"
    _, alias = one(templates["LifeguardData"], "AWS::KMS::Alias", AliasName="alias/lifeguard-signing")
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [lid, "Arn"]}


def test_data_key_rotates_and_lets_only_named_services_use_it(templates: dict[str, Any]) -> None:
    """AWS's default statement (the account, so IAM policies decide), CloudWatch Logs for this
    account's log groups, EventBridge for this account's rules, CloudWatch alarm actions, and the
    statement CDK's Secret adds for Secrets Manager."""
    key = templates["LifeguardData"]["Resources"]["DataKey17AFBB84"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    statements = [
        (json_key(st["Principal"]), st["Action"], st.get("Condition"))
        for st in key["Properties"]["KeyPolicy"]["Statement"]
    ]
    root = "AWS:arn:${AWS::Partition}:iam::111111111111:root"
    logs_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":logs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":log-group:*",
            ],
        ]
    }
    assert statements == [
        (root, "kms:*", None),
        (
            "Service:logs.${AWS::Region}.amazonaws.com",
            [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn}},
        ),
        (
            "Service:events.amazonaws.com",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        ),
        ("Service:cloudwatch.amazonaws.com", ["kms:Decrypt", "kms:GenerateDataKey"], None),
        (
            root,
            [
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        ),
    ]


def json_key(principal: dict[str, Any]) -> str:
    """`Kind:value` of a principal with CloudFormation joins flattened, for exact comparison."""
    ((kind, value),) = principal.items()
    values = value if isinstance(value, list) else [value]
    return f"{kind}:" + ",".join(sorted(_flatten(v) for v in values))


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_flatten(v) for v in value["Fn::Join"][1])
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    raise AssertionError(f"unexpected {value}")


def test_admission_token_secret_is_generated_and_encrypted(templates: dict[str, Any]) -> None:
    _, secret = one(
        templates["LifeguardData"],
        "AWS::SecretsManager::Secret",
        Name="lifeguard-prod/admission-webhook-token",
    )
    assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["DataKey17AFBB84", "Arn"]}
    assert secret["Properties"]["GenerateSecretString"] == {"ExcludePunctuation": True, "PasswordLength": 48}
    assert secret["DeletionPolicy"] == "Retain"


def test_a_new_signing_key_generation_moves_the_alias_and_keeps_the_old_key() -> None:
    """`signingKeyVersion: 2`: a new key (new logical id) under the same alias; the previous key
    leaves the template and, retained, stays in the account (DEPLOY.md, rotation)."""
    from aws_cdk import App
    from lifeguard_infra.config import DeploymentConfig, default_context
    from lifeguard_infra.data_stack import DataStack

    context = default_context()
    context["lifeguard"] = {**context["lifeguard"], "signingKeyVersion": 2}
    app = App(context={k: v for k, v in context.items() if k != "lifeguard"})
    stack = DataStack(app, "Data", config=DeploymentConfig.from_context(context))
    template = dict(Template.from_stack(stack).to_json())
    keys = {lid: res for lid, res in template["Resources"].items() if res["Type"] == "AWS::KMS::Key"}
    (signing,) = [lid for lid, res in keys.items() if res["Properties"].get("KeySpec") == "ECC_NIST_P256"]
    assert signing.startswith("SigningKeyV2")
    assert keys[signing]["DeletionPolicy"] == "Retain"
    assert keys[signing]["Properties"]["Description"].endswith("generation 2")
    _, alias = one(template, "AWS::KMS::Alias", AliasName="alias/lifeguard-signing")
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [signing, "Arn"]}
