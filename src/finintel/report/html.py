"""Build the run report: summarize once, draw the plots, write summary.json and report.html.

`report.html` is one self-contained file: the plots are embedded as base64 PNG data URIs, the
CSS is inline, and a Content-Security-Policy forbids every external request, so the file can
be mailed, archived or opened offline and shows exactly what the run produced. The HTML comes
from the Jinja2 template `templates/report.html.j2` with autoescaping on (customer ids, reasons
and file paths are data, never markup). Every file is written atomically.

Example:
    >>> build_report(Path("out/run"))  # doctest: +SKIP
    PosixPath('out/run/report.html')
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from finintel.report.plots import band_colors, draw_plots, segment_colors
from finintel.report.shapes import ScorecardRow, Summary
from finintel.report.summary import PLOT_NAMES, summarize, write_summary
from finintel.run_layout import REPORT_HTML, RunLayout
from finintel.writers import atomic_path

REPORT_FILE = REPORT_HTML
TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).parent / "templates"

Progress = Callable[[str], None]


def build_report(run_dir: Path, progress: Progress | None = None) -> Path:
    """Write `run_dir/plots/*.png`, `run_dir/summary.json` and `run_dir/report.html`.

    The run is summarized once; the plots and the HTML are drawn from that summary only.
    """
    layout = RunLayout(Path(run_dir))
    if progress:
        progress("summarizing the run")
    summary = summarize(layout.root)
    drawn, skipped = draw_plots(layout.root, summary, progress)
    summary["plots"] = drawn
    every_skip = {**summary["plots_skipped"], **skipped}
    summary["plots_skipped"] = {n: every_skip[n] for n in PLOT_NAMES if n in every_skip}
    write_summary(layout.root, summary)
    if progress:
        progress("writing report.html")
    html = render_report(summary, layout.root)
    target = layout.report_html
    with atomic_path(target) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return target


def render_report(summary: Summary, run_dir: Path) -> str:
    """The report HTML for `summary`, with the PNGs it lists (relative to `run_dir`) inlined."""
    images = {
        name: "data:image/png;base64,"
        + base64.b64encode((run_dir / path).read_bytes()).decode("ascii")
        for name, path in summary["plots"].items()
    }
    items = summary["segments"]["items"]
    colors = segment_colors([int(i["segment_id"]) for i in items])
    bands = [b["name"] for b in summary["risk"]["bands"]]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            s=summary,
            images=images,
            segment_color={i["segment_name"]: colors[int(i["segment_id"])] for i in items},
            band_color=band_colors(bands),
            scorecard=_scorecard_variables(summary["risk"].get("scorecard", [])),
            parameters_json={
                name: json.dumps(value, indent=2, sort_keys=True)
                for name, value in summary["model_card"]["parameters"].items()
                if isinstance(value, Mapping)
            },
        )
    )


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=format_count,
        pct=format_share,
        score=format_score,
        fixed=format_fixed,
        label=_label,
    )
    return env


def format_count(value: Any) -> str:
    """A count with thousands separators ("-" when missing)."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def format_share(value: Any, digits: int = 1) -> str:
    """A share 0..1 as a percentage."""
    return "-" if value is None else f"{float(value) * 100:.{digits}f}%"


def format_score(value: Any) -> str:
    """A score with two decimals."""
    return "-" if value is None else f"{float(value):.2f}"


def format_fixed(value: Any, digits: int = 3) -> str:
    """A measure with a fixed number of decimals; text is shown as it is."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{float(value):,.{digits}f}"


def _label(name: Any) -> str:
    from finintel.models.explain import feature_label

    return feature_label(str(name))


class _ScorecardVariable(TypedDict):
    variable: str
    label: str | None
    iv: float | None
    bins: list[ScorecardRow]
    min_points: float | None
    max_points: float | None


def _scorecard_variables(rows: list[ScorecardRow]) -> list[_ScorecardVariable]:
    """Scorecard rows grouped per variable, strongest (highest information value) first."""
    grouped: dict[str, _ScorecardVariable] = {}
    for row in rows:
        name = str(row["variable"])
        entry = grouped.setdefault(
            name,
            {
                "variable": name,
                "label": row["label"],
                "iv": row["iv"],
                "bins": [],
                "min_points": None,
                "max_points": None,
            },
        )
        entry["bins"].append(row)
    for entry in grouped.values():
        points = [float(b["points"]) for b in entry["bins"] if b["points"] is not None]
        entry["min_points"] = min(points) if points else None
        entry["max_points"] = max(points) if points else None
    return sorted(grouped.values(), key=lambda v: -float(v["iv"] or 0.0))
