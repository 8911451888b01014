"""The individual outlier detectors of the customer anomaly ensemble, and their stored ECDFs.

Every detector follows PyOD's vocabulary: higher score = more abnormal. All of them work on
features already passed through `RobustTransform` (signed log, median-centred, robust-scaled),
are fitted once, and score new rows from fit-time state only.

- `IsolationForestDetector`: scikit-learn's Isolation Forest (fixed `random_state`), saved with
  skops.
- `RobustDistanceDetector`: Mahalanobis distance to the median with a Ledoit-Wolf shrunk
  covariance of the winsorised training data. Winsorising at the training 1st/99th
  percentiles keeps a few extreme customers from inflating the covariance; shrinkage keeps it
  well conditioned. It is deterministic (MinCovDet's random subsets were unstable across seeds).
- `ECODDetector`: ECOD (Li et al., 2022, "ECOD: Unsupervised Outlier Detection Using Empirical
  Cumulative Distribution Functions"), implemented here rather than taken from PyOD because
  PyOD's `decision_function` refits the empirical CDFs on training + scoring data, which would
  make a customer's score depend on who else is in the scoring batch. Here the ECDFs come from
  the training data only and are stored compactly as `TrainingDistribution` rank sketches.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3))
    >>> x[0] = [8.0, -8.0, 8.0]
    >>> det = ECODDetector().fit(x)
    >>> int(np.argmax(det.score(x)))
    0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt
import skops.io as sio
from scipy import stats
from sklearn.covariance import LedoitWolf
from sklearn.ensemble import IsolationForest

from finintel.errors import ModelStateError
from finintel.models.distribution import TAIL_KNOTS, UNIFORM_KNOTS, TrainingDistribution

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# skops types the Isolation Forest file may contain; anything else is refused at load time.
TRUSTED_FOREST_TYPES = [
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
]


class Detector(Protocol):
    """What the ensemble needs of a detector: fit, score (higher = more abnormal), persist.

    `to_state()` is the detector's JSON state; `to_files()` any other files it stores (named
    after the detector); `from_state(state, files)` rebuilds it without executing anything.
    """

    name: str

    def fit(self, x: FloatArray) -> Self: ...

    def score(self, x: FloatArray) -> FloatArray: ...

    def settings(self) -> dict[str, Any]: ...

    def to_state(self) -> dict[str, Any]: ...

    def to_files(self) -> dict[str, bytes]: ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self: ...


class ECODDetector:
    """ECOD with training-only ECDFs: per feature, the tail chosen by the training skewness.

    For each feature the left-tail probability F(x) and right-tail probability 1 - F(x-) come
    from the training ECDF (a value beyond the training range gets the smallest training
    probability, 1/n). The score is max(sum -log left, sum -log right, sum -log auto), where
    "auto" takes the left tail for negatively skewed features and the right tail otherwise,
    as in the paper.
    """

    name = "ecod"

    def fit(self, x: FloatArray) -> Self:
        cdfs = [TrainingDistribution.of_ranks(x[:, j]) for j in range(x.shape[1])]
        with warnings.catch_warnings():
            # a constant column has no skewness (scipy warns); it then counts as unskewed
            warnings.simplefilter("ignore", RuntimeWarning)
            skew = np.nan_to_num(stats.skew(x, axis=0), nan=0.0)
        self.cdfs_ = cdfs
        self.skewness_ = np.asarray(skew, dtype=np.float64)
        return self

    def tail_surprise(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """-log left and -log right tail probabilities per row and feature."""
        left = np.empty_like(x, dtype=np.float64)
        right = np.empty_like(x, dtype=np.float64)
        for j, cdf in enumerate(self.cdfs_):
            left[:, j], right[:, j] = cdf.tail_surprise(x[:, j])
        return left, right

    def score(self, x: FloatArray) -> FloatArray:
        left, right = self.tail_surprise(x)
        auto = np.where(self.skewness_ < 0, left, right)
        sums = [_row_sums(left), _row_sums(right), _row_sums(auto)]
        best: FloatArray = np.maximum.reduce(sums)
        return best

    def settings(self) -> dict[str, Any]:
        return {
            "ecdf": "training data only",
            "uniform_knots": UNIFORM_KNOTS,
            "tail_knots": TAIL_KNOTS,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "cdfs": [c.to_state() for c in self.cdfs_],
            "skewness": self.skewness_.tolist(),
        }

    def to_files(self) -> dict[str, bytes]:
        return {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls()
        obj.cdfs_ = [TrainingDistribution.from_state(c) for c in state["cdfs"]]
        obj.skewness_ = np.array(state["skewness"], dtype=np.float64)
        return obj


def _row_sums(values: FloatArray) -> FloatArray:
    """Sum of each row, adding the columns in order: the same bits for a row alone or in a
    batch (numpy's `sum(axis=1)` adds in another order depending on the memory layout)."""
    total = np.zeros(values.shape[0], dtype=np.float64)
    for j in range(values.shape[1]):
        total = total + values[:, j]
    return total


class RobustDistanceDetector:
    """Mahalanobis distance to the median, Ledoit-Wolf covariance of winsorised training data."""

    name = "robust_distance"

    def fit(self, x: FloatArray) -> Self:
        low, high = np.percentile(x, [1, 99], axis=0)
        clipped = np.clip(x, low, high)
        center = np.median(x, axis=0)
        lw = LedoitWolf(assume_centered=True).fit(clipped - center)
        self.center_ = center
        self.low_ = low
        self.high_ = high
        self.precision_ = np.asarray(lw.precision_, dtype=np.float64)
        self.shrinkage_ = float(lw.shrinkage_)
        return self

    def score(self, x: FloatArray) -> FloatArray:
        diff = x - self.center_
        squared = np.einsum("ij,jk,ik->i", diff, self.precision_, diff)
        distance: FloatArray = np.sqrt(np.maximum(squared, 0.0))
        return distance

    def settings(self) -> dict[str, Any]:
        return {
            "covariance": "Ledoit-Wolf on data winsorised at training 1st/99th percentiles",
            "shrinkage": round(self.shrinkage_, 6),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "center": self.center_.tolist(),
            "low": self.low_.tolist(),
            "high": self.high_.tolist(),
            "precision": self.precision_.tolist(),
            "shrinkage": self.shrinkage_,
        }

    def to_files(self) -> dict[str, bytes]:
        return {}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls()
        obj.center_ = np.array(state["center"], dtype=np.float64)
        obj.low_ = np.array(state["low"], dtype=np.float64)
        obj.high_ = np.array(state["high"], dtype=np.float64)
        obj.precision_ = np.array(state["precision"], dtype=np.float64)
        obj.shrinkage_ = float(state["shrinkage"])
        return obj


class IsolationForestDetector:
    """scikit-learn's Isolation Forest; score = -score_samples (higher = more isolated)."""

    name = "isolation_forest"

    def __init__(self, n_estimators: int = 300, max_samples: int = 2048, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed

    def fit(self, x: FloatArray) -> Self:
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(x)),
            random_state=self.seed,
            n_jobs=1,
        )
        self.forest_ = forest.fit(x)
        return self

    def score(self, x: FloatArray) -> FloatArray:
        return -np.asarray(self.forest_.score_samples(x), dtype=np.float64)

    def settings(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_samples": int(self.forest_.max_samples_),
            "random_state": self.seed,
        }

    @property
    def file_name(self) -> str:
        return f"{self.name}.skops"

    def to_state(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
            "file": self.file_name,
        }

    def to_files(self) -> dict[str, bytes]:
        return {self.file_name: sio.dumps(self.forest_)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls(int(state["n_estimators"]), int(state["max_samples"]), int(state["seed"]))
        if obj.file_name not in files:
            raise ModelStateError(f"the anomaly model lacks {obj.file_name}")
        loaded = sio.loads(files[obj.file_name], trusted=TRUSTED_FOREST_TYPES)
        # skops also trusts its default types (e.g. other scikit-learn estimators): insist on
        # the one type this file must hold
        if type(loaded).__name__ != "IsolationForest":
            raise ModelStateError(
                f"{obj.file_name} holds a {type(loaded).__name__}, not an IsolationForest"
            )
        obj.forest_ = loaded
        return obj


# Every detector the ensemble can use, by the name stored in the model state.
DETECTOR_TYPES: dict[str, type[Detector]] = {
    IsolationForestDetector.name: IsolationForestDetector,
    RobustDistanceDetector.name: RobustDistanceDetector,
    ECODDetector.name: ECODDetector,
}
