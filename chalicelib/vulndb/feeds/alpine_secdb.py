"""Alpine's security database (secdb): which package release fixed which advisories.

One document per Alpine release and repository (`v3.10/main.yaml`; today published as JSON with the
same structure, `v3.19/main.json`)::

    distroversion: v3.10
    reponame: main
    packages:
      - pkg:
          name: openssl
          secfixes:
            1.1.1d-r0: [CVE-2019-1547, CVE-2019-1549]
            0: [CVE-2019-0000]

Mapping to OSV records, one per (advisory, package, release):
- id = the advisory id (a CVE), ecosystem `Alpine:<distroversion>`, name = the package (secdb names
  origin/source packages, which is what the matcher compares for apk packages);
- one ECOSYSTEM range `introduced 0` + `fixed <version>` for each version that lists the id. When an
  id is listed under several versions (a backport and a later re-fix), OSV's evaluation makes the
  smallest fix close the range, which is what the release's own history says;
- a fixed version of `0` means "never affected" (secdb's convention): no record at all, so nothing
  can match; the count is kept (`SecdbResult.not_affected`);
- a fixed version apk-tools rejects (`4.10-1-r1`) is reported and skipped, never guessed at.

Entries are free text in places (written by hand in APKBUILD `# secfixes:` comments). Cleaning, as
Trivy's and Grype's importers do, but keeping what is unambiguous:
- parenthesised remarks go (`CVE-2018-14879 (tcpdump -V)`), then the entry splits on whitespace
  and commas (`CVE-2019-5060 TALOS-2019-0844`);
- a token that starts like a CVE id is cut to the id and upper-cased (`CVE-2017-17434-1`,
  `CVE-2019-19451.patch`, `CVE_2019-2426` -> `CVE-2019-2426`); `CVE-????-?????` is no id;
- an entry with CVE ids yields those; the other ids beside them (TALOS-, XSA-) name the same issue
  and are dropped, not kept as aliases: `XSA-297` sits beside four different CVEs, and aliases would
  merge them into one finding;
- an entry without a CVE id yields its first well-formed advisory id (`XSA-207`);
- an entry without any id is reported.

Alpine is also in OSV (`ALPINE-CVE-x` records with `upstream: [CVE-x]`): both feeds can be loaded,
and the matcher merges records that share ids, so one fix is one finding named `CVE-x`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from chalicelib.errors import InputError
from chalicelib.vulndb import versions
from chalicelib.vulndb.osv import OSVAffected, OSVEvent, OSVPackage, OSVRange, OSVRecord

FAMILY = "Alpine"
SOURCE = "alpine-secdb"
#: the secfixes key that means "this package was never affected"
NOT_AFFECTED = "0"

_REMARK = re.compile(r"\([^)]*\)")
_SEPARATORS = re.compile(r"[\s,;]+")
_CVE = re.compile(r"CVE[-_](\d{4})-(\d{4,})", re.IGNORECASE)
_OTHER_ID = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Za-z0-9]+)+")
_DISTROVERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringScalarLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loading with every plain scalar kept as the string written: `1.10:` must stay the
    version `1.10`, not the float 1.1 (and `0` stays "0"). Only `null` keeps its meaning."""


_StringScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass
class SecdbResult:
    """What one secdb document gave: records, entries skipped with their reason, and how many
    (package, advisory) entries said "not affected"."""

    distroversion: str
    reponame: str | None
    records: list[OSVRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    not_affected: int = 0


def is_secdb(data: object) -> bool:
    """Whether a parsed YAML/JSON document has secdb's shape."""
    return isinstance(data, dict) and "distroversion" in data and isinstance(data.get("packages"), list)


def load_yaml(raw: bytes, origin: str) -> Any:
    """A secdb YAML document (scalars kept as strings), or `InputError` naming `origin`."""
    try:
        return yaml.load(raw, Loader=_StringScalarLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not YAML: {exc}") from exc


def advisory_ids(entry: str) -> list[str]:
    """The advisory ids one secfixes entry names (module docstring: cleaning rules), in order."""
    cves: list[str] = []
    others: list[str] = []
    for token in _SEPARATORS.split(_REMARK.sub(" ", entry)):
        if not token:
            continue
        if cve := _CVE.match(token):
            cves.append(f"CVE-{cve.group(1)}-{cve.group(2)}")
        elif not token.upper().startswith("CVE") and _OTHER_ID.fullmatch(token):
            others.append(token)
    if cves:
        return list(dict.fromkeys(cves))
    return others[:1]


def secdb_records(data: Mapping[str, Any], origin: str) -> SecdbResult:
    """Records of one secdb document (see the module docstring for the mapping)."""
    distroversion = data.get("distroversion")
    if not isinstance(distroversion, str) or not _DISTROVERSION.fullmatch(distroversion):
        raise InputError(
            f"{origin}: secdb distroversion must be a release like 'v3.19', got {distroversion!r}"
        )
    reponame = data.get("reponame")
    result = SecdbResult(distroversion, reponame if isinstance(reponame, str) else None)
    ecosystem = f"{FAMILY}:{distroversion}"
    key = versions.comparator(ecosystem).key
    fixes: dict[str, dict[str, list[str]]] = {}  # package -> advisory id -> fixed versions
    for position, item in enumerate(data.get("packages") or []):
        pkg = item.get("pkg") if isinstance(item, dict) else None
        name = pkg.get("name") if isinstance(pkg, dict) else None
        if not isinstance(pkg, dict) or not isinstance(name, str) or not name.strip():
            result.problems.append(f"{origin}: packages[{position}]: no pkg.name")
            continue
        secfixes = pkg.get("secfixes") or {}
        if not isinstance(secfixes, dict):
            result.problems.append(f"{origin}: {name}: secfixes is not a mapping")
            continue
        by_id = fixes.setdefault(name.strip(), {})
        for raw_version, entries in secfixes.items():
            version = str(raw_version).strip()
            ids = [i for entry in _entries(entries) for i in _ids_or_problem(entry, origin, name, result)]
            if version == NOT_AFFECTED:
                result.not_affected += len(ids)
                continue
            try:
                key(version)
            except ValueError as exc:
                result.problems.append(f"{origin}: {name} {version}: {exc}; skipped {', '.join(ids)}")
                continue
            for vid in ids:
                listed = by_id.setdefault(vid, [])
                if version not in listed:
                    listed.append(version)
    for name, by_id in fixes.items():
        for vid in sorted(by_id):
            if by_id[vid]:
                fixed = sorted(by_id[vid], key=key)
                result.records.append(_record(vid, ecosystem, name, fixed, result.reponame))
    return result


def _entries(entries: object) -> list[str]:
    if entries is None:
        return []
    if isinstance(entries, list):
        return [str(e) for e in entries if e is not None]
    return [str(entries)]


def _ids_or_problem(entry: str, origin: str, name: str, result: SecdbResult) -> list[str]:
    ids = advisory_ids(entry)
    if not ids:
        result.problems.append(f"{origin}: {name}: no advisory id in {entry!r}")
    return ids


def _record(vid: str, ecosystem: str, name: str, fixed: list[str], reponame: str | None) -> OSVRecord:
    events = [OSVEvent(introduced="0"), *(OSVEvent(fixed=v) for v in fixed)]
    return OSVRecord(
        id=vid,
        affected=[
            OSVAffected(
                package=OSVPackage(ecosystem=ecosystem, name=name),
                ranges=[OSVRange(type="ECOSYSTEM", events=events)],
            )
        ],
        database_specific={"source": SOURCE, "repository": reponame},
    )
