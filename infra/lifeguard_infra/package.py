"""The Lambda deployment zip: what `chalice package` leaves unchecked.

Chalice exits 0 even when it could not download a Lambda-compatible wheel (it prints "Could not
install dependencies" and leaves the package out), and it ships no bytecode, so every cold start
compiles every imported module (`/var/task` is read-only). `verify` checks the zip against the
runtime requirements (the whole dependency closure, every file each wheel's RECORD lists, wheel
tags the Lambda platform can load); `add_bytecode` compiles it in place."""

from __future__ import annotations

import compileall
import py_compile
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name

#: the Lambda runtime Chalice targets here: python3.11 on Amazon Linux 2 (glibc 2.26), x86_64
LAMBDA_PYTHON = (3, 11)
LAMBDA_GLIBC = (2, 26)
#: PEP 508 marker values of that runtime (dependencies are resolved for it, not for this machine)
LAMBDA_MARKERS: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "platform_python_implementation": "CPython",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_x86_64$")
_LEGACY_MANYLINUX = {
    "manylinux1_x86_64": (2, 5),
    "manylinux2010_x86_64": (2, 12),
    "manylinux2014_x86_64": (2, 17),
}


@dataclass
class PackageReport:
    size_bytes: int
    files: int
    distributions: dict[str, str]
    problems: list[str] = field(default_factory=list)
    pyc_files: int = 0


def _lambda_loads(tag: Tag) -> bool:
    if tag.interpreter not in {"py3", "py2.py3", f"cp{LAMBDA_PYTHON[0]}{LAMBDA_PYTHON[1]}"} and not (
        tag.interpreter.startswith("py3") or tag.interpreter.startswith("cp3")
    ):
        return False
    if tag.abi not in {"none", "abi3", f"cp{LAMBDA_PYTHON[0]}{LAMBDA_PYTHON[1]}"}:
        return False
    if tag.abi != "none" and tag.interpreter.startswith("cp"):
        version = tag.interpreter[2:]
        if tag.abi == "abi3":
            if int(version[1:]) > LAMBDA_PYTHON[1]:
                return False
        elif version != f"{LAMBDA_PYTHON[0]}{LAMBDA_PYTHON[1]}":
            return False
    if tag.platform == "any":
        return True
    glibc = _LEGACY_MANYLINUX.get(tag.platform)
    match = _MANYLINUX.match(tag.platform)
    if match:
        glibc = (int(match.group(1)), int(match.group(2)))
    return glibc is not None and glibc <= LAMBDA_GLIBC


def _dist_infos(names: list[str]) -> dict[str, str]:
    """canonical distribution name -> its `.dist-info/` directory in the zip."""
    found: dict[str, str] = {}
    for name in names:
        top = name.split("/", 1)[0]
        if top.endswith(".dist-info"):
            found[canonicalize_name(top[: -len(".dist-info")].rsplit("-", 1)[0])] = top
    return found


def read_requirements(path: Path) -> list[Requirement]:
    requirements = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def verify(zip_path: Path, requirements: list[Requirement]) -> PackageReport:
    """Every requirement and everything it requires (for Lambda's python3.11/linux) is in the zip,
    at a version the requirement allows, with every file its RECORD lists, and with a wheel tag
    the Lambda platform can load."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        present = set(names)
        infos = _dist_infos(names)
        report = PackageReport(size_bytes=zip_path.stat().st_size, files=len(names), distributions={})
        report.pyc_files = sum(1 for n in names if n.endswith(".pyc"))
        pending = [(req, "requirements.txt") for req in requirements]
        seen: set[str] = set()
        while pending:
            req, wanted_by = pending.pop()
            if req.marker is not None and not req.marker.evaluate(LAMBDA_MARKERS):
                continue
            name = canonicalize_name(req.name)
            info = infos.get(name)
            if info is None:
                report.problems.append(f"{req.name} (wanted by {wanted_by}) is not in the package")
                continue
            if name in seen:
                continue
            seen.add(name)
            metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode("utf-8"))
            version = metadata["Version"]
            report.distributions[name] = version
            if req.specifier and not req.specifier.contains(version, prereleases=True):
                report.problems.append(f"{req.name}: {version} in the package, {req} wanted by {wanted_by}")
            wheel = Parser().parsestr(archive.read(f"{info}/WHEEL").decode("utf-8"))
            tags = [tag for value in wheel.get_all("Tag") or [] for tag in parse_tag(value)]
            if not any(_lambda_loads(tag) for tag in tags):
                report.problems.append(
                    f"{req.name} {version}: no wheel tag Lambda python3.11 x86_64 loads: {tags}"
                )
            for row in archive.read(f"{info}/RECORD").decode("utf-8").splitlines():
                member = row.rsplit(",", 2)[0]
                if not member or member.startswith("..") or member.endswith(".pyc"):
                    continue
                if member not in present:
                    report.problems.append(f"{req.name} {version}: {member} is missing")
            for extra_req in metadata.get_all("Requires-Dist") or []:
                sub = Requirement(extra_req)
                if sub.marker is not None and "extra" in str(sub.marker):
                    if not any(sub.marker.evaluate({**LAMBDA_MARKERS, "extra": e}) for e in req.extras):
                        continue
                    sub.marker = None
                pending.append((sub, f"{req.name} {version}"))
        return report


def add_bytecode(zip_path: Path) -> int:
    """Compile every module in the zip for the running interpreter (must be Lambda's python3.11)
    into `__pycache__`, with unchecked-hash invalidation: the pyc is used whatever the file
    times are after Lambda unpacks the zip. Returns the number of .pyc files in the zip."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        raise RuntimeError(
            f"bytecode for Lambda python3.11 needs python3.11, this is {sys.version.split()[0]}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "package"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
            modes = {info.filename: info.external_attr for info in archive.infolist()}
        compileall.compile_dir(
            root,
            quiet=2,
            workers=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        rebuilt = Path(tmp) / "package.zip"
        count = 0
        with zipfile.ZipFile(rebuilt, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                arcname = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = modes.get(arcname, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, path.read_bytes())
                count += arcname.endswith(".pyc")
        shutil.move(rebuilt, zip_path)
    return count
