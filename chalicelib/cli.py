"""The command line (contract): `scan`, `db build`, `db update`, `sign`, `verify`, and `demo`
(what `make run` starts).

Exit codes: 0 scanned and passed the gate, 1 scanned and failed it, 2 could not scan (one clear line
on stderr)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.errors import LifeguardError
from chalicelib.models import Severity
from chalicelib.render import FORMATS, render

if TYPE_CHECKING:
    from chalicelib.image.model import ImageSource
    from chalicelib.policy import Policy, PolicyFile
    from chalicelib.suppress import SuppressionRules

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
log = logging.getLogger("lifeguard")


def default_db_path() -> Path:
    return Path(os.environ.get("LIFEGUARD_DB") or Path.home() / ".cache" / "lifeguard" / "vulndb.sqlite")


def _severity(value: str) -> Severity:
    try:
        return Severity(value.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid severity {value!r}: choose from {', '.join(s.value for s in Severity)}"
        ) from None


def _layer_count(text: str) -> int:
    """A number of layers: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of layers: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a number of layers cannot be negative: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lifeguard", description="Container security for AWS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="scan an image and match vulnerabilities")
    scan.add_argument(
        "source", help="oci:DIR[:TAG] | docker-archive:FILE | dir:PATH | registry:HOST/REPO[:TAG|@DIGEST]"
    )
    scan.add_argument("--db", type=Path, default=None, help="vulnerability index (default: $LIFEGUARD_DB)")
    scan.add_argument("--format", choices=FORMATS, default="table")
    scan.add_argument("--fail-on", type=_severity, default=None, metavar="SEVERITY")
    scan.add_argument("--ignore-unfixed", action="store_true")
    platforms = scan.add_mutually_exclusive_group()
    platforms.add_argument("--platform", default=None, metavar="OS/ARCH")
    platforms.add_argument("--all-platforms", action="store_true")
    scan.add_argument(
        "--ignore-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="ignore rules (default: ./.lifeguardignore when it exists); see docs/SUPPRESSION.md",
    )
    scan.add_argument(
        "--vex",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="OpenVEX document (repeatable)",
    )
    scan.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="FILE",
        help="gate policy, YAML or JSON (docs/POLICY.md); combined with --fail-on, the stricter wins",
    )
    scan.add_argument(
        "--secret-skip-base-layers",
        type=_layer_count,
        default=0,
        metavar="N",
        help="do not look for secrets in the N lowest layers (the base image)",
    )

    db = sub.add_parser("db", help="build the vulnerability index")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    build = db_sub.add_parser(
        "build", help="compile feeds (OSV JSON/all.zip, Alpine secdb, CISA KEV) into the SQLite index"
    )
    build.add_argument("--from", dest="sources", type=Path, nargs="+", required=True)
    build.add_argument("--out", type=Path, required=True)
    update = db_sub.add_parser(
        "update", help="download the feeds (OSV exports, Alpine secdb, CISA KEV) into a cache"
    )
    update.add_argument(
        "--ecosystem",
        dest="ecosystems",
        action="append",
        default=None,
        metavar="NAME",
        help="OSV export to fetch, repeatable (default: $LIFEGUARD_OSV_ECOSYSTEMS, else a built-in list)",
    )
    update.add_argument(
        "--kev",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fetch the CISA KEV catalog (default: unless $LIFEGUARD_KEV_URL is 'none')",
    )
    update.add_argument(
        "--alpine-release",
        dest="alpine_releases",
        action="append",
        default=None,
        metavar="RELEASE",
        help="Alpine secdb release to fetch, repeatable, 'none' for no secdb "
        "(default: $LIFEGUARD_ALPINE_RELEASES, else recent releases)",
    )
    update.add_argument(
        "--cache-dir", type=Path, default=None, help="download cache (default: ~/.cache/lifeguard/feeds)"
    )
    update.add_argument("--build", action="store_true", help="build the index from the cache afterwards")
    update.add_argument("--out", type=Path, default=None, help="the index --build writes")
    update.add_argument(
        "--from",
        dest="extra_sources",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="more --build inputs (OSV dirs or files, secdb YAML, a KEV file of your own)",
    )

    sign = sub.add_parser("sign", help="sign an image digest with a KMS key (cosign's format)")
    sign.add_argument("ref", help="registry:HOST/REPO[:TAG|@DIGEST] (prefix optional)")
    sign.add_argument("--key", required=True, help="awskms:///alias/NAME (or key id, key ARN, alias ARN)")
    sign.add_argument("--attest", type=Path, default=None, metavar="SCAN.json", help="attach this scan")
    verify = sub.add_parser("verify", help="check for a valid signature by a key: exit 0 yes, 1 no, 2 error")
    verify.add_argument("ref", help="registry:HOST/REPO[:TAG|@DIGEST] (prefix optional)")
    verify.add_argument("--key", required=True, help="awskms://... URI or a PEM public key file")

    demo = sub.add_parser("demo", help="the local end-to-end demo that `make run` starts")
    demo.add_argument("--port", type=int, default=8000, help="port of the local API")
    demo.add_argument("--no-serve", action="store_true", help="stop after the scan (no API server)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "db" and args.db_command == "update":
            return _db_update(args)
        if args.command in {"sign", "verify"}:
            return _sign_or_verify(args)
        if args.command == "db":
            return _db_build(args)
        from chalicelib.demo import run_demo

        return run_demo(port=args.port, serve=not args.no_serve)
    except LifeguardError as exc:
        print(f"lifeguard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


def _load_suppressions(args: argparse.Namespace) -> SuppressionRules:
    """`--ignore-file`, else `./.lifeguardignore` when present (as Trivy reads `.trivyignore`), and
    every `--vex`. Expired ignore rules are reported on stderr: they no longer apply."""
    from datetime import UTC, datetime

    from chalicelib.suppress import DEFAULT_IGNORE_FILE, load_suppressions

    ignore_file = args.ignore_file
    if ignore_file is None and Path(DEFAULT_IGNORE_FILE).is_file():
        ignore_file = Path(DEFAULT_IGNORE_FILE)
    rules = load_suppressions(ignore_file, args.vex or [])
    for rule in rules.expired(datetime.now(UTC).date()):
        print(
            f"lifeguard: warning: {rule.origin}: the rule for {rule.vulnerability_id} expired on "
            f"{rule.expires}; it no longer applies",
            file=sys.stderr,
        )
    return rules


def _scan(args: argparse.Namespace) -> int:
    from chalicelib.image.layout import parse_source
    from chalicelib.scanner import ScanOptions, scan_source
    from chalicelib.vulndb.index import VulnIndex

    policy = _load_policy(args.policy)
    suppressions = _load_suppressions(args)
    index = VulnIndex(args.db or default_db_path())
    source = parse_source(args.source)
    gate = _gate(policy, args.fail_on, source)
    options = ScanOptions(
        platform=args.platform,
        all_platforms=args.all_platforms,
        ignore_unfixed=args.ignore_unfixed,
        gate=gate,
        suppressions=suppressions,
        secret_skip_layers=args.secret_skip_base_layers,
    )
    scans = scan_source(source, index, options)
    print(render(scans, args.format, as_list=args.all_platforms))
    return EXIT_FAIL if any(s.summary.gate == "fail" for s in scans) else EXIT_PASS


def _load_policy(path: Path | None) -> PolicyFile | None:
    """`--policy FILE`; PolicyError (exit 2, one line naming the file) when it cannot be read or
    is not a valid policy."""
    from chalicelib.policy import PolicyError, load_policy

    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or exc
        raise PolicyError(f"{path}: cannot read the policy file: {problem}") from None
    return load_policy(text, str(path))


def _gate(policy: PolicyFile | None, fail_on: Severity | None, source: ImageSource) -> Policy:
    """The gate of this scan: the policy file's rules for the image's repository (a registry
    source; other sources get the file's default), with `--fail-on` on top (the stricter wins)."""
    from chalicelib.image.reference import Reference
    from chalicelib.policy import Policy, policy_for, with_fail_on

    reference = getattr(source, "reference", None)
    repository = reference.repository if isinstance(reference, Reference) else None
    base = policy_for(policy, repository) if policy is not None else Policy()
    return with_fail_on(base, fail_on)


def _db_update(args: argparse.Namespace) -> int:
    from chalicelib.vulndb.feeds.update import configured_feeds, update_feeds

    if args.build and args.out is None:
        print("lifeguard: error: db update --build needs --out FILE", file=sys.stderr)
        return EXIT_ERROR
    cache_dir = args.cache_dir or Path.home() / ".cache" / "lifeguard" / "feeds"
    plan = configured_feeds(
        os.environ, ecosystems=args.ecosystems, kev_enabled=args.kev, alpine_releases=args.alpine_releases
    )
    update = update_feeds(plan, cache_dir, progress=_progress)
    fetched = sum(r.status != "not_modified" for r in update.results)
    print(f"{cache_dir}: {fetched} downloaded, {len(update.results) - fetched} unchanged", file=sys.stderr)
    if not args.build:
        return EXIT_PASS
    args.sources = update.sources + list(args.extra_sources)
    return _db_build(args)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _db_build(args: argparse.Namespace) -> int:
    from chalicelib.vulndb.index import build_index

    report = build_index(list(args.sources), args.out)
    print(f"wrote {args.out}: {report.records} records, {len(report.rejected)} rejected", file=sys.stderr)
    for problem in report.rejected:
        print(f"lifeguard: warning: rejected {problem}", file=sys.stderr)
    if report.records == 0:
        print("lifeguard: warning: no OSV records found in the inputs: the index is empty", file=sys.stderr)
    return EXIT_PASS


def _sign_or_verify(args: argparse.Namespace) -> int:
    """`sign` / `verify` (chalicelib.signing.commands): 0 signed / verified, 1 not verified."""
    from chalicelib.signing import commands

    if args.command == "sign":
        target, signed = commands.run_sign(args.ref, args.key, args.attest)
        print("\n".join(commands.sign_report(target, signed)))
        return EXIT_PASS
    target, checked, key_name = commands.run_verify(args.ref, args.key)
    print("\n".join(commands.verify_report(target, checked, key_name)))
    return EXIT_PASS if checked.verified else EXIT_FAIL
