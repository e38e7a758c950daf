"""Suppression of findings by ignore rules (`.lifeguardignore`) and OpenVEX statements, visible
not silent: suppressed findings are kept on the scan (`suppressed`), counted
(`summary.suppressed`) and shown with what suppressed them. Pure: no AWS. See docs/SUPPRESSION.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chalicelib.suppress.apply import IGNORE_SOURCE, IGNORED_STATUS, VEX_SOURCE, apply_suppressions
from chalicelib.suppress.ignore_file import load_ignore_file, parse_ignore_lines, parse_structured_ignore
from chalicelib.suppress.openvex import load_vex, parse_vex
from chalicelib.suppress.purl_match import PurlPattern
from chalicelib.suppress.rules import (
    SUPPRESSING_STATUSES,
    IgnoreRule,
    SuppressionRules,
    VexProduct,
    VexStatement,
)

#: the ignore file the CLI reads from the working directory when `--ignore-file` is not given
DEFAULT_IGNORE_FILE = ".lifeguardignore"


def load_suppressions(ignore_file: Path | None = None, vex_files: Sequence[Path] = ()) -> SuppressionRules:
    """Every rule of the ignore file and every statement of the VEX documents, in the order given
    (later documents win timestamp ties). Raises InputError naming the file on any problem."""
    ignore = load_ignore_file(ignore_file) if ignore_file is not None else []
    statements = [s for path in vex_files for s in load_vex(path)]
    return SuppressionRules(ignore=tuple(ignore), vex=tuple(statements))


__all__ = [
    "DEFAULT_IGNORE_FILE",
    "IGNORED_STATUS",
    "IGNORE_SOURCE",
    "SUPPRESSING_STATUSES",
    "VEX_SOURCE",
    "IgnoreRule",
    "PurlPattern",
    "SuppressionRules",
    "VexProduct",
    "VexStatement",
    "apply_suppressions",
    "load_ignore_file",
    "load_suppressions",
    "load_vex",
    "parse_ignore_lines",
    "parse_structured_ignore",
    "parse_vex",
]
