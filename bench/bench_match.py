"""Benchmark 4: `match_packages` of 2,000 packages (this machine's 735 Debian packages, the
project's PyPI distributions, npm's modules, topped up with Alpine/PyPI/npm ones) against an index
of 24,000 generated OSV records (Debian:12/11, PyPI, npm, Alpine:v3.19) that speak about most of
them. Target: < 0.1 s, warm and cold.

- warm: the same process matched before (version parse caches and SQLite pages warm), best of N;
- cold-parse: a fresh interpreter, index just opened, the first call (every version string parsed
  for the first time), best of N processes.

Baseline: `VulnIndex.lookup_many` for the same packages' keys, i.e. the SQLite lookups and row
decoding alone, the part any matcher must pay before comparing a single version; the ratio says
how much the range evaluation and finding assembly add on top."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import PYTHON, REPO, Context, Result, bench_env, say
from bench.feed import MATCH_FEED_RECORDS, match_db, match_packages_list

TARGET_SECONDS = 0.1


def _keys() -> list[tuple[str, str, str]]:
    from chalicelib.vulndb.matcher import match_key

    keys: list[tuple[str, str, str]] = []
    for pkg in match_packages_list():
        key = match_key(pkg)
        if key is not None:
            keys.append(key[:3])
    return keys


def _child() -> None:
    """Run in a fresh interpreter: time the first match and the first lookups (cold parse)."""
    from chalicelib.vulndb.index import VulnIndex
    from chalicelib.vulndb.matcher import match_packages

    packages = match_packages_list()
    index = VulnIndex(match_db())
    start = time.perf_counter()
    findings = match_packages(packages, index)
    cold = time.perf_counter() - start
    print(json.dumps({"cold": cold, "findings": len(findings)}))


def _cold_once() -> tuple[float, int]:
    proc = subprocess.run(
        [PYTHON, "-m", "bench.bench_match", "--child"],
        cwd=REPO,
        env=bench_env(),
        capture_output=True,
        check=True,
    )
    data = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return float(data["cold"]), int(data["findings"])


def run(ctx: Context) -> list[Result]:
    from chalicelib.vulndb.index import VulnIndex
    from chalicelib.vulndb.matcher import match_packages

    db = match_db()
    packages = match_packages_list()
    keys = _keys()
    index = VulnIndex(db)
    rows = index.lookup_many(keys)
    candidates = sum(len(found) for found in rows.values())
    findings = match_packages(packages, index)
    say(
        f"  {len(packages)} packages, {len(set(keys))} lookup keys, {len(rows)} with records, "
        f"{candidates} candidate rows, {len(findings)} findings ({MATCH_FEED_RECORDS:,}-record feed)"
    )
    repeats = max(ctx.runs, 5)
    warm, lookups = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        index.lookup_many(keys)
        lookups.append(time.perf_counter() - start)
        start = time.perf_counter()
        match_packages(packages, index)
        warm.append(time.perf_counter() - start)
    cold_runs = [_cold_once()[0] for _ in range(ctx.runs)]
    index.close()
    lookup, warm_best, cold_best = min(lookups), min(warm), min(cold_runs)
    say(
        f"  lookup_many {lookup * 1000:.1f} ms, warm match {warm_best * 1000:.1f} ms, "
        f"cold {cold_best * 1000:.1f} ms"
    )
    shape = f"{len(packages)} pkgs x {MATCH_FEED_RECORDS // 1000}k records"
    return [
        Result(
            bench="match",
            metric=f"match_packages warm ({shape})",
            value=warm_best,
            unit="s",
            baseline="lookup_many (SQLite + row decoding)",
            baseline_value=lookup,
            ratio=warm_best / lookup,
            ratio_label="match / lookups",
            target=f"< {TARGET_SECONDS} s",
            met=warm_best < TARGET_SECONDS,
            notes=[f"{candidates} candidate rows, {len(findings)} findings"],
        ),
        Result(
            bench="match",
            metric=f"match_packages cold-parse, fresh process ({shape})",
            value=cold_best,
            unit="s",
            baseline="warm match, same packages",
            baseline_value=warm_best,
            ratio=cold_best / warm_best,
            ratio_label="cold / warm",
            target=f"< {TARGET_SECONDS} s",
            met=cold_best < TARGET_SECONDS,
        ),
    ]


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child()
