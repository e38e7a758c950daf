"""Every Lambda function of the Chalice app, completed where Chalice stops: an explicit role per
function (from the registry's grants), its log group (retention, KMS), memory, timeout, ephemeral
storage, reserved concurrency, X-Ray, `ReportBatchItemFailures` on SQS sources, dead-letter queues
for asynchronous invocations. Chalice's own EventBridge rules and schedules are taken out of its
template and handed to `routing.py`, which recreates them with a DLQ and a retry policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy, aws_iam, aws_lambda, aws_logs, aws_sqs
from constructs import Construct

from lifeguard_infra.chalice_app import ChaliceApp
from lifeguard_infra.config import (
    INDEX_KEY,
    MEMBER_ROLE_NAME,
    POLICY_KEY,
    SIGNING_KEY_ALIAS,
    DeploymentConfig,
)
from lifeguard_infra.grants import WILDCARD_RESOURCE_ACTIONS, Resources, Stmt, policy_document, statements
from lifeguard_infra.registry import FUNCTIONS, FunctionSpec, check_packaged, function, queue
from lifeguard_infra.skips import skip

#: asynchronous invocations (EventBridge, schedule): Lambda's own retries before the DLQ
ASYNC_RETRIES = 2
ASYNC_MAX_EVENT_AGE_S = 3600

#: CloudWatch Logs' allowed retentions (days) by CDK's enum name
_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
    1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
}  # fmt: skip


def log_retention(days: int) -> aws_logs.RetentionDays:
    name = _RETENTION.get(days)
    if name is None:
        raise ValueError(f"logRetentionDays {days} is not a CloudWatch Logs retention: {sorted(_RETENTION)}")
    retention: aws_logs.RetentionDays = getattr(aws_logs.RetentionDays, name)
    return retention


@dataclass
class Triggers:
    """What Chalice wired to EventBridge, by function name (rebuilt by routing.py)."""

    patterns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schedules: dict[str, list[str]] = field(default_factory=dict)


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        resources: Resources,
        event_failures: aws_sqs.IQueue,
        source_dir: Path,
        work_dir: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._resources = resources
        self._event_failures = event_failures
        self.roles: dict[str, aws_iam.Role] = {}
        self.log_groups: dict[str, aws_logs.LogGroup] = {}
        self.triggers = Triggers()
        self._imported: dict[str, aws_lambda.IFunction] = {}
        retention = log_retention(config.log_retention_days)
        for spec in FUNCTIONS:
            self.log_groups[spec.name] = aws_logs.LogGroup(
                self,
                f"{spec.logical_id}Logs",
                log_group_name=f"/aws/lambda/{self.function_name(spec)}",
                retention=retention,
                encryption_key=resources.data_key,
                removal_policy=RemovalPolicy.DESTROY,
            )
            self.roles[spec.name] = aws_iam.Role(
                self,
                f"{spec.logical_id}Role",
                role_name=self.function_name(spec),
                description=f"Lifeguard {spec.name}: {spec.purpose}"[:1000],
                assumed_by=aws_iam.ServicePrincipal("lambda.amazonaws.com"),
                inline_policies={"lifeguard": policy_document(self._statements(spec))},
            )
        self.app = ChaliceApp(
            self,
            "App",
            source_dir=source_dir,
            work_dir=work_dir,
            stage=config.stage,
            stage_config={
                "autogen_policy": False,
                "manage_iam_role": False,
                # replaced per function below; a real role so nothing is ever left without one
                "iam_role_arn": self.roles["api_handler"].role_arn,
                "xray": True,
                "api_gateway_stage": "api",
                "environment_variables": self._environment(),
            },
        )
        check_packaged(self.app.function_logical_ids())
        for spec in FUNCTIONS:
            self._complete(spec)

    def function_name(self, spec: FunctionSpec) -> str:
        return f"{self._config.prefix()}-{spec.name}"

    def function(self, name: str) -> aws_lambda.IFunction:
        """The Chalice function `name`, as a CDK function of this stack's environment: so that
        rule targets add their invoke permission (`chalice.cdk`'s `get_function` imports by ARN
        token, for which CDK cannot tell the account and adds none)."""
        spec = function(name)
        if spec.name not in self._imported:
            self._imported[spec.name] = aws_lambda.Function.from_function_attributes(
                self,
                f"{spec.logical_id}Function",
                function_arn=self.app.resource(spec.logical_id).get_att("Arn").to_string(),
                same_environment=True,
            )
        return self._imported[spec.name]

    def _statements(self, spec: FunctionSpec) -> list[Stmt]:
        res = self._resources
        log_group = self.log_groups[spec.name]
        stmts = [
            Stmt("Logs", ("logs:CreateLogStream", "logs:PutLogEvents"), (log_group.log_group_arn,)),
            Stmt(
                "Tracing",
                tuple(sorted(a for a in WILDCARD_RESOURCE_ACTIONS if a.startswith("xray:"))),
                ("*",),
            ),
            # environment variables are encrypted with the data key
            Stmt("DataKey", ("kms:Decrypt",), (res.data_key.key_arn,)),
        ]
        for grant in sorted(spec.grants, key=lambda g: g.value):
            stmts += statements(grant, res)
        if spec.consumes:
            stmts.append(
                Stmt(
                    "ConsumeQueue",
                    (
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility",
                    ),
                    (res.queues[spec.consumes].queue_arn,),
                )
            )
            stmts.append(Stmt("DataKey", ("kms:Decrypt",), (res.data_key.key_arn,)))
        if spec.asynchronous:
            stmts.append(Stmt("FailedEvents", ("sqs:SendMessage",), (self._event_failures.queue_arn,)))
            stmts.append(Stmt("DataKey", ("kms:Decrypt", "kms:GenerateDataKey"), (res.data_key.key_arn,)))
        return stmts

    def _environment(self) -> dict[str, str]:
        """The configuration contract (chalicelib/settings.py and friends), shared by all functions."""
        res, config = self._resources, self._config
        env = {
            "LIFEGUARD_TABLE": res.table.table_name,
            "LIFEGUARD_IDEMPOTENCY_TABLE": res.idempotency_table.table_name,
            "LIFEGUARD_BUCKET": res.bucket.bucket_name,
            "LIFEGUARD_DB": f"s3://{res.bucket.bucket_name}/{INDEX_KEY}",
            "LIFEGUARD_SIGNING_KEY": f"awskms:///{SIGNING_KEY_ALIAS}",
            "LIFEGUARD_ENFORCE": config.enforce,
            "LIFEGUARD_ADMISSION_FAILURE": config.admission_failure,
            "LIFEGUARD_ADMISSION_TOKEN_SECRET": res.token_secret.secret_arn,
            "LIFEGUARD_REMATCH_QUEUE_URL": res.queues["rematch"].queue_url,
            "LIFEGUARD_MEMBER_ROLE_NAME": MEMBER_ROLE_NAME,
            "LIFEGUARD_EXTERNAL_ID": config.external_id,
        }
        if config.gate_policy:
            env["LIFEGUARD_POLICY"] = f"s3://{res.bucket.bucket_name}/{POLICY_KEY}"
        if config.accounts:
            env["LIFEGUARD_ACCOUNTS"] = ",".join(config.accounts)
        if config.registry_allowlist:
            env["LIFEGUARD_REGISTRY_ALLOWLIST"] = ",".join(config.registry_allowlist)
        return env

    def _complete(self, spec: FunctionSpec) -> None:
        fn = self.app.resource(spec.logical_id)
        config = self._config
        fn.add_property_override("FunctionName", self.function_name(spec))
        skip(fn, "CKV_AWS_117")
        if not spec.asynchronous:
            skip(fn, "CKV_AWS_116")
        fn.add_property_override("Role", self.roles[spec.name].role_arn)
        fn.add_property_override("MemorySize", spec.memory_mb)
        fn.add_property_override("Timeout", spec.timeout_s)
        fn.add_property_override("EphemeralStorage", {"Size": spec.ephemeral_mb})
        fn.add_property_override("Tracing", "Active")
        fn.add_property_override("KmsKeyArn", self._resources.data_key.key_arn)
        fn.add_property_override(
            "LoggingConfig", {"LogGroup": self.log_groups[spec.name].log_group_name, "LogFormat": "Text"}
        )
        if spec.reserved_concurrency and config.reserved_concurrency:
            fn.add_property_override("ReservedConcurrentExecutions", spec.reserved_concurrency)
        if spec.asynchronous:
            fn.add_property_override(
                "DeadLetterQueue", {"Type": "SQS", "TargetArn": self._event_failures.queue_arn}
            )
            fn.add_property_override(
                "EventInvokeConfig",
                {"MaximumRetryAttempts": ASYNC_RETRIES, "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE_S},
            )
        events = self.app.events(spec.logical_id)
        kept = 0
        for event_name, event in events.items():
            kind, props = event["Type"], event.get("Properties", {})
            path = f"Events.{event_name}"
            if kind == "SQS":
                self._complete_sqs_source(spec, path, props)
                kept += 1
            elif kind == "CloudWatchEvent":
                self.triggers.patterns.setdefault(spec.name, []).append(props["Pattern"])
                fn.add_property_deletion_override(path)
            elif kind == "Schedule":
                self.triggers.schedules.setdefault(spec.name, []).append(props["Schedule"])
                fn.add_property_deletion_override(path)
            else:
                raise ValueError(f"{spec.name}: event type {kind} is not handled by infra/lifeguard_infra")
        if events and not kept:
            fn.add_property_deletion_override("Events")

    def _complete_sqs_source(self, spec: FunctionSpec, path: str, props: dict[str, Any]) -> None:
        if spec.consumes is None:
            raise ValueError(f"{spec.name} reads an SQS queue but its FunctionSpec has no `consumes`")
        qspec = queue(spec.consumes)
        chalice_arn = str(props.get("Queue", {}).get("Fn::Sub", ""))
        if not chalice_arn.endswith(f":{qspec.name}"):
            raise ValueError(f"{spec.name}: app.py reads {chalice_arn!r}, the registry says {qspec.name}")
        fn = self.app.resource(spec.logical_id)
        # a real reference: the queue exists before the event source mapping
        fn.add_property_override(f"{path}.Properties.Queue", self._resources.queues[spec.consumes].queue_arn)
        fn.add_property_override(f"{path}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"])
        if spec.reserved_concurrency and self._config.reserved_concurrency:
            # pollers beyond the reserved concurrency would only be throttled into the DLQ
            fn.add_property_override(
                f"{path}.Properties.ScalingConfig", {"MaximumConcurrency": max(2, spec.reserved_concurrency)}
            )
