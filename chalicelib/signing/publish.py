"""Reading and writing cosign's artifacts through the OCI distribution API (the registry client
does auth — ECR Basic credentials included —, digest checks and uploads).

Blobs up to `chunk_size` go up in one monolithic PUT; larger ones (a big attestation) in chunks
(POST, PATCH per chunk, PUT): ECR accepts both, and chunks keep each request bounded.

Appending is read-modify-write on a tag: two signers racing on the same digest can lose one
layer (cosign has the same race); the Lambda path signs a digest once per scan, the idempotency
layer keeps redeliveries out."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.errors import ManifestError
from chalicelib.image.registry import DEFAULT_CHUNK_SIZE, RegistryClient, RegistryResponseError
from chalicelib.signing.cosign_layout import Blob, Manifest, existing_layers, parse_referrers

_log = logging.getLogger(__name__)


def read_tag_layers(client: RegistryClient, repository: str, tag: str) -> list[dict[str, Any]]:
    """The layer descriptors of `repository:tag`, [] when the tag does not exist."""
    try:
        fetched = client.get_manifest(repository, tag)
    except RegistryResponseError as exc:
        if exc.status == 404:
            return []
        raise
    return existing_layers(fetched.body, f"{client.registry}/{repository}:{tag}")


def push_blob(client: RegistryClient, repository: str, blob: Blob, chunk_size: int | None = None) -> None:
    limit = chunk_size or DEFAULT_CHUNK_SIZE
    chunked = len(blob.data) > limit
    client.push_blob(repository, blob.data, blob.digest, chunk_size=limit if chunked else None)


def push_manifest(
    client: RegistryClient,
    repository: str,
    reference: str | None,
    manifest: Manifest,
    new_layers: list[Blob],
    *,
    chunk_size: int | None = None,
) -> str:
    """Upload the new layers and the config, then the manifest under `reference` (a tag), or by
    its own digest when `reference` is None (referrers). Returns the manifest digest."""
    for blob in [*new_layers, manifest.config]:
        push_blob(client, repository, blob, chunk_size)
    return client.push_manifest(repository, reference or manifest.digest, manifest.body, manifest.media_type)


def referrers_supported(client: RegistryClient, repository: str, digest: str) -> bool:
    """Whether the registry serves the OCI 1.1 referrers API for `repository` (200 with an image
    index; distribution 2.8 answers 404). Anything else counts as unsupported, with a warning:
    the tag fallback is always written, so a referrer is a bonus, never the only copy."""
    # The registry client has no public referrers call yet; its authenticated request is reused.
    response = client._request(
        "GET",
        client._url(f"{repository}/referrers/{digest}"),
        scope=f"repository:{repository}:pull",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )
    if response.status == 404:
        return False
    if response.status != 200:
        _log.warning(
            "referrers API answered HTTP %s for %s/%s; using the tag layout only",
            response.status,
            client.registry,
            repository,
        )
        return False
    try:
        parse_referrers(response.data, f"referrers of {repository}@{digest}")
    except ManifestError:
        _log.warning("referrers API of %s answered something other than an image index", client.registry)
        return False
    return True


def subject_descriptor(client: RegistryClient, repository: str, digest: str) -> dict[str, Any]:
    """The signed image's descriptor for a referrer's `subject`."""
    fetched = client.get_manifest(repository, digest)
    return {"mediaType": fetched.media_type, "size": len(fetched.body), "digest": fetched.digest}
