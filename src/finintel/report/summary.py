"""Summarize a finished run once into plain, JSON-able data: the numbers every view shows.

`summarize(run_dir)` reads the run's files (customers_scored.parquet, segments.csv,
transaction_alerts.csv, validation.json, metrics.json, run.json, features.json and, through
`model_view.read_model`, the model bundle) and never refits or rescores a model. The result is
a `Summary` (typed sections, see `shapes.py`), a plain dict at run time: the HTML report, the
plots and the dashboard all render it, so they cannot disagree. Counts (segment sizes, band
counts, flagged customers) are computed from customers_scored itself; shares are rounded to 4
decimals and scores to 2, nothing else is rounded. The plots' own data (`plot_data`: score
histograms, box statistics, ROC and calibration curves, the PCA view) is computed here too
(see `plot_data.py`), so drawing reads nothing but the summary.

This module needs only the core dependencies (duckdb, pyarrow, numpy): no matplotlib and no
jinja2, so the dashboard can import it. Without scikit-learn (the `models` extra) the bundle's
segmenter cannot be read: the summary then lacks the segments' traits and centroid z values and
the PCA view, and says why in `plots_skipped`.

The risk section shows how the supervised model was chosen (`model_choice`: every candidate
cross-validated on the same folds, its gate verdict, the delivered one and why), or, when labels
were given but no candidate passed the gate, the fallback to the composite (`fallback`). It also
holds the risk score per protected group (`protected`): each protected attribute found as a
column of the clean customers (`customers`) or the scored features, grouped by value or, for a
many-valued number such as an age, by fixed age bands.

A run without a risk score (`[risk] enabled = false`, or no risk factor applies) has risk mode
"off": the risk section holds no bands, scores or customers but `off_note`, the one sentence
why (from metrics.json), the risk plots are skipped with that reason, and segment and review
rows carry no risk values.

Example:
    >>> summary = summarize(Path("out/run"))  # doctest: +SKIP
    >>> summary["overview"]["customers"]  # doctest: +SKIP
    3000
    >>> write_summary(Path("out/run")).name  # doctest: +SKIP
    'summary.json'
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import duckdb

from finintel import __version__
from finintel.errors import RunDirError
from finintel.models.explain import feature_label
from finintel.report.model_view import ModelView, model_dir_of, read_model
from finintel.report.paths import config_paths, display_path
from finintel.report.plot_data import PlotInputs, plot_data
from finintel.report.shapes import (
    Anomalies,
    CandidateRow,
    ColumnDecision,
    CrossValidation,
    CrossValidationMetrics,
    DataQuality,
    DerivedVariable,
    DroppedColumnMetrics,
    DroppedVariable,
    FallbackMetrics,
    FeatureSelection,
    FeaturesInfo,
    KRow,
    Manifest,
    MixBlockMetrics,
    ModelCard,
    ModelChoice,
    ModelSelectionMetrics,
    ModelVariable,
    ModelVariables,
    Overview,
    ProfileEntry,
    Protected,
    ProtectedAttribute,
    ProtectedGroup,
    Risk,
    RiskBand,
    RiskCustomer,
    RiskFactor,
    RiskMetrics,
    RoleColumns,
    RolesMetrics,
    RuleCount,
    RunConfig,
    RunMetrics,
    RunRecord,
    SegmentItem,
    SegmentMetrics,
    Segments,
    SegmentState,
    Summary,
    SupervisedFallback,
    TableQuality,
    ValidationReport,
)
from finintel.run_layout import (
    CUSTOMER_ID,
    PLOTS_DIR,
    SCORED_OUTPUT_COLUMNS,
    SCORED_PARQUET,
    SUMMARY_JSON,
    RunLayout,
)
from finintel.settings.risk import DEFAULT_PROTECTED, ROLES
from finintel.sql import quote_ident, quote_literal
from finintel.writers import atomic_path

__all__ = [
    "PLOTS_DIR",
    "PLOT_NAMES",
    "SCORED_FILE",
    "SUMMARY_FILE",
    "feature_selection",
    "load_summary",
    "model_dir_of",
    "plot_needs",
    "profile_features",
    "summarize",
    "unstable_segments_note",
    "write_summary",
]

SUMMARY_FILE = SUMMARY_JSON
SCORED_FILE = SCORED_PARQUET
TOP_RISK = 20
TOP_REVIEW = 50
TOP_ALERTS = 50
RISK_OFF = "off"  # the risk mode of a run without a risk score
RISK_OFF_HINT = (
    "To run without a risk score on purpose, and without the warning, set [risk] enabled = "
    "false in the config."
)
# The stability bar of runs from before the segmenter gave its own verdict (`stable`).
LEGACY_MIN_STABILITY = 0.9
RISK_PLOTS = ("risk_distribution", "risk_by_segment", "risk_roc", "risk_calibration")
# Protected groups: the canonical customer columns always looked for (besides `[risk]
# protected`), the fixed age bands of a many-valued numeric attribute (lower bound, name), and
# the most values shown as groups of their own (the rest are pooled as "other").
CANONICAL_PROTECTED = ("age", "gender")
AGE_BANDS = ((0, "under 25"), (25, "25-34"), (35, "35-49"), (50, "50-64"), (65, "65 and over"))
MAX_VALUE_GROUPS = 12
MISSING_GROUP = "missing"
OTHER_GROUP = "other"

# Every plot the report draws, in report order (see `plot_needs` for when one is left out).
PLOT_NAMES: tuple[str, ...] = (
    "k_selection",
    "segments_pca",
    "segment_profile",
    "segment_sizes",
    "risk_distribution",
    "risk_by_segment",
    "risk_roc",
    "risk_calibration",
    "anomaly_distribution",
    "anomaly_top",
    "data_quality_files",
    "data_quality_rules",
)


def summarize(run_dir: Path) -> Summary:
    """Build the run summary from the files in `run_dir` (see the module docstring)."""
    layout = RunLayout(Path(run_dir))
    if not layout.scored_parquet.is_file():
        raise RunDirError(f"{layout.root} is not a finished run: {SCORED_PARQUET} is missing")
    metrics = cast(RunMetrics, _read_json(layout.metrics_json))
    run_info = cast(RunRecord, _read_json(layout.run_json))
    validation = cast(ValidationReport, _read_json(layout.validation_json))
    features = cast(FeaturesInfo, _read_json(layout.features_json))
    model = read_model(model_dir_of(layout.root, run_info))
    manifest = model.manifest
    seed = run_info.get("seed", manifest.get("seed"))
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE VIEW scored AS SELECT * FROM read_parquet({_lit(layout.scored_parquet)})"
        )
        columns = {r[0] for r in con.execute("DESCRIBE scored").fetchall()}
        has_risk = "risk_score" in columns
        alerts = _read_csv_rows(layout.alerts_csv)
        segment_rows = _read_csv_rows(layout.segments_csv)
        shown = config_paths(run_info.get("config"))
        data_quality = _data_quality(validation, layout.root, shown)
        segments = _segments(con, metrics, segment_rows, model, run_info, has_risk)
        risk = (
            _risk(con, layout, columns, metrics, manifest, run_info)
            if has_risk
            else _no_risk(metrics)
        )
        anomalies = _anomalies(con, metrics, alerts, has_risk)
        customers = int(_one(con, "SELECT count(*) FROM scored"))
        has_labels = _labels_available(con, layout, columns)
        inputs = PlotInputs(
            seed=seed if isinstance(seed, int) else 0,
            segment_ids=[item["segment_id"] for item in segments["items"]],
            anomaly_threshold=anomalies["threshold"],
            has_labels=has_labels,
            has_risk=has_risk,
        )
        data, unsupported = plot_data(con, layout, model, inputs)
    finally:
        con.close()
    overview: Overview = {
        "customers": customers,
        "transactions": _clean_rows(validation, "transactions"),
        "anomalies": anomalies["flagged"],
        "transaction_alerts": anomalies["transaction_alerts"]["count"],
        "segments": len(segments["items"]),
        "risk_mode": risk["mode"],
        "as_of": (features.get("plan") or {}).get("as_of"),
        "seed": seed,
        "finintel_version": run_info.get("finintel_version", __version__),
        "command": run_info.get("command"),
        "created_from": [
            {**f, "path": display_path(str(f.get("path") or ""), layout.root, shown)}
            for f in run_info.get("inputs", [])
        ],
    }
    skipped = plot_needs(
        overview,
        data_quality,
        segments,
        has_labels=has_labels,
        unsupported=unsupported,
        model_missing=model.missing,
        risk_off=risk.get("off_note"),
        fallback=bool(risk.get("fallback")),
    )
    summary: Summary = {
        "overview": overview,
        "data_quality": data_quality,
        "segments": segments,
        "risk": risk,
        "anomalies": anomalies,
        "model_card": _model_card(metrics, run_info, manifest, segments, risk, overview),
        "plot_data": data,
        "plots": {
            name: f"{PLOTS_DIR}/{name}.png"
            for name in PLOT_NAMES
            if name not in skipped and (layout.plots_dir / f"{name}.png").is_file()
        },
        "plots_skipped": skipped,
    }
    return cast(Summary, _jsonable(summary))


def write_summary(run_dir: Path, summary: Summary | None = None) -> Path:
    """Write `summary` (default: `summarize(run_dir)`) atomically to `run_dir/summary.json`.

    The JSON is key-sorted and indented, with lists of plain numbers (the plot data) kept on
    one line each so the file stays small and readable.
    """
    layout = RunLayout(Path(run_dir))
    data = summarize(layout.root) if summary is None else summary
    target = layout.summary_json
    with atomic_path(target) as tmp:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
        tmp.write_text(_NUMBER_LIST.sub(_one_line, text) + "\n", encoding="utf-8")
    return target


def load_summary(run_dir: Path) -> Summary:
    """Read `run_dir/summary.json`, building and writing it first when it is missing."""
    target = RunLayout(Path(run_dir)).summary_json
    if not target.is_file():
        write_summary(Path(run_dir))
    data: Summary = json.loads(target.read_text(encoding="utf-8"))
    return data


def plot_needs(
    overview: Overview,
    data_quality: DataQuality,
    segments: Segments,
    *,
    has_labels: bool,
    unsupported: Mapping[str, str] | None = None,
    model_missing: str | None = None,
    risk_off: str | None = None,
    fallback: bool = False,
) -> dict[str, str]:
    """The plots that cannot be drawn for this run, each with the reason, in report order.

    `unsupported` holds the reasons found while computing the plot data (see `plot_data`);
    `risk_off` is the note of a run without a risk score, which has no risk plots; `fallback`
    says labels were given but no supervised model passed the gate (so there is no probability
    of default to compare them with).
    """
    skipped: dict[str, str] = dict(unsupported or {})
    if not segments["k_table"]:
        skipped["k_selection"] = "the run's metrics hold no k-selection evidence"
    if not profile_features(segments):
        skipped["segment_profile"] = "the segment profiles have no z values" + (
            f" ({model_missing})" if model_missing else ""
        )
    if not overview["anomalies"]:
        skipped["anomaly_top"] = "no customer was flagged as anomalous"
    if fallback:
        why = (
            "no supervised model passed the gate, so the score is the unsupervised composite "
            "and there is no probability of default to compare with the outcomes"
        )
        skipped["risk_roc"] = why
        skipped["risk_calibration"] = why
    elif not has_labels:
        why = "no default labels were given, so there is no outcome to compare the score with"
        skipped["risk_roc"] = why
        skipped["risk_calibration"] = why
    if risk_off:
        for name in RISK_PLOTS:
            skipped[name] = "risk scoring is off"
    if not overview["customers"]:
        for name in PLOT_NAMES:
            if not name.startswith("data_quality"):
                skipped[name] = "no customers were scored"
    if not data_quality["tables"]:
        skipped["data_quality_files"] = "the run has no validation report"
    if not data_quality["by_rule"]:
        skipped["data_quality_rules"] = "no row was quarantined"
    return {name: skipped[name] for name in PLOT_NAMES if name in skipped}


def profile_features(segments: Segments) -> list[str]:
    """The segmentation features with a centroid z in every segment, in segmentation order."""
    items = segments["items"]
    known = list(items[0]["profile"]) if items else []
    ordered = [c for c in segments["columns"] if c in known]
    return [
        f
        for f in ordered + sorted(set(known) - set(ordered))
        if all(f in item["profile"] and item["profile"][f]["z"] is not None for item in items)
    ]


# ---------------------------------------------------------------------- sections


def _data_quality(
    validation: ValidationReport, run_dir: Path, shown: list[str] | None = None
) -> DataQuality:
    """The validation counts per table and rule; sources named without absolute folders."""
    tables: list[TableQuality] = []
    by_rule: list[RuleCount] = []
    for name, report in (validation.get("tables") or {}).items():
        nulled = report.get("nulled") or {}
        source = report.get("source")
        if source and not report.get("derived"):
            source = display_path(str(source), run_dir, shown or [])
        tables.append(
            {
                "table": name,
                "source": source,
                "rows_in": report.get("rows_in", 0),
                "clean": report.get("clean", 0),
                "quarantined": report.get("quarantined", 0),
                "nulled": sum(int(v) for v in nulled.values()),
            }
        )
        for rule, rows in sorted((report.get("by_rule") or {}).items()):
            by_rule.append({"table": name, "rule": rule, "rows": rows})
    return {
        "tables": tables,
        "by_rule": by_rule,
        "nulled_by_column": [
            {"table": name, "column_rule": key, "rows": rows}
            for name, report in (validation.get("tables") or {}).items()
            for key, rows in sorted((report.get("nulled") or {}).items())
        ],
        "rows_in": validation.get("rows_in", sum(t["rows_in"] for t in tables)),
        "clean": validation.get("clean", sum(t["clean"] for t in tables)),
        "quarantined": validation.get("quarantined", sum(t["quarantined"] for t in tables)),
    }


def _segments(
    con: duckdb.DuckDBPyConnection,
    metrics: RunMetrics,
    segment_rows: list[dict[str, str]],
    model: ModelView,
    run_info: RunRecord,
    has_risk: bool = True,
) -> Segments:
    seg_metrics = metrics.get("segments") or model.segment_metrics
    selection = seg_metrics.get("k_selection") or {}
    stored = {int(p["id"]): p for p in model.segments if "id" in p}
    csv_rows = {int(r["segment_id"]): r for r in segment_rows}
    mean_risk = "avg(risk_score)" if has_risk else "NULL"
    counts = con.execute(
        f"SELECT segment_id, any_value(segment_name), count(*), {mean_risk}, "
        "count(*) FILTER (WHERE is_anomaly) FROM scored GROUP BY segment_id ORDER BY segment_id"
    ).fetchall()
    total = sum(int(r[2]) for r in counts)
    observed = {int(r[0]): r for r in counts}
    items: list[SegmentItem] = []
    for segment_id in sorted(set(csv_rows) | set(observed) | set(stored)):
        row = csv_rows.get(segment_id, {})
        state = stored.get(segment_id) or cast(SegmentState, {})
        seen = observed.get(segment_id)
        size = int(seen[2]) if seen else 0
        name = row.get("segment_name") or state.get("name") or (seen[1] if seen else "")
        actions = state.get("actions")
        if actions is None:
            actions = [a.strip() for a in row.get("actions", "").split(";") if a.strip()]
        items.append(
            {
                "segment_id": segment_id,
                "segment_name": str(name),
                "size": size,
                "share": round(size / total, 4) if total else 0.0,
                "description": row.get("description") or state.get("description", ""),
                "actions": list(actions),
                "traits": list(state.get("traits") or []),
                "profile": _profile(row, state),
                "mean_risk_score": _round(seen[3], 2) if seen else None,
                "anomalies": int(seen[4]) if seen else 0,
            }
        )
    settings = _settings(model.manifest, run_info, "segments")
    columns = list(seg_metrics.get("columns") or model.manifest.get("segment_columns") or [])
    stable = seg_metrics.get("stable", selection.get("stable"))
    return {
        "chosen_k": selection.get("chosen_k", seg_metrics.get("k")),
        "mode": selection.get("mode"),
        "rule": selection.get("rule"),
        "reason": selection.get("reason"),
        "k_table": list(selection.get("table") or []),
        "elbow_k": _elbow(selection.get("table") or [], settings.get("min_explained_gain")),
        "silhouette": seg_metrics.get("silhouette"),
        "stability": seg_metrics.get("stability"),
        "stability_sd": seg_metrics.get("stability_sd"),
        "calinski_harabasz": seg_metrics.get("calinski_harabasz"),
        "davies_bouldin": seg_metrics.get("davies_bouldin"),
        "columns": columns,
        "feature_labels": {
            f: feature_label(f) for f in [*columns, *(p for i in items for p in i["profile"])]
        },
        "items": items,
        "stable": None if stable is None else bool(stable),
        "note": seg_metrics.get("note"),
        "attempts": list(selection.get("attempts") or []),
        "feature_selection": feature_selection(seg_metrics),
    }


def feature_selection(seg_metrics: SegmentMetrics) -> FeatureSelection | None:
    """The segmenter's column decision, one row per offered column in its priority order.

    None when the metrics hold no decision (a run from before the segmenter recorded one).

    Example:
        >>> view = feature_selection({"feature_selection": {
        ...     "mode": "default", "candidates": ["debit_avg", "debit_total"],
        ...     "kept": ["debit_avg"], "weights": {"debit_avg": 1.0, "debit_total": 0.0},
        ...     "dropped": [{"column": "debit_total", "reason": "redundant",
        ...                  "detail": "|Spearman| 0.95 with debit_avg, kept earlier",
        ...                  "with": "debit_avg", "spearman": 0.95}]}})
        >>> [(c["column"], c["reason"], c["correlated_with"]) for c in view["columns"]]
        [('debit_avg', 'kept', None), ('debit_total', 'redundant', 'debit_avg')]
    """
    selection = seg_metrics.get("feature_selection")
    if not selection:
        return None
    dropped = {str(d.get("column")): d for d in selection.get("dropped") or []}
    kept = [str(c) for c in selection.get("kept") or []]
    weights = selection.get("weights") or {}
    blocks = {
        str(column): block
        for block in selection.get("blocks") or []
        for column in block.get("columns") or []
    }
    offered = [str(c) for c in selection.get("candidates") or []]
    offered += [c for c in [*kept, *dropped] if c not in offered]
    rows = [_column_decision(c, dropped.get(c), weights.get(c), blocks.get(c)) for c in offered]
    return {
        "mode": selection.get("mode"),
        "rule": selection.get("rule"),
        "kept": sum(row["kept"] for row in rows),
        "dropped": sum(not row["kept"] for row in rows),
        "columns": rows,
    }


def _column_decision(
    column: str,
    dropped: DroppedColumnMetrics | None,
    weight: float | None,
    block: MixBlockMetrics | None,
) -> ColumnDecision:
    """One offered column: kept (with its weight and share block) or dropped, and why."""
    row: ColumnDecision = {
        "column": column,
        "label": feature_label(column),
        "kept": dropped is None,
        "reason": "kept",
        "detail": _block_detail(block),
        "correlated_with": None,
        "spearman": None,
        "weight": None if weight is None else float(weight),
    }
    if dropped is not None:
        spearman = dropped.get("spearman")
        row["reason"] = str(dropped.get("reason") or "dropped")
        row["detail"] = dropped.get("detail")
        row["correlated_with"] = dropped.get("with")
        row["spearman"] = None if spearman is None else float(spearman)
    return row


def _block_detail(block: MixBlockMetrics | None) -> str | None:
    """How a kept column of a share block is weighed, in words (None outside a block)."""
    if not block:
        return None
    name = str(block.get("name", "share")).replace("_", " ")
    size = len(block.get("columns") or [])
    counts_as = block.get("counts_as")
    together = f"; together they weigh as {counts_as:g} columns" if counts_as is not None else ""
    return f"one of {size} {name} columns{together}"


def _profile(row: Mapping[str, str], state: SegmentState) -> dict[str, ProfileEntry]:
    """Each segmentation feature's median (original units) and centroid z."""
    stored = state.get("profile") or {}
    written = {
        key.removeprefix("profile_"): _number(text)
        for key, text in row.items()
        if key.startswith("profile_")
    }
    profile: dict[str, ProfileEntry] = {}
    for feature in [*stored, *(f for f in written if f not in stored)]:
        entry = stored.get(feature) or ProfileEntry(value=None, z=None)
        value = written[feature] if feature in written else entry.get("value")
        profile[feature] = {"value": value, "z": entry.get("z")}
    return profile


def _elbow(table: list[KRow], min_gain: Any) -> int | None:
    """The elbow by the segmenter's own rule: add segments while each explains >= min_gain."""
    if not table or min_gain is None:
        return None
    elbow = int(table[0]["k"])
    for row in table[1:]:
        gain = row.get("explained_gain")
        if gain is None or gain < float(min_gain):
            break
        elbow = int(row["k"])
    return elbow


def _risk(
    con: duckdb.DuckDBPyConnection,
    layout: RunLayout,
    columns: set[str],
    metrics: RunMetrics,
    manifest: Manifest,
    run_info: RunRecord,
) -> Risk:
    risk_metrics = metrics.get("risk") or {}
    settings = _settings(manifest, run_info, "risk")
    total = _one(con, "SELECT count(*) FROM scored")
    pd_column = "probability_of_default" in columns
    lowest_pd = "min(probability_of_default)" if pd_column else "NULL"
    observed = {
        r[0]: (int(r[1]), r[2], r[3], r[4])
        for r in con.execute(
            "SELECT risk_band, count(*), any_value(risk_action), min(risk_score), "
            f"{lowest_pd} FROM scored GROUP BY risk_band"
        ).fetchall()
    }
    configured = sorted(settings.get("bands") or [], key=lambda b: float(b["min_score"]))
    cuts = [float(b["min_score"]) for b in configured] + [100.0]
    bands: list[RiskBand] = []
    for band, upper in zip(configured, cuts[1:], strict=False):
        count, action, _, pd = observed.get(band["name"], (0, band.get("action"), None, None))
        lower = float(band["min_score"])
        bands.append(
            {
                "name": band["name"],
                "min_score": band["min_score"],
                "action": band.get("action", action),
                "customers": count,
                "share": round(count / total, 4) if total else 0.0,
                "fitted_share": round((upper - lower) / 100, 4),
                "top_share": round((100 - lower) / 100, 4),
                "min_probability": _round(pd, 6),
            }
        )
    for name in sorted(set(observed) - {b["name"] for b in configured}, key=str):
        count, action, lowest, pd = observed[name]
        bands.append(
            {
                "name": name,
                "min_score": lowest,
                "action": action,
                "customers": count,
                "share": round(count / total, 4) if total else 0.0,
                "fitted_share": None,
                "top_share": None,
                "min_probability": _round(pd, 6),
            }
        )
    top = con.execute(
        "SELECT customer_id, round(risk_score, 2), risk_band, risk_reasons, segment_name "
        f"FROM scored ORDER BY risk_score DESC, customer_id LIMIT {TOP_RISK}"
    ).fetchall()
    mode = risk_metrics.get("mode") or ("supervised" if pd_column else "unsupervised")
    top_customers: list[RiskCustomer] = [
        {
            "customer_id": r[0],
            "risk_score": r[1],
            "risk_band": r[2],
            "risk_reasons": r[3] or "",
            "segment_name": r[4],
        }
        for r in top
    ]
    result: Risk = {
        "mode": mode,
        "bands": bands,
        "score_quantiles": risk_metrics.get("score_quantiles"),
        "mean_score": _round(_one(con, "SELECT avg(risk_score) FROM scored"), 2),
        "top_customers": top_customers,
        "cv": None,
    }
    if mode == "supervised":
        result["model"] = risk_metrics.get(
            "model", "scorecard" if "scorecard" in risk_metrics else None
        )
        result["model_description"] = risk_metrics.get("model_description")
        result["model_choice"] = _model_choice(risk_metrics.get("model_selection"))
        result["fallback"] = None
        if risk_metrics.get("scorecard"):
            result["scorecard"] = [
                {
                    "variable": row.get("variable"),
                    "label": row.get("label"),
                    "bin": row.get("bin"),
                    "points": row.get("points"),
                    "woe": row.get("woe"),
                    "iv": row.get("iv"),
                }
                for row in risk_metrics.get("scorecard") or []
            ]
        result["cv"] = _cv(risk_metrics.get("cross_validation"))
        result["labels"] = {
            "labelled": risk_metrics.get("labelled"),
            "unlabelled": risk_metrics.get("unlabelled"),
            "bads": risk_metrics.get("bads"),
            "goods": risk_metrics.get("goods"),
            "bad_rate": risk_metrics.get("bad_rate"),
        }
        result["mean_probability_of_default"] = risk_metrics.get("mean_probability_of_default")
        result["calibration"] = risk_metrics.get("calibration")
        result["derived_variables"] = _derived_variables(risk_metrics)
        result["model_variables"] = model_variables(risk_metrics)
    else:
        result["factors"] = _factors(risk_metrics)
        fallback = risk_metrics.get("supervised_fallback")
        result["fallback"] = _fallback(fallback)
        result["model_choice"] = _model_choice((fallback or {}).get("model_selection"))
    result["unavailable_factors"] = dict(risk_metrics.get("unavailable_factors") or {})
    by_role = [*result.get("factors", []), *result.get("derived_variables", [])]
    read = {c for f in by_role if f["role"] for c in f["columns"]}
    result["roles"] = _role_columns(risk_metrics.get("roles") or {}, read)
    result["protected"] = _protected(con, layout, columns, risk_metrics, settings, result)
    return result


def _model_choice(selection: ModelSelectionMetrics | None) -> ModelChoice | None:
    """The candidates of the supervised model choice (None for a run without one).

    Example:
        >>> choice = _model_choice({"requested": "auto", "delivered": "logistic",
        ...     "reason": "it is the best", "candidates": [{"model": "logistic",
        ...     "roc_auc": 0.79, "mean_variables": 21.0, "passed_gate": True, "gate": "passed",
        ...     "delivered": True}, {"model": "boosting", "roc_auc": 0.55,
        ...     "passed_gate": False, "gate": "below 0.6", "delivered": False}]})
        >>> [(c["model"], c["variables"], c["delivered"]) for c in choice["candidates"]]
        [('logistic', 21.0, True), ('boosting', None, False)]
    """
    if not selection:
        return None
    candidates: list[CandidateRow] = [
        {
            "model": str(c.get("model")),
            "description": c.get("description"),
            "roc_auc": c.get("roc_auc"),
            "roc_auc_std": c.get("roc_auc_std"),
            "calibration_slope": c.get("calibration_slope"),
            "variables": c.get("mean_variables"),
            "passed_gate": bool(c.get("passed_gate")),
            "gate": str(c.get("gate") or ("passed" if c.get("passed_gate") else "not passed")),
            "delivered": bool(c.get("delivered")),
        }
        for c in selection.get("candidates") or []
    ]
    reason = selection.get("reason")
    return {
        "requested": selection.get("requested"),
        "delivered": selection.get("delivered"),
        "reason": _as_sentence(reason) if reason else None,
        "tolerance": selection.get("tolerance"),
        "min_cv_auc": selection.get("min_cv_auc"),
        "folds": selection.get("folds"),
        "repeats": selection.get("repeats"),
        "candidates": candidates,
    }


def _fallback(record: FallbackMetrics | None) -> SupervisedFallback | None:
    """Why labels were given but the composite was delivered (None when it was not so)."""
    if not record:
        return None
    return {
        "reason": _as_sentence(str(record.get("reason") or "no supervised model passed the gate")),
        "labelled": record.get("labelled"),
        "bads": record.get("bads"),
        "goods": record.get("goods"),
        "bad_rate": record.get("bad_rate"),
    }


# The delivered learner's own measure of a variable's strength, as its metrics name it.
_STRENGTH_MEASURES = (
    ("information_values", "information value"),
    ("importance", "importance"),
    ("coefficients", "largest |coefficient|"),
)


def model_variables(risk_metrics: RiskMetrics) -> ModelVariables:
    """The delivered model's variables, strongest first by its own measure (a scorecard's
    information value, boosting's importance, the largest absolute coefficient of a logistic
    regression), and the variables it dropped, each with why.

    Example:
        >>> view = model_variables({"learner": {"variables_used": ["dti", "age_of_account"],
        ...     "importance": {"age_of_account": 0.7, "dti": 0.3}}})
        >>> view["measure"], [(r["variable"], r["value"]) for r in view["rows"]]
        ('importance', [('age_of_account', 0.7), ('dti', 0.3)])
        >>> model_variables({"learner": {"variables_used": ["dti"], "coefficients":
        ...     {"dti": {"value": 0.2, "missing": -0.5}}}})["rows"][0]["value"]
        0.5
    """
    learner = risk_metrics.get("learner") or {}
    used = [str(v) for v in learner.get("variables_used") or []]
    labels = {
        str(d.get("name")): str(d.get("label"))
        for d in risk_metrics.get("derived_variables") or []
        if d.get("label")
    }
    measure, values = None, {}
    for key, name in _STRENGTH_MEASURES:
        if isinstance(learner.get(key), Mapping):
            measure, values = name, learner[key]
            break
    strength = {v: _largest_magnitude(values.get(v)) for v in used}
    rows: list[ModelVariable] = [
        {"variable": v, "label": labels.get(v) or feature_label(v), "value": strength[v]}
        for v in used
    ]
    rows.sort(key=lambda r: -r["value"] if r["value"] is not None else math.inf)
    dropped: list[DroppedVariable] = [
        {"variable": str(v), "label": labels.get(str(v)) or feature_label(str(v)), "why": str(why)}
        for v, why in (learner.get("dropped") or {}).items()
    ]
    return {"measure": measure if rows else None, "rows": rows, "dropped": dropped}


def _largest_magnitude(value: Any) -> float | None:
    """A number's absolute value, or the largest of the numbers nested in a mapping."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(abs(float(value)), 6) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        found = [m for m in (_largest_magnitude(v) for v in value.values()) if m is not None]
        return max(found) if found else None
    return None


# ---------------------------------------------------------------------- protected groups

_NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
    "UINTEGER", "UBIGINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL",
)  # fmt: skip


def _protected(
    con: duckdb.DuckDBPyConnection,
    layout: RunLayout,
    columns: set[str],
    risk_metrics: RiskMetrics,
    settings: Mapping[str, Any],
    risk: Risk,
) -> Protected | None:
    """The risk score per group of each protected attribute found as a column of the run's
    clean customers or scored features (None when there is none).

    The attributes looked for are the canonical `age` and `gender` and `[risk] protected`
    (case ignored); a supervised run records which ones the model left out.
    """
    record = risk_metrics.get("protected") or {}
    configured = settings.get("protected")
    attributes = [
        str(a)
        for a in record.get("attributes", DEFAULT_PROTECTED if configured is None else configured)
    ]
    allowed = [str(a) for a in record.get("allowed", settings.get("allow_protected") or [])]
    left_out = [str(c) for c in record.get("left_out") or []]
    found = _protected_columns(con, layout, columns, [*CANONICAL_PROTECTED, *attributes])
    if not found:
        return None
    bands = [b["name"] for b in risk["bands"]]
    return {
        "attributes": attributes,
        "allowed": allowed,
        "left_out": left_out,
        "note": _protected_note(risk, risk_metrics, attributes, allowed, left_out),
        "columns": [
            _protected_groups(con, layout, name, column, source, sql_type, bands)
            for name, column, source, sql_type in found
        ],
    }


def _protected_columns(
    con: duckdb.DuckDBPyConnection, layout: RunLayout, columns: set[str], names: list[str]
) -> list[tuple[str, str, str, str]]:
    """(attribute, column, source, SQL type) of each protected name found, once per name.

    A name found both in the clean customers table and among the scored features is read
    where more customers have a value (a feature `age` computed from a birth date fills an
    empty canonical `age`), the clean customers (the source's own values) on a tie. A column
    without any value (a canonical column the data does not have) is not a protected column
    of this run.
    """
    outputs = {CUSTOMER_ID, *SCORED_OUTPUT_COLUMNS}
    scored = {
        str(r[0]).lower(): (str(r[0]), str(r[1]))
        for r in con.execute("DESCRIBE scored").fetchall()
        if r[0] in columns and r[0] not in outputs
    }
    clean: dict[str, tuple[str, str]] = {}
    customers = layout.clean_table("customers")
    if customers.is_file():
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(customers)})")
        clean = {
            str(r[0]).lower(): (str(r[0]), str(r[1]))
            for r in described.fetchall()
            if r[0] != CUSTOMER_ID
        }
    found: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for name in names:
        key = name.lower()
        if key in seen or (key not in clean and key not in scored):
            continue
        seen.add(key)
        options = []
        if key in clean:
            filled = _filled(con, f"read_parquet({_lit(customers)})", clean[key])
            options.append((filled, 1, (name, clean[key][0], "customers", clean[key][1])))
        if key in scored:
            filled = _filled(con, "scored", scored[key])
            options.append((filled, 0, (name, scored[key][0], "features", scored[key][1])))
        filled, _, chosen = max(options)
        if filled:
            found.append(chosen)
    return found


def _filled(con: duckdb.DuckDBPyConnection, table: str, column: tuple[str, str]) -> int:
    """How many rows of `table` have a value (a finite one for a number) in the column."""
    ident = quote_ident(column[0])
    if column[1].upper().startswith(_NUMERIC_TYPES):
        test = f"isfinite(CAST({ident} AS DOUBLE))"
    else:
        test = f"NULLIF(trim(CAST({ident} AS VARCHAR)), '') IS NOT NULL"
    return int(_one(con, f"SELECT count(*) FILTER (WHERE {test}) FROM {table}"))


def _protected_groups(
    con: duckdb.DuckDBPyConnection,
    layout: RunLayout,
    name: str,
    column: str,
    source: str,
    sql_type: str,
    bands: list[str],
) -> ProtectedAttribute:
    """The customers, risk scores, band shares and anomaly share per group of one attribute.

    A numeric attribute with more than `MAX_VALUE_GROUPS` values (an age in years) is grouped
    by `AGE_BANDS`; any other by its values, the largest `MAX_VALUE_GROUPS - 1` of many values
    kept and the rest pooled as "other". Missing values are a group of their own, so the
    group counts add up to the scored customers.
    """
    ident = quote_ident(column)
    if source == "customers":
        table = _lit(layout.clean_table("customers"))
        base = (
            "SELECT s.risk_score, s.risk_band, s.is_anomaly, c.v FROM scored s LEFT JOIN "
            f"(SELECT CAST(customer_id AS VARCHAR) AS id, any_value({ident}) AS v "
            f"FROM read_parquet({table}) GROUP BY 1) c ON CAST(s.customer_id AS VARCHAR) = c.id"
        )
    else:
        base = f"SELECT risk_score, risk_band, is_anomaly, {ident} AS v FROM scored"
    numeric = sql_type.upper().startswith(_NUMERIC_TYPES)
    if numeric:
        value = "CASE WHEN isfinite(CAST(v AS DOUBLE)) THEN CAST(v AS DOUBLE) END"
    else:
        value = "NULLIF(trim(CAST(v AS VARCHAR)), '')"
    values = f"SELECT {value} AS x, risk_score, risk_band, is_anomaly FROM ({base})"
    distinct = int(_one(con, f"SELECT count(DISTINCT x) FROM ({values})"))
    age_bands = numeric and distinct > MAX_VALUE_GROUPS
    if age_bands:
        cases = " ".join(f"WHEN x < {upper} THEN {k}" for k, (upper, _) in enumerate(AGE_BANDS[1:]))
        key, pooled = (
            f"CASE WHEN x IS NULL THEN NULL {cases} ELSE {len(AGE_BANDS) - 1} END",
            "false",
        )
    elif distinct > MAX_VALUE_GROUPS:
        kept = con.execute(
            f"SELECT x FROM ({values}) WHERE x IS NOT NULL GROUP BY x "
            f"ORDER BY count(*) DESC, x LIMIT {MAX_VALUE_GROUPS - 1}"
        ).fetchall()
        listed = ", ".join(quote_literal(str(r[0])) for r in kept)
        key = f"CASE WHEN x IN ({listed}) THEN x END"
        pooled = f"x IS NOT NULL AND x NOT IN ({listed})"
    else:
        key, pooled = "x", "false"
    grouped = f"SELECT {key} AS k, {pooled} AS o, * FROM ({values})"
    stats = con.execute(
        f"SELECT k, o, count(*), avg(risk_score), median(risk_score), "
        f"count(*) FILTER (WHERE is_anomaly) FROM ({grouped}) GROUP BY k, o"
    ).fetchall()
    counts: dict[tuple[Any, bool], dict[str, int]] = {}
    for k, o, band, n in con.execute(
        f"SELECT k, o, risk_band, count(*) FROM ({grouped}) GROUP BY k, o, risk_band"
    ).fetchall():
        counts.setdefault((k, bool(o)), {})[str(band)] = int(n)
    total = sum(int(r[2]) for r in stats)
    # the values in order, then the pooled ones, then the missing ones
    stats.sort(key=lambda r: (r[0] is None, bool(r[1]), r[0] if r[0] is not None else 0))
    groups: list[ProtectedGroup] = []
    for k, o, n, mean, median, flagged in stats:
        customers = int(n)
        in_band = counts.get((k, bool(o)), {})
        if k is None:
            label = OTHER_GROUP if o else MISSING_GROUP
        elif age_bands:
            label = AGE_BANDS[int(k)][1]
        elif numeric:
            label = f"{float(k):g}"
        else:
            label = str(k)
        groups.append(
            {
                "group": label,
                "customers": customers,
                "share": round(customers / total, 4) if total else 0.0,
                "mean_score": _round(mean, 2),
                "median_score": _round(median, 2),
                "anomaly_share": round(int(flagged) / customers, 4),
                "bands": [
                    {
                        "name": band,
                        "customers": in_band.get(band, 0),
                        "share": round(in_band.get(band, 0) / customers, 4),
                    }
                    for band in bands
                ],
            }
        )
    return {
        "attribute": name,
        "column": column,
        "source": source,
        "grouping": "age bands" if age_bands else "values",
        "groups": groups,
    }


def _protected_note(
    risk: Risk,
    risk_metrics: RiskMetrics,
    attributes: list[str],
    allowed: list[str],
    left_out: list[str],
) -> str:
    """One sentence: which protected columns the model left out (or read), and why the groups
    are shown.

    Example:
        >>> _protected_note({"mode": "supervised"}, {"learner": {"variables_used": ["dti"]}},
        ...                 ["age", "gender"], [], ["age"]).split(":")[0]
        'The model left out the protected column age ([risk] protected)'
    """
    shown = "the risk score per protected group is shown so disparities can be checked."
    if risk["mode"] == "supervised":
        learner = risk_metrics.get("learner") or {}
        used = {str(v).lower() for v in learner.get("variables_used") or []}
        read = [a for a in allowed if a.lower() in used]
        if left_out:
            lead = f"The model left out the protected {_columns_named(left_out)} ([risk] protected)"
        else:
            lead = "No protected column was among the model's candidate variables"
        if read:
            lead += f"; it reads {', '.join(read)}, allowed by [risk] allow_protected"
        return f"{lead}: {shown}"
    protected = {a.lower() for a in attributes}
    read = sorted(
        {c for f in risk.get("factors") or [] for c in f["columns"] if c.lower() in protected}
    )
    if read:
        lead = f"The unsupervised score's risk factors read the protected {_columns_named(read)}"
    else:
        lead = "The unsupervised score reads only its declared risk factors, none of them protected"
    return f"{lead}: {shown}"


def _columns_named(columns: list[str]) -> str:
    return ("column " if len(columns) == 1 else "columns ") + ", ".join(columns)


def _factors(risk_metrics: RiskMetrics) -> list[RiskFactor]:
    """The composite's factors with their source, role and the columns they read."""
    default_source = risk_metrics.get("factor_source")  # runs from before the roles
    return [
        {
            "name": f.get("name"),
            "label": f.get("label"),
            "source": f.get("source", default_source),
            "role": f.get("role"),
            "columns": list(f.get("columns") or []),
            "weight": f.get("weight"),
            "weight_share": f.get("weight_share"),
            "direction": f.get("direction"),
            "median": f.get("median"),
            "p95": f.get("p95"),
        }
        for f in risk_metrics.get("factors") or []
    ]


def _derived_variables(risk_metrics: RiskMetrics) -> list[DerivedVariable]:
    """The scorecard's candidates computed from several columns (ratios, a role's columns)."""
    return [
        {
            "name": d.get("name"),
            "label": d.get("label"),
            "source": d.get("source"),
            "role": d.get("role"),
            "columns": list(d.get("columns") or []),
            "used": bool(d.get("used")),
        }
        for d in risk_metrics.get("derived_variables") or []
    ]


def _role_columns(roles: RolesMetrics, read_by_roles: set[str]) -> list[RoleColumns]:
    """One row per role with columns, the declared ones first, in the order of `ROLES`.

    No rows when no role was declared; a canonical column standing in for an undeclared part
    is listed only when a role factor (a ratio) reads it (`read_by_roles`).

    Example:
        >>> rows = _role_columns({"declared": {"b1": "bill", "b2": "bill"},
        ...     "columns_by_role": {"income": ["annual_income"], "limit": ["credit_limit"],
        ...     "bill": ["b1", "b2"]}, "canonical_parts": {"limit": "credit_limit",
        ...     "income": "annual_income"}}, {"b1", "b2", "credit_limit"})
        >>> [(r["role"], r["columns"], r["declared"]) for r in rows]
        [('bill', ['b1', 'b2'], True), ('limit', ['credit_limit'], False)]
    """
    if not roles.get("declared"):
        return []
    canonical = roles.get("canonical_parts") or {}
    order = {name: k for k, name in enumerate(ROLES)}
    rows: list[RoleColumns] = [
        {
            "role": role,
            "meaning": ROLES[role].meaning if role in ROLES else None,
            "columns": list(columns),
            "declared": role not in canonical,
        }
        for role, columns in (roles.get("columns_by_role") or {}).items()
        if role not in canonical or canonical[role] in read_by_roles
    ]
    return sorted(rows, key=lambda r: (not r["declared"], order.get(r["role"], len(order))))


def _no_risk(metrics: RunMetrics) -> Risk:
    """The risk section of a run without a risk score: why, and nothing else to show.

    Example:
        >>> note = "risk scoring is off: [risk] enabled = false"
        >>> _no_risk({"risk": {"enabled": False, "source": "config", "note": note}})["off_note"]
        'Risk scoring is off: [risk] enabled = false.'
    """
    record = metrics.get("risk") or {}
    note = record.get("note") or "risk scoring is off: the run has no risk score"
    automatic = record.get("source") == "no_risk_factor"
    return {
        "mode": RISK_OFF,
        "bands": [],
        "score_quantiles": None,
        "mean_score": None,
        "top_customers": [],
        "cv": None,
        "off_note": _as_sentence(note),
        "off_hint": RISK_OFF_HINT if automatic else None,
    }


def _as_sentence(text: str) -> str:
    """`text` with a capital first letter and a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _cv(cv: CrossValidationMetrics | None) -> CrossValidation | None:
    if not cv:
        return None
    out: CrossValidation = {
        "roc_auc": cv.get("roc_auc"),
        "roc_auc_std": cv.get("roc_auc_std"),
        "gini": cv.get("gini"),
        "ks": cv.get("ks"),
        "folds": cv.get("folds"),
        "repeats": cv.get("repeats"),
    }
    baseline = cv.get("baseline") or {}
    if baseline:
        out["baseline"] = {
            "model": baseline.get("model"),
            "roc_auc": baseline.get("roc_auc"),
            "gini": baseline.get("gini"),
        }
    return out


def _anomalies(
    con: duckdb.DuckDBPyConnection,
    metrics: RunMetrics,
    alerts: list[dict[str, str]],
    has_risk: bool = True,
) -> Anomalies:
    m = metrics.get("anomalies") or {}
    threshold = m.get("threshold") or {}
    combination = m.get("combination") or {}
    flagged = int(_one(con, "SELECT count(*) FROM scored WHERE is_anomaly"))
    band = "risk_band" if has_risk else "NULL"
    queue = con.execute(
        f"SELECT customer_id, round(anomaly_score, 2), segment_name, {band}, anomaly_reasons "
        f"FROM scored WHERE is_anomaly ORDER BY anomaly_score DESC, customer_id LIMIT {TOP_REVIEW}"
    ).fetchall()
    tx = metrics.get("transaction_alerts") or {}
    return {
        "threshold": threshold.get("anomaly_score"),
        "threshold_source": threshold.get("source"),
        "rule": combination.get("rule"),
        "rule_why": combination.get("why"),
        "expected_rate": threshold.get("expected_rate"),
        "alert_budget": threshold.get("alert_budget"),
        "flagged": flagged,
        "features": list(m.get("features") or []),
        "detectors": m.get("detectors") or {},
        "review_queue": [
            {
                "customer_id": r[0],
                "anomaly_score": r[1],
                "segment_name": r[2],
                "risk_band": r[3],
                "anomaly_reasons": r[4] or "",
            }
            for r in queue
        ],
        "transaction_alerts": {
            "count": len(alerts),
            "transactions": tx.get("transactions"),
            "note": tx.get("note"),
            "top": [_typed_row(row) for row in alerts[:TOP_ALERTS]],
        },
    }


def _model_card(
    metrics: RunMetrics,
    run_info: RunRecord,
    manifest: Manifest,
    segments: Segments,
    risk: Risk,
    overview: Overview,
) -> ModelCard:
    config: RunConfig = run_info.get("config") or manifest.get("config") or {}
    versions = {"finintel": run_info.get("finintel_version", manifest.get("finintel_version"))}
    versions.update(run_info.get("libraries") or manifest.get("libraries") or {})
    chosen = next((r for r in segments["k_table"] if r.get("k") == segments["chosen_k"]), KRow())
    return {
        "versions": versions,
        "parameters": {
            "seed": overview["seed"],
            "risk": config.get("risk"),
            "anomaly": config.get("anomaly"),
            "segments": config.get("segments"),
            "features": config.get("features"),
        },
        "k_selection_evidence": {
            "chosen_k": segments["chosen_k"],
            "elbow_k": segments["elbow_k"],
            "rule": segments["rule"],
            "reason": segments["reason"],
            "table": segments["k_table"],
            "stable": segments.get("stable"),
            "attempts": segments.get("attempts") or [],
        },
        "stability": {
            "stability": segments["stability"],
            "stability_sd": segments["stability_sd"],
            "stability_low": chosen.get("stability_low"),
            "stability_high": chosen.get("stability_high"),
            "silhouette": segments["silhouette"],
            "calinski_harabasz": segments["calinski_harabasz"],
            "davies_bouldin": segments["davies_bouldin"],
        },
        "timings_seconds": run_info.get("timings_seconds") or {},
        "limitations": _limitations(metrics, segments, risk, overview),
    }


def _limitations(
    metrics: RunMetrics, segments: Segments, risk: Risk, overview: Overview
) -> list[str]:
    notes = []
    if risk["mode"] == RISK_OFF:
        notes.append(
            f"{risk.get('off_note', '')} The run has no risk score, band, action or reasons; "
            "segments and anomalies do not use one."
        )
    elif risk["mode"] == "supervised":
        auc = risk["cv"]["roc_auc"] if risk["cv"] else None
        choice = risk.get("model_choice")
        among = (
            f", chosen among {len(choice['candidates'])} models cross-validated on the same folds"
            if choice and len(choice["candidates"]) > 1
            else ""
        )
        notes.append(
            f"The risk score is a {risk.get('model') or 'supervised model'} fitted on the "
            f"labelled customers of this run{among}; its honest accuracy is the cross-validated "
            "ROC-AUC"
            + (f" ({auc:.3f})" if isinstance(auc, int | float) else "")
            + ". In-sample curves in this report are optimistic."
        )
    elif risk.get("fallback"):
        notes.append(
            "Default outcomes were given, but no supervised model ranked the labelled customers "
            "well enough to pass the gate, so the risk score is an unsupervised ranking of "
            "declared risk factors: it orders customers but is not a probability of default."
        )
    else:
        notes.append(
            "No default outcomes were given, so the risk score is an unsupervised ranking of "
            "declared risk factors: it orders customers but is not a probability of default and "
            "has not been validated against outcomes."
        )
    if risk["mode"] != RISK_OFF:
        notes.append(
            "Risk scores are percentiles of the population the model was fitted on: the bands "
            "hold fixed shares of that population (e.g. Critical is the riskiest 10%), whatever "
            "the absolute level of risk."
        )
    notes.append(
        "Customer anomalies are unsupervised: a flag means unusual behaviour against the "
        "fitted population, not proven fraud; flagged customers need a human review."
    )
    if not overview["transactions"]:
        notes.append(
            "The data has no transactions: behavioural features, transaction alerts and "
            "transaction-based reasons are absent."
        )
    silhouette = segments["silhouette"]
    if isinstance(silhouette, int | float) and silhouette < 0.25:
        notes.append(
            f"Segments overlap (silhouette {silhouette:.2f}): they are a useful summary of "
            "customers, not sharply separated groups; customers near a boundary may move "
            "between segments on new data."
        )
    unstable = unstable_segments_note(segments)
    if unstable:
        notes.append(unstable)
    constant = (metrics.get("segments") or {}).get("constant_columns")
    if constant:
        notes.append(
            "Some segmentation columns were constant and carry no information: "
            + ", ".join(constant)
            + "."
        )
    return notes


def unstable_segments_note(segments: Segments) -> str | None:
    """The sentence saying the segments are not a stable structure, or None when they are.

    The segmenter's own verdict (`stable`, `note`) decides. A run from before the segmenter
    gave one is judged by its mean bootstrap agreement against the old bar (0.9).

    Example:
        >>> unstable_segments_note({"stable": False, "note": "No k was stable."})
        'No k was stable.'
        >>> unstable_segments_note({"stable": True, "note": "The 4 segments are stable."})
        >>> unstable_segments_note({"stability": 0.51})[:54]
        'The segments are not a stable structure (bootstrap agr'
    """
    stable = segments.get("stable")
    if stable is True:
        return None
    if stable is False:
        chosen = segments.get("chosen_k")
        return segments.get("note") or (
            f"The {chosen} segments are not stable: they are a partition of the customers, "
            "not a structure found in the data."
        )
    stability = segments.get("stability")
    if isinstance(stability, int | float) and stability < LEGACY_MIN_STABILITY:
        return (
            f"The segments are not a stable structure (bootstrap agreement {stability:.2f}, "
            f"below {LEGACY_MIN_STABILITY}): refits on other samples draw the boundaries "
            "differently."
        )
    return None


# ---------------------------------------------------------------------- reading


def _settings(manifest: Manifest, run_info: RunRecord, name: str) -> Any:
    """A model's settings as fitted (bundle manifest), else as configured for this run."""
    for config in (manifest.get("config"), run_info.get("config")):
        section = cast(Mapping[str, Any], config or {}).get(name)
        if section:
            return section
    return {}


def _labels_available(con: duckdb.DuckDBPyConnection, layout: RunLayout, columns: set[str]) -> bool:
    """Outcomes to judge the score with: a non-empty clean labels table and a PD column."""
    labels = layout.clean_table("labels")
    if "probability_of_default" not in columns or not labels.is_file():
        return False
    return bool(_one(con, f"SELECT count(*) FROM read_parquet({_lit(labels)})"))


def _clean_rows(validation: ValidationReport, table: str) -> int:
    return int(((validation.get("tables") or {}).get(table) or {}).get("clean", 0))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _typed_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row with numeric-looking fields as numbers (ids and timestamps stay text)."""
    out: dict[str, Any] = {}
    for key, text in row.items():
        number = _number(text) if key in {"amount", "alert_score", "segment_id"} else None
        out[key] = text if number is None else number
    return out


def _number(text: str | None) -> float | int | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if value.is_integer() and "." not in text and "e" not in text.lower():
        return int(value)
    return value


def _one(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    return con.execute(query).fetchall()[0][0]


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _lit(path: Path) -> str:
    return quote_literal(str(path))


# A JSON list holding only numbers (as json.dumps writes it with indent): one line instead.
_NUMBER_LIST = re.compile(r"\[(?:\s*-?\d[\d.eE+-]*,)*\s*-?\d[\d.eE+-]*\s*\]")


def _one_line(match: re.Match[str]) -> str:
    return "[" + " ".join(match.group(0)[1:-1].split()) + "]"


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: non-finite floats become None, dates become ISO text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)
