"""The one place models are fitted and applied: `run`, `score`, the API and the dashboard agree.

`fit_models` fits the risk score, the customer anomaly detector, the segmenter and the
transaction alerter on one feature table; `apply_models` turns a feature table into scored
customers and transaction alerts with already-fitted models, whether they were fitted a moment
ago (`finintel run`) or loaded from a bundle (`finintel score`). Scoring never refits.

The order is fixed: risk; segments (which may read the risk score, `[segments] features =
["risk_score", ...]`); transaction alerts (which compare each transaction with the customer's
segment); then customer anomalies, which read each customer's transaction evidence (the
alerter's roll-up of every transaction's alert score, `TransactionAlerts.evidence`), so a
customer with improbably many alerts is an anomalous customer. Segments therefore cannot read
the anomaly score.

The risk score is optional. `[risk] enabled = false` skips it; and with risk scoring on, no
labels and no risk factor the data can provide (`NoRiskFactorError` from the unsupervised
composite, e.g. anonymised card components kept for anomaly detection), the run goes on
without it. Either way `FittedModels.risk` is None, `FittedModels.risk_off` says why
(`RiskOff`), the bundle has no risk part and the scored customers have no risk columns. Any
other error, and every error of the supervised model, still stops the run (a supervised fit
that no model survives falls back to the composite inside `fit_risk`).

Example:
    >>> fitted = fit_models(con, frame, labels, cfg, seed=42)  # doctest: +SKIP
    >>> scored = apply_models(con, frame, fitted)  # doctest: +SKIP
    >>> scored.table.column_names[:3]  # doctest: +SKIP
    ['customer_id', 'risk_score', 'risk_band']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.config import FinintelConfig
from finintel.errors import (
    ConfigError,
    DataError,
    ModelStateError,
    NoRiskFactorError,
    OptionalDependencyError,
)
from finintel.models.frame import FeatureFrame
from finintel.run_layout import CUSTOMER_ID
from finintel.settings.risk import RiskSettings

if TYPE_CHECKING:  # the model modules need scikit-learn, imported only when models are used
    from finintel.models.anomaly import CustomerAnomalyDetector
    from finintel.models.risk_base import RiskModel
    from finintel.models.segments import Segmenter, SegmentProfile
    from finintel.models.transaction_alerts import TransactionAlerter, TransactionAlerts

Progress = Callable[[str], None]
RISK_SCORE = "risk_score"
ANOMALY_SCORE = "anomaly_score"
SEGMENTS_TABLE = "customer_segments"
ALERTS_TABLE = "transaction_alerts"
TRANSACTIONS_TABLE = "clean_transactions"
# Fewer customers than this cannot support segment stability, thresholds and percentiles.
MIN_CUSTOMERS = 50


def _models() -> Any:
    """Import the model modules, or explain which extra is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise OptionalDependencyError("scikit-learn", "models") from None
    from finintel.models import anomaly, risk, segments, transaction_alerts

    return risk, anomaly, segments, transaction_alerts


RiskOffSource = Literal["config", "no_risk_factor"]
RISK_OFF_BY_CONFIG = "[risk] enabled = false"
SILENCE_RISK_OFF = (
    "set [risk] enabled = false in the config to run without it and without this warning"
)


@dataclass(frozen=True)
class RiskOff:
    """Why a run has no risk score: `source` "config" (`[risk] enabled = false`) or
    "no_risk_factor" (risk scoring on, no labels, and no risk factor the data can provide).

    `reason` is the detail: the setting, or the `NoRiskFactorError` message listing each factor
    and why it could not be computed. `to_dict` is what metrics.json, run.json and the bundle
    manifest record; the report and the dashboard read it from there.

    Example:
        >>> RiskOff.by_config().note
        'risk scoring is off: [risk] enabled = false'
        >>> off = RiskOff("no_risk_factor", "no risk factor can be computed: dti: no column")
        >>> RiskOff.from_dict(off.to_dict()) == off, off.automatic
        (True, True)
    """

    source: RiskOffSource
    reason: str

    @classmethod
    def by_config(cls) -> RiskOff:
        """Risk scoring switched off in the settings."""
        return cls("config", RISK_OFF_BY_CONFIG)

    @property
    def automatic(self) -> bool:
        """True when risk scoring was on but skipped because no risk factor applies."""
        return self.source == "no_risk_factor"

    @property
    def note(self) -> str:
        """One sentence saying that risk scoring is off and why."""
        return f"risk scoring is off: {self.reason}"

    @property
    def headline(self) -> str:
        """`note` without the list of factors: one short line for a command's summary."""
        if not self.automatic:
            return self.note
        return (
            "risk scoring is off: no risk factor can be computed from this data "
            "(metrics.json lists each factor and why)"
        )

    @property
    def warning(self) -> str:
        """What a user is told when risk scoring was skipped automatically."""
        return (
            f"risk scoring was skipped: {self.reason}. The other models ran without a risk "
            f"score; {SILENCE_RISK_OFF}."
        )

    def to_dict(self) -> dict[str, Any]:
        """The record of metrics.json (`risk`), run.json (`counts.risk_off`) and the manifest."""
        record: dict[str, Any] = {
            "enabled": False,
            "source": self.source,
            "reason": self.reason,
            "note": self.note,
        }
        if self.automatic:
            record["how_to_silence"] = SILENCE_RISK_OFF
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RiskOff | None:
        """The record written by `to_dict`, or None (risk was scored) for no record."""
        if not data:
            return None
        source = data.get("source")
        if source not in ("config", "no_risk_factor"):
            raise ModelStateError(f"the record of the skipped risk score has source {source!r}")
        return cls("config" if source == "config" else "no_risk_factor", str(data["reason"]))


@dataclass
class FittedModels:
    """The fitted models and the columns the segmenter reads.

    `risk` is None exactly when `risk_off` says why the run has no risk score.
    """

    risk: RiskModel | None
    anomaly: CustomerAnomalyDetector
    segmenter: Segmenter
    alerter: TransactionAlerter
    segment_columns: list[str]
    risk_off: RiskOff | None = None

    def __post_init__(self) -> None:
        if (self.risk is None) == (self.risk_off is None):
            raise ModelStateError("a risk model, or the reason there is none, is needed (not both)")

    def to_parts(self) -> dict[str, dict[str, bytes]]:
        """Each model's files under its bundle part name, for `save_bundle` (no risk part when
        risk scoring is off)."""
        models = (self.risk, self.anomaly, self.segmenter, self.alerter)
        return {model.part: model.to_files() for model in models if model is not None}

    @classmethod
    def from_parts(
        cls,
        parts: Mapping[str, Mapping[str, bytes]],
        segment_columns: list[str],
        risk_off: RiskOff | None = None,
    ) -> FittedModels:
        """The models of a verified bundle's parts; a part that cannot be read is named.

        `risk_off` is the manifest's record of a run without a risk score: then the bundle
        has no risk part (and must not have one).
        """
        risk, anomaly, segments, alerts = _models()
        needed = {"anomaly", "segments", "transaction_alerts"}
        missing = sorted((needed if risk_off else needed | {"risk"}) - set(parts))
        if missing:
            raise ModelStateError(f"the bundle has no model part(s) {', '.join(missing)}")
        if risk_off is not None and "risk" in parts:
            raise ModelStateError(
                f"the bundle has a risk part but its manifest says {risk_off.note}"
            )
        return cls(
            risk=None if risk_off else risk.load_risk(parts["risk"]),
            anomaly=anomaly.CustomerAnomalyDetector.from_files(parts["anomaly"]),
            segmenter=segments.Segmenter.from_files(parts["segments"]),
            alerter=alerts.TransactionAlerter.from_files(parts["transaction_alerts"]),
            segment_columns=segment_columns,
            risk_off=risk_off,
        )

    def metrics(self) -> dict[str, Any]:
        """What each model measured and decided while fitting (for risk: why it is off)."""
        risk: dict[str, Any] = (
            self.risk.metrics_ if self.risk is not None else self._risk_off().to_dict()
        )
        return {
            "risk": risk,
            "anomalies": self.anomaly.metrics_,
            "segments": self.segmenter.metrics_,
            "transaction_alerts": self.alerter.metrics_,
        }

    def _risk_off(self) -> RiskOff:
        assert self.risk_off is not None
        return self.risk_off


@dataclass
class ScoredCustomers:
    """Model outputs per customer (aligned with the frame) and the segment profiles.

    `risk_off` is set (and the table has no risk column) when the run has no risk score.
    """

    table: pa.Table  # customer_id and every model output column
    segments: list[SegmentProfile]
    n_alerts: int
    risk_off: RiskOff | None = None


def labels_for(con: duckdb.DuckDBPyConnection, frame: FeatureFrame) -> npt.NDArray[np.float64]:
    """The outcome of each customer in `frame`: 0/1 where a label was given, NaN elsewhere."""
    rows = con.execute(
        "SELECT customer_id, max(defaulted)::DOUBLE FROM clean_labels GROUP BY customer_id"
    ).fetchall()
    known = dict(rows)
    return np.array([known.get(i, np.nan) for i in frame.ids], dtype=np.float64)


def fit_models(
    con: duckdb.DuckDBPyConnection,
    frame: FeatureFrame,
    labels: npt.NDArray[np.float64] | None,
    cfg: FinintelConfig,
    seed: int,
    progress: Progress | None = None,
) -> FittedModels:
    """Fit every model on the feature table (labels: NaN for customers without an outcome)."""
    if len(frame) < MIN_CUSTOMERS:
        raise DataError(
            f"fitting models needs at least {MIN_CUSTOMERS} customers, but the clean customers "
            f"table has {len(frame)} (see validation.json and rejects.csv)"
        )
    risk, anomaly, segments, alerts = _models()
    say = progress or (lambda _msg: None)
    value_labels = cfg.value_labels()  # the source's words for coded columns, for reasons
    risk_model, risk_off = _fit_risk(risk, frame, labels, cfg.risk, seed, value_labels, say)
    # codes of unordered categories (declared for the scorecard) are not distances: the
    # default feature sets of the anomaly detector and the segmenter leave them out
    categorical = set(cfg.risk.categorical_columns)
    say("choosing the number of segments and fitting them")
    scores = [RISK_SCORE] if risk_model is not None else []
    available = [*frame.columns, *scores]
    if cfg.segments.features is None:
        available = [c for c in available if c not in categorical]
    else:
        _check_segment_scores(cfg.segments.features, risk_off)
    columns = list(segments.segmentation_columns(cfg.segments, available))
    extended = frame
    if RISK_SCORE in columns and risk_model is not None:  # score the training customers
        extended = _with_scores(frame, {RISK_SCORE: risk_model.predict(frame).risk_score})
    # the personas speak the data's domain, never describe codes as quantities and quote
    # coded values in the source's words
    segment_settings = cfg.segments.model_copy(
        update={
            "domain": cfg.domain,
            "code_columns": sorted(categorical),
            "value_labels": {k: dict(v) for k, v in value_labels.items()},
        }
    )
    segmenter = segments.Segmenter(segment_settings, seed).fit(extended.select(columns))
    assignment = segmenter.predict(extended.select(columns))
    say("learning what is usual per customer and segment for transaction alerts")
    _register_segments(con, frame, assignment.segment_id, assignment.segment_name)
    # kept for `apply_models` on the same data (as in `run`), which then skips recomputing it
    tables = alerts.TransactionTables(con, TRANSACTIONS_TABLE, SEGMENTS_TABLE)
    alerter = alerts.TransactionAlerter(cfg.anomaly.transactions, seed).fit(
        tables, keep_for_alerts=True
    )
    say("fitting the anomaly detectors on behaviour and transaction evidence")
    anomaly_frame = _with_evidence(frame, alerter.predict(tables))
    if cfg.anomaly.features is None and categorical:
        anomaly_frame = anomaly_frame.select(
            [c for c in anomaly_frame.columns if c not in categorical]
        )
    detector = anomaly.CustomerAnomalyDetector(cfg.anomaly, seed).fit(anomaly_frame, value_labels)
    return FittedModels(risk_model, detector, segmenter, alerter, columns, risk_off)


def _fit_risk(
    risk: Any,
    frame: FeatureFrame,
    labels: npt.NDArray[np.float64] | None,
    settings: RiskSettings,
    seed: int,
    value_labels: Any,
    say: Progress,
) -> tuple[RiskModel | None, RiskOff | None]:
    """The fitted risk model, or None and why: switched off, or no risk factor applies.

    Only the unsupervised composite's `NoRiskFactorError` skips the risk score; with labels
    (the scorecard) and for every other error, the error stands.
    """
    if not settings.enabled:
        say(RiskOff.by_config().note)
        return None, RiskOff.by_config()
    say("fitting the risk score")
    try:
        return risk.fit_risk(frame, labels, settings, seed, value_labels, say), None
    except NoRiskFactorError as exc:
        if risk.resolve_mode(labels, settings) != "unsupervised":
            raise
        return None, RiskOff("no_risk_factor", str(exc))


def apply_models(
    con: duckdb.DuckDBPyConnection,
    frame: FeatureFrame,
    fitted: FittedModels,
    progress: Progress | None = None,
) -> ScoredCustomers:
    """Score every customer and create the `transaction_alerts` table, with fitted models."""
    say = progress or (lambda _msg: None)
    risk = None
    if fitted.risk is not None:
        say("scoring risk")
        risk = fitted.risk.predict(frame)
    say("assigning segments")
    extended = frame
    if risk is not None and RISK_SCORE in fitted.segment_columns:
        extended = _with_scores(frame, {RISK_SCORE: risk.risk_score})
    assignment = fitted.segmenter.predict(extended.select(fitted.segment_columns))
    say("checking transactions for alerts")
    _register_segments(con, frame, assignment.segment_id, assignment.segment_name)
    tables = _models()[3].TransactionTables(con, TRANSACTIONS_TABLE, SEGMENTS_TABLE)
    alerts = fitted.alerter.predict(tables)
    _store(con, alerts.table, ALERTS_TABLE)
    say("scoring anomalies")
    anomalies = fitted.anomaly.predict(_with_evidence(frame, alerts))
    columns: dict[str, pa.Array] = {CUSTOMER_ID: pa.array(list(frame.ids), pa.string())}
    if risk is not None:  # the order of the result columns: risk, anomalies, segments
        columns.update(risk.columns())
    for output in (anomalies, assignment):
        columns.update(output.columns())
    segments = list(fitted.segmenter.segments_)
    return ScoredCustomers(pa.table(columns), segments, len(alerts), fitted.risk_off)


def _check_segment_scores(features: list[str], risk_off: RiskOff | None) -> None:
    """Segments may read the risk score (when there is one), never the anomaly score."""
    if ANOMALY_SCORE in features:
        raise ConfigError(
            f"segments.features names {ANOMALY_SCORE}, which segments cannot use: the customer "
            "anomaly score reads the transaction alerts, and those compare each transaction "
            "with the customer's segment; name the behaviour features instead"
        )
    if risk_off is not None and RISK_SCORE in features:
        raise ConfigError(f"segments.features names {RISK_SCORE}, but {risk_off.note}")


def _with_evidence(frame: FeatureFrame, alerts: TransactionAlerts) -> FeatureFrame:
    """`frame` with each customer's transaction evidence (`EVIDENCE_COLUMNS`) appended."""
    names = _models()[3].EVIDENCE_COLUMNS
    return frame.with_columns(names, alerts.evidence(frame.ids))


def _with_scores(frame: FeatureFrame, scores: Mapping[str, npt.NDArray[Any]]) -> FeatureFrame:
    """`frame` with the model scores appended as columns (risk_score only when scored)."""
    values = np.column_stack(list(scores.values())).astype(np.float64)
    return frame.with_columns(tuple(scores), values)


def _register_segments(
    con: duckdb.DuckDBPyConnection,
    frame: FeatureFrame,
    segment_id: npt.NDArray[Any],
    segment_name: npt.NDArray[Any],
) -> None:
    """The customers' segments as the transaction alerter reads them (names for its reasons)."""
    table = pa.table(
        {
            CUSTOMER_ID: pa.array(list(frame.ids), pa.string()),
            "segment_id": pa.array(np.asarray(segment_id), pa.int32()),
            "segment_name": pa.array([str(n) for n in segment_name], pa.string()),
        }
    )
    _store(con, table, SEGMENTS_TABLE)


def _store(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str) -> None:
    """Keep an Arrow table in the engine as table `name` (replacing one of that name)."""
    con.register("_fi_arrow", table)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _fi_arrow")
    finally:
        con.unregister("_fi_arrow")
