"""`python -m bench [NAME ...] [--runs N]`: run the benchmarks (all by default), then print one
summary table and save it as `.bench-cache/results.json`.

When the scan or the match misses its target, a cProfile of it is printed afterwards (unless
`--no-profile`), so the report can name the hotspots."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict

from bench import bench_dbbuild, bench_import, bench_match, bench_memory, bench_parity, bench_scan, bench_syft
from bench.common import CACHE, Context, Result, fmt, machine, say, skipped

Runner = Callable[[Context], list[Result]]


def _versions(ctx: Context) -> list[Result]:
    from bench import bench_versions

    bench_versions.main()
    return []


def _walker(ctx: Context) -> list[Result]:
    """bench_walker reads extra layouts from sys.argv: give it the benchmark image, not our args."""
    from bench import bench_walker
    from bench.image_builder import MEDIUM, ensure_image

    saved = sys.argv
    sys.argv = [saved[0], str(ensure_image(MEDIUM).layout)]
    try:
        bench_walker.main()
    finally:
        sys.argv = saved
    return []


def _admission(ctx: Context) -> list[Result]:
    from bench import bench_admission

    return bench_admission.run(ctx)


#: name -> (runner, in the default run, one line)
BENCHMARKS: dict[str, tuple[Runner, bool, str]] = {
    "scan": (bench_scan.run, True, "whole scan process vs gzip -dc of the layers (>= 200 MB image)"),
    "syft": (bench_syft.run, True, "Syft catalog time / Lifeguard scan time, same image"),
    "parity": (bench_parity.run, True, "Lifeguard's packages vs Syft's, per type, real-package images"),
    "memory": (bench_memory.run, True, "peak RSS of the scan, 240 MiB and ~2x image"),
    "match": (bench_match.run, True, "match_packages, 2,000 packages vs 24k-record index"),
    "db": (bench_dbbuild.run, True, "db build of 200k OSV records; lookup latency"),
    "import": (bench_import.run, True, "Lambda cold import of app.py"),
    "versions": (_versions, True, "version comparators (bench/bench_versions.py)"),
    "admission": (_admission, True, "EKS admission webhook answer time, moto server, 3-container pod"),
    "walker": (_walker, False, "walker in-process vs gzip (bench/bench_walker.py; slow, opt-in)"),
}


def _no_nan(value: object) -> object:
    """NaN (a skipped benchmark's value) is not JSON: write null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _table(results: list[Result]) -> str:
    header = ("benchmark", "metric", "measured", "baseline", "ratio", "target", "status")
    rows = [header]
    for r in results:
        baseline = f"{r.baseline}: {fmt(r.baseline_value, r.unit)}" if r.baseline else ""
        ratio = f"{r.ratio:.2f}x ({r.ratio_label})" if r.ratio is not None else ""
        rows.append((r.bench, r.metric, fmt(r.value, r.unit), baseline, ratio, r.target, r.status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        for note in r.notes:
            lines.append(f"  [{r.bench}] {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(BENCHMARKS)}, profile")
    parser.add_argument("--runs", type=int, default=3, help="best of N for the timed processes (default 3)")
    parser.add_argument("--no-profile", action="store_true", help="never print cProfile hotspots")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS and n != "profile"]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    names = args.names or [name for name, (_, default, _) in BENCHMARKS.items() if default]
    ctx = Context(runs=max(1, args.runs))
    say(f"Lifeguard benchmarks on {machine()}")
    results: list[Result] = []
    started = time.perf_counter()
    for name in names:
        if name == "profile":
            continue
        runner, _, about = BENCHMARKS[name]
        say(f"\n== {name}: {about}")
        t0 = time.perf_counter()
        try:
            results += runner(ctx)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            say(f"  FAILED: {type(exc).__name__}: {exc}")
            results.append(skipped(name, about, f"failed: {type(exc).__name__}: {exc}"))
        say(f"  ({time.perf_counter() - t0:.0f} s)")
    missed = {r.bench for r in results if r.met is False}
    want_profile = "profile" in args.names or (not args.no_profile and missed & {"scan", "match"})
    if want_profile:
        from bench import profile_scan

        if "profile" in args.names or "scan" in missed:
            say("\n== profile: scan")
            profile_scan.profile_scan()
        if "profile" in args.names or "match" in missed:
            say("\n== profile: match")
            profile_scan.profile_match()
    say(f"\n== summary ({machine()}; {time.perf_counter() - started:.0f} s in all)\n")
    say(_table(results))
    if results:
        CACHE.mkdir(parents=True, exist_ok=True)
        rows = [{k: _no_nan(v) for k, v in asdict(r).items()} for r in results]
        doc = {"machine": machine(), "results": rows}
        (CACHE / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
