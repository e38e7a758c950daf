"""EventBridge: the central bus member accounts forward to (organisation-only resource policy),
and every rule: Chalice's patterns and schedules re-attached (with a DLQ and a retry policy, which
Chalice cannot set) plus the registry's rules to queues."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import (
    Annotations,
    Duration,
    aws_events,
    aws_events_targets,
    aws_iam,
    aws_lambda,
    aws_s3,
    aws_sqs,
)
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from lifeguard_infra.config import DeploymentConfig
from lifeguard_infra.functions import ASYNC_MAX_EVENT_AGE_S, Functions
from lifeguard_infra.registry import FUNCTIONS, RULES, Bus

#: EventBridge's own delivery retries before an event goes to the rule target's DLQ
DELIVERY_RETRIES = 8


def central_bus_name(config: DeploymentConfig) -> str:
    return f"{config.prefix()}-events"


def event_pattern(raw: Mapping[str, Any]) -> aws_events.EventPattern:
    """A JSON event pattern (as in app.py) as CDK's EventPattern."""
    known = {"source", "detail-type", "detail", "account", "region", "resources"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"event pattern keys not handled: {sorted(unknown)}")
    return aws_events.EventPattern(
        source=raw.get("source"),
        detail_type=raw.get("detail-type"),
        detail=raw.get("detail"),
        account=raw.get("account"),
        region=raw.get("region"),
        resources=raw.get("resources"),
    )


@jsii.implements(aws_events.IRuleTarget)
class _QueueTarget:
    """A queue as a rule target. CDK's SqsQueue target leaves out the aws:SourceArn condition for
    KMS-encrypted queues (any rule of any account could then deliver) and adds wildcard KMS
    grants; here the queue accepts exactly this rule, and the data key's policy (data_stack.py)
    already lets EventBridge encrypt."""

    def __init__(self, queue: aws_sqs.IQueue, dead_letter_queue: aws_sqs.IQueue) -> None:
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue

    def bind(self, rule: IRuleRef, id: str | None = None) -> aws_events.RuleTargetConfig:
        for queue in (self._queue, self._dead_letter_queue):
            queue.add_to_resource_policy(
                aws_iam.PolicyStatement(
                    principals=[aws_iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
                )
            )
        return aws_events.RuleTargetConfig(
            arn=self._queue.queue_arn,
            dead_letter_config=aws_events.CfnRule.DeadLetterConfigProperty(
                arn=self._dead_letter_queue.queue_arn
            ),
            retry_policy=aws_events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=DELIVERY_RETRIES, maximum_event_age_in_seconds=ASYNC_MAX_EVENT_AGE_S
            ),
        )


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


class Routing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        functions: Functions,
        queues: Mapping[str, aws_sqs.IQueue],
        event_failures: aws_sqs.IQueue,
        bucket: aws_s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = functions
        self._event_failures = event_failures
        self.central_bus = aws_events.EventBus(self, "CentralBus", event_bus_name=central_bus_name(config))
        self.central_bus.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="OrganisationMembersPutEvents",
                principals=[aws_iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.central_bus.event_bus_arn],
                conditions={"StringEquals": {"aws:PrincipalOrgID": config.organization_id}},
            )
        )
        self.rules: dict[str, aws_events.Rule] = {}
        for spec in FUNCTIONS:
            fn = functions.function(spec.name)
            for index, raw in enumerate(functions.triggers.patterns.get(spec.name, [])):
                pattern = copy.deepcopy(raw)
                if spec.only_own_bucket:
                    pattern.setdefault("detail", {})["bucket"] = {"name": [bucket.bucket_name]}
                for bus in spec.event_buses:
                    self._lambda_rule(
                        f"{_ident(spec.name)}{index}{bus.capitalize()}", spec.name, fn, bus, pattern
                    )
            for index, expression in enumerate(functions.triggers.schedules.get(spec.name, [])):
                rule = aws_events.Rule(
                    self,
                    f"{_ident(spec.name)}{index}Schedule",
                    description=f"Lifeguard {spec.name}: {expression}",
                    schedule=aws_events.Schedule.expression(expression),
                )
                self._target_lambda(rule, spec.name, fn)
        for rule_spec in RULES:
            patterns = functions.triggers.patterns.get(rule_spec.pattern_of, [])
            if len(patterns) != 1:
                raise ValueError(
                    f"rule {rule_spec.key}: {rule_spec.pattern_of} has {len(patterns)} patterns, not 1"
                )
            for bus in rule_spec.buses:
                rule = aws_events.Rule(
                    self,
                    f"{_ident(rule_spec.key)}{bus.capitalize()}",
                    description=f"Lifeguard: {rule_spec.description} ({bus} bus)",
                    event_bus=self._bus(bus),
                    event_pattern=event_pattern(patterns[0]),
                )
                rule.add_target(_QueueTarget(queues[rule_spec.target_queue], event_failures))
                self.rules[f"{rule_spec.key}/{bus}"] = rule

    def _bus(self, bus: Bus) -> aws_events.IEventBus | None:
        return self.central_bus if bus == "central" else None

    def _lambda_rule(
        self, ident: str, name: str, fn: aws_lambda.IFunction, bus: Bus, pattern: dict[str, Any]
    ) -> None:
        rule = aws_events.Rule(
            self,
            ident,
            description=f"Lifeguard {name} ({bus} bus)",
            event_bus=self._bus(bus),
            event_pattern=event_pattern(pattern),
        )
        self._target_lambda(rule, name, fn)
        self.rules[f"{name}/{bus}"] = rule

    def _target_lambda(self, rule: aws_events.Rule, name: str, fn: aws_lambda.IFunction) -> None:
        # the target is a function of this very stack, only addressed by a token (GetAtt Arn)
        Annotations.of(rule).acknowledge_warning(
            "@aws-cdk/aws-events:ruleUnresolvedEnvironment", "the target is a function of this stack"
        )
        rule.add_target(
            aws_events_targets.LambdaFunction(
                fn,
                dead_letter_queue=self._event_failures,
                retry_attempts=DELIVERY_RETRIES,
                max_event_age=Duration.seconds(ASYNC_MAX_EVENT_AGE_S),
            )
        )
