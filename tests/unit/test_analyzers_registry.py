"""The registration list: every analyzer once, fresh instances, unique names, disjoint wants."""

from __future__ import annotations

from chalicelib.analyzers import default_analyzers

SAMPLE_PATHS = {
    "etc/os-release": "os-release",
    "usr/lib/os-release": "os-release",
    "etc/alpine-release": "os-release",
    "etc/debian_version": "os-release",
    "var/lib/dpkg/status": "dpkg",
    "var/lib/dpkg/status.d/libc6": "dpkg",
    "lib/apk/db/installed": "apk",
    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO": "python",
    "opt/venv/lib/python3.12/site-packages/flask-3.0.0.dist-info/METADATA": "python",
    "app/node_modules/@babel/core/package.json": "npm",
    "etc/passwd": None,
    "app/package.json": None,
}


def test_names_and_order() -> None:
    assert [a.name for a in default_analyzers()] == ["os-release", "dpkg", "apk", "python", "npm"]


def test_fresh_instances() -> None:
    first, second = default_analyzers(), default_analyzers()
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_each_sample_path_has_exactly_its_analyzer() -> None:
    analyzers = default_analyzers()
    for path, owner in SAMPLE_PATHS.items():
        takers = [a.name for a in analyzers if a.wants(path)]
        assert takers == ([owner] if owner else []), path
