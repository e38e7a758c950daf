"""Typed errors. Every failure the product can explain has a class here, so that callers (CLI exit
codes, SQS partial-batch failures, API status codes) can act on the kind of failure instead of
parsing messages."""


class LifeguardError(Exception):
    """Base of every error Lifeguard raises on purpose. `code` is stable and machine-readable."""

    code = "lifeguard_error"


class InputError(LifeguardError):
    """The caller gave us something malformed (event, request, file)."""

    code = "bad_input"


class EventError(InputError):
    """An AWS event (EventBridge / SQS body) that does not have the shape we accept."""

    code = "bad_event"


class SourceError(LifeguardError):
    """An image could not be read from its source."""

    code = "source_error"


class RegistryError(SourceError):
    """The registry answered with an error or could not be reached."""

    code = "registry_error"


class RegistryNotAllowedError(RegistryError):
    """The registry is not on the allow-list: Lifeguard refuses to contact it."""

    code = "registry_not_allowed"


class ManifestError(SourceError):
    """A manifest, index or image config that is malformed or unsupported."""

    code = "bad_manifest"


class DigestMismatchError(SourceError):
    """Content whose sha256 is not the digest that named it."""

    code = "digest_mismatch"


class LayerError(SourceError):
    """A layer that cannot be read: corrupt compression, truncated tar, ..."""

    code = "bad_layer"


class UnsafeArchiveError(LayerError):
    """A layer that tries something hostile: path traversal, decompression bomb, too many files."""

    code = "unsafe_archive"


class VulnDBError(LifeguardError):
    """The vulnerability index is missing, unreadable or of an unknown schema."""

    code = "vulndb_error"


class FeedError(VulnDBError):
    """A vulnerability feed could not be downloaded or is corrupt (the previous copy is kept)."""

    code = "feed_error"


class OSVRecordError(InputError):
    """An OSV record that does not follow the schema."""

    code = "bad_osv_record"


class NotFoundError(LifeguardError):
    """The thing asked for does not exist (API 404)."""

    code = "not_found"


class StoreError(LifeguardError):
    """The data store did not take a write even after bounded retries (throttling, capacity):
    the caller should fail the message so SQS redelivers it later."""

    code = "store_error"
