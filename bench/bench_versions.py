"""Benchmark of chalicelib.vulndb.versions: the matcher's pattern of use, a scan of 2,000
installed packages each checked against a few range events (`introduced`/`fixed`).

Run: `.venv/bin/python -m bench.bench_versions`. Prints seconds for a cold run (every string
parsed) and a warm run (parses cached), per ecosystem."""

import random
import time

from chalicelib.vulndb.versions import comparator

PACKAGES = 2000
EVENTS_PER_PACKAGE = 4


def _versions(ecosystem: str, rng: random.Random) -> list[str]:
    def one() -> str:
        a, b, c = rng.randrange(10), rng.randrange(30), rng.randrange(100)
        if ecosystem.startswith("Debian"):
            return f"{a}.{b}.{c}-{rng.randrange(5)}+deb12u{rng.randrange(9)}"
        if ecosystem.startswith("Alpine"):
            return f"{a}.{b}.{c}-r{rng.randrange(9)}"
        if ecosystem == "Red Hat":
            return f"{rng.randrange(2)}:{a}.{b}.{c}-{rng.randrange(300)}.el9_{rng.randrange(5)}"
        if ecosystem == "Maven":
            return f"{a}.{b}.{c}" + rng.choice(["", ".Final", "-SNAPSHOT", "-rc1"])
        return f"{a}.{b}.{c}"

    return [one() for _ in range(PACKAGES * (1 + EVENTS_PER_PACKAGE))]


def _match(ecosystem: str, versions: list[str]) -> float:
    cmp = comparator(ecosystem)
    start = time.perf_counter()
    hits = 0
    for index in range(PACKAGES):
        installed = cmp.key(versions[index])
        for event in versions[
            PACKAGES + index * EVENTS_PER_PACKAGE : PACKAGES + (index + 1) * EVENTS_PER_PACKAGE
        ]:
            if installed < cmp.key(event):
                hits += 1
    return time.perf_counter() - start


def main() -> None:
    rng = random.Random(7)
    for ecosystem in ("Debian:12", "Alpine:v3.19", "Red Hat", "PyPI", "npm", "Go", "Maven"):
        versions = _versions(ecosystem, rng)
        cold = _match(ecosystem, versions)
        warm = _match(ecosystem, versions)
        shape = f"{PACKAGES} packages x {EVENTS_PER_PACKAGE} events"
        print(f"{ecosystem:14} {shape}: cold {cold:.3f}s warm {warm:.3f}s")


if __name__ == "__main__":
    main()
