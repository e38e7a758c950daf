"""The gate: does a scan pass? One code path for the CLI (`--fail-on`, `--policy`) and the Lambda
(`LIFEGUARD_POLICY`); the verdict and every reason are kept on the scan summary.

A policy file (docs/POLICY.md) is YAML or JSON: the rules at the top level are the default policy,
`repositories:` lists overrides selected by a glob on the repository name. Every matching override
applies, in file order, on top of the default; a later one replaces the keys it sets (a map or a
list is replaced whole, never merged). Unknown keys are an error, so a typo never silently turns a
rule off.

Pure: no AWS, no file system. The edges read the text (`load_policy(text, origin)`)."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.errors import InputError
from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan, Package, Severity, Vulnerability
from chalicelib.vulndb.versions import compare

#: items named in one reason before "and N more": reasons stay one readable line
MAX_LISTED = 5
#: keys people write for a rule that has another name here
_HINTS = {
    "max_severity": "fail_on",
    "severity": "fail_on",
    "ignore_unfixed": "fixable_only",
    "kev": "allow_known_exploited",
    "secrets": "allow_secrets",
    "licenses": "blocked_licenses",
    "packages": "blocked_packages",
    "os": "allowed_os",
    "overrides": "repositories",
}


class PolicyError(InputError):
    """A policy file that cannot be read or does not follow the format (docs/POLICY.md)."""

    code = "bad_policy"


def _severity(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class BlockedPackage(BaseModel):
    """`name`: a glob on the package name or its source package name (`openssl` blocks `libssl3`),
    case-insensitive. `ecosystem`: a glob on the OSV ecosystem, with or without its release
    (`Debian` matches `Debian:12`). `versions`: comma-separated constraints that must all hold
    (`>=2.0.0, <2.17.1`; operators `< <= > >= == !=`), compared with the ecosystem's own ordering;
    a version that cannot be compared counts as matching (fail closed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    ecosystem: str | None = None
    versions: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("versions")
    @classmethod
    def _constraints_parse(cls, value: str | None) -> str | None:
        if value is not None:
            _constraints(value)
        return value

    def describe(self) -> str:
        text = self.name
        if self.ecosystem:
            text += f" [{self.ecosystem}]"
        if self.versions:
            text += f" {self.versions}"
        return text


_CONSTRAINT = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def _constraints(text: str) -> list[tuple[str, str]]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"empty version constraint {text!r}")
    found = []
    for part in parts:
        if not (m := _CONSTRAINT.match(part)):
            raise ValueError(
                f"bad version constraint {part.strip()!r}: use <, <=, >, >=, == or != and a version"
            )
        found.append((m.group(1), m.group(2)))
    return found


class Policy(BaseModel):
    """The rules. Every rule is optional; a rule that is not set checks nothing. Suppressed
    findings (ignore rules, VEX) never count: the gate sees `ImageScan.vulnerabilities` only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a label shown with the policy's digest on every scan (`baseline@sha256:...`)
    name: str | None = None
    #: fail when a counted vulnerability is at least this severe (UNKNOWN: any vulnerability);
    #: `--fail-on` is this rule
    fail_on: Severity | None = None
    #: `fail_on` and `max_counts` count only vulnerabilities that have a fixed version
    fixable_only: bool = False
    #: at most this many counted vulnerabilities of each severity (each severity on its own)
    max_counts: dict[Severity, int] | None = None
    #: false: any vulnerability on CISA's KEV catalog fails (fixable or not)
    allow_known_exploited: bool = True
    #: false: any secret found fails
    allow_secrets: bool = True
    blocked_packages: list[BlockedPackage] = Field(default_factory=list)
    #: globs on license ids, case-insensitive, matched inside SPDX expressions
    blocked_licenses: list[str] = Field(default_factory=list)
    #: OS family (os-release ID) -> minimum release (VERSION_ID), null for any release; an OS not
    #: in the map fails
    allowed_os: dict[str, str | None] | None = None
    #: with `allowed_os`: whether an image whose OS is unknown (scratch, a static binary) passes
    allow_unknown_os: bool = True

    @field_validator("fail_on", mode="before")
    @classmethod
    def _fail_on_upper(cls, value: object) -> object:
        return _severity(value)

    @field_validator("max_counts", mode="before")
    @classmethod
    def _counts_upper(cls, value: object) -> object:
        return {_severity(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("max_counts")
    @classmethod
    def _counts_not_negative(cls, value: dict[Severity, int] | None) -> dict[Severity, int] | None:
        for severity, count in (value or {}).items():
            if count < 0:
                raise ValueError(f"{severity.value} cannot be negative: {count}")
        return value

    @field_validator("allowed_os", mode="before")
    @classmethod
    def _os_lower(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        for family, release in value.items():
            if isinstance(release, float):  # YAML reads 3.10 as 3.1: only a string is exact
                raise ValueError(f"{family}: quote the release (YAML read it as the number {release})")
        return {str(k).lower(): None if v is None else str(v) for k, v in value.items()}

    @field_validator("allowed_os")
    @classmethod
    def _os_releases_parse(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        for family, release in (value or {}).items():
            if release is not None and _release_key(release) is None:
                raise ValueError(f"{family}: {release!r} is not a release number like 12 or 3.19")
        return value

    def rules(self) -> dict[str, Any]:
        """The rules that are set (what the digest covers), in JSON form."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"name"})

    def identity(self) -> str | None:
        """`[name@]sha256:<16 hex>` of the rules that are set: which policy decided, stored with
        each scan. None for an empty policy (no rule set: the gate passes)."""
        rules = self.rules()
        if not rules and self.name is None:
            return None
        canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"))
        digest = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return f"{self.name}@{digest}" if self.name else digest


class RepositoryPolicy(Policy):
    """An override: `match` is a glob on the repository name (`payments/*`; `*` crosses `/`,
    case-sensitive as repository names are), the other keys replace the default's."""

    match: str = Field(min_length=1)


class PolicyFile(Policy):
    """A whole policy file: the default policy (top-level rules) and the overrides."""

    repositories: list[RepositoryPolicy] = Field(default_factory=list)


@dataclass(frozen=True)
class GateDecision:
    verdict: Literal["pass", "fail"]
    reasons: list[str]
    #: `Policy.identity()` of the policy that decided; None when no rule was set
    policy: str | None = None


# --- loading --------------------------------------------------------------------------------------


def load_policy(text: str, origin: str) -> PolicyFile:
    """Parse a policy file (YAML, which JSON is a subset of). Raises PolicyError with one line
    naming `origin` and the problem (the first one found)."""
    import yaml  # deferred: read once per cold start at most, not worth an import at start-up

    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PolicyError(f"{origin}: not valid YAML or JSON{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{origin}: a policy file is a mapping of rules, not a {type(raw).__name__}")
    try:
        return PolicyFile.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{origin}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = error["loc"]
    path = _location(loc)
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        known = [*RepositoryPolicy.model_fields, "repositories"]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        suggestion = _HINTS.get(key) or (close[0] if close else None)
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        return f"unknown key {path!r}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def _location(loc: Sequence[int | str]) -> str:
    """`repositories[0].max_counts.HIGH`, from pydantic's location (which may also name the
    validator or dict part it was in, e.g. `function-before[...]`, `[key]`: dropped)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" in part:
            continue
        else:
            text += f".{part}" if text else part
    return text


def policy_for(policy: PolicyFile, repository: str | None) -> Policy:
    """The effective policy for `repository`: the default, then every override whose `match`
    globs the repository, in file order, each replacing the keys it sets. No repository (a local
    file or directory scan): the default alone."""
    merged = policy.model_dump(exclude_unset=True, exclude={"repositories"})
    for override in policy.repositories:
        if repository is not None and fnmatchcase(repository, override.match):
            merged.update(override.model_dump(exclude_unset=True, exclude={"match"}))
    return Policy.model_validate(merged)


def with_fail_on(policy: Policy, fail_on: Severity | None) -> Policy:
    """`--fail-on` on top of `--policy`: the stricter of both. `fail_on` becomes the lower
    severity of the two; when `--fail-on` is given the combined gate counts every vulnerability
    (`--fail-on` counts unfixed ones, so the file's `fixable_only` no longer applies; use
    `--ignore-unfixed` to drop unfixed findings instead). The other rules are the file's."""
    if fail_on is None:
        return policy
    current = policy.fail_on
    lowest = fail_on if current is None or fail_on.rank < current.rank else current
    merged = policy.model_dump(exclude_unset=True)
    merged.update(fail_on=lowest)
    if "fixable_only" in merged:
        merged["fixable_only"] = False
    return Policy.model_validate(merged)


# --- the decision ---------------------------------------------------------------------------------


def evaluate(scan: ImageScan, policy: Policy) -> GateDecision:
    """The verdict and one reason per failed rule, each `<rule>: <what failed>`, in a fixed rule
    order (fail_on, max_counts, allow_known_exploited, allow_secrets, blocked_packages,
    blocked_licenses, allowed_os)."""
    reasons = [
        *_fail_on(scan, policy),
        *_max_counts(scan, policy),
        *_known_exploited(scan, policy),
        *_secrets(scan, policy),
        *_blocked_packages(scan, policy),
        *_blocked_licenses(scan, policy),
        *_allowed_os(scan, policy),
    ]
    return GateDecision("fail" if reasons else "pass", reasons, policy.identity())


def _counted(scan: ImageScan, policy: Policy) -> list[Vulnerability]:
    return [v for v in scan.vulnerabilities if v.fixed_version or not policy.fixable_only]


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _fail_on(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if policy.fail_on is None:
        return
    threshold = policy.fail_on.rank
    counted = [v for v in _counted(scan, policy) if v.severity.rank >= threshold]
    if counted:
        per = {s: sum(1 for v in counted if v.severity is s) for s in SEVERITIES_WORST_FIRST}
        detail = ", ".join(f"{s.value}: {n}" for s, n in per.items() if n)
        fixable = "fixable " if policy.fixable_only else ""
        yield (
            f"fail_on: {len(counted)} {fixable}vulnerabilities at or above {policy.fail_on.value} ({detail})"
        )


def _max_counts(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if not policy.max_counts:
        return
    counted = _counted(scan, policy)
    fixable = "fixable " if policy.fixable_only else ""
    for severity in SEVERITIES_WORST_FIRST:
        limit = policy.max_counts.get(severity)
        found = sum(1 for v in counted if v.severity is severity)
        if limit is not None and found > limit:
            yield f"max_counts: {found} {fixable}{severity.value} vulnerabilities, at most {limit} allowed"


def _known_exploited(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if policy.allow_known_exploited:
        return
    exploited: dict[str, list[str]] = {}
    for vuln in scan.vulnerabilities:
        if vuln.known_exploited:
            exploited.setdefault(vuln.id, []).append(vuln.package)
    if exploited:
        count = sum(len(p) for p in exploited.values())
        items = [f"{vid} in {', '.join(sorted(set(pkgs)))}" for vid, pkgs in sorted(exploited.items())]
        yield f"allow_known_exploited: {count} known-exploited vulnerabilities ({_listed(items)})"


def _secrets(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if policy.allow_secrets or not scan.secrets:
        return
    items = sorted({f"{s.rule_id} in {s.path}" for s in scan.secrets})
    noun = "secret" if len(scan.secrets) == 1 else "secrets"
    yield f"allow_secrets: {len(scan.secrets)} {noun} found ({_listed(items)})"


def _blocked_packages(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if not policy.blocked_packages:
        return
    hits: list[str] = []
    for package in _unique_packages(scan.packages):
        rule = next((r for r in policy.blocked_packages if package_blocked(package, r)), None)
        if rule is not None:
            hits.append(f"{package.name} {package.version} ({package.ecosystem}) by {rule.describe()}")
    if hits:
        noun = "package" if len(hits) == 1 else "packages"
        yield f"blocked_packages: {len(hits)} blocked {noun}: {_listed(hits)}"


def _unique_packages(packages: Iterable[Package]) -> list[Package]:
    """One entry per (name, version, ecosystem): a package found at two paths is one finding."""
    seen: dict[tuple[str, str, str], Package] = {}
    for package in packages:
        seen.setdefault((package.name, package.version, package.ecosystem), package)
    return sorted(seen.values(), key=lambda p: (p.name, p.version, p.ecosystem))


def package_blocked(package: Package, rule: BlockedPackage) -> bool:
    """Whether `rule` matches `package` (see `BlockedPackage`). Matched on the source name, the
    version compared is the source version."""
    if rule.ecosystem is not None:
        base = package.ecosystem.split(":", 1)[0]
        pattern = rule.ecosystem.lower()
        if not (fnmatchcase(package.ecosystem.lower(), pattern) or fnmatchcase(base.lower(), pattern)):
            return False
    pattern = rule.name.lower()
    candidates = [(package.name, package.version)]
    if package.source_name:
        candidates.append((package.source_name, package.source_version or package.version))
    for name, version in candidates:
        if fnmatchcase(name.lower(), pattern) and _in_versions(package.ecosystem, version, rule.versions):
            return True
    return False


_OPERATORS = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
}


def _in_versions(ecosystem: str, version: str, spec: str | None) -> bool:
    if spec is None:
        return True
    for operator, bound in _constraints(spec):
        try:
            result = compare(ecosystem, version, bound)
        except ValueError:
            return True  # not comparable: fail closed
        if not _OPERATORS[operator](result):
            return False
    return True


def _blocked_licenses(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if not policy.blocked_licenses:
        return
    patterns = [p.lower() for p in policy.blocked_licenses]
    hits: list[str] = []
    for package in _unique_packages(scan.packages):
        blocked = [text for text in package.licenses if license_blocked(text, patterns)]
        if blocked:
            hits.append(f"{package.name} {package.version} ({' AND '.join(blocked)})")
    if hits:
        noun = "package" if len(hits) == 1 else "packages"
        yield f"blocked_licenses: {len(hits)} {noun} with a blocked license: {_listed(hits)}"


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def license_blocked(text: str, patterns: Sequence[str]) -> bool:
    """Whether one declared license value is blocked by `patterns` (lower-case globs).

    An SPDX expression is evaluated: `A OR B` is blocked only when both are (the licensee may
    choose the other one), `A AND B` when either is, `A WITH exception` when `A` is or the whole
    `A WITH exception` is (so `GPL-2.0-only` also blocks it with the Classpath exception; block
    `GPL-2.0-only WITH *` to be explicit). A value that is not an SPDX expression (free text) is
    matched as a whole."""
    tokens = _TOKEN.findall(text)
    try:
        parser = _ExpressionParser(tokens, patterns)
        blocked = parser.expression()
        if parser.position != len(tokens):
            raise ValueError("trailing tokens")
        return blocked
    except ValueError:
        return _license_matches(text.strip(), patterns)


def _license_matches(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(fnmatchcase(lowered, p) for p in patterns)


class _ExpressionParser:
    """Recursive descent over SPDX expression tokens; each node evaluates to "blocked". OR binds
    looser than AND, AND looser than WITH (SPDX precedence)."""

    def __init__(self, tokens: list[str], patterns: Sequence[str]) -> None:
        self.tokens = tokens
        self.patterns = patterns
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position].upper() if self.position < len(self.tokens) else None

    def _take(self) -> str:
        if self.position >= len(self.tokens):
            raise ValueError("unexpected end")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self) -> bool:
        alternatives = [self._conjunction()]
        while self._peek() == "OR":
            self._take()
            alternatives.append(self._conjunction())
        return all(alternatives)

    def _conjunction(self) -> bool:
        parts = [self._term()]
        while self._peek() == "AND":
            self._take()
            parts.append(self._term())
        return any(parts)

    def _term(self) -> bool:
        word = self._take()
        if word == "(":
            inner = self.expression()
            if self._take() != ")":
                raise ValueError("unbalanced parentheses")
            return inner
        if word == ")" or word.upper() in {"AND", "OR", "WITH"}:
            raise ValueError(f"unexpected {word}")
        blocked = _license_matches(word, self.patterns)
        if self._peek() == "WITH":
            self._take()
            exception = self._take()
            if exception in {"(", ")"} or exception.upper() in {"AND", "OR", "WITH"}:
                raise ValueError("WITH needs an exception id")
            blocked = blocked or _license_matches(f"{word} WITH {exception}", self.patterns)
        return blocked


def _release_key(release: str) -> tuple[int, ...] | None:
    """`3.19.1` -> (3, 19, 1); None when it is not dot-separated numbers (`rolling`, `bookworm`)."""
    parts = release.strip().split(".")
    if not all(p.isdigit() for p in parts):
        return None
    key = [int(p) for p in parts]
    while len(key) > 1 and key[-1] == 0:  # 3.19.0 == 3.19
        key.pop()
    return tuple(key)


def _allowed_os(scan: ImageScan, policy: Policy) -> Iterator[str]:
    if policy.allowed_os is None:
        return
    os_info = scan.image.os
    if not os_info.family:
        if not policy.allow_unknown_os:
            yield "allowed_os: the image's OS is unknown and allow_unknown_os is false"
        return
    family = os_info.family.lower()
    if family not in policy.allowed_os:
        allowed = ", ".join(sorted(policy.allowed_os)) or "none"
        yield f"allowed_os: {family} is not an allowed OS (allowed: {allowed})"
        return
    minimum = policy.allowed_os[family]
    if minimum is None:
        return
    version = os_info.version
    installed = _release_key(version) if version else None
    if installed is None:
        release = version or "unknown"
        yield f"allowed_os: {family} release {release} cannot be compared with the minimum {minimum}"
    elif installed < (_release_key(minimum) or ()):
        yield f"allowed_os: {family} {version} is older than the minimum release {minimum}"


__all__ = [
    "BlockedPackage",
    "GateDecision",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "RepositoryPolicy",
    "evaluate",
    "license_blocked",
    "load_policy",
    "package_blocked",
    "policy_for",
    "with_fail_on",
]
