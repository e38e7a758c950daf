"""The service stack: every Chalice function completed from the registry, queues with DLQs, the
EventBridge wiring, alarms, the REST API settings."""

from __future__ import annotations

from typing import Any

import pytest
from lifeguard_infra.registry import FUNCTIONS, QUEUES, FunctionSpec

from tests.infra.conftest import one, resources_of

FUNCTION_NAMES = [spec.name for spec in FUNCTIONS]


def _function(templates: dict[str, Any], spec: FunctionSpec) -> dict[str, Any]:
    fn: dict[str, Any] = templates["LifeguardService"]["Resources"][spec.logical_id]
    assert fn["Type"] == "AWS::Serverless::Function"
    props: dict[str, Any] = fn["Properties"]
    return props


def test_every_chalice_function_is_in_the_registry_and_nothing_else(templates: dict[str, Any]) -> None:
    functions = resources_of(templates["LifeguardService"], "AWS::Serverless::Function")
    assert sorted(functions) == sorted(spec.logical_id for spec in FUNCTIONS)
    assert sorted(f["Properties"]["FunctionName"] for f in functions.values()) == sorted(
        f"lifeguard-prod-{name}" for name in FUNCTION_NAMES
    )
    assert {
        "on_ecr_image_action",
        "on_scan_request",
        "on_index_updated",
        "on_rematch_request",
        "refresh_index",
        "on_ecs_task_state_change",
        "admission_authorizer",
        "api_handler",
    } == set(FUNCTION_NAMES)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=FUNCTION_NAMES)
def test_function_settings_come_from_the_registry(templates: dict[str, Any], spec: FunctionSpec) -> None:
    props = _function(templates, spec)
    role = props["Role"]["Fn::GetAtt"][0]
    assert role.startswith(f"Functions{spec.logical_id}Role")
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_s
    assert props["EphemeralStorage"] == {"Size": spec.ephemeral_mb}
    assert props["ReservedConcurrentExecutions"] == spec.reserved_concurrency
    assert props["Tracing"] == "Active"
    assert props["Runtime"] == "python3.11"
    assert props["KmsKeyArn"] == {
        "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputFnGetAttDataKey17AFBB84ArnCE2A1BC6"
    }
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    logs = templates["LifeguardService"]["Resources"][log_group]["Properties"]
    assert logs["LogGroupName"] == f"/aws/lambda/lifeguard-prod-{spec.name}"
    assert logs["RetentionInDays"] == 90
    assert logs["KmsKeyId"] == {
        "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputFnGetAttDataKey17AFBB84ArnCE2A1BC6"
    }
    if spec.asynchronous:
        assert props["DeadLetterQueue"] == {
            "Type": "SQS",
            "TargetArn": {"Fn::GetAtt": ["MessagingEventFailures0E7D130C", "Arn"]},
        }
        assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    else:
        assert "DeadLetterQueue" not in props
    # Chalice's own EventBridge rules and schedules are replaced (routing.py); only SQS stays
    assert [event["Type"] for event in props.get("Events", {}).values()] == (["SQS"] if spec.consumes else [])


@pytest.mark.parametrize("spec", [s for s in FUNCTIONS if s.consumes], ids=lambda s: s.name)
def test_sqs_sources_report_batch_item_failures(templates: dict[str, Any], spec: FunctionSpec) -> None:
    (event,) = _function(templates, spec)["Events"].values()
    queue_lid = {"scan": "MessagingScanQueue3D194207", "rematch": "MessagingRematchQueue59969FE5"}[
        spec.consumes or ""
    ]
    assert event["Properties"] == {
        "BatchSize": {"on_scan_request": 5, "on_rematch_request": 1}[spec.name],
        "MaximumBatchingWindowInSeconds": 0,
        "Queue": {"Fn::GetAtt": [queue_lid, "Arn"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": spec.reserved_concurrency},
    }


def test_environment_is_the_configuration_contract(templates: dict[str, Any]) -> None:
    for spec in FUNCTIONS:
        env = _function(templates, spec)["Environment"]["Variables"]
        assert env == {
            "POWERTOOLS_SERVICE_NAME": "lifeguard",
            "POWERTOOLS_METRICS_NAMESPACE": "Lifeguard",
            "LIFEGUARD_TABLE": {
                "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefTableCD117FA1D18A8047"
            },
            "LIFEGUARD_IDEMPOTENCY_TABLE": {
                "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefIdempotencyTable22A5A209F6C0179A"
            },
            "LIFEGUARD_BUCKET": {
                "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefArtifacts82DD59A14F4A635A"
            },
            "LIFEGUARD_DB": {
                "Fn::Join": [
                    "",
                    [
                        "s3://",
                        {"Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefArtifacts82DD59A14F4A635A"},
                        "/vulndb/vulndb.sqlite",
                    ],
                ]
            },
            "LIFEGUARD_SIGNING_KEY": "awskms:///alias/lifeguard-signing",
            "LIFEGUARD_ENFORCE": "audit",
            "LIFEGUARD_ADMISSION_FAILURE": "open",
            "LIFEGUARD_ADMISSION_TOKEN_SECRET": {
                "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefAdmissionToken45F5E3857838FC35"
            },
            "LIFEGUARD_REMATCH_QUEUE_URL": {"Ref": "MessagingRematchQueue59969FE5"},
            "LIFEGUARD_MEMBER_ROLE_NAME": "lifeguard-member",
            "LIFEGUARD_EXTERNAL_ID": "lifeguard-replace-me-0000",
        }


def test_queues_have_dead_letter_queues_and_encryption(templates: dict[str, Any]) -> None:
    service = templates["LifeguardService"]
    for spec in QUEUES:
        dlq_lid, dlq = one(service, "AWS::SQS::Queue", QueueName=f"{spec.name}-dlq")
        _, queue = one(service, "AWS::SQS::Queue", QueueName=spec.name)
        assert queue["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_lid, "Arn"]},
            "maxReceiveCount": spec.max_receive_count,
        }
        assert queue["Properties"]["VisibilityTimeout"] == spec.visibility_timeout_s
        for q in (queue, dlq):
            assert q["Properties"]["KmsMasterKeyId"] == {
                "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputFnGetAttDataKey17AFBB84ArnCE2A1BC6"
            }
        assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert [spec.name for spec in QUEUES] == ["lifeguard-scan-requests", "lifeguard-rematch-requests"]


def _rules(templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        lid: res["Properties"]
        for lid, res in resources_of(templates["LifeguardService"], "AWS::Events::Rule").items()
    }


ECR_PUSH = {
    "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]},
    "detail-type": ["ECR Image Action"],
    "source": ["aws.ecr"],
}
ECS_TASK = {
    "detail": {"lastStatus": ["PENDING", "RUNNING"]},
    "detail-type": ["ECS Task State Change"],
    "source": ["aws.ecs"],
}
FAILURES = {"Arn": {"Fn::GetAtt": ["MessagingEventFailures0E7D130C", "Arn"]}}
RETRY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 8}


def test_rules_route_each_event_once_with_dlq_and_retry(templates: dict[str, Any]) -> None:
    """(bus, pattern or schedule, target) of every rule: ECR pushes go to the scan queue (not to
    on_ecr_image_action), ECS task changes to their handler, on both buses; the index rule only
    for our bucket; the daily refresh."""
    seen = set()
    for props in _rules(templates).values():
        bus = "central" if props.get("EventBusName") == {"Ref": "RoutingCentralBusD4CA1C8E"} else "default"
        (target,) = props["Targets"]
        assert target["DeadLetterConfig"] == FAILURES
        assert target["RetryPolicy"] == RETRY
        what = props.get("ScheduleExpression") or props["EventPattern"]
        seen.add((bus, repr(what), repr(target["Arn"])))
    scan_queue = {"Fn::GetAtt": ["MessagingScanQueue3D194207", "Arn"]}
    bucket = {"Fn::ImportValue": "lifeguard-prod-data:ExportsOutputRefArtifacts82DD59A14F4A635A"}
    index = {
        "detail": {"object": {"key": [{"prefix": "vulndb/"}]}, "bucket": {"name": [bucket]}},
        "detail-type": ["Object Created"],
        "source": ["aws.s3"],
    }
    assert seen == {
        ("default", repr(ECR_PUSH), repr(scan_queue)),
        ("central", repr(ECR_PUSH), repr(scan_queue)),
        ("default", repr(ECS_TASK), repr({"Fn::GetAtt": ["OnEcsTaskStateChange", "Arn"]})),
        ("central", repr(ECS_TASK), repr({"Fn::GetAtt": ["OnEcsTaskStateChange", "Arn"]})),
        ("default", repr(index), repr({"Fn::GetAtt": ["OnIndexUpdated", "Arn"]})),
        ("default", repr("rate(1 day)"), repr({"Fn::GetAtt": ["RefreshIndex", "Arn"]})),
    }


def test_each_lambda_rule_may_invoke_its_function(templates: dict[str, Any]) -> None:
    service = templates["LifeguardService"]
    permissions = {
        (p["Properties"]["FunctionName"]["Fn::GetAtt"][0], p["Properties"]["SourceArn"]["Fn::GetAtt"][0])
        for p in resources_of(service, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    }
    expected = set()
    for lid, props in _rules(templates).items():
        arn = props["Targets"][0]["Arn"]["Fn::GetAtt"][0]
        if not arn.startswith("Messaging"):
            expected.add((arn, lid))
    assert permissions == expected
    assert len(expected) == 4


def test_scan_queue_accepts_exactly_the_push_rules(templates: dict[str, Any]) -> None:
    service = templates["LifeguardService"]
    _, policy = one(service, "AWS::SQS::QueuePolicy", Queues=[{"Ref": "MessagingScanQueue3D194207"}])
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert sorted(s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for s in allows) == sorted(
        lid for lid, props in _rules(templates).items() if props.get("EventPattern") == ECR_PUSH
    )
    assert {s["Action"] for s in allows} == {"sqs:SendMessage"}
    assert {repr(s["Principal"]) for s in allows} == {repr({"Service": "events.amazonaws.com"})}


def test_central_bus_accepts_only_the_organisation(templates: dict[str, Any]) -> None:
    one(templates["LifeguardService"], "AWS::Events::EventBus", Name="lifeguard-prod-events")
    (policy,) = resources_of(templates["LifeguardService"], "AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["Statement"] == {
        "Action": "events:PutEvents",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}},
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Resource": {"Fn::GetAtt": ["RoutingCentralBusD4CA1C8E", "Arn"]},
        "Sid": "cdk-OrganisationMembersPutEvents",
    }


def test_alarms_cover_every_dlq_and_every_function(templates: dict[str, Any]) -> None:
    alarms = [
        a["Properties"]
        for a in resources_of(templates["LifeguardService"], "AWS::CloudWatch::Alarm").values()
    ]
    topic = {"Ref": "MessagingAlerts044AD0CA"}
    assert all(a["AlarmActions"] == [topic] for a in alarms)
    errors = sorted(
        a["Dimensions"][0]["Value"]
        for a in alarms
        if a.get("MetricName") == "Errors" and a["Namespace"] == "AWS/Lambda"
    )
    assert errors == sorted(f"lifeguard-prod-{name}" for name in FUNCTION_NAMES)
    dlqs = sorted(
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    )
    assert dlqs == sorted(
        [
            "MessagingScanDeadLetterQueue1A662EC9",
            "MessagingRematchDeadLetterQueueAF5B5A7B",
            "MessagingEventFailures0E7D130C",
        ]
    )
    assert all(
        a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        for a in alarms
        if a.get("MetricName") != "ApproximateAgeOfOldestMessage"
    )
    (backlog,) = [a for a in alarms if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert backlog["Threshold"] == 3600
    assert len(alarms) == len(FUNCTIONS) + 3 + 1
    (topic_policy,) = resources_of(templates["LifeguardService"], "AWS::SNS::TopicPolicy").values()
    allow = [
        st for st in topic_policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Allow"
    ]
    assert allow == [
        {
            "Action": "sns:Publish",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":cloudwatch:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":alarm:*",
                            ],
                        ]
                    }
                },
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": topic,
            "Sid": "CloudWatchAlarmsPublish",
        }
    ]
    _, topic_res = one(templates["LifeguardService"], "AWS::SNS::Topic", TopicName="lifeguard-prod-alerts")
    assert topic_res["Properties"]["KmsMasterKeyId"] == {
        "Fn::ImportValue": "lifeguard-prod-data:ExportsOutputFnGetAttDataKey17AFBB84ArnCE2A1BC6"
    }


def test_rest_api_traces_logs_and_throttles(templates: dict[str, Any]) -> None:
    api = templates["LifeguardService"]["Resources"]["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True
    assert api["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "MetricsEnabled": True,
            "LoggingLevel": "ERROR",
            "DataTraceEnabled": False,
            "ThrottlingRateLimit": 50,
            "ThrottlingBurstLimit": 100,
        }
    ]
    assert '"status":"$context.status"' in api["AccessLogSetting"]["Format"]
    paths = api["DefinitionBody"]["paths"]
    assert sorted(paths) == [
        "/admission/validate",
        "/images",
        "/images/{digest}",
        "/images/{digest}/changes",
        "/images/{digest}/findings",
        "/images/{digest}/signature",
        "/vulnerabilities/{vuln_id}/images",
    ]
    schemes = api["DefinitionBody"]["securityDefinitions"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert schemes["admission_authorizer"]["x-amazon-apigateway-authorizer"]["type"] == "token"
    assert paths["/admission/validate"]["post"]["security"] == [{"admission_authorizer": []}]
    for path, methods in paths.items():
        if path != "/admission/validate":
            assert all(m["security"] == [{"sigv4": []}] for m in methods.values()), path
