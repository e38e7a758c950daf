"""The rpm analyzer on real databases of all three formats (tests/fixtures/rpm/README.md says how
they were made), damaged databases, hostile headers, OS detection for the Red Hat family, and an
end-to-end scan of a Rocky Linux 9 image matched by source package with rpm version rules."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.analyzers import rpmdb
from chalicelib.analyzers.ecosystems import osv_ecosystem
from chalicelib.analyzers.os_release import OSReleaseAnalyzer
from chalicelib.analyzers.rpm import RpmAnalyzer
from chalicelib.analyzers.rpmdb import RpmDbError, bdb_blobs, ndb_blobs, sqlite_blobs
from chalicelib.analyzers.rpmheader import HeaderError, parse_header, split_source_rpm
from chalicelib.image.layout import OCILayoutSource
from chalicelib.image.oci_writer import build_layer, write_oci_layout
from chalicelib.models import OSInfo, Package
from chalicelib.scanner import ScanOptions, scan_image
from chalicelib.vulndb.index import VulnIndex, build_index

TESTS = Path(__file__).parent.parent
FIXTURES = TESTS / "fixtures" / "rpm"
ROCKY93 = (TESTS / "fixtures" / "analyzers" / "os-release" / "rocky93").read_bytes()
SQLITE = (FIXTURES / "rpmdb.sqlite").read_bytes()
BDB = (FIXTURES / "Packages").read_bytes()
NDB = (FIXTURES / "Packages.db").read_bytes()
EGG = "usr/lib/python3.9/site-packages/requests-2.25.1-py3.9.egg-info/PKG-INFO"
ROCKY = OSInfo(family="rocky", version="9.3")

# (name, version, arch, source name, source version) in database order
EXPECTED = [
    ("openssl-libs", "1:3.0.7-27.el9", "x86_64", "openssl", "1:3.0.7-27.el9"),
    ("bash", "5.1.8-6.el9", "x86_64", "bash", "5.1.8-6.el9"),
    ("python3-requests", "2.25.1-8.el9", "noarch", "python-requests", "2.25.1-8.el9"),
    ("bulk-data", "2:0.1-1.el9", "noarch", "bulk-data", "2:0.1-1.el9"),
]
PURLS = {
    "openssl-libs": (
        "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.3&epoch=1&upstream=openssl"
    ),
    "bash": "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3",
    "python3-requests": (
        "pkg:rpm/rocky/python3-requests@2.25.1-8.el9?arch=noarch&distro=rocky-9.3&upstream=python-requests"
    ),
    "bulk-data": "pkg:rpm/rocky/bulk-data@0.1-1.el9?arch=noarch&distro=rocky-9.3&epoch=2",
}
DB_FILES = [
    ("var/lib/rpm/rpmdb.sqlite", SQLITE),
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", SQLITE),
    ("var/lib/rpm/Packages", BDB),
    ("usr/lib/sysimage/rpm/Packages.db", NDB),
]


def fields(packages: list[Package]) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(p.name, p.version, p.arch, p.source_name, p.source_version) for p in packages]


# -- the three formats -------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "content"), DB_FILES)
def test_every_format_gives_the_same_packages_and_owned_files(path: str, content: bytes) -> None:
    result = RpmAnalyzer().analyze(path, content)
    order = sorted if path.endswith("/Packages") else list  # BDB: hash order, not install order
    assert order(fields(result.packages)) == order(EXPECTED)
    assert {p.path for p in result.packages} == {path}
    # the Python egg-info and a program (bash's usr/bin/bash: a distro's binary is its package's)
    assert result.owned_files == {EGG: "python3-requests", "usr/bin/bash": "bash"}
    assert result.os is None
    # the License tag; Fedora's legacy `GPLv3+` / `ASL2.0` become their SPDX ids
    assert {p.name: p.licenses for p in result.packages} == {
        "openssl-libs": ["OpenSSL"],
        "bash": ["GPL-3.0-or-later"],
        "python3-requests": ["Apache-2.0"],
        "bulk-data": ["MIT"],
    }


@pytest.mark.parametrize(("path", "content"), DB_FILES)
def test_finalize_gives_rocky_ecosystem_and_purls(path: str, content: bytes) -> None:
    analyzer = RpmAnalyzer()
    done = analyzer.finalize(analyzer.analyze(path, content).packages, ROCKY)
    assert {p.name: p.purl for p in done} == PURLS
    assert {p.ecosystem for p in done} == {"Rocky Linux:9"}


def test_bdb_is_read_through_multi_page_overflow_chains() -> None:
    """The fixture's bulk-data header is 20 KB: five 4 KiB overflow pages."""
    blobs = list(bdb_blobs(BDB))
    assert sorted(len(b) for b in blobs) == sorted(len(b) for b in sqlite_blobs(SQLITE))
    assert max(len(b) for b in blobs) > 4 * 4096
    assert sorted(blobs) == sorted(sqlite_blobs(SQLITE))


def _inline_bdb(blob: bytes, order: str = "<") -> bytes:
    """A one-bucket hash database with the blob stored inline (H_KEYDATA), as Berkeley DB keeps
    items smaller than its overflow threshold, in either byte order."""
    page_size = 4096
    meta = bytearray(page_size)
    struct.pack_into(order + "I", meta, 12, 0x061561)
    struct.pack_into(order + "I", meta, 20, page_size)
    meta[25] = 8
    struct.pack_into(order + "I", meta, 32, 1)
    page = bytearray(page_size)
    key = b"\x01" + struct.pack("<I", 7)
    data = b"\x01" + blob
    key_at = page_size - len(key)
    data_at = key_at - len(data)
    page[key_at:] = key
    page[data_at:key_at] = data
    struct.pack_into(order + "H", page, 20, 2)
    page[25] = 13
    struct.pack_into(order + "HH", page, 26, key_at, data_at)
    return bytes(meta + page)


@pytest.mark.parametrize("order", ["<", ">"])
def test_bdb_inline_items_in_both_byte_orders(order: str) -> None:
    bash = next(b for b in sqlite_blobs(SQLITE) if parse_header(b).name == "bash")
    assert list(bdb_blobs(_inline_bdb(bash, order))) == [bash]


def test_wal_mode_database_is_read() -> None:
    wal = bytearray(SQLITE)
    wal[18] = wal[19] = 2
    assert [parse_header(b).name for b in sqlite_blobs(bytes(wal))] == [e[0] for e in EXPECTED]


def test_sqlite_without_deserialize_reads_a_private_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpmdb, "_HAS_DESERIALIZE", False)
    assert [parse_header(b).name for b in sqlite_blobs(SQLITE)] == [e[0] for e in EXPECTED]


def test_header_fields_and_files() -> None:
    headers = {h.name: h for h in map(parse_header, sqlite_blobs(SQLITE))}
    openssl = headers["openssl-libs"]
    assert (openssl.epoch, openssl.version, openssl.release, openssl.arch) == (1, "3.0.7", "27.el9", "x86_64")
    assert (openssl.source_rpm, openssl.license) == ("openssl-3.0.7-27.el9.src.rpm", "OpenSSL")
    assert openssl.files == ["/usr/lib64/libssl.so.3"]
    assert headers["bash"].epoch is None and headers["bash"].evr == "5.1.8-6.el9"
    assert headers["python3-requests"].files == [
        "/" + EGG,
        "/usr/lib/python3.9/site-packages/requests/__init__.py",
    ]
    assert len(headers["bulk-data"].files) == 120


@pytest.mark.parametrize(
    ("source_rpm", "split"),
    [
        ("openssl-3.0.7-27.el9.src.rpm", ("openssl", "3.0.7", "27.el9")),
        ("python-requests-2.25.1-8.el9.src.rpm", ("python-requests", "2.25.1", "8.el9")),
        ("kernel-5.14.0-362.8.1.el9_3.nosrc.rpm", ("kernel", "5.14.0", "362.8.1.el9_3")),
        ("openssl-3.0.7.src.rpm", None),
        ("openssl-3.0.7-27.el9.x86_64.rpm", None),
        ("-1-2.src.rpm", None),
    ],
)
def test_split_source_rpm(source_rpm: str, split: tuple[str, str, str] | None) -> None:
    assert split_source_rpm(source_rpm) == split


def make_header(strings: dict[int, str]) -> bytes:
    """A header blob of STRING tags, written the way rpm lays one out."""
    index, store = b"", b""
    for tag, value in strings.items():
        index += struct.pack(">IIII", tag, 6, len(store), 1)
        store += value.encode() + b"\0"
    return struct.pack(">II", len(strings), len(store)) + index + store


def test_gpg_pubkey_is_skipped_and_odd_sourcerpm_is_its_own_source() -> None:
    nvr = {1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"}
    assert RpmAnalyzer().analyze("var/lib/rpm/Packages", _inline_bdb(make_header(nvr))).packages == []
    odd = {1000: "tzdata", 1001: "2024a", 1002: "1.el9", 1044: "tzdata_2024a.src.rpm"}
    (package,) = RpmAnalyzer().analyze("var/lib/rpm/Packages", _inline_bdb(make_header(odd))).packages
    assert (package.name, package.source_name, package.source_version, package.arch) == (
        "tzdata",
        "tzdata",
        "2024a-1.el9",
        None,
    )


# -- damaged and hostile input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content", "cut", "names"),
    [
        ("var/lib/rpm/rpmdb.sqlite", SQLITE, len(SQLITE) // 2, []),
        ("var/lib/rpm/rpmdb.sqlite", SQLITE, 10, []),
        ("var/lib/rpm/Packages", BDB, 22528, ["bash", "openssl-libs"]),
        ("var/lib/rpm/Packages", BDB, 100, []),
        ("usr/lib/sysimage/rpm/Packages.db", NDB, 15032, ["openssl-libs", "bash", "python3-requests"]),
        ("usr/lib/sysimage/rpm/Packages.db", NDB, 10, []),
    ],
)
def test_truncated_databases_give_what_survives(
    path: str, content: bytes, cut: int, names: list[str]
) -> None:
    result = RpmAnalyzer().analyze(path, content[:cut])
    assert [p.name for p in result.packages] == names


def test_garbage_databases_raise_typed_errors() -> None:
    with pytest.raises(RpmDbError):
        list(sqlite_blobs(b"SQLite format 3\0" + b"\xff" * 4000))
    with pytest.raises(RpmDbError):
        list(bdb_blobs(b"\0" * 8192))
    with pytest.raises(RpmDbError):
        list(ndb_blobs(b"RpmP" + b"\xff" * 12))
    with pytest.raises(RpmDbError, match="NDB version 1"):
        list(ndb_blobs(NDB[:4] + struct.pack("<I", 1) + NDB[8:]))


@pytest.mark.parametrize(
    ("offset", "value"),
    [(32, b"Xlot"), (36, b"\0\0\0\0"), (40, struct.pack("<I", 1)), (44, b"\0\0\0\0")],
    ids=["bad-magic", "no-package-index", "blob-inside-slot-pages", "no-blocks"],
)
def test_ndb_bad_slots_are_skipped_one_by_one(offset: int, value: bytes) -> None:
    """Slot 2 (the first after the 32-byte header) is openssl-libs: damage drops that one only."""
    data = bytearray(NDB)
    data[offset : offset + 4] = value
    assert [parse_header(b).name for b in ndb_blobs(bytes(data))] == ["bash", "python3-requests", "bulk-data"]


def test_bdb_overflow_loop_is_cut() -> None:
    """An overflow page pointing at itself must end, not spin: the one header longer than a page
    (bulk-data) is dropped, the three that fit in one overflow page are read."""
    data = bytearray(BDB)
    page_size = 4096
    for pgno in range(1, len(data) // page_size):
        if data[pgno * page_size + 25] == 7:
            struct.pack_into("<I", data, pgno * page_size + 16, pgno)
    names = [p.name for p in RpmAnalyzer().analyze("var/lib/rpm/Packages", bytes(data)).packages]
    assert sorted(names) == ["bash", "openssl-libs", "python3-requests"]


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\0\0\0\1",
        struct.pack(">II", 0, 0),
        struct.pack(">II", 0x10000, 0),  # too many entries
        struct.pack(">II", 1, 0x7FFFFFFF),  # data larger than rpm allows
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 0, 1) + b"bash",  # no NUL
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 9, 1) + b"bas\0",  # offset out
        struct.pack(">II", 1, 8) + struct.pack(">IIII", 1117, 8, 0, 99) + b"a\0b\0c\0d\0",  # count
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1003, 4, 0, 9) + b"\0\0\0\1",  # INT32 count
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 4, 0, 1) + b"\0\0\0\1",  # wrong type
    ],
)
def test_hostile_headers_raise_header_error(blob: bytes) -> None:
    with pytest.raises(HeaderError):
        parse_header(blob)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_headers_never_escape_header_error(data: st.DataObject) -> None:
    blob = bytearray(next(iter(sqlite_blobs(SQLITE))))
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        header = parse_header(bytes(blob[:cut]))
    except HeaderError:  # the only error a malformed header may raise
        return
    assert isinstance(header.name, str)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_bdb_and_ndb_never_crash_the_analyzer(data: st.DataObject) -> None:
    path, content = data.draw(
        st.sampled_from([("var/lib/rpm/Packages", BDB), ("usr/lib/sysimage/rpm/Packages.db", NDB)])
    )
    mutated = bytearray(content)
    for _ in range(data.draw(st.integers(1, 16))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    packages = RpmAnalyzer().analyze(path, bytes(mutated)).packages
    # whatever survives is a complete package of this database, never a crash or a half-record
    assert len(packages) <= len(EXPECTED)
    assert all(p.path == path and p.name and "-" in p.version for p in packages)


# -- OS detection and ecosystems ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "line", "family", "version"),
    [
        ("etc/redhat-release", "Red Hat Enterprise Linux release 8.9 (Ootpa)", "rhel", "8.9"),
        ("etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)", "centos", "7.9.2009"),
        ("etc/redhat-release", "CentOS Stream release 9", "centos", "9"),
        ("etc/redhat-release", "Rocky Linux release 9.3 (Blue Onyx)", "rocky", "9.3"),
        ("etc/redhat-release", "AlmaLinux release 9.3 (Shamrock Pampas Cat)", "almalinux", "9.3"),
        ("etc/redhat-release", "Oracle Linux Server release 8.9", "ol", "8.9"),
        ("etc/redhat-release", "Fedora release 39 (Thirty Nine)", "fedora", "39"),
        ("etc/system-release", "Amazon Linux release 2023.3.20240131 (Amazon Linux)", "amzn", "2023"),
        ("etc/system-release", "Amazon Linux release 2 (Karoo)", "amzn", "2"),
    ],
)
def test_release_file_fallbacks(path: str, line: str, family: str, version: str) -> None:
    result = OSReleaseAnalyzer().analyze(path, (line + "\n").encode())
    assert result.os == OSInfo(family=family, version=version)
    assert result.os_priority == {"etc/redhat-release": 16, "etc/system-release": 15}[path]


def test_unknown_release_line_gives_no_os() -> None:
    assert OSReleaseAnalyzer().analyze("etc/redhat-release", b"Some Linux release 1\n").os is None
    assert OSReleaseAnalyzer().analyze("etc/system-release", b"\n").os is None


@pytest.mark.parametrize(
    ("family", "version", "ecosystem"),
    [
        ("rhel", "9.3", "Red Hat"),
        ("rocky", "9.3", "Rocky Linux:9"),
        ("almalinux", "9.3", "AlmaLinux:9"),
        ("amzn", "2023", "Amazon Linux:2023"),
        ("amzn", "2", "Amazon Linux:2"),
        ("centos", "7.9.2009", "CentOS:7"),
        ("ol", "8.9", "Oracle Linux:8"),
        ("fedora", "39", "Fedora:39"),
        ("sles", "15.5", "SUSE:Linux Enterprise Server 15 SP5"),
        ("opensuse-leap", "15.5", "openSUSE:Leap 15.5"),
        ("opensuse-tumbleweed", "20240101", "openSUSE:Tumbleweed"),
        ("wolfi", "20230201", "Wolfi"),
        ("chainguard", "20230214", "Chainguard"),
    ],
)
def test_red_hat_family_and_suse_ecosystems(family: str, version: str, ecosystem: str) -> None:
    assert osv_ecosystem(family, version) == ecosystem


def test_no_os_release_means_red_hat_without_distro() -> None:
    analyzer = RpmAnalyzer()
    done = analyzer.finalize(analyzer.analyze("var/lib/rpm/rpmdb.sqlite", SQLITE).packages, None)
    bash = next(p for p in done if p.name == "bash")
    assert (bash.ecosystem, bash.purl) == ("Red Hat", "pkg:rpm/rhel/bash@5.1.8-6.el9?arch=x86_64")


def test_same_database_under_both_paths_is_reported_once() -> None:
    analyzer = RpmAnalyzer()
    both = [
        *analyzer.analyze("var/lib/rpm/rpmdb.sqlite", SQLITE).packages,
        *analyzer.analyze("usr/lib/sysimage/rpm/rpmdb.sqlite", SQLITE).packages,
    ]
    done = analyzer.finalize(both, ROCKY)
    assert [(p.name, p.path) for p in done] == [(e[0], "var/lib/rpm/rpmdb.sqlite") for e in EXPECTED]


def test_wants_only_the_database_files() -> None:
    analyzer = RpmAnalyzer()
    assert [p for p, _ in DB_FILES if analyzer.wants(p)] == [p for p, _ in DB_FILES]
    for path in ("var/lib/rpm/Packages.bak", "var/lib/rpm/rpmdb.sqlite-wal", "var/lib/rpm/Name", "Packages"):
        assert not analyzer.wants(path)


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VulnIndex:
    out = tmp_path_factory.mktemp("db") / "db.sqlite"
    build_index([FIXTURES / "osv"], out)
    return VulnIndex(out)


def test_rocky9_image_matches_by_source_package_with_rpm_ordering(tmp_path: Path, index: VulnIndex) -> None:
    """openssl-libs 1:3.0.7-27.el9 is affected by the openssl record fixed in 1:3.0.7-28.el9_4
    (by source name, within Rocky Linux:9), not by the one fixed in 1:3.0.7-6.el9, the binary-name
    record or the Rocky 8 one; bash at exactly its fixed version is not affected; the requests
    egg-info the python3-requests rpm owns is listed with its owner and not matched on PyPI."""
    base = {
        "etc/os-release": ROCKY93,
        "var/lib/rpm/rpmdb.sqlite": SQLITE,
        EGG: b"Metadata-Version: 1.2\nName: requests\nVersion: 2.25.1\n",
    }
    write_oci_layout(tmp_path / "img", [build_layer(base)])
    source = OCILayoutSource(tmp_path / "img")
    (image,) = source.resolve()
    scan = scan_image(source, image, index, ScanOptions())
    assert scan.image.os == OSInfo(family="rocky", version="9.3")
    rpms = sorted(
        (p.name, p.version, p.ecosystem, p.purl) for p in scan.packages if p.purl.startswith("pkg:rpm")
    )
    assert rpms == sorted((e[0], e[1], "Rocky Linux:9", PURLS[e[0]]) for e in EXPECTED)
    pypi = [(p.name, p.version, p.owner) for p in scan.packages if p.ecosystem == "PyPI"]
    assert pypi == [("requests", "2.25.1", "python3-requests")]
    found = [
        (v.id, v.aliases, v.package, v.ecosystem, v.installed_version, v.fixed_version, v.path)
        for v in scan.vulnerabilities
    ]
    assert found == [
        (
            "CVE-2024-5535",
            ["RLSA-2024:9999"],
            "openssl-libs",
            "Rocky Linux:9",
            "1:3.0.7-27.el9",
            "1:3.0.7-28.el9_4",
            "var/lib/rpm/rpmdb.sqlite",
        )
    ]
