"""Benchmark 5: `lifeguard db build` over a generated OSV `all.zip` of 200,000 records (whole
process, records per second), and lookup latency on the index it builds.

Baselines, measured in the same run:
- build: reading the same zip and `json.loads` of every record, in process: the floor any
  compiler of this feed pays before validating or writing anything;
- lookup: a bare SQLite probe on the same index (`SELECT count(*) ... WHERE family, release, name`),
  against `VulnIndex.lookup_many([key])` (the join with `vulns` and row decoding on top)."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import PYTHON, Context, Result, run_once, say
from bench.feed import BIG_FEED_RECORDS, ensure_feed, match_packages_list, targets_of

LOOKUPS = 2000


def _parse_floor(feed: Path) -> tuple[float, int]:
    start = time.perf_counter()
    count = 0
    with zipfile.ZipFile(feed) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".json"):
                json.loads(archive.read(info))
                count += 1
    return time.perf_counter() - start, count


def _lookup_keys(db: Path) -> list[tuple[str, str, str]]:
    """Half keys of installed packages (most present), half random keys of the index itself, a
    few absent: the mix a scan produces."""
    rng = random.Random(5)
    from chalicelib.vulndb.ecosystems import normalise_name, split_ecosystem

    keys = []
    for target in targets_of(match_packages_list()):
        family, release = split_ecosystem(target.ecosystem)
        keys.append((family, release, normalise_name(family, target.name)))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT DISTINCT family, release, name FROM affected").fetchall()
    conn.close()
    keys = rng.sample(keys, min(LOOKUPS // 2, len(keys)))
    keys += [(str(f), str(r), str(n)) for f, r, n in rng.sample(rows, LOOKUPS - len(keys))]
    rng.shuffle(keys)
    return keys


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


def _lookup_latency(db: Path, keys: list[tuple[str, str, str]]) -> tuple[list[float], list[float]]:
    from chalicelib.vulndb.index import VulnIndex

    index = VulnIndex(db)
    probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sql = "SELECT count(*) FROM affected WHERE family = ? AND release = ? AND name = ?"
    ours, bare = [], []
    for key in keys[:100]:  # warm the page cache for both
        index.lookup_many([key])
        probe.execute(sql, key).fetchone()
    for key in keys:
        start = time.perf_counter()
        index.lookup_many([key])
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        probe.execute(sql, key).fetchone()
        bare.append(time.perf_counter() - start)
    index.close()
    probe.close()
    return ours, bare


def run(ctx: Context) -> list[Result]:
    feed = ensure_feed("big", BIG_FEED_RECORDS, seed=7)
    say(f"  feed: {feed.name}, {feed.stat().st_size / 2**20:.0f} MiB zip")
    with tempfile.TemporaryDirectory(prefix="lifeguard-bench-") as tmp:
        db = Path(tmp) / "vulndb.sqlite"
        argv = [PYTHON, "-m", "chalicelib", "db", "build", "--from", str(feed), "--out", str(db)]
        build = run_once(argv)
        parse, records = _parse_floor(feed)
        say(
            f"  db build {build:.1f} s ({records / build:,.0f} records/s), "
            f"json.loads floor {parse:.1f} s, index {db.stat().st_size / 2**20:.0f} MiB"
        )
        keys = _lookup_keys(db)
        ours, bare = _lookup_latency(db, keys)
    p50, p99, mean = _percentile(ours, 0.5), _percentile(ours, 0.99), statistics.fmean(ours)
    bare50 = _percentile(bare, 0.5)
    say(
        f"  lookup p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us; "
        f"bare SQLite probe p50 {bare50 * 1e6:.0f} us"
    )
    return [
        Result(
            bench="db build",
            metric=f"db build, {records:,} OSV records (whole process)",
            value=records / build,
            unit="rec/s",
            baseline="zip read + json.loads only",
            baseline_value=records / parse,
            ratio=build / parse,
            ratio_label="build / parse time",
            notes=[f"{build:.1f} s total"],
        ),
        Result(
            bench="db lookup",
            metric=f"lookup latency p50, 1 key, {records // 1000}k-record index",
            value=p50 * 1e6,
            unit="us",
            baseline="bare SQLite index probe p50",
            baseline_value=bare50 * 1e6,
            ratio=p50 / bare50,
            ratio_label="lookup_many / probe",
            notes=[f"p99 {p99 * 1e6:.0f} us, mean {mean * 1e6:.0f} us over {len(keys)} keys"],
        ),
    ]
