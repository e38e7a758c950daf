"""`.lifeguardignore` parsing: ids, comments and reasons, expiry, package scoping, structured
forms, and errors that name file:line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import InputError
from chalicelib.suppress import IgnoreRule, load_ignore_file, parse_ignore_lines, parse_structured_ignore

SAMPLE = """\
# .lifeguardignore for the sample app

# curl is built without SOCKS5 support
# (reviewed 2024-03-01)
CVE-2023-38545
CVE-2023-4911 exp:2024-06-01

GHSA-xvch-5gv4-984h pkg:npm/minimist    # we never parse untrusted args
cve-2023-32681 pkg:pypi/Requests@2.25.1 pkg:deb/debian/curl?distro=debian-12 exp:2030-01-31
RHSA-2023:5455
"""


def _rows(rules: list[IgnoreRule]) -> list[tuple[str, str, list[str], date | None, str | None]]:
    return [(r.vulnerability_id, r.origin, [p.text for p in r.packages], r.expires, r.reason) for r in rules]


def test_line_format_ids_comments_expiry_packages() -> None:
    rules = parse_ignore_lines(SAMPLE, ".lifeguardignore")
    assert _rows(rules) == [
        ("CVE-2023-38545", ".lifeguardignore:5", [], None,
         "curl is built without SOCKS5 support (reviewed 2024-03-01)"),
        ("CVE-2023-4911", ".lifeguardignore:6", [], date(2024, 6, 1),
         "curl is built without SOCKS5 support (reviewed 2024-03-01)"),
        ("GHSA-xvch-5gv4-984h", ".lifeguardignore:8", ["pkg:npm/minimist"], None,
         "we never parse untrusted args"),
        ("cve-2023-32681", ".lifeguardignore:9",
         ["pkg:pypi/Requests@2.25.1", "pkg:deb/debian/curl?distro=debian-12"], date(2030, 1, 31), None),
        ("RHSA-2023:5455", ".lifeguardignore:10", [], None, None),
    ]  # fmt: skip
    requests = rules[3].packages[0]
    assert (requests.type, requests.name, requests.version) == ("pypi", "requests", "2.25.1")
    assert rules[3].packages[1].qualifiers == (("distro", "debian-12"),)


def test_expiry_is_exclusive_of_its_day() -> None:
    """Trivy's semantics: `exp:2024-06-01` applies through 2024-05-31."""
    (rule,) = parse_ignore_lines("CVE-2023-4911 exp:2024-06-01\n", "f")
    assert [
        rule.expired(date(2024, 5, 31)),
        rule.expired(date(2024, 6, 1)),
        rule.expired(date(2025, 1, 1)),
    ] == [
        False,
        True,
        True,
    ]
    (forever,) = parse_ignore_lines("CVE-2023-4911\n", "f")
    assert forever.expired(date(9999, 12, 31)) is False


def test_blank_lines_bom_and_crlf() -> None:
    rules = parse_ignore_lines("\ufeffCVE-1\r\n\r\n  \t\r\n   CVE-2   \r\n", "f")
    assert _rows(rules) == [("CVE-1", "f:1", [], None, None), ("CVE-2", "f:4", [], None, None)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("pkg:npm/minimist", "f:3: expected a vulnerability id first, got 'pkg:npm/minimist'"),
        ("exp:2024-01-01 CVE-1", "f:3: expected a vulnerability id first, got 'exp:2024-01-01'"),
        ("CVE-1 exp:2024-13-01", "f:3: invalid expiry date '2024-13-01': expected exp:YYYY-MM-DD"),
        ("CVE-1 exp:2024-1-1", "f:3: invalid expiry date '2024-1-1': expected exp:YYYY-MM-DD"),
        ("CVE-1 exp:2024-01-01 exp:2025-01-01", "f:3: more than one exp: date"),
        ("CVE-1 requests", "f:3: unexpected 'requests' after CVE-1: expected pkg:PURL or exp:YYYY-MM-DD"),
        ("CVE-1 pkg:pypi", "f:3: invalid package URL: purl is missing the required type component"),
        ("CVE-1#reason", "f:3: expected a vulnerability id first, got 'CVE-1#reason'"),
        ("/etc/passwd", "f:3: expected a vulnerability id first, got '/etc/passwd'"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_ignore_lines(f"# header\nCVE-0\n{line}\nCVE-9\n", "f")
    assert str(err.value).startswith(message)


def test_load_by_suffix_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / ".lifeguardignore").write_text("CVE-2023-38545 exp:2030-01-01\n")
    assert _rows(load_ignore_file(tmp_path / ".lifeguardignore")) == [
        ("CVE-2023-38545", f"{tmp_path / '.lifeguardignore'}:1", [], date(2030, 1, 1), None)
    ]
    with pytest.raises(InputError, match=r"^cannot read ignore file .*missing: No such file or directory$"):
        load_ignore_file(tmp_path / "missing")
    (tmp_path / "binary").write_bytes(b"CVE-1 \xff\xfe\n")
    with pytest.raises(InputError, match=r"^ignore file .*binary is not UTF-8 text"):
        load_ignore_file(tmp_path / "binary")


def test_structured_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "ignore.yaml").write_text(
        "vulnerabilities:\n"
        "  - id: GHSA-xvch-5gv4-984h\n"
        "    purls: [pkg:npm/minimist]\n"
        "    expired_at: 2030-01-01\n"
        "    statement: not reachable\n"
        "  - id: CVE-2023-38545\n"
    )
    (tmp_path / "ignore.json").write_text('{"vulnerabilities": [{"id": "CVE-2023-4911"}]}')
    assert _rows(load_ignore_file(tmp_path / "ignore.yaml")) == [
        ("GHSA-xvch-5gv4-984h", f"{tmp_path / 'ignore.yaml'}: vulnerabilities[0]", ["pkg:npm/minimist"],
         date(2030, 1, 1), "not reachable"),
        ("CVE-2023-38545", f"{tmp_path / 'ignore.yaml'}: vulnerabilities[1]", [], None, None),
    ]  # fmt: skip
    assert _rows(load_ignore_file(tmp_path / "ignore.json")) == [
        ("CVE-2023-4911", f"{tmp_path / 'ignore.json'}: vulnerabilities[0]", [], None, None)
    ]
    assert parse_structured_ignore("", "empty.yaml", yaml=True) == []


@pytest.mark.parametrize(
    ("text", "yaml", "message"),
    [
        ('{"vulnerabilities": [{"id": "CVE-1", "paths": ["x"]}]}', False,
         "i: vulnerabilities.0.paths: Extra inputs are not permitted"),
        ('{"vulnerabilities": [{"id": "CVE-1", "purls": ["npm/x"]}]}', False,
         'i: vulnerabilities[0]: invalid package URL: purl is missing the required "pkg" scheme'),
        ('{"vulnerabilities": [{"id": "CVE 1"}]}', False,
         "i: vulnerabilities[0]: invalid vulnerability id 'CVE 1'"),
        ('{"vulnerabilities": [{"id": "CVE-1", "expired_at": "soon"}]}', False,
         "i: vulnerabilities.0.expired_at: Input should be a valid date"),
        ('{"vulnerabilities": [', False, "i:1: invalid JSON: Expecting value"),
        ("vulnerabilities:\n  - id: [\n", True, "i:3: invalid YAML:"),
        ("misconfigurations: []\n", True, "i: misconfigurations: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_structured_errors_name_the_file(text: str, yaml: bool, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_structured_ignore(text, "i", yaml=yaml)
    assert str(err.value).startswith(message)


_ids = st.from_regex(r"(CVE-20[0-9]{2}-[0-9]{4,6}|GHSA-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})", fullmatch=True)
_reasons = st.from_regex(r"[a-z ]{1,20}", fullmatch=True)
_purls = st.from_regex(r"pkg:(npm|pypi|deb/debian)/[a-z][a-z0-9]{0,8}(@[0-9]\.[0-9]{1,2})?", fullmatch=True)


@given(
    st.lists(
        st.tuples(_ids, st.lists(_purls, max_size=3), st.none() | st.dates(), st.none() | _reasons),
        max_size=8,
    )
)  # fmt: skip
def test_written_rules_parse_back(rules: list[tuple[str, list[str], date | None, str | None]]) -> None:
    lines = []
    for vuln_id, purls, expires, reason in rules:
        tokens = [vuln_id, *purls] + ([f"exp:{expires.isoformat()}"] if expires else [])
        lines.append(" ".join(tokens) + (f"  # {reason}" if reason else ""))
    parsed = parse_ignore_lines("\n".join(lines), "f")
    assert [(r.vulnerability_id, [p.text for p in r.packages], r.expires, r.reason) for r in parsed] == [
        (vuln_id, purls, expires, reason.strip() or None if reason else None)
        for vuln_id, purls, expires, reason in rules
    ]
