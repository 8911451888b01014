"""The data behind the plots, computed once while summarizing (the plots only draw it).

Per-customer columns are reduced here to what a plot shows, so `summary.json` stays small:
score histograms (50 bins of 2 points), one box plot's statistics per segment, the ROC curve
(at most `MAX_CURVE_POINTS` corners) and calibration groups of the labelled customers, and the
PCA view of the segmenter's space (components fitted on at most `PCA_FIT_SAMPLE` customers, at
most `PCA_POINTS` of them shown, both seeded samples; coordinates to `PCA_DECIMALS` decimals).
Each builder raises `PlotUnavailableError` when the data cannot support its plot; `plot_data`
collects the reasons.

ROC, calibration and box statistics are computed with numpy the way scikit-learn's
`roc_curve`/`calibration_curve(strategy="quantile")` and matplotlib's `boxplot` compute them,
so the plots look exactly as when they were drawn from the raw columns. Only the PCA needs
scikit-learn (imported when it runs); the rest needs numpy and duckdb.

Example:
    >>> data, skipped = plot_data(con, RunLayout(run_dir), model, inputs)  # doctest: +SKIP
    >>> data["risk_distribution"]["counts"][:3]  # doctest: +SKIP
    [61, 59, 60]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt

from finintel.errors import PlotUnavailableError
from finintel.report.model_view import ModelView
from finintel.report.shapes import (
    BoxStats,
    CalibrationCurve,
    Histogram,
    PcaCentroid,
    PcaSegment,
    PcaView,
    PlotData,
    RocCurve,
    ThresholdHistogram,
)
from finintel.run_layout import RunLayout
from finintel.sql import quote_literal

FloatArray = npt.NDArray[np.float64]

PCA_FIT_SAMPLE = 20_000  # customers the principal components are fitted on
PCA_POINTS = 5_000  # customers drawn in the PCA view
PCA_DECIMALS = 6  # customers' coordinates, robust z units: far below a pixel of the plot
MAX_CURVE_POINTS = 2_000  # corners of the ROC curve kept in the summary
PROBABILITY = "probability_of_default"
PROBABILITY_BINS = 50
SCORE_BINS: list[float] = [2.0 * i for i in range(51)]  # 0-100 in 2-point bins
MIN_PCA_CUSTOMERS = 2

_T = TypeVar("_T")


@dataclass(frozen=True)
class PlotInputs:
    """What the plot data needs from the rest of the summary."""

    seed: int
    segment_ids: list[int]
    anomaly_threshold: float | None
    has_labels: bool
    has_risk: bool = True  # False: the run has no risk score, hence no risk plots


def plot_data(
    con: duckdb.DuckDBPyConnection, layout: RunLayout, model: ModelView, inputs: PlotInputs
) -> tuple[PlotData, dict[str, str]]:
    """The data of every data-driven plot (view `scored` in `con`), and why others are missing.

    `con` must have a view `scored` over customers_scored. Returns `(data, skipped)`: data
    keyed by plot name, and `{plot name: reason}` for the plots the data cannot support.
    """
    columns = _Columns(con)
    skipped: dict[str, str] = {}
    data: PlotData = {}
    pca = _attempt("segments_pca", skipped, lambda: _pca_view(columns, model, inputs))
    if pca is not None:
        data["segments_pca"] = pca
    if inputs.has_risk:
        _risk_plot_data(columns, inputs, data, skipped)
    if inputs.has_risk and inputs.has_labels:
        labelled = _Labelled(con, layout)
        roc = _attempt("risk_roc", skipped, lambda: _roc(*labelled.get()))
        if roc is not None:
            data["risk_roc"] = roc
        calibration = _attempt("risk_calibration", skipped, lambda: _calibration(*labelled.get()))
        if calibration is not None:
            data["risk_calibration"] = calibration
    anomaly = _attempt(
        "anomaly_distribution",
        skipped,
        lambda: _threshold_histogram(columns.floats("anomaly_score"), inputs.anomaly_threshold),
    )
    if anomaly is not None:
        data["anomaly_distribution"] = anomaly
    return data, skipped


def _risk_plot_data(
    columns: _Columns, inputs: PlotInputs, data: PlotData, skipped: dict[str, str]
) -> None:
    """The risk histogram and the per-segment box statistics, into `data`."""
    risk = _attempt("risk_distribution", skipped, lambda: _risk_histogram(columns))
    if risk is not None:
        data["risk_distribution"] = risk
    boxes = _attempt("risk_by_segment", skipped, lambda: _box_stats(columns, inputs.segment_ids))
    if boxes is not None:
        data["risk_by_segment"] = boxes


def _attempt(name: str, skipped: dict[str, str], build: Callable[[], _T]) -> _T | None:
    """`build()`, or None with the reason recorded in `skipped` when the data cannot support it."""
    try:
        return build()
    except PlotUnavailableError as exc:
        skipped[name] = str(exc)
        return None


# ---------------------------------------------------------------------- reading


class _Columns:
    """Columns of `scored`, ordered by customer_id, read once on demand."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._cache: dict[str, Any] = {}

    def get(self, names: Sequence[str]) -> dict[str, Any]:
        missing = [n for n in names if n not in self._cache]
        if missing:
            select = ", ".join(f'"{n}"' for n in missing)
            got = self._con.execute(
                f"SELECT {select} FROM scored ORDER BY customer_id"
            ).fetchnumpy()
            for n in missing:
                self._cache[n] = np.asarray(got[n])
        return {n: self._cache[n] for n in names}

    def floats(self, name: str) -> FloatArray:
        return as_float(self.get([name])[name])

    def names(self) -> set[str]:
        """The columns of `scored`."""
        return {r[0] for r in self._con.execute("DESCRIBE scored").fetchall()}


class _Labelled:
    """Known outcomes (0/1) and the predicted PD of the same customers, read once."""

    def __init__(self, con: duckdb.DuckDBPyConnection, layout: RunLayout) -> None:
        self._con = con
        self._path = layout.clean_table("labels")
        self._got: tuple[FloatArray, FloatArray] | None = None

    def get(self) -> tuple[FloatArray, FloatArray]:
        if self._got is None:
            got = self._con.execute(
                "SELECT l.defaulted::DOUBLE AS y, s.probability_of_default AS p FROM scored s "
                f"JOIN read_parquet({quote_literal(str(self._path))}) l USING (customer_id) "
                "WHERE l.defaulted IS NOT NULL AND s.probability_of_default IS NOT NULL "
                "AND isfinite(s.probability_of_default) ORDER BY s.customer_id"
            ).fetchnumpy()
            self._got = as_float(got["y"]), as_float(got["p"])
        y, p = self._got
        if y.size == 0 or len(np.unique(y)) < 2:
            raise PlotUnavailableError(
                "the labelled customers do not include both defaults and non-defaults"
            )
        if not np.isin(y, (0.0, 1.0)).all():
            raise PlotUnavailableError("the default labels are not all 0 or 1")
        return y, p


def as_float(column: Any) -> FloatArray:
    """A fetched column as float64, NULL (masked) as NaN."""
    if np.ma.isMaskedArray(column):
        return np.asarray(np.ma.filled(column.astype(np.float64), np.nan), dtype=np.float64)
    return np.asarray(column, dtype=np.float64)


# ---------------------------------------------------------------------- segments


def _pca_view(columns: _Columns, model: ModelView, inputs: PlotInputs) -> PcaView:
    """Customers and centroids in two principal components of the segmenter's space."""
    space = model.space
    if space is None:
        raise PlotUnavailableError(model.missing or "the segmenter cannot be read")
    if len(space.columns) < 2:
        raise PlotUnavailableError("segmentation uses a single column: there is no 2-D view")
    values = columns.get([*space.columns, "segment_id"])
    n = len(values["segment_id"])
    if n < MIN_PCA_CUSTOMERS:
        raise PlotUnavailableError(
            f"a two-dimensional view needs at least {MIN_PCA_CUSTOMERS} customers; this run has {n}"
        )
    try:
        from sklearn.decomposition import PCA
    except ImportError as exc:
        raise PlotUnavailableError(
            f"the PCA view needs the models extra (finintel[models]): {exc}"
        ) from None
    matrix = np.column_stack([as_float(values[c]) for c in space.columns])
    seg_ids = np.asarray(values["segment_id"]).astype(np.int64)
    rng = np.random.default_rng(inputs.seed)
    if n > PCA_FIT_SAMPLE:
        rows = np.sort(rng.choice(n, PCA_FIT_SAMPLE, replace=False))
    else:
        rows = np.arange(n)
    z = space.transform(matrix[rows])  # the transform clips as the model does
    if not np.isfinite(z).all() or np.ptp(z, axis=0).max() == 0.0:
        raise PlotUnavailableError("the customers do not spread in the segmenter's space")
    pca = PCA(n_components=2, random_state=inputs.seed).fit(z)
    points = pca.transform(z)
    centres = pca.transform(space.centroids)
    shown = np.arange(len(rows))
    if len(rows) > PCA_POINTS:
        shown = np.sort(rng.choice(len(rows), PCA_POINTS, replace=False))
    points, ids = points[shown], seg_ids[rows][shown]
    segments: list[PcaSegment] = []
    for sid in inputs.segment_ids:
        mask = ids == sid
        segments.append(
            {
                "segment_id": sid,
                "x": [round(float(v), PCA_DECIMALS) for v in points[mask, 0]],
                "y": [round(float(v), PCA_DECIMALS) for v in points[mask, 1]],
            }
        )
    centroids: list[PcaCentroid] = [
        {"segment_id": j + 1, "x": float(x), "y": float(y)} for j, (x, y) in enumerate(centres)
    ]
    return {
        "customers": n,
        "fitted_on": len(rows),
        "shown": len(shown),
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
        "segments": segments,
        "centroids": centroids,
    }


# ---------------------------------------------------------------------- risk


def _histogram(scores: FloatArray) -> Histogram:
    counts, _ = np.histogram(scores[np.isfinite(scores)], bins=SCORE_BINS)
    return {"edges": list(SCORE_BINS), "counts": [int(c) for c in counts]}


def _risk_histogram(columns: _Columns) -> Histogram:
    """What the risk plot shows: the probability of default of a supervised model, else the
    0-100 score (a percentile), which is left out when it is flat by construction."""
    if PROBABILITY in columns.names():
        probability = columns.floats(PROBABILITY)
        if np.isfinite(probability).any():
            return _probability_histogram(probability)
    histogram = _histogram(columns.floats("risk_score"))
    if is_flat(histogram["counts"]):
        raise PlotUnavailableError(
            "the risk score is each customer's percentile in the population the model was "
            "fitted on, so over that population its histogram is flat by construction (every "
            "2-point bin holds 2% of the customers); the run's files do not hold the raw "
            "composite value the percentile is taken of"
        )
    return {**histogram, "scale": "percentile"}


def _probability_histogram(probability: FloatArray) -> Histogram:
    """Probabilities of default in 50 equal bins from 0 to the largest, rounded up to 0.05.

    Example:
        >>> h = _probability_histogram(np.array([0.01, 0.02, 0.31]))
        >>> h["edges"][-1], sum(h["counts"]), h["scale"]
        (0.35, 3, 'probability_of_default')
    """
    finite = probability[np.isfinite(probability)]
    top = min(1.0, float(np.ceil(float(finite.max()) * 20 - 1e-9) / 20) or 0.05)
    edges = np.linspace(0.0, top, PROBABILITY_BINS + 1)
    counts, _ = np.histogram(np.clip(finite, 0.0, top), bins=edges)
    return {
        "edges": [round(float(e), 6) for e in edges],
        "counts": [int(c) for c in counts],
        "scale": "probability_of_default",
    }


def is_flat(counts: Sequence[int]) -> bool:
    """Counts far more even than a random sample's: what percentiles of their own population
    give (chi-square statistic below a quarter of its degrees of freedom).

    Example:
        >>> is_flat([20] * 50), is_flat([19, 21] * 25), is_flat([0, 40] * 25)
        (True, True, False)
    """
    values = np.asarray(counts, dtype=np.float64)
    expected = float(values.mean()) if values.size else 0.0
    if expected <= 0:
        return False
    chi2 = float(((values - expected) ** 2 / expected).sum())
    return chi2 < (values.size - 1) / 4


def _box_stats(columns: _Columns, segment_ids: Sequence[int]) -> list[BoxStats]:
    """Per segment with customers: quartiles, 1.5 IQR whiskers and mean (as `boxplot` does)."""
    scores = columns.floats("risk_score")
    ids = np.asarray(columns.get(["segment_id"])["segment_id"]).astype(np.int64)
    stats: list[BoxStats] = []
    for sid in segment_ids:
        group = scores[(ids == sid) & np.isfinite(scores)]
        if group.size == 0:
            continue
        q1, med, q3 = (float(v) for v in np.percentile(group, [25, 50, 75]))
        iqr = q3 - q1
        high = group[group <= q3 + 1.5 * iqr]
        low = group[group >= q1 - 1.5 * iqr]
        whishi = q3 if high.size == 0 or high.max() < q3 else float(high.max())
        whislo = q1 if low.size == 0 or low.min() > q1 else float(low.min())
        stats.append(
            {
                "segment_id": sid,
                "customers": int(group.size),
                "mean": float(group.mean()),
                "q1": q1,
                "med": med,
                "q3": q3,
                "whislo": whislo,
                "whishi": whishi,
            }
        )
    if not stats:
        raise PlotUnavailableError("no customer has a risk score")
    return stats


def _roc(y: FloatArray, p: FloatArray) -> RocCurve:
    """The ROC curve's corners (as scikit-learn's `roc_curve`) and its area."""
    order = np.argsort(p, kind="stable")[::-1]
    p_sorted, y_sorted = p[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted, dtype=np.float64)[ends]
    fps = 1.0 + ends.astype(np.float64) - tps
    if fps.size > 2:  # drop points on a straight line between their neighbours
        corners = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[corners], tps[corners]
    fpr = np.r_[0.0, fps] / fps[-1]
    tpr = np.r_[0.0, tps] / tps[-1]
    auc = float(np.trapezoid(tpr, fpr))
    if fpr.size > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, fpr.size - 1, MAX_CURVE_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {
        "fpr": [float(v) for v in fpr],
        "tpr": [float(v) for v in tpr],
        "roc_auc": auc,
        "labelled": int(y.size),
        "defaults": int(y.sum()),
    }


def _calibration(y: FloatArray, p: FloatArray) -> CalibrationCurve:
    """Mean predicted PD and observed default rate in up to 10 quantile groups."""
    if p.min() < 0.0 or p.max() > 1.0:
        raise PlotUnavailableError("the probabilities of default are not all between 0 and 1")
    bins = int(min(10, max(2, y.size // 50)))
    edges = np.percentile(p, np.linspace(0.0, 1.0, bins + 1) * 100)
    group = np.searchsorted(edges[1:-1], p)
    total = np.bincount(group, minlength=bins)
    predicted = np.bincount(group, weights=p, minlength=bins)
    observed = np.bincount(group, weights=y, minlength=bins)
    used = total != 0
    mean_p, rate = predicted[used] / total[used], observed[used] / total[used]
    return {
        "predicted": [float(v) for v in mean_p],
        "observed": [float(v) for v in rate],
        "bins": bins,
        "labelled": int(y.size),
    }


# ---------------------------------------------------------------------- anomalies


def _threshold_histogram(scores: FloatArray, threshold: float | None) -> ThresholdHistogram:
    finite = scores[np.isfinite(scores)]
    if threshold is None:
        below, at_or_above = finite, finite[:0]
    else:
        below, at_or_above = finite[finite < threshold], finite[finite >= threshold]
    return {
        "edges": list(SCORE_BINS),
        "threshold": threshold,
        "below": [int(c) for c in np.histogram(below, bins=SCORE_BINS)[0]],
        "at_or_above": [int(c) for c in np.histogram(at_or_above, bins=SCORE_BINS)[0]],
    }
