"""OpenVEX parsing: v0.2.0 and legacy shapes into statements; malformed and incomplete documents
are InputErrors that name the file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import InputError
from chalicelib.suppress import VexStatement, load_suppressions, load_vex, parse_vex

VEX = Path(__file__).resolve().parents[1] / "fixtures" / "vex"
SAMPLE = VEX / "sample-v0.2.0.openvex.json"
LEGACY = VEX / "legacy-v0.0.1.openvex.json"
CST = timezone(timedelta(hours=-6))


def _products(s: VexStatement) -> list[tuple[list[str], str | None, list[str], bool]]:
    return [
        (
            sorted(p.image_digests),
            p.purl.text if p.purl else None,
            [c.text for c in p.subcomponents],
            p.narrowed,
        )
        for p in s.products
    ]


def test_v020_sample() -> None:
    statements = load_vex(SAMPLE)
    label = f"{SAMPLE} (https://openvex.dev/docs/example/lifeguard-sample-1)"
    assert [(s.vulnerability, sorted(s.ids), s.status, s.timestamp, s.origin) for s in statements] == [
        ("CVE-2023-38545", ["CVE-2023-38545", "DEBIAN-CVE-2023-38545"], "not_affected",
         datetime(2024, 3, 1, 12, tzinfo=UTC), f"{label} statements[0]"),
        ("GHSA-xvch-5gv4-984h", ["GHSA-XVCH-5GV4-984H"], "fixed",
         datetime(2024, 2, 1, 7, 30, tzinfo=UTC), f"{label} statements[1]"),
        ("CVE-2023-4911", ["CVE-2023-4911"], "affected", datetime(2024, 3, 1, 12, tzinfo=UTC),
         f"{label} statements[2]"),
        ("CVE-2024-35195", ["CVE-2024-35195"], "under_investigation", datetime(2024, 3, 1, 12, tzinfo=UTC),
         f"{label} statements[3]"),
    ]  # fmt: skip
    assert [_products(s) for s in statements] == [
        [(["sha256:" + "1" * 64], None, ["pkg:deb/debian/curl"], True)],
        [([], "pkg:npm/minimist@1.2.5", [], False)],
        [(["sha256:" + "2" * 64], None, [], False)],
        [([], "pkg:pypi/requests", [], False)],
    ]
    assert [s.suppresses for s in statements] == [True, True, False, False]
    assert statements[0].explanation == (
        "vulnerable_code_not_in_execute_path; The application never configures a SOCKS5 proxy."
    )
    assert statements[1].explanation == "Patched in our vendored copy."
    assert statements[2].action_statement == "Upgrade glibc to 2.36-9+deb12u3."
    assert statements[3].explanation is None


def test_legacy_strings_and_statement_level_subcomponents() -> None:
    statements = load_vex(LEGACY)
    assert [(s.vulnerability, s.status, s.timestamp, s.justification) for s in statements] == [
        ("CVE-2021-33503", "not_affected", datetime(2023, 1, 16, 20, 41, 55, tzinfo=CST),
         "vulnerable_code_cannot_be_controlled_by_adversary"),
        ("CVE-2023-5363", "fixed", datetime(2023, 11, 1, tzinfo=UTC), None),
    ]  # fmt: skip
    assert [_products(s) for s in statements] == [
        [([], "pkg:pypi/urllib3@1.26.4", [], False)],
        # the CPE subcomponent cannot be matched to a package: kept out, but the product stays narrowed
        [(["sha256:" + "3" * 64], None, ["pkg:deb/debian/libssl3"], True)],
    ]


def test_documents_load_in_order() -> None:
    rules = load_suppressions(None, [SAMPLE, LEGACY])
    assert [s.vulnerability for s in rules.vex] == [
        "CVE-2023-38545",
        "GHSA-xvch-5gv4-984h",
        "CVE-2023-4911",
        "CVE-2024-35195",
        "CVE-2021-33503",
        "CVE-2023-5363",
    ]
    assert rules.ignore == ()


def _doc(**statement: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vulnerability": {"name": "CVE-2023-38545"},
        "products": [{"@id": "pkg:deb/debian/curl"}],
        "status": "fixed",
    }
    base.update(statement)
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "timestamp": "2024-01-01T00:00:00Z",
        "statements": [base],
    }


def test_naive_timestamps_are_utc_and_statement_overrides_document() -> None:
    (s,) = parse_vex(json.dumps(_doc(timestamp="2024-05-05T10:00:00")), "v")
    assert (s.timestamp, s.origin) == (datetime(2024, 5, 5, 10, tzinfo=UTC), "v statements[0]")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (VEX / "malformed-status.openvex.json",
         "malformed-status.openvex.json: invalid OpenVEX document: statements.1.status: Input should be "
         "'not_affected', 'affected', 'fixed' or 'under_investigation'"),
        (VEX / "malformed-no-justification.openvex.json",
         "malformed-no-justification.openvex.json: statements[0]: not_affected needs a justification or an "
         "impact_statement"),
    ],
)  # fmt: skip
def test_malformed_fixtures_name_the_file(path: Path, message: str) -> None:
    with pytest.raises(InputError) as err:
        load_vex(path)
    assert str(err.value) == f"{path.parent}/{message}"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "v:1: invalid JSON: Expecting property name enclosed in double quotes"),
        ("[]", "v: not an OpenVEX document (@context must start with https://openvex.dev/ns)"),
        ('{"@context": "https://cyclonedx.org/schema/bom-1.5.schema.json", "statements": []}',
         "v: not an OpenVEX document (@context must start with https://openvex.dev/ns)"),
        ('{"@context": "https://openvex.dev/ns/v0.2.0"}',
         "v: invalid OpenVEX document: statements: Field required"),
        (_doc(products=[]), "v: statements[0]: a statement must name at least one product"),
        (_doc(vulnerability={"aliases": ["X"]}),
         "v: invalid OpenVEX document: statements.0.vulnerability.name: Field required"),
        (_doc(vulnerability=""), "v: statements[0]: empty vulnerability"),
        (_doc(products=[{"@id": "pkg:npm"}]), "v: statements[0]: invalid package URL:"),
        (_doc(status="not_affected", justification="because"),
         "v: invalid OpenVEX document: statements.0.justification: Input should be 'component_not_present'"),
        (_doc(timestamp="yesterday"), "v: invalid OpenVEX document: statements.0.timestamp: Input should be"),
    ],
)  # fmt: skip
def test_malformed_documents(doc: str | dict[str, Any], message: str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(InputError) as err:
        parse_vex(text, "v")
    assert str(err.value).startswith(message)


def test_a_statement_needs_a_timestamp_somewhere() -> None:
    doc = _doc()
    del doc["timestamp"]
    with pytest.raises(
        InputError, match=r"^v: statements\[0\]: no timestamp on the statement or the document$"
    ):
        parse_vex(json.dumps(doc), "v")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"^cannot read VEX document .*nope.json: No such file or directory$"
    ):
        load_vex(tmp_path / "nope.json")
