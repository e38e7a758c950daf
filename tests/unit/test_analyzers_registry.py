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
    "etc/redhat-release": "os-release",
    "var/lib/rpm/rpmdb.sqlite": "rpm",
    "var/lib/rpm/Packages": "rpm",
    "usr/lib/sysimage/rpm/Packages.db": "rpm",
    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO": "python",
    "opt/venv/lib/python3.12/site-packages/flask-3.0.0.dist-info/METADATA": "python",
    "app/node_modules/@babel/core/package.json": "npm",
    "usr/local/bundle/specifications/rake-13.0.6.gemspec": "ruby",
    "var/www/vendor/composer/installed.json": "composer",
    "app/app.deps.json": "dotnet",
    # native executables: Go build info and cargo-auditable data are both looked for
    "usr/local/bin/kubectl": ("gobinary", "rust-binary"),
    "manager": ("gobinary", "rust-binary"),
    "usr/share/java/slf4j-api.jar": "java",
    "app/service.war": "java",
    "app/package-lock.json": None,  # lockfiles: filesystem sources only
    "app/yarn.lock": None,
    "app/pnpm-lock.yaml": None,
    "app/Cargo.lock": None,
    "etc/passwd": None,
    "app/package.json": None,
}


def test_names_and_order() -> None:
    assert [a.name for a in default_analyzers()] == [
        "os-release", "dpkg", "apk", "rpm", "python", "npm", "ruby", "composer", "dotnet", "gobinary", "java",
        "rust-binary", "secrets",
    ]  # fmt: skip


def test_fresh_instances() -> None:
    first, second = default_analyzers(), default_analyzers()
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_each_sample_path_has_exactly_its_analyzer() -> None:
    # the secrets analyzer reads (almost) every text file by design: it is not a format owner
    analyzers = [a for a in default_analyzers() if a.name != "secrets"]
    for path, owner in SAMPLE_PATHS.items():
        takers = [a.name for a in analyzers if a.wants(path)]
        expected = [owner] if isinstance(owner, str) else list(owner or ())
        assert takers == expected, path
