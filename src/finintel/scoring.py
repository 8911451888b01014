"""The one place models are fitted and applied: `run`, `score`, the API and the dashboard agree.

`fit_models` fits the risk score, the customer anomaly detector, the segmenter and the
transaction alerter on one feature table; `apply_models` turns a feature table into scored
customers and transaction alerts with already-fitted models, whether they were fitted a moment
ago (`finintel run`) or loaded from a bundle (`finintel score`). Scoring never refits.

Segmentation can use the risk and anomaly scores (`[segments] features = ["risk_score", ...]`),
so the order is fixed: risk, anomalies, segments, then transaction alerts (which compare each
transaction with the customer's segment).

Example:
    >>> fitted = fit_models(con, frame, labels, cfg, seed=42)  # doctest: +SKIP
    >>> scored = apply_models(con, frame, fitted)  # doctest: +SKIP
    >>> scored.table.column_names[:3]  # doctest: +SKIP
    ['customer_id', 'risk_score', 'risk_band']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.config import FinintelConfig
from finintel.errors import DataError, ModelStateError, OptionalDependencyError
from finintel.models.frame import FeatureFrame
from finintel.run_layout import CUSTOMER_ID

if TYPE_CHECKING:  # the model modules need scikit-learn, imported only when models are used
    from finintel.models.anomaly import CustomerAnomalyDetector
    from finintel.models.risk_base import RiskModel
    from finintel.models.segments import Segmenter, SegmentProfile
    from finintel.models.transaction_alerts import TransactionAlerter

Progress = Callable[[str], None]
SCORE_COLUMNS = ("risk_score", "anomaly_score")  # model outputs segmentation may use
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


@dataclass
class FittedModels:
    """The four fitted models and the columns the segmenter reads."""

    risk: RiskModel
    anomaly: CustomerAnomalyDetector
    segmenter: Segmenter
    alerter: TransactionAlerter
    segment_columns: list[str]

    def to_parts(self) -> dict[str, dict[str, bytes]]:
        """Each model's files under its bundle part name, for `save_bundle`."""
        models = (self.risk, self.anomaly, self.segmenter, self.alerter)
        return {model.part: model.to_files() for model in models}

    @classmethod
    def from_parts(
        cls, parts: Mapping[str, Mapping[str, bytes]], segment_columns: list[str]
    ) -> FittedModels:
        """The models of a verified bundle's parts; a part that cannot be read is named."""
        risk, anomaly, segments, alerts = _models()
        missing = sorted({"risk", "anomaly", "segments", "transaction_alerts"} - set(parts))
        if missing:
            raise ModelStateError(f"the bundle has no model part(s) {', '.join(missing)}")
        return cls(
            risk=risk.load_risk(parts["risk"]),
            anomaly=anomaly.CustomerAnomalyDetector.from_files(parts["anomaly"]),
            segmenter=segments.Segmenter.from_files(parts["segments"]),
            alerter=alerts.TransactionAlerter.from_files(parts["transaction_alerts"]),
            segment_columns=segment_columns,
        )

    def metrics(self) -> dict[str, Any]:
        """What each model measured and decided while fitting."""
        return {
            "risk": self.risk.metrics_,
            "anomalies": self.anomaly.metrics_,
            "segments": self.segmenter.metrics_,
            "transaction_alerts": self.alerter.metrics_,
        }


@dataclass
class ScoredCustomers:
    """Model outputs per customer (aligned with the frame) and the segment profiles."""

    table: pa.Table  # customer_id and every model output column
    segments: list[SegmentProfile]
    n_alerts: int


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
    say("fitting the risk score")
    value_labels = cfg.value_labels()  # the source's words for coded columns, for reasons
    risk_model = risk.fit_risk(frame, labels, cfg.risk, seed, value_labels)
    # codes of unordered categories (declared for the scorecard) are not distances: the
    # default feature sets of the anomaly detector and the segmenter leave them out
    categorical = set(cfg.risk.categorical_columns)
    say("fitting the anomaly detectors")
    anomaly_frame = frame
    if cfg.anomaly.features is None and categorical:
        anomaly_frame = frame.select([c for c in frame.columns if c not in categorical])
    detector = anomaly.CustomerAnomalyDetector(cfg.anomaly, seed).fit(anomaly_frame, value_labels)
    say("choosing the number of segments and fitting them")
    available = [*frame.columns, *SCORE_COLUMNS]
    if cfg.segments.features is None:
        available = [c for c in available if c not in categorical]
    columns = list(segments.segmentation_columns(cfg.segments, available))
    extended = frame
    if set(columns) & set(SCORE_COLUMNS):  # score the training customers only when needed
        risk_score = risk_model.predict(frame).risk_score
        extended = _with_scores(frame, risk_score, detector.predict(frame).anomaly_score)
    segmenter = segments.Segmenter(cfg.segments, seed).fit(extended.select(columns))
    assignment = segmenter.predict(extended.select(columns))
    say("learning what is usual per customer and segment for transaction alerts")
    _register_segments(con, frame, assignment.segment_id)
    # kept for `apply_models` on the same data (as in `run`), which then skips recomputing it
    alerter = alerts.TransactionAlerter(cfg.anomaly.transactions, seed).fit(
        alerts.TransactionTables(con, TRANSACTIONS_TABLE, SEGMENTS_TABLE), keep_for_alerts=True
    )
    return FittedModels(risk_model, detector, segmenter, alerter, columns)


def apply_models(
    con: duckdb.DuckDBPyConnection,
    frame: FeatureFrame,
    fitted: FittedModels,
    progress: Progress | None = None,
) -> ScoredCustomers:
    """Score every customer and create the `transaction_alerts` table, with fitted models."""
    say = progress or (lambda _msg: None)
    say("scoring risk")
    risk = fitted.risk.predict(frame)
    say("scoring anomalies")
    anomalies = fitted.anomaly.predict(frame)
    say("assigning segments")
    extended = _with_scores(frame, risk.risk_score, anomalies.anomaly_score)
    assignment = fitted.segmenter.predict(extended.select(fitted.segment_columns))
    say("checking transactions for alerts")
    _register_segments(con, frame, assignment.segment_id)
    tables = _models()[3].TransactionTables(con, TRANSACTIONS_TABLE, SEGMENTS_TABLE)
    alerts = fitted.alerter.predict(tables)
    _store(con, alerts.table, ALERTS_TABLE)
    columns: dict[str, pa.Array] = {CUSTOMER_ID: pa.array(list(frame.ids), pa.string())}
    for output in (risk, anomalies, assignment):  # the order of the result columns
        columns.update(output.columns())
    return ScoredCustomers(pa.table(columns), list(fitted.segmenter.segments_), len(alerts))


def _with_scores(
    frame: FeatureFrame, risk_score: npt.NDArray[np.float64], anomaly_score: npt.NDArray[Any]
) -> FeatureFrame:
    values = np.column_stack([risk_score, anomaly_score]).astype(np.float64)
    return frame.with_columns(SCORE_COLUMNS, values)


def _register_segments(
    con: duckdb.DuckDBPyConnection, frame: FeatureFrame, segment_id: npt.NDArray[Any]
) -> None:
    table = pa.table(
        {
            CUSTOMER_ID: pa.array(list(frame.ids), pa.string()),
            "segment_id": pa.array(np.asarray(segment_id), pa.int32()),
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
