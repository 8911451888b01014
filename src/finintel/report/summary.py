"""Summarize a finished run once into a plain, JSON-able dict: the numbers every view shows.

`summarize(run_dir)` reads the run's files (customers_scored.parquet, segments.csv,
transaction_alerts.csv, validation.json, metrics.json, run.json, features.json and the model
bundle's manifest and segment file) and never refits or rescores anything. The HTML report and
the dashboard both render this dict, so they cannot disagree. Counts (segment sizes, band
counts, flagged customers) are computed from customers_scored itself; shares are rounded to 4
decimals and scores to 2, nothing else is rounded.

This module needs only the core dependencies (duckdb, pyarrow): no matplotlib, no jinja2 and no
scikit-learn, so the dashboard can import it.

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
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from finintel import __version__
from finintel.errors import RunDirError
from finintel.sql import quote_literal
from finintel.writers import atomic_path

SUMMARY_FILE = "summary.json"
SCORED_FILE = "customers_scored.parquet"
PLOTS_DIR = "plots"
TOP_RISK = 20
TOP_REVIEW = 50
TOP_ALERTS = 50

# Every plot the report draws, in report order, with the data it needs (see `plot_needs`).
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


def summarize(run_dir: Path) -> dict[str, Any]:
    """Build the run summary from the files in `run_dir` (see the module docstring)."""
    run_dir = Path(run_dir)
    scored = run_dir / SCORED_FILE
    if not scored.is_file():
        raise RunDirError(f"{run_dir} is not a finished run: {SCORED_FILE} is missing")
    metrics = _read_json(run_dir / "metrics.json")
    run_info = _read_json(run_dir / "run.json")
    validation = _read_json(run_dir / "validation.json")
    features = _read_json(run_dir / "features.json")
    manifest, segment_state = _model_files(run_dir, run_info)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW scored AS SELECT * FROM read_parquet({_lit(scored)})")
        columns = {r[0] for r in con.execute("DESCRIBE scored").fetchall()}
        alerts = _read_csv_rows(run_dir / "transaction_alerts.csv")
        segment_rows = _read_csv_rows(run_dir / "segments.csv")
        data_quality = _data_quality(validation)
        segments = _segments(con, metrics, segment_rows, segment_state, manifest, run_info)
        risk = _risk(con, columns, metrics, manifest, run_info)
        anomalies = _anomalies(con, metrics, alerts)
        customers = _one(con, "SELECT count(*) FROM scored")
        has_labels = _labels_available(con, run_dir, columns)
    finally:
        con.close()
    overview = {
        "customers": customers,
        "transactions": _clean_rows(validation, "transactions"),
        "anomalies": anomalies["flagged"],
        "transaction_alerts": anomalies["transaction_alerts"]["count"],
        "segments": len(segments["items"]),
        "risk_mode": risk["mode"],
        "as_of": (features.get("plan") or {}).get("as_of"),
        "seed": run_info.get("seed", manifest.get("seed")),
        "finintel_version": run_info.get("finintel_version", __version__),
        "command": run_info.get("command"),
        "created_from": run_info.get("inputs", []),
    }
    skipped = plot_needs(
        overview,
        data_quality,
        has_labels=has_labels,
        has_model=model_dir_of(run_dir) is not None,
        has_k_evidence=bool(segments["k_table"]),
    )
    summary = {
        "overview": overview,
        "data_quality": data_quality,
        "segments": segments,
        "risk": risk,
        "anomalies": anomalies,
        "model_card": _model_card(metrics, run_info, manifest, segments, risk, overview),
        "plots": {
            name: f"{PLOTS_DIR}/{name}.png"
            for name in PLOT_NAMES
            if name not in skipped and (run_dir / PLOTS_DIR / f"{name}.png").is_file()
        },
        "plots_skipped": skipped,
    }
    result: dict[str, Any] = _jsonable(summary)
    return result


def write_summary(run_dir: Path, summary: Mapping[str, Any] | None = None) -> Path:
    """Write `summary` (default: `summarize(run_dir)`) atomically to `run_dir/summary.json`."""
    run_dir = Path(run_dir)
    data = summarize(run_dir) if summary is None else summary
    target = run_dir / SUMMARY_FILE
    with atomic_path(target) as tmp:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
        tmp.write_text(text + "\n", encoding="utf-8")
    return target


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Read `run_dir/summary.json`, building and writing it first when it is missing."""
    target = Path(run_dir) / SUMMARY_FILE
    if not target.is_file():
        write_summary(Path(run_dir))
    data: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    return data


def plot_needs(
    overview: Mapping[str, Any],
    data_quality: Mapping[str, Any],
    *,
    has_labels: bool,
    has_model: bool,
    has_k_evidence: bool,
) -> dict[str, str]:
    """The plots that cannot be drawn for this run, each with the reason."""
    skipped: dict[str, str] = {}
    if not has_k_evidence:
        skipped["k_selection"] = "the run's metrics hold no k-selection evidence"
    if not has_model:
        skipped["segments_pca"] = "the run has no model bundle to read the segmenter from"
    if not overview["anomalies"]:
        skipped["anomaly_top"] = "no customer was flagged as anomalous"
    if not has_labels:
        why = "no default labels were given, so there is no outcome to compare the score with"
        skipped["risk_roc"] = why
        skipped["risk_calibration"] = why
    if not overview["customers"]:
        for name in PLOT_NAMES:
            if not name.startswith("data_quality"):
                skipped[name] = "no customers were scored"
    if not data_quality["by_rule"]:
        skipped["data_quality_rules"] = "no row was quarantined"
    return skipped


# ---------------------------------------------------------------------- sections


def _data_quality(validation: Mapping[str, Any]) -> dict[str, Any]:
    tables, by_rule = [], []
    for name, report in (validation.get("tables") or {}).items():
        nulled = report.get("nulled") or {}
        tables.append(
            {
                "table": name,
                "source": report.get("source"),
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
    metrics: Mapping[str, Any],
    segment_rows: list[dict[str, str]],
    segment_state: Mapping[str, Any],
    manifest: Mapping[str, Any],
    run_info: Mapping[str, Any],
) -> dict[str, Any]:
    seg_metrics = metrics.get("segments") or segment_state.get("metrics") or {}
    selection = seg_metrics.get("k_selection") or {}
    stored = {int(p["id"]): p for p in segment_state.get("segments", [])}
    csv_rows = {int(r["segment_id"]): r for r in segment_rows}
    counts = con.execute(
        "SELECT segment_id, any_value(segment_name), count(*), avg(risk_score), "
        "count(*) FILTER (WHERE is_anomaly) FROM scored GROUP BY segment_id ORDER BY segment_id"
    ).fetchall()
    total = sum(int(r[2]) for r in counts)
    observed = {int(r[0]): r for r in counts}
    items = []
    for segment_id in sorted(set(csv_rows) | set(observed) | set(stored)):
        row = csv_rows.get(segment_id, {})
        state = stored.get(segment_id, {})
        seen = observed.get(segment_id)
        size = int(seen[2]) if seen else 0
        name = row.get("segment_name") or state.get("name") or (seen[1] if seen else "")
        actions = state.get("actions")
        if actions is None:
            actions = [a.strip() for a in row.get("actions", "").split(";") if a.strip()]
        items.append(
            {
                "segment_id": segment_id,
                "segment_name": name,
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
    settings = _settings(manifest, run_info, "segments")
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
        "columns": list(seg_metrics.get("columns") or manifest.get("segment_columns") or []),
        "items": items,
    }


def _profile(row: Mapping[str, str], state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each segmentation feature's median (original units) and centroid z."""
    stored = state.get("profile") or {}
    written = {
        key.removeprefix("profile_"): _number(text)
        for key, text in row.items()
        if key.startswith("profile_")
    }
    profile: dict[str, dict[str, Any]] = {}
    for feature in [*stored, *(f for f in written if f not in stored)]:
        entry = stored.get(feature) or {}
        value = written[feature] if feature in written else entry.get("value")
        profile[feature] = {"value": value, "z": entry.get("z")}
    return profile


def _elbow(table: list[Mapping[str, Any]], min_gain: Any) -> int | None:
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
    columns: set[str],
    metrics: Mapping[str, Any],
    manifest: Mapping[str, Any],
    run_info: Mapping[str, Any],
) -> dict[str, Any]:
    risk_metrics = metrics.get("risk") or {}
    settings = _settings(manifest, run_info, "risk")
    total = _one(con, "SELECT count(*) FROM scored")
    observed = {
        r[0]: (int(r[1]), r[2], r[3])
        for r in con.execute(
            "SELECT risk_band, count(*), any_value(risk_action), min(risk_score) "
            "FROM scored GROUP BY risk_band"
        ).fetchall()
    }
    configured = sorted(settings.get("bands") or [], key=lambda b: float(b["min_score"]))
    bands = []
    for band in configured:
        count, action, _ = observed.get(band["name"], (0, band.get("action"), None))
        bands.append(
            {
                "name": band["name"],
                "min_score": band["min_score"],
                "action": band.get("action", action),
                "customers": count,
                "share": round(count / total, 4) if total else 0.0,
            }
        )
    for name in sorted(set(observed) - {b["name"] for b in configured}, key=str):
        count, action, lowest = observed[name]
        bands.append(
            {
                "name": name,
                "min_score": lowest,
                "action": action,
                "customers": count,
                "share": round(count / total, 4) if total else 0.0,
            }
        )
    pd_column = "probability_of_default" in columns
    top = con.execute(
        "SELECT customer_id, round(risk_score, 2), risk_band, risk_reasons, segment_name "
        f"FROM scored ORDER BY risk_score DESC, customer_id LIMIT {TOP_RISK}"
    ).fetchall()
    mode = risk_metrics.get("mode") or ("supervised" if pd_column else "unsupervised")
    result: dict[str, Any] = {
        "mode": mode,
        "bands": bands,
        "score_quantiles": risk_metrics.get("score_quantiles"),
        "mean_score": _round(_one(con, "SELECT avg(risk_score) FROM scored"), 2),
        "top_customers": [
            {
                "customer_id": r[0],
                "risk_score": r[1],
                "risk_band": r[2],
                "risk_reasons": r[3] or "",
                "segment_name": r[4],
            }
            for r in top
        ],
    }
    if mode == "supervised":
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
            key: risk_metrics.get(key)
            for key in ("labelled", "unlabelled", "bads", "goods", "bad_rate")
        }
        result["mean_probability_of_default"] = risk_metrics.get("mean_probability_of_default")
        result["calibration"] = risk_metrics.get("calibration")
    else:
        result["factors"] = [
            {
                "name": f.get("name"),
                "label": f.get("label"),
                "weight": f.get("weight"),
                "weight_share": f.get("weight_share"),
                "direction": f.get("direction"),
                "median": f.get("median"),
                "p95": f.get("p95"),
            }
            for f in risk_metrics.get("factors") or []
        ]
        result["unavailable_factors"] = risk_metrics.get("unavailable_factors") or {}
        result["cv"] = None
    return result


def _cv(cv: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not cv:
        return None
    keys = ("roc_auc", "roc_auc_std", "gini", "ks", "folds", "repeats")
    out: dict[str, Any] = {key: cv.get(key) for key in keys}
    baseline = cv.get("baseline") or {}
    if baseline:
        out["baseline"] = {k: baseline.get(k) for k in ("model", "roc_auc", "gini")}
    return out


def _anomalies(
    con: duckdb.DuckDBPyConnection,
    metrics: Mapping[str, Any],
    alerts: list[dict[str, str]],
) -> dict[str, Any]:
    m = metrics.get("anomalies") or {}
    threshold = m.get("threshold") or {}
    combination = m.get("combination") or {}
    flagged = _one(con, "SELECT count(*) FROM scored WHERE is_anomaly")
    queue = con.execute(
        "SELECT customer_id, round(anomaly_score, 2), segment_name, risk_band, anomaly_reasons "
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
    metrics: Mapping[str, Any],
    run_info: Mapping[str, Any],
    manifest: Mapping[str, Any],
    segments: Mapping[str, Any],
    risk: Mapping[str, Any],
    overview: Mapping[str, Any],
) -> dict[str, Any]:
    config = run_info.get("config") or manifest.get("config") or {}
    versions = {"finintel": run_info.get("finintel_version", manifest.get("finintel_version"))}
    versions.update(run_info.get("libraries") or manifest.get("libraries") or {})
    parameters = {
        "seed": overview["seed"],
        "risk": config.get("risk"),
        "anomaly": config.get("anomaly"),
        "segments": config.get("segments"),
        "features": config.get("features"),
    }
    return {
        "versions": versions,
        "parameters": parameters,
        "k_selection_evidence": {
            "chosen_k": segments["chosen_k"],
            "elbow_k": segments["elbow_k"],
            "rule": segments["rule"],
            "reason": segments["reason"],
            "table": segments["k_table"],
        },
        "stability": {
            "stability": segments["stability"],
            "stability_sd": segments["stability_sd"],
            "silhouette": segments["silhouette"],
            "calinski_harabasz": segments["calinski_harabasz"],
            "davies_bouldin": segments["davies_bouldin"],
        },
        "timings_seconds": run_info.get("timings_seconds") or {},
        "limitations": _limitations(metrics, segments, risk, overview),
    }


def _limitations(
    metrics: Mapping[str, Any],
    segments: Mapping[str, Any],
    risk: Mapping[str, Any],
    overview: Mapping[str, Any],
) -> list[str]:
    notes = []
    if risk["mode"] == "supervised":
        cv = risk.get("cv") or {}
        auc = cv.get("roc_auc")
        notes.append(
            "The risk score is a scorecard fitted on the labelled customers of this run; its "
            "honest accuracy is the cross-validated ROC-AUC"
            + (f" ({auc:.3f})" if isinstance(auc, int | float) else "")
            + ". In-sample curves in this report are optimistic."
        )
    else:
        notes.append(
            "No default outcomes were given, so the risk score is an unsupervised ranking of "
            "declared risk factors: it orders customers but is not a probability of default and "
            "has not been validated against outcomes."
        )
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
    silhouette = segments.get("silhouette")
    if isinstance(silhouette, int | float) and silhouette < 0.25:
        notes.append(
            f"Segments overlap (silhouette {silhouette:.2f}): they are a useful summary of "
            "customers, not sharply separated groups; customers near a boundary may move "
            "between segments on new data."
        )
    stability = segments.get("stability")
    if isinstance(stability, int | float) and stability < 0.9:
        notes.append(
            f"The chosen segmentation is not fully stable (bootstrap agreement "
            f"{stability:.2f}): refits on other samples may draw the boundaries differently."
        )
    if (metrics.get("segments") or {}).get("constant_columns"):
        notes.append(
            "Some segmentation columns were constant and carry no information: "
            + ", ".join(metrics["segments"]["constant_columns"])
            + "."
        )
    return notes


# ---------------------------------------------------------------------- reading


def _model_files(
    run_dir: Path, run_info: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundle's manifest and segment state, read as JSON (nothing executes, no sklearn)."""
    model_dir = run_dir / "model"
    if not (model_dir / "manifest.json").is_file():
        stored = (run_info.get("model") or {}).get("path")
        model_dir = Path(stored) if stored else model_dir
    manifest = _read_json(model_dir / "manifest.json")
    state = _read_json(model_dir / "segments" / "segments.json")
    return manifest, state


def model_dir_of(run_dir: Path) -> Path | None:
    """The bundle a run used: `run_dir/model`, or the bundle a `score` run names."""
    model_dir = Path(run_dir) / "model"
    if (model_dir / "manifest.json").is_file():
        return model_dir
    stored = (_read_json(Path(run_dir) / "run.json").get("model") or {}).get("path")
    if stored and (Path(stored) / "manifest.json").is_file():
        return Path(stored)
    return None


def _settings(manifest: Mapping[str, Any], run_info: Mapping[str, Any], name: str) -> Any:
    """A model's settings as fitted (bundle manifest), else as configured for this run."""
    for source in (manifest, run_info):
        section = (source.get("config") or {}).get(name)
        if section:
            return section
    return {}


def _labels_available(con: duckdb.DuckDBPyConnection, run_dir: Path, columns: set[str]) -> bool:
    """Outcomes to judge the score with: a non-empty clean labels table and a PD column."""
    labels = run_dir / "clean" / "labels.parquet"
    if "probability_of_default" not in columns or not labels.is_file():
        return False
    return bool(_one(con, f"SELECT count(*) FROM read_parquet({_lit(labels)})"))


def _clean_rows(validation: Mapping[str, Any], table: str) -> int:
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
