"""Image configuration checks: each rule on exact inputs, exact ids/severities/messages, and the
guarantee that ENV values never reach a finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.image.layout import parse_source
from chalicelib.image.oci_writer import LayerEntry, build_layer, opaque, whiteout, write_oci_layout
from chalicelib.image.walker import FileMode, walk_image
from chalicelib.misconfig import (
    RULES,
    MisconfigOptions,
    check_image,
    mutable_reference,
    secret_looking,
)
from chalicelib.models import Package, Severity

HEALTHY: dict[str, Any] = {"Healthcheck": {"Test": ["CMD", "true"]}}


def _ids(config: dict[str, Any], **kwargs: Any) -> list[tuple[str, Severity, str]]:
    return [(m.id, m.severity, m.message) for m in check_image(config, **kwargs)]


def _deb(name: str) -> Package:
    return Package(name=name, version="1", ecosystem="Debian:12", purl=f"pkg:deb/debian/{name}@1", path="x")


def test_rule_ids_are_unique_and_cis_mapped_where_one_exists() -> None:
    ids = [r.id for r in RULES]
    assert ids == [f"LG-IMG-{i:03d}" for i in range(1, 12)]
    cis = {r.id: [x for x in r.references if x.startswith("CIS")] for r in RULES}
    assert cis["LG-IMG-001"] == ["CIS Docker Benchmark v1.6.0 4.1"]
    assert cis["LG-IMG-003"] == ["CIS Docker Benchmark v1.6.0 4.10"]
    assert cis["LG-IMG-004"] == ["CIS Docker Benchmark v1.6.0 4.9"]
    assert cis["LG-IMG-006"] == ["CIS Docker Benchmark v1.6.0 4.6"]
    assert cis["LG-IMG-010"] == ["CIS Docker Benchmark v1.6.0 4.8"]
    assert cis["LG-IMG-011"] == []
    assert all(r.remediation and r.title for r in RULES)


def test_empty_config_runs_as_root_without_healthcheck() -> None:
    assert _ids({}) == [
        (
            "LG-IMG-001",
            Severity.HIGH,
            "The image config runs as root: no USER is set, so the container runs as root (uid 0).",
        ),
        ("LG-IMG-006", Severity.LOW, "The image's HEALTHCHECK is not defined."),
    ]


@pytest.mark.parametrize(
    ("user", "root"),
    [
        ("", True),
        ("root", True),
        ("0", True),
        ("0:0", True),
        ("root:staff", True),
        (":1000", True),
        ("app", False),
        ("1000", False),
        ("1000:0", False),
        ("nobody:nogroup", False),
    ],
)
def test_root_user(user: str, root: bool) -> None:
    found = [m for m in check_image({"config": {"User": user, **HEALTHY}})]
    assert [m.id for m in found] == (["LG-IMG-001"] if root else [])
    if root and user:
        assert found[0].message == f"The image config runs as root: USER is {user!r}."


def test_remote_access_ports_one_finding_each_sorted() -> None:
    config = {
        "User": "app",
        **HEALTHY,
        "ExposedPorts": {
            "3389/tcp": {},
            "8080/tcp": {},
            "23/tcp": {},
            "22/tcp": {},
            "22/udp": {},
            "x/tcp": {},
        },
    }
    assert _ids({"config": config}) == [
        ("LG-IMG-002", Severity.MEDIUM, "Port 22/tcp (SSH) is exposed."),
        ("LG-IMG-002", Severity.HIGH, "Port 23/tcp (Telnet) is exposed."),
        ("LG-IMG-002", Severity.MEDIUM, "Port 3389/tcp (RDP) is exposed."),
    ]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("MYSQL_ROOT_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GITHUB_TOKEN", True),
        ("API_KEY", True),
        ("stripe.api-key", True),
        ("APIKEY", True),
        ("CLIENT_SECRET", True),
        ("PGPASS", False),  # one token, not PASS itself: a known limit, names only
        ("POSTGRES_PASSWORD_FILE", False),
        ("TOKEN_URL", False),
        ("GPG_KEY", False),
        ("KEY", False),
        ("PWD", False),
        ("PASSENGER_APP_ENV", False),
        ("SECRETARY_NAME", False),
        ("PATH", False),
        ("AWS_ACCESS_KEY_ID", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool) -> None:
    assert secret_looking(name) is secret


def test_secret_env_reports_names_sorted_never_values() -> None:
    config = {
        "User": "app",
        **HEALTHY,
        "Env": [
            "PATH=/usr/bin",
            "GITHUB_TOKEN=ghp_plantedvalue0123456789",
            "DB_PASSWORD=hunter2-planted",
            "EMPTY_SECRET=",
            "BLANK_TOKEN=   ",
            "DB_PASSWORD=hunter2-planted",
            "NOEQUALS_PASSWORD",
        ],
    }
    found = check_image({"config": config})
    assert [(m.id, m.severity, m.message) for m in found] == [
        (
            "LG-IMG-003",
            Severity.HIGH,
            "ENV DB_PASSWORD is set to a non-empty value in the image config (value not shown).",
        ),
        (
            "LG-IMG-003",
            Severity.HIGH,
            "ENV GITHUB_TOKEN is set to a non-empty value in the image config (value not shown).",
        ),
    ]
    dumped = "".join(m.model_dump_json() for m in found)
    assert "hunter2" not in dumped and "plantedvalue" not in dumped


@given(value=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=40))
def test_env_values_never_appear_in_findings(value: str) -> None:
    value = f"Zq#{value}"  # a marker no message text contains, so a hit is a leak
    env = [f"SERVICE_PASSWORD={value}", f"API_KEY={value}", f"FOO={value}"]
    found = check_image({"config": {"Env": env}})
    assert [m.id for m in found].count("LG-IMG-003") == 2
    assert all(value not in m.model_dump_json() for m in found if m.id == "LG-IMG-003")


def test_remote_add_in_history_redacts_credentials_and_dedups() -> None:
    history = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": "ADD https://user:tok3n@example.com/a/tool.tgz?sig=zzz /opt/ # buildkit"},
        {"created_by": "/bin/sh -c #(nop) ADD --chown=1:1 http://example.org:8080/x.sh /x.sh"},
        {"empty_layer": True},
        {"created_by": "COPY https://not-an-add.example /y # buildkit"},
        {"created_by": "ADD https://user:tok3n@example.com/a/tool.tgz /opt2/"},
        "not a dict",
    ]
    found = check_image({"config": {"User": "app", **HEALTHY}, "history": history})
    assert [(m.id, m.severity, m.message) for m in found] == [
        ("LG-IMG-004", Severity.MEDIUM, "History step 1 ADDs the remote URL https://example.com/a/tool.tgz."),
        ("LG-IMG-004", Severity.MEDIUM, "History step 2 ADDs the remote URL http://example.org:8080/x.sh."),
    ]
    assert all("tok3n" not in m.message and "sig=" not in m.message for m in found)


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("docker.io/library/debian:latest", "its tag is `latest`"),
        ("debian", "it has no tag (means `latest`)"),
        ("localhost:5000/team/base", "it has no tag (means `latest`)"),
        ("localhost:5000/team/base:1.2", None),
        ("debian:12.5", None),
        ("debian:latest@sha256:" + "a" * 64, None),
        ("", None),
    ],
)
def test_mutable_reference(ref: str, why: str | None) -> None:
    assert mutable_reference(ref) == why


def test_mutable_base_from_label_or_annotation() -> None:
    label = {"config": {"User": "app", **HEALTHY, "Labels": {"org.opencontainers.image.base.name": "debian"}}}
    assert _ids(label) == [
        ("LG-IMG-005", Severity.LOW, "The base image debian is not pinned: it has no tag (means `latest`).")
    ]
    plain = {"config": {"User": "app", **HEALTHY}}
    annotations = {"org.opencontainers.image.base.name": "alpine:latest"}
    assert _ids(plain, annotations=annotations) == [
        ("LG-IMG-005", Severity.LOW, "The base image alpine:latest is not pinned: its tag is `latest`.")
    ]
    assert _ids(plain, annotations={"org.opencontainers.image.base.name": "alpine:3.19"}) == []


@pytest.mark.parametrize(
    ("healthcheck", "message"),
    [
        (None, "The image's HEALTHCHECK is not defined."),
        ({"Test": ["NONE"]}, "The image's HEALTHCHECK is disabled (HEALTHCHECK NONE)."),
        ({"Test": []}, "The image's HEALTHCHECK is not defined."),
        ({"Test": ["CMD-SHELL", "curl -f http://localhost/"]}, None),
    ],
)
def test_healthcheck(healthcheck: dict[str, Any] | None, message: str | None) -> None:
    config: dict[str, Any] = {"User": "app"}
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    assert _ids({"config": config}) == ([("LG-IMG-006", Severity.LOW, message)] if message else [])


PROD_PACKAGES = [
    _deb("sudo"),
    _deb("apt"),
    _deb("dpkg"),
    _deb("bash"),
    _deb("dash"),
    _deb("libc6"),
    Package(name="bash", version="1", ecosystem="npm", purl="pkg:npm/bash@1", path="n/package.json"),
    Package(name="rpm", version="1", ecosystem="PyPI", purl="pkg:pypi/rpm@1", path="p/METADATA"),
]


def test_production_image_with_sudo_package_manager_and_shells() -> None:
    config = {"config": {"User": "app", **HEALTHY, "Labels": {"environment": "Production"}}}
    assert _ids(config, packages=PROD_PACKAGES) == [
        (
            "LG-IMG-007",
            Severity.HIGH,
            "The image is labelled production (environment) and installs privilege escalation "
            "package(s): sudo.",
        ),
        (
            "LG-IMG-008",
            Severity.MEDIUM,
            "The image is labelled production (environment) and installs package manager "
            "package(s): apt, dpkg.",
        ),
        (
            "LG-IMG-009",
            Severity.LOW,
            "The image is labelled production (environment) and installs shell package(s): bash, dash.",
        ),
    ]


def test_production_checks_need_the_configured_label() -> None:
    unlabelled = {"config": {"User": "app", **HEALTHY, "Labels": {"environment": "staging"}}}
    assert _ids(unlabelled, packages=PROD_PACKAGES) == []
    custom = {"config": {"User": "app", **HEALTHY, "Labels": {"com.example.tier": "live"}}}
    options = MisconfigOptions(production_label="com.example.tier", production_values=("live",))
    assert [m.id for m in check_image(custom, PROD_PACKAGES, options)] == [
        "LG-IMG-007",
        "LG-IMG-008",
        "LG-IMG-009",
    ]


def test_disabled_rules_are_not_reported() -> None:
    options = MisconfigOptions(disabled=("LG-IMG-006",))
    assert [m.id for m in check_image({}, options=options)] == ["LG-IMG-001"]


def test_malformed_config_shapes_are_tolerated() -> None:
    weird: dict[str, Any] = {
        "config": {
            "User": None,
            "ExposedPorts": ["22/tcp"],
            "Env": "A_TOKEN=x",
            "Labels": None,
            "Healthcheck": "yes",
        },
        "history": {"created_by": "ADD http://x/y /"},
    }
    assert [m.id for m in check_image(weird)] == ["LG-IMG-001", "LG-IMG-006"]
    assert [m.id for m in check_image({"config": "nope"})] == ["LG-IMG-001", "LG-IMG-006"]


def test_setuid_and_world_writable_files() -> None:
    modes = {
        "usr/bin/passwd": 0o4755,
        "usr/bin/wall": 0o2755,
        "etc/app.conf": 0o666,
        "usr/local/bin/tool": 0o777,
        "tmp/scratch": 0o666,  # not a system path
        "srv/app/data.json": 0o646,
        "usr/bin/both": 0o6777,
    }
    found = check_image({"config": {"User": "app", **HEALTHY}}, file_modes=modes)
    assert [(m.id, m.severity, m.message) for m in found] == [
        (
            "LG-IMG-010",
            Severity.MEDIUM,
            "3 setuid/setgid file(s): usr/bin/both (6777), usr/bin/passwd (4755), usr/bin/wall (2755).",
        ),
        (
            "LG-IMG-011",
            Severity.MEDIUM,
            "3 world-writable file(s) in system paths: etc/app.conf (0666), usr/bin/both (6777), "
            "usr/local/bin/tool (0777).",
        ),
    ]


def test_long_file_lists_are_cut_but_counted() -> None:
    modes = {f"usr/bin/s{i:02d}": 0o4755 for i in range(12)}
    (finding,) = check_image({"config": {"User": "app", **HEALTHY}}, file_modes=modes)
    assert finding.message == (
        "12 setuid/setgid file(s): "
        + ", ".join(f"usr/bin/s{i:02d} (4755)" for i in range(10))
        + " and 2 more."
    )


def _walk_modes(tmp_path: Path, layers: list[dict[str, bytes | LayerEntry]]) -> dict[str, FileMode]:
    write_oci_layout(tmp_path / "lay", [build_layer(files, sort=False) for files in layers], tag="t")
    source = parse_source(f"oci:{tmp_path}/lay")
    (image,) = source.resolve()
    result = walk_image(source, image, [])
    return {p: FileMode(m.mode, "", m.layer_index) for p, m in result.special_modes.items()}


def test_walker_records_special_modes_with_overlay_semantics(tmp_path: Path) -> None:
    suid = LayerEntry(content=b"x", mode=0o4755)
    base: dict[str, bytes | LayerEntry] = {
        "usr/bin/passwd": suid,
        "usr/bin/su": suid,
        "usr/bin/mount": suid,
        "usr/bin/plain": LayerEntry(content=b"x", mode=0o755),
        "opt/old/suid": suid,
        "opt/old/keep-dir-entry": b"x",
        "etc/shadow-ish": LayerEntry(content=b"x", mode=0o666),
        "usr/bin/link": LayerEntry(kind="symlink", target="passwd"),
    }
    top: dict[str, bytes | LayerEntry] = {
        whiteout("usr/bin/su"): b"",  # deleted
        "usr/bin/mount": LayerEntry(content=b"y", mode=0o755),  # replaced: no longer setuid
        opaque("opt/old"): b"",  # hides the lower opt/old tree
        "opt/old/new-suid": LayerEntry(content=b"z", mode=0o2755),  # this layer's own: kept
        "usr/sbin/sg": LayerEntry(content=b"z", mode=0o2711),
    }
    assert _walk_modes(tmp_path, [base, top]) == {
        "etc/shadow-ish": FileMode(0o666, "", 0),
        "opt/old/new-suid": FileMode(0o2755, "", 1),
        "usr/bin/passwd": FileMode(0o4755, "", 0),
        "usr/sbin/sg": FileMode(0o2711, "", 1),
    }
