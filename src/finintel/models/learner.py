"""The contract of a supervised risk learner: the scorecard and its challengers keep it.

`finintel.models.supervised` fits every learner on the same folds, keeps one (the champion) and
calibrates it; it sees the learners only through this contract, so a new challenger is one
module. A learner works on a plain matrix: one column per candidate variable (NaN = missing),
described by `LearnerInput`; it knows nothing of feature tables, bands or reasons.

- `fit(x, y)` learns from labelled rows (y: 0 = repaid, 1 = defaulted) and returns `self`.
- `linear(x)` is the learner's log-odds of default (higher = riskier), before calibration.
- `contributions(x)` splits `linear(x)` into one push per variable:
  `linear(x) == base(x) + contributions(x).sum(axis=1)`, with `base` the same for every row
  (`expected_linear_`): how much each variable moved this customer's log-odds away from the
  training population's. Reasons name the variables with the largest positive pushes.
- `used()` lists the variables the fitted learner reads (indices into `LearnerInput.names`).
- `to_state()` / `from_state()`: JSON-safe plain values only (lists, numbers, strings); a
  reloaded learner gives bit-identical `linear` and `contributions`. Nothing is pickled.
- `describe()` is what the metrics show of the fitted learner (variables, coefficients...).

Example:
    >>> spec = LearnerInput(["dti", "purpose"], [False, True], [1, 0])
    >>> spec.numeric
    [0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from finintel.settings.risk import RiskSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LearnerInput:
    """What the columns of a learner's matrix are.

    `categorical[j]`: column j holds codes of unordered categories (a loan purpose), whose size
    means nothing. `directions[j]`: +1 when a higher value is known to be riskier, -1 when a
    lower one is, 0 when unknown (from the roles and built-in factors); a learner may constrain
    its fit to these directions.
    """

    names: list[str]
    categorical: list[bool]
    directions: list[int]
    units: dict[str, str] = field(default_factory=dict)  # column -> unit, for transforms

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.categorical) == len(self.directions)):
            raise ValueError("names, categorical and directions must have one entry per column")

    @property
    def numeric(self) -> list[int]:
        return [j for j, c in enumerate(self.categorical) if not c]

    def to_state(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "categorical": self.categorical,
            "directions": self.directions,
            "units": self.units,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LearnerInput:
        return cls(
            [str(n) for n in state["names"]],
            [bool(c) for c in state["categorical"]],
            [int(d) for d in state["directions"]],
            {str(k): str(v) for k, v in state.get("units", {}).items()},
        )


class RiskLearner(ABC):
    """One supervised learner of the probability of default (see the module docstring)."""

    kind: ClassVar[str]  # "scorecard", "logistic", "boosting"
    description: ClassVar[str]  # one line for the report, e.g. "WoE logistic scorecard"
    expected_linear_: float

    def __init__(self, spec: LearnerInput, settings: RiskSettings, seed: int = 0) -> None:
        self.spec = spec
        self.settings = settings
        self.seed = seed

    @abstractmethod
    def fit(self, x: FloatArray, y: IntArray) -> Self: ...

    @abstractmethod
    def linear(self, x: FloatArray) -> FloatArray: ...

    @abstractmethod
    def contributions(self, x: FloatArray) -> FloatArray: ...

    @abstractmethod
    def used(self) -> list[int]: ...

    @abstractmethod
    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_state(
        cls, spec: LearnerInput, settings: RiskSettings, seed: int, state: Mapping[str, Any]
    ) -> Self: ...

    def describe(self) -> dict[str, Any]:
        return {"variables_used": [self.spec.names[j] for j in self.used()]}
