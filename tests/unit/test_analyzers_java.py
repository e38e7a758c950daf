"""Java archives: real Debian jars (pom.properties), the MANIFEST.MF fallback, nested archives
(Spring Boot fat jar, WAR, EAR) built in the test from the real jars, and hostile zips (bombs,
deep nesting, budget exhaustion, truncation, garbage)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers.java import (
    JarLimits,
    JavaArchiveAnalyzer,
    bundle_licenses,
    is_archive,
    manifest_coordinates,
    parse_manifest,
    parse_properties,
    scan_archive,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "java"
SLF4J_API = (FIXTURES / "slf4j-api.jar").read_bytes()
SLF4J_NOP = (FIXTURES / "slf4j-nop.jar").read_bytes()
LANG3 = (FIXTURES / "commons-lang3.jar").read_bytes()
CDI_API = (FIXTURES / "cdi-api.jar").read_bytes()
GUICE_JNDI = (FIXTURES / "guice-jndi.jar").read_bytes()


def _rows(content: bytes, path: str, limits: JarLimits | None = None) -> list[tuple[str, str, str, str, str]]:
    result = JavaArchiveAnalyzer(limits or JarLimits()).analyze(path, content)
    return [(p.name, p.version, p.ecosystem, p.purl, p.path) for p in result.packages]


def _zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _pom(group: str, artifact: str, version: str) -> tuple[str, bytes]:
    body = f"#Created by Apache Maven 3.9.6\ngroupId={group}\nartifactId={artifact}\nversion={version}\n"
    return f"META-INF/maven/{group}/{artifact}/pom.properties", body.encode()


def _without_pom(jar: bytes) -> bytes:
    """The same jar minus its META-INF/maven tree: only the real MANIFEST.MF is left to go on."""
    with zipfile.ZipFile(io.BytesIO(jar)) as archive:
        kept = [
            (i.filename, archive.read(i))
            for i in archive.infolist()
            if not i.filename.startswith("META-INF/maven/")
        ]
    return _zip(kept)


# -- real jars --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "path", "expected"),
    [
        (
            SLF4J_API,
            "usr/share/java/slf4j-api.jar",
            ("org.slf4j:slf4j-api", "1.7.32", "Maven", "pkg:maven/org.slf4j/slf4j-api@1.7.32"),
        ),
        (
            SLF4J_NOP,
            "usr/share/java/slf4j-nop.jar",
            ("org.slf4j:slf4j-nop", "1.7.32", "Maven", "pkg:maven/org.slf4j/slf4j-nop@1.7.32"),
        ),
        (
            LANG3,
            "usr/share/java/commons-lang3.jar",
            (
                "org.apache.commons:commons-lang3",
                "3.12.0",
                "Maven",
                "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            ),
        ),
    ],
)
def test_real_debian_jars(content: bytes, path: str, expected: tuple[str, str, str, str]) -> None:
    assert _rows(content, path) == [(*expected, path)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # pom.properties + `Bundle-License: http://www.apache.org/licenses/LICENSE-2.0.html`
        (CDI_API, [("javax.enterprise:cdi-api", "1.2", ["Apache-2.0"])]),
        # MANIFEST.MF only + `Bundle-License: http://www.apache.org/licenses/LICENSE-2.0.txt`
        (GUICE_JNDI, [("com.google.inject:guice-jndi", "4.2.3", ["Apache-2.0"])]),
        # no Bundle-License (Debian's rebuild drops it)
        (SLF4J_API, [("org.slf4j:slf4j-api", "1.7.32", [])]),
        (LANG3, [("org.apache.commons:commons-lang3", "3.12.0", [])]),
    ],
)
def test_real_jars_bundle_license(content: bytes, expected: list[tuple[str, str, list[str]]]) -> None:
    packages = JavaArchiveAnalyzer().analyze("usr/share/java/x.jar", content).packages
    assert [(p.name, p.version, p.licenses) for p in packages] == expected


def test_bundle_license_goes_to_one_identity_only() -> None:
    """A shaded jar's Bundle-License is the outer artifact's, not its bundled libraries': with
    several pom.properties nobody gets it (and the manifest is not read)."""
    manifest = b"Manifest-Version: 1.0\r\nBundle-License: MIT\r\n"
    single = _zip([("META-INF/MANIFEST.MF", manifest), _pom("com.acme", "core", "2.0.1")])
    (core,) = JavaArchiveAnalyzer().analyze("core.jar", single).packages
    assert core.licenses == ["MIT"]
    shaded = _zip([("META-INF/MANIFEST.MF", manifest), _pom("com.acme", "app", "1"), _pom("g", "lib", "2")])
    packages = JavaArchiveAnalyzer().analyze("app.jar", shaded).packages
    assert [(p.name, p.licenses) for p in packages] == [("com.acme:app", []), ("g:lib", [])]


@pytest.mark.parametrize(
    ("value", "licenses"),
    [
        ("Apache-2.0", ["Apache-2.0"]),
        ("apache-2.0", ["Apache-2.0"]),
        ("https://opensource.org/licenses/MIT", ["MIT"]),
        ('"Apache License, Version 2.0";link="http://www.apache.org/licenses/LICENSE-2.0"', ["Apache-2.0"]),
        ("Apache License, Version 2.0", []),
        ("EPL-2.0;description=x, https://www.gnu.org/software/classpath/license.html", ["EPL-2.0"]),
        ("http://www.eclipse.org/legal/epl-v10.html, http://www.eclipse.org/org/documents/edl-v10.php",
         ["EPL-1.0", "BSD-3-Clause"]),
        ("https://spdx.org/licenses/MPL-2.0.html", ["MPL-2.0"]),
        ("https://example.com/LICENSE", []),
        ("", []),
    ],
)  # fmt: skip
def test_bundle_licenses(value: str, licenses: list[str]) -> None:
    assert bundle_licenses(value) == licenses


def test_manifest_fallback_on_real_manifests() -> None:
    """commons-lang3: Bundle-SymbolicName `org.apache.commons.lang3` gives the group up to its last
    dot; Implementation-Title is the artifact (Trivy's rules, so not the Maven artifactId)."""
    assert _rows(_without_pom(LANG3), "app.jar") == [
        (
            "org.apache.commons:Apache Commons Lang",
            "3.12.0",
            "Maven",
            "pkg:maven/org.apache.commons/Apache%20Commons%20Lang@3.12.0",
            "app.jar",
        )
    ]
    assert _rows(_without_pom(SLF4J_API), "a.jar") == [
        ("slf4j:slf4j-api", "1.7.32", "Maven", "pkg:maven/slf4j/slf4j-api@1.7.32", "a.jar")
    ]


def test_manifest_ignored_when_pom_properties_present() -> None:
    manifest = (
        b"Manifest-Version: 1.0\r\nImplementation-Vendor-Id: x.y\r\n"
        b"Implementation-Title: z\r\nImplementation-Version: 9\r\n"
    )
    jar = _zip([("META-INF/MANIFEST.MF", manifest), _pom("com.acme", "core", "2.0.1")])
    assert _rows(jar, "core.jar") == [
        ("com.acme:core", "2.0.1", "Maven", "pkg:maven/com.acme/core@2.0.1", "core.jar")
    ]


def test_shaded_jar_reports_every_pom_properties_once() -> None:
    jar = _zip(
        [
            _pom("com.acme", "app", "1.0.0"),
            _pom("com.google.guava", "guava", "32.1.2-jre"),
            ("META-INF/maven/com.acme/app/copy/pom.properties", b"groupId=no\nartifactId=no\nversion=1\n"),
            ("META-INF/maven/broken/broken/pom.properties", b"groupId=broken\nversion=1\n"),
        ]
    )
    assert _rows(jar, "app.jar") == [
        ("com.acme:app", "1.0.0", "Maven", "pkg:maven/com.acme/app@1.0.0", "app.jar"),
        (
            "com.google.guava:guava",
            "32.1.2-jre",
            "Maven",
            "pkg:maven/com.google.guava/guava@32.1.2-jre",
            "app.jar",
        ),
    ]


# -- nested archives ----------------------------------------------------------------------------------


def test_spring_boot_fat_jar() -> None:
    fat = _zip(
        [
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n",
            ),
            _pom("com.acme", "service", "3.1.4"),
            ("BOOT-INF/classes/application.properties", b"server.port=8080\n"),
            ("BOOT-INF/lib/slf4j-api-1.7.32.jar", SLF4J_API),
            ("BOOT-INF/lib/commons-lang3-3.12.0.jar", LANG3),
        ],
        compression=zipfile.ZIP_STORED,
    )
    assert _rows(fat, "app/service.jar") == [
        ("com.acme:service", "3.1.4", "Maven", "pkg:maven/com.acme/service@3.1.4", "app/service.jar"),
        (
            "org.slf4j:slf4j-api",
            "1.7.32",
            "Maven",
            "pkg:maven/org.slf4j/slf4j-api@1.7.32",
            "app/service.jar!/BOOT-INF/lib/slf4j-api-1.7.32.jar",
        ),
        (
            "org.apache.commons:commons-lang3",
            "3.12.0",
            "Maven",
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            "app/service.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar",
        ),
    ]


def test_ear_with_war_with_jar() -> None:
    war = _zip([("WEB-INF/web.xml", b"<web-app/>"), ("WEB-INF/lib/slf4j-nop.jar", SLF4J_NOP)])
    ear = _zip([("META-INF/application.xml", b"<application/>"), ("web.WAR", war)])
    assert _rows(ear, "opt/jboss/app.ear") == [
        (
            "org.slf4j:slf4j-nop",
            "1.7.32",
            "Maven",
            "pkg:maven/org.slf4j/slf4j-nop@1.7.32",
            "opt/jboss/app.ear!/web.WAR!/WEB-INF/lib/slf4j-nop.jar",
        )
    ]


def test_same_package_outer_and_nested_reported_once() -> None:
    outer = _zip([_pom("org.slf4j", "slf4j-api", "1.7.32"), ("lib/slf4j-api.jar", SLF4J_API)])
    assert [(n, p) for n, _, _, _, p in _rows(outer, "x.jar")] == [("org.slf4j:slf4j-api", "x.jar")]


# -- hostile archives -------------------------------------------------------------------------------


def _nest(levels: int) -> bytes:
    """An archive `levels` deep, each level with its own pom.properties (level 0 outermost)."""
    inner = _zip([_pom("deep", f"level{levels - 1}", "1")])
    for level in range(levels - 2, -1, -1):
        inner = _zip([_pom("deep", f"level{level}", "1"), (f"lib/level{level + 1}.jar", inner)])
    return inner


def test_nesting_depth_is_bounded() -> None:
    rows = _rows(_nest(10), "deep.jar")
    assert [name for name, *_ in rows] == ["deep:level0", "deep:level1", "deep:level2", "deep:level3"]
    assert rows[-1][4] == "deep.jar!/lib/level1.jar!/lib/level2.jar!/lib/level3.jar"
    assert len(_rows(_nest(10), "deep.jar", JarLimits(max_depth=0))) == 1


def test_metadata_bomb_is_skipped() -> None:
    """A 64 MiB pom.properties (64 KiB compressed) is not read past the 1 MiB metadata limit."""
    bomb = b"groupId=bomb\nartifactId=bomb\nversion=1\n" + b"#" * (64 * 1024 * 1024)
    jar = _zip([("META-INF/maven/bomb/bomb/pom.properties", bomb), _pom("ok", "ok", "2")])
    assert len(jar) < 200_000
    assert [(n, v) for n, v, *_ in _rows(jar, "b.jar")] == [("ok:ok", "2")]


def test_nested_archive_bomb_is_skipped() -> None:
    big_inner = _zip([_pom("big", "big", "1"), ("pad.bin", b"\0" * (8 * 1024 * 1024))], zipfile.ZIP_STORED)
    outer = _zip([("lib/big.jar", big_inner), ("lib/small.jar", _zip([_pom("small", "small", "1")]))])
    limits = JarLimits(max_nested_bytes=1024 * 1024)
    assert [n for n, *_ in _rows(outer, "o.jar", limits)] == ["small:small"]
    assert [n for n, *_ in _rows(outer, "o.jar")] == ["big:big", "small:small"]


def test_total_budget_stops_reading() -> None:
    """Twenty 1 MiB nested jars against a 5 MiB budget: the first four are read, then nothing."""
    inners = [
        (
            f"lib/j{i:02d}.jar",
            _zip([_pom("g", f"a{i:02d}", "1"), ("pad", b"\0" * 1024 * 1024)], zipfile.ZIP_STORED),
        )
        for i in range(20)
    ]
    rows = _rows(_zip(inners), "o.jar", JarLimits(max_total_bytes=5 * 1024 * 1024))
    assert [n for n, *_ in rows] == ["g:a00", "g:a01", "g:a02", "g:a03"]


def test_member_count_is_bounded() -> None:
    members = [(f"f{i}.txt", b"") for i in range(50)] + [_pom("late", "late", "1")]
    assert _rows(_zip(members), "m.jar", JarLimits(max_members=50)) == []
    assert [n for n, *_ in _rows(_zip(members), "m.jar")] == ["late:late"]


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04", b"not a zip at all", SLF4J_API[: len(SLF4J_API) // 2]]
)
def test_broken_archives_give_nothing(content: bytes) -> None:
    assert JavaArchiveAnalyzer().analyze("x.jar", content).packages == []


def test_corrupt_member_skipped_others_kept() -> None:
    jar = bytearray(_zip([_pom("bad", "bad", "1"), _pom("good", "good", "1")], zipfile.ZIP_STORED))
    at = jar.find(b"groupId=bad")
    jar[at : at + 7] = b"XXXXXXX"  # CRC mismatch for the first member only
    assert [n for n, *_ in _rows(bytes(jar), "c.jar")] == ["good:good"]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(SLF4J_NOP) - 1), st.integers(min_value=0, max_value=255))
def test_mutated_real_jar_never_raises(at: int, value: int) -> None:
    data = bytearray(SLF4J_NOP)
    data[at] = value
    rows = _rows(bytes(data), "x.jar")
    assert len(rows) <= 1


# -- parsers and paths -----------------------------------------------------------------------------


def test_parse_properties() -> None:
    text = "# comment\n! also\n  groupId = org.x \nartifactId:a\\:b\nversion=1.0\\\\\nnoseparator\n\n"
    assert parse_properties(text) == {"groupId": "org.x", "artifactId": "a:b", "version": "1.0\\"}


def test_parse_manifest_continuations_and_sections() -> None:
    text = (
        "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.example.very.long.na\r\n me;singleton:=true\r\n"
        "Bundle-Version: 1.2.3\r\nBundle-Name: Example\r\n\r\nName: other/\r\nImplementation-Version: 9\r\n"
    )
    values = parse_manifest(text)
    assert values == {
        "Manifest-Version": "1.0",
        "Bundle-SymbolicName": "org.example.very.long.name;singleton:=true",
        "Bundle-Version": "1.2.3",
        "Bundle-Name": "Example",
    }
    assert manifest_coordinates(values) == ("org.example.very.long", "Example", "1.2.3")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {
                "Implementation-Vendor-Id": "com.acme",
                "Implementation-Title": "t",
                "Implementation-Version": "1",
            },
            ("com.acme", "t", "1"),
        ),
        (
            {"Implementation-Vendor": "Acme", "Specification-Title": "s", "Specification-Version": "2"},
            ("Acme", "s", "2"),
        ),
        ({"Bundle-SymbolicName": "single", "Bundle-Name": "n", "Bundle-Version": "3"}, ("single", "n", "3")),
        ({"Implementation-Title": "t", "Implementation-Version": "1"}, None),
        ({"Implementation-Vendor-Id": "g", "Implementation-Version": "1"}, None),
        ({"Implementation-Vendor-Id": "g", "Implementation-Title": "t"}, None),
    ],
)
def test_manifest_coordinates(values: dict[str, str], expected: tuple[str, str, str] | None) -> None:
    assert manifest_coordinates(values) == expected


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/share/java/slf4j-api.jar", True),
        ("opt/app/App.JAR", True),
        ("srv/app.war", True),
        ("srv/app.ear", True),
        ("x.par", True),
        ("var/jenkins_home/plugins/git.jpi", True),
        ("var/jenkins_home/plugins/old.hpi", True),
        ("usr/share/java/readme.txt", False),
        ("usr/lib/jvm/lib/modules", False),
        ("jar", False),
        ("app.jarx", False),
    ],
)
def test_is_archive(path: str, wanted: bool) -> None:
    assert is_archive(path) is wanted
    assert JavaArchiveAnalyzer().wants(path) is wanted


def test_scan_archive_default_limits() -> None:
    assert [p.name for p in scan_archive(SLF4J_API, "a.jar")] == ["org.slf4j:slf4j-api"]
    assert JarLimits() == JarLimits(
        max_depth=3,
        max_members=100_000,
        max_metadata_bytes=1024 * 1024,
        max_nested_bytes=64 * 1024 * 1024,
        max_total_bytes=256 * 1024 * 1024,
    )


def test_fully_executable_jar_with_launch_script() -> None:
    """Spring Boot's "fully executable" jars start with a shell script; the zip is still found."""
    launcher = b'#!/bin/bash\n# launch script\nexec java -jar "$0" "$@"\nexit 0\n'
    assert [(n, v) for n, v, *_ in _rows(launcher + SLF4J_API, "opt/app/app.jar")] == [
        ("org.slf4j:slf4j-api", "1.7.32")
    ]
