"""Lifeguard's deployment as AWS CDK v2 stacks. `registry` is the one place that lists what is
deployed (functions, queues, rules); the stack modules turn it into resources."""
