"""Customer anomaly detection: an ensemble of complementary detectors, combined by rank.

Three detectors look at the customer feature table after `RobustTransform` (signed log,
median-centring, robust scaling, clipped at `settings.clip` robust SDs):

- Isolation Forest (isolation by random splits; 300 trees of 2,048 samples by default),
- robust distance (Mahalanobis to the median with a shrunk covariance of winsorised data),
- ECOD (empirical tail probabilities per feature, from the training data only).

Each detector's score becomes its percentile in the detector's TRAINING score distribution
(stored), and the percentiles are combined by `settings.combine` ("auto" by default: the
mean, unless one detector alone sees the anomalies; `finintel.models.combination`). When the
frame carries the transaction alerter's evidence (`EVIDENCE_COLUMNS`), a customer with
improbably many alerts is raised into the flagged band (`evidence_score`). The result is
`anomaly_score` (0-100). `is_anomaly` compares it with a threshold fixed at fit time from
`expected_rate` or `alert_budget`, so new data is judged against the same bar. Every flagged
customer gets plain-words `anomaly_reasons` naming the features furthest from typical, measured
with spreads at least each unit's `spread_floor` (at most `MAX_QUOTED_SDS` robust SDs quoted;
"where 95% of customers have 1" when most customers share one value), and the transactions
when they raised the score. See docs/anomalies.md.

Example:
    >>> from finintel.settings.anomaly import AnomalySettings
    >>> detector = CustomerAnomalyDetector(AnomalySettings(), seed=7)  # doctest: +SKIP
    >>> result = detector.fit(frame).predict(frame)  # doctest: +SKIP
    >>> result.anomaly_reasons[result.is_anomaly][0]  # doctest: +SKIP
    'night-time share 46%, 6.1 robust SDs above typical (median 4%, above 99% of customers)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.errors import ConfigError, DataError, ModelStateError
from finintel.features.catalog import CATALOG, default_set
from finintel.models.base import FinintelModel
from finintel.models.combination import choose_combination, combine
from finintel.models.detectors import (
    DETECTOR_TYPES,
    Detector,
    ECODDetector,
    IsolationForestDetector,
    RobustDistanceDetector,
)
from finintel.models.distribution import TrainingDistribution
from finintel.models.explain import (
    ValueLabels,
    feature_label,
    feature_unit,
    feature_units,
    format_value,
    labels_for,
    population_phrase,
    sds_phrase,
    share_phrase,
)
from finintel.models.frame import FeatureFrame
from finintel.models.transaction_alerts import EVIDENCE_COLUMNS
from finintel.models.transform import ColumnTransform, RobustTransform
from finintel.run_layout import ANOMALY_OUTPUT_COLUMNS
from finintel.settings.anomaly import AnomalySettings, alert_count

FloatArray = npt.NDArray[np.float64]

# The default feature set describes SUSTAINED behaviour: how much and how regularly a customer
# transacts, how concentrated in time the activity is (the busiest month), and the daily and
# weekly rhythm. Features one transaction can drive (largest amounts, averages, volatility)
# are left out: a single unusual transaction is the transaction alerter's job, and such
# customers otherwise crowd the list. Channel and category shares are left out too: for
# customers with a handful of transactions they are noisy and dominated every distance.
# Profile columns (age, income, balances, loans) describe who a customer is, not what they do.
# Four typologies banks' monitoring teams look for complete it: money passed straight out,
# bursts of tiny payments (card testing), amounts just under the reporting threshold
# (structuring) and round amounts; the other typology features diluted the rest more than
# they added on the scenario banks. Measured on synthetic banks: docs/anomalies.md.
# The catalogue marks each member with `defaults={"anomaly": rank}`.
SUSTAINED_FEATURES = default_set("anomaly")
# Fewer sustained features than this (data without transaction times, say): fall back to
# every behavioural feature the data has.
MIN_SUSTAINED = 3

# The fallback: features computed from transactions alone, including channel and category mix.
BEHAVIOUR_NEEDS = frozenset({"transactions", "time_of_day", "channel", "category"})
MIX_PREFIXES = ("channel_share_", "category_spend_share_")

COMBINE_WHY = {
    "mean": (
        "set in the config: each detector's score becomes its percentile among training "
        "customers and the percentiles are averaged"
    ),
    "max": (
        "set in the config: each detector's score becomes its percentile among training "
        "customers and the most confident detector decides (ties broken by the mean)"
    ),
}

# The share of the band above the detectors' flagging bar that transaction evidence alone
# reaches (its lowest part): see `evidence_score`.
EVIDENCE_BAND = 0.25

# Grid points of the reference quantiles a reason places a value with (every whole percent).
REFERENCE_POINTS = 101

# A feature is named in a reason when it sits at least this many robust SDs from typical.
REASON_MIN_SDS = 2.0

# The least spread a reason measures a feature with, in the feature's own units
# (`spread_floor`): when most customers share one value the robust spread is near zero and a
# customer one transaction away would read as dozens of robust SDs out.
COUNT_UNITS = frozenset({"count", "days", "months"})  # Poisson-like: sqrt(median), at least 1
MIN_SHARE_SPREAD = 0.05  # shares: five percentage points
RELATIVE_UNITS = frozenset({"money", "money per month", "ratio"})
MIN_RELATIVE_SPREAD = 0.1  # money and ratios: a tenth of the median (money: at least 1)
# When at least this share of the training customers have one value, a reason says so in
# words ("transactions 2, where 95% of customers have 1") instead of quoting robust SDs.
MODE_WORDS_SHARE = 0.9


def spread_floor(unit: str, median: float) -> float:
    """The least spread a reason measures a feature with, in the feature's own units.

    Example:
        >>> [spread_floor("count", 1.0), spread_floor("count", 16.0), spread_floor("share", 0.2)]
        [1.0, 4.0, 0.05]
        >>> [spread_floor("money", 2500.0), spread_floor("money", 0.0), spread_floor("years", 40)]
        [250.0, 1.0, 0.0]
    """
    if unit in COUNT_UNITS:
        return max(1.0, math.sqrt(abs(median)))
    if unit == "share":
        return MIN_SHARE_SPREAD
    if unit in RELATIVE_UNITS:
        least = 1.0 if unit != "ratio" else 0.0
        return max(MIN_RELATIVE_SPREAD * abs(median), least)
    return 0.0


def floored_spec(spec: ColumnTransform, unit: str) -> ColumnTransform:
    """`spec` with its scale at least `spread_floor` (moved onto the signed-log scale for a
    logged column: the width of [median, median + floor] there).

    Example:
        >>> spec = ColumnTransform("tx_count", True, math.log1p(1.0), 0.01)
        >>> round(floored_spec(spec, "count").scale, 4)  # log(3) - log(2)
        0.4055
    """
    if spec.log:
        median = abs(math.expm1(abs(spec.center)))
        floor = math.log1p(median + spread_floor(unit, median)) - math.log1p(median)
    else:
        floor = spread_floor(unit, spec.center)
    return replace(spec, scale=max(spec.scale, floor))


def floored_transform(transform: RobustTransform) -> RobustTransform:
    """A copy of `transform` whose scales are at least each unit's `spread_floor`."""
    floored = RobustTransform(clip=transform.clip)
    floored.specs_ = [floored_spec(s, feature_unit(s.name)) for s in transform.specs_]
    return floored


def modal_share(values: FloatArray) -> tuple[float, float]:
    """The most common finite value and the share of all rows that have it (ties: the
    smallest value).

    Example:
        >>> modal_share(np.array([1.0, 1.0, 1.0, 2.0, np.nan]))
        (1.0, 0.6)
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, 0.0
    levels, counts = np.unique(finite, return_counts=True)
    top = int(np.argmax(counts))
    return float(levels[top]), float(counts[top] / values.size)


def default_features(columns: Sequence[str]) -> list[str]:
    """The sustained-behaviour features among `columns` (see `SUSTAINED_FEATURES`).

    With fewer than `MIN_SUSTAINED` of them, every behavioural feature among `columns` (those
    computed from transactions alone, plus channel and category shares), in their order; with
    none of those either (a customer table without transactions), every column. The
    transaction evidence (`EVIDENCE_COLUMNS`) is never a detector feature: it enters the score
    on its own scale (`evidence_score`).
    """
    columns = [c for c in columns if c not in EVIDENCE_COLUMNS]
    present = set(columns)
    sustained = [c for c in SUSTAINED_FEATURES if c in present]
    if len(sustained) >= MIN_SUSTAINED:
        return sustained
    behaviour = [
        c
        for c in columns
        if (c in CATALOG and CATALOG[c].needs <= BEHAVIOUR_NEEDS) or c.startswith(MIX_PREFIXES)
    ]
    return behaviour or list(columns)


def evidence_score(surprise: FloatArray, customers: int, bar: float) -> FloatArray:
    """The transaction evidence on the anomaly score's 0-100 scale.

    `surprise` is -log10 p, p the chance of so many alerts beyond the first among the
    customer's transactions (`tx_alert_surprise`). Multiplied by the `customers` the model was
    fitted on (Bonferroni), chance stays out: among n ordinary customers about one is expected
    at p = 1/n. A customer with n x p < 1 scores in the lowest quarter of the band above `bar`
    (the detectors' flagging bar), higher the more improbable, so improbable alerts flag a
    customer whose yearly figures look ordinary, below the customers the detectors find
    unusual in their behaviour; everyone else scores 0.

    Example:
        >>> evidence_score(np.array([0.0, 3.0, 4.0, 9.0]), 1000, bar=99.0).round(4).tolist()
        [0.0, 0.0, 99.225, 99.25]
    """
    chance = np.asarray(customers * 10.0 ** (-np.asarray(surprise, dtype=np.float64)))
    raised = bar + (100.0 - bar) * EVIDENCE_BAND * (1.0 - chance)
    return np.asarray(np.where(chance < 1.0, raised, 0.0), dtype=np.float64)


def ensemble(settings: AnomalySettings, seed: int) -> list[Detector]:
    """The detectors of the ensemble, in the order their percentiles enter the combination.

    Adding a detector: write it in `finintel.models.detectors` (the `Detector` protocol), list
    it in `DETECTOR_TYPES` there, and add it here; the stored state is a list, so its format
    does not change.
    """
    return [
        IsolationForestDetector(settings.n_estimators, settings.max_samples, seed),
        RobustDistanceDetector(),
        ECODDetector(),
    ]


def threshold_for(scores: FloatArray, count: int) -> float:
    """The score of the `count`-th highest training row: flag rows at or above it."""
    return float(np.sort(scores)[::-1][count - 1])


@dataclass(frozen=True)
class CustomerAnomalies:
    """Outputs aligned with the scored frame's rows."""

    ids: npt.NDArray[np.object_]
    anomaly_score: FloatArray
    is_anomaly: npt.NDArray[np.bool_]
    anomaly_reasons: npt.NDArray[np.object_]

    def columns(self) -> dict[str, pa.Array]:
        """The anomaly result columns."""
        arrays = [
            pa.array(self.anomaly_score, pa.float64()),
            pa.array(self.is_anomaly, pa.bool_()),
            pa.array(list(self.anomaly_reasons), pa.string()),
        ]
        return dict(zip(ANOMALY_OUTPUT_COLUMNS, arrays, strict=True))


class CustomerAnomalyDetector(FinintelModel[FeatureFrame, CustomerAnomalies]):
    """Isolation Forest + robust distance + ECOD on robust features, combined by rank."""

    part = "anomaly"

    def __init__(self, settings: AnomalySettings | None = None, seed: int = 0) -> None:
        self.settings = settings or AnomalySettings()
        self.seed = seed

    # ---------------------------------------------------------------- fit
    def fit(self, frame: FeatureFrame, value_labels: ValueLabels | None = None) -> Self:
        s = self.settings
        if len(frame) < 10:
            raise DataError(f"anomaly detection needs at least 10 customers, got {len(frame)}")
        features, dropped = self._choose_features(frame)
        raw = frame.select(features).values
        # the detectors read the fitted spreads, the reasons the floored ones (docs/anomalies.md:
        # flooring the detectors' spreads too lost typologies found by on/off counts)
        transform = RobustTransform().fit(raw, features, feature_units(features))
        reason_transform = floored_transform(transform)
        x = self._clip(transform.transform(raw))
        reference = {
            name: TrainingDistribution.on_grid(raw[:, j], REFERENCE_POINTS, "linear")
            for j, name in enumerate(features)
        }
        modes = {name: list(modal_share(raw[:, j])) for j, name in enumerate(features)}
        detectors = [d.fit(x) for d in ensemble(s, self.seed)]
        train_scores = [d.score(x) for d in detectors]
        ecdfs = [TrainingDistribution.of_ranks(v) for v in train_scores]
        matrix = np.column_stack(
            [e.percentile(v) for e, v in zip(ecdfs, train_scores, strict=True)]
        )
        names = [d.name for d in detectors]
        count = alert_count(len(frame), s.expected_rate, s.alert_budget)
        if s.combine == "auto":
            choice = choose_combination(x, matrix, names, count, self.seed)
            rule, why = choice.rule, choice.why()
            sparsity: dict[str, float] | None = choice.sparsity
        else:
            rule, why, sparsity = s.combine, COMBINE_WHY[s.combine], None
        combined = combine(matrix, rule, names)
        self.evidence_customers_ = len(frame) if _has_evidence(frame) else None
        self.behaviour_threshold_ = threshold_for(combined, count)
        behaviour = combined
        combined = self._with_evidence(frame, behaviour)
        threshold = threshold_for(combined, count)
        flagged = int((combined >= threshold).sum())
        by_evidence = int(((combined >= threshold) & (behaviour < threshold)).sum())

        self.features_ = features
        self.value_labels_ = labels_for(value_labels, features)
        self.transform_ = transform
        self.reason_transform_ = reason_transform
        self.reference_ = reference
        self.modes_ = modes
        self.detectors_ = detectors
        self.score_ecdfs_ = ecdfs
        self.combination_ = rule
        self.threshold_ = threshold
        self.metrics_ = {
            "customers": len(frame),
            "features": features,
            "features_dropped": dropped,
            "detectors": {d.name: d.settings() for d in detectors},
            "combination": {
                "setting": s.combine,
                "rule": rule,
                "why": why,
                "sparsity_of_flagged": sparsity,
            },
            "transaction_evidence": {
                "used": self.evidence_customers_ is not None,
                "flagged_by_evidence_alone": by_evidence,
            },
            "threshold": {
                "anomaly_score": round(threshold, 6),
                "source": "alert_budget" if s.alert_budget is not None else "expected_rate",
                "expected_rate": s.expected_rate,
                "alert_budget": s.alert_budget,
            },
            "flagged": flagged,
            "flagged_rate": round(flagged / len(frame), 6),
            "clip": s.clip,
            "reason_spread_floors": {
                spec.name: {"fitted": round(before.scale, 6), "floored": round(spec.scale, 6)}
                for before, spec in zip(transform.specs_, reason_transform.specs_, strict=True)
                if spec.scale != before.scale
            },
            "seed": self.seed,
        }
        return self

    def _choose_features(self, frame: FeatureFrame) -> tuple[list[str], list[dict[str, str]]]:
        requested = self.settings.features
        candidates = list(requested) if requested is not None else default_features(frame.columns)
        missing = [c for c in candidates if c not in frame.columns]
        if missing:
            raise ConfigError(
                f"anomaly.features names unknown column(s) {missing} "
                f"(available: {', '.join(frame.columns)})"
            )
        chosen, dropped = [], []
        for name in candidates:
            col = frame.column(name)
            finite = col[np.isfinite(col)]
            if finite.size == 0:
                dropped.append({"feature": name, "why": "no values"})
            elif finite.min() == finite.max():
                dropped.append({"feature": name, "why": "constant"})
            else:
                chosen.append(name)
        if not chosen:
            raise DataError("no usable anomaly features: every candidate is empty or constant")
        return chosen, dropped

    def _clip(self, x: FloatArray) -> FloatArray:
        clip = self.settings.clip
        return x if clip is None else np.clip(x, -clip, clip)

    # ---------------------------------------------------------------- score
    def detector_scores(self, frame: FeatureFrame) -> dict[str, FloatArray]:
        """Each detector's raw score and its training percentile, for evaluation."""
        x = self._clip(self.transform_.transform(frame.select(self.features_).values))
        out: dict[str, FloatArray] = {}
        for det, ecdf in zip(self.detectors_, self.score_ecdfs_, strict=True):
            raw = det.score(x)
            out[det.name] = raw
            out[f"{det.name}_percentile"] = ecdf.percentile(raw)
        return out

    def _predict(self, frame: FeatureFrame) -> CustomerAnomalies:
        raw = frame.select(self.features_).values
        x = self._clip(self.transform_.transform(raw))
        pct = np.column_stack(
            [
                ecdf.percentile(det.score(x))
                for det, ecdf in zip(self.detectors_, self.score_ecdfs_, strict=True)
            ]
        )
        behaviour = combine(pct, self.combination_, [d.name for d in self.detectors_])
        score = self._with_evidence(frame, behaviour)
        flag = score >= self.threshold_
        reasons = np.full(len(frame), "", dtype=object)
        reason_z = self.reason_transform_.transform(raw)
        evidence = frame.select(list(EVIDENCE_COLUMNS)).values if _has_evidence(frame) else None
        for i in np.flatnonzero(flag):
            parts = []
            if evidence is not None and score[i] > behaviour[i]:
                parts.append(
                    _evidence_reason(dict(zip(EVIDENCE_COLUMNS, evidence[i], strict=True)))
                )
            if behaviour[i] >= self.threshold_ or not parts:
                parts.append(self._reasons(raw[i], reason_z[i]))
            reasons[i] = "; ".join(parts)
        return CustomerAnomalies(frame.ids, score, flag, reasons)

    def _with_evidence(self, frame: FeatureFrame, behaviour: FloatArray) -> FloatArray:
        """The higher of the detectors' combination and the transaction evidence's score."""
        if self.evidence_customers_ is None or not _has_evidence(frame):
            return behaviour
        surprise = frame.column("tx_alert_surprise")
        evidence = evidence_score(surprise, self.evidence_customers_, self.behaviour_threshold_)
        return np.maximum(behaviour, evidence)

    def _reasons(self, raw: FloatArray, z: FloatArray) -> str:
        """The features furthest from typical (`z`: robust SDs on floored spreads), in words."""
        order = np.argsort(-np.abs(z), kind="stable")
        picked = [j for j in order[: self.settings.reason_count] if abs(z[j]) >= REASON_MIN_SDS]
        if not picked:
            picked = [int(order[0])]
        return "; ".join(self._feature_reason(self.features_[j], raw[j], z[j]) for j in picked)

    def _feature_reason(self, name: str, value: float, z: float) -> str:
        """One feature's reason: where most customers share one value, that value and their
        share ("transactions 2, where 95% of customers have 1"); otherwise robust SDs from
        typical, at most `MAX_QUOTED_SDS` quoted."""
        words = self.value_labels_
        said = f"{feature_label(name)} {format_value(name, float(value), words)}"
        mode, share = self.modes_.get(name, (math.nan, 0.0))
        if share >= MODE_WORDS_SHARE and np.isfinite(value) and value != mode:
            return f"{said}, where {share_phrase(share)} of customers have " + format_value(
                name, mode, words
            )
        reference = self.reference_[name]
        pct = reference.at_or_below(np.array([value]))[0]
        side = "above" if z > 0 else "below"
        return (
            f"{said}, {sds_phrase(abs(float(z)))} robust SDs {side} typical "
            f"(median {format_value(name, reference.median(), words)}, "
            f"{population_phrase(float(pct))})"
        )

    # ---------------------------------------------------------------- files
    def _state(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(mode="json"),
            "seed": self.seed,
            "features": self.features_,
            "value_labels": self.value_labels_,
            "transform": self.transform_.to_state(),
            "reference": {name: r.to_state() for name, r in self.reference_.items()},
            "modes": self.modes_,
            "detectors": [
                {"name": d.name, "state": d.to_state(), "score_cdf": e.to_state()}
                for d, e in zip(self.detectors_, self.score_ecdfs_, strict=True)
            ],
            "threshold": self.threshold_,
            "combination": self.combination_,
            "evidence_customers": self.evidence_customers_,
            "behaviour_threshold": self.behaviour_threshold_,
        }

    def _extra_files(self) -> dict[str, bytes]:
        return {name: data for d in self.detectors_ for name, data in d.to_files().items()}

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls(AnomalySettings.model_validate(state["settings"]), int(state["seed"]))
        obj.features_ = list(state["features"])
        obj.value_labels_ = dict(state["value_labels"])
        obj.transform_ = RobustTransform.from_state(state["transform"])
        obj.reason_transform_ = floored_transform(obj.transform_)
        obj.reference_ = {
            name: TrainingDistribution.from_state(r) for name, r in state["reference"].items()
        }
        # a state written before the modes were stored: estimated from the reference grid
        modes = state.get("modes") or {n: grid_mode(r) for n, r in obj.reference_.items()}
        obj.modes_ = {n: [float(v[0]), float(v[1])] for n, v in modes.items()}
        detectors: list[Detector] = []
        for entry in state["detectors"]:
            kind = DETECTOR_TYPES.get(entry["name"])
            if kind is None:
                raise ModelStateError(
                    f"the anomaly model names an unknown detector {entry['name']!r}"
                )
            detectors.append(kind.from_state(entry["state"], files))
        obj.detectors_ = detectors
        obj.score_ecdfs_ = [
            TrainingDistribution.from_state(e["score_cdf"]) for e in state["detectors"]
        ]
        obj.threshold_ = float(state["threshold"])
        obj.combination_ = str(state["combination"])
        evidence = state["evidence_customers"]
        obj.evidence_customers_ = None if evidence is None else int(evidence)
        obj.behaviour_threshold_ = float(state["behaviour_threshold"])
        return obj


def _has_evidence(frame: FeatureFrame) -> bool:
    return all(c in frame.columns for c in EVIDENCE_COLUMNS)


def _evidence_reason(values: Mapping[str, float]) -> str:
    """The transaction evidence in words, e.g. "12 transactions alerted ..."."""
    count = int(values["tx_alert_count"])
    share = values["tx_alerted_debit_share"]
    return (
        f"{count} transactions alerted (chance about 1 in "
        f"{_odds(values['tx_alert_surprise'])} for this customer's number of transactions), "
        f"largest alerted {values['tx_alert_largest']:,.2f}, {share:.0%} of the money out; "
        "see transaction_alerts.csv"
    )


def _odds(surprise: float) -> str:
    """1 in 10^surprise, in words a reader takes in: '2,300', '4 million', '10^14'."""
    if surprise >= 12:
        return f"10^{surprise:.0f}"
    odds = 10.0**surprise
    if odds >= 1e6:
        return f"{odds / 1e6:,.0f} million"
    return f"{odds:,.0f}"


def grid_mode(reference: TrainingDistribution) -> list[float]:
    """The value most grid quantiles share and the share of grid points holding it: the
    modal value and (within a percent) its share, from a reference grid alone.

    Example:
        >>> grid_mode(TrainingDistribution.on_grid(np.array([0.0] * 19 + [5.0]), 101, "linear"))
        [0.0, 0.9405940594059405]
    """
    if reference.empty:
        return [math.nan, 0.0]
    runs = reference.n_le_ + reference.n_ge_ - reference.total_
    top = int(np.argmax(runs))
    return [float(reference.knots_[top]), float(runs[top] / reference.total_)]
