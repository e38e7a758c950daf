"""The policy gate, pure: every rule passing and failing with its exact reason, SPDX expressions,
per-repository overrides, `--fail-on` on top of a policy, the policy's identity, and invalid files
with their exact one-line messages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chalicelib.models import (
    ImageInfo,
    ImageScan,
    OSInfo,
    Package,
    SecretFinding,
    Severity,
    Suppressed,
    Vulnerability,
)
from chalicelib.policy import (
    BlockedPackage,
    GateDecision,
    Policy,
    PolicyError,
    evaluate,
    license_blocked,
    load_policy,
    package_blocked,
    policy_for,
    with_fail_on,
)

DIGEST = "sha256:" + "ab" * 32
SAMPLE_POLICY = Path(__file__).resolve().parents[2] / "samples" / "policy.yaml"


def pkg(name: str, version: str, ecosystem: str, *licenses: str, source: str | None = None) -> Package:
    return Package(
        name=name,
        version=version,
        ecosystem=ecosystem,
        purl=f"pkg:generic/{name}@{version}",
        source_name=source,
        source_version=version if source else None,
        path="var/lib/dpkg/status",
        licenses=list(licenses),
    )


def vuln(vid: str, package: str, severity: Severity, fixed: str | None, kev: bool = False) -> Vulnerability:
    return Vulnerability(
        id=vid,
        package=package,
        ecosystem="Debian:12",
        installed_version="1",
        fixed_version=fixed,
        severity=severity,
        path="x",
        known_exploited=kev,
    )


def secret(rule: str, path: str) -> SecretFinding:
    return SecretFinding(rule_id=rule, severity=Severity.CRITICAL, path=path, masked="****", fingerprint=rule)


def make_scan(os_info: OSInfo | None = None) -> ImageScan:
    return ImageScan(
        image=ImageInfo(
            digest=DIGEST, config_digest=DIGEST, os=os_info or OSInfo(family="debian", version="11")
        ),
        packages=[
            pkg("libssl3", "3.0.11-1~deb12u1", "Debian:12", "Apache-2.0", source="openssl"),
            pkg("log4j-core", "2.14.1", "Maven", "Apache-2.0"),
            pkg("log4j-core", "2.14.1", "Maven", "Apache-2.0"),  # the same jar twice: one finding
            pkg("readline", "8.2-1.3", "Debian:12", "GPL-3.0-or-later"),
            pkg("chardet", "5.2.0", "PyPI", "LGPL-2.1-or-later OR MIT"),
        ],
        vulnerabilities=[
            vuln("CVE-2024-0001", "libssl3", Severity.CRITICAL, None),
            vuln("CVE-2021-44228", "log4j-core", Severity.HIGH, "2.15.0", kev=True),
            vuln("CVE-2024-0002", "libssl3", Severity.HIGH, "3.0.11-1~deb12u2"),
            vuln("CVE-2024-0003", "readline", Severity.MEDIUM, None),
            vuln("CVE-2024-0004", "readline", Severity.LOW, "8.2-2"),
        ],
        secrets=[secret("github-pat", "root/.gitconfig"), secret("aws-access-key-id", "app/.env")],
        suppressed=[  # suppressed findings never count, whatever the rule
            Suppressed(
                vulnerability=vuln("CVE-2024-9999", "libssl3", Severity.CRITICAL, None, kev=True),
                source="vex",
                rule="doc-1",
                status="not_affected",
            )
        ],
    )


SCAN = make_scan()


def reasons(policy: Policy, scan: ImageScan = SCAN) -> list[str]:
    decision = evaluate(scan, policy)
    assert decision.verdict == ("fail" if decision.reasons else "pass")
    return decision.reasons


# --- the rules ------------------------------------------------------------------------------------


def test_no_rule_passes_with_no_policy_identity() -> None:
    assert evaluate(SCAN, Policy()) == GateDecision("pass", [], None)


def test_fail_on_counts_suppressed_never_and_fixable_only_on_request() -> None:
    assert reasons(Policy(fail_on=Severity.HIGH)) == [
        "fail_on: 3 vulnerabilities at or above HIGH (CRITICAL: 1, HIGH: 2)"
    ]
    assert reasons(Policy(fail_on=Severity.HIGH, fixable_only=True)) == [
        "fail_on: 2 fixable vulnerabilities at or above HIGH (HIGH: 2)"
    ]
    assert reasons(Policy(fail_on=Severity.CRITICAL, fixable_only=True)) == []
    assert reasons(Policy(fail_on=Severity.CRITICAL)) == [
        "fail_on: 1 vulnerabilities at or above CRITICAL (CRITICAL: 1)"
    ]
    assert reasons(Policy(fail_on=Severity.HIGH), ImageScan(image=SCAN.image)) == []


def test_max_counts_per_severity() -> None:
    counts = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.LOW: 1}
    assert reasons(Policy(max_counts=counts)) == [
        "max_counts: 1 CRITICAL vulnerabilities, at most 0 allowed",
        "max_counts: 2 HIGH vulnerabilities, at most 1 allowed",
    ]
    assert reasons(Policy(max_counts=counts, fixable_only=True)) == [
        "max_counts: 2 fixable HIGH vulnerabilities, at most 1 allowed"
    ]
    assert reasons(Policy(max_counts={Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.MEDIUM: 1})) == []


def test_known_exploited() -> None:
    assert reasons(Policy(allow_known_exploited=True)) == []
    assert reasons(Policy(allow_known_exploited=False)) == [
        "allow_known_exploited: 1 known-exploited vulnerabilities (CVE-2021-44228 in log4j-core)"
    ]


def test_secrets() -> None:
    assert reasons(Policy(allow_secrets=True)) == []
    assert reasons(Policy(allow_secrets=False)) == [
        "allow_secrets: 2 secrets found (aws-access-key-id in app/.env, github-pat in root/.gitconfig)"
    ]
    one = SCAN.model_copy(update={"secrets": SCAN.secrets[:1]})
    assert reasons(Policy(allow_secrets=False), one) == [
        "allow_secrets: 1 secret found (github-pat in root/.gitconfig)"
    ]
    assert reasons(Policy(allow_secrets=False), ImageScan(image=SCAN.image)) == []


def test_blocked_packages_by_glob_ecosystem_versions_and_source_name() -> None:
    log4j = BlockedPackage(name="log4j-*", ecosystem="Maven", versions=">=2.0.0, <2.17.1")
    assert reasons(Policy(blocked_packages=[log4j])) == [
        "blocked_packages: 1 blocked package: log4j-core 2.14.1 (Maven) by log4j-* [Maven] >=2.0.0, <2.17.1"
    ]
    assert reasons(Policy(blocked_packages=[BlockedPackage(name="log4j-core", versions=">=2.17.1")])) == []
    assert reasons(Policy(blocked_packages=[BlockedPackage(name="log4j-core", ecosystem="npm")])) == []
    # the source package name blocks its binaries; `Debian` matches `Debian:12`, case-insensitively
    both = Policy.model_validate(
        {"blocked_packages": ["READLINE", {"name": "openssl", "ecosystem": "debian"}]}
    )
    assert reasons(both) == [
        "blocked_packages: 2 blocked packages: libssl3 3.0.11-1~deb12u1 (Debian:12) by openssl [debian], "
        "readline 8.2-1.3 (Debian:12) by READLINE"
    ]


def test_blocked_package_versions_use_the_ecosystem_order_and_fail_closed() -> None:
    libssl = SCAN.packages[0]
    assert package_blocked(libssl, BlockedPackage(name="openssl", versions="<3.0.11-1~deb12u2"))
    assert not package_blocked(libssl, BlockedPackage(name="openssl", versions="<3.0.11-1~deb12u1"))
    assert package_blocked(libssl, BlockedPackage(name="openssl", versions="==3.0.11-1~deb12u1"))
    assert not package_blocked(libssl, BlockedPackage(name="openssl", versions="!=3.0.11-1~deb12u1"))
    chardet = SCAN.packages[4]
    assert package_blocked(chardet, BlockedPackage(name="chardet", versions="<=not:a:version"))  # fail closed
    assert not package_blocked(chardet, BlockedPackage(name="chardet", versions=">5.2"))


def test_blocked_licenses_inside_spdx_expressions() -> None:
    assert reasons(Policy(blocked_licenses=["gpl-3.0*"])) == [
        "blocked_licenses: 1 package with a blocked license: readline 8.2-1.3 (GPL-3.0-or-later)"
    ]
    # chardet may be taken under MIT: blocking LGPL alone does not block it
    assert reasons(Policy(blocked_licenses=["LGPL-*"])) == []
    assert reasons(Policy(blocked_licenses=["LGPL-*", "MIT", "apache-2.0"])) == [
        "blocked_licenses: 3 packages with a blocked license: chardet 5.2.0 (LGPL-2.1-or-later OR MIT), "
        "libssl3 3.0.11-1~deb12u1 (Apache-2.0), log4j-core 2.14.1 (Apache-2.0)"
    ]


@pytest.mark.parametrize(
    ("text", "patterns", "blocked"),
    [
        ("GPL-3.0-only OR MIT", ["gpl-*"], False),
        ("GPL-3.0-only OR MIT", ["gpl-*", "mit"], True),
        ("GPL-3.0-only AND MIT", ["gpl-*"], True),
        ("mit or apache-2.0", ["apache-*"], False),
        ("(MIT OR GPL-2.0-only) AND GPL-3.0-only", ["gpl-2*"], False),
        ("(MIT OR GPL-2.0-only) AND GPL-3.0-only", ["gpl-3*"], True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["gpl-2.0-only"], True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["gpl-2.0-only with *"], True),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["mit"], False),
        ("GNU General Public License v3", ["gnu general*"], True),  # free text: matched whole
        ("GNU General Public License v3", ["gnu"], False),
        ("MIT OR", ["mit*"], True),  # not an expression: matched whole
    ],
)
def test_license_expressions(text: str, patterns: list[str], blocked: bool) -> None:
    assert license_blocked(text, patterns) is blocked


def test_allowed_os_families_and_minimum_releases() -> None:
    assert reasons(Policy(allowed_os={"debian": "12"})) == [
        "allowed_os: debian 11 is older than the minimum release 12"
    ]
    assert reasons(Policy(allowed_os={"debian": "11"})) == []
    assert reasons(Policy(allowed_os={"debian": None})) == []
    assert reasons(Policy(allowed_os={"alpine": "3.19", "ubuntu": "22.04"})) == [
        "allowed_os: debian is not an allowed OS (allowed: alpine, ubuntu)"
    ]
    alpine = {"alpine": "3.19"}
    for version, expected in [("3.19.1", []), ("3.19.0", []), ("3.20", []), ("3.18.4", ["3.18.4"])]:
        found = reasons(Policy(allowed_os=alpine), make_scan(OSInfo(family="alpine", version=version)))
        assert found == [f"allowed_os: alpine {v} is older than the minimum release 3.19" for v in expected]
    sid = make_scan(OSInfo(family="debian", version=None))
    assert reasons(Policy(allowed_os={"debian": "12"}), sid) == [
        "allowed_os: debian release unknown cannot be compared with the minimum 12"
    ]


def test_unknown_os_passes_unless_the_flag_says_otherwise() -> None:
    scratch = make_scan(OSInfo())
    assert reasons(Policy(allowed_os={"debian": "12"}), scratch) == []
    assert reasons(Policy(allowed_os={"debian": "12"}, allow_unknown_os=False), scratch) == [
        "allowed_os: the image's OS is unknown and allow_unknown_os is false"
    ]
    assert reasons(Policy(allow_unknown_os=False), scratch) == []  # no allowed_os: no OS check


def test_every_rule_at_once_in_rule_order() -> None:
    policy = Policy(
        fail_on=Severity.CRITICAL,
        max_counts={Severity.HIGH: 0},
        allow_known_exploited=False,
        allow_secrets=False,
        blocked_packages=[BlockedPackage(name="readline")],
        blocked_licenses=["GPL-*"],
        allowed_os={"debian": "12"},
    )
    assert [r.split(":", 1)[0] for r in reasons(policy)] == [
        "fail_on",
        "max_counts",
        "allow_known_exploited",
        "allow_secrets",
        "blocked_packages",
        "blocked_licenses",
        "allowed_os",
    ]


def test_long_lists_are_cut_after_five() -> None:
    many = ImageScan(
        image=SCAN.image,
        secrets=[secret(f"rule-{i}", f"etc/f{i}") for i in range(7)],
    )
    assert reasons(Policy(allow_secrets=False), many) == [
        "allow_secrets: 7 secrets found (rule-0 in etc/f0, rule-1 in etc/f1, rule-2 in etc/f2, "
        "rule-3 in etc/f3, rule-4 in etc/f4 and 2 more)"
    ]


# --- identity -------------------------------------------------------------------------------------


def test_identity_is_a_digest_of_the_rules_that_are_set() -> None:
    digest = "sha256:" + hashlib.sha256(b'{"fail_on":"HIGH"}').hexdigest()[:16]
    assert Policy(fail_on=Severity.HIGH).identity() == digest
    assert Policy(fail_on=Severity.HIGH, name="baseline").identity() == f"baseline@{digest}"
    assert evaluate(SCAN, Policy(fail_on=Severity.HIGH)).policy == digest
    assert Policy(fail_on=Severity.CRITICAL).identity() != digest
    assert Policy().identity() is None


# --- files and overrides --------------------------------------------------------------------------

FILE = """
name: baseline
fail_on: critical
allowed_os: {debian: "12"}
repositories:
  - match: "payments/*"
    fail_on: HIGH
    allow_secrets: false
  - match: "payments/legacy-*"
    allowed_os: {debian: "11"}
  - match: "sandbox/*"
    fail_on: null
  - match: "*/api"
    max_counts: {critical: 0}
"""


def test_overrides_apply_in_file_order_each_replacing_the_keys_it_sets() -> None:
    policy = load_policy(FILE, "policy.yaml")

    def rules(repository: str | None) -> dict[str, object]:
        effective = policy_for(policy, repository)
        assert effective.name == "baseline"
        return effective.rules()

    assert rules(None) == {"fail_on": "CRITICAL", "allowed_os": {"debian": "12"}}
    assert rules("web") == rules(None)
    assert rules("team/payments/x") == rules(None)  # a glob matches the whole name
    assert rules("payments/billing") == {
        "fail_on": "HIGH",
        "allowed_os": {"debian": "12"},
        "allow_secrets": False,
    }
    assert rules("payments/legacy-billing") == {
        "fail_on": "HIGH",
        "allowed_os": {"debian": "11"},
        "allow_secrets": False,
    }
    assert rules("sandbox/try") == {"fail_on": None, "allowed_os": {"debian": "12"}}
    # `*` crosses `/`; a map is replaced whole
    assert rules("payments/api") == {
        "fail_on": "HIGH",
        "allowed_os": {"debian": "12"},
        "allow_secrets": False,
        "max_counts": {"CRITICAL": 0},
    }
    assert rules("a/b/api")["max_counts"] == {"CRITICAL": 0}
    assert policy_for(policy, "payments/api").identity() != policy_for(policy, None).identity()


def test_json_is_accepted_and_an_empty_file_is_an_empty_policy() -> None:
    policy = load_policy('{"fail_on": "HIGH", "blocked_packages": ["log4j-core"]}', "p.json")
    assert policy_for(policy, None).rules() == {
        "fail_on": "HIGH",
        "blocked_packages": [{"name": "log4j-core"}],
    }
    assert load_policy("", "empty.yaml").rules() == {}
    assert load_policy("# nothing yet\n", "empty.yaml").rules() == {}


def test_fail_on_flag_on_top_of_a_policy_is_the_stricter() -> None:
    lenient = Policy(fail_on=Severity.CRITICAL, fixable_only=True, allow_secrets=False)
    combined = with_fail_on(lenient, Severity.HIGH)
    assert combined.rules() == {"fail_on": "HIGH", "fixable_only": False, "allow_secrets": False}
    assert with_fail_on(Policy(fail_on=Severity.LOW), Severity.CRITICAL).fail_on is Severity.LOW
    assert with_fail_on(Policy(), Severity.HIGH).rules() == {"fail_on": "HIGH"}
    assert with_fail_on(lenient, None) is lenient


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail_on: HIGH\nmax_severity: HIGH\n", "unknown key 'max_severity' (did you mean 'fail_on'?)"),
        (
            "repositories:\n  - match: 'a/*'\n    allow_secret: false\n",
            "unknown key 'repositories[0].allow_secret' (did you mean 'allow_secrets'?)",
        ),
        ("repositories:\n  - fail_on: HIGH\n", "repositories[0].match: Field required"),
        ("fail_on: SEVERE\n", "fail_on: Input should be 'CRITICAL', 'HIGH', 'MEDIUM', 'LOW' or 'UNKNOWN'"),
        (
            "max_counts: {BAD: 1}\n",
            "max_counts.BAD: Input should be 'CRITICAL', 'HIGH', 'MEDIUM', 'LOW' or 'UNKNOWN'",
        ),
        ("max_counts: {high: -1}\n", "max_counts: HIGH cannot be negative: -1"),
        (
            "allowed_os: {alpine: 3.10}\n",
            "allowed_os: alpine: quote the release (YAML read it as the number 3.1)",
        ),
        (
            "allowed_os: {debian: bookworm}\n",
            "allowed_os: debian: 'bookworm' is not a release number like 12 or 3.19",
        ),
        (
            "blocked_packages:\n  - name: log4j\n    versions: '~2'\n",
            "blocked_packages[0].versions: bad version constraint '~2': "
            "use <, <=, >, >=, == or != and a version",
        ),
        ("blocked_licenses: GPL\n", "blocked_licenses: Input should be a valid list"),
        (
            "allow_secrets: maybe\n",
            "allow_secrets: Input should be a valid boolean, unable to interpret input",
        ),
        ("- fail_on\n", "a policy file is a mapping of rules, not a list"),
        (
            "fail_on: [HIGH\n",
            "not valid YAML or JSON at line 2: expected ',' or ']', but got '<stream end>'",
        ),
    ],
)
def test_invalid_files_name_the_file_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "ci/policy.yaml")
    assert str(caught.value) == f"ci/policy.yaml: {message}"
    assert caught.value.code == "bad_policy"


def test_the_sample_policy_is_valid() -> None:
    policy = load_policy(SAMPLE_POLICY.read_text(), str(SAMPLE_POLICY))
    assert policy.name == "baseline"
    assert [o.match for o in policy.repositories] == ["payments/*", "sandbox/*"]
    assert policy_for(policy, "sandbox/demo").fail_on is None
