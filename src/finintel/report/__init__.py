"""The run report: one summary dict, plots and a self-contained HTML file.

`summarize` / `write_summary` / `load_summary` need only the core dependencies;
`build_report` (plots and HTML) needs the `report` extra (matplotlib, jinja2) and imports it
only when called.

Example:
    >>> from finintel.report import build_report
    >>> build_report(Path("out/run")).name  # doctest: +SKIP
    'report.html'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from finintel.report.summary import load_summary, summarize, write_summary

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["build_report", "load_summary", "summarize", "write_summary"]


def build_report(run_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Summarize the run, draw its plots and write `run_dir/report.html` (see `report.html`)."""
    from finintel.report.html import build_report as _build

    return _build(run_dir, progress)
