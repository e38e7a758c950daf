"""Benchmark 3: peak memory (max RSS) of the whole scan process on the >= 200 MB image and on one
about twice as large, to show that memory stays flat in image size (the walker streams layers).
Target: < 150 MiB.

Baselines, measured in the same run: the interpreter with the scanner's modules imported (the floor
no scan can go under), and for the large image the same scan of the smaller one (the flatness
ratio: 1.0 means image size costs no memory)."""

from __future__ import annotations

from bench.common import MIB, PYTHON, Context, Result, max_rss_mib, say, scan_argv
from bench.feed import match_db
from bench.image_builder import LARGE, MEDIUM, ensure_image

TARGET_MIB = 150.0
_IMPORTS = (
    "import chalicelib.cli, chalicelib.scanner, chalicelib.render, chalicelib.image.layout, "
    "chalicelib.vulndb.index, chalicelib.vulndb.matcher, chalicelib.analyzers"
)


def run(ctx: Context) -> list[Result]:
    db = match_db()
    medium, large = ensure_image(MEDIUM), ensure_image(LARGE)
    floor, _, tool = max_rss_mib([PYTHON, "-c", _IMPORTS])
    peaks: dict[str, tuple[float, float]] = {}
    for image in (medium, large):
        rss, seconds, tool = max_rss_mib(scan_argv(image.layout, db))
        peaks[image.layout.name] = (rss, seconds)
        say(f"  {image.describe()}: peak RSS {rss:.1f} MiB, {seconds:.2f} s ({tool})")
    m_rss, m_s = peaks[medium.layout.name]
    l_rss, l_s = peaks[large.layout.name]
    size_ratio = large.uncompressed / medium.uncompressed
    return [
        Result(
            bench="memory",
            metric=f"peak RSS, scan of {medium.uncompressed / MIB:.0f} MiB image",
            value=m_rss,
            unit="MiB",
            baseline="interpreter + scanner imports",
            baseline_value=floor,
            ratio=m_rss / floor,
            ratio_label="scan / import floor",
            target=f"< {TARGET_MIB:.0f} MiB",
            met=m_rss < TARGET_MIB,
            notes=[f"measured with {tool}"],
        ),
        Result(
            bench="memory",
            metric=f"peak RSS, scan of {large.uncompressed / MIB:.0f} MiB image ({size_ratio:.1f}x)",
            value=l_rss,
            unit="MiB",
            baseline=f"same scan, {medium.uncompressed / MIB:.0f} MiB image",
            baseline_value=m_rss,
            ratio=l_rss / m_rss,
            ratio_label="large / medium RSS",
            target=f"< {TARGET_MIB:.0f} MiB, flat",
            met=l_rss < TARGET_MIB,
            notes=[
                f"scan time {l_s:.2f} s vs {m_s:.2f} s ({l_s / m_s:.2f}x for {size_ratio:.2f}x the bytes; "
                "single runs under the RSS tool)"
            ],
        ),
    ]
