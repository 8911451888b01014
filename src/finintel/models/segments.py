"""Customer segments: K-Means on robustly transformed features, k chosen by evidence, personas.

`Segmenter.fit` transforms the segmentation columns once (`RobustTransform`: signed log for
money and counts, median centring, robust 5-95% scaling, values clipped to +-`clip`), fits
K-Means on a seeded sample of at most `sample_size` customers for every k in [k_min, k_max]
(or only the fixed `k`), measures the evidence per k and chooses k by a documented rule
(`K_RULE`). Everyone is then assigned to the nearest centroid with numpy, so a saved model
assigns bit-identically. Segment ids start at 1 and follow size (largest first; ties by the
centroid's coordinates), never K-Means' label order. Each segment gets a persona from
`models/personas.py`.

Example:
    >>> seg = Segmenter(SegmentSettings(), seed=42).fit(frame)  # doctest: +SKIP
    >>> seg.metrics_["k_selection"]["chosen_k"]  # doctest: +SKIP
    5
    >>> seg.predict(frame).segment_name[:2]  # doctest: +SKIP
    array(['Steady earners', 'Most active'], dtype=object)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from threadpoolctl import threadpool_limits

from finintel.errors import ConfigError, DataError
from finintel.features.catalog import default_set
from finintel.models.base import FinintelModel, json_safe
from finintel.models.explain import feature_units
from finintel.models.frame import FeatureFrame
from finintel.models.personas import name_segments
from finintel.models.transform import RobustTransform
from finintel.run_layout import SEGMENT_OUTPUT_COLUMNS
from finintel.settings.segments import SegmentSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# The default behavioural set: activity (transactions, recency, credits), spending (monthly
# spend, average debit), money held (average balance, overdraft days), who the customer is
# (income, age, tenure), debt (loans, debt-to-income) and habits (online share, night share).
# Each dimension has one or two columns so no single theme dominates the distances.
# The catalogue marks each member with `defaults={"segments": rank}`; the online channel
# share is a per-channel column, so its rank is given here.
DEFAULT_FEATURES: tuple[str, ...] = default_set("segments", {"channel_share_online": 13})
# With fewer default columns present (customer-only data), every other column is used.
MIN_DEFAULT_FEATURES = 4
# Model outputs the pipeline may append; used only when asked for by name.
SCORE_COLUMNS: tuple[str, ...] = ("risk_score", "anomaly_score")

K_RULE = (
    "A k is eligible when its bootstrap stability (mean adjusted Rand index of K-Means refitted "
    "on {rounds} resamples of {fraction:.0%} of the evaluation sample, against the reference "
    "labels) is at least {min_stability} and its smallest segment holds at least "
    "{min_share:.1%} of customers. The elbow is found by adding segments from k_min while each "
    "extra segment still explains at least {min_gain:.0%} of the total spread (inertia of one "
    "segment). The elbow is chosen when eligible; otherwise the eligible k nearest to it "
    "(ties: higher silhouette, then fewer segments); with no eligible k, the most stable k. "
    "A fixed k is used as given, with its evidence reported."
)


def segmentation_columns(settings: SegmentSettings, available: Sequence[str]) -> list[str]:
    """The columns segmentation uses: the configured list, or the default behavioural set.

    The default keeps the `DEFAULT_FEATURES` present in `available`; when fewer than
    `MIN_DEFAULT_FEATURES` of them are present (customer-only data such as card statements),
    it uses every available column except the model scores (`risk_score`, `anomaly_score`).
    Constant columns are harmless: they transform to 0 everywhere and do not move centroids.

    Example:
        >>> segmentation_columns(SegmentSettings(), ["age", "purchases", "cash_advance"])
        ['age', 'purchases', 'cash_advance']
        >>> segmentation_columns(SegmentSettings(features=["income"]), ["age"])
        Traceback (most recent call last):
        finintel.errors.ConfigError: segments.features names unknown column(s) ['income'] ...
    """
    present = list(available)
    if settings.features is not None:
        unknown = [c for c in settings.features if c not in present]
        if unknown:
            raise ConfigError(
                f"segments.features names unknown column(s) {unknown} "
                f"(available: {', '.join(present)})"
            )
        if len(set(settings.features)) != len(settings.features):
            raise ConfigError("segments.features lists a column more than once")
        if not settings.features:
            raise ConfigError("segments.features must name at least one column")
        return list(settings.features)
    default = [c for c in DEFAULT_FEATURES if c in present]
    if len(default) >= MIN_DEFAULT_FEATURES:
        return default
    chosen = [c for c in present if c not in SCORE_COLUMNS]
    if not chosen:
        raise ConfigError("no columns to segment on: the feature table has no numeric column")
    return chosen


@dataclass(frozen=True)
class SegmentAssignment:
    """Segment id (int, from 1) and persona name per row, aligned with the frame."""

    segment_id: IntArray
    segment_name: npt.NDArray[np.object_]

    def columns(self) -> dict[str, pa.Array]:
        """The segment result columns."""
        arrays = [
            pa.array(self.segment_id, pa.int32()),
            pa.array(list(self.segment_name), pa.string()),
        ]
        return dict(zip(SEGMENT_OUTPUT_COLUMNS, arrays, strict=True))


@dataclass(frozen=True)
class SegmentProfile:
    """One segment for segments.csv: `profile[feature] = {"value": median, "z": deviation}`.

    `value` is the median of the segment's members in original units; `z` is how far the
    segment's centroid sits from the population average, in robust z units.
    """

    id: int
    name: str
    size: int
    share: float
    description: str
    actions: list[str]
    profile: dict[str, dict[str, float | None]]
    traits: list[str]
    rule: str | None


@dataclass(frozen=True)
class KEvidence:
    """What was measured for one k (None where the measure is undefined)."""

    k: int
    inertia: float
    explained_gain: float | None
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability: float
    stability_sd: float
    min_share: float
    eligible: bool


class Segmenter(FinintelModel[FeatureFrame, SegmentAssignment]):
    """K-Means segmentation with evidence-based k, stable ids and persona names."""

    part = "segments"

    def __init__(self, settings: SegmentSettings | None = None, seed: int = 0) -> None:
        self.settings = settings if settings is not None else SegmentSettings()
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def fit(self, frame: FeatureFrame) -> Self:
        """Choose k, fit K-Means on a sample, order and name the segments."""
        s = self.settings
        columns = list(frame.columns)
        if not columns:
            raise ConfigError("segmentation needs at least one column")
        if len(set(columns)) != len(columns):
            raise ConfigError(f"segmentation columns repeat: {columns}")
        n = len(frame)
        low = s.k if s.k is not None else s.k_min
        if n < 2 * low:
            raise DataError(f"segmentation needs at least {2 * low} customers, got {n}")
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(n, s.sample_size, replace=False)) if n > s.sample_size else None
        fit_values = frame.values if sample is None else frame.values[sample]
        transform = RobustTransform(clip=s.clip).fit(fit_values, columns, feature_units(columns))
        z = transform.transform(fit_values)
        evaluation = np.sort(rng.choice(len(z), min(s.evaluation_size, len(z)), replace=False))
        distinct = len(np.unique(z, axis=0))
        if s.k is not None:
            if s.k > distinct:
                raise DataError(f"k = {s.k} but only {distinct} distinct customers to segment")
            ks = [s.k]
        else:
            ks = [k for k in range(s.k_min, s.k_max + 1) if k <= distinct]
            if not ks:
                raise DataError(
                    f"only {distinct} distinct customers: cannot make {s.k_min} segments"
                )
        with threadpool_limits(limits=1):  # many small fits: threads only add overhead
            evidence, centers = self._evidence(z, evaluation, ks)
        chosen, reason = self._choose(evidence)
        everyone = transform.transform(frame.values)
        centroids = _order_centroids(centers[chosen], _nearest(everyone, centers[chosen]))
        labels = _nearest(everyone, centroids)
        constant = [c for j, c in enumerate(columns) if _is_constant(fit_values[:, j])]
        self.columns_ = columns
        self.transform_ = transform
        self.centroids_ = centroids
        self.segments_ = self._profiles(frame.values, labels, centroids - everyone.mean(axis=0))
        self.metrics_ = self._metrics(
            n, len(z), len(evaluation), evidence, chosen, reason, constant
        )
        return self

    def _evidence(
        self, z: FloatArray, evaluation: IntArray, ks: list[int]
    ) -> tuple[list[KEvidence], dict[int, FloatArray]]:
        s = self.settings
        total = float(((z - z.mean(axis=0)) ** 2).sum())
        previous: float | None = total if ks[0] == 2 else None
        if ks[0] > 2 and s.k is None:
            previous = float(self._kmeans(ks[0] - 1).fit(z).inertia_)
        rows, centers = [], {}
        sample_e = z[evaluation]
        for k in ks:
            model = self._kmeans(k).fit(z)
            center = np.asarray(model.cluster_centers_, dtype=np.float64)
            labels = _nearest(z, center)
            inertia = float(((z - center[labels]) ** 2).sum())
            reference = labels[evaluation]
            stability, spread = self._stability(sample_e, reference, k)
            shares = np.bincount(labels, minlength=k) / len(labels)
            several = len(np.unique(labels)) > 1
            several_e = len(np.unique(reference)) > 1
            row = KEvidence(
                k=k,
                inertia=inertia,
                explained_gain=None
                if previous is None or total == 0
                else (previous - inertia) / total,
                silhouette=float(silhouette_score(sample_e, reference)) if several_e else None,
                calinski_harabasz=float(calinski_harabasz_score(z, labels)) if several else None,
                davies_bouldin=float(davies_bouldin_score(z, labels)) if several else None,
                stability=stability,
                stability_sd=spread,
                min_share=float(shares.min()),
                eligible=bool(stability >= s.min_stability and shares.min() >= s.min_segment_share),
            )
            rows.append(row)
            centers[k] = center
            previous = inertia
        return rows, centers

    def _kmeans(self, k: int, seed: int | None = None) -> Any:
        state = self.seed if seed is None else seed
        return KMeans(n_clusters=k, n_init=self.settings.n_init, random_state=state)

    def _stability(self, sample: FloatArray, reference: IntArray, k: int) -> tuple[float, float]:
        """Mean and sd of the ARI of refits on resamples, predicting the whole sample."""
        s = self.settings
        rng = np.random.default_rng([self.seed, k])
        size = max(round(s.bootstrap_fraction * len(sample)), k)
        scores = []
        for b in range(s.bootstrap_rounds):
            idx = rng.choice(len(sample), size, replace=False)
            if len(np.unique(sample[idx], axis=0)) < k:
                scores.append(0.0)
                continue
            model = self._kmeans(k, seed=self.seed + 1 + b).fit(sample[idx])
            predicted = _nearest(sample, np.asarray(model.cluster_centers_, dtype=np.float64))
            scores.append(float(adjusted_rand_score(reference, predicted)))
        return float(np.mean(scores)), float(np.std(scores))

    def _choose(self, evidence: list[KEvidence]) -> tuple[int, str]:
        s = self.settings
        if s.k is not None:
            row = evidence[0]
            verdict = "meets" if row.eligible else "does not meet"
            return s.k, (
                f"k = {s.k} was fixed in the settings; it {verdict} the stability and "
                f"segment-size bars (stability {row.stability:.2f}, smallest segment "
                f"{row.min_share:.1%})."
            )
        elbow = evidence[0].k
        for row in evidence[1:]:
            if row.explained_gain is None or row.explained_gain < s.min_explained_gain:
                break
            elbow = row.k
        by_k = {row.k: row for row in evidence}
        eligible = [row for row in evidence if row.eligible]
        if by_k[elbow].eligible:
            row = by_k[elbow]
            return elbow, (
                f"{elbow} segments: each segment up to the {_ordinal(elbow)} explains at least "
                f"{s.min_explained_gain:.0%} of the spread and the next would not; this split is "
                f"stable (bootstrap agreement {row.stability:.2f}) and its smallest segment holds "
                f"{row.min_share:.1%} of customers."
            )
        why = _why_not(by_k[elbow], s)
        if eligible:
            best = min(
                eligible,
                key=lambda r: (abs(r.k - elbow), -(r.silhouette or -1.0), r.k),
            )
            return best.k, (
                f"the elbow is at {elbow} segments, but {why}; {best.k} segments is the nearest "
                f"eligible choice (stability {best.stability:.2f}, smallest segment "
                f"{best.min_share:.1%}, silhouette {_fmt(best.silhouette)})."
            )
        best = min(evidence, key=lambda r: (-r.stability, r.k))
        return best.k, (
            f"no k meets the bars (the elbow at {elbow}: {why}); {best.k} segments is the most "
            f"stable choice (stability {best.stability:.2f})."
        )

    def _profiles(
        self, values: FloatArray, labels: IntArray, deviations: FloatArray
    ) -> list[SegmentProfile]:
        """Sizes, medians and personas; `deviations` = centroids minus the population mean."""
        n, k, columns = len(labels), len(deviations), self.columns_
        population = dict(zip(columns, _summaries(values), strict=True))
        summaries = [
            dict(zip(columns, _summaries(values[labels == j]), strict=True)) for j in range(k)
        ]
        z = [dict(zip(columns, map(float, deviations[j]), strict=True)) for j in range(k)]
        personas = name_segments(z, self.settings, summaries, population)
        sizes = np.bincount(labels, minlength=k)
        return [
            SegmentProfile(
                id=j + 1,
                name=personas[j].name,
                size=int(sizes[j]),
                share=float(sizes[j] / n),
                description=personas[j].description,
                actions=personas[j].actions,
                profile={c: {"value": summaries[j][c][0], "z": round(z[j][c], 6)} for c in columns},
                traits=personas[j].traits,
                rule=personas[j].rule,
            )
            for j in range(k)
        ]

    def _metrics(
        self,
        n: int,
        n_sample: int,
        n_evaluation: int,
        evidence: list[KEvidence],
        chosen: int,
        reason: str,
        constant: list[str],
    ) -> dict[str, Any]:
        s = self.settings
        row = next(r for r in evidence if r.k == chosen)
        metrics: dict[str, Any] = json_safe(
            {
                "columns": self.columns_,
                "constant_columns": constant,
                "customers": n,
                "fit_sample": n_sample,
                "evaluation_sample": n_evaluation,
                "seed": self.seed,
                "k": chosen,
                "k_selection": {
                    "mode": "fixed" if s.k is not None else "auto",
                    "chosen_k": chosen,
                    "rule": K_RULE.format(
                        rounds=s.bootstrap_rounds,
                        fraction=s.bootstrap_fraction,
                        min_stability=s.min_stability,
                        min_share=s.min_segment_share,
                        min_gain=s.min_explained_gain,
                    ),
                    "reason": reason,
                    "table": [asdict(r) for r in evidence],
                },
                "silhouette": row.silhouette,
                "stability": row.stability,
                "stability_sd": row.stability_sd,
                "calinski_harabasz": row.calinski_harabasz,
                "davies_bouldin": row.davies_bouldin,
                "inertia": row.inertia,
                "segments": [
                    {"id": p.id, "name": p.name, "size": p.size, "share": p.share, "rule": p.rule}
                    for p in self.segments_
                ],
            }
        )
        return metrics

    # ------------------------------------------------------------------ assigning

    def _predict(self, frame: FeatureFrame) -> SegmentAssignment:
        """Nearest stored centroid for every row; the frame must have the fitted columns."""
        if list(frame.columns) != self.columns_:
            missing = [c for c in self.columns_ if c not in frame.columns]
            extra = [c for c in frame.columns if c not in self.columns_]
            detail = f"missing {missing}, unexpected {extra}" if missing or extra else "order"
            raise DataError(
                f"the segmenter was fitted on columns {self.columns_}; got {list(frame.columns)} "
                f"({detail} differs)"
            )
        labels = _nearest(self.transform_.transform(frame.values), self.centroids_)
        names = np.array([p.name for p in self.segments_], dtype=object)
        return SegmentAssignment(segment_id=labels + 1, segment_name=names[labels])

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "settings": self.settings.model_dump(mode="json"),
            "columns": self.columns_,
            "transform": self.transform_.to_state(),
            "centroids": self.centroids_.tolist(),
            "segments": [asdict(p) for p in self.segments_],
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls(SegmentSettings.model_validate(state["settings"]), int(state["seed"]))
        obj.columns_ = [str(c) for c in state["columns"]]
        obj.transform_ = RobustTransform.from_state(state["transform"])
        obj.centroids_ = np.array(state["centroids"], dtype=np.float64)
        obj.segments_ = [SegmentProfile(**p) for p in state["segments"]]
        return obj


# ---------------------------------------------------------------------- helpers


def _nearest(z: FloatArray, centroids: FloatArray) -> IntArray:
    """Index of the nearest centroid (squared Euclidean; first on ties), elementwise exact."""
    best = np.zeros(len(z), dtype=np.int64)
    best_d = np.full(len(z), np.inf)
    for j, c in enumerate(centroids):
        d = ((z - c) ** 2).sum(axis=1)
        closer = d < best_d
        best[closer] = j
        best_d[closer] = d[closer]
    return best


def _order_centroids(centroids: FloatArray, labels: IntArray) -> FloatArray:
    """Centroids ordered by segment size (largest first), ties by coordinates."""
    sizes = np.bincount(labels, minlength=len(centroids))
    order = sorted(range(len(centroids)), key=lambda j: (-int(sizes[j]), tuple(centroids[j])))
    return np.ascontiguousarray(centroids[order])


def _summaries(values: FloatArray) -> list[tuple[float | None, float | None]]:
    """(median, mean) of every column over its known values."""
    out: list[tuple[float | None, float | None]] = []
    for j in range(values.shape[1]):
        col = values[:, j]
        col = col[np.isfinite(col)]
        out.append((float(np.median(col)), float(col.mean())) if col.size else (None, None))
    return out


def _is_constant(column: FloatArray) -> bool:
    finite = column[np.isfinite(column)]
    return bool(finite.size == 0 or finite.min() == finite.max())


def _why_not(row: KEvidence, s: SegmentSettings) -> str:
    problems = []
    if row.stability < s.min_stability:
        problems.append(
            f"it is unstable (bootstrap agreement {row.stability:.2f} +- {row.stability_sd:.2f}, "
            f"below {s.min_stability})"
        )
    if row.min_share < s.min_segment_share:
        problems.append(
            f"its smallest segment holds only {row.min_share:.1%} of customers "
            f"(below {s.min_segment_share:.1%})"
        )
    return " and ".join(problems)


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
