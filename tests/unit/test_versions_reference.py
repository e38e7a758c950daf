"""Differential tests of chalicelib.vulndb.versions against the real reference tools, on
hypothesis-generated strings (valid and invalid ones): `dpkg --compare-versions`, node-semver's
`compare` (the copy bundled with npm) and librpm 4.18 through python3-rpm.

Each example is one batch of pairs sent to the tool in one process, so a run stays within a few
seconds. A test is skipped when its tool is not installed (dpkg is on every Debian machine;
node-semver comes with `npm`; librpm with `apt-get install python3-rpm`)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.vulndb.versions import InvalidVersionError, compare

Pair = tuple[str, str]
ERROR = "E"


def _ours(ecosystem: str, pairs: list[Pair]) -> list[int | str]:
    results: list[int | str] = []
    for a, b in pairs:
        try:
            results.append(compare(ecosystem, a, b))
        except InvalidVersionError:
            results.append(ERROR)
    return results


def _mismatches(pairs: list[Pair], ours: list[int | str], theirs: list[int | str]) -> list[str]:
    return [
        f"{a!r} vs {b!r}: ours {mine}, reference {ref}"
        for (a, b), mine, ref in zip(pairs, ours, theirs, strict=True)
        if mine != ref
    ]


# --- dpkg ---------------------------------------------------------------------------------------

DPKG = shutil.which("dpkg")

_DPKG_SCRIPT_HEAD = """
c() {
  dpkg --compare-versions -- "$1" lt "$2" 2>/dev/null; r=$?
  if [ $r = 0 ]; then echo -1; return; fi
  if [ $r != 1 ]; then echo E; return; fi
  dpkg --compare-versions -- "$1" eq "$2" 2>/dev/null; r=$?
  if [ $r = 0 ]; then echo 0; elif [ $r = 1 ]; then echo 1; else echo E; fi
}
"""


def _dpkg(pairs: list[Pair]) -> list[int | str]:
    lines = [f"c {shlex.quote(a)} {shlex.quote(b)}" for a, b in pairs]
    out = subprocess.run(
        ["bash", "-c", _DPKG_SCRIPT_HEAD + "\n".join(lines)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return [ERROR if word == ERROR else int(word) for word in out]


_debian_valid = st.from_regex(
    r"([0-9]{1,2}:)?[0-9][0-9a-zA-Z.+~:]{0,7}(-[0-9a-zA-Z.+~]{1,5})?",
    fullmatch=True,
)
# Near-misses and dpkg's warning cases: empty epoch or revision, blanks, odd characters.
_debian_noisy = st.text(alphabet="0123456789a~+-.:_ Z", min_size=1, max_size=8).filter(
    lambda s: s.strip(" ") != "",
)
_debian = st.one_of(_debian_valid, _debian_valid, _debian_noisy)


@pytest.mark.skipif(DPKG is None, reason="dpkg is not installed")
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(pairs=st.lists(st.tuples(_debian, _debian), min_size=100, max_size=100))
def test_dpkg_matches_dpkg_compare_versions(pairs: list[Pair]) -> None:
    assert _mismatches(pairs, _ours("Debian", pairs), _dpkg(pairs)) == []


@pytest.mark.skipif(DPKG is None, reason="dpkg is not installed")
def test_dpkg_vectors_sample_matches_dpkg() -> None:
    text = (Path(__file__).resolve().parents[1] / "fixtures/version-vectors/debian-versions.txt").read_text()
    pairs = [
        (line.split(" ")[0], line.split(" ")[2])
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pairs += [("1.0~~", "1.0~"), ("1.0~", "1.0"), ("1.0", "1.0a"), ("1.0a", "1.0+"), ("1.0", "1.0.0")]
    pairs += [("1.0é", "1.0+"), ("1.0é", "1.0z"), ("abc", "1"), ("1.0_x", "1.0"), (" 1.0 ", "1.0")]
    ours = _ours("Debian", pairs)
    assert _mismatches(pairs, ours, _dpkg(pairs)) == []
    assert ours[-10:] == [-1, -1, -1, -1, -1, -1, 1, 1, 1, 0]


# --- node-semver --------------------------------------------------------------------------------

NODE = shutil.which("node")
_SEMVER_CANDIDATES = [
    Path("/usr/lib/node_modules/npm/node_modules/semver"),
    Path("/usr/local/lib/node_modules/npm/node_modules/semver"),
    Path("/usr/share/nodejs/semver"),
]
SEMVER_JS = next((path for path in _SEMVER_CANDIDATES if (path / "package.json").is_file()), None)

_NODE_SCRIPT = """
const semver = require(process.argv[1]);
const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = pairs.map(([a, b]) => { try { return semver.compare(a, b); } catch (e) { return 'E'; } });
process.stdout.write(JSON.stringify(out));
"""


def _node_semver(pairs: list[Pair]) -> list[int | str]:
    assert NODE is not None and SEMVER_JS is not None
    out = subprocess.run(
        [NODE, "-e", _NODE_SCRIPT, str(SEMVER_JS)],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [ERROR if value == ERROR else int(value) for value in json.loads(out)]


_number = st.sampled_from(["0", "1", "2", "10", "01", "00", "9007199254740991", "9007199254740992"])
_identifier = st.sampled_from(
    ["alpha", "beta", "1", "2", "10", "01", "0a", "-", "x-y", "A", "9007199254740993", "", "a_b"],
)
_semver = st.builds(
    lambda prefix, numbers, pre, build, space: (
        space + prefix + ".".join(numbers) + (("-" + ".".join(pre)) if pre else "") + build + space
    ),
    st.sampled_from(["", "", "v", "=", "V", "vv"]),
    st.lists(_number, min_size=2, max_size=4),
    st.lists(_identifier, max_size=3),
    st.sampled_from(["", "", "+build", "+001.x", "+", "+a..b"]),
    st.sampled_from(["", "", " ", "\t"]),
)


@pytest.mark.skipif(NODE is None or SEMVER_JS is None, reason="node-semver is not installed")
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(pairs=st.lists(st.tuples(_semver, _semver), min_size=50, max_size=50))
def test_npm_matches_node_semver(pairs: list[Pair]) -> None:
    assert _mismatches(pairs, _ours("npm", pairs), _node_semver(pairs)) == []


# --- librpm -------------------------------------------------------------------------------------

_RPM_SCRIPT = """
import json, sys
import rpm
out = []
for a, b in json.load(sys.stdin):
    x, y = rpm.ver(a), rpm.ver(b)
    out.append((x > y) - (x < y))
print(json.dumps(out))
"""


def _has_python_rpm() -> bool:
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        return False
    probe = subprocess.run([python, "-c", "import rpm"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


HAS_RPM = _has_python_rpm()


def _librpm(pairs: list[Pair]) -> list[int | str]:
    out = subprocess.run(
        ["/usr/bin/python3", "-c", _RPM_SCRIPT],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return list(json.loads(out))


# librpm skips the release when one side has none (not an order); always give both one.
_rpm = st.from_regex(r"([0-9]{1,2}:)?[0-9a-zA-Z.~^_+]{1,8}-[0-9a-zA-Z.~^_+]{1,6}", fullmatch=True)


@pytest.mark.skipif(not HAS_RPM, reason="python3-rpm (librpm) is not installed")
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(pairs=st.lists(st.tuples(_rpm, _rpm), min_size=50, max_size=50))
def test_rpm_matches_librpm(pairs: list[Pair]) -> None:
    assert _mismatches(pairs, _ours("Red Hat", pairs), _librpm(pairs)) == []
