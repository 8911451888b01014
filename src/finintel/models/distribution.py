"""The training distribution of one column: where a new value sits among the training values.

Every model places values in the population it was fitted on (a risk factor's mid-rank, a
detector score's percentile, "above 95% of customers" in a reason). They all use this one
class, fitted once and stored, so a value is judged against the training data and never
against the batch being scored. It stores a rank sketch: sorted `knots` and, for each knot,
how many positions lie at or below it (`n_le_`) and at or above it (`n_ge_`) out of
`total_`. Two ways to fit it:

- `of_ranks(values)`: the knots are training values (a uniform grid over the body and every
  extreme value in both tails), positions are customers. Tail shares are exact, which ECOD's
  -log tail probabilities need.
- `on_grid(values, points, method)`: the knots are the column's quantiles at `points` evenly
  spaced probabilities, positions are grid points (1001 for the risk scales, 101 for the
  reference quantiles of reasons).

It also keeps a binned `profile_` of the training values (decile bins and the missing
share) that monitoring compares new data with.

Example:
    >>> import numpy as np
    >>> values = np.array([0.0, 0.0, 0.0, 1.0, 2.0])
    >>> scale = TrainingDistribution.on_grid(values, 1001, "inverted_cdf")
    >>> [round(float(v)) for v in scale.midrank(np.array([0.0, 2.0, 5.0]))]
    [30, 90, 100]
    >>> cdf = TrainingDistribution.of_ranks(np.arange(1.0, 11.0))
    >>> float(cdf.left(np.array([3.0]))[0]), float(cdf.right(np.array([3.0]))[0])
    (0.3, 0.8)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

from finintel.errors import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GridMethod = Literal["inverted_cdf", "linear"]

# Knots kept by `of_ranks`: a uniform grid over the body and a log-spaced grid into both tails
# (down to single values at the extremes), so tail probabilities stay exact where -log(p) is
# large and the stored state stays small for any number of customers.
UNIFORM_KNOTS = 501
TAIL_KNOTS = 200
# Bins of the stored profile: training deciles.
PROFILE_BINS = 10


class TrainingDistribution:
    """A stored rank sketch of one column's training values (see the module docstring)."""

    kind_: Literal["ranks", "grid"]
    method_: GridMethod | None
    total_: int
    knots_: FloatArray
    n_le_: IntArray
    n_ge_: IntArray
    profile_: dict[str, Any]

    # ---------------------------------------------------------------- fitting

    @classmethod
    def of_ranks(cls, values: FloatArray) -> Self:
        """Exact in the tails: knots are training values, counts are customers."""
        ordered = np.sort(values[np.isfinite(values)])
        n = len(ordered)
        if n == 0:
            raise DataError("a training distribution needs at least one finite value")
        tail = np.floor(n * np.logspace(np.log10(1.0 / n), np.log10(0.5), TAIL_KNOTS))
        picks = np.concatenate(
            [np.round(np.linspace(0, n - 1, UNIFORM_KNOTS)), tail, n - 1 - tail, [0, n - 1]]
        )
        knots = np.unique(ordered[np.clip(picks, 0, n - 1).astype(np.int64)])
        n_le = np.searchsorted(ordered, knots, side="right").astype(np.int64)
        n_ge = (n - np.searchsorted(ordered, knots, side="left")).astype(np.int64)
        return cls._made("ranks", None, n, knots, n_le, n_ge, _profile(values))

    @classmethod
    def on_grid(cls, values: FloatArray, points: int, method: GridMethod) -> Self:
        """Quantiles at `points` evenly spaced probabilities (none when no value is finite)."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls._made("grid", method, points, np.zeros(0), empty, empty, _profile(values))
        if method == "inverted_cdf":
            q = np.quantile(finite, np.linspace(0, 1, points), method="inverted_cdf")
        else:
            q = np.percentile(finite, np.linspace(0, 100, points))
        q = np.array([float(v) for v in q], dtype=np.float64)
        knots, first = np.unique(q, return_index=True)
        last = len(q) - 1 - np.unique(q[::-1], return_index=True)[1]
        n_le = (last + 1).astype(np.int64)
        n_ge = (points - first).astype(np.int64)
        return cls._made("grid", method, points, knots, n_le, n_ge, _profile(values))

    @classmethod
    def _made(
        cls,
        kind: Literal["ranks", "grid"],
        method: GridMethod | None,
        total: int,
        knots: FloatArray,
        n_le: IntArray,
        n_ge: IntArray,
        profile: dict[str, Any],
    ) -> Self:
        obj = cls()
        obj.kind_, obj.method_, obj.total_ = kind, method, int(total)
        obj.knots_, obj.n_le_, obj.n_ge_ = knots, n_le, n_ge
        obj.profile_ = profile
        return obj

    @property
    def empty(self) -> bool:
        """True when the column had no finite training value."""
        return len(self.knots_) == 0

    # ---------------------------------------------------------------- shares and tails

    def left(self, x: FloatArray) -> FloatArray:
        """Share of training positions <= x (0 below the lowest knot)."""
        idx = np.searchsorted(self.knots_, x, side="right") - 1
        counts = np.where(idx >= 0, self.n_le_[np.clip(idx, 0, None)], 0)
        return counts.astype(np.float64) / self.total_

    def right(self, x: FloatArray) -> FloatArray:
        """Share of training positions >= x (0 above the highest knot)."""
        idx = np.searchsorted(self.knots_, x, side="left")
        inside = idx < len(self.knots_)
        counts = np.where(inside, self.n_ge_[np.clip(idx, 0, len(self.knots_) - 1)], 0)
        return counts.astype(np.float64) / self.total_

    def tail_surprise(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """-log of `left(x)` and of `right(x)`, each at least 1/total (the rarest value).

        Looked up in per-knot tables, so a value gets the same bits whether it is scored
        alone or in a batch (a vectorised log can round a lone value differently).
        """
        left_table, right_table = self._surprise_tables()
        left = left_table[np.searchsorted(self.knots_, x, side="right")]
        right = right_table[np.searchsorted(self.knots_, x, side="left")]
        return left, right

    def _surprise_tables(self) -> tuple[FloatArray, FloatArray]:
        tables: tuple[FloatArray, FloatArray] | None = getattr(self, "_tables", None)
        if tables is None:
            # "below every knot" (left) and "above every knot" (right) count 0 positions
            counts = np.concatenate([[0], self.n_le_, self.n_ge_, [0]]).astype(np.float64)
            padded = np.concatenate([counts, np.ones(-len(counts) % 64)])  # whole SIMD blocks
            floor = 1.0 / self.total_
            surprise = -np.log(np.maximum(padded / self.total_, floor))[: len(counts)]
            k = len(self.knots_)
            tables = (surprise[: k + 1], surprise[k + 1 :])
            self._tables = tables
        return tables

    # ---------------------------------------------------------------- percentiles

    def percentile(self, x: FloatArray) -> FloatArray:
        """Smooth rank 0-100: `left` interpolated linearly between knots."""
        shares = self.n_le_.astype(np.float64) / self.total_
        return 100.0 * np.interp(x, self.knots_, shares, left=0.0, right=1.0)

    def midrank(self, x: FloatArray) -> FloatArray:
        """Mid-rank percentile 0-100 on the grid: a value in a run of ties gets the middle of
        the run, so a tie neither pushes a score up nor down. NaN stays NaN."""
        if self.empty:
            return np.full(np.shape(x), np.nan)
        grid = np.linspace(0.0, 100.0, self.total_)
        if len(self.knots_) == 1:
            only = self.knots_[0]
            low = np.where(x < only, 0.0, np.where(x > only, 100.0, 50.0))
            return np.where(np.isfinite(x), low, np.nan)
        first, last = self.total_ - self.n_ge_, self.n_le_ - 1
        low = np.interp(x, self.knots_, grid[first], left=0.0, right=100.0)
        high = np.interp(x, self.knots_, grid[last], left=0.0, right=100.0)
        return np.where(np.isfinite(x), (low + high) / 2.0, np.nan)

    def at_or_below(self, x: FloatArray) -> FloatArray:
        """Percent (0-100) of the training population at or below each value, on the grid; a
        value equal to a run of tied quantiles sits at the top of the run. NaN if unknown."""
        if self.empty:
            return np.full(np.shape(x), np.nan)
        q = self.quantiles()
        grid = np.linspace(0, 100, self.total_)
        upper = np.interp(x, q, grid, left=0.0, right=100.0)
        top = grid[np.searchsorted(q, x, side="right") - 1].clip(0, 100)
        result = np.maximum(upper, np.where(x >= q[0], top, 0.0))
        return np.where(np.isfinite(x), result, np.nan)

    def quantiles(self) -> FloatArray:
        """The grid's quantiles, ties repeated (a `on_grid` distribution)."""
        return np.repeat(self.knots_, self.n_le_ + self.n_ge_ - self.total_)

    def median(self) -> float | None:
        """The middle grid quantile (a `on_grid` distribution with an odd number of points)."""
        return None if self.empty else float(self.quantiles()[(self.total_ - 1) // 2])

    # ---------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind_,
            "method": self.method_,
            "total": self.total_,
            "knots": self.knots_.tolist(),
            "n_le": self.n_le_.tolist(),
            "n_ge": self.n_ge_.tolist(),
            "profile": self.profile_,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        return cls._made(
            state["kind"],
            state["method"],
            int(state["total"]),
            np.array(state["knots"], dtype=np.float64),
            np.array(state["n_le"], dtype=np.int64),
            np.array(state["n_ge"], dtype=np.int64),
            dict(state["profile"]),
        )


def _profile(values: FloatArray) -> dict[str, Any]:
    """Decile bins of the finite training values, the share in each, and the missing share.

    Example:
        >>> _profile(np.array([1.0, 2.0, np.nan, 4.0]))["missing_share"]
        0.25
    """
    finite = np.sort(values[np.isfinite(values)])
    missing = 1.0 - finite.size / values.size if values.size else 0.0
    if finite.size == 0:
        return {"edges": [], "shares": [], "missing_share": round(missing, 6)}
    n = finite.size
    # the i-th decile is the smallest value with at least i/10 of the values at or below it
    ranks = [-(-i * n // PROFILE_BINS) - 1 for i in range(1, PROFILE_BINS)]
    edges = np.unique(finite[ranks])
    counts = np.diff(np.searchsorted(finite, edges, side="right"), prepend=0, append=finite.size)
    shares = counts / finite.size
    return {
        "edges": [float(e) for e in edges],  # bin i: (edges[i-1], edges[i]]; the last is open
        "shares": [round(float(s), 6) for s in shares],
        "missing_share": round(missing, 6),
    }
