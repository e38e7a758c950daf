"""The REST API Chalice creates (`RestAPI`), completed: X-Ray, access logs (KMS-encrypted log
group), stage metrics, throttling; optionally API Gateway's account-wide CloudWatch role."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack, aws_apigateway, aws_iam, aws_kms, aws_logs
from constructs import Construct

from lifeguard_infra.chalice_app import ChaliceApp
from lifeguard_infra.config import DeploymentConfig
from lifeguard_infra.skips import skip

REST_API_LOGICAL_ID = "RestAPI"
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"caller":"$context.identity.caller","user":"$context.identity.userArn",'
    '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
    '"resourcePath":"$context.resourcePath","status":"$context.status",'
    '"responseLength":"$context.responseLength","authorizerError":"$context.authorizer.error"}'
)
THROTTLE_RATE = 50
THROTTLE_BURST = 100


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        app: ChaliceApp,
        data_key: aws_kms.IKey,
        retention: aws_logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = aws_logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{config.prefix()}-access",
            retention=retention,
            encryption_key=data_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        api = app.resource(REST_API_LOGICAL_ID)
        skip(api, "CKV_AWS_120")
        api.add_property_override("TracingEnabled", True)
        api.add_property_override(
            "AccessLogSetting",
            {
                "DestinationArn": Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=self.access_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
                "Format": ACCESS_LOG_FORMAT,
            },
        )
        api.add_property_override(
            "MethodSettings",
            [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "MetricsEnabled": True,
                    "LoggingLevel": "ERROR",
                    "DataTraceEnabled": False,
                    "ThrottlingRateLimit": THROTTLE_RATE,
                    "ThrottlingBurstLimit": THROTTLE_BURST,
                }
            ],
        )
        if config.api_gateway_account_role:
            role = aws_iam.Role(
                self,
                "CloudWatchRole",
                assumed_by=aws_iam.ServicePrincipal("apigateway.amazonaws.com"),
                description="API Gateway (account-wide setting): writes access and execution logs",
                inline_policies={
                    "logs": aws_iam.PolicyDocument(
                        statements=[
                            aws_iam.PolicyStatement(
                                sid="ApiGatewayLogs",
                                actions=[
                                    "logs:CreateLogGroup",
                                    "logs:CreateLogStream",
                                    "logs:DescribeLogGroups",
                                    "logs:DescribeLogStreams",
                                    "logs:PutLogEvents",
                                ],
                                resources=[
                                    self.access_logs.log_group_arn,
                                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}"
                                    ":log-group:API-Gateway-Execution-Logs_*",
                                ],
                            )
                        ]
                    )
                },
            )
            account = aws_apigateway.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
            api.node.add_dependency(account)
