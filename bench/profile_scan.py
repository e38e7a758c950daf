"""Where the time goes when a target is missed: cProfile of the whole scan process on the
benchmark image, and of `match_packages` on the match benchmark's inputs. Printed, top N by own
time (tottime) and by cumulative time, so a report can name the hotspots.

Why cProfile and not a sampler: it ships with Python (py-spy would be one more tool to install);
its per-call overhead inflates call-heavy code, so read the ranking, not the absolute seconds."""

from __future__ import annotations

import cProfile
import io
import pstats
import subprocess
import tempfile
from pathlib import Path

from bench.common import PYTHON, bench_env, say
from bench.feed import match_db, match_packages_list
from bench.image_builder import MEDIUM, ensure_image

TOP = 18


def _print_stats(stats: pstats.Stats, title: str) -> None:
    for key, label in (("tottime", "own time"), ("cumulative", "cumulative time")):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(key).print_stats(TOP)
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        say(f"  {title}, top {TOP} by {label}:")
        for line in lines[start : start + TOP + 1]:
            say("    " + line.replace(str(Path.cwd()) + "/", ""))


def profile_scan() -> None:
    image = ensure_image(MEDIUM)
    with tempfile.TemporaryDirectory(prefix="lifeguard-prof-") as tmp:
        out = Path(tmp) / "scan.prof"
        argv = [PYTHON, "-m", "cProfile", "-o", str(out), "-m", "chalicelib", "scan", f"oci:{image.layout}"]
        argv += ["--db", str(match_db()), "--format", "json"]
        subprocess.run(argv, env=bench_env(), stdout=subprocess.DEVNULL, check=False)
        stats = pstats.Stats(str(out))
        say(f"  cProfile of the whole scan process: {stats.total_tt:.2f} s profiled")  # type: ignore[attr-defined]
        _print_stats(stats, "scan")


def profile_match() -> None:
    from chalicelib.vulndb.index import VulnIndex
    from chalicelib.vulndb.matcher import match_packages

    packages = match_packages_list()
    index = VulnIndex(match_db())
    match_packages(packages, index)  # warm: profile the steady state
    profiler = cProfile.Profile()
    profiler.enable()
    match_packages(packages, index)
    profiler.disable()
    index.close()
    stats = pstats.Stats(profiler)
    say(f"  cProfile of a warm match_packages: {stats.total_tt:.2f} s profiled")  # type: ignore[attr-defined]
    _print_stats(stats, "match")
