"""The real CNCF distribution registry (Debian `docker-registry`) on 127.0.0.1, for tests.

`start_registry(workdir)` writes a config of its own (never the packaged one), starts
`docker-registry serve`, waits until `/v2/` answers and returns a handle whose `stop()` ends it.
Variants: `htpasswd={user: password}` for Basic auth, `token=TokenIssuer(...)` for the Docker
token protocol (Bearer) with a small in-process token server that signs ES256 JWTs the registry
verifies through an `x5c` certificate chain. `require_registry()` skips cleanly when the binary is
missing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.local.registry_process import RegistryProcess, registry_binary, start_registry_process


def require_registry() -> str:
    """The registry executable; skips the calling test when it is missing."""
    binary = registry_binary()
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    return binary


def _bcrypt(password: str) -> str:
    """htpasswd wants bcrypt; glibc/libxcrypt `crypt` makes it without a bcrypt package."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # removed in Python 3.13; fine on 3.11 (tests only)

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # noqa: S324  bcrypt cost 4: fast


@dataclass
class RegistryServer(RegistryProcess):
    """A running test registry: the product's local registry process plus what tests need (the
    token server it trusts, the on-disk place of a blob to tamper with)."""

    token_issuer: TokenIssuer | None = None

    def blob_data_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes (to tamper with them in tests)."""
        algorithm, hex_ = digest.split(":", 1)
        return self.root / "docker/registry/v2/blobs" / algorithm / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        super().stop()
        if self.token_issuer is not None:
            self.token_issuer.stop()


def start_registry(
    workdir: Path,
    *,
    htpasswd: dict[str, str] | None = None,
    token: TokenIssuer | None = None,
    extra_config: dict[str, Any] | None = None,
) -> RegistryServer:
    """Start a registry storing under `workdir` (anonymous, htpasswd Basic or token auth); the
    caller must `stop()` it."""
    require_registry()
    workdir.mkdir(parents=True, exist_ok=True)
    auth: dict[str, Any] | None = None
    if htpasswd is not None:
        htpasswd_path = workdir / "htpasswd"
        htpasswd_path.write_text("".join(f"{user}:{_bcrypt(pw)}\n" for user, pw in htpasswd.items()))
        auth = {"htpasswd": {"realm": "lifeguard-test", "path": str(htpasswd_path)}}
    if token is not None:
        token.start(workdir)
        auth = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.cert_path),
            }
        }
    try:
        process = start_registry_process(workdir, auth=auth, extra_config=extra_config)
    except RuntimeError:
        if token is not None:
            token.stop()
        raise
    return RegistryServer(
        process.port, process.root, process.config_path, process.log_path, process.process, token
    )


@contextlib.contextmanager
def running_registry(workdir: Path, **kwargs: Any) -> Any:
    """`start_registry` as a context manager."""
    server = start_registry(workdir, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# --- token auth (Docker token protocol) ------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    """A token server for the registry's `auth.token` mode. It grants every requested action to
    the users in `users` (Basic auth on the token request) and, when `anonymous_pull`, `pull` to
    anyone. `requests` records (user or None, scope list) for assertions."""

    users: dict[str, str] = field(default_factory=dict)
    anonymous_pull: bool = False
    service: str = "lifeguard-test-registry"
    issuer: str = "lifeguard-test-issuer"
    requests: list[tuple[str | None, list[str]]] = field(default_factory=list)
    cert_path: Path = field(default=Path())
    _server: ThreadingHTTPServer | None = None
    _key: Any = None
    _cert_der: bytes = b""

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    @property
    def authority(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self, workdir: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lifeguard-test-token-signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = workdir / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _user(self, handler: BaseHTTPRequestHandler) -> tuple[str | None, bool]:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, True
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, self.users.get(user) == password

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        scopes = query.get("scope", [])
        user, ok = self._user(handler)
        self.requests.append((user, scopes))
        if not ok or query.get("service") != [self.service]:
            handler.send_response(401)
            handler.end_headers()
            return
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
            wanted = actions.split(",")
            granted = (
                wanted if user is not None else [a for a in wanted if a == "pull" and self.anonymous_pull]
            )
            access.append({"type": kind, "name": name, "actions": granted})
        body = json.dumps({"token": self._jwt(user or "", access), "expires_in": 300}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
