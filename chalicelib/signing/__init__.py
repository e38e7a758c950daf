"""cosign-compatible image signatures and attestations made with an AWS KMS key.

What is signed and where it is stored follow cosign's own layout (see docs/SIGNING.md), so that
`cosign verify --key awskms:///alias/NAME --insecure-ignore-tlog` accepts Lifeguard's signatures:
- `payload`: the simple-signing payload, byte-for-byte as Go's `encoding/json` marshals it;
- `dsse`: the in-toto statement in a DSSE envelope (attestations);
- `kms`: KMS signing (RAW for small messages, DIGEST above KMS's 4,096-byte limit);
- `cosign_layout`: tag names, `.sig`/`.att` manifests with append semantics, OCI 1.1 referrers;
- `publish`: reading and writing those manifests through the OCI distribution API;
- `verify`: checking what a `.sig` manifest holds against a public key and a digest;
- `service`: `sign_image` / `verify_image`, what the CLI and the Lambda scan path call.

Nothing here imports boto3: the KMS client comes in from the edge (CLI, composition root)."""
