"""CloudWatch alarms to the alert topic: any message in a dead-letter queue, any function error,
a scan queue that falls behind. Derived from the registry, so a new queue or function is covered."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, aws_cloudwatch, aws_cloudwatch_actions, aws_sns, aws_sqs
from constructs import Construct

from lifeguard_infra.registry import FUNCTIONS

PERIOD = Duration.minutes(5)
#: the oldest scan request may wait this long before someone is told
SCAN_BACKLOG_AGE_S = 3600


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: aws_sns.ITopic,
        dead_letter_queues: Mapping[str, aws_sqs.IQueue],
        scan_queue: aws_sqs.IQueue,
        function_names: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        action = aws_cloudwatch_actions.SnsAction(topic)
        self.alarms: dict[str, aws_cloudwatch.Alarm] = {}
        for key, dlq in dead_letter_queues.items():
            self._add(
                f"Dlq{_ident(key)}",
                dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                f"Lifeguard: messages in the {key} dead-letter queue (inspect, fix, redrive)",
                action,
            )
        for spec in FUNCTIONS:
            errors = aws_cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": function_names[spec.name]},
                period=PERIOD,
                statistic="Sum",
            )
            self._add(f"Errors{_ident(spec.name)}", errors, f"Lifeguard: {spec.name} failed", action)
        self._add(
            "ScanBacklog",
            scan_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            "Lifeguard: scan requests wait longer than an hour",
            action,
            threshold=SCAN_BACKLOG_AGE_S,
        )

    def _add(
        self,
        ident: str,
        metric: aws_cloudwatch.IMetric,
        description: str,
        action: aws_cloudwatch_actions.SnsAction,
        threshold: float = 1,
    ) -> None:
        alarm = aws_cloudwatch.Alarm(
            self,
            ident,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        self.alarms[ident] = alarm
