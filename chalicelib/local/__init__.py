"""Local stand-ins for the demo (`make run`) and the integration tests: the real OCI registry as a
process, the sample image. Not used by the Lambda functions."""
