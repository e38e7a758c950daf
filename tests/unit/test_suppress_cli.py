"""Suppression end to end: `scan --vex / --ignore-file` on the sample image, counts and the gate
after suppression, table output, errors, and the Lambda configuration (LIFEGUARD_IGNORE_FILE,
LIFEGUARD_VEX)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import runtime
from chalicelib.cli import main
from chalicelib.errors import InputError
from chalicelib.settings import Settings

OSV = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
VEX_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vex"
ALL_COUNTS = {"CRITICAL": 3, "HIGH": 6, "MEDIUM": 3, "LOW": 1, "UNKNOWN": 0}


def _vex(path: Path, *statements: dict[str, Any], doc_id: str | None = None) -> Path:
    doc: dict[str, Any] = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "author": "tests",
        "timestamp": "2024-03-01T12:00:00Z",
        "version": 1,
        "statements": list(statements),
    }
    if doc_id:
        doc["@id"] = doc_id
    path.write_text(json.dumps(doc))
    return path


def _image(digest: str) -> dict[str, str]:
    return {
        "@id": f"pkg:oci/sample-app@{digest.replace(':', '%3A')}?repository_url=127.0.0.1:5000/sample/app"
    }


def _row(s: dict[str, Any]) -> tuple[str, ...]:
    vuln = s["vulnerability"]
    return (vuln["id"], vuln["package"], s["source"], s["status"], s["justification"], s["rule"])


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return (
        code,
        json.loads(captured.out) if captured.out.startswith(("{", "[")) else captured.out,
        captured.err,
    )


def test_vex_suppresses_the_criticals_and_the_gate_passes(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, digest = sample
    base = ["scan", f"oci:{layout}", "--db", str(db), "--format", "json", "--fail-on", "CRITICAL"]
    code, doc, _ = _run(capsys, base)
    assert (code, doc["summary"]["suppressed"], doc["summary"]["gate"]) == (1, 0, "fail")

    image_vex = _vex(
        tmp_path / "image.openvex.json",
        {
            "vulnerability": {"name": "CVE-2023-38545"},
            "products": [_image(digest)],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        },
        doc_id="https://example.com/vex/image",
    )
    package_vex = _vex(
        tmp_path / "minimist.openvex.json",
        {
            "vulnerability": {"name": "GHSA-xvch-5gv4-984h"},
            "products": [{"@id": "pkg:npm/minimist"}],
            "status": "fixed",
        },
    )
    code, doc, err = _run(capsys, [*base, "--vex", str(image_vex), "--vex", str(package_vex)])
    assert (code, err) == (0, "")
    assert doc["summary"]["suppressed"] == 3
    assert doc["summary"]["vulnerabilities"] == {
        "CRITICAL": 0,
        "HIGH": 6,
        "MEDIUM": 3,
        "LOW": 1,
        "UNKNOWN": 0,
    }
    assert (doc["summary"]["gate"], doc["summary"]["reasons"]) == ("pass", [])
    assert len(doc["vulnerabilities"]) == 10
    assert [_row(s) for s in doc["suppressed"]] == [
        ("CVE-2021-44906", "minimist", "vex", "fixed", None, f"{package_vex} statements[0]"),
        ("CVE-2023-38545", "curl", "vex", "not_affected", "vulnerable_code_not_in_execute_path",
         f"{image_vex} (https://example.com/vex/image) statements[0]"),
        ("CVE-2023-38545", "libcurl4", "vex", "not_affected", "vulnerable_code_not_in_execute_path",
         f"{image_vex} (https://example.com/vex/image) statements[0]"),
    ]  # fmt: skip
    # the suppressed finding keeps everything the report had on it
    assert doc["suppressed"][0]["vulnerability"]["fixed_version"] == "1.2.6"
    assert doc["suppressed"][0]["vulnerability"]["severity"] == "CRITICAL"


def test_vex_for_another_image_or_a_later_affected_changes_nothing(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, digest = sample
    statement = {
        "vulnerability": {"name": "CVE-2023-38545"},
        "status": "not_affected",
        "justification": "vulnerable_code_not_present",
    }
    other = _vex(tmp_path / "other.json", {**statement, "products": [_image("sha256:" + "0" * 64)]})
    later_affected = _vex(
        tmp_path / "later.json",
        {**statement, "products": [_image(digest)], "timestamp": "2024-01-01T00:00:00Z"},
        {"vulnerability": {"name": "CVE-2023-38545"}, "products": [{"@id": "pkg:deb/debian/curl"}],
         "status": "affected", "timestamp": "2024-02-01T00:00:00Z"},
    )  # fmt: skip
    base = ["scan", f"oci:{layout}", "--db", str(db), "--format", "json", "--fail-on", "CRITICAL"]
    code, doc, _ = _run(capsys, [*base, "--vex", str(other)])
    assert (code, doc["summary"]["suppressed"], doc["summary"]["vulnerabilities"]) == (1, 0, ALL_COUNTS)
    code, doc, _ = _run(capsys, [*base, "--vex", str(later_affected)])
    # curl: the later `affected` wins; libcurl4: only the image-wide `not_affected` speaks of it
    assert [s["vulnerability"]["package"] for s in doc["suppressed"]] == ["libcurl4"]
    assert (code, doc["summary"]["reasons"]) == (
        1,
        ["fail_on: 2 vulnerabilities at or above CRITICAL (CRITICAL: 2)"],
    )


def test_ignore_file_table_and_expired_rule_warning(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    ignore = tmp_path / "ignore"
    ignore.write_text(
        "# minimist only parses our own flags\n"
        "GHSA-xvch-5gv4-984h pkg:npm/minimist exp:2999-01-01\n"
        "CVE-2023-38545 exp:2000-01-01\n"
    )
    code, out, err = _run(
        capsys,
        ["scan", f"oci:{layout}", "--db", str(db), "--ignore-file", str(ignore), "--fail-on", "CRITICAL"],
    )
    assert code == 1
    assert err == (
        f"lifeguard: warning: {ignore}:3: the rule for CVE-2023-38545 expired on 2000-01-01; "
        "it no longer applies\n"
    )
    lines = out.splitlines()
    assert (
        "packages: 13   vulnerabilities: 12 (CRITICAL: 2, HIGH: 6, MEDIUM: 3, LOW: 1, UNKNOWN: 0)"
        "   suppressed: 1" in lines
    )
    start = lines.index("Suppressed (1)")
    assert lines[start:] == [
        "Suppressed (1)",
        "  ID              PACKAGE   SEVERITY  SOURCE       STATUS   "
        "REASON                              RULE",
        "  CVE-2021-44906  minimist  CRITICAL  ignore-file  ignored  "
        f"minimist only parses our own flags  {ignore}:2",
    ]
    assert "CVE-2021-44906" not in "\n".join(lines[:start])


def test_lifeguardignore_in_the_working_directory_is_read(
    db: Path, sample: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    layout, _ = sample
    (tmp_path / ".lifeguardignore").write_text("CVE-2011-3374\n")
    monkeypatch.chdir(tmp_path)
    code, doc, _ = _run(capsys, ["scan", f"oci:{layout}", "--db", str(db), "--format", "json"])
    assert (code, [(s["vulnerability"]["id"], s["rule"]) for s in doc["suppressed"]]) == (
        0,
        [("CVE-2011-3374", ".lifeguardignore:1")],
    )
    assert doc["summary"]["vulnerabilities"]["LOW"] == 0


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("--ignore-file", "CVE-1\nCVE-2 pkg:npm\n",
         "{path}:2: invalid package URL: purl is missing the required type component: 'pkg:npm'."),
        ("--ignore-file", None, "cannot read ignore file {path}: No such file or directory"),
        ("--vex", '{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{}]}',
         "{path}: invalid OpenVEX document: statements.0.vulnerability: Field required"),
        ("--vex", None, "cannot read VEX document {path}: No such file or directory"),
    ],
)  # fmt: skip
def test_bad_rule_files_exit_2_naming_the_file(
    db: Path, sample: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    *, kind: str, content: str | None, message: str,
) -> None:  # fmt: skip
    layout, _ = sample
    path = tmp_path / "rules"
    if content is not None:
        path.write_text(content)
    code, out, err = _run(capsys, ["scan", f"oci:{layout}", "--db", str(db), kind, str(path)])
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"lifeguard: error: {message.format(path=path)}"]


def test_missing_policy_file_exits_2(
    db: Path, sample: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, _ = sample
    code, _, err = _run(capsys, ["scan", f"oci:{layout}", "--db", str(db), "--policy", "p.yaml"])
    assert (code, err) == (
        2,
        "lifeguard: error: p.yaml: cannot read the policy file: No such file or directory\n",
    )


@pytest.fixture
def clean_runtime() -> Iterator[None]:
    runtime.reset()
    try:
        yield
    finally:
        runtime.reset()


def test_lambda_settings_and_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_runtime: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert Settings.from_env({"LIFEGUARD_VEX": " a.json, ,b.json "}).vex == ("a.json", "b.json")
    assert (Settings.from_env({}).ignore_file, Settings.from_env({}).vex) == (None, ())
    ignore = tmp_path / "ignore"
    ignore.write_text("CVE-2023-4911\nCVE-2000-0001 exp:2001-01-01\n")
    legacy = VEX_FIXTURES / "legacy-v0.0.1.openvex.json"
    sample_vex = VEX_FIXTURES / "sample-v0.2.0.openvex.json"
    monkeypatch.setenv("LIFEGUARD_IGNORE_FILE", str(ignore))
    monkeypatch.setenv("LIFEGUARD_VEX", f"{sample_vex},{legacy}")
    rules = runtime.suppressions()
    assert [r.vulnerability_id for r in rules.ignore] == ["CVE-2023-4911", "CVE-2000-0001"]
    assert [s.vulnerability for s in rules.vex] == [
        "CVE-2023-38545", "GHSA-xvch-5gv4-984h", "CVE-2023-4911", "CVE-2024-35195",
        "CVE-2021-33503", "CVE-2023-5363",
    ]  # fmt: skip
    assert f"ignore rule {ignore}:2 for CVE-2000-0001 expired on 2001-01-01" in caplog.text
    assert runtime.scan_deps().options.suppressions is rules


def test_lambda_rejects_s3_locations_for_now(monkeypatch: pytest.MonkeyPatch, clean_runtime: None) -> None:
    monkeypatch.setenv("LIFEGUARD_VEX", "s3://bucket/vex.json")
    with pytest.raises(InputError, match=r"^bad configuration: s3://bucket/vex.json: s3:// ignore/VEX files"):
        runtime.suppressions()
