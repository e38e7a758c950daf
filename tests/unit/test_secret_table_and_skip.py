"""Secrets in the table output (where, masked, never the value) and `--secret-skip-base-layers`:
the N lowest layers are not searched (the walker does not run the secret analyzer on them), their
config history findings are dropped, and the scan says how many layers were skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.analyzers.secrets import SecretAnalyzer
from chalicelib.cli import main
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.image.walker import walk_image
from chalicelib.models import ImageScan, SecretFinding, Severity
from chalicelib.render import render_table
from chalicelib.scanner import ScanOptions, scan_image, skip_base_layer_secrets
from chalicelib.vulndb.index import VulnIndex

OSV = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
AKIA = "AKIAZ7Q3W5E7R9T1Y3U5"
GHP = "ghp_" + "R4nd0mT0k3nV4lu3s" + "Abc123Def456Ghi789J"
GLPAT = "glpat-" + "aB3dE5fG7hJ9kL1mN3pQ"
VALUES = (AKIA, GHP, GLPAT)
CONFIG = {
    "config": {"Env": ["PATH=/usr/bin", f"AWS_ACCESS_KEY_ID={AKIA}"]},
    "history": [
        {"created_by": f"RUN curl -H 'X: token {GHP}' https://base"},
        {"created_by": "COPY base2 /srv"},
        {"created_by": "COPY app /srv"},
    ],
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two base layers with secrets, one application layer with two."""
    root = tmp_path_factory.mktemp("img") / "layout"
    layers = [
        build_layer({"srv/base.env": f"K={AKIA}\n".encode()}),
        build_layer({"srv/base2.txt": f"x\ngitlab={GLPAT}\n".encode()}),
        build_layer({"srv/app.env": f"# app\n\nK={AKIA}\n".encode(), "srv/c.txt": f"t={GHP}".encode()}),
    ]
    info = write_oci_layout(root, layers, config=CONFIG)
    return root, list(info.diff_ids)


def _scan(layout: tuple[Path, list[str]], index: VulnIndex, skip: int) -> ImageScan:
    source = OCILayoutSource(layout[0])
    (image,) = source.resolve()
    return scan_image(source, image, index, ScanOptions(secret_skip_layers=skip))


def _where(scan: ImageScan) -> list[tuple[str, str, str | None, int | None]]:
    return sorted((s.rule_id, s.path, s.layer, s.line) for s in scan.secrets)


def test_no_skip_finds_every_layer(layout: tuple[Path, list[str]], index: VulnIndex) -> None:
    base, base2, app = layout[1]
    scan = _scan(layout, index, 0)
    assert _where(scan) == [
        ("aws-access-key-id", "config:env", None, 2),
        ("aws-access-key-id", "srv/app.env", app, 3),
        ("aws-access-key-id", "srv/base.env", base, 1),
        ("github-pat", "config:history[0]", base, 1),
        ("github-pat", "srv/c.txt", app, 1),
        ("gitlab-pat", "srv/base2.txt", base2, 2),
    ]
    assert (scan.summary.secrets, scan.summary.secret_layers_skipped) == (6, 0)
    assert "not searched" not in render_table(scan)


def test_skipping_two_base_layers(layout: tuple[Path, list[str]], index: VulnIndex) -> None:
    app = layout[1][2]
    scan = _scan(layout, index, 2)
    assert _where(scan) == [
        ("aws-access-key-id", "config:env", None, 2),
        ("aws-access-key-id", "srv/app.env", app, 3),
        ("github-pat", "srv/c.txt", app, 1),
    ]
    assert (scan.summary.secrets, scan.summary.secret_layers_skipped) == (3, 2)
    assert "secrets: not searched in the 2 lowest layers" in render_table(scan).splitlines()


def test_skip_is_clamped_to_the_layer_count(layout: tuple[Path, list[str]], index: VulnIndex) -> None:
    scan = _scan(layout, index, 10)
    assert _where(scan) == [("aws-access-key-id", "config:env", None, 2)]
    assert scan.summary.secret_layers_skipped == 3
    assert "secrets: not searched in the 3 lowest layers" in render_table(scan).splitlines()


def test_walker_does_not_run_the_skipped_analyzer_on_base_layers(layout: tuple[Path, list[str]]) -> None:
    source = OCILayoutSource(layout[0])
    (image,) = source.resolve()
    walked = walk_image(source, image, [SecretAnalyzer()], base_layers=2, skip_in_base={"secrets"})
    assert [stats.files_analyzed for stats in walked.layers] == [0, 0, 2]
    assert [s.path for s in walked.secrets] == ["srv/app.env", "srv/c.txt"]


def test_skip_keeps_layers_repeated_above_the_base() -> None:
    def finding(path: str, layer: str | None) -> SecretFinding:
        return SecretFinding(
            rule_id="r", severity=Severity.HIGH, path=path, layer=layer, masked="x***", fingerprint="f"
        )

    found = [finding("a", "sha256:a"), finding("b", "sha256:b"), finding("c", "sha256:c"), finding("e", None)]
    kept = skip_base_layer_secrets(found, ["sha256:a", "sha256:b", "sha256:a", "sha256:c"], 2)
    assert [f.path for f in kept] == ["a", "c", "e"]
    assert [f.path for f in skip_base_layer_secrets(found, ["sha256:a", "sha256:b"], 0)] == [
        "a",
        "b",
        "c",
        "e",
    ]


def test_table_lists_secrets_worst_first_masked_never_the_value(
    layout: tuple[Path, list[str]], index: VulnIndex
) -> None:
    table = render_table(_scan(layout, index, 0))
    lines = table.splitlines()
    start = lines.index("Secrets (6)")
    base, base2, app = (d.split(":")[1][:12] for d in layout[1])
    # worst first, then by path and line
    rows = [
        ("RULE", "SEVERITY", "PATH", "LAYER", "LINE", "MASKED"),
        ("aws-access-key-id", "CRITICAL", "config:env", "-", "2", 'AWS_ACCESS_KEY_ID="AKIA****************"'),
        ("github-pat", "CRITICAL", "config:history[0]", base, "1",
         "RUN curl -H 'X: token ghp_************************************' https://base"),
        ("aws-access-key-id", "CRITICAL", "srv/app.env", app, "3", "K=AKIA****************"),
        ("aws-access-key-id", "CRITICAL", "srv/base.env", base, "1", "K=AKIA****************"),
        ("gitlab-pat", "CRITICAL", "srv/base2.txt", base2, "2", "gitlab=glpa" + "*" * 22),
        ("github-pat", "CRITICAL", "srv/c.txt", app, "1", "t=ghp_************************************"),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    expected = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    assert lines[start + 1 : start + 8] == expected
    for value in VALUES:
        assert value not in table


def test_cli_flag_reaches_the_json_summary(
    layout: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    assert main(["db", "build", "--from", str(OSV), "--out", str(db)]) == 0
    capsys.readouterr()
    args = ["scan", f"oci:{layout[0]}", "--db", str(db), "--format", "json"]
    assert main([*args, "--secret-skip-base-layers", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["summary"]["secrets"], out["summary"]["secret_layers_skipped"]) == (3, 2)
    with pytest.raises(SystemExit) as exc:
        main([*args, "--secret-skip-base-layers", "-1"])
    assert exc.value.code == 2
    assert "a number of layers cannot be negative: -1" in capsys.readouterr().err
