"""The only place that knows the order of the steps: validate, features, models, results.

Each step writes its files atomically into the output directory; `validation.json`,
`features.json` and `run.json` are written last in their step, so their presence marks a
finished step. `run_all` fits the models and saves the bundle; `run_score` applies a bundle.

Example:
    >>> from finintel.config import config_for_files
    >>> cfg = config_for_files("customers.csv", "transactions.csv")
    >>> result = run_features(cfg, Path("."), Path("out"))  # doctest: +SKIP
    >>> result.features_path.name  # doctest: +SKIP
    'features.parquet'
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from finintel import __version__
from finintel.bundle import (
    MANIFEST,
    Bundle,
    library_versions,
    load_bundle,
    save_bundle,
)
from finintel.config import FinintelConfig
from finintel.errors import BundleError, FinintelError
from finintel.features import FeaturePlan, build_features, feature_columns, plan_features
from finintel.features.catalog import CATALOG, MIX_FEATURES
from finintel.models.frame import FeatureFrame, load_frame
from finintel.readers import resolve
from finintel.results import segment_rows, write_results
from finintel.scoring import FittedModels, ScoredCustomers, apply_models, fit_models, labels_for
from finintel.sql import connect
from finintel.validate import NULLED, REJECTS, TABLE_ORDER, ValidationResult, validate
from finintel.writers import write_json, write_query

Progress = Callable[[str], None]


@dataclass
class ValidationRun:
    """A finished validation: the open engine connection and what was written where."""

    con: duckdb.DuckDBPyConnection
    result: ValidationResult
    out_dir: Path


@dataclass
class FeatureRun:
    """A finished feature build."""

    validation: ValidationRun
    plan: FeaturePlan
    n_customers: int
    features_path: Path


def run_validation(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    today: date | None = None,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> ValidationRun:
    """Validate every table and write clean tables, rejects and `validation.json`."""
    con = con or connect()
    result = validate(con, cfg, base, today=today, progress=progress)
    if progress:
        progress("writing clean tables and rejects")
    for name in TABLE_ORDER:
        write_query(
            con,
            f"SELECT * FROM {result.clean[name]}",
            out_dir / "clean" / f"{name}.parquet",
            "parquet",
        )
    rejects = f'SELECT * FROM {REJECTS} ORDER BY "table", "row"'
    write_query(con, rejects, out_dir / "rejects.csv", "csv")
    write_query(con, rejects, out_dir / "rejects.parquet", "parquet")
    write_query(
        con,
        f'SELECT * FROM {NULLED} ORDER BY "table", "row", "column"',
        out_dir / "nulled_values.csv",
        "csv",
    )
    write_json(out_dir / "validation.json", {"finintel_version": __version__, **result.to_dict()})
    return ValidationRun(con, result, out_dir)


def run_features(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    today: date | None = None,
    progress: Progress | None = None,
) -> FeatureRun:
    """Validate, then build one feature row per customer and write features.parquet/.csv."""
    validation = run_validation(cfg, base, out_dir, today, progress)
    con = validation.con
    if progress:
        progress("building customer features")
    plan = plan_features(con, cfg.features, validation.result.extra_columns, fallback_as_of=today)
    table = build_features(con, plan)
    features_path = out_dir / "features.parquet"
    write_query(con, f"SELECT * FROM {table}", features_path, "parquet")
    write_query(con, f"SELECT * FROM {table}", out_dir / "features.csv", "csv")
    count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    write_json(out_dir / "features.json", feature_manifest(plan, int(count)))
    return FeatureRun(validation, plan, int(count), features_path)


def feature_manifest(plan: FeaturePlan, n_customers: int) -> dict[str, Any]:
    """What the feature table holds: the plan, and each column (in order) with meaning and unit."""
    columns = []
    for name in feature_columns(plan):
        if name in CATALOG:
            description, unit = CATALOG[name].description, CATALOG[name].unit
        elif name in plan.extra_columns:
            description, unit = "extra column declared in the config", "as given"
        else:
            mix = MIX_FEATURES[0] if name.startswith("channel_share_") else MIX_FEATURES[1]
            description, unit = mix.description, mix.unit
        columns.append({"name": name, "description": description, "unit": unit})
    return {
        "finintel_version": __version__,
        "customers": n_customers,
        "plan": plan.to_dict(),
        "columns": columns,
    }


@dataclass
class ModelRun:
    """A finished `finintel run` or `finintel score`: what was computed and where it went."""

    features: FeatureRun
    fitted: FittedModels
    scored: ScoredCustomers
    out_dir: Path
    metrics: dict[str, Any]
    summary: dict[str, Any]


def run_all(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    *,
    seed: int | None = None,
    today: date | None = None,
    progress: Progress | None = None,
) -> ModelRun:
    """Validate, build features, fit and apply every model, write results, metrics and bundle."""
    clock = _Clock()
    seed = cfg.seed if seed is None else seed
    features = run_features(cfg, base, out_dir, today, progress)
    clock.lap("validate_and_features")
    con = features.validation.con
    frame = load_frame(con, "features")
    label_report = features.validation.result.reports.get("labels")
    labels = labels_for(con, frame) if label_report and label_report.clean else None
    fitted = fit_models(con, frame, labels, cfg, seed, progress)
    clock.lap("fit")
    scored = apply_models(con, frame, fitted, progress)
    clock.lap("score")
    if progress:
        progress("writing results and the model bundle")
    write_results(con, out_dir, scored)
    metrics = {"finintel_version": __version__, "seed": seed, **fitted.metrics()}
    write_json(out_dir / "metrics.json", metrics)
    save_bundle(
        out_dir / "model",
        fitted.to_parts(),
        {
            "feature_plan": features.plan.to_dict(),
            "feature_columns": list(frame.columns),
            "segment_columns": fitted.segment_columns,
            "seed": seed,
            "training": training_statistics(frame, labels),
            "config": cfg.model_dump(mode="json"),
        },
    )
    clock.lap("write")
    summary = _finish(out_dir, "run", cfg, base, clock, features, scored, {"seed": seed}, progress)
    return ModelRun(features, fitted, scored, out_dir, metrics, summary)


def run_score(
    model_dir: Path,
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> ModelRun:
    """Apply a saved bundle to new data: same features, same statistics, no refitting."""
    clock = _Clock()
    if progress:
        progress("checking the model bundle")
    bundle = load_bundle(model_dir)
    plan = FeaturePlan.from_dict(bundle.manifest["feature_plan"])
    validation = run_validation(cfg, base, out_dir, today, progress)
    con = validation.con
    _check_feature_match(bundle, cfg, validation, plan, today)
    try:
        fitted = FittedModels.from_parts(bundle.parts, list(bundle.manifest["segment_columns"]))
    except FinintelError:
        raise
    except Exception as exc:  # a refused skops type, a malformed state file, ...
        raise BundleError(model_dir, f"the fitted state cannot be loaded: {exc}") from None
    clock.lap("validate_and_check")
    if progress:
        progress("building customer features with the model's feature plan")
    table = build_features(con, plan)
    frame = load_frame(con, table)
    if list(frame.columns) != list(bundle.manifest["feature_columns"]):
        raise BundleError(
            model_dir, "the feature columns built for this data differ from the model's"
        )
    count = len(frame)
    write_json(out_dir / "features.json", feature_manifest(plan, count))
    features = FeatureRun(validation, plan, count, out_dir / "customers_scored.parquet")
    scored = apply_models(con, frame, fitted, progress)
    clock.lap("score")
    write_results(con, out_dir, scored)
    metrics = {
        "finintel_version": __version__,
        "source": f"the model bundle {model_dir}: measured when the model was fitted",
        **fitted.metrics(),
    }
    write_json(out_dir / "metrics.json", metrics)
    clock.lap("write")
    model = {"path": str(model_dir), "manifest_sha256": _file_sha256(model_dir / MANIFEST)}
    summary = _finish(
        out_dir, "score", cfg, base, clock, features, scored, {"model": model}, progress
    )
    return ModelRun(features, fitted, scored, out_dir, metrics, summary)


def _finish(
    out_dir: Path,
    command: str,
    cfg: FinintelConfig,
    base: Path,
    clock: _Clock,
    features: FeatureRun,
    scored: ScoredCustomers,
    details: dict[str, Any],
    progress: Progress | None,
) -> dict[str, Any]:
    """Write run.json (which marks a finished run), then the report; return the counts."""
    summary = run_summary(features, scored)
    summary["report"] = _report_placeholder(out_dir)
    record = {
        "command": command,
        "finintel_version": __version__,
        "libraries": library_versions(),
        **details,
        "config": cfg.model_dump(mode="json"),
        "inputs": input_fingerprints(cfg, base),
        "timings_seconds": clock.laps,
        "counts": summary,
    }
    write_json(out_dir / "run.json", record)
    _build_report(out_dir, summary, progress)
    return summary


def _report_placeholder(out_dir: Path) -> str:
    """Where the report goes, or why there is none (the report extra is optional)."""
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError:
        return "not built: install finintel[report] for report.html and plots"
    return str(out_dir / "report.html")


def _build_report(out_dir: Path, summary: dict[str, Any], progress: Progress | None) -> None:
    """Build report.html after run.json, which the report reads; skipped without the extra."""
    if summary["report"].endswith("report.html"):
        from finintel.report import build_report

        build_report(out_dir, progress)


def _check_feature_match(
    bundle: Bundle,
    cfg: FinintelConfig,
    validation: ValidationRun,
    plan: FeaturePlan,
    today: date | None,
) -> None:
    """Refuse data that cannot provide the features the model was trained on."""
    available = plan_features(
        validation.con,
        cfg.features.model_copy(update={"as_of": plan.as_of}),
        validation.result.extra_columns,
        fallback_as_of=today,
    )
    lacking = [f for f in plan.features if f not in available.features]
    if lacking:
        reasons = sorted({available.omitted.get(f, "unknown") for f in lacking})
        raise BundleError(
            bundle.path,
            f"feature mismatch: the model uses {', '.join(lacking)}, which this data cannot "
            f"provide ({'; '.join(reasons)})",
        )
    missing_extra = [c for c in plan.extra_columns if c not in available.extra_columns]
    if missing_extra:
        raise BundleError(
            bundle.path,
            f"feature mismatch: the model uses extra customer column(s) {missing_extra}, "
            "which this data does not have",
        )


def training_statistics(
    frame: FeatureFrame, labels: npt.NDArray[np.float64] | None
) -> dict[str, Any]:
    """Per-feature counts and quantiles of the training data, and the label counts."""
    stats: dict[str, Any] = {"customers": len(frame), "features": {}}
    for j, name in enumerate(frame.columns):
        col = frame.values[:, j]
        finite = col[np.isfinite(col)]
        q = np.percentile(finite, [5, 50, 95]).tolist() if finite.size else [None] * 3
        stats["features"][name] = {
            "non_missing": int(finite.size),
            "p05": q[0],
            "median": q[1],
            "p95": q[2],
        }
    if labels is not None:
        known = labels[np.isfinite(labels)]
        stats["labels"] = {
            "labelled": int(known.size),
            "unlabelled": int(len(labels) - known.size),
            "defaults": int(known.sum()),
        }
    return stats


def run_summary(features: FeatureRun, scored: ScoredCustomers) -> dict[str, Any]:
    """Counts a person reads first: rows, bands, anomalies, segments, alerts."""
    table = scored.table
    bands = table.column("risk_band").to_pylist()
    lowest: dict[str, float] = {}
    for band, value in zip(bands, table.column("risk_score").to_pylist(), strict=True):
        lowest[band] = min(value, lowest.get(band, value))
    flagged = sum(1 for v in table.column("is_anomaly").to_pylist() if v)
    return {
        "validation": {
            name: {"rows_in": r.rows_in, "clean": r.clean, "quarantined": r.quarantined}
            for name, r in features.validation.result.reports.items()
        },
        "customers_scored": table.num_rows,
        "risk_bands": {b: bands.count(b) for b in sorted(lowest, key=lowest.__getitem__)},
        "anomalies": flagged,
        "transaction_alerts": scored.n_alerts,
        "segments": [
            {k: row[k] for k in ("segment_id", "segment_name", "size", "share")}
            for row in segment_rows(scored.segments)
        ],
    }


def input_fingerprints(cfg: FinintelConfig, base: Path) -> list[dict[str, Any]]:
    """Every input file the config reads: path, size and SHA-256."""
    paths: list[str] = [s.path for s in cfg.sources.values()]
    for spec in cfg.tables().values():
        paths += [p for p in [spec.path, *(j.path for j in spec.joins)] if p]
    found = []
    for path in dict.fromkeys(paths):
        file = resolve(path, base)
        if file.is_file():
            found.append(
                {"path": str(file), "bytes": file.stat().st_size, "sha256": _file_sha256(file)}
            )
    return found


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
