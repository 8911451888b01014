"""Combining detector scores: a matrix in, one score per row out (PyOD's `combination`).

Column j of the matrix holds detector j's scores on one scale (here: percentiles among
training customers), so a detector added to the ensemble is one more column, and nothing else
changes. Rules: "mean" (every detector counts alike), "max" (the most confident detector) and
a single detector's column by its name.

`choose_combination` picks the rule at fit time when the settings say "auto": the mean, unless
one detector's flagged customers live in clearly emptier neighbourhoods of the feature space
than the mean's flagged customers (`sparsity_of_flagged`), in which case that detector alone
decides. The mean is best when the detectors see the same anomalies in different ways; a
single detector is best when only it can see them (customers who break the correlations
between features look ordinary to detectors that read one feature at a time), and then the
mean dilutes it. The figures behind the choice are kept for metrics.json.

Example:
    >>> import numpy as np
    >>> matrix = np.array([[10.0, 90.0, 50.0], [60.0, 60.0, 60.0]])
    >>> combine(matrix, "mean").tolist()
    [50.0, 60.0]
    >>> [round(v, 4) for v in combine(matrix, "max").tolist()]
    [89.996, 60.0]
    >>> combine(matrix, "ecod", ["forest", "distance", "ecod"]).tolist()
    [50.0, 60.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from finintel.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

# Weight of the mean under the "max" rule: it only separates rows with equal maxima.
TIE_BREAK = 1e-4
# Neighbours whose distance measures how empty a customer's neighbourhood is.
NEIGHBOURS = 10
# Customers the neighbourhoods are measured on at most (a seeded sample of the training rows).
SPARSITY_SAMPLE = 20_000
# A single detector replaces the mean when its flagged customers' neighbourhoods are emptier
# than the mean's by more than a margin (difference of median log distances to the k-th
# nearest customer; 0.1 = about 10% farther), at either of two scales:
# - "near" (k = NEIGHBOURS) sees customers off the shape of the data; on synthetic banks the
#   detectors differed there by up to 0.09 (with the mean best), where the robust distance
#   alone saw customers who break the features' correlations by 0.17-0.23;
# - "wide" (k = twice the flagged count) sees a tight group of anomalies, which at a small k is
#   its own neighbourhood; the extremes of ordinary customers differ there by up to 0.15, a
#   tight group by 0.8 and more (docs/anomalies.md).
SINGLE_DETECTOR_MARGINS = {"near": 0.12, "wide": 0.3}


def average(matrix: FloatArray) -> FloatArray:
    """The mean over detectors."""
    return np.asarray(matrix.mean(axis=1), dtype=np.float64)


def maximization(matrix: FloatArray) -> FloatArray:
    """The most confident detector, ties among equal maxima broken by the mean."""
    top = matrix.max(axis=1)
    return np.asarray(top + TIE_BREAK * (matrix.mean(axis=1) - top), dtype=np.float64)


RULES: dict[str, Callable[[FloatArray], FloatArray]] = {"mean": average, "max": maximization}


def combine(matrix: FloatArray, rule: str, names: Sequence[str] = ()) -> FloatArray:
    """One score per row of `matrix` (rows = customers, columns = detectors) by `rule`: a rule
    of `RULES`, or the name of one detector (`names` gives the columns' detectors)."""
    if rule in RULES:
        return RULES[rule](matrix)
    if rule in names:
        return np.asarray(matrix[:, list(names).index(rule)], dtype=np.float64)
    raise ConfigError(f"unknown combination rule {rule!r}; use one of {sorted([*RULES, *names])}")


@dataclass(frozen=True)
class CombinationChoice:
    """The rule chosen and the evidence: `sparsity_of_flagged` per detector and scale."""

    rule: str
    sparsity: dict[str, float]

    def why(self) -> str:
        """The choice in one sentence, for metrics.json and the report."""
        figures = ", ".join(f"{k} {v:+.2f}" for k, v in self.sparsity.items())
        margins = ", ".join(f"{k} {v}" for k, v in SINGLE_DETECTOR_MARGINS.items())
        if self.rule == "mean":
            return (
                "the mean of the detectors' percentiles: no detector's flagged customers sit "
                f"in clearly emptier neighbourhoods than the mean's (margins {margins}; "
                f"{figures})"
            )
        return (
            f"{self.rule} alone: its flagged customers sit in clearly emptier neighbourhoods "
            f"than those of the mean (margins {margins}; {figures}), so only it sees these "
            "anomalies and the mean would dilute it"
        )


def choose_combination(
    x: FloatArray, matrix: FloatArray, names: Sequence[str], flagged: int, seed: int
) -> CombinationChoice:
    """The mean, or the one detector whose `flagged` top customers are clearly sparser.

    `x` is the transformed feature matrix the detectors read, `matrix` their percentiles.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(400, 2))
        >>> matrix = np.column_stack([rng.uniform(0, 100, 400), 100 * np.hypot(*x.T) / 5])
        >>> choose_combination(x, matrix, ["noise", "distance"], 4, seed=0).rule
        'distance'
    """
    sparsity = sparsity_of_flagged(x, matrix, names, flagged, seed)
    excess = {
        name: max(sparsity[f"{name}_{scale}"] - m for scale, m in SINGLE_DETECTOR_MARGINS.items())
        for name in names
    }
    best = max(names, key=lambda n: excess[n])
    return CombinationChoice(best if excess[best] > 0 else "mean", sparsity)


def sparsity_of_flagged(
    x: FloatArray, matrix: FloatArray, names: Sequence[str], flagged: int, seed: int
) -> dict[str, float]:
    """For each detector and scale (`<detector>_near`, `<detector>_wide`): how much emptier
    the neighbourhoods of its `flagged` highest-scored customers are than those of the mean's
    (difference of median log distances to the k-th nearest customer). Measured on a seeded
    sample of at most `SPARSITY_SAMPLE` customers; see `SINGLE_DETECTOR_MARGINS`.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    rows = np.arange(n)
    if n > SPARSITY_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, SPARSITY_SAMPLE, replace=False))
    sample = x[rows]
    top = max(1, round(flagged * len(rows) / n))
    scales = {
        "near": min(NEIGHBOURS, len(sample) - 1),
        "wide": min(max(NEIGHBOURS, 2 * top), len(sample) - 1),
    }
    k_max = max(scales.values())
    distances, _ = NearestNeighbors(n_neighbors=k_max + 1).fit(sample).kneighbors(sample)
    log_distance = np.log(distances[:, list(scales.values())] + 1e-12)  # a column per scale

    def flagged_sparsity(score: FloatArray) -> FloatArray:
        chosen = np.argsort(-score, kind="stable")[:top]
        return np.asarray(np.median(log_distance[chosen], axis=0), dtype=np.float64)

    by_mean = flagged_sparsity(average(matrix[rows]))
    out = {}
    for j, name in enumerate(names):
        gaps = flagged_sparsity(matrix[rows, j]) - by_mean
        for scale, gap in zip(scales, gaps, strict=True):
            out[f"{name}_{scale}"] = round(float(gap), 4)
    return out
