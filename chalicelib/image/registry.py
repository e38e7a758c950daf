"""OCI distribution (registry v2) client, and the registry `ImageSource`.

What it guarantees, and why:
- Nothing is contacted before `RegistryConfig.endpoint` has approved the registry (allow-list,
  mirrors, HTTP only for insecure authorities): a scan request must not be a way to make
  Lifeguard reach arbitrary hosts from inside an AWS account.
- Every byte is checked against the digest that named it: manifests pulled by digest, config
  blobs, layer blobs (streamed through `DigestVerifyingReader`, memory stays flat) and what we
  push. By tag, the manifest digest is computed from the bytes and must agree with
  `Docker-Content-Digest` when the registry sends one.
- Auth follows the registry's 401 challenge (`registry_auth`): Bearer tokens or Basic credentials
  from a provider (`chalicelib.ecr_auth` makes one from `GetAuthorizationToken`). Requests start
  anonymous. Credentials are never sent across origins (blob redirects to storage drop
  `Authorization`) and never over plain HTTP except to authorities listed as insecure.
- Transient failures (connection errors, 429/5xx on GET/HEAD) are retried with backoff by
  urllib3; uploads are not replayed on a status error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, cast
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from chalicelib.errors import DigestMismatchError, InputError, ManifestError, RegistryError
from chalicelib.image import oci
from chalicelib.image.model import ImageSource, LayerRef, ResolvedImage
from chalicelib.image.reference import Reference, parse_reference
from chalicelib.image.registry_auth import CredentialsProvider, RegistryAuth, parse_www_authenticate
from chalicelib.image.registry_config import Endpoint, RegistryConfig
from chalicelib.image.registry_layout import push_layout
from chalicelib.image.streams import check_digest, new_hasher, sha256_digest, verified_stream, verify_bytes

USER_AGENT = "lifeguard/0.1 (+oci-distribution-client)"
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 5
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024  # ECR wants >= 5 MiB per chunk except the last
TAG_PAGE_SIZE = 1000
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryResponseError(RegistryError):
    """The registry answered with an error status. `status` is the HTTP status, `errors` the
    `(code, message)` pairs of the distribution error body (empty when there was none)."""

    def __init__(self, message: str, status: int, errors: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors

    @property
    def registry_codes(self) -> list[str]:
        return [code for code, _ in self.errors]


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as served: the exact bytes, their digest and media type."""

    digest: str
    media_type: str
    body: bytes


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()


def _scope(repository: str, push: bool = False) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return str(exc.reason)
    return str(exc)


class RegistryClient:
    """A client for one logical registry. The allow-list is checked in the constructor, so a
    refused registry raises `RegistryNotAllowedError` before any socket is opened.

    Thread-safe for concurrent pulls (urllib3's pool is; the token cache is locked)."""

    def __init__(
        self,
        registry: str,
        config: RegistryConfig,
        credentials: CredentialsProvider | None = None,
        *,
        pool: urllib3.PoolManager | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.endpoint: Endpoint = config.endpoint(registry)
        self.registry = self.endpoint.registry
        self.config = config
        self._pool = pool or urllib3.PoolManager(num_pools=8, maxsize=8)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._retries = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=False,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self._auth = RegistryAuth(self.registry, credentials, config.insecure, self._fetch_token, USER_AGENT)

    # --- plumbing ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.endpoint.base_url}/v2/{path}"

    def _same_origin(self, url: str) -> bool:
        return _origin(url) == (self.endpoint.scheme, self.endpoint.authority)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | IO[bytes] | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                method,
                url,
                headers=headers,
                body=body,
                preload_content=preload,
                decode_content=False,
                redirect=False,
                retries=self._retries,
                timeout=self._timeout,
            )
        except Urllib3HTTPError as exc:
            raise RegistryError(
                f"cannot reach registry {self.registry} at {self.endpoint.base_url}: {_reason(exc)}"
            ) from exc

    def _request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send with the cached auth for `scope`; on a 401 answer the challenge and send once
        more (only when the body can be replayed)."""
        authenticate = self._same_origin(url)
        for attempt in range(2):
            sent = {"User-Agent": USER_AGENT, **(headers or {})}
            auth = self._auth.header(scope) if authenticate else None
            if auth is not None:
                sent["Authorization"] = auth
            response = self._send(method, url, sent, body, preload)
            replayable = body is None or isinstance(body, bytes)
            if response.status != 401 or not authenticate or attempt == 1 or not replayable:
                return response
            challenges = parse_www_authenticate(response.headers.getlist("WWW-Authenticate"))
            _discard(response)
            self._auth.answer(challenges, scope, sent=auth)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_token(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(
                "GET", url, headers=headers, redirect=False, retries=self._retries, timeout=self._timeout
            )
        except Urllib3HTTPError as exc:
            raise RegistryError(
                f"cannot reach token realm {url.split('?', maxsplit=1)[0]}: {_reason(exc)}"
            ) from exc

    def _fail(self, response: urllib3.BaseHTTPResponse, what: str) -> NoReturn:
        """Raise the typed error for an error answer, with the registry's own code + message."""
        # A streamed answer is read only up to a bound; a preloaded one is already in `.data`.
        raw = response.read(MAX_ERROR_BODY) or (response.data or b"")
        _discard(response)
        errors: list[tuple[str, str]] = []
        try:
            for item in json.loads(raw).get("errors") or []:
                errors.append((str(item.get("code", "")), str(item.get("message", ""))))
        except (ValueError, AttributeError, TypeError):
            pass
        detail = "; ".join(f"{code}: {message}" for code, message in errors) or (
            raw[:200].decode(errors="replace").strip() or "no details"
        )
        message = f"{what}: HTTP {response.status} from {self.registry}: {detail}"
        if response.status == 401 and self._auth.basic is not None:
            message += f" (registry {self.registry} rejected the configured credentials)"
        codes = {code for code, _ in errors}
        if "DIGEST_INVALID" in codes:
            raise DigestMismatchError(message)
        if codes & {"MANIFEST_INVALID", "MANIFEST_UNVERIFIED"}:
            raise ManifestError(message)
        raise RegistryResponseError(message, response.status, errors)

    def _get(
        self, url: str, *, scope: str, headers: dict[str, str], preload: bool
    ) -> urllib3.BaseHTTPResponse:
        """GET following redirects (blob storage): https anywhere, plain http only to authorities
        listed as insecure; `Authorization` stays with the registry's origin."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request("GET", url, scope=scope, headers=headers, preload=preload)
            if response.status not in _REDIRECTS:
                return response
            location = response.headers.get("Location")
            _discard(response)
            if not location:
                raise RegistryError(f"registry {self.registry} redirected without a Location")
            target = urljoin(url, location)
            scheme, authority = _origin(target)
            if not (scheme == "https" or (scheme == "http" and authority in self.config.insecure)):
                raise RegistryError(f"registry {self.registry} redirected to a refused URL {target!r}")
            url = target
        raise RegistryError(f"registry {self.registry}: more than {MAX_REDIRECTS} redirects")

    # --- reading -------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: reachable and speaking the distribution API (auth challenges answered)."""
        response = self._request("GET", self._url(""), scope="")
        if response.status != 200:
            self._fail(response, "GET /v2/")

    def get_manifest(self, repository: str, reference: str, accept: tuple[str, ...] = ()) -> FetchedManifest:
        """The manifest or index `reference` (tag or digest) names, digest-verified.

        By digest, the bytes must hash to it. By tag, the digest is computed from the bytes and
        must agree with `Docker-Content-Digest` when the registry sends one. The media type is the
        document's own `mediaType`, else `Content-Type`, else guessed from its shape; Docker
        schema 1 and non-JSON answers are `ManifestError`s."""
        by_digest = reference.startswith(("sha256:", "sha512:"))
        if by_digest:
            check_digest(reference)
        elif not _TAG_RE.fullmatch(reference):
            raise InputError(f"bad tag {reference!r}")
        what = f"manifest {self.registry}/{repository}{'@' if by_digest else ':'}{reference}"
        response = self._get(
            self._url(f"{repository}/manifests/{reference}"),
            scope=_scope(repository),
            headers={"Accept": ", ".join(accept or oci.ACCEPTED_MANIFEST_TYPES)},
            preload=False,
        )
        if response.status != 200:
            self._fail(response, f"GET {what}")
        body = _read_limited(response, oci.MAX_MANIFEST_BYTES, what)
        if by_digest:
            verify_bytes(body, reference, what=what)
            digest = reference
        else:
            digest = sha256_digest(body)
            header = response.headers.get("Docker-Content-Digest")
            if header and header.startswith("sha256:") and header != digest:
                raise DigestMismatchError(
                    f"{what}: Docker-Content-Digest {header} != content digest {digest}"
                )
        doc = oci.parse_json(body, what)
        declared = doc.get("mediaType")
        media_type = (
            declared
            if isinstance(declared, str) and declared
            else _media_type(response.headers.get("Content-Type"))
        )
        if media_type not in oci.MANIFEST_TYPES | oci.INDEX_TYPES:
            try:
                kind = oci.document_kind(doc, media_type)
            except ManifestError as exc:
                raise ManifestError(f"{what}: {exc}") from None
            media_type = oci.OCI_INDEX if kind == "index" else oci.OCI_MANIFEST
        return FetchedManifest(digest=digest, media_type=media_type, body=body)

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of `reference` without fetching it, or None when it does not exist."""
        response = self._request(
            "HEAD",
            self._url(f"{repository}/manifests/{reference}"),
            scope=_scope(repository),
            headers={"Accept": ", ".join(oci.ACCEPTED_MANIFEST_TYPES)},
        )
        if response.status == 404:
            return None
        if response.status != 200:
            self._fail(response, f"HEAD manifest {repository}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return check_digest(digest)
        return self.get_manifest(repository, reference).digest

    def blob_exists(self, repository: str, digest: str, *, push: bool = False) -> bool:
        check_digest(digest)
        response = self._request(
            "HEAD", self._url(f"{repository}/blobs/{digest}"), scope=_scope(repository, push)
        )
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        self._fail(response, f"HEAD blob {repository}@{digest}")

    @contextmanager
    def open_blob(self, repository: str, digest: str, size: int | None = None) -> Iterator[IO[bytes]]:
        """Stream a blob as stored. The bytes are hashed as they are read; when the block ends the
        rest is drained and `DigestMismatchError` raised unless digest (and size) match."""
        check_digest(digest)
        response = self._get(
            self._url(f"{repository}/blobs/{digest}"),
            scope=_scope(repository),
            headers={"Accept": "*/*"},
            preload=False,
        )
        try:
            if response.status != 200:
                self._fail(response, f"GET blob {repository}@{digest}")
            length = response.headers.get("Content-Length")
            if size is not None and length is not None and length.isdigit() and int(length) != size:
                raise DigestMismatchError(
                    f"blob {digest}: registry sends {length} bytes, descriptor says {size}"
                )
            with verified_stream(cast(IO[bytes], response), digest, size) as stream:
                yield stream
        finally:
            _discard(response)

    def get_blob(
        self, repository: str, digest: str, size: int | None = None, limit: int = oci.MAX_CONFIG_BYTES
    ) -> bytes:
        """A small blob (image config, signature payload) read whole and verified."""
        if size is not None and size > limit:
            raise ManifestError(f"blob {digest} is {size} bytes, more than the {limit} allowed here")
        with self.open_blob(repository, digest, size) as stream:
            data = _read_exactly(stream, limit + 1)
            if len(data) > limit:
                raise ManifestError(f"blob {digest} is larger than the {limit} bytes allowed here")
            return data

    def get_tag_list(self, repository: str) -> list[str]:
        """Every tag of the repository, following `Link: <...>; rel="next"` pagination."""
        url: str | None = self._url(f"{repository}/tags/list?n={TAG_PAGE_SIZE}")
        tags: list[str] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > 10_000:
                raise RegistryError(f"registry {self.registry}: endless tag list pagination")
            response = self._request("GET", url, scope=_scope(repository))
            if response.status != 200:
                self._fail(response, f"GET tags of {repository}")
            try:
                page = json.loads(response.data).get("tags") or []
            except (ValueError, AttributeError) as exc:
                raise RegistryError(
                    f"registry {self.registry}: unreadable tag list for {repository}"
                ) from exc
            tags.extend(str(tag) for tag in page)
            link = _LINK_NEXT_RE.search(response.headers.get("Link") or "")
            url = urljoin(url, link.group(1)) if link else None
            if url is not None and not self._same_origin(url):
                raise RegistryError(f"registry {self.registry}: tag list pagination leaves the registry")
        return tags

    # --- writing -------------------------------------------------------------------------

    def _start_upload(self, repository: str) -> str:
        response = self._request(
            "POST",
            self._url(f"{repository}/blobs/uploads/"),
            scope=_scope(repository, push=True),
            headers={"Content-Length": "0"},
            body=b"",
        )
        if response.status != 202:
            self._fail(response, f"start upload to {repository}")
        return self._location(response)

    def _location(self, response: urllib3.BaseHTTPResponse) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"registry {self.registry}: upload answer without a Location")
        url = urljoin(self.endpoint.base_url + "/", location)
        if not self._same_origin(url):
            raise RegistryError(f"registry {self.registry}: upload location {url!r} leaves the registry")
        return url

    def push_blob(
        self,
        repository: str,
        data: bytes | IO[bytes],
        digest: str,
        *,
        size: int | None = None,
        chunk_size: int | None = None,
    ) -> bool:
        """Upload a blob unless the repository already has it; True when bytes were sent.

        Monolithic (POST, then PUT ?digest= with the whole body) by default; chunked (POST, PATCH
        with Content-Range per chunk, PUT ?digest=) when `chunk_size` is given or a stream's size
        is unknown. Bytes are checked against `digest` before any connection; streams are hashed
        on the way (chunked) or checked by the registry (monolithic)."""
        check_digest(digest)
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
            verify_bytes(data, digest, size, what=f"blob to push to {repository}")
            size = len(data)
        scope = _scope(repository, push=True)
        if self.blob_exists(repository, digest, push=True):
            return False
        location = self._start_upload(repository)
        if chunk_size is None and size is not None:
            response = self._request(
                "PUT",
                _with_query(location, digest=digest),
                scope=scope,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=data,
            )
        else:
            response = self._push_chunks(repository, location, data, digest, chunk_size or DEFAULT_CHUNK_SIZE)
        if response.status != 201:
            self._fail(response, f"upload blob {digest} to {repository}")
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise DigestMismatchError(f"registry stored blob as {answered}, expected {digest}")
        return True

    def _push_chunks(
        self, repository: str, location: str, data: bytes | IO[bytes], digest: str, chunk_size: int
    ) -> urllib3.BaseHTTPResponse:
        scope = _scope(repository, push=True)
        hasher = new_hasher(digest)
        offset = 0
        while True:
            if isinstance(data, bytes):
                chunk = data[offset : offset + chunk_size]
            else:
                chunk = _read_exactly(data, chunk_size)
            if not chunk:
                break
            hasher.update(chunk)
            response = self._request(
                "PATCH",
                location,
                scope=scope,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(chunk)),
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
                body=chunk,
            )
            if response.status != 202:
                self._fail(response, f"upload chunk at {offset} of blob {digest} to {repository}")
            offset += len(chunk)
            received = response.headers.get("Range")
            if received and received.rsplit("-", 1)[-1] != str(offset - 1):
                raise RegistryError(f"registry {self.registry} acknowledged {received}, sent 0-{offset - 1}")
            location = self._location(response)
        actual = f"{hasher.name}:{hasher.hexdigest()}"
        if actual != digest:
            _discard(self._request("DELETE", location, scope=scope))
            raise DigestMismatchError(f"blob pushed to {repository}: content digest {actual} != {digest}")
        return self._request(
            "PUT",
            _with_query(location, digest=digest),
            scope=scope,
            headers={"Content-Length": "0"},
            body=b"",
        )

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest or index under a tag or its digest; returns its digest. A digest
        reference that does not match the bytes is refused before sending."""
        digest = sha256_digest(body)
        if reference.startswith(("sha256:", "sha512:")):
            verify_bytes(body, check_digest(reference), what=f"manifest to push to {repository}")
            digest = reference
        elif not _TAG_RE.fullmatch(reference):
            raise InputError(f"bad tag {reference!r}")
        try:
            declared = json.loads(body).get("mediaType")
        except (ValueError, AttributeError) as exc:
            raise ManifestError(f"manifest to push to {repository} is not a JSON object") from exc
        if declared and declared != media_type:
            raise ManifestError(f"manifest declares mediaType {declared!r} but is pushed as {media_type!r}")
        response = self._request(
            "PUT",
            self._url(f"{repository}/manifests/{reference}"),
            scope=_scope(repository, push=True),
            headers={"Content-Type": media_type},
            body=body,
        )
        if response.status != 201:
            self._fail(response, f"PUT manifest {repository}:{reference}")
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise DigestMismatchError(f"registry stored manifest as {answered}, expected {digest}")
        return digest

    def push_oci_layout(
        self, layout_dir: str | Path, repository: str, tag: str, *, layout_ref: str | None = None
    ) -> str:
        """Copy an image from an OCI image layout into `repository:tag` (see
        `registry_layout.push_layout`); returns the pushed top-level manifest digest."""
        return push_layout(self, Path(layout_dir), repository, tag, layout_ref=layout_ref)


# --- the registry as an ImageSource ------------------------------------------------------------


class RegistrySource(ImageSource):
    """An image in a registry. `resolve` fetches the manifest `reference` names and lets
    `oci.resolve_descriptors` pick platforms; every manifest and config is digest-checked on the
    way, and `open_blob` streams layers verified."""

    def __init__(self, reference: Reference, client: RegistryClient) -> None:
        self.reference = reference
        self.client = client

    def _fetch(self, root: FetchedManifest) -> oci.Fetch:
        repository = self.reference.repository

        def fetch(descriptor: oci.Descriptor, what: str) -> bytes:
            if descriptor.digest == root.digest:
                return root.body
            if descriptor.media_type in oci.MANIFEST_TYPES | oci.INDEX_TYPES or what in {
                "manifest",
                "image index",
            }:
                body = self.client.get_manifest(repository, descriptor.digest).body
                return verify_bytes(body, descriptor.digest, descriptor.size, what)
            return self.client.get_blob(repository, descriptor.digest, descriptor.size)

        return fetch

    def resolve(self, platform: str | None = None, all_platforms: bool = False) -> list[ResolvedImage]:
        root = self.client.get_manifest(self.reference.repository, self.reference.ref)
        descriptor = oci.Descriptor(mediaType=root.media_type, digest=root.digest, size=len(root.body))
        return oci.resolve_descriptors(
            self._fetch(root),
            [descriptor],
            platform=platform,
            all_platforms=all_platforms,
            reference=str(self.reference),
        )

    def open_blob(self, layer: LayerRef) -> AbstractContextManager[IO[bytes]]:
        return self.client.open_blob(self.reference.repository, layer.digest, layer.size)


def registry_source(
    spec: str | Reference,
    *,
    config: RegistryConfig | None = None,
    credentials: CredentialsProvider | None = None,
    **client_options: Any,
) -> RegistrySource:
    """A `RegistrySource` for `registry:HOST[:PORT]/REPO[:TAG|@DIGEST]` (prefix optional).

    Edges should pass `config` (and, on AWS, `credentials=ecr_credentials_provider(...)`); without
    one the configuration is read from the environment. The allow-list is checked here, before any
    connection."""
    reference = spec if isinstance(spec, Reference) else parse_reference(spec)
    client = RegistryClient(
        reference.registry, config or RegistryConfig.from_env(), credentials, **client_options
    )
    return RegistrySource(reference, client)


def push_oci_layout(
    layout_dir: str | Path,
    ref: str | Reference,
    *,
    config: RegistryConfig | None = None,
    credentials: CredentialsProvider | None = None,
    layout_ref: str | None = None,
) -> str:
    """Copy an OCI layout image to `ref` (`HOST[:PORT]/REPO[:TAG|@DIGEST]`); returns the pushed
    digest. The allow-list is checked before any connection."""
    reference = ref if isinstance(ref, Reference) else parse_reference(ref)
    client = RegistryClient(reference.registry, config or RegistryConfig.from_env(), credentials)
    # A digest reference pushes by digest: the registry then checks the layout's bytes against it.
    target = reference.tag or reference.digest or "latest"
    return client.push_oci_layout(layout_dir, reference.repository, target, layout_ref=layout_ref)


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Give the connection back: kept when the body is (or cheaply becomes) fully read, dropped
    otherwise, so abandoning a large blob never downloads the rest of it."""
    try:
        if isinstance(response, urllib3.HTTPResponse) and not response.isclosed():
            response.read(MAX_ERROR_BODY)
            if not response.isclosed():
                response.close()
    except (Urllib3HTTPError, OSError):
        response.close()
    response.release_conn()


def _read_limited(response: urllib3.BaseHTTPResponse, limit: int, what: str) -> bytes:
    data = response.read(limit + 1)
    if len(data) > limit:
        _discard(response)
        raise ManifestError(f"{what} is larger than {limit} bytes")
    _discard(response)
    return data


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """Up to `size` bytes (fewer only at the end): raw streams may return short reads."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
