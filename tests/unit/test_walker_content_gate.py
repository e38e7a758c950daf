"""The walker's content gate (`Analyzer.wants_content`): gated analyzers see a file's first bytes
(peeked from the tar stream, not consumed) and a file nobody still wants is never read; the tar
reader's `peek_data` across chunk boundaries; the Go, Java and Rust gates on real files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from chalicelib.analyzers import default_analyzers
from chalicelib.analyzers.base import CONTENT_HEAD_BYTES, Analyzer, FileResult
from chalicelib.analyzers.gobinary import GoBinaryAnalyzer
from chalicelib.analyzers.java import JavaArchiveAnalyzer, looks_like_archive
from chalicelib.image.oci_writer import build_layer, build_tar
from chalicelib.image.tarstream import TarReader
from chalicelib.models import Package
from tests.unit.test_walker import _Chunks, walk

FIXTURES = Path(__file__).parent.parent / "fixtures"
GO_ELF = (FIXTURES / "gobinary" / "gosu-1.14-go1.19.8.buildinfo.elf").read_bytes()
RUST_ELF = (FIXTURES / "rust_binary" / "lifeguard-demo-0.1.0.auditable.elf").read_bytes()


class Recorder(Analyzer):
    """Wants every file under `bin/`; records heads and analyzed files. `gate` is the prefix its
    content gate requires (None: keeps the default gate, i.e. none)."""

    name: ClassVar[str] = "recorder"

    def __init__(self, name: str, gate: bytes | None) -> None:
        self.name = name  # type: ignore[misc]  # per-instance names for the test
        self.gate = gate
        self.heads: list[bytes] = []
        self.analyzed: list[tuple[str, int]] = []

    def wants(self, path: str) -> bool:
        return path.startswith("bin/")

    def analyze(self, path: str, content: bytes) -> FileResult:
        self.analyzed.append((path, len(content)))
        package = Package(
            name=path, version="1", ecosystem="Fake", purl=f"pkg:generic/x@{len(content)}", path=path
        )
        return FileResult(packages=[package])


class Gated(Recorder):
    def wants_content(self, head: bytes) -> bool:
        self.heads.append(head)
        assert self.gate is not None
        if self.gate == b"boom":
            raise RuntimeError("gate bug")
        return head.startswith(self.gate)


FILES = {
    "bin/elf": b"\x7fELF" + bytes(60) + b"x" * 100_000,  # larger than one read chunk of the test
    "bin/script": b"#!/bin/sh\necho hi\n",
    "bin/empty": b"",
    "bin/short": b"\x7fE",
    "etc/other": b"\x7fELF not wanted by path",
}


def test_gated_analyzer_reads_only_matching_files() -> None:
    gated = Gated("gated", b"\x7fELF")
    _, result = walk([build_layer(FILES)], [gated])
    assert gated.analyzed == [("bin/elf", 100_064)]
    assert sorted(gated.heads) == sorted([b"", b"#!/bin/sh\necho h", b"\x7fE", b"\x7fELF" + bytes(12)])
    assert result.layers[0].files_analyzed == 1
    assert [f.path for f in result.results["gated"]] == ["bin/elf"]


def test_ungated_analyzer_still_reads_everything_it_wants() -> None:
    gated, plain = Gated("gated", b"#!"), Recorder("plain", None)
    _, result = walk([build_layer(FILES)], [gated, plain])
    assert gated.analyzed == [("bin/script", 18)]
    assert sorted(plain.analyzed) == [
        ("bin/elf", 100_064),
        ("bin/empty", 0),
        ("bin/script", 18),
        ("bin/short", 2),
    ]
    assert plain.heads == []  # its default gate is never called
    assert result.layers[0].files_analyzed == 4


def test_gate_exception_drops_only_that_analyzer() -> None:
    broken, good = Gated("broken", b"boom"), Gated("good", b"\x7fELF")
    _, result = walk([build_layer(FILES)], [broken, good])
    assert broken.analyzed == []
    assert good.analyzed == [("bin/elf", 100_064)]
    assert result.layers[0].analyzer_errors == 4  # one per wanted file


def test_following_entries_are_intact_after_a_rejected_peek() -> None:
    """A peeked, then skipped, file leaves the stream positioned for the next header."""
    files = {
        f"bin/f{i:02d}": (b"\x7fELF" if i % 3 == 0 else b"text") + bytes([i]) * (i * 700) for i in range(30)
    }
    gated = Gated("gated", b"\x7fELF")
    walk([build_layer(files, compression="none")], [gated])
    assert gated.analyzed == [(f"bin/f{i:02d}", 4 + i * 700) for i in range(0, 30, 3)]


@pytest.mark.parametrize("sizes", [[1], [7], [512], [513, 100], [4096], [1 << 20]])
def test_peek_data_then_read_data(sizes: list[int]) -> None:
    tar = build_tar({"a": b"0123456789" * 50, "b": b"xyz", "c": b"", "d": b"last file"})
    reader = TarReader(_Chunks(tar, sizes), "test", max_entries=100)
    seen: list[tuple[str, bytes, bytes | None]] = []
    for entry in reader.entries():
        head = reader.peek_data(CONTENT_HEAD_BYTES)
        again = reader.peek_data(4)
        assert head.startswith(again)
        seen.append((entry.name, head, reader.read_data() if entry.name in ("a", "c") else None))
    assert seen == [
        ("a", b"0123456789012345", b"0123456789" * 50),
        ("b", b"xyz", None),
        ("c", b"", b""),
        ("d", b"last file", None),
    ]


def test_go_and_java_gates() -> None:
    go, java = GoBinaryAnalyzer(), JavaArchiveAnalyzer()
    assert go.wants_content(GO_ELF[:CONTENT_HEAD_BYTES]) is True
    assert go.wants_content(b"#!/bin/sh\n") is False
    assert [
        looks_like_archive(h) for h in (b"PK\x03\x04", b"PK\x05\x06", b"#!/bin/bash\n", b"<html>", b"")
    ] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert java.wants_content(b"PK\x03\x04\x14\x00") is True


def _jar(group: str, artifact: str, version: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"groupId={group}\nartifactId={artifact}\nversion={version}\n",
        )
    return out.getvalue()


def test_default_analyzers_through_the_walker() -> None:
    """Same packages as before the gate: ELF binaries in bin/ parsed, a Spring Boot executable jar
    (launch script + zip) read, a text file named .jar never read by the Java analyzer."""
    layer = build_layer(
        {
            "usr/sbin/gosu": GO_ELF,
            "usr/local/bin/lifeguard-demo": RUST_ELF,
            "usr/local/bin/notes": b"just text, no magic\n",
            "app/app.jar": b"#!/bin/bash\nexec java -jar $0\n" + _jar("org.example", "app", "2.1.0"),
            "app/lib/dep.jar": _jar("com.acme", "dep", "1.0"),
            "app/lib/fake.jar": b"this is not a zip\n",
        }
    )
    analyzers = [a for a in default_analyzers() if a.name != "secrets"]
    _, result = walk([layer], analyzers)
    found = {
        name: [(f.path, p.name, p.version) for f in items for p in f.result.packages]
        for name, items in result.results.items()
    }
    assert found == {
        "gobinary": [
            ("usr/sbin/gosu", "stdlib", "1.19.8"),
            ("usr/sbin/gosu", "github.com/tianon/gosu", "(devel)"),
        ],
        "rust-binary": [
            ("usr/local/bin/lifeguard-demo", "itoa", "1.0.11"),
            ("usr/local/bin/lifeguard-demo", "ryu", "1.0.18"),
            ("usr/local/bin/lifeguard-demo", "serde", "1.0.204"),
            ("usr/local/bin/lifeguard-demo", "serde_json", "1.0.120"),
            ("usr/local/bin/lifeguard-demo", "smallvec", "1.13.2"),
        ],
        "java": [("app/app.jar", "org.example:app", "2.1.0"), ("app/lib/dep.jar", "com.acme:dep", "1.0")],
    }
    # gosu, lifeguard-demo, app.jar, dep.jar: `notes` and `fake.jar` were never read
    assert result.layers[0].files_analyzed == 4
