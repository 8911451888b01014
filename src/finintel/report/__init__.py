"""The run report: one summary, plots and a self-contained HTML file.

`summarize` reads a run once into a `Summary` (typed sections, a plain dict at run time, every
plot's data included); the plots, the HTML and the dashboard only render it.
`summarize` / `write_summary` / `load_summary` need only the core dependencies (the PCA view
of the segments also needs the `models` extra); `build_report` (plots and HTML) needs the
`report` extra (matplotlib, jinja2) and imports it only when called.

Example:
    >>> from finintel.report import build_report
    >>> build_report(Path("out/run")).name  # doctest: +SKIP
    'report.html'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from finintel.report.shapes import Summary
from finintel.report.summary import load_summary, summarize, write_summary

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Summary", "build_report", "load_summary", "summarize", "write_summary"]


def build_report(run_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Summarize the run, draw its plots and write `run_dir/report.html` (see `report.html`)."""
    from finintel.report.html import build_report as _build

    return _build(run_dir, progress)
