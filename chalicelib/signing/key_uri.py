"""`awskms://` key URIs, parsed with the same grammar as sigstore's AWS KMS provider
(`pkg/signature/kms/aws/client.go`), so a URI cosign accepts is accepted here and vice versa:

    awskms:///1234abcd-12ab-34cd-56ef-1234567890ab              key id
    awskms:///arn:aws:kms:us-east-2:111122223333:key/<uuid>      key ARN
    awskms:///alias/NAME                                        alias
    awskms:///arn:aws:kms:us-east-2:111122223333:alias/NAME      alias ARN
    awskms://HOST[:PORT]/<any of the above>                      with a KMS endpoint

The endpoint part is kept (`KmsKeyUri.endpoint`); like cosign, the CLI then talks to
`https://ENDPOINT` for KMS. An ARN also fixes the region the KMS client must use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.signing.errors import KeyUriError

SCHEME = "awskms://"
_UUID = r"m?r?k?-?[A-Fa-f0-9]{8}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{12}"
# sigstore's arnRE lists aws and aws-us-gov; aws-cn is accepted too (the China partitions exist).
_ARN = r"arn:(?:aws|aws-us-gov|aws-cn):kms:(?P<region>[a-z0-9-]+):\d{12}:"
_HOST = r"(?P<endpoint>[^/]*)/"
_FORMS = (
    re.compile(rf"{SCHEME}{_HOST}(?P<key>{_UUID})"),
    re.compile(rf"{SCHEME}{_HOST}(?P<key>{_ARN}key/{_UUID})"),
    re.compile(rf"{SCHEME}{_HOST}(?P<key>alias/.+)"),
    re.compile(rf"{SCHEME}{_HOST}(?P<key>{_ARN}alias/.+)"),
)


@dataclass(frozen=True)
class KmsKeyUri:
    """A parsed key URI. `key_id` is what KMS takes as `KeyId` (id, ARN, alias or alias ARN)."""

    uri: str
    key_id: str
    endpoint: str | None = None
    region: str | None = None

    @property
    def is_alias(self) -> bool:
        return self.key_id.startswith("alias/") or ":alias/" in self.key_id


def parse_key_uri(uri: str) -> KmsKeyUri:
    """Parse an `awskms://` URI; KeyUriError (a typed InputError) says what was expected."""
    text = uri.strip()
    for form in _FORMS:
        match = form.fullmatch(text)
        if match is not None:
            groups = match.groupdict()
            return KmsKeyUri(
                uri=text,
                key_id=match.group("key"),
                endpoint=match.group("endpoint") or None,
                region=groups.get("region") or None,
            )
    raise KeyUriError(
        f"not an AWS KMS key URI: {uri!r} (expected awskms://[ENDPOINT]/ followed by a key id, key ARN, "
        "alias/NAME or alias ARN)"
    )
