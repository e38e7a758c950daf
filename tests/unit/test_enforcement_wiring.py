"""The enforcement entries in app.py: the ECS event source the contract names, and the admission
route as the one route behind the custom (bearer token) authorizer instead of IAM."""

from __future__ import annotations

from chalice.app import ChaliceAuthorizer, CloudWatchEventConfig

import app


def test_ecs_task_state_change_source() -> None:
    sources = {e.name: e for e in app.app.event_sources}
    ecs = sources["on_ecs_task_state_change"]
    assert isinstance(ecs, CloudWatchEventConfig)
    assert ecs.event_pattern == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"lastStatus": ["PENDING", "RUNNING"]},
    }
    assert "on_ecs_task_state_change" in app.app.handler_map


def test_admission_route_uses_the_custom_authorizer() -> None:
    entry = app.app.routes["/admission/validate"]["POST"]
    assert isinstance(entry.authorizer, ChaliceAuthorizer)
    assert entry.authorizer.name == "admission_authorizer"
    assert entry.content_types == ["application/json"]
    assert list(app.app.routes["/admission/validate"]) == ["POST"]
