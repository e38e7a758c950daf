"""The registry's invariants, the deployment configuration, and the checkov skips: each with a
written reason, each listed in docs/INFRA.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lifeguard_infra.config import ConfigError, DeploymentConfig, default_context
from lifeguard_infra.registry import FUNCTIONS, QUEUES, RULES, check_packaged, function, queue
from lifeguard_infra.skips import REASONS

from tests.infra.conftest import REPO, STACKS


def test_queues_outlast_their_consumers() -> None:
    """Visibility >= 6x the consumer's timeout (AWS's advice for Lambda event sources), and the
    source's concurrency cap (>= 2, Lambda's minimum) within the reserved concurrency."""
    consumers = {spec.consumes: spec for spec in FUNCTIONS if spec.consumes}
    assert sorted(consumers) == sorted(q.key for q in QUEUES)
    for spec in QUEUES:
        consumer = consumers[spec.key]
        assert spec.visibility_timeout_s >= 6 * consumer.timeout_s
        assert consumer.reserved_concurrency is not None and consumer.reserved_concurrency >= 2
        assert not consumer.asynchronous


def test_rules_reuse_patterns_of_registered_functions() -> None:
    for rule in RULES:
        assert function(rule.pattern_of).name == rule.pattern_of
        assert queue(rule.target_queue).key == rule.target_queue
    with pytest.raises(KeyError, match="no FunctionSpec named 'nope'"):
        function("nope")


def test_synthesis_refuses_a_function_the_registry_does_not_know() -> None:
    registered = [spec.logical_id for spec in FUNCTIONS]
    check_packaged(registered)
    with pytest.raises(ValueError) as excinfo:
        check_packaged([*registered[1:], "OnSomethingNew"])
    assert str(excinfo.value) == (
        "app.py and infra/lifeguard_infra/registry.py disagree: "
        "only in app.py ['OnSomethingNew'], only in the registry ['APIHandler']"
    )


def test_cdk_json_context_is_a_valid_deployment() -> None:
    config = DeploymentConfig.from_context(default_context())
    assert config.prefix() == "lifeguard-prod"
    assert (config.organization_id, config.lifeguard_account, config.lifeguard_region) == (
        "o-exampleorgid",
        "111111111111",
        "us-east-1",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"organizationId": "exampleorg"},
            "lifeguard.organizationId: String should match pattern '^o-[a-z0-9]{10,32}$'",
        ),
        (
            {"lifeguardAccount": "12345"},
            "lifeguard.lifeguardAccount: String should match pattern '^\\d{12}$'",
        ),
        ({"externalId": "short"}, "lifeguard.externalId: String should have at least 16 characters"),
        ({"enforce": "stop"}, "lifeguard.enforce: Input should be 'audit' or 'enforce'"),
        ({"stage": "Prod"}, "lifeguard.stage: String should match pattern '^[a-z][a-z0-9]{1,11}$'"),
        ({"surprise": 1}, "lifeguard.surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_context_is_a_clear_error(change: dict[str, Any], message: str) -> None:
    context = default_context()
    context["lifeguard"] = {**context["lifeguard"], **change}
    with pytest.raises(ConfigError) as excinfo:
        DeploymentConfig.from_context(context)
    assert str(excinfo.value) == message


def test_missing_context_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r'^CDK context needs a "lifeguard" object \(see infra/cdk.json\)$'):
        DeploymentConfig.from_context({})


def _skips(templates: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for stack in STACKS:
        for lid, res in templates[stack]["Resources"].items():
            for entry in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert entry["comment"] == REASONS[entry["id"]]
                found.setdefault(entry["id"], []).append((stack, lid))
    return found


def test_every_checkov_skip_has_its_reason_and_is_listed_in_docs(templates: dict[str, Any]) -> None:
    skips = _skips(templates)
    assert sorted(skips) == sorted(REASONS)  # no reason is written for a skip nobody uses
    rows = {}
    for line in (REPO / "docs" / "INFRA.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| (CKV\w+) \| (.+?) \| (.+) \|$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    assert sorted(rows) == sorted(skips)
    for check, resources in skips.items():
        listed, reason = rows[check]
        assert reason == REASONS[check]
        for stack, lid in resources:
            assert stack in listed and re.search(rf"\b{lid}\b", listed), (check, stack, lid)
    assert len(skips["CKV_AWS_117"]) == len(FUNCTIONS)


def test_app_py_writes_only_to_cdk_outdir(cdk_out: Path) -> None:
    """The fixture ran `infra/app.py` with its working directory one level above CDK_OUTDIR: the
    cloud assembly holds the four stacks, and nothing else was written there."""
    manifest = json.loads((cdk_out / "manifest.json").read_text(encoding="utf-8"))
    stacks = sorted(
        name
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    )
    assert stacks == sorted(STACKS)
    assert sorted(p.name for p in cdk_out.parent.iterdir()) == ["cdk.out", "project", "work"]
