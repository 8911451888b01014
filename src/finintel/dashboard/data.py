"""What the dashboard reads from a finished run, loaded once per run and cached.

The dashboard computes nothing new: key numbers come from the run's summary
(`finintel.report.summary.load_summary`, the same dict the HTML report renders), and the
per-customer views read the run's own result files (`customers_scored.parquet`,
`transaction_alerts.csv`) with small DuckDB queries, so a run of 500k customers is never
loaded into the browser session as a whole.

Which run to show comes from the script arguments after `--` (`--run-dir RUN`) or from the
environment variable `FININTEL_RUN_DIR`.

A run without a risk score has no risk columns: the queries then leave them out (segment
members come most unusual first instead of riskiest first, the risk histogram is empty), and
`risk_off_note` gives the summary's one sentence why. `factor_rows`, `derived_variable_rows`,
`role_rows` and `unavailable_factor_rows` lay the summary's risk factors out as the risk page
shows them (the same columns as the report's tables); `segment_column_rows` and
`segments_warning` do the same for the segment page's columns and stability warning.

Example:
    >>> summary = run_summary(Path("out/run"))  # doctest: +SKIP
    >>> summary["overview"]["customers"]  # doctest: +SKIP
    3000
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb
import streamlit as st

from finintel.dashboard.runs import run_dir_from
from finintel.errors import FinintelError
from finintel.run_layout import (
    ALERTS_CSV,
    CUSTOMER_ID,
    METRICS_JSON,
    SCORED_OUTPUT_COLUMNS,
    SCORED_PARQUET,
    SUMMARY_JSON,
    RunLayout,
)

if TYPE_CHECKING:
    from finintel.report.shapes import Segments, Summary

MEMBERS_LIMIT = 1000
RISK_BIN_WIDTH = 5
# Customer ids are text ("007" stays "007") whatever a CSV sniffer would guess.
_ID_AS_TEXT = "types = {'customer_id': 'VARCHAR'}"

# The decision columns of customers_scored (the feature columns are left out of the views).
DECISION_COLUMNS = (CUSTOMER_ID, *SCORED_OUTPUT_COLUMNS)
MEMBER_COLUMNS = ("customer_id", "risk_score", "risk_band", "anomaly_score", "is_anomaly")
RISK_SCORE = "risk_score"
RISK_OFF_MODE = "off"  # the summary's risk mode of a run without a risk score


def current_run_dir() -> Path:
    """The run this dashboard process shows (script arguments first, then the environment)."""
    return run_dir_from(sys.argv[1:], os.environ)


def run_stamp(run_dir: Path) -> str:
    """Size and modification time of the files the views read: a new run means new caches."""
    parts = []
    for name in (SUMMARY_JSON, SCORED_PARQUET, ALERTS_CSV, METRICS_JSON):
        path = run_dir / name
        if path.is_file():
            stat = path.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def risk_off_note(summary: Summary) -> str | None:
    """Why the run has no risk score (the report's sentence, and how to skip it on purpose
    after an automatic skip), or None when the run has one.

    Example:
        >>> risk_off_note({"risk": {"mode": "off", "off_note": "Risk scoring is off."}})
        'Risk scoring is off.'
        >>> risk_off_note({"risk": {"mode": "unsupervised"}}) is None
        True
    """
    risk = summary.get("risk") or {}
    if risk.get("mode") != RISK_OFF_MODE:
        return None
    note = str(risk.get("off_note") or "Risk scoring is off for this run.")
    hint = risk.get("off_hint")
    return f"{note} {hint}" if hint else note


def factor_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The composite's factors as the risk page lists them: where each comes from (source and
    role) and the columns it reads, then its direction, weight and typical values.

    Example:
        >>> factor_rows({"factors": [{"name": "utilisation", "label": "credit utilisation",
        ...     "source": "role", "role": "bill / limit", "columns": ["bill", "limit"],
        ...     "direction": "higher_is_riskier", "weight": 1.0, "weight_share": 0.5,
        ...     "median": 0.4, "p95": 0.9}]})[0]["reads"]
        'bill, limit'
    """
    return [
        {
            "factor": f.get("label"),
            "name": f.get("name"),
            "role": f.get("role") or "-",
            "source": f.get("source") or "-",
            "reads": _joined(f.get("columns")),
            "riskier when": _riskier_when(f.get("direction")),
            "weight": f.get("weight"),
            "weight share": f.get("weight_share"),
            "median": f.get("median"),
            "p95": f.get("p95"),
        }
        for f in risk.get("factors") or []
    ]


def derived_variable_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scorecard's candidates computed from several columns, and whether each entered it."""
    return [
        {
            "variable": d.get("label"),
            "name": d.get("name"),
            "role": d.get("role") or "-",
            "source": d.get("source") or "-",
            "reads": _joined(d.get("columns")),
            "in the scorecard": "yes" if d.get("used") else "no",
        }
        for d in risk.get("derived_variables") or []
    ]


def role_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The columns read per role, declared or a canonical column standing in for a part."""
    return [
        {
            "role": r.get("role"),
            "meaning": r.get("meaning") or "-",
            "columns": _joined(r.get("columns")),
            "from": "declared" if r.get("declared") else "canonical column",
        }
        for r in risk.get("roles") or []
    ]


def unavailable_factor_rows(risk: Mapping[str, Any]) -> list[dict[str, str]]:
    """The factors left out with why, which says what column or role would enable each.

    Example:
        >>> unavailable_factor_rows({"unavailable_factors": {"utilisation": "needs a limit"}})
        [{'factor': 'utilisation', 'why': 'needs a limit'}]
    """
    return [
        {"factor": str(name), "why": str(why)}
        for name, why in (risk.get("unavailable_factors") or {}).items()
    ]


def segments_warning(summary: Summary) -> str | None:
    """The sentence saying the run's segments are not a stable structure (the report's), or
    None when the segmenter found them stable.

    Example:
        >>> segments_warning({"segments": {"stable": False, "note": "No k was stable."}})
        'No k was stable.'
        >>> segments_warning({"segments": {"stable": True, "note": "Stable."}}) is None
        True
    """
    from finintel.report.summary import unstable_segments_note

    return unstable_segments_note(summary.get("segments") or cast("Segments", {}))


def segment_column_rows(segments: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every column offered to the segmenter, kept or dropped, with why (the report's table):
    its weight in the distances, the reason in words and, for a redundant column, the kept
    column it ranks customers like and their Spearman correlation. Empty for a run from before
    the segmenter recorded its column decision.

    Example:
        >>> rows = segment_column_rows({"feature_selection": {"columns": [
        ...     {"column": "debit_total", "label": "total debits", "kept": False,
        ...      "reason": "redundant", "detail": "|Spearman| 0.95 with debit_avg",
        ...      "correlated_with": "debit_avg", "spearman": 0.95, "weight": 0.0}]}})
        >>> rows[0]["used"], rows[0]["with"], rows[0]["Spearman"]
        ('dropped: redundant', 'debit_avg', 0.95)
    """
    selection = segments.get("feature_selection") or {}
    return [
        {
            "column": c.get("label") or c.get("column"),
            "name": c.get("column"),
            "used": "kept" if c.get("kept") else f"dropped: {c.get('reason') or 'dropped'}",
            "weight": c.get("weight"),
            "why": c.get("detail") or "-",
            "with": c.get("correlated_with") or "-",
            "Spearman": c.get("spearman"),
        }
        for c in selection.get("columns") or []
    ]


def _joined(columns: Any) -> str:
    return ", ".join(str(c) for c in columns or []) or "-"


def _riskier_when(direction: Any) -> str:
    return {"higher_is_riskier": "higher", "lower_is_riskier": "lower"}.get(str(direction), "-")


def shown_run_has_risk() -> bool:
    """Whether the run this process shows has a risk score (True when that cannot be told,
    so the pages themselves show what is wrong)."""
    try:
        run_dir = current_run_dir()
    except FinintelError:
        return True
    return RISK_SCORE in scored_columns(run_dir)


def run_summary(run_dir: Path) -> Summary:
    """The run's summary (built and written to summary.json when the run has none yet)."""
    return _cached_summary(str(run_dir), run_stamp(run_dir))


@st.cache_data(show_spinner=False, max_entries=8)
def _cached_summary(run_dir: str, stamp: str) -> Summary:
    from finintel.report.summary import load_summary

    return load_summary(Path(run_dir))


def scored_source(run_dir: Path) -> str:
    """A DuckDB table expression reading the run's scored customers (a finished run has Parquet)."""
    return f"read_parquet({_sql_literal(RunLayout(run_dir).scored_parquet)})"


def scored_columns(run_dir: Path) -> tuple[str, ...]:
    """The decision columns present in this run's scored customers, in display order."""
    return _cached_columns(str(run_dir), run_stamp(run_dir))


@st.cache_data(show_spinner=False, max_entries=8)
def _cached_columns(run_dir: str, stamp: str) -> tuple[str, ...]:
    with duckdb.connect() as con:
        names = {
            row[0]
            for row in con.execute(
                f"DESCRIBE SELECT * FROM {scored_source(Path(run_dir))}"
            ).fetchall()
        }
    return tuple(name for name in DECISION_COLUMNS if name in names)


def segment_members(
    run_dir: Path, segment_id: int, limit: int = MEMBERS_LIMIT
) -> list[dict[str, Any]]:
    """Up to `limit` customers of one segment, riskiest first (ties by customer_id); most
    unusual first when the run has no risk score."""
    return _cached_members(str(run_dir), run_stamp(run_dir), int(segment_id), limit)


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_members(run_dir: str, stamp: str, segment_id: int, limit: int) -> list[dict[str, Any]]:
    present = set(scored_columns(Path(run_dir)))
    columns = ", ".join(name for name in MEMBER_COLUMNS if name in present)
    order = RISK_SCORE if RISK_SCORE in present else "anomaly_score"
    query = (
        f"SELECT {columns} FROM {scored_source(Path(run_dir))} WHERE segment_id = ? "
        f"ORDER BY {order} DESC, customer_id LIMIT ?"
    )
    return _rows(query, [segment_id, limit])


def customer_record(run_dir: Path, customer_id: str) -> dict[str, Any] | None:
    """Every score, band, flag and reason of one customer, or None when the id is unknown."""
    return _cached_customer(str(run_dir), run_stamp(run_dir), customer_id.strip())


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_customer(run_dir: str, stamp: str, customer_id: str) -> dict[str, Any] | None:
    columns = scored_columns(Path(run_dir))
    query = (
        f"SELECT {', '.join(columns)} FROM {scored_source(Path(run_dir))} "
        "WHERE CAST(customer_id AS VARCHAR) = ?"
    )
    with duckdb.connect() as con:
        row = con.execute(query, [customer_id]).fetchone()
    return None if row is None else dict(zip(columns, row, strict=True))


def customer_alerts(run_dir: Path, customer_id: str) -> list[dict[str, Any]]:
    """The transaction alerts of one customer, highest alert score first (empty when none)."""
    return _cached_alerts(str(run_dir), run_stamp(run_dir), customer_id.strip())


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_alerts(run_dir: str, stamp: str, customer_id: str) -> list[dict[str, Any]]:
    path = RunLayout(Path(run_dir)).alerts_csv
    if not path.is_file():
        return []
    query = (
        f"SELECT * FROM read_csv({_sql_literal(path)}, header = true, {_ID_AS_TEXT}) "
        'WHERE customer_id = ? ORDER BY alert_score DESC, "timestamp"'
    )
    return _rows(query, [customer_id])


def risk_histogram(run_dir: Path) -> dict[str, list[Any]]:
    """Customers per risk-score bin of `RISK_BIN_WIDTH` points (a count of the run's scores);
    no bins when the run has no risk score."""
    return _cached_histogram(str(run_dir), run_stamp(run_dir))


@st.cache_data(show_spinner=False, max_entries=8)
def _cached_histogram(run_dir: str, stamp: str) -> dict[str, list[Any]]:
    if RISK_SCORE not in scored_columns(Path(run_dir)):
        return {"risk score": [], "customers": []}
    width = RISK_BIN_WIDTH
    query = (
        f"SELECT CAST(LEAST(FLOOR(risk_score / {width}), {100 // width - 1}) * {width} AS INTEGER)"
        f" AS start, COUNT(*) AS customers FROM {scored_source(Path(run_dir))} "
        "WHERE risk_score IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    rows = _rows(query, [])
    return {
        "risk score": [f"{row['start']:02d}-{row['start'] + width}" for row in rows],
        "customers": [row["customers"] for row in rows],
    }


def _rows(query: str, parameters: list[Any]) -> list[dict[str, Any]]:
    with duckdb.connect() as con:
        cursor = con.execute(query, parameters)
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _sql_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
