"""Queues (each with its dead-letter queue and redrive policy), the queue for failed events, and
the alert topic: one entry of `registry.QUEUES` = one queue pair here."""

from __future__ import annotations

from aws_cdk import Aws, Duration, aws_iam, aws_kms, aws_sns, aws_sns_subscriptions, aws_sqs
from constructs import Construct

from lifeguard_infra.config import DeploymentConfig
from lifeguard_infra.registry import EVENT_FAILURES, QUEUES, QueueSpec


def _ident(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("-"))


class Messaging(Construct):
    """Every queue is encrypted with the data key (EventBridge may use it: data_stack.py)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, data_key: aws_kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self._data_key = data_key
        self.queues: dict[str, aws_sqs.Queue] = {}
        self.dead_letter_queues: dict[str, aws_sqs.Queue] = {}
        for spec in QUEUES:
            self._queue_with_dlq(spec)
        #: EventBridge delivery failures and failed asynchronous invocations: one place to look
        self.event_failures = aws_sqs.Queue(
            self,
            "EventFailures",
            queue_name=f"{config.prefix()}-{EVENT_FAILURES}",
            **self._encryption(),
            retention_period=Duration.days(14),
        )
        self.dead_letter_queues[EVENT_FAILURES] = self.event_failures

        self.alerts = aws_sns.Topic(
            self, "Alerts", topic_name=f"{config.prefix()}-alerts", master_key=data_key, enforce_ssl=True
        )
        # the topic policy replaces SNS's default one: CloudWatch alarms of this account publish
        alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        self.alerts.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alerts.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
        if config.alarm_email:
            self.alerts.add_subscription(aws_sns_subscriptions.EmailSubscription(config.alarm_email))

    def _encryption(self) -> dict[str, object]:
        return {
            "encryption": aws_sqs.QueueEncryption.KMS,
            "encryption_master_key": self._data_key,
            "data_key_reuse": Duration.hours(1),
            "enforce_ssl": True,
        }

    def _queue_with_dlq(self, spec: QueueSpec) -> None:
        ident = _ident(spec.key)
        dlq = aws_sqs.Queue(
            self,
            f"{ident}DeadLetterQueue",
            queue_name=f"{spec.name}-dlq",
            retention_period=Duration.days(spec.dlq_retention_days),
            **self._encryption(),
        )
        self.queues[spec.key] = aws_sqs.Queue(
            self,
            f"{ident}Queue",
            queue_name=spec.name,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
            retention_period=Duration.days(spec.retention_days),
            dead_letter_queue=aws_sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
            **self._encryption(),
        )
        self.dead_letter_queues[spec.key] = dlq
