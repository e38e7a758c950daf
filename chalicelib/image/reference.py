"""Image references: `registry:HOST[:PORT]/REPO[:TAG|@DIGEST]`, or the same without the prefix.

The grammar is distribution's (`reference/regexp.go`), so a string the registry would reject is
rejected here, before any connection. A first path component counts as a registry host when it
contains a `.` or a `:` or is `localhost`, as Docker decides; otherwise the reference is a Docker
Hub short name (`alpine` -> `docker.io/library/alpine:latest`), whose API lives at
`registry-1.docker.io` (see `api_authority`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.errors import InputError

REGISTRY_PREFIX = "registry:"
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"

# One path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\]")
_AUTHORITY_RE = re.compile(rf"(?P<host>{_HOST_RE.pattern})(?::(?P<port>[0-9]{{1,5}}))?")
_MAX_REPOSITORY = 255


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. `registry` is the logical authority (`host[:port]`, lowercase
    host), the one the allow-list and the mirrors are keyed on. When both a tag and a digest are
    given, the digest is what is pulled; the tag is kept for display."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def ref(self) -> str:
        """What goes after `/manifests/`: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_authority(self) -> str:
        """Where the registry API answers (Docker Hub's name and API host differ)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to `digest` (tag kept for display)."""
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def validate_authority(authority: str) -> str:
    """`host[:port]` normalised to a lowercase host; InputError when it is not one."""
    match = _AUTHORITY_RE.fullmatch(authority.strip())
    if match is None:
        raise InputError(f"not a registry authority (host[:port]): {authority!r}")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise InputError(f"port out of range in registry authority {authority!r}")
    host = match.group("host").lower()
    return f"{host}:{port}" if port is not None else host


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def parse_reference(text: str, *, default_registry: str | None = DOCKER_HUB) -> Reference:
    """Parse an image reference. `registry:` is optional. With `default_registry=None`, a
    reference without an explicit registry host is an error instead of a Docker Hub name.

    Raises InputError with the reason for anything malformed."""
    spec = text.strip()
    if spec.startswith(REGISTRY_PREFIX):
        spec = spec[len(REGISTRY_PREFIX) :]
    if not spec:
        raise InputError("empty image reference")

    remainder, digest = spec, None
    if "@" in spec:
        remainder, digest = spec.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise InputError(f"bad digest in image reference {text!r}: {digest!r}")

    first, sep, rest = remainder.partition("/")
    if sep and _looks_like_registry(first):
        registry = validate_authority(first)
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        path = rest
    elif default_registry is None:
        raise InputError(f"image reference {text!r} names no registry host (HOST[:PORT]/REPO)")
    else:
        registry = default_registry
        path = remainder

    tag = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InputError(f"bad tag in image reference {text!r}: {tag!r}")

    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _REPOSITORY_RE.fullmatch(path):
        raise InputError(
            f"bad repository name in image reference {text!r}: {path!r} "
            "(lowercase letters, digits and . _ - separators, components joined by /)"
        )
    if len(path) > _MAX_REPOSITORY:
        raise InputError(f"repository name longer than {_MAX_REPOSITORY} characters in {text!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)
