"""Prevent-running: decide whether the images of an ECS task or a Kubernetes workload may run
(signed by the configured key, passed their gate, from an allowed registry) and act on it.

- `decision`: the rules, pure (no boto3): one function for ECS and for admission.
- `facts`: reads what the rules need from the store (one BatchGetItem, plus indexes' children).
- `ecs`: the `ECS Task State Change` service (stop_task in enforce mode, audit always).
- `admission`: the EKS validating admission webhook (AdmissionReview v1 in and out).
- `authorizer`: the webhook's bearer-token check against Secrets Manager.
- `clients`: boto3 clients in a member account (assume the member role).
- `handlers`: what app.py calls (idempotency, typed errors).

docs/ENFORCEMENT.md describes modes, decisions and the audit records."""
