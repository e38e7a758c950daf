"""Output formats for scan results. `json` is the contract; `table` is for people at a terminal;
`cyclonedx`, `spdx` and `sarif` are the standard formats (`chalicelib/formats/`), one document per
image (a JSON array of them with `--all-platforms`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import TypeAdapter

from chalicelib.errors import InputError
from chalicelib.formats.sarif import render_sarif
from chalicelib.formats.spdx import render_spdx
from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan

FORMATS = ("table", "json", "sarif", "cyclonedx", "spdx")
_AVAILABLE = ("table", "json", "sarif", "cyclonedx", "spdx")
_SCAN_LIST = TypeAdapter(list[ImageScan])


def render(scans: Sequence[ImageScan], fmt: str, as_list: bool) -> str:
    """`as_list`: the contract's JSON array for `--all-platforms`, else a single object."""
    if fmt not in _AVAILABLE:
        raise InputError(
            f"--format {fmt} is not available in this version; use one of {', '.join(_AVAILABLE)}"
        )
    if fmt == "json":  # pydantic's serializer: ~5x faster than json.dumps(indent=2) on big scans
        if as_list:
            return _SCAN_LIST.dump_json(list(scans), indent=2).decode()
        return scans[0].model_dump_json(indent=2)
    if fmt in _STANDARD:
        docs = [_STANDARD[fmt](s) for s in scans]
        return "[\n" + ",\n".join(docs) + "\n]" if as_list else docs[0]
    return "\n\n".join(render_table(s) for s in scans)


def _cyclonedx(scan: ImageScan) -> str:
    from chalicelib.formats.cyclonedx import render_cyclonedx  # the library loads in ~0.3 s: on demand

    return render_cyclonedx(scan)


_STANDARD: dict[str, Callable[[ImageScan], str]] = {
    "cyclonedx": _cyclonedx,
    "spdx": render_spdx,
    "sarif": render_sarif,
}


def render_table(scan: ImageScan) -> str:
    img = scan.image
    os_name = f"{img.os.family} {img.os.version}" if img.os.family else "unknown OS"
    counts = ", ".join(f"{s.value}: {scan.summary.vulnerabilities.get(s, 0)}" for s in SEVERITIES_WORST_FIRST)
    lines = [
        f"{img.reference or img.digest} ({os_name}, {img.platform or 'platform unknown'})",
        f"digest: {img.digest}",
        f"packages: {scan.summary.packages}   vulnerabilities: {len(scan.vulnerabilities)} ({counts})"
        + (f"   suppressed: {len(scan.suppressed)}" if scan.suppressed else ""),
        *_secret_scope(scan),
        f"gate: {scan.summary.gate.upper()}" + "".join(f"\n  - {r}" for r in scan.summary.reasons),
    ]
    header = ("ID", "PACKAGE", "INSTALLED", "FIXED", "CVSS", "PATH", "KEV")
    for severity in SEVERITIES_WORST_FIRST:
        rows = [
            (
                v.id,
                v.package,
                v.installed_version,
                v.fixed_version or "(no fix)",
                f"{v.cvss_score:.1f}" if v.cvss_score is not None else "-",
                v.path,
                f"known exploited since {v.kev_date_added}" if v.known_exploited else "",
            )
            for v in scan.vulnerabilities
            if v.severity is severity
        ]
        if not rows:
            continue
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines += ["", f"{severity.value} ({len(rows)})"]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in (header, *rows)
        ]
    if not scan.vulnerabilities:
        lines += ["", "No vulnerabilities found."]
    lines += render_secrets(scan)
    lines += render_misconfigurations(scan)
    lines += render_suppressed(scan)
    return "\n".join(lines)


def _secret_scope(scan: ImageScan) -> list[str]:
    """Say when base layers were not searched for secrets: "no secrets" must not read as "none
    anywhere in the image"."""
    skipped = scan.summary.secret_layers_skipped
    if not skipped:
        return []
    return [f"secrets: not searched in the {skipped} lowest layer{'s' if skipped != 1 else ''}"]


def _short_layer(layer: str | None) -> str:
    """`sha256:<64 hex>` -> its first 12 hex digits (as `docker history` shows); no layer -> `-`."""
    if not layer:
        return "-"
    return layer.partition(":")[2][:12] or layer[:12]


def render_secrets(scan: ImageScan) -> list[str]:
    """Secret findings, worst first: where they are and the masked excerpt, never the value (the
    model does not hold it)."""
    if not scan.secrets:
        return []
    rank = {s: i for i, s in enumerate(SEVERITIES_WORST_FIRST)}
    ordered = sorted(scan.secrets, key=lambda f: (rank[f.severity], f.path, f.line or 0, f.rule_id))
    header = ("RULE", "SEVERITY", "PATH", "LAYER", "LINE", "MASKED")
    rows = [
        (
            f.rule_id,
            f.severity.value,
            f.path,
            _short_layer(f.layer),
            str(f.line) if f.line is not None else "-",
            f.masked,
        )
        for f in ordered
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["", f"Secrets ({len(rows)})"] + [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)
    ]


def render_suppressed(scan: ImageScan) -> list[str]:
    """The findings ignore rules and VEX statements took out: shown, with why, never silent."""
    if not scan.suppressed:
        return []
    header = ("ID", "PACKAGE", "SEVERITY", "SOURCE", "STATUS", "REASON", "RULE")
    rows = [
        (
            s.vulnerability.id,
            s.vulnerability.package,
            s.vulnerability.severity.value,
            s.source,
            s.status,
            s.justification or "-",
            s.rule,
        )
        for s in scan.suppressed
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["", f"Suppressed ({len(rows)})"] + [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)
    ]


def render_misconfigurations(scan: ImageScan) -> list[str]:
    """Image configuration findings, worst first, each with its fix."""
    if not scan.misconfigurations:
        return []
    rank = {s: i for i, s in enumerate(SEVERITIES_WORST_FIRST)}
    lines = ["", f"Misconfigurations ({len(scan.misconfigurations)})"]
    for m in sorted(scan.misconfigurations, key=lambda m: rank[m.severity]):
        lines.append(f"  {m.severity.value:<8} {m.id}  {m.title}")
        lines.append(f"           {m.message}")
        lines.append(f"           fix: {m.remediation}")
    return lines
