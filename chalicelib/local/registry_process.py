"""The real OCI registry (Debian's `docker-registry`, CNCF distribution) as a local process on
127.0.0.1, for `make run` and the integration tests. It always runs with a config of our own
(loopback only, filesystem storage in a directory we own), never the packaged one."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_BIN = "docker-registry"
READY_TIMEOUT = 15.0


def registry_binary() -> str | None:
    """The registry executable, or None when it is not installed."""
    return shutil.which(REGISTRY_BIN) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RegistryProcess:
    """A running registry. `authority` is `127.0.0.1:<port>`; `root` the storage directory."""

    port: int
    root: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.authority}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def registry_config(
    port: int, root: Path, auth: dict[str, Any] | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    if auth:
        config["auth"] = auth
    if extra:
        config.update(extra)
    return config


def _wait_ready(server: RegistryProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=1):  # noqa: S310 (loopback http)
                return
        except urllib.error.HTTPError as exc:  # 401 with auth on: the server is up
            if exc.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"docker-registry did not answer /v2/ within {READY_TIMEOUT}s:\n{server.log()}")


def start_registry_process(
    workdir: Path, *, auth: dict[str, Any] | None = None, extra_config: dict[str, Any] | None = None
) -> RegistryProcess:
    """Start a registry storing under `workdir`; the caller must `stop()` it. JSON is valid YAML,
    so the config needs no YAML library."""
    binary = registry_binary()
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        config_path = workdir / f"config-{port}.yml"
        config_path.write_text(json.dumps(registry_config(port, root, auth, extra_config), indent=2))
        log_path = workdir / f"registry-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        server = RegistryProcess(port, root, config_path, log_path, process)
        try:
            _wait_ready(server)
            return server
        except RuntimeError as exc:
            last_error = exc
            server.stop()
    raise RuntimeError(f"could not start docker-registry: {last_error}")
