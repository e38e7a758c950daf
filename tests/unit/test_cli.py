"""The command-line contract: `scan` output and exit codes 0 / 1 / 2, `db build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.image.oci_writer import (
    LayerEntry,
    build_layer,
    write_blob,
    write_oci_index_layout,
    write_oci_layout,
)
from chalicelib.local.sample_image import SAMPLE_LAYERS, SAMPLES, files_of

OSV = Path(__file__).resolve().parents[1] / "fixtures" / "osv"


def test_scan_json_follows_the_contract(
    db: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, digest = sample
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"image", "packages", "vulnerabilities", "secrets", "misconfigurations", "summary"}
    assert doc["image"]["digest"] == digest
    assert doc["image"]["os"] == {"family": "debian", "version": "12"}
    assert doc["image"]["platform"] == "linux/amd64"
    libssl = next(p for p in doc["packages"] if p["name"] == "libssl3")
    assert {k: libssl[k] for k in ("version", "ecosystem", "source_name", "source_version", "path")} == {
        "version": "3.0.11-1~deb12u1",
        "ecosystem": "Debian:12",
        "source_name": "openssl",
        "source_version": "3.0.11-1~deb12u1",
        "path": "var/lib/dpkg/status",
    }
    assert libssl["purl"].startswith("pkg:deb/debian/libssl3@3.0.11-1~deb12u1?")
    assert libssl["layer"].startswith("sha256:") and len(libssl["layer"]) == 71
    vuln = next(v for v in doc["vulnerabilities"] if v["id"] == "CVE-2023-32681")
    assert {k: vuln[k] for k in ("aliases", "package", "ecosystem", "installed_version", "fixed_version",
                                 "severity", "cvss_score")} == {
        "aliases": ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"], "package": "requests", "ecosystem": "PyPI",
        "installed_version": "2.25.1", "fixed_version": "2.31.0", "severity": "MEDIUM", "cvss_score": 6.1,
    }  # fmt: skip
    assert doc["summary"]["vulnerabilities"] == {
        "CRITICAL": 3,
        "HIGH": 6,
        "MEDIUM": 3,
        "LOW": 1,
        "UNKNOWN": 0,
    }
    assert (doc["summary"]["packages"], doc["summary"]["gate"], doc["summary"]["reasons"]) == (13, "pass", [])


def test_fail_on_exits_1_with_reasons(
    db: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--format", "json", "--fail-on", "critical"]) == 1
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["gate"], summary["reasons"]) == (
        "fail",
        ["fail_on: 3 vulnerabilities at or above CRITICAL (CRITICAL: 3)"],
    )


def test_ignore_unfixed_and_table(
    db: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--ignore-unfixed"]) == 0
    out = capsys.readouterr().out
    assert "CVE-2011-3374" not in out
    assert "vulnerabilities: 12 (CRITICAL: 3, HIGH: 6, MEDIUM: 3, LOW: 0, UNKNOWN: 0)" in out
    assert "  CVE-2023-4911   libc6     2.36-9+deb12u1    2.36-9+deb12u3    7.8   var/lib/dpkg/status" in out


def test_all_platforms_prints_an_array(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, app = (build_layer(files_of(SAMPLES / "rootfs" / name)) for name in SAMPLE_LAYERS)
    write_oci_index_layout(tmp_path / "multi", {"linux/amd64": [base, app], "linux/arm64": [base]})
    assert (
        main(["scan", f"oci:{tmp_path / 'multi'}", "--db", str(db), "--format", "json", "--all-platforms"])
        == 0
    )
    docs = json.loads(capsys.readouterr().out)
    assert [(d["image"]["platform"], len(d["vulnerabilities"])) for d in docs] == [
        ("linux/amd64", 13),
        ("linux/arm64", 6),
    ]
    assert (
        main(
            [
                "scan",
                f"oci:{tmp_path / 'multi'}",
                "--db",
                str(db),
                "--format",
                "json",
                "--platform",
                "linux/arm64",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["image"]["platform"] == "linux/arm64"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_index_exits_2_and_says_how_to_build(
    tmp_path: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    assert main(["scan", f"oci:{layout}", "--db", str(tmp_path / "none.sqlite")]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("lifeguard: error: no vulnerability index at") and "db build" in line


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 10, "gzip"),
        (build_layer({"etc/passwd": b"x" * 2048}, "none")[:1000], "truncated"),
        (build_layer({"../../etc/cron.d/evil": b"* * * * * root sh"}), "../../etc/cron.d/evil"),
        (build_layer({"/etc/passwd": b"root::0:0"}), "/etc/passwd"),
    ],
)
def test_hostile_or_broken_layers_exit_2_with_one_line(
    db: Path, tmp_path: Path, layer: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _raw_layout(tmp_path / "bad", layer)
    assert main(["scan", f"oci:{tmp_path / 'bad'}", "--db", str(db)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("lifeguard: error:") and message in line


def _raw_layout(root: Path, layer: bytes) -> None:
    """A layout around any layer bytes (oci_writer would refuse to decompress broken ones)."""
    layer_digest = write_blob(root, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
        }
    ).encode()
    config_digest = write_blob(root, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": write_blob(root, manifest), "size": len(manifest)}],
    }  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def test_symlink_out_of_the_image_is_not_followed(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = build_layer({"etc/os-release": LayerEntry(kind="symlink", target="../../../../etc/os-release")})
    write_oci_layout(tmp_path / "link", [layer])
    assert main(["scan", f"oci:{tmp_path / 'link'}", "--db", str(db), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["image"]["os"] == {"family": None, "version": None}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "ftp:somewhere"], "ftp:somewhere"),
        (["scan", "registry:evil.example.com/x:1"], "evil.example.com"),
        (["scan", "oci:/nonexistent/layout"], "/nonexistent/layout"),
    ],
)
def test_unusable_sources_exit_2(
    db: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--db", str(db)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("lifeguard: error:") and message in line


def test_db_build_empty_input_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["db", "build", "--from", str(tmp_path / "empty"), "--out", str(tmp_path / "db.sqlite")]) == 0
    assert "no OSV records found" in capsys.readouterr().err
    assert (tmp_path / "db.sqlite").is_file()


ALPINE_DB = b"""C:Q1abc=
P:musl
V:1.1.22-r2
A:x86_64
o:musl
L:MIT

P:libcrypto1.1
V:1.1.1c-r0
A:x86_64
o:openssl
L:OpenSSL

P:busybox
V:1.30.1-r2
A:x86_64
o:busybox
L:GPL-2.0-only

"""


def test_alpine_image_matches_by_origin_within_its_release(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records from the real Alpine secdb (v3.10 main): musl and openssl are affected, busybox is
    exactly at its fix; the same image claiming v3.11 matches nothing (release isolation)."""
    for release in ("3.10.2", "3.11.0"):
        layer = build_layer(
            {
                "etc/os-release": f'NAME="Alpine Linux"\nID=alpine\nVERSION_ID={release}\n'.encode(),
                "lib/apk/db/installed": ALPINE_DB,
            }
        )
        write_oci_layout(tmp_path / release, [layer])
        assert main(["scan", f"oci:{tmp_path / release}", "--db", str(db), "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [p["ecosystem"] for p in doc["packages"]] == [f"Alpine:v{release.rsplit('.', 1)[0]}"] * 3
        found = sorted((v["id"], v["package"], v["fixed_version"]) for v in doc["vulnerabilities"])
        expected = [
            ("CVE-2019-14697", "musl", "1.1.22-r3"),
            ("CVE-2019-1547", "libcrypto1.1", "1.1.1d-r0"),
            ("CVE-2019-1549", "libcrypto1.1", "1.1.1d-r0"),
            ("CVE-2019-1563", "libcrypto1.1", "1.1.1d-r0"),
        ]
        assert found == (expected if release == "3.10.2" else [])


def test_kev_flag_in_json_and_table(
    tmp_path: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    kev = Path(__file__).resolve().parents[1] / "fixtures" / "kev"
    db = tmp_path / "kev.sqlite"
    assert main(["db", "build", "--from", str(OSV), str(kev), "--out", str(db)]) == 0
    layout, _ = sample
    capsys.readouterr()
    assert main(["scan", f"oci:{layout}", "--db", str(db), "--format", "json"]) == 0
    flagged = sorted(
        (v["package"], v["kev_date_added"])
        for v in json.loads(capsys.readouterr().out)["vulnerabilities"]
        if v["known_exploited"]
    )
    assert flagged == [("libc-bin", "2023-11-21"), ("libc6", "2023-11-21")]
    assert main(["scan", f"oci:{layout}", "--db", str(db)]) == 0
    rows = [
        line for line in capsys.readouterr().out.splitlines() if "known exploited since 2023-11-21" in line
    ]
    assert [row.split()[1] for row in rows] == ["libc-bin", "libc6"]
