"""Image configuration checks: risky settings read from the image config, its history and the
package list, as `Misconfiguration` findings with stable rule ids (`LG-IMG-NNN`).

Pure: the input is the config blob (`ResolvedImage.config`: `config.User`, `config.ExposedPorts`,
`config.Env`, `config.Healthcheck`, `config.Labels`, `history[].created_by`) and the packages the
walk found. Rules map to the CIS Docker Benchmark (section 4, "Container Images and Build File")
where it has a recommendation. ENV values are never read into a finding: a secret-looking variable
is reported by name only (the secrets scanner judges values, masked)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib.models import Misconfiguration, Package, Severity

CIS = "CIS Docker Benchmark v1.6.0"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    remediation: str
    references: tuple[str, ...] = ()

    def finding(self, message: str, severity: Severity | None = None) -> Misconfiguration:
        return Misconfiguration(
            id=self.id,
            severity=severity or self.severity,
            title=self.title,
            message=message,
            remediation=self.remediation,
            references=list(self.references),
        )


ROOT_USER = Rule(
    "LG-IMG-001",
    Severity.HIGH,
    "Image runs as root",
    "Create an unprivileged user and switch to it with `USER <name or uid>` in the Dockerfile.",
    (f"{CIS} 4.1", "https://docs.docker.com/reference/dockerfile/#user"),
)
REMOTE_ACCESS_PORT = Rule(
    "LG-IMG-002",
    Severity.MEDIUM,
    "Remote access port exposed",
    "Do not run remote-login services in containers; remove the `EXPOSE` and the daemon, and use "
    "`docker exec` / ECS Exec / `kubectl exec` for interactive access.",
    ("https://docs.docker.com/reference/dockerfile/#expose",),
)
SECRET_ENV = Rule(
    "LG-IMG-003",
    Severity.HIGH,
    "Secret-looking variable set in ENV",
    "Do not bake secrets into images: pass them at run time (ECS task secrets from Secrets Manager "
    "or SSM, Kubernetes Secrets) or use BuildKit `RUN --mount=type=secret` during the build; "
    "rotate any secret that was published in an image.",
    (f"{CIS} 4.10", "https://docs.docker.com/build/building/secrets/"),
)
REMOTE_ADD = Rule(
    "LG-IMG-004",
    Severity.MEDIUM,
    "ADD fetches a remote URL",
    "Download with `RUN curl`/`wget` and verify a checksum, or use `ADD --checksum=sha256:...`; "
    "prefer `COPY` for local files.",
    (f"{CIS} 4.9", "https://docs.docker.com/reference/dockerfile/#add"),
)
MUTABLE_BASE = Rule(
    "LG-IMG-005",
    Severity.LOW,
    "Base image referenced by a mutable tag",
    "Pin the base image to a version tag and digest (`FROM image:1.2.3@sha256:...`) so rebuilds "
    "are reproducible and reviewed.",
    ("https://github.com/opencontainers/image-spec/blob/main/annotations.md",),
)
NO_HEALTHCHECK = Rule(
    "LG-IMG-006",
    Severity.LOW,
    "No HEALTHCHECK defined",
    "Add a `HEALTHCHECK` instruction (or a container health check in the ECS task definition / "
    "Kubernetes probes) so unhealthy containers are replaced.",
    (f"{CIS} 4.6", "https://docs.docker.com/reference/dockerfile/#healthcheck"),
)
PROD_SUDO = Rule(
    "LG-IMG-007",
    Severity.HIGH,
    "sudo installed in a production image",
    "Remove sudo: a production container needs no privilege escalation.",
    (f"{CIS} 4.3", f"{CIS} 4.8"),
)
PROD_PACKAGE_MANAGER = Rule(
    "LG-IMG-008",
    Severity.MEDIUM,
    "Package manager installed in a production image",
    "Use a multi-stage build and a minimal or distroless runtime base so the final image carries "
    "no package manager.",
    (f"{CIS} 4.3",),
)
PROD_SHELL = Rule(
    "LG-IMG-009",
    Severity.LOW,
    "Shell installed in a production image",
    "Use a distroless or scratch-based runtime image without a shell.",
    (f"{CIS} 4.3",),
)
SETUID_FILES = Rule(
    "LG-IMG-010",
    Severity.MEDIUM,
    "setuid/setgid files present",
    "Remove the setuid and setgid bits the application does not need, e.g. "
    "`RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +` in the final stage.",
    (f"{CIS} 4.8",),
)
WORLD_WRITABLE_SYSTEM_FILES = Rule(
    "LG-IMG-011",
    Severity.MEDIUM,
    "World-writable files in system paths",
    "Remove write permission for others (`chmod o-w`) from files under system directories; any "
    "process in the container could otherwise replace binaries, libraries or configuration.",
)

RULES: tuple[Rule, ...] = (
    ROOT_USER,
    REMOTE_ACCESS_PORT,
    SECRET_ENV,
    REMOTE_ADD,
    MUTABLE_BASE,
    NO_HEALTHCHECK,
    PROD_SUDO,
    PROD_PACKAGE_MANAGER,
    PROD_SHELL,
    SETUID_FILES,
    WORLD_WRITABLE_SYSTEM_FILES,
)

#: port -> (service, severity): Telnet is cleartext, so worse than SSH/RDP
REMOTE_PORTS: dict[int, tuple[str, Severity]] = {
    22: ("SSH", Severity.MEDIUM),
    23: ("Telnet", Severity.HIGH),
    3389: ("RDP", Severity.MEDIUM),
}

#: name tokens (split on `_`, `-`, `.`) that mark a variable as secret-looking by themselves
_SECRET_TOKENS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASS",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATEKEY",
        "ACCESSKEY",
        "SECRETKEY",
        "AUTHTOKEN",
    }
)
#: qualifiers that make `KEY` secret-looking when they come right before it (`API_KEY`, ...)
_KEY_QUALIFIERS = frozenset({"API", "ACCESS", "SECRET", "PRIVATE", "AUTH", "ENCRYPTION", "SIGNING", "MASTER"})
#: a last token that says the value points at a secret rather than holding it
_POINTER_SUFFIXES = frozenset({"FILE", "PATH", "DIR", "URL", "URI", "ID", "NAME", "ARN", "VERSION", "LENGTH"})
#: well-known public values with secret-looking names (python images set GPG_KEY: a fingerprint)
_BENIGN_NAMES = frozenset({"GPG_KEY", "GPG_KEYS", "PUBLIC_KEY", "PWD", "OLDPWD"})

SUDO_PACKAGES = frozenset({"sudo", "sudo-rs", "doas", "opendoas"})
PACKAGE_MANAGER_PACKAGES = frozenset(
    {"apt", "apt-get", "aptitude", "apk-tools", "dnf", "yum", "microdnf", "tdnf", "zypper", "rpm", "dpkg"}
)
SHELL_PACKAGES = frozenset({"bash", "dash", "zsh", "ksh", "mksh", "tcsh", "csh", "fish", "ash", "busybox"})
#: ecosystems of OS packages (languages never bring sudo or apt): matched by prefix of the OSV name
_LANGUAGE_ECOSYSTEMS = frozenset(
    {"PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "Packagist", "NuGet", "Pub", "Hex"}
)

_ADD_REMOTE = re.compile(r"(?:^|[\s;&|)])ADD(?:\s+--\S+)*\s+(https?://\S+)", re.IGNORECASE)
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
#: top-level directories holding binaries, libraries and configuration
SYSTEM_DIRS = ("bin/", "sbin/", "usr/", "lib/", "lib32/", "lib64/", "libx32/", "etc/", "boot/")
#: most file paths named in one finding's message (the count is always exact)
MAX_LISTED_FILES = 10


@dataclass(frozen=True)
class MisconfigOptions:
    """`production_label`/`production_values`: an image whose label `production_label` has one of
    these values (case-insensitive) is a production image and gets the sudo / package manager /
    shell checks (a build image legitimately has them)."""

    production_label: str = "environment"
    production_values: tuple[str, ...] = ("production", "prod")
    #: rule ids not to run
    disabled: tuple[str, ...] = ()


def check_image(
    image_config: dict[str, Any],
    packages: Sequence[Package] = (),
    options: MisconfigOptions = MisconfigOptions(),  # frozen: an immutable default
    annotations: dict[str, str] | None = None,
    file_modes: Mapping[str, int] | None = None,
) -> list[Misconfiguration]:
    """Every rule against one image config blob; findings in rule order, then by subject.

    `annotations` are the manifest's (`org.opencontainers.image.base.name` may be there instead of
    in the config labels). `file_modes`: path -> permission bits of the regular files of the merged
    image that are setuid, setgid or world-writable (the walker's `special_modes`)."""
    config = _dict(image_config.get("config"))
    labels = {str(k): str(v) for k, v in _dict(config.get("Labels")).items()}
    findings: list[Misconfiguration] = []
    findings += _root_user(config)
    findings += _remote_ports(config)
    findings += _secret_env(config)
    findings += _remote_add(image_config.get("history"))
    findings += _mutable_base({**(annotations or {}), **labels})
    findings += _healthcheck(config)
    if _is_production(labels, options):
        findings += _production_tools(packages, options.production_label)
    findings += _file_modes(file_modes or {})
    disabled = set(options.disabled)
    return [f for f in findings if f.id not in disabled]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _root_user(config: dict[str, Any]) -> list[Misconfiguration]:
    user = str(config.get("User") or "").strip()
    name = user.partition(":")[0]
    if name not in ("", "root", "0"):
        return []
    why = "no USER is set, so the container runs as root (uid 0)" if not user else f"USER is {user!r}"
    return [ROOT_USER.finding(f"The image config runs as root: {why}.")]


def _remote_ports(config: dict[str, Any]) -> list[Misconfiguration]:
    out: list[tuple[int, str, Misconfiguration]] = []
    for spec in _dict(config.get("ExposedPorts")):
        port_text, _, proto = str(spec).partition("/")
        proto = proto or "tcp"
        try:
            port = int(port_text)
        except ValueError:
            continue
        if port in REMOTE_PORTS and proto.lower() == "tcp":
            service, severity = REMOTE_PORTS[port]
            message = f"Port {port}/{proto} ({service}) is exposed."
            out.append((port, proto, REMOTE_ACCESS_PORT.finding(message, severity)))
    return [f for _, _, f in sorted(out, key=lambda t: (t[0], t[1]))]


def secret_looking(name: str) -> bool:
    """A variable name that suggests it holds a secret (`DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`,
    `GITHUB_TOKEN`), excluding pointers to secrets (`PASSWORD_FILE`, `TOKEN_URL`) and known
    public values (`GPG_KEY`)."""
    upper = name.upper()
    if upper in _BENIGN_NAMES:
        return False
    tokens = [t for t in re.split(r"[_.\-]+", upper) if t]
    if not tokens or tokens[-1] in _POINTER_SUFFIXES:
        return False
    if any(t in _SECRET_TOKENS for t in tokens):
        return True
    return any(t == "KEY" and i > 0 and tokens[i - 1] in _KEY_QUALIFIERS for i, t in enumerate(tokens))


def _secret_env(config: dict[str, Any]) -> list[Misconfiguration]:
    env = config.get("Env")
    names: set[str] = set()
    for entry in env if isinstance(env, list) else []:
        name, sep, value = str(entry).partition("=")
        if sep and value.strip() and secret_looking(name):
            names.add(name)
    return [
        SECRET_ENV.finding(f"ENV {name} is set to a non-empty value in the image config (value not shown).")
        for name in sorted(names)
    ]


def _redact_url(url: str) -> str:
    """Scheme, host and path of a URL: user info, query and fragment may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _remote_add(history: Any) -> list[Misconfiguration]:
    out: list[Misconfiguration] = []
    seen: set[str] = set()
    for step, entry in enumerate(history if isinstance(history, list) else []):
        created_by = str(_dict(entry).get("created_by") or "")
        for match in _ADD_REMOTE.finditer(created_by):
            url = _redact_url(match.group(1))
            if url in seen:
                continue
            seen.add(url)
            out.append(REMOTE_ADD.finding(f"History step {step} ADDs the remote URL {url}."))
    return out


def mutable_reference(ref: str) -> str | None:
    """Why an image reference is mutable (`latest` tag, or no tag), or None when it is pinned by
    digest or names a tag other than `latest`."""
    ref = ref.strip()
    if not ref or "@sha256:" in ref or "@sha512:" in ref:
        return None
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return "it has no tag (means `latest`)"
    if last.rsplit(":", 1)[1] == "latest":
        return "its tag is `latest`"
    return None


def _mutable_base(labels: dict[str, str]) -> list[Misconfiguration]:
    base = labels.get(BASE_NAME_LABEL)
    if base is None:
        return []
    why = mutable_reference(base)
    if why is None:
        return []
    return [MUTABLE_BASE.finding(f"The base image {base} is not pinned: {why}.")]


def _healthcheck(config: dict[str, Any]) -> list[Misconfiguration]:
    test = _dict(config.get("Healthcheck")).get("Test")
    if isinstance(test, list) and test and test[0] != "NONE":
        return []
    why = "is disabled (HEALTHCHECK NONE)" if isinstance(test, list) and test else "is not defined"
    return [NO_HEALTHCHECK.finding(f"The image's HEALTHCHECK {why}.")]


def _is_production(labels: dict[str, str], options: MisconfigOptions) -> bool:
    value = labels.get(options.production_label)
    return value is not None and value.strip().lower() in {v.lower() for v in options.production_values}


def _os_package_names(packages: Iterable[Package]) -> set[str]:
    return {p.name for p in packages if p.ecosystem.split(":", 1)[0] not in _LANGUAGE_ECOSYSTEMS}


def _production_tools(packages: Sequence[Package], label: str) -> list[Misconfiguration]:
    names = _os_package_names(packages)
    out: list[Misconfiguration] = []
    for rule, wanted, what in (
        (PROD_SUDO, SUDO_PACKAGES, "privilege escalation"),
        (PROD_PACKAGE_MANAGER, PACKAGE_MANAGER_PACKAGES, "package manager"),
        (PROD_SHELL, SHELL_PACKAGES, "shell"),
    ):
        found = sorted(names & wanted)
        if found:
            message = (
                f"The image is labelled production ({label}) and installs {what} "
                f"package(s): {', '.join(found)}."
            )
            out.append(rule.finding(message))
    return out


def _listing(files: list[tuple[str, int]]) -> str:
    shown = ", ".join(f"{path} ({mode:04o})" for path, mode in files[:MAX_LISTED_FILES])
    more = len(files) - MAX_LISTED_FILES
    return shown + (f" and {more} more" if more > 0 else "")


def _file_modes(modes: Mapping[str, int]) -> list[Misconfiguration]:
    ordered = sorted(modes.items())
    setuid = [(p, m) for p, m in ordered if m & 0o6000]
    writable = [(p, m) for p, m in ordered if m & 0o0002 and p.startswith(SYSTEM_DIRS)]
    out: list[Misconfiguration] = []
    if setuid:
        out.append(SETUID_FILES.finding(f"{len(setuid)} setuid/setgid file(s): {_listing(setuid)}."))
    if writable:
        message = f"{len(writable)} world-writable file(s) in system paths: {_listing(writable)}."
        out.append(WORLD_WRITABLE_SYSTEM_FILES.finding(message))
    return out
