"""Secret rules: exact findings per rule (rule id, line, masked excerpt, fingerprint), allow-lists,
binaries, the image config, and the walker's layer handling. Every planted value is fake."""

from __future__ import annotations

import hashlib
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.base import FileResult
from chalicelib.analyzers.secrets import (
    SecretAnalyzer,
    SecretConfig,
    fingerprint,
    scan_content,
    scan_image_config,
    shannon_entropy,
)
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import build_layer, whiteout, write_oci_layout
from chalicelib.image.walker import walk_image
from chalicelib.models import Severity

AKIA = "AKIAZ7Q3W5E7R9T1Y3U5"
AWS_SECRET = "q8Vn3Lk2Jd9Hs7Fa1Gz5Xc4Bv6Nm0Qw8Er2Ty7Ui"  # 40 characters
GHP = "ghp_" + "R4nd0mT0k3nV4lu3s" + "Abc123Def456Ghi789J"  # 4 + 36
GLPAT = "glpat-" + "aB3dE5fG7hJ9kL1mN3pQ"
SLACK = "xoxb-" + "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyD3x4mPl3K3yF0rT3st1ngPurp0s3s12ab"
AZURE_KEY = "Zm9vYmFy" * 10 + "Zm9vYm=="  # 86 + "=="
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
DB_PASS = "Tr0ub4dor-3xyz"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
DOCKER_AUTH = "dXNlcjpwNHNzdzByZF9sb25n"
GENERIC = "Zx9kP2mQ7wR4tY8aB3cD"
PRIVATE_BODY = "MIIEowIBAAKCAQEAx3k9vQ" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ" * 2
PGP_ARMOR = f"Version: GnuPG v2\n\n{PRIVATE_BODY}\n=AbCd"
JSON_KEY = f"-----BEGIN PRIVATE KEY-----\\n{PRIVATE_BODY}\\n-----END PRIVATE KEY-----\\n"


def m(value: str) -> str:
    """The masked form: at most 4 characters (a quarter of a short value) shown, the rest `*`."""
    shown = min(4, len(value) // 4)
    return value[:shown] + "*" * (len(value) - shown)


def _fp(rule: str, value: str) -> str:
    return hashlib.sha256(rule.encode() + b"\x00" + value.encode()).hexdigest()[:32]


# (path, content, rule id, severity, line, masked excerpt, value)
CASES = [
    ("app/.env", f"# creds\nAWS_ACCESS_KEY_ID={AKIA}\n", "aws-access-key-id", Severity.CRITICAL, 2,
     f"AWS_ACCESS_KEY_ID={m(AKIA)}", AKIA),
    ("app/settings.py", f'x = 1\naws_secret_access_key = "{AWS_SECRET}"\n', "aws-secret-access-key",
     Severity.CRITICAL, 2, f'aws_secret_access_key = "{m(AWS_SECRET)}"', AWS_SECRET),
    ("root/.ssh/id_rsa", f"-----BEGIN RSA PRIVATE KEY-----\n{PRIVATE_BODY}\n-----END RSA PRIVATE KEY-----\n",
     "private-key", Severity.HIGH, 1, "-----BEGIN RSA PRIVATE KEY-----", PRIVATE_BODY),
    ("etc/key.pem",
     f"junk\n-----BEGIN OPENSSH PRIVATE KEY-----\n{PRIVATE_BODY}\n-----END OPENSSH PRIVATE KEY-----",
     "private-key", Severity.HIGH, 2, "-----BEGIN OPENSSH PRIVATE KEY-----", PRIVATE_BODY),
    ("srv/sa.json", f'{{"private_key": "{JSON_KEY}"}}', "private-key", Severity.HIGH, 1,
     "..." + ("--BEGIN PRIVATE KEY-----\\n" + m(PRIVATE_BODY))[:80] + "...", PRIVATE_BODY),
    ("root/key.asc",
     f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{PGP_ARMOR}\n-----END PGP PRIVATE KEY BLOCK-----\n",
     "private-key", Severity.HIGH, 1, "-----BEGIN PGP PRIVATE KEY BLOCK-----", PGP_ARMOR),
    ("srv/ci.sh", f"export GH={GHP}\n", "github-pat", Severity.CRITICAL, 1,
     f"export GH={m(GHP)}", GHP),
    ("srv/ci.sh", f"git clone https://oauth2:{GLPAT}@gitlab.com/x.git\n", "gitlab-pat", Severity.CRITICAL, 1,
     f"git clone https://oauth2:{m(GLPAT)}@gitlab.com/x.git", GLPAT),
    ("srv/bot.yaml", f"slack: {SLACK}\n", "slack-token", Severity.HIGH, 1,
     f"slack: {m(SLACK)}", SLACK),
    ("srv/pay.js", f"const stripe = require('stripe')('{STRIPE}');\n", "stripe-secret-key",
     Severity.CRITICAL, 1,
     f"const stripe = require('stripe')('{m(STRIPE)}');", STRIPE),
    ("srv/maps.js", f"key={GOOGLE}\n", "google-api-key", Severity.HIGH, 1,
     f"key={m(GOOGLE)}", GOOGLE),
    ("srv/app.config",
     f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net\n",
     "azure-storage-account-key", Severity.CRITICAL, 1,
     "..." + ("countName=acct;AccountKey=" + m(AZURE_KEY))[:80] + "...", AZURE_KEY),
    ("srv/client.txt", f"Authorization: Bearer {JWT}\n", "jwt-token", Severity.MEDIUM, 1,
     (f"Authorization: Bearer {m(JWT)}")[:80] + "...", JWT),
    ("srv/db.ini", f"[db]\nurl = postgres://app:{DB_PASS}@db.internal:5432/app\n", "database-url-password",
     Severity.HIGH, 2, f"url = postgres://app:{m(DB_PASS)}@db.internal:5432/app", DB_PASS),
    ("srv/db.ini", f"MONGO=mongodb+srv://u:{DB_PASS}@cluster0.example.net/db\n", "database-url-password",
     Severity.HIGH, 1, f"MONGO=mongodb+srv://u:{m(DB_PASS)}@cluster0.example.net/db", DB_PASS),
    ("root/.npmrc", f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={NPM}\n",
     "npm-access-token", Severity.CRITICAL, 2,
     f"//registry.npmjs.org/:_authToken={m(NPM)}", NPM),
    ("home/u/.npmrc", "//npm.corp/:_authToken=Qm9vZ2llV29vZ2llMTIz\n", "npmrc-auth", Severity.HIGH, 1,
     "//npm.corp/:_authToken=" + m("Qm9vZ2llV29vZ2llMTIz"), "Qm9vZ2llV29vZ2llMTIz"),
    ("root/.pypirc", "[pypi]\nusername = __token__\npassword = s3cretPyp1Pass\n", "pypirc-password",
     Severity.HIGH, 3, "password = " + m("s3cretPyp1Pass"), "s3cretPyp1Pass"),
    ("root/.docker/config.json", f'{{"auths": {{"r.io": {{"auth": "{DOCKER_AUTH}"}}}}}}',
     "docker-config-auth",
     Severity.HIGH, 1, '{"auths": {"r.io": {"auth": "' + m(DOCKER_AUTH) + '"}}}', DOCKER_AUTH),
    ("srv/conf.py", f'API_TOKEN = "{GENERIC}"\n', "generic-secret-assignment", Severity.MEDIUM, 1,
     f'API_TOKEN = "{m(GENERIC)}"', GENERIC),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_finds_exactly_its_secret(case: tuple[str, str, str, Severity, int, str, str]) -> None:
    path, content, rule, severity, line, masked, value = case
    findings = scan_content(path, content.encode(), layer="sha256:abc")
    assert [f.model_dump() for f in findings] == [
        {
            "rule_id": rule,
            "severity": severity,
            "path": path,
            "layer": "sha256:abc",
            "line": line,
            "masked": masked,
            "fingerprint": _fp(rule, value),
        }
    ]
    assert value not in findings[0].model_dump_json()


def test_every_value_on_a_line_is_masked_in_every_excerpt() -> None:
    findings = scan_content("srv/x.sh", f"{AKIA} {GHP} Abc123Def456Ghi789Jk\n".encode())
    # the second and third values are masked in the first finding's excerpt too (the third matched
    # no rule: it is masked as a token-like run), the excerpt is cut at 80 characters
    excerpt = f"AKIA{'*' * 16} ghp_{'*' * 36} Abc1{'*' * 16}"[:80] + "..."
    assert [(f.rule_id, f.masked) for f in findings] == [
        ("aws-access-key-id", excerpt),
        ("github-pat", excerpt),
    ]


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("srv/doc.txt", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),  # AWS's documented example key
        ("srv/db.ini", "url = postgres://app:${DB_PASSWORD}@db:5432/app\n"),  # a template, not a value
        ("srv/db.ini", "url = postgres://app:<password>@db:5432/app\n"),
        ("srv/conf.py", 'password = "aaaaaaaaaaaaaaaaaaaa"\n'),  # entropy 0
        ("srv/conf.py", 'token = "your-token-goes-here-please"\n'),  # below 3.5 bits per character
        ("srv/conf.py", "password = get_password_from_vault()\n"),  # not a quoted literal
        ("srv/notes.txt", "_authToken=abcdefghijkl\n"),  # the .npmrc rule is for .npmrc files only
        ("srv/notes.txt", "password = s3cretPyp1Pass\n"),  # the .pypirc rule likewise
        ("srv/tls.py", 'MARKER = "-----BEGIN PRIVATE KEY-----"\n'),  # a marker with no key body
        ("srv/x.txt", "ghp_tooShort123\n"),
    ],
)
def test_allow_listed_or_non_matching_content_has_no_findings(path: str, content: str) -> None:
    assert scan_content(path, content.encode()) == []


def test_binary_content_is_skipped() -> None:
    assert scan_content("usr/bin/tool", b"\x7fELF\x00\x00" + f"K={AKIA}".encode()) == []
    assert [f.rule_id for f in scan_content("usr/bin/tool.sh", f"K={AKIA}".encode())] == ["aws-access-key-id"]


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("app/config.py", True),
        ("etc/environment", True),
        ("root/.docker/config.json", True),
        ("usr/share/doc/x/README", False),  # usr-dirs
        ("usr/lib/python3/dist-packages/x.py", False),
        ("usr/local/lib/python3.11/site-packages/x.py", False),
        ("app/tests/fixture.py", False),  # tests
        ("app/x_test.go", False),
        ("app/examples/demo.py", False),
        ("app/README.md", False),
        ("app/vendor/lib/x.go", False),
        ("app/.git/config", False),
        ("var/lib/dpkg/status", False),
        ("app/logo.png", False),  # binary extension
        ("app/lib.so", False),
        ("app/package-lock.json", False),  # lockfile
    ],
)
def test_wants_applies_path_and_extension_allow_lists(path: str, wanted: bool) -> None:
    assert SecretAnalyzer().wants(path) is wanted


def test_path_allow_list_is_configurable() -> None:
    analyzer = SecretAnalyzer(SecretConfig(allow_paths=()))
    assert analyzer.wants("usr/share/doc/x/README") is True
    assert analyzer.wants("app/logo.png") is False


def test_files_over_the_size_cap_are_not_scanned() -> None:
    content = f"K={AKIA}\n".encode() + b"#" * 100
    assert SecretAnalyzer(SecretConfig(max_file_size=50)).analyze("srv/a", content) == FileResult()
    assert len(SecretAnalyzer().analyze("srv/a", content).secrets) == 1


def test_entropy_and_fingerprint() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"aaaa") == 0.0
    assert shannon_entropy(b"abcd") == 2.0
    assert fingerprint("r", b"v") == hashlib.sha256(b"r\x00v").hexdigest()[:32]


def test_image_config_env_labels_and_history() -> None:
    config = {
        "config": {
            "Env": ["PATH=/usr/bin", f"DB_PASSWORD={GENERIC}", f"AWS_ACCESS_KEY_ID={AKIA}"],
            "Labels": {"maintainer": "me", "deploy.token": GHP},
        },
        "history": [
            {"created_by": "ADD rootfs.tar /"},
            {"created_by": "ENV X=1", "empty_layer": True},
            {"created_by": f"RUN echo x &&\\\n curl -H 'X: token {GHP}' https://x"},
        ],
    }
    findings = scan_image_config(config, ["sha256:base", "sha256:app"])
    got = [(f.rule_id, f.path, f.layer, f.line, f.masked) for f in findings]
    assert got == [
        ("generic-secret-assignment", "config:env", None, 2, 'DB_PASSWORD="Zx9k****************"'),
        ("aws-access-key-id", "config:env", None, 3, 'AWS_ACCESS_KEY_ID="AKIA****************"'),
        ("github-pat", "config:labels", None, 1, 'deploy.token="ghp_************************************"'),
        ("github-pat", "config:history[2]", "sha256:app", 2,
         f"curl -H 'X: token {m(GHP)}' https://x"),
    ]  # fmt: skip


def test_walker_reports_secrets_of_deleted_files_with_their_layer_once(tmp_path: Path) -> None:
    """Trivy's behaviour: a secret deleted in a later layer is still in the image's blobs."""
    secret_file = f"K={AKIA}\n".encode()
    layers = [
        build_layer({"srv/a.env": secret_file, "srv/b.env": secret_file}),
        build_layer({whiteout("srv/a.env"): b"", "srv/b.env": secret_file, "srv/c.txt": f"t={GHP}".encode()}),
    ]
    info = write_oci_layout(tmp_path / "layout", layers, config={"config": {}})
    source = OCILayoutSource(tmp_path / "layout")
    image = source.resolve()[0]
    walked = walk_image(source, image, [SecretAnalyzer()])
    base, top = info.diff_ids
    assert [(s.rule_id, s.path, s.layer, s.line) for s in walked.secrets] == [
        ("aws-access-key-id", "srv/a.env", base, 1),
        ("aws-access-key-id", "srv/b.env", base, 1),  # unchanged copy in the top layer: reported once
        ("github-pat", "srv/c.txt", top, 1),
    ]
    assert walked.results == {}  # secrets do not go through the package merge


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(alphabet=string.ascii_letters + string.digits, min_size=16, max_size=60).filter(
        lambda v: any(c.isdigit() for c in v) and shannon_entropy(v.encode()) >= 3.5
    ),
    prefix=st.text(alphabet=string.ascii_letters + " =:", max_size=30),
)
def test_masked_excerpt_never_holds_the_value(value: str, prefix: str) -> None:
    """Whatever surrounds it, a found value's unrevealed part is in no excerpt."""
    content = f'{prefix} ghp_{value[:36].ljust(36, "7")} api_token = "{value}"\n'.encode()
    findings = scan_content("srv/x.py", content)
    assert findings, content
    for finding in findings:
        assert value[4:] not in finding.masked
        assert value[-8:] not in finding.masked
