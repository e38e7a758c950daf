"""What chalice.test cannot show: IAM auth on every route (not enforced locally) and the event
source wiring the contract names."""

from __future__ import annotations

from chalice.app import CloudWatchEventConfig, IAMAuthorizer, SQSEventConfig

import app


def test_every_route_requires_iam_auth() -> None:
    routes = {
        (path, method): entry for path, methods in app.app.routes.items() for method, entry in methods.items()
    }
    # the one exception: the EKS admission webhook (bearer token, tests/unit/test_enforcement_wiring.py)
    assert routes.pop(("/admission/validate", "POST")).authorizer is app.admission_authorizer
    assert sorted(routes) == [
        ("/images", "GET"),
        ("/images/{digest}", "GET"),
        ("/images/{digest}/changes", "GET"),
        ("/images/{digest}/findings", "GET"),
        ("/images/{digest}/signature", "GET"),
        ("/vulnerabilities/{vuln_id}/images", "GET"),
    ]
    assert all(isinstance(entry.authorizer, IAMAuthorizer) for entry in routes.values())


def test_event_handlers_have_the_contract_names_and_sources() -> None:
    assert {"on_ecr_image_action", "on_scan_request"} <= set(app.app.handler_map)
    sources = {e.name: e for e in app.app.event_sources}
    cw, sqs = sources["on_ecr_image_action"], sources["on_scan_request"]
    assert isinstance(cw, CloudWatchEventConfig) and isinstance(sqs, SQSEventConfig)
    assert cw.event_pattern == {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]},
    }
    assert sqs.queue == "lifeguard-scan-requests"
