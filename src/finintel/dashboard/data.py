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
shows them (the same columns as the report's tables); `candidate_rows`, `fallback_notice`,
`model_variable_rows`, `dropped_variable_rows` and `protected_group_rows` do the same for the
supervised model choice, the fallback to the composite and the score per protected group;
`segment_column_rows` and `segments_warning` do the same for the segment page's columns and
stability warning.

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
            "in the model": "yes" if d.get("used") else "no",
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


def candidate_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The supervised models cross-validated on the same folds (the report's table): each
    one's ROC-AUC with its spread across folds, calibration slope, variables, gate verdict and
    whether it is the delivered model. Empty when the run fitted none.

    Example:
        >>> rows = candidate_rows({"model_choice": {"candidates": [{"model": "logistic",
        ...     "description": "logistic regression", "roc_auc": 0.7923, "roc_auc_std": 0.031,
        ...     "calibration_slope": 0.95, "variables": 21.0, "gate": "passed",
        ...     "delivered": True}]}})
        >>> rows[0]["ROC-AUC (cross-validated)"], rows[0]["delivered"]
        ('0.792 ± 0.031', 'delivered')
    """
    choice = risk.get("model_choice") or {}
    return [
        {
            "model": c.get("model"),
            "description": c.get("description") or "-",
            "ROC-AUC (cross-validated)": _plus_minus(c.get("roc_auc"), c.get("roc_auc_std")),
            "calibration slope": c.get("calibration_slope"),
            "variables": c.get("variables"),
            "gate": c.get("gate") or "-",
            "delivered": "delivered" if c.get("delivered") else "-",
        }
        for c in choice.get("candidates") or []
    ]


def fallback_notice(risk: Mapping[str, Any]) -> str | None:
    """The notice of a run whose labels gave no supervised model that passed the gate, or
    None when that is not so.

    Example:
        >>> fallback_notice({"fallback": {"reason": "No model passed.", "labelled": 682,
        ...     "bads": 76}})[:62]
        'Default labels were given, but no supervised model passed the '
        >>> fallback_notice({"fallback": None}) is None
        True
    """
    fallback = risk.get("fallback")
    if not fallback:
        return None
    return (
        "Default labels were given, but no supervised model passed the gate: the risk score is "
        "the unsupervised composite of declared risk factors instead "
        f"({_count(fallback.get('labelled'))} labelled customers, "
        f"{_count(fallback.get('bads'))} defaults). {fallback.get('reason') or ''}"
    ).strip()


def model_variable_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The variables the delivered supervised model reads, strongest first, with its own
    measure of their strength (e.g. "importance") as the last column.

    Example:
        >>> model_variable_rows({"model_variables": {"measure": "importance", "rows": [
        ...     {"variable": "dti", "label": "debt-to-income", "value": 0.4}], "dropped": []}})
        [{'variable': 'debt-to-income', 'name': 'dti', 'importance': 0.4}]
    """
    variables = risk.get("model_variables") or {}
    measure = str(variables.get("measure") or "strength")
    return [
        {"variable": v.get("label"), "name": v.get("variable"), measure: v.get("value")}
        for v in variables.get("rows") or []
    ]


def dropped_variable_rows(risk: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The variables the delivered model dropped (a scorecard's), each with why."""
    variables = risk.get("model_variables") or {}
    return [
        {"variable": d.get("label"), "name": d.get("variable"), "why": d.get("why")}
        for d in variables.get("dropped") or []
    ]


def protected_group_rows(attribute: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One protected attribute's groups as the risk page lists them (the report's table):
    customers, share, mean and median risk score, the share in each risk band (in band order)
    and the share flagged anomalous.

    Example:
        >>> rows = protected_group_rows({"groups": [{"group": "F", "customers": 310,
        ...     "share": 0.31, "mean_score": 48.6, "median_score": 48.12,
        ...     "anomaly_share": 0.0097, "bands": [{"name": "Low", "customers": 159,
        ...     "share": 0.5129}]}]})
        >>> rows[0]["customers"], rows[0]["Low"], rows[0]["flagged anomalous"]
        ('310', '51.3%', '1.0%')
    """
    rows = []
    for group in attribute.get("groups") or []:
        row: dict[str, Any] = {
            "group": group.get("group"),
            "customers": _count(group.get("customers")),
            "share": _share(group.get("share")),
            "mean score": group.get("mean_score"),
            "median score": group.get("median_score"),
        }
        for band in group.get("bands") or []:
            row[str(band.get("name"))] = _share(band.get("share"))
        row["flagged anomalous"] = _share(group.get("anomaly_share"))
        rows.append(row)
    return rows


def _plus_minus(value: Any, spread: Any) -> str:
    shown = "-" if value is None else f"{float(value):.3f}"
    return shown if spread is None else f"{shown} ± {float(spread):.3f}"


def _count(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def _share(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


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
