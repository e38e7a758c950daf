"""The Lambda zip checks (lifeguard_infra.package): synthetic zips for each failure `chalice
package` can leave behind silently, and the real zip that `make package` built."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest
from lifeguard_infra.package import add_bytecode, read_requirements, verify
from packaging.requirements import Requirement

from tests.infra.conftest import REPO

MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64"


def _dist(
    archive: zipfile.ZipFile,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    tags: tuple[str, ...] = ("py3-none-any",),
    files: tuple[str, ...] = (),
    listed_only: tuple[str, ...] = (),
) -> None:
    info = f"{name}-{version}.dist-info"
    module_files = files or (f"{name}/__init__.py",)
    for path in module_files:
        archive.writestr(path, "VALUE = 1\n")
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    archive.writestr(f"{info}/METADATA", metadata)
    archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))
    record = [f"{p},sha256=x,10" for p in (*module_files, *listed_only)]
    record += [f"{info}/METADATA,,", f"{info}/WHEEL,,", f"{info}/RECORD,,", f"{name}/__pycache__/x.pyc,,"]
    archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")


def _zip(tmp_path: Path, build: list[tuple[str, str, dict[str, object]]]) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", "import alpha\n")
        for name, version, kwargs in build:
            _dist(archive, name, version, **kwargs)  # type: ignore[arg-type]
    return path


def test_complete_package_has_no_problems(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        [
            (
                "alpha",
                "1.0",
                {
                    "requires": ("beta>=2", 'winonly; sys_platform == "win32"', 'cli; extra == "cli"'),
                    "tags": (MANYLINUX,),
                },
            ),
            ("beta", "2.1", {"tags": ("cp38-abi3-manylinux2014_x86_64",)}),
        ],
    )
    report = verify(path, [Requirement("alpha==1.0")])
    assert report.problems == []
    assert report.distributions == {"alpha": "1.0", "beta": "2.1"}
    assert report.files == 9
    assert report.pyc_files == 0


def test_missing_requirement_transitive_dependency_and_extra_are_reported(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("alpha", "1.0", {"requires": ("beta>=2", 'cli; extra == "cli"')})])
    report = verify(path, [Requirement("alpha[cli]==1.0"), Requirement("gamma==3")])
    assert sorted(report.problems) == [
        "beta (wanted by alpha 1.0) is not in the package",
        "cli (wanted by alpha 1.0) is not in the package",
        "gamma (wanted by requirements.txt) is not in the package",
    ]


def test_a_file_the_wheel_installed_but_the_zip_lacks_is_reported(tmp_path: Path) -> None:
    path = _zip(
        tmp_path, [("alpha", "1.0", {"listed_only": ("alpha/_native.cpython-311-x86_64-linux-gnu.so",)})]
    )
    assert verify(path, [Requirement("alpha")]).problems == [
        "alpha 1.0: alpha/_native.cpython-311-x86_64-linux-gnu.so is missing"
    ]


@pytest.mark.parametrize(
    ("tag", "loads"),
    [
        ("py3-none-any", True),
        ("cp311-cp311-manylinux2014_x86_64", True),
        ("cp311-cp311-manylinux_2_26_x86_64", True),
        ("cp38-abi3-manylinux_2_17_x86_64", True),
        ("cp311-cp311-manylinux_2_28_x86_64", False),  # newer glibc than Amazon Linux 2
        ("cp311-cp311-manylinux2014_aarch64", False),
        ("cp312-cp312-manylinux2014_x86_64", False),
        ("cp311-cp311-macosx_11_0_arm64", False),
    ],
)
def test_wheel_tags_must_load_on_lambda_python311_x86_64(tmp_path: Path, tag: str, loads: bool) -> None:
    path = _zip(tmp_path, [("alpha", "1.0", {"tags": (tag,)})])
    problems = verify(path, [Requirement("alpha")]).problems
    if loads:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problems[0].startswith(f"alpha 1.0: no wheel tag Lambda python3.11 x86_64 loads: [<{tag} @ ")


def test_version_outside_the_pin_is_reported(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("alpha", "1.0", {})])
    assert verify(path, [Requirement("alpha==1.1")]).problems == [
        "alpha: 1.0 in the package, alpha==1.1 wanted by requirements.txt"
    ]


def test_add_bytecode_compiles_modules_with_unchecked_hash_pycs(tmp_path: Path) -> None:
    path = _zip(tmp_path, [("alpha", "1.0", {})])
    assert add_bytecode(path) == 2
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pyc = archive.read("alpha/__pycache__/__init__.cpython-311.pyc")
        assert "app.py" in names and "__pycache__/app.cpython-311.pyc" in names
        assert archive.getinfo("app.py").date_time == (1980, 1, 1, 0, 0, 0)
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source not checked
    assert verify(path, [Requirement("alpha")]).pyc_files == 2


def test_read_requirements_skips_comments_and_options(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# runtime\n-r other.txt\nboto3==1.44.5  # pinned\n\nurllib3>=2,<3\n", encoding="utf-8")
    assert [str(r) for r in read_requirements(path)] == ["boto3==1.44.5", "urllib3<3,>=2"]


def test_built_lambda_package_holds_every_runtime_requirement() -> None:
    """The zip `make package` built (chalice package + bytecode): run `make package` first."""
    zip_path = REPO / "build" / "package" / "deployment.zip"
    if not zip_path.exists():
        pytest.skip("build/package/deployment.zip not built (`make package`; `make test` builds it first)")
    report = verify(zip_path, read_requirements(REPO / "requirements.txt"))
    assert report.problems == [], "stale or incomplete package: `make package` rebuilds it"
    assert report.pyc_files > 1000
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    for native in (
        "pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so",
        "zstandard/backend_c.cpython-311-x86_64-linux-gnu.so",
        "yaml/_yaml.cpython-311-x86_64-linux-gnu.so",
    ):
        assert native in names
    assert {"app.py", "chalicelib/__init__.py", "chalice/app.py", "__pycache__/app.cpython-311.pyc"} <= names
