"""Generated OSV feeds and the package list the match benchmark uses.

Why generated: the real OSV exports are downloads (no network here) and change daily. The generator
follows the shapes of real records (ids, aliases/upstream, CVSS v3 vectors, GitHub's
`database_specific.severity`, Debian urgencies, several ranges, `last_affected`, unfixed records,
a second Debian release, details of realistic length) and is seeded, so a run is repeatable.

Why it speaks about real packages: the 2,000 packages are this machine's own dpkg database, this
project's `.venv` distributions and npm's bundled modules (parsed with Lifeguard's analyzers), topped
up with Alpine/PyPI/npm packages; most of them get records that hit, miss, are fixed or unfixed,
so the matcher does the work a real scan makes it do. The benchmark image holds the same dpkg,
dist-info and node_modules files, so its scan meets the same records."""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from bench.common import CACHE, REPO, say
from chalicelib.models import OSInfo, Package

FEED_VERSION = 2
MATCH_PACKAGES = 2000
MATCH_FEED_RECORDS = 24_000
BIG_FEED_RECORDS = 200_000

# share of the records per ecosystem (OSV's mix is dominated by distro and npm/PyPI records)
_ECOSYSTEM_SHARE = (("Debian:12", 0.40), ("npm", 0.25), ("PyPI", 0.20), ("Alpine:v3.19", 0.15))
_SYLLABLE_TEXT = (
    "lib ssl xml http json yaml zip gz img net core auth util log test cli data cache pool sync "
    "async rpc web db sql dns tls ssh git node py go rs io fs os sys mem str buf uri url csv ini"
)
_WORD_TEXT = (
    "a an the of to in for with via when while allows attacker remote local crafted request "
    "buffer overflow heap use after free denial service memory corruption injection cross site "
    "scripting path traversal improper validation input length integer null pointer dereference "
    "certificate verification bypass race condition leak sensitive information header parsing "
    "function component version before prior affected vulnerable issue fixed upstream"
)
_SYLLABLES = _SYLLABLE_TEXT.split()
_WORDS = _WORD_TEXT.split()
_URGENCY = ("low", "medium", "high", "not yet assigned", "unimportant")
_GH_SEVERITY = ("LOW", "MODERATE", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class Target:
    """A package a feed speaks about: OSV ecosystem, lookup name (source name for distros), the
    installed version the records are shaped around."""

    ecosystem: str
    name: str
    version: str


# -- the 2,000 packages ----------------------------------------------------------------------------


def machine_packages() -> list[Package]:
    """This machine's packages, found by Lifeguard's own analyzers: dpkg status, the `.venv`
    dist-infos, npm's bundled node_modules (the same files the benchmark image holds)."""
    from chalicelib.analyzers.dpkg import DpkgAnalyzer
    from chalicelib.analyzers.npm import NpmPackageAnalyzer
    from chalicelib.analyzers.python import PythonPackageAnalyzer

    found: list[Package] = []
    dpkg = DpkgAnalyzer()
    status = Path("/var/lib/dpkg/status")
    if status.is_file():
        result = dpkg.analyze("var/lib/dpkg/status", status.read_bytes())
        found += dpkg.finalize(result.packages, OSInfo(family="debian", version="12"))
    python = PythonPackageAnalyzer()
    for metadata in sorted(
        (REPO / ".venv" / "lib" / "python3.11" / "site-packages").glob("*.dist-info/METADATA")
    ):
        rel = f"app/.venv/lib/python3.11/site-packages/{metadata.parent.name}/METADATA"
        found += python.analyze(rel, metadata.read_bytes()).packages
    npm = NpmPackageAnalyzer()
    node_modules = Path("/usr/lib/node_modules/npm/node_modules")
    for manifest in sorted(node_modules.rglob("package.json")):
        rel = f"app/node_modules/{manifest.relative_to(node_modules)}"
        if npm.wants(rel):
            found += npm.analyze(rel, manifest.read_bytes()).packages
    return found


def _name(rng: random.Random) -> str:
    return "-".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))) + str(rng.randint(0, 99))


def _synthetic(ecosystem: str, index: int, rng: random.Random) -> Package:
    name = f"{_name(rng)}-{index}"
    major, minor, patch = rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 40)
    if ecosystem.startswith("Alpine"):
        version = f"{major}.{minor}.{patch}-r{rng.randint(0, 9)}"
        purl = f"pkg:apk/alpine/{name}@{version}?distro=alpine-3.19"
        return Package(
            name=name,
            version=version,
            ecosystem=ecosystem,
            purl=purl,
            source_name=name,
            source_version=version,
            path="lib/apk/db/installed",
        )
    version = f"{major}.{minor}.{patch}"
    if ecosystem == "PyPI":
        path = f"app/.venv/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA"
        return Package(
            name=name, version=version, ecosystem="PyPI", purl=f"pkg:pypi/{name}@{version}", path=path
        )
    path = f"app/node_modules/{name}/package.json"
    return Package(name=name, version=version, ecosystem="npm", purl=f"pkg:npm/{name}@{version}", path=path)


def match_packages_list(count: int = MATCH_PACKAGES, seed: int = 2000) -> list[Package]:
    """`count` packages: this machine's real ones first, then synthetic Alpine, PyPI and npm ones."""
    rng = random.Random(seed)
    packages = machine_packages()[:count]
    cycle = ("Alpine:v3.19", "Alpine:v3.19", "PyPI", "npm")
    index = 0
    while len(packages) < count:
        packages.append(_synthetic(cycle[index % len(cycle)], index, rng))
        index += 1
    return packages


def targets_of(packages: Sequence[Package]) -> list[Target]:
    """One target per distinct (ecosystem, lookup name), shaped like the matcher looks it up."""
    from chalicelib.vulndb.matcher import match_key

    seen: dict[tuple[str, str], Target] = {}
    for pkg in packages:
        key = match_key(pkg)
        if key is None:
            continue
        _family, _release, name, version = key
        seen.setdefault((pkg.ecosystem, name), Target(pkg.ecosystem, name, version))
    return list(seen.values())


# -- version shapes --------------------------------------------------------------------------------


def _dpkg_versions(version: str) -> tuple[str, str]:
    """(a version above `version`, one below it) in dpkg order."""
    epoch, _, rest = version.rpartition(":")
    above = f"{version}+deb12u{random.Random(version).randint(1, 9)}"
    if epoch and epoch != "0":
        below = f"{rest.split('-')[0]}-1" if rest[:1].isdigit() else "0.1-1"
    else:
        below = "0~rc1-1"
    return above, below


def _pep440_versions(version: str) -> tuple[str, str] | None:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    release = (*parsed.release, 0, 0)
    above = f"{release[0]}.{release[1] + 1}.0"
    below = (
        f"{release[0]}.{release[1]}.0a1" if release[1] or release[2] else f"{max(release[0] - 1, 0)}.0.0a1"
    )
    return above, below


def _semver_versions(version: str) -> tuple[str, str] | None:
    core = version.partition("-")[0].partition("+")[0].split(".")
    if len(core) != 3 or not all(part.isdigit() for part in core):
        return None
    major, minor, patch = (int(part) for part in core)
    above = f"{major}.{minor}.{patch + 1}"
    below = f"{major}.{minor}.0-rc.1" if minor or patch else f"{max(major - 1, 0)}.0.0"
    return above, below


def _apk_versions(version: str) -> tuple[str, str]:
    base, _, rel = version.rpartition("-r")
    if not base or not rel.isdigit():
        return f"{version}-r99", "0.0.1-r0"
    return f"{base}-r{int(rel) + 1}", f"{base.split('.')[0]}.0-r0" if "." in base else "0.0.1-r0"


def around(ecosystem: str, version: str) -> tuple[str, str] | None:
    """(above, below) `version` in its ecosystem's order, None when we cannot shape it."""
    if ecosystem.startswith("Debian"):
        return _dpkg_versions(version)
    if ecosystem.startswith("Alpine"):
        return _apk_versions(version)
    if ecosystem == "PyPI":
        return _pep440_versions(version)
    return _semver_versions(version)


def _random_version(ecosystem: str, rng: random.Random) -> str:
    major, minor, patch = rng.randint(0, 12), rng.randint(0, 40), rng.randint(0, 60)
    if ecosystem.startswith("Debian"):
        return f"{major}.{minor}.{patch}-{rng.randint(1, 9)}"
    if ecosystem.startswith("Alpine"):
        return f"{major}.{minor}.{patch}-r{rng.randint(0, 9)}"
    return f"{major}.{minor}.{patch}"


# -- records ---------------------------------------------------------------------------------------


def _ranges(ecosystem: str, version: str, rng: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    """Ranges (and explicit versions) that hit, miss, or leave `version` unfixed, in the shapes
    OSV's sources publish."""
    above, below = around(ecosystem, version) or (version, version)
    range_type = "SEMVER" if ecosystem == "npm" else "ECOSYSTEM"
    roll = rng.random()
    if roll < 0.35:  # affected, fixed in a newer version
        events: list[dict[str, str]] = [{"introduced": "0"}, {"fixed": above}]
    elif roll < 0.65:  # already fixed
        events = [{"introduced": "0"}, {"fixed": below if rng.random() < 0.5 else version}]
    elif roll < 0.75:  # unfixed
        events = [{"introduced": "0"}]
    elif roll < 0.85:  # introduced after the installed version, still open
        events = [{"introduced": above}]
    elif roll < 0.93:  # last_affected at the installed version
        events = [{"introduced": below}, {"last_affected": version}]
    else:  # two ranges: an old one closed, the current one open
        return [
            {"type": range_type, "events": [{"introduced": "0"}, {"fixed": below}]},
            {"type": range_type, "events": [{"introduced": version}, {"fixed": above}]},
        ], []
    versions = [below, version] if ecosystem in ("PyPI", "npm") and rng.random() < 0.3 else []
    return [{"type": range_type, "events": events}], versions


def _cvss3(rng: random.Random) -> str:
    parts = [
        ("AV", "NALP"),
        ("AC", "LH"),
        ("PR", "NLH"),
        ("UI", "NR"),
        ("S", "UC"),
        ("C", "NLH"),
        ("I", "NLH"),
        ("A", "NLH"),
    ]
    return "CVSS:3.1/" + "/".join(f"{metric}:{rng.choice(values)}" for metric, values in parts)


def _text(rng: random.Random, low: int, high: int) -> str:
    words: list[str] = []
    size, target = 0, rng.randint(low, high)
    while size < target:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


def _record(serial: int, ecosystem: str, name: str, version: str, rng: random.Random) -> dict[str, Any]:
    year = 2014 + serial % 11
    cve = f"CVE-{year}-{10000 + serial}"
    ranges, versions = _ranges(ecosystem, version, rng)
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}, "ranges": ranges}
    if versions:
        affected["versions"] = versions
    record: dict[str, Any] = {"schema_version": "1.6.0", "modified": "2024-06-01T00:00:00Z"}
    record["published"] = f"{year}-03-{1 + serial % 28:02d}T00:00:00Z"
    if ecosystem.startswith("Debian") or ecosystem.startswith("Alpine"):
        prefix = "DEBIAN" if ecosystem.startswith("Debian") else "ALPINE"
        record["id"] = f"{prefix}-{cve}"
        record["upstream"] = [cve]
        if prefix == "DEBIAN" and rng.random() < 0.5:
            affected["ecosystem_specific"] = {"urgency": rng.choice(_URGENCY)}
        entries = [affected]
        if prefix == "DEBIAN" and rng.random() < 0.4:  # the same source in the previous release
            entries.append({**affected, "package": {"ecosystem": "Debian:11", "name": name}})
        record["affected"] = entries
        if rng.random() < 0.4:
            record["severity"] = [{"type": "CVSS_V3", "score": _cvss3(rng)}]
    else:
        ghsa = "GHSA-" + "-".join(
            "".join(rng.choice("23456789cfghjmpqrvwx") for _ in range(4)) for _ in range(3)
        )
        record["id"] = ghsa
        record["aliases"] = [cve] if rng.random() < 0.9 else []
        record["affected"] = [affected]
        if rng.random() < 0.9:
            record["severity"] = [{"type": "CVSS_V3", "score": _cvss3(rng)}]
        record["database_specific"] = {
            "severity": rng.choice(_GH_SEVERITY),
            "cwe_ids": [f"CWE-{rng.randint(20, 1000)}"],
            "github_reviewed": True,
        }
    record["summary"] = _text(rng, 30, 90)
    record["details"] = _text(rng, 200, 1600)
    record["references"] = [
        {"type": "WEB", "url": f"https://example.org/advisories/{record['id']}/{i}"}
        for i in range(rng.randint(2, 6))
    ]
    return record


def _plan(total: int, targets: Sequence[Target], rng: random.Random) -> Iterator[tuple[str, str, str]]:
    """(ecosystem, name, installed-ish version) for each record to write: targets first (70% of
    them covered, a few with many records, as openssl or linux have), then filler packages."""
    per_ecosystem = {eco: int(total * share) for eco, share in _ECOSYSTEM_SHARE}
    per_ecosystem["Debian:12"] += total - sum(per_ecosystem.values())
    for ecosystem, budget in per_ecosystem.items():
        written = 0
        own = [t for t in targets if t.ecosystem == ecosystem]
        for target in own:
            if written >= budget * 0.6 or rng.random() > 0.7:
                continue
            count = rng.choice((1, 1, 2, 2, 3, 4, 6, 10, 25)) if rng.random() > 0.01 else 150
            for _ in range(min(count, budget - written)):
                yield ecosystem, target.name, target.version
                written += 1
        while written < budget:
            name = _name(rng)
            version = _random_version(ecosystem, rng)
            for _ in range(min(rng.randint(1, 5), budget - written)):
                yield ecosystem, name, version
                written += 1


def write_feed(path: Path, total: int, targets: Sequence[Target], seed: int) -> int:
    """Write `total` OSV records as an OSV-style `all.zip` at `path`; returns the count."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for serial, (ecosystem, name, version) in enumerate(_plan(total, targets, rng)):
            record = _record(serial, ecosystem, name, version, rng)
            archive.writestr(f"{record['id']}.json", json.dumps(record, indent=2))
            count += 1
    tmp.replace(path)
    return count


def ensure_feed(name: str, total: int, seed: int) -> Path:
    """A cached feed of `total` records about the match packages (rebuilt when the recipe changes)."""
    path = CACHE / "feeds" / f"{name}-{total}-s{seed}-v{FEED_VERSION}.zip"
    if not path.is_file():
        say(f"  generating {total:,} OSV records -> {path.relative_to(REPO)} ...")
        write_feed(path, total, targets_of(match_packages_list()), seed)
    return path


def ensure_db(name: str, total: int, seed: int) -> Path:
    """A cached index built (in process) from `ensure_feed(name, total, seed)`, one per index
    schema version (an index of another schema is not readable, so it is rebuilt)."""
    from chalicelib.vulndb import index

    feed = ensure_feed(name, total, seed)
    db = feed.with_name(f"{feed.stem}-schema{index.SCHEMA_VERSION}.sqlite")
    if not db.is_file():
        say(f"  building index {db.relative_to(REPO)} ...")
        index.build_index([feed], db)
    return db


def match_db() -> Path:
    """The index the scan and match benchmarks use: 24,000 records about the image's packages."""
    return ensure_db("match", MATCH_FEED_RECORDS, seed=1)
