"""The only place that knows the order of the steps: validate, features, models, results.

Each step writes its files atomically into the output directory (names from
`finintel.run_layout`); `validation.json`, `features.json` and `run.json` are written last in
their step, so their presence marks a finished step. `run_all` fits the models (with
`cfg.seed`) and saves the bundle; `run_score` loads a bundle (`load_model`), scores the batch
with `score_batch` (no file written) and then writes the results. The report is not a step of
the pipeline: the shells call `add_report` after it, which builds the report best effort and
records in `run.json` whether it was built and why not.

A run may have no risk score (`[risk] enabled = false`, or no risk factor applies; see
`finintel.scoring.RiskOff`): then customers_scored has no risk columns, metrics.json's `risk`
and run.json's `counts.risk_off` record why, and the bundle's manifest carries the same record
(`risk_off`) instead of a risk part, so `score` with that bundle scores without risk as well.

Example:
    >>> from finintel.config import config_for_files
    >>> cfg = config_for_files("customers.csv", "transactions.csv")
    >>> result = run_features(cfg, Path("."), Path("out"))  # doctest: +SKIP
    >>> result.features_path.name  # doctest: +SKIP
    'features.parquet'
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt

from finintel import __version__
from finintel.bundle import Bundle, library_versions, load_bundle, save_bundle
from finintel.config import FinintelConfig
from finintel.errors import BundleError, DataError, FinintelError, OptionalDependencyError
from finintel.features import FeaturePlan, build_features, feature_columns, plan_features
from finintel.features.catalog import CATALOG, MIX_FEATURES
from finintel.models.frame import FeatureFrame, load_frame
from finintel.readers import resolve
from finintel.results import segment_rows, write_results
from finintel.run_layout import MANIFEST_JSON, RunLayout, require_finished_run
from finintel.scoring import (
    FittedModels,
    RiskOff,
    ScoredCustomers,
    apply_models,
    fit_models,
    labels_for,
)
from finintel.sql import connect, first_line
from finintel.validate import (
    NULLED,
    REJECTS,
    TABLE_ORDER,
    TableReport,
    ValidationResult,
    check_reject_share,
    validate,
)
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
    """Validate every table and write clean tables, rejects and `validation.json`.

    Raises:
        RejectShareError: a table lost more than `[validation] max_reject_share` of its rows;
            raised after every file above is written, so the rejects show why.
    """
    con = con or connect()
    layout = RunLayout(out_dir)
    # the folder is being rewritten: an earlier run's record must not make a run that stops
    # part-way (at the reject-share limit, say) look finished
    layout.run_json.unlink(missing_ok=True)
    result = validate(con, cfg, base, today=today, progress=progress)
    if progress:
        progress("writing clean tables and rejects")
    for name in TABLE_ORDER:
        write_query(con, f"SELECT * FROM {result.clean[name]}", layout.clean_table(name), "parquet")
    # One column order in both files (see finintel.validate): table, source, row, rule,
    # column, reason, then the raw text.
    order = '"table", source, "row", rule, "column", reason'
    rejects = f'SELECT {order}, raw FROM {REJECTS} ORDER BY "table", "row"'
    write_query(con, rejects, layout.rejects_csv, "csv")
    write_query(con, rejects, layout.rejects_parquet, "parquet")
    write_query(
        con,
        f'SELECT {order}, raw_value FROM {NULLED} ORDER BY "table", "row", "column"',
        layout.nulled_csv,
        "csv",
    )
    limit = {"max_reject_share": cfg.validation.max_reject_share}
    write_json(
        layout.validation_json, {"finintel_version": __version__, **limit, **result.to_dict()}
    )
    where = f"{layout.rejects_csv.name} in {layout.rejects_csv.parent}"
    check_reject_share(con, result, cfg.validation, where)
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
    layout = RunLayout(out_dir)
    write_query(con, f"SELECT * FROM {table}", layout.features_parquet, "parquet")
    write_query(con, f"SELECT * FROM {table}", layout.features_csv, "csv")
    count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    write_json(layout.features_json, feature_manifest(plan, int(count)))
    return FeatureRun(validation, plan, int(count), layout.features_parquet)


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


ReportStatus = Literal["built", "skipped", "failed", "pending"]
# Builds the report of a run directory and returns the path of report.html.
ReportBuilder = Callable[[Path, Progress | None], Path]
PENDING_REASON = "not built yet: `finintel report RUN` builds it"
REPORT_EXTRA_MISSING = "install finintel[report] for report.html and plots"


@dataclass(frozen=True)
class ReportOutcome:
    """Whether `report.html` was built: where, or why not (recorded in `run.json`).

    `skipped` means the `report` extra is not installed; `failed` means building it raised
    (the result files are complete all the same); `pending` is what `run.json` says until
    `add_report` has run.

    Example:
        >>> ReportOutcome("failed", reason="DataError: too few customers").to_dict()
        {'status': 'failed', 'path': None, 'reason': 'DataError: too few customers'}
    """

    status: ReportStatus
    path: Path | None = None
    reason: str | None = None
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def built(self) -> bool:
        return self.status == "built"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "path": None if self.path is None else str(self.path),
            "reason": self.reason,
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


@dataclass(frozen=True)
class LoadedModel:
    """A verified model bundle with its feature plan and fitted models, ready to score batches."""

    bundle: Bundle
    plan: FeaturePlan
    fitted: FittedModels

    @property
    def feature_columns(self) -> list[str]:
        """The feature columns the models were fitted on, in order."""
        return list(self.bundle.manifest["feature_columns"])


def load_model(model_dir: Path) -> LoadedModel:
    """Verify and load the bundle in `model_dir`; no code from the bundle is run.

    Raises:
        BundleError: the bundle is missing, changed, from another version, or its fitted
            state cannot be loaded.

    Example:
        >>> model = load_model(Path("run/model"))  # doctest: +SKIP
        >>> model.plan.as_of  # doctest: +SKIP
        datetime.date(2026, 11, 21)
    """
    bundle = load_bundle(model_dir)
    plan = FeaturePlan.from_dict(bundle.manifest["feature_plan"])
    try:
        risk_off = RiskOff.from_dict(bundle.manifest.get("risk_off"))
        columns = list(bundle.manifest["segment_columns"])
        fitted = FittedModels.from_parts(bundle.parts, columns, risk_off)
    except OptionalDependencyError:
        raise
    except Exception as exc:  # a refused skops type, a damaged or foreign state file, ...
        raise BundleError(model_dir, f"the fitted state cannot be loaded: {exc}") from None
    return LoadedModel(bundle, plan, fitted)


def score_batch(
    con: duckdb.DuckDBPyConnection,
    validated: ValidationResult,
    model: LoadedModel,
    cfg: FinintelConfig,
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> ScoredCustomers:
    """Score validated data with a loaded model: writes no file and draws nothing.

    Builds the features with the model's stored plan (in the `features` table of `con`),
    checks they are the model's, and applies the fitted models (which also leave the
    `transaction_alerts` table in `con`). Any number of customers, even one, can be scored.

    Raises:
        BundleError: the data cannot provide the features the model was fitted on.

    Example:
        >>> con = connect()  # doctest: +SKIP
        >>> validated = validate(con, cfg, Path("."))  # doctest: +SKIP
        >>> model = load_model(Path("run/model"))  # doctest: +SKIP
        >>> scored = score_batch(con, validated, model, cfg)  # doctest: +SKIP
        >>> scored.table.num_rows  # doctest: +SKIP
        1
    """
    _check_feature_match(model.bundle, cfg, con, validated, model.plan, today)
    if progress:
        progress("building customer features with the model's feature plan")
    frame = load_frame(con, build_features(con, model.plan))
    if list(frame.columns) != model.feature_columns:
        raise BundleError(
            model.bundle.path, "the feature columns built for this data differ from the model's"
        )
    return apply_models(con, frame, model.fitted, progress)


def run_all(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> ModelRun:
    """Validate, build features, fit and apply every model (seed: `cfg.seed`), write it all."""
    clock = _Clock()
    layout = RunLayout(out_dir)
    features = run_features(cfg, base, out_dir, today, progress)
    clock.lap("validate_and_features")
    con = features.validation.con
    frame = load_frame(con, "features")
    labels = _labels(con, frame, features.validation.result.reports.get("labels"))
    fitted = fit_models(con, frame, labels, cfg, cfg.seed, progress)
    clock.lap("fit")
    scored = apply_models(con, frame, fitted, progress)
    clock.lap("score")
    if progress:
        progress("writing results and the model bundle")
    write_results(con, out_dir, scored)
    metrics = {"finintel_version": __version__, "seed": cfg.seed, **fitted.metrics()}
    write_json(layout.metrics_json, metrics)
    save_bundle(
        layout.model_dir,
        fitted.to_parts(),
        {
            "feature_plan": features.plan.to_dict(),
            "feature_columns": list(frame.columns),
            "segment_columns": fitted.segment_columns,
            "risk_off": fitted.risk_off.to_dict() if fitted.risk_off else None,
            "seed": cfg.seed,
            "training": training_statistics(frame, labels),
            "config": cfg.model_dump(mode="json"),
        },
    )
    clock.lap("write")
    summary = _finish(out_dir, "run", cfg, base, clock, features, scored, {"seed": cfg.seed})
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
    layout = RunLayout(out_dir)
    if progress:
        progress("checking the model bundle")
    model = load_model(model_dir)
    clock.lap("load_model")
    validation = run_validation(cfg, base, out_dir, today, progress)
    clock.lap("validate")
    scored = score_batch(
        validation.con, validation.result, model, cfg, today=today, progress=progress
    )
    clock.lap("score")
    count = scored.table.num_rows
    write_json(layout.features_json, feature_manifest(model.plan, count))
    features = FeatureRun(validation, model.plan, count, layout.scored_parquet)
    write_results(validation.con, out_dir, scored)
    metrics = {
        "finintel_version": __version__,
        "source": f"the model bundle {model_dir}: measured when the model was fitted",
        **model.fitted.metrics(),
    }
    write_json(layout.metrics_json, metrics)
    clock.lap("write")
    manifest = {"path": str(model_dir), "manifest_sha256": _file_sha256(model_dir / MANIFEST_JSON)}
    summary = _finish(out_dir, "score", cfg, base, clock, features, scored, {"model": manifest})
    return ModelRun(features, model.fitted, scored, out_dir, metrics, summary)


def _finish(
    out_dir: Path,
    command: str,
    cfg: FinintelConfig,
    base: Path,
    clock: _Clock,
    features: FeatureRun,
    scored: ScoredCustomers,
    details: dict[str, Any],
) -> dict[str, Any]:
    """Write run.json, which marks a finished run; return the counts.

    Report files of an earlier run in the same directory are removed: they describe other
    results. The report comes after, from the shell (`add_report`).
    """
    layout = RunLayout(out_dir)
    _remove_report_files(layout)
    summary = run_summary(features, scored)
    record = {
        "command": command,
        "finintel_version": __version__,
        "libraries": library_versions(),
        **details,
        "config": cfg.model_dump(mode="json"),
        "inputs": input_fingerprints(cfg, base),
        "timings_seconds": clock.laps,
        "counts": summary,
        "report": ReportOutcome("pending", reason=PENDING_REASON).to_dict(),
    }
    write_json(layout.run_json, record)
    return summary


def add_report(
    run_dir: Path, build: ReportBuilder | None, progress: Progress | None = None
) -> ReportOutcome:
    """Build the report of a finished run, best effort, and record the outcome in run.json.

    `build` is `finintel.report.build_report`, given by the shell (the pipeline does not
    import the report), or None when the report extra is not installed. A report that raises
    (any error: too little data for a plot, a rendering failure, ...) leaves no report files;
    the run stays finished and run.json says why.

    Raises:
        RunDirError: `run_dir` is not a finished run.

    Example:
        >>> from finintel.report import build_report  # doctest: +SKIP
        >>> add_report(Path("run"), build_report).status  # doctest: +SKIP
        'built'
    """
    layout = RunLayout(require_finished_run(run_dir))
    _remove_report_files(layout)
    start = time.perf_counter()
    if build is None:
        outcome = ReportOutcome("skipped", reason=REPORT_EXTRA_MISSING)
    else:
        try:
            outcome = ReportOutcome("built", path=build(Path(run_dir), progress))
        except Exception as exc:  # a FinintelError, a plotting or rendering failure, ...
            _remove_report_files(layout)
            reason = first_line(exc)
            if not isinstance(exc, FinintelError):
                reason = f"{type(exc).__name__}: {reason}"
            outcome = ReportOutcome("failed", reason=reason, error=exc)
    record = json.loads(layout.run_json.read_text(encoding="utf-8"))
    record.setdefault("timings_seconds", {})["report"] = round(time.perf_counter() - start, 3)
    record["report"] = outcome.to_dict()
    write_json(layout.run_json, record)
    return outcome


def _remove_report_files(layout: RunLayout) -> None:
    layout.report_html.unlink(missing_ok=True)
    layout.summary_json.unlink(missing_ok=True)
    if layout.plots_dir.is_dir():
        for plot in layout.plots_dir.glob("*.png"):
            plot.unlink()


def _check_feature_match(
    bundle: Bundle,
    cfg: FinintelConfig,
    con: duckdb.DuckDBPyConnection,
    validated: ValidationResult,
    plan: FeaturePlan,
    today: date | None,
) -> None:
    """Refuse data that cannot provide the features the model was trained on."""
    available = plan_features(
        con,
        cfg.features.model_copy(update={"as_of": plan.as_of}),
        validated.extra_columns,
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


def _labels(
    con: duckdb.DuckDBPyConnection, frame: FeatureFrame, report: TableReport | None
) -> npt.NDArray[np.float64] | None:
    """The outcome per customer, or None without a labels table.

    A labels table that lost every row in validation is an error, never a silent run
    without labels: the user asked for a supervised score.
    """
    if report is None:
        return None
    if report.clean == 0:
        reasons = ", ".join(f"{rule} {n:,}" for rule, n in sorted(report.by_rule.items()))
        raise DataError(
            f"{report.source}: none of the {report.rows_in:,} label rows passed validation"
            f"{f' ({reasons})' if reasons else ''}; see rejects.csv for each row's reason. "
            "Fix the labels, or remove [labels] from the config for an unsupervised risk score"
        )
    return labels_for(con, frame)


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
    """Counts a person reads first: rows, bands, anomalies, segments, alerts.

    Segment sizes and shares count the customers of this batch (as the report does), so
    scoring a few customers does not show the training segment sizes. Without a risk score,
    `risk_bands` is empty and `risk_off` says why (None when risk was scored).
    """
    table = scored.table
    flagged = sum(1 for v in table.column("is_anomaly").to_pylist() if v)
    members = Counter(table.column("segment_id").to_pylist())
    n = table.num_rows
    return {
        "validation": {
            name: {"rows_in": r.rows_in, "clean": r.clean, "quarantined": r.quarantined}
            for name, r in features.validation.result.reports.items()
        },
        "customers_scored": table.num_rows,
        "risk_bands": _band_counts(scored),
        "risk_off": scored.risk_off.to_dict() if scored.risk_off else None,
        "anomalies": flagged,
        "transaction_alerts": scored.n_alerts,
        "segments": [
            {
                "segment_id": row["segment_id"],
                "segment_name": row["segment_name"],
                "size": members[row["segment_id"]],
                "share": round(members[row["segment_id"]] / n, 6) if n else 0.0,
            }
            for row in segment_rows(scored.segments)
        ],
    }


def _band_counts(scored: ScoredCustomers) -> dict[str, int]:
    """Customers per risk band, lowest band first (empty when the run has no risk score)."""
    if scored.risk_off is not None:
        return {}
    bands = scored.table.column("risk_band").to_pylist()
    lowest: dict[str, float] = {}
    for band, value in zip(bands, scored.table.column("risk_score").to_pylist(), strict=True):
        lowest[band] = min(value, lowest.get(band, value))
    return {b: bands.count(b) for b in sorted(lowest, key=lowest.__getitem__)}


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
