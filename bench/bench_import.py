"""Benchmark 6: the Lambda cold import, `python -c "import app"` from the repository root
(`POWERTOOLS_TRACE_DISABLED=true`, as locally), wall time minus `python -c "pass"`, best of 5 each.
Target: < 0.8 s. Also `python -X importtime` top offenders, so a regression names its culprit.

Baseline: the bare interpreter start (`python -c pass`); the ratio is import cost over it.

Two bytecode situations, because a Lambda zip decides which one it gets:
- warm bytecode (the headline, against the target): every module has its .pyc, as in a package
  built with `compileall` or on a developer machine after the first start;
- no bytecode for the app and its dependencies: the standard library has its .pyc (the Lambda
  runtime ships them) but the project and site-packages compile from source on every cold start,
  as they do from a zip of plain wheels (Lambda's /var/task is read-only, nothing gets cached)."""

from __future__ import annotations

import re
import subprocess
import sysconfig

from bench.common import CACHE, PYTHON, REPO, Context, Result, bench_env, best_of, run_once, say

TARGET_SECONDS = 0.8
RUNS = 5
_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
_NOT_STDLIB = r"[/\\](test|idlelib|tkinter|lib2to3|turtledemo|ensurepip|site-packages)[/\\]"
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+\d+\s+\|\s+(\S+)")


def importtime_offenders(top: int = 12) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """From `-X importtime`: (distributions by the summed self time of their modules, single
    modules by self time), microseconds, largest first. Summing self time per top-level package
    names the library to blame even when it is imported deep inside another one."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", "import app"],
        cwd=REPO,
        env=bench_env(_ENV),
        capture_output=True,
        check=True,
    )
    per_package: dict[str, int] = {}
    own: list[tuple[str, int]] = []
    for line in proc.stderr.decode(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        self_us, name = int(match.group(1)), match.group(2)
        own.append((name, self_us))
        package = name.split(".", 1)[0]
        per_package[package] = per_package.get(package, 0) + self_us
    own.sort(key=lambda item: -item[1])
    return sorted(per_package.items(), key=lambda item: -item[1])[:top], own[:top]


def stdlib_only_env() -> dict[str, str]:
    """An environment whose bytecode cache holds the standard library only, and is never written:
    everything else compiles from source on each start (built once into .bench-cache/)."""
    prefix = CACHE / "pycache-stdlib-only"
    env = bench_env({**_ENV, "PYTHONPYCACHEPREFIX": str(prefix)})
    stamp = prefix / ".complete"
    if not stamp.is_file():
        say("  compiling the standard library's bytecode (once) ...")
        stdlib = sysconfig.get_paths()["stdlib"]
        argv = [PYTHON, "-m", "compileall", "-q", "-j", "0", "-x", _NOT_STDLIB, stdlib]
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        stamp.touch()
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(ctx: Context) -> list[Result]:
    env = bench_env(_ENV)
    runs = max(ctx.runs, RUNS)
    run_once([PYTHON, "-c", "import app"], env=env)  # warm .pyc and the page cache
    bare, _ = best_of(runs, lambda: run_once([PYTHON, "-c", "pass"], env=env))
    full, full_all = best_of(runs, lambda: run_once([PYTHON, "-c", "import app"], env=env))
    net = full - bare
    say(
        f"  python -c pass {bare * 1000:.0f} ms; "
        f"import app {', '.join(f'{t * 1000:.0f}' for t in full_all)} ms"
    )
    packages, own = importtime_offenders()
    say("  -X importtime, top-level packages by the self time of their modules:")
    for name, us in packages:
        say(f"    {us / 1000:8.1f} ms  {name}")
    say("  -X importtime, modules by self time:")
    for name, us in own[:8]:
        say(f"    {us / 1000:8.1f} ms  {name}")
    cold_env = stdlib_only_env()
    bare_cold, _ = best_of(runs, lambda: run_once([PYTHON, "-c", "pass"], env=cold_env))
    no_pyc, no_pyc_all = best_of(runs, lambda: run_once([PYTHON, "-c", "import app"], env=cold_env))
    net_no_pyc = no_pyc - bare_cold
    runs_ms = ", ".join(f"{t * 1000:.0f}" for t in no_pyc_all)
    say(f"  without bytecode for app + site-packages: import app {runs_ms} ms")
    heaviest = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in packages[:6])
    return [
        Result(
            bench="cold import",
            metric="Lambda cold import: import app - python -c pass (warm .pyc)",
            value=net,
            unit="s",
            baseline="python -c pass",
            baseline_value=bare,
            ratio=net / bare,
            ratio_label="import / interpreter start",
            target=f"< {TARGET_SECONDS} s",
            met=net < TARGET_SECONDS,
            notes=[f"heaviest packages (-X importtime self time): {heaviest}"],
        ),
        Result(
            bench="cold import",
            metric="same, no .pyc for app + site-packages (zip of plain wheels)",
            value=net_no_pyc,
            unit="s",
            baseline="same import with warm .pyc",
            baseline_value=net,
            ratio=net_no_pyc / net,
            ratio_label="no pyc / warm pyc",
            target=f"< {TARGET_SECONDS} s",
            met=net_no_pyc < TARGET_SECONDS,
        ),
    ]
