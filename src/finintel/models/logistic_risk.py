"""A challenger of the scorecard: L2-regularised logistic regression on robust-transformed inputs.

Numeric variables go through `RobustTransform` (signed log for money, counts and day counts,
median centre, robust scale), clipped to +-`CLIP` robust units so one extreme customer cannot
dominate a coefficient; a missing value becomes the median (0) and, when the training rows had
missing values in that variable, a 0/1 missing-indicator column learns what missingness itself
says. Categorical variables (codes of unordered categories) are one-hot encoded by the codes
seen in training, a missing code being its own category when seen; a code not seen at fit time
gets all zeros, so it lands on the population average of that variable. Columns constant in the
training rows (a variable all missing, one category only) get a coefficient of exactly 0.

Every column's push is `coef * (z - mean of z over the training rows)`; the pushes of one
variable's columns (its one-hot columns, its missing indicator) are summed, so
`linear(x) == expected_linear_ + contributions(x).sum(axis=1)`.

Regularisation strength. Scikit-learn's objective is `sum(log-loss) + ||w||^2 / (2 C)`, so a
fixed C is a fixed Gaussian prior whose weight fades as the sample grows. Measured with
5-fold stratified cross-validation repeated over seeds 1000-1999 (ROC-AUC, mean over folds):

=================  ========  ========  ========  ========  ==========  ========
data               C=0.01    C=0.03    C=0.1     C=1       inner CV    plain LR
=================  ========  ========  ========  ========  ==========  ========
German credit      0.7941    0.7955    0.7953    0.7923    0.7946      0.7923
Berka (raw cols)   0.5493    0.5245    0.5004    0.4876    0.5319      0.5230
=================  ========  ========  ========  ========  ==========  ========

(20 seeds x 5 folds; clip 5. German credit: 1000 rows, 300 defaults, 5 categorical columns;
Berka: 682 labelled, 76 defaults, 51 raw feature columns that barely separate the label, so
every number there is noise around 0.5 with a fold spread of 0.07-0.08. "inner CV": C chosen
per fit from 0.003-1 by 5-fold log-loss within the training rows; choosing by ROC-AUC gave
0.7929 and 0.5333. "plain LR": scikit-learn's default LogisticRegression, C=1, on
median-imputed standardised numbers and one-hot codes.) German credit peaks at C=0.03 and is
flat from 0.03 to 0.1; clipping at 3 or not at all instead of 5 moved it by at most 0.001. The
inner choice was no better and costs thirty fits, so C is fixed at 0.03: stronger shrinkage
than scikit-learn's default, which the small, noisy samples where a challenger matters most
need. A check on 20 other repeats (seed 1500) gave German credit 0.7953 against 0.7921 for the
plain regression (paired difference +0.0033 per fold) and Berka 0.5162 against 0.5056. A fit of
10,000 rows x 25 variables takes about 0.15 s.

Example:
    >>> import numpy as np
    >>> from finintel.settings.risk import RiskSettings
    >>> rng = np.random.default_rng(1000)
    >>> x = rng.normal(size=(300, 2))
    >>> y = (x[:, 0] + rng.normal(size=300) > 0).astype(np.int64)
    >>> spec = LearnerInput(["dti", "noise"], [False, False], [1, 0])
    >>> learner = LogisticLearner(spec, RiskSettings(), seed=1000).fit(x, y)
    >>> bool(learner.describe()["coefficients"]["dti"]["value"] > 0)
    True
    >>> parts = learner.contributions(x)
    >>> bool(np.allclose(learner.linear(x), learner.expected_linear_ + parts.sum(axis=1)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from threadpoolctl import threadpool_limits

from finintel.errors import DataError, ModelStateError
from finintel.models.base import check_is_fitted
from finintel.models.learner import FloatArray, IntArray, LearnerInput, RiskLearner
from finintel.models.transform import RobustTransform
from finintel.settings.risk import RiskSettings

# Transformed numeric values are clipped to +-CLIP robust units (one unit is a robust standard
# deviation): far enough to keep real tails, near enough that one outlier cannot set the slope.
CLIP = 5.0
# The inverse L2 strength of scikit-learn's LogisticRegression (see the module docstring).
C = 0.03
MAX_ITER = 2000
# The kinds of design columns: a numeric variable's value, its missing indicator, a category.
VALUE, MISSING, CATEGORY = "value", "missing", "category"


@dataclass(frozen=True)
class DesignColumn:
    """One column of the learner's design matrix and the variable it belongs to."""

    kind: str  # VALUE, MISSING or CATEGORY
    variable: int  # index into LearnerInput.names
    code: float | None = None  # CATEGORY only: the category code (NaN = missing)

    def to_state(self) -> dict[str, Any]:
        code = None if self.code is None or math.isnan(self.code) else self.code
        return {"kind": self.kind, "variable": self.variable, "code": code}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DesignColumn:
        kind = str(state["kind"])
        if kind not in (VALUE, MISSING, CATEGORY):
            raise ModelStateError(f"unknown design column kind {kind!r} in a logistic state")
        code = state.get("code")
        if kind == CATEGORY:
            return cls(kind, int(state["variable"]), math.nan if code is None else float(code))
        return cls(kind, int(state["variable"]))


class LogisticLearner(RiskLearner):
    """Regularised logistic regression on robust-transformed variables (module docstring)."""

    kind = "logistic"
    description = "regularised logistic regression on robust-transformed variables"

    def __init__(
        self, spec: LearnerInput, settings: RiskSettings, seed: int = 0, c: float = C
    ) -> None:
        super().__init__(spec, settings, seed)
        self.c = c

    # ------------------------------------------------------------------------ fit

    def fit(self, x: FloatArray, y: IntArray) -> Self:
        from sklearn.linear_model import LogisticRegression

        x = self._check_x(x)
        y = _check_labels(y, len(x))
        numeric = self.spec.numeric
        names = [self.spec.names[j] for j in numeric]
        transform = RobustTransform(clip=CLIP).fit(x[:, numeric], names, self.spec.units)
        columns = [DesignColumn(VALUE, j) for j in numeric]
        columns += [DesignColumn(MISSING, j) for j in numeric if np.isnan(x[:, j]).any()]
        for j, categorical in enumerate(self.spec.categorical):
            if categorical:
                codes = np.unique(x[:, j], equal_nan=True)  # sorted, NaN last
                columns += [DesignColumn(CATEGORY, j, float(c)) for c in codes]
        self.transform_, self.columns_ = transform, columns
        z = self._design(x)
        means = z.mean(axis=0)
        varies = np.flatnonzero(z.max(axis=0) > z.min(axis=0))
        coef = np.zeros(len(columns))
        model = LogisticRegression(C=self.c, solver="lbfgs", max_iter=MAX_ITER)
        if varies.size:
            with threadpool_limits(limits=1):  # a small fit: threads only add overhead
                model.fit(z[:, varies], y)
            coef[varies] = model.coef_[0]
            intercept = float(model.intercept_[0])
        else:
            rate = float(np.mean(y))
            intercept = math.log(rate / (1.0 - rate))
        self.coef_ = coef
        self.intercept_ = intercept
        self.means_ = means
        self.expected_linear_ = float(intercept + coef @ means)
        return self

    def _check_x(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.spec.names):
            raise DataError(
                f"expected a matrix of {len(self.spec.names)} columns, got shape {x.shape}"
            )
        return x

    def _design(self, x: FloatArray) -> FloatArray:
        """The design matrix of `x`: transformed values, missing indicators, one-hot codes."""
        values = self.transform_.transform(x[:, self.spec.numeric])
        position = {j: k for k, j in enumerate(self.spec.numeric)}
        out = np.empty((len(x), len(self.columns_)))
        for k, col in enumerate(self.columns_):
            raw = x[:, col.variable]
            if col.kind == VALUE:
                out[:, k] = values[:, position[col.variable]]
            elif col.kind == MISSING:
                out[:, k] = np.isnan(raw)
            else:
                assert col.code is not None
                out[:, k] = np.isnan(raw) if math.isnan(col.code) else raw == col.code
        return out

    # ------------------------------------------------------------------------ outputs

    def linear(self, x: FloatArray) -> FloatArray:
        check_is_fitted(self)
        z = self._design(self._check_x(x))
        out: FloatArray = self.intercept_ + z @ self.coef_
        return out

    def contributions(self, x: FloatArray) -> FloatArray:
        check_is_fitted(self)
        z = self._design(self._check_x(x))
        pushes = (z - self.means_) * self.coef_
        out = np.zeros((len(z), len(self.spec.names)))
        for k, col in enumerate(self.columns_):
            out[:, col.variable] += pushes[:, k]
        return out

    def used(self) -> list[int]:
        check_is_fitted(self)
        return sorted(
            {col.variable for col, c in zip(self.columns_, self.coef_, strict=True) if c != 0.0}
        )

    def describe(self) -> dict[str, Any]:
        check_is_fitted(self)
        coefficients: dict[str, dict[str, Any]] = {}
        for col, c in zip(self.columns_, self.coef_.tolist(), strict=True):
            entry = coefficients.setdefault(self.spec.names[col.variable], {})
            if col.kind == CATEGORY:
                assert col.code is not None
                entry.setdefault("codes", {})[_code_text(col.code)] = c
            else:
                entry[col.kind] = c
        return {
            **super().describe(),
            "coefficients": coefficients,
            "intercept": self.intercept_,
            "regularisation": {"penalty": "l2", "C": self.c, "clip": CLIP},
        }

    # ------------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        check_is_fitted(self)
        return {
            "c": self.c,
            "transform": self.transform_.to_state(),
            "columns": [col.to_state() for col in self.columns_],
            "coefficients": self.coef_.tolist(),
            "intercept": self.intercept_,
            "means": self.means_.tolist(),
            "expected_linear": self.expected_linear_,
        }

    @classmethod
    def from_state(
        cls, spec: LearnerInput, settings: RiskSettings, seed: int, state: Mapping[str, Any]
    ) -> Self:
        try:
            obj = cls(spec, settings, seed, float(state["c"]))
            obj.transform_ = RobustTransform.from_state(state["transform"])
            obj.columns_ = [DesignColumn.from_state(c) for c in state["columns"]]
            obj.coef_ = np.array([float(c) for c in state["coefficients"]], dtype=np.float64)
            obj.intercept_ = float(state["intercept"])
            obj.means_ = np.array([float(m) for m in state["means"]], dtype=np.float64)
            obj.expected_linear_ = float(state["expected_linear"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelStateError(f"the logistic learner's state is damaged ({exc})") from None
        if not (len(obj.columns_) == len(obj.coef_) == len(obj.means_)):
            raise ModelStateError("the logistic learner's state has columns of unequal length")
        return obj


def _check_labels(y: IntArray, rows: int) -> IntArray:
    labels = np.asarray(y)
    if labels.shape != (rows,):
        raise DataError(f"expected {rows} labels, got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise DataError("labels must be 0 (repaid) or 1 (defaulted)")
    if labels.min() == labels.max():
        raise DataError("labels must hold both defaults (1) and non-defaults (0)")
    return labels.astype(np.int64)


def _code_text(code: float) -> str:
    """A category code as a JSON key: "3" for 3.0, "2.5", "missing" for NaN."""
    if math.isnan(code):
        return "missing"
    return str(int(code)) if code.is_integer() else repr(code)
