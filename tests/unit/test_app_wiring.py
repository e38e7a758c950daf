"""What chalice.test cannot show: IAM auth on every route (not enforced locally) and the event
source wiring the contract names."""

from __future__ import annotations

from chalice.app import IAMAuthorizer

import app


def test_every_route_requires_iam_auth() -> None:
    routes = {
        (path, method): entry for path, methods in app.app.routes.items() for method, entry in methods.items()
    }
    assert sorted(routes) == [
        ("/images", "GET"),
        ("/images/{digest}", "GET"),
        ("/images/{digest}/findings", "GET"),
        ("/vulnerabilities/{vuln_id}/images", "GET"),
    ]
    assert all(isinstance(entry.authorizer, IAMAuthorizer) for entry in routes.values())


def test_event_handlers_have_the_contract_names_and_sources() -> None:
    assert {"on_ecr_image_action", "on_scan_request"} <= set(app.app.handler_map)
    cw = {e.name: e for e in app.app.event_sources if e.name == "on_ecr_image_action"}
    assert cw["on_ecr_image_action"].event_pattern == {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]},
    }
    sqs = {e.name: e for e in app.app.event_sources if e.name == "on_scan_request"}
    assert sqs["on_scan_request"].queue == "lifeguard-scan-requests"
