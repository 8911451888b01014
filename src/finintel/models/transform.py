"""Robust, stored transforms of features: signed log for skewed amounts, then robust scaling.

Money, counts and day counts are heavy-tailed, so they go through a signed `log1p`; every
column is then centred on its median and divided by a robust spread (the 5-95% range scaled to
a normal standard deviation, falling back to the inter-quartile range, then to 1). One outlier
cannot stretch the scale the way it stretches min-max scaling. Missing values become the median
(0 after scaling). The fitted numbers are stored in the model bundle and reused unchanged on new
data, so a scoring batch never refits them.

Where a value sits in the population ("above 95% of customers") is the job of
`finintel.models.distribution.TrainingDistribution`.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> t = RobustTransform().fit(x, ["debit_total"], {"debit_total": "money"})
    >>> t.specs_[0].log
    True
    >>> bool(abs(t.transform(x)[2, 0]) < 1e-12)  # the median maps to 0
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from finintel.errors import DataError

FloatArray = npt.NDArray[np.float64]

# Units (from the feature catalog) whose values are heavy-tailed and get a signed log.
LOG_UNITS = frozenset({"money", "money per month", "count", "days"})
_NORMAL_5_95 = 2 * 1.6448536269514722  # width of the 5-95% range of a standard normal
_NORMAL_IQR = 1.3489795003921634


@dataclass(frozen=True)
class ColumnTransform:
    """The fitted transform of one column: optional signed log, then (x - center) / scale."""

    name: str
    log: bool
    center: float
    scale: float


def signed_log1p(values: FloatArray) -> FloatArray:
    """sign(x) * log(1 + |x|): keeps sign and zero, compresses large magnitudes."""
    return np.sign(values) * np.log1p(np.abs(values))


class RobustTransform:
    """Signed log (where the unit says so) and robust scaling, fitted once and stored.

    Columns with an unknown unit (extra columns) get the log when they are non-negative and
    strongly right-skewed (mean above 2x the median and a 99th percentile above 10x it).
    """

    def __init__(self, clip: float | None = None) -> None:
        self.clip = clip

    def fit(
        self, values: FloatArray, columns: Sequence[str], units: Mapping[str, str]
    ) -> RobustTransform:
        specs = []
        for j, name in enumerate(columns):
            col = values[:, j]
            finite = col[np.isfinite(col)]
            log = _wants_log(finite, units.get(name))
            if log:
                finite = signed_log1p(finite)
            specs.append(ColumnTransform(name, log, *_center_scale(finite)))
        self.specs_ = specs
        return self

    @property
    def columns(self) -> list[str]:
        return [s.name for s in self.specs_]

    def transform(self, values: FloatArray) -> FloatArray:
        """Transformed copy of `values` (columns in the fitted order); NaN becomes 0."""
        if values.shape[1] != len(self.specs_):
            raise DataError(f"expected {len(self.specs_)} columns, got {values.shape[1]}")
        out = np.empty_like(values, dtype=np.float64)
        for j, spec in enumerate(self.specs_):
            col = values[:, j].astype(np.float64)
            if spec.log:
                col = signed_log1p(col)
            col = (col - spec.center) / spec.scale
            out[:, j] = np.where(np.isfinite(col), col, 0.0)
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def to_state(self) -> dict[str, Any]:
        return {"clip": self.clip, "columns": [asdict(s) for s in self.specs_]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RobustTransform:
        obj = cls(clip=state["clip"])
        obj.specs_ = [
            ColumnTransform(str(c["name"]), bool(c["log"]), float(c["center"]), float(c["scale"]))
            for c in state["columns"]
        ]
        return obj


def _wants_log(finite: FloatArray, unit: str | None) -> bool:
    if unit is not None and unit != "as given":
        return unit in LOG_UNITS
    if finite.size == 0 or finite.min() < 0:
        return False
    median = float(np.median(finite))
    q99 = float(np.percentile(finite, 99))
    return float(finite.mean()) > 2 * median and q99 > 10 * median


def _center_scale(finite: FloatArray) -> tuple[float, float]:
    if finite.size == 0:
        return 0.0, 1.0
    center = float(np.median(finite))
    q05, q25, q75, q95 = np.percentile(finite, [5, 25, 75, 95])
    for spread, normal in ((q95 - q05, _NORMAL_5_95), (q75 - q25, _NORMAL_IQR)):
        if spread > 0:
            return center, float(spread / normal)
    std = float(finite.std())
    return center, std if std > 0 else 1.0
