"""The built-in secret rules and allow-lists (data, no logic beyond compiling it).

Each rule has a cheap prefilter: `keywords`, lowercase substrings of which at least one must occur
in the lowercased file before the rule's regex runs at all (Trivy's design). The regex runs on the
raw bytes and names the secret value with the group `secret`; `paths`, when set, limits a rule to
files whose path matches (credentials files such as `.npmrc`). `min_entropy` (Shannon bits per
character of the value) keeps the generic assignment rule away from words and placeholders.

The global path allow-list mirrors Trivy's built-in allow rules (system and language directories
of base images, tests, examples, vendored code, locales, Markdown): a secret there is almost always
documentation or a test vector, and skipping those trees is most of what keeps the scan fast."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from chalicelib.models import Severity


@dataclass(frozen=True)
class SecretRule:
    id: str
    title: str
    severity: Severity
    #: lowercase substrings; the rule runs only on files containing one of them
    keywords: tuple[str, ...]
    #: bytes pattern with a named group `secret` (the value to mask and fingerprint)
    regex: re.Pattern[bytes]
    #: only files whose path matches (relative path, no leading '/')
    paths: re.Pattern[str] | None = None
    #: least Shannon entropy (bits per character) of the value
    min_entropy: float | None = None
    #: the value must contain a digit (words and placeholders such as `your-token-here` do not)
    needs_digit: bool = False
    #: the regex starts at a keyword: it is tried only at keyword positions (no full-text search)
    anchored: bool = False

    @cached_property
    def keyword_bytes(self) -> tuple[bytes, ...]:
        """`keywords` encoded once (the prefilter runs for every rule on every scanned file)."""
        return tuple(k.encode() for k in self.keywords)


def _rx(pattern: str, flags: int = 0) -> re.Pattern[bytes]:
    return re.compile(pattern.encode(), flags)


_AWS_ID_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "A3T")

RULES: tuple[SecretRule, ...] = (
    SecretRule(
        id="aws-access-key-id",
        title="AWS access key ID",
        severity=Severity.CRITICAL,
        keywords=tuple(p.lower() for p in _AWS_ID_PREFIXES),
        regex=_rx(
            r"(?<![A-Z0-9])(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16})(?![A-Z0-9])"
        ),
    ),
    SecretRule(
        id="aws-secret-access-key",
        title="AWS secret access key",
        severity=Severity.CRITICAL,
        keywords=("aws",),
        anchored=True,
        regex=_rx(
            r"(?i)aws[-_.]?(?:secret)?[-_.]?(?:access)?[-_.]?key[\"']?\s*(?::|=>|=)\s*[\"']?"
            r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    SecretRule(
        id="private-key",
        title="Private key (RSA, EC, DSA, OpenSSH, PGP, PKCS#8)",
        severity=Severity.HIGH,
        keywords=("private key",),
        regex=_rx(
            r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:\\n|\s)*"
            r"(?P<secret>[A-Za-z0-9+/=\\\s:,.-]{64,}?)(?:\\n|\s)*-----END[ A-Z0-9_-]{0,40}PRIVATE KEY"
        ),
    ),
    SecretRule(
        id="github-pat",
        title="GitHub personal access token",
        severity=Severity.CRITICAL,
        keywords=("ghp_",),
        regex=_rx(r"(?<![A-Za-z0-9_])(?P<secret>ghp_[0-9A-Za-z]{36})(?![A-Za-z0-9])"),
    ),
    SecretRule(
        id="github-oauth",
        title="GitHub OAuth access token",
        severity=Severity.CRITICAL,
        keywords=("gho_",),
        regex=_rx(r"(?<![A-Za-z0-9_])(?P<secret>gho_[0-9A-Za-z]{36})(?![A-Za-z0-9])"),
    ),
    SecretRule(
        id="github-app-token",
        title="GitHub App token",
        severity=Severity.CRITICAL,
        keywords=("ghs_", "ghu_", "ghr_"),
        regex=_rx(r"(?<![A-Za-z0-9_])(?P<secret>gh[sur]_[0-9A-Za-z]{36})(?![A-Za-z0-9])"),
    ),
    SecretRule(
        id="github-fine-grained-pat",
        title="GitHub fine-grained personal access token",
        severity=Severity.CRITICAL,
        keywords=("github_pat_",),
        regex=_rx(r"(?P<secret>github_pat_[0-9A-Za-z_]{82})(?![A-Za-z0-9_])"),
    ),
    SecretRule(
        id="gitlab-pat",
        title="GitLab personal access token",
        severity=Severity.CRITICAL,
        keywords=("glpat-",),
        regex=_rx(r"(?P<secret>glpat-[0-9A-Za-z_-]{20})(?![A-Za-z0-9_-])"),
    ),
    SecretRule(
        id="slack-token",
        title="Slack token",
        severity=Severity.HIGH,
        keywords=("xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"),
        regex=_rx(r"(?P<secret>xox[baprs]-[0-9A-Za-z]{10,48}(?:-[0-9A-Za-z]{1,64}){0,4})"),
    ),
    SecretRule(
        id="slack-webhook",
        title="Slack incoming webhook URL",
        severity=Severity.MEDIUM,
        keywords=("hooks.slack.com",),
        regex=_rx(
            r"https://hooks\.slack\.com/services/(?P<secret>T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})"
        ),
    ),
    SecretRule(
        id="stripe-secret-key",
        title="Stripe live secret or restricted key",
        severity=Severity.CRITICAL,
        keywords=("sk_live_", "rk_live_"),
        regex=_rx(r"(?<![A-Za-z0-9])(?P<secret>[sr]k_live_[0-9A-Za-z]{20,99})(?![A-Za-z0-9])"),
    ),
    SecretRule(
        id="google-api-key",
        title="Google API key",
        severity=Severity.HIGH,
        keywords=("aiza",),
        regex=_rx(r"(?<![A-Za-z0-9_-])(?P<secret>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])"),
    ),
    SecretRule(
        id="azure-storage-account-key",
        title="Azure storage account key (connection string)",
        severity=Severity.CRITICAL,
        keywords=("accountkey",),
        regex=_rx(r"(?i)AccountKey\s*=\s*(?P<secret>[A-Za-z0-9+/]{86}==)"),
    ),
    SecretRule(
        id="jwt-token",
        title="JSON Web Token",
        severity=Severity.MEDIUM,
        keywords=("eyj",),
        regex=_rx(
            r"(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
        ),
    ),
    SecretRule(
        id="database-url-password",
        title="Database URL with a password",
        severity=Severity.HIGH,
        keywords=("postgres", "mysql", "mariadb", "mongodb", "redis", "amqp"),
        anchored=True,
        regex=_rx(
            r"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?)://"
            r"[^\s:/@\"'<>]*:(?P<secret>[^\s/@\"'<>]{3,128})@[^\s/\"'<>]"
        ),
    ),
    SecretRule(
        id="npm-access-token",
        title="npm access token",
        severity=Severity.CRITICAL,
        keywords=("npm_",),
        regex=_rx(r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
    ),
    SecretRule(
        id="npmrc-auth",
        title="Credential in .npmrc",
        severity=Severity.HIGH,
        keywords=("_auth", "_password"),
        regex=_rx(r"(?m)_(?:authToken|auth|password)\s*=\s*[\"']?(?P<secret>[^\s\"'$][^\s\"']{5,})"),
        paths=re.compile(r"(?:^|/)\.npmrc$"),
    ),
    SecretRule(
        id="pypi-upload-token",
        title="PyPI upload token",
        severity=Severity.CRITICAL,
        keywords=("pypi-ageichlwas5vcmc",),
        regex=_rx(r"(?P<secret>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})"),
    ),
    SecretRule(
        id="pypirc-password",
        title="Password in .pypirc",
        severity=Severity.HIGH,
        keywords=("password",),
        regex=_rx(r"(?mi)^[ \t]*password[ \t]*[:=][ \t]*(?P<secret>[^\s$][^\s]{3,})"),
        paths=re.compile(r"(?:^|/)\.pypirc$"),
    ),
    SecretRule(
        id="docker-config-auth",
        title="Registry credential in a Docker config",
        severity=Severity.HIGH,
        keywords=('"auth"', '"identitytoken"'),
        regex=_rx(r"\"(?:auth|identitytoken)\"\s*:\s*\"(?P<secret>[A-Za-z0-9+/=._-]{8,})\""),
        paths=re.compile(r"(?:^|/)(?:\.docker/config\.json|\.dockercfg)$"),
    ),
    SecretRule(
        id="generic-secret-assignment",
        title="High-entropy value assigned to a secret-like name",
        severity=Severity.MEDIUM,
        keywords=(
            "secret",
            "token",
            "passw",
            "api_key",
            "apikey",
            "api-key",
            "access_key",
            "accesskey",
            "access-key",
        ),
        anchored=True,
        regex=_rx(
            r"(?i)(?:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key)[A-Za-z0-9_.-]{0,40}[\"']?"
            r"[ \t]*(?::=|=>|[:=])[ \t]*[\"'](?P<secret>[^\"'\s]{16,200})[\"']"
        ),
        min_entropy=3.5,
        needs_digit=True,
    ),
)

#: global path allow-list (Trivy's built-in allow rules plus VCS metadata); `allow_paths=()` in
#: `SecretConfig` turns it off
BUILTIN_ALLOW_PATHS: tuple[str, ...] = (
    r"(?:^|/)(?:[Tt]est|[^/]*[-_.]test)",  # tests: `test/`, `tests/`, `foo_test.go`, `x.test.js`
    r"example",
    r"/vendor/",
    r"^usr/(?:share|include|lib)/",
    r"/locales?/",
    r"\.md$",
    r"^opt/yarn-v[\d.]+/",
    r"^usr/local/go/",
    r"^usr/local/lib/python[\d.]+/",
    r"^usr/lib/gems/",
    r"^usr/src/wordpress/",
    r"^var/log/anaconda/",
    r"(?:^|/)\.git/",
    # package managers' own databases (written by dpkg/rpm/apk from signed packages)
    r"^var/lib/(?:dpkg|rpm|apt)/",
    r"^lib/apk/db/",
)

#: extensions of formats that are binary or compressed (never read, whatever their size)
SKIP_EXTENSIONS: frozenset[str] = frozenset(
    {
        "a",
        "o",
        "so",
        "ko",
        "pyc",
        "pyo",
        "pyd",
        "class",
        "jar",
        "war",
        "ear",
        "whl",
        "egg",
        "zip",
        "gz",
        "tgz",
        "bz2",
        "xz",
        "zst",
        "lz4",
        "lzma",
        "7z",
        "rar",
        "tar",
        "deb",
        "rpm",
        "apk",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "bmp",
        "ico",
        "webp",
        "tif",
        "tiff",
        "svgz",
        "psd",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "pdf",
        "mo",
        "gmo",
        "db",
        "sqlite",
        "sqlite3",
        "wasm",
        "node",
        "exe",
        "dll",
        "dylib",
        "bin",
        "dat",
        "iso",
        "img",
        "qcow2",
        "mp3",
        "mp4",
        "ogg",
        "wav",
        "flac",
        "avi",
        "mov",
        "mkv",
        "pack",
        "idx",
        "rlib",
        "beam",
    }
)

#: lockfiles: hashes and integrity strings everywhere, never credentials (Trivy skips them too)
SKIP_FILENAMES: frozenset[str] = frozenset(
    {
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.sum",
        "go.mod",
        "Cargo.lock",
        "Pipfile.lock",
        "poetry.lock",
        "Gemfile.lock",
        "composer.lock",
        "RECORD",
    }
)

#: a matched value that contains one of these (case-insensitive) is documentation, not a secret
ALLOW_VALUE_SUBSTRINGS: tuple[str, ...] = ("example", "xxxxxxxx", "placeholder", "changeme", "dummy")

#: values that are templates or references, not secrets: `${VAR}`, `$VAR`, `{{ var }}`, `<pass>`,
#: `%(password)s`, `*****`
ALLOW_VALUE_REGEX: re.Pattern[bytes] = re.compile(rb"^(?:\$\{?[A-Za-z_]|\{\{|<|%\(|\*+$)")
