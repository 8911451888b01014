"""Customer segments: K-Means on robustly transformed features, k chosen by evidence, personas.

`Segmenter.fit` transforms the segmentation columns once (`RobustTransform`: signed log for
money and counts, median centring, robust 5-95% scaling, values clipped to +-`clip`). With the
default columns it then drops redundant ones by a data-driven rule and weighs the share blocks
(`plan_columns`, `FEATURE_RULE`). It fits K-Means on a seeded sample of at most `sample_size`
customers for every k in [k_min, k_max] (or only the fixed `k`), measures the evidence per k
(bootstrap stability with a confidence bound, explained spread, separation) and chooses k by a
documented rule (`K_RULE`); when no k is stable it says so (`metrics_["stable"]`,
`metrics_["note"]`) and shows a conservative `fallback_k`. Everyone is then assigned to the
nearest centroid with numpy, so a saved model assigns bit-identically. Segment ids start at 1
and follow size (largest first; ties by the centroid's coordinates), never K-Means' label
order. Each segment gets a persona from `models/personas.py`.

Example:
    >>> seg = Segmenter(SegmentSettings(), seed=42).fit(frame)  # doctest: +SKIP
    >>> seg.metrics_["k_selection"]["chosen_k"], seg.metrics_["stable"]  # doctest: +SKIP
    (5, True)
    >>> seg.predict(frame).segment_name[:2]  # doctest: +SKIP
    array(['Steady earners', 'Most active'], dtype=object)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.stats import rankdata
from sklearn.cluster import KMeans
from sklearn.metrics import (
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


# The default columns, in priority order (an earlier column is kept over a later one that
# repeats it). First the core behavioural set the catalogue ranks (`defaults={"segments": rank}`:
# activity, spending, money held, who, debt, online share, night share), then further money and
# activity levels, then every channel and category share the data has (`MIX_BLOCKS`).
DEFAULT_FEATURES: tuple[str, ...] = default_set("segments", {"channel_share_online": 13})
EXTRA_LEVEL_FEATURES: tuple[str, ...] = (
    "active_months",
    "debit_count",
    "debit_total",
    "credit_total",
    "credit_avg",
    "largest_debit",
    "account_balance",
    "balance_last",
    "balance_min",
    "credit_limit",
    "loan_exposure",
    "loan_balance",
    "loan_amount_total",
    "weekend_share",
)
# Blocks of share columns (one column per channel or category): each block weighs as much as
# `mix_block_weight` ordinary columns together, however many columns it has.
MIX_BLOCKS: tuple[tuple[str, str], ...] = (
    ("channel mix", "channel_share_"),
    ("category mix", "category_spend_share_"),
)
# With fewer default columns present (customer-only data), every other column is used.
MIN_DEFAULT_FEATURES = 4
# Model outputs the pipeline may append; used only when asked for by name.
SCORE_COLUMNS: tuple[str, ...] = ("risk_score", "anomaly_score")

FEATURE_RULE = (
    "Default columns: the core behavioural set, further money and activity levels, and every "
    "channel and category share present, in that priority order (with fewer than four of "
    "them, every column in the table's order). A column is dropped when "
    "fewer than {min_share:.1%} of customers differ from its most common value (near-constant), "
    "or when its |Spearman correlation| with a column kept earlier exceeds {max_corr} "
    "(redundant). Every kept column weighs 1, except that the kept columns of a share block "
    "(channel mix, category mix) together weigh as much as {block} columns. Configured "
    "columns are used as given, each with weight 1."
)
K_RULE = (
    "A k is stable when the one-sided {confidence:.0%} lower confidence bound of its bootstrap "
    "stability (mean adjusted Rand index between the reference segments and K-Means refitted "
    "with {restarts} restarts on resamples of {fraction:.0%} of the evaluation sample) reaches "
    "{min_stability}: {rounds} resamples for every k the choice depends on ({screen} for the "
    "rest of the table), and up to {max_rounds} while the bounds cannot decide (then the mean "
    "decides). A k is eligible when it is stable and its smallest "
    "segment holds at least {min_share:.1%} of customers. The elbow is found by adding "
    "segments from k_min while each extra segment still explains at least {min_gain:.0%} of "
    "the total spread. The elbow is chosen when eligible; when it is unstable it is retried "
    "with three times more restarts before it is given up; otherwise the eligible k nearest "
    "to it (ties: higher lower bound, then fewer segments). With no eligible k, the result is "
    "flagged as not stable and fallback_k ({fallback}) segments are shown as a partition. "
    "A fixed k is used as given, with its evidence reported."
)


def segmentation_columns(settings: SegmentSettings, available: Sequence[str]) -> list[str]:
    """The columns segmentation uses: the configured list, or the default candidates.

    The default keeps the `DEFAULT_FEATURES` and `EXTRA_LEVEL_FEATURES` present in
    `available`, then every share column of `MIX_BLOCKS`, in that priority order; `fit` drops
    the redundant ones (`plan_columns`). When fewer than `MIN_DEFAULT_FEATURES` of them are
    present (customer-only data such as card statements), it uses every available column
    except the model scores (`risk_score`, `anomaly_score`).

    Example:
        >>> segmentation_columns(SegmentSettings(), ["age", "purchases", "cash_advance"])
        ['age', 'purchases', 'cash_advance']
        >>> segmentation_columns(SegmentSettings(), ["channel_share_atm", "tx_count", "age",
        ...     "annual_income", "debit_count", "x"])
        ['tx_count', 'annual_income', 'age', 'debit_count', 'channel_share_atm']
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
    default = default_candidates(present)
    if len(default) >= MIN_DEFAULT_FEATURES:
        return default
    chosen = [c for c in present if c not in SCORE_COLUMNS]
    if not chosen:
        raise ConfigError("no columns to segment on: the feature table has no numeric column")
    return chosen


def default_candidates(available: Sequence[str]) -> list[str]:
    """The default columns present in `available`, in priority order (see `FEATURE_RULE`)."""
    levels = [c for c in (*DEFAULT_FEATURES, *EXTRA_LEVEL_FEATURES) if c in available]
    mixes = [c for c in available if mix_block(c) is not None and c not in levels]
    return levels + mixes


def mix_block(column: str) -> str | None:
    """The share block a column belongs to, None for an ordinary column.

    Example:
        >>> mix_block("channel_share_atm"), mix_block("tx_count")
        ('channel mix', None)
    """
    return next((name for name, prefix in MIX_BLOCKS if column.startswith(prefix)), None)


@dataclass(frozen=True)
class ColumnPlan:
    """Which columns K-Means measures distances on, and with what weight.

    `weights[j]` belongs to `columns[j]` and is 0 for a dropped column; `dropped` says why
    each was dropped; `blocks` lists the share blocks with their kept columns.
    """

    columns: list[str]
    weights: list[float]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kept(self) -> list[str]:
        return [c for c, w in zip(self.columns, self.weights, strict=True) if w > 0]

    def to_metrics(self, settings: SegmentSettings, default: bool) -> dict[str, Any]:
        """The decision as `metrics_["feature_selection"]` shows it."""
        return {
            "mode": "default" if default else "configured",
            "rule": FEATURE_RULE.format(
                min_share=settings.min_segment_share,
                max_corr=settings.max_correlation,
                block=settings.mix_block_weight,
            ),
            "candidates": list(self.columns),
            "kept": self.kept,
            "dropped": self.dropped,
            "weights": dict(zip(self.columns, self.weights, strict=True)),
            "blocks": self.blocks,
        }


def plan_columns(
    values: FloatArray, columns: Sequence[str], settings: SegmentSettings
) -> ColumnPlan:
    """Drop near-constant and redundant columns (in priority order) and weigh share blocks.

    `values` are the raw values of the fit sample, columns in priority order. A column is
    near-constant when fewer than `min_segment_share` of the rows differ from its most common
    value (missing counts as the median); it is redundant when its |Spearman| with a column
    kept before it exceeds `max_correlation`.

    Example:
        >>> x = np.arange(100.0)
        >>> data = np.column_stack([x, x ** 2, np.zeros(100), np.sin(x)])
        >>> plan = plan_columns(data, ["a", "b", "flat", "c"], SegmentSettings())
        >>> plan.kept, [d["column"] for d in plan.dropped]
        (['a', 'c'], ['b', 'flat'])
    """
    filled = _fill_median(values)
    dropped: dict[int, dict[str, Any]] = {}
    for j, name in enumerate(columns):
        share = _mode_share(filled[:, j])
        if share > 1 - settings.min_segment_share:
            dropped[j] = {
                "column": name,
                "reason": "near-constant",
                "detail": f"{share:.1%} of customers share one value",
            }
    ranks = rankdata(filled, axis=0)
    kept: list[int] = []
    for j, name in enumerate(columns):
        if j in dropped:
            continue
        rho, other = _strongest_correlation(ranks, j, kept)
        if other is not None and abs(rho) > settings.max_correlation:
            dropped[j] = {
                "column": name,
                "reason": "redundant",
                "detail": f"|Spearman| {abs(rho):.2f} with {columns[other]}, kept earlier",
                "with": columns[other],
                "spearman": round(rho, 4),
            }
            continue
        kept.append(j)
    weights = [1.0 if j in kept else 0.0 for j in range(len(columns))]
    blocks = []
    for block, _ in MIX_BLOCKS:
        members = [j for j in kept if mix_block(columns[j]) == block]
        if not members:
            continue
        weight = float(np.sqrt(settings.mix_block_weight / len(members)))
        for j in members:
            weights[j] = weight
        blocks.append(
            {
                "name": block,
                "columns": [columns[j] for j in members],
                "counts_as": settings.mix_block_weight,
                "column_weight": weight,
            }
        )
    ordered = [dropped[j] for j in sorted(dropped)]
    return ColumnPlan(list(columns), weights, ordered, blocks)


def _fill_median(values: FloatArray) -> FloatArray:
    out = np.array(values, dtype=np.float64, copy=True)
    for j in range(out.shape[1]):
        col = out[:, j]
        bad = ~np.isfinite(col)
        if bad.any():
            good = col[~bad]
            col[bad] = float(np.median(good)) if good.size else 0.0
    return out


def _mode_share(column: FloatArray) -> float:
    if column.size == 0:
        return 1.0
    _, counts = np.unique(column, return_counts=True)
    return float(counts.max() / column.size)


def _strongest_correlation(ranks: FloatArray, j: int, kept: list[int]) -> tuple[float, int | None]:
    """The kept column most correlated (Spearman: Pearson on ranks) with column j."""
    if not kept:
        return 0.0, None
    a = ranks[:, j] - ranks[:, j].mean()
    b = ranks[:, kept] - ranks[:, kept].mean(axis=0)
    denominator = np.sqrt((a**2).sum() * (b**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denominator > 0, (a @ b) / denominator, 0.0)
    best = int(np.argmax(np.abs(rho)))
    return float(rho[best]), kept[best]


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
    """What was measured for one k (None where the measure is undefined).

    `stability` is the mean bootstrap agreement over `rounds` resamples refitted with
    `restarts` K-Means restarts each; `stability_low` / `stability_high` its confidence bounds;
    `verdict` "stable" (low bound reaches the bar), "unstable" (high bound below it),
    "borderline" (undecided after the most rounds: the mean decided) or "undecided" (not
    needed for the choice, so not refined: `eligible` follows the mean).
    """

    k: int
    inertia: float
    explained_gain: float | None
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability: float
    stability_sd: float
    stability_low: float
    stability_high: float
    rounds: int
    restarts: int
    verdict: str
    min_share: float
    eligible: bool


@dataclass
class _Search:
    """The state of the k search: evidence, reference fits and resample scores per k."""

    z: FloatArray  # weighted transformed fit sample
    evaluation: IntArray  # rows of z for stability
    rows: dict[int, KEvidence]
    centers: dict[int, FloatArray]
    scores: dict[int, list[float]]
    attempts: list[dict[str, Any]] = field(default_factory=list)


class Segmenter(FinintelModel[FeatureFrame, SegmentAssignment]):
    """K-Means segmentation with evidence-based k, stable ids and persona names."""

    part = "segments"

    def __init__(self, settings: SegmentSettings | None = None, seed: int = 0) -> None:
        self.settings = settings if settings is not None else SegmentSettings()
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def fit(self, frame: FeatureFrame) -> Self:
        """Plan the columns, choose k, fit K-Means on a sample, order and name the segments."""
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
        default = s.features is None
        plan = (
            plan_columns(fit_values, columns, s)
            if default
            else ColumnPlan(columns, [1.0] * len(columns))
        )
        weights = np.array(plan.weights, dtype=np.float64)
        used = weights > 0
        z_all = transform.transform(fit_values)
        z = z_all[:, used] * weights[used]
        evaluation = np.sort(rng.choice(len(z), min(s.evaluation_size, len(z)), replace=False))
        ks = self._ks(z)
        with threadpool_limits(limits=1):  # many small fits: threads only add overhead
            search = self._evidence(z, evaluation, ks)
            chosen, reason, stable = self._choose(search)
        everyone = transform.transform(frame.values)
        full = _full_centroids(search.centers[chosen], z_all, weights)
        centroids = _order_centroids(full, _nearest(everyone, full, weights))
        labels = _nearest(everyone, centroids, weights)
        constant = [c for j, c in enumerate(columns) if _is_constant(fit_values[:, j])]
        self.columns_ = columns
        self.weights_ = weights
        self.transform_ = transform
        self.centroids_ = centroids
        self.segments_ = self._profiles(frame.values, labels, centroids - everyone.mean(axis=0))
        self.metrics_ = self._metrics(
            n, len(z), len(evaluation), search, chosen, reason, stable, constant, plan, default
        )
        return self

    def _ks(self, z: FloatArray) -> list[int]:
        s = self.settings
        distinct = len(np.unique(z, axis=0))
        if s.k is not None:
            if s.k > distinct:
                raise DataError(f"k = {s.k} but only {distinct} distinct customers to segment")
            return [s.k]
        ks = [k for k in range(s.k_min, s.k_max + 1) if k <= distinct]
        if not ks:
            raise DataError(f"only {distinct} distinct customers: cannot make {s.k_min} segments")
        return ks

    def _evidence(self, z: FloatArray, evaluation: IntArray, ks: list[int]) -> _Search:
        """Reference fit, separation measures and the first resamples for every k."""
        s = self.settings
        total = float(((z - z.mean(axis=0)) ** 2).sum())
        previous: float | None = total if ks[0] == 2 else None
        if ks[0] > 2 and s.k is None:
            previous = float(self._kmeans(ks[0] - 1, s.n_init).fit(z).inertia_)
        search = _Search(z, evaluation, {}, {}, {})
        shuffled = np.random.default_rng([self.seed, 0]).permutation(evaluation)
        sil = np.sort(shuffled[: s.silhouette_size])
        for k in ks:
            center = np.asarray(self._kmeans(k, s.n_init).fit(z).cluster_centers_, np.float64)
            labels = _nearest(z, center)
            inertia = float(((z - center[labels]) ** 2).sum())
            shares = np.bincount(labels, minlength=k) / len(labels)
            several = len(np.unique(labels)) > 1
            several_s = len(np.unique(labels[sil])) > 1
            search.centers[k] = center
            search.scores[k] = self._resample_scores(search, k, 0, _screen(s), s.bootstrap_n_init)
            search.rows[k] = self._row(
                KEvidence(
                    k=k,
                    inertia=inertia,
                    explained_gain=None
                    if previous is None or total == 0
                    else (previous - inertia) / total,
                    silhouette=float(silhouette_score(z[sil], labels[sil])) if several_s else None,
                    calinski_harabasz=float(calinski_harabasz_score(z, labels))
                    if several
                    else None,
                    davies_bouldin=float(davies_bouldin_score(z, labels)) if several else None,
                    stability=0.0,
                    stability_sd=0.0,
                    stability_low=0.0,
                    stability_high=0.0,
                    rounds=0,
                    restarts=s.bootstrap_n_init,
                    verdict="undecided",
                    min_share=float(shares.min()),
                    eligible=False,
                ),
                search.scores[k],
                final=False,
            )
            previous = inertia
        return search

    def _kmeans(self, k: int, n_init: int, seed: int | None = None) -> Any:
        state = self.seed if seed is None else seed
        return KMeans(n_clusters=k, n_init=n_init, random_state=state)

    def _resample_scores(
        self, search: _Search, k: int, start: int, count: int, restarts: int
    ) -> list[float]:
        """ARI of the reference against K-Means refitted on resamples start..start+count-1.

        Resample b of k with r restarts is seeded by (seed, k, r, b), so adding rounds adds new
        resamples and never changes earlier ones.
        """
        s = self.settings
        sample = search.z[search.evaluation]
        reference = _nearest(sample, search.centers[k])
        size = max(round(s.bootstrap_fraction * len(sample)), k)
        few = len(sample) < 50 * k and len(np.unique(sample, axis=0)) < 2 * k
        scores = []
        for b in range(start, start + count):
            rng = np.random.default_rng([self.seed, k, restarts, b])
            idx = rng.choice(len(sample), size, replace=False)
            if few and len(np.unique(sample[idx], axis=0)) < k:
                scores.append(0.0)
                continue
            model = self._kmeans(k, restarts, int(rng.integers(2**31 - 1))).fit(sample[idx])
            scores.append(_adjusted_rand(reference, model.predict(sample)))
        return scores

    def _row(self, row: KEvidence, scores: list[float], final: bool) -> KEvidence:
        """The row with its stability summary, verdict and eligibility from `scores`."""
        s = self.settings
        values = np.array(scores, dtype=np.float64)
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        margin = NormalDist().inv_cdf(s.stability_confidence) * sd / np.sqrt(len(values))
        low, high = max(mean - margin, -1.0), min(mean + margin, 1.0)
        if low >= s.min_stability:
            verdict = "stable"
        elif high < s.min_stability:
            verdict = "unstable"
        else:
            verdict = "borderline" if final else "undecided"
        stable = verdict == "stable" or (verdict != "unstable" and mean >= s.min_stability)
        return replace(
            row,
            stability=mean,
            stability_sd=sd,
            stability_low=float(low),
            stability_high=float(high),
            rounds=len(values),
            verdict=verdict,
            eligible=bool(stable and row.min_share >= s.min_segment_share),
        )

    def _settle(self, search: _Search, k: int, retried: bool = False) -> KEvidence:
        """Give k at least bootstrap_rounds resamples, and more while its bounds cannot decide
        (in steps of screen_rounds, up to bootstrap_max_rounds); record any extra step."""
        s = self.settings
        most = max(s.bootstrap_max_rounds, s.bootstrap_rounds)
        row = search.rows[k]
        while row.rounds < s.bootstrap_rounds or (row.verdict == "undecided" and row.rounds < most):
            wanted = max(s.bootstrap_rounds, row.rounds + _screen(s))
            done = row.rounds
            search.scores[k] += self._resample_scores(
                search, k, done, min(wanted, most) - done, row.restarts
            )
            row = self._row(row, search.scores[k], final=False)
        if row.verdict == "undecided":
            row = self._row(row, search.scores[k], final=True)
        if retried:
            search.attempts.append(_attempt(row, "three times more restarts"))
        elif row.rounds > s.bootstrap_rounds:
            search.attempts.append(_attempt(row, "more resamples"))
        search.rows[k] = row
        return row

    def _retry(self, search: _Search, k: int) -> KEvidence:
        """Try an unstable k harder: a reference with 3x restarts, resamples with 3x restarts."""
        s = self.settings
        z = search.z
        candidate = self._kmeans(k, 3 * s.n_init, self.seed + 1).fit(z)
        center = np.asarray(candidate.cluster_centers_, dtype=np.float64)
        labels = _nearest(z, center)
        inertia = float(((z - center[labels]) ** 2).sum())
        row = search.rows[k]
        if inertia < row.inertia - 1e-9 * max(row.inertia, 1.0):
            search.centers[k] = center
            shares = np.bincount(labels, minlength=k) / len(labels)
            row = replace(row, inertia=inertia, min_share=float(shares.min()))
        restarts = 3 * s.bootstrap_n_init
        search.scores[k] = self._resample_scores(search, k, 0, _screen(s), restarts)
        search.rows[k] = self._row(replace(row, restarts=restarts), search.scores[k], final=False)
        return self._settle(search, k, retried=True)

    def _choose(self, search: _Search) -> tuple[int, str, bool]:
        """(chosen k, the reason in words, whether the segments are stable)."""
        s = self.settings
        if s.k is not None:
            row = self._settle(search, s.k)
            verdict = "meets" if row.eligible else "does not meet"
            reason = (
                f"k = {s.k} was fixed in the settings; it {verdict} the stability and "
                f"segment-size bars (stability {row.stability:.2f}, lower bound "
                f"{row.stability_low:.2f}, smallest segment {row.min_share:.1%})."
            )
            return s.k, reason, row.eligible
        ks = sorted(search.rows)
        elbow = _elbow(search.rows, s.min_explained_gain)
        row = self._settle(search, elbow)
        if not row.eligible and row.min_share >= s.min_segment_share:
            row = self._retry(search, elbow)
        if row.eligible:
            return elbow, _elbow_reason(row, s), True
        why = _why_not(row, s)
        for distance in range(1, len(ks)):
            near = [k for k in (elbow - distance, elbow + distance) if k in search.rows]
            eligible = [r for r in (self._settle(search, k) for k in near) if r.eligible]
            if eligible:
                best = min(eligible, key=lambda r: (-r.stability_low, r.k))
                reason = (
                    f"the elbow is at {elbow} segments, but {why}; {best.k} segments is the "
                    f"nearest eligible choice (stability {best.stability:.2f}, lower bound "
                    f"{best.stability_low:.2f}, smallest segment {best.min_share:.1%}, "
                    f"silhouette {_fmt(best.silhouette)})."
                )
                return best.k, reason, True
        fallback = min(max(s.fallback_k, ks[0]), ks[-1])
        top = max(search.rows.values(), key=lambda r: (r.stability, -r.k))
        reason = (
            f"no k from {ks[0]} to {ks[-1]} meets the bars (the elbow at {elbow}: {why}; the "
            f"most stable, k = {top.k}, reaches {top.stability:.2f}); {fallback} segments "
            "(fallback_k) are shown as a partition of the customers, not as a structure "
            "found in the data."
        )
        return fallback, reason, False

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
        flags = [c for j, c in enumerate(columns) if _is_flag(values[:, j])]
        personas = name_segments(z, self.settings, summaries, population, flags)
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
        search: _Search,
        chosen: int,
        reason: str,
        stable: bool,
        constant: list[str],
        plan: ColumnPlan,
        default: bool,
    ) -> dict[str, Any]:
        s = self.settings
        row = search.rows[chosen]
        table = [asdict(search.rows[k]) for k in sorted(search.rows)]
        note = _note(row, chosen, stable, s, sorted(search.rows))
        metrics: dict[str, Any] = json_safe(
            {
                "columns": self.columns_,
                "constant_columns": constant,
                "feature_selection": plan.to_metrics(s, default),
                "customers": n,
                "fit_sample": n_sample,
                "evaluation_sample": n_evaluation,
                "seed": self.seed,
                "k": chosen,
                "stable": stable,
                "note": note,
                "k_selection": {
                    "mode": "fixed" if s.k is not None else "auto",
                    "chosen_k": chosen,
                    "stable": stable,
                    "rule": K_RULE.format(
                        confidence=s.stability_confidence,
                        restarts=s.bootstrap_n_init,
                        fraction=s.bootstrap_fraction,
                        min_stability=s.min_stability,
                        rounds=s.bootstrap_rounds,
                        screen=_screen(s),
                        max_rounds=max(s.bootstrap_max_rounds, s.bootstrap_rounds),
                        min_share=s.min_segment_share,
                        min_gain=s.min_explained_gain,
                        fallback=s.fallback_k,
                    ),
                    "reason": reason,
                    "attempts": search.attempts,
                    "table": table,
                },
                "silhouette": row.silhouette,
                "stability": row.stability,
                "stability_sd": row.stability_sd,
                "stability_low": row.stability_low,
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
        z = self.transform_.transform(frame.values)
        labels = _nearest(z, self.centroids_, self.weights_)
        names = np.array([p.name for p in self.segments_], dtype=object)
        return SegmentAssignment(segment_id=labels + 1, segment_name=names[labels])

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "settings": self.settings.model_dump(mode="json"),
            "columns": self.columns_,
            "weights": self.weights_.tolist(),
            "transform": self.transform_.to_state(),
            "centroids": self.centroids_.tolist(),
            "segments": [asdict(p) for p in self.segments_],
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls(SegmentSettings.model_validate(state["settings"]), int(state["seed"]))
        obj.columns_ = [str(c) for c in state["columns"]]
        # a state written before column weights existed used every column with weight 1
        weights = state.get("weights") or [1.0] * len(obj.columns_)
        obj.weights_ = np.array(weights, dtype=np.float64)
        obj.transform_ = RobustTransform.from_state(state["transform"])
        obj.centroids_ = np.array(state["centroids"], dtype=np.float64)
        obj.segments_ = [SegmentProfile(**p) for p in state["segments"]]
        return obj


# ---------------------------------------------------------------------- helpers


def _nearest(z: FloatArray, centroids: FloatArray, weights: FloatArray | None = None) -> IntArray:
    """Index of the nearest centroid (squared Euclidean; first on ties), elementwise exact.

    With `weights`, distances are measured on the columns of positive weight, each scaled
    by its weight (the space K-Means was fitted in).
    """
    if weights is not None:
        used = weights > 0
        z = z[:, used] * weights[used]
        centroids = centroids[:, used] * weights[used]
    best = np.zeros(len(z), dtype=np.int64)
    best_d = np.full(len(z), np.inf)
    for j, c in enumerate(centroids):
        d = ((z - c) ** 2).sum(axis=1)
        closer = d < best_d
        best[closer] = j
        best_d[closer] = d[closer]
    return best


def _full_centroids(center: FloatArray, z_all: FloatArray, weights: FloatArray) -> FloatArray:
    """K-Means centres (weighted space of the kept columns) in transformed units of every
    column: kept columns unweighted, dropped columns as the mean of the segment's members."""
    used = weights > 0
    labels = _nearest(z_all[:, used] * weights[used], center)
    full = np.zeros((len(center), z_all.shape[1]), dtype=np.float64)
    full[:, used] = center / weights[used]
    for j in range(len(center)):
        members = z_all[labels == j]
        if len(members):
            full[j, ~used] = members[:, ~used].mean(axis=0)
    return full


def _adjusted_rand(a: IntArray, b: npt.NDArray[np.integer[Any]]) -> float:
    """Adjusted Rand index of two labelings (0-based labels), from their contingency table.

    Example:
        >>> _adjusted_rand(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
        1.0
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    columns = int(b.max()) + 1
    counts = np.bincount(a * columns + b, minlength=(int(a.max()) + 1) * columns)
    table: FloatArray = counts.reshape(-1, columns).astype(np.float64)

    def pairs(x: FloatArray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    total = len(a) * (len(a) - 1) / 2
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


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


def _is_flag(column: FloatArray) -> bool:
    """Every known value is 0 or 1 (a yes/no column, described as a share of customers)."""
    finite = column[np.isfinite(column)]
    return bool(finite.size and np.isin(finite, (0.0, 1.0)).all())


def _is_constant(column: FloatArray) -> bool:
    finite = column[np.isfinite(column)]
    return bool(finite.size == 0 or finite.min() == finite.max())


def _elbow(rows: Mapping[int, KEvidence], min_gain: float) -> int:
    """The last k, counting up from the smallest, whose extra segment explains >= min_gain."""
    ks = sorted(rows)
    elbow = ks[0]
    for k in ks[1:]:
        gain = rows[k].explained_gain
        if gain is None or gain < min_gain:
            break
        elbow = k
    return elbow


def _elbow_reason(row: KEvidence, s: SegmentSettings) -> str:
    tried = " after a retry with more restarts" if row.restarts > s.bootstrap_n_init else ""
    return (
        f"{row.k} segments: each segment up to the {_ordinal(row.k)} explains at least "
        f"{s.min_explained_gain:.0%} of the spread and the next would not; this split is "
        f"stable{tried} (bootstrap agreement {row.stability:.2f}, at least "
        f"{row.stability_low:.2f} at {s.stability_confidence:.0%} confidence) and its smallest "
        f"segment holds {row.min_share:.1%} of customers."
    )


def _why_not(row: KEvidence, s: SegmentSettings) -> str:
    problems = []
    if row.verdict == "unstable" or (row.verdict == "borderline" and not row.eligible):
        problems.append(
            f"it is unstable (bootstrap agreement {row.stability:.2f} +- {row.stability_sd:.2f} "
            f"over {row.rounds} resamples with {row.restarts} restarts, at most "
            f"{row.stability_high:.2f} at {s.stability_confidence:.0%} confidence; the bar is "
            f"{s.min_stability})"
        )
    if row.min_share < s.min_segment_share:
        problems.append(
            f"its smallest segment holds only {row.min_share:.1%} of customers "
            f"(below {s.min_segment_share:.1%})"
        )
    return " and ".join(problems) or "it does not meet the bars"


def _note(row: KEvidence, k: int, stable: bool, s: SegmentSettings, ks: list[int]) -> str:
    """One plain sentence on how far the segments can be trusted, for the report and CLI."""
    if stable:
        return (
            f"The {k} segments are stable: K-Means refitted on {row.rounds} resamples finds "
            f"them again (agreement {row.stability:.2f}, at least {row.stability_low:.2f} at "
            f"{s.stability_confidence:.0%} confidence)."
        )
    if s.k is not None:
        return (
            f"k = {k} was fixed in the settings and is not stable (agreement "
            f"{row.stability:.2f}, bar {s.min_stability}): the {k} segments shown are a "
            f"partition of the customers, not a structure found in the data."
        )
    return (
        f"No k from {ks[0]} to {ks[-1]} was stable (bootstrap agreement below "
        f"{s.min_stability}): the {k} segments shown are a partition of the customers, not a "
        f"structure found in the data; read their names as descriptions, not as groups."
    )


def _screen(s: SegmentSettings) -> int:
    """Resamples per k for the evidence table."""
    return min(s.screen_rounds, s.bootstrap_rounds)


def _attempt(row: KEvidence, step: str) -> dict[str, Any]:
    """One entry of `k_selection.attempts`: what was tried for a k and what it gave."""
    return {
        "k": row.k,
        "step": step,
        "rounds": row.rounds,
        "restarts": row.restarts,
        "stability": row.stability,
        "stability_low": row.stability_low,
        "stability_high": row.stability_high,
        "verdict": row.verdict,
    }


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
