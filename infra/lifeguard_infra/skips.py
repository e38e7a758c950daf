"""Checkov checks skipped on purpose, each with its reason. They are written into the resource's
template metadata (where checkov reads them) from here, and docs/INFRA.md lists every one of them
(a test keeps the two in step)."""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

#: check id -> reason (one sentence a reviewer can accept or reject)
REASONS: dict[str, str] = {
    "CKV_AWS_117": (
        "Lambda outside a VPC: the functions reach ECR, public registries and vulnerability feeds "
        "over the internet; a VPC with NAT (or endpoints for every registry) is an organisation-wide "
        "network decision, documented in docs/DEPLOY.md"
    ),
    "CKV_AWS_116": (
        "no Lambda DLQ on a synchronous or SQS-driven function: API Gateway callers get the error, "
        "and SQS consumers' failed messages go to the source queue's DLQ (redrive policy)"
    ),
    "CKV_AWS_7": "asymmetric KMS keys (ECC_NIST_P256 SIGN_VERIFY) cannot rotate automatically; see DEPLOY.md",
    "CKV_AWS_18": "this is the access-log bucket itself: logging it into itself would loop",
    "CKV_AWS_120": (
        "no API cache: it would serve stale findings and admission decisions, and responses "
        "depend on the caller; the API is low volume"
    ),
}


def skip(construct: IConstruct, *check_ids: str) -> None:
    """Attach checkov skips (with their reasons) to a construct's CloudFormation resource."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    unknown = [c for c in check_ids if c not in REASONS]
    if unknown:
        raise KeyError(f"no reason written for checkov skips {unknown} (lifeguard_infra/skips.py)")
    existing = resource.get_metadata("checkov") or {}
    entries = list(existing.get("skip", []))
    entries += [{"id": c, "comment": REASONS[c]} for c in check_ids]
    resource.add_metadata("checkov", {"skip": entries})
