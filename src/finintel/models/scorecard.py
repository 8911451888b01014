"""The WoE scorecard learner: optimal bins, weight of evidence, a logistic regression on them.

The scorecard is the champion of the supervised risk models (`finintel.models.supervised`): a
table of points per bin that a credit officer can read and check. Fitting, all inside every
cross-validation fold:

1. Optimal binning of each variable (optbinning): numbers into bins whose default rate rises,
   falls, or has one peak or valley (`bin_trend`); the codes of categorical variables into
   groups of categories with similar default rates. Every bin holds at least `min_bin_bads`
   defaults, and a bin may be as small as that many rows: a rare but decisive event (15
   accounts charged penalty interest, 14 of them defaulted) keeps its own bin instead of being
   merged into a 5% minimum bin. Weight of evidence (WoE = ln(share of goods / share of bads),
   higher = safer) per bin; a missing value gets its own WoE, a category not seen at fit time
   the neutral 0.
2. Variable selection: information value (IV) at least `min_iv`; then, in order of IV, a
   variable whose WoE correlates above `max_correlation` with a stronger one is dropped; then at
   most (defaults / `events_per_variable`) variables are kept, the strongest by IV.
3. Logistic regression on the WoE values. A variable with a positive coefficient (a safer bin
   raising the risk: a sign that another variable explains it) is dropped, the weakest by IV
   first, and the regression refitted until every coefficient has the right sign.

Persisted as JSON only (bin edges or category groups, WoE per bin and for missing values,
coefficients); optbinning objects are never pickled.

Example:
    >>> import numpy as np
    >>> from finintel.models.learner import LearnerInput
    >>> from finintel.settings.risk import RiskSettings
    >>> rng = np.random.default_rng(1000)
    >>> x = rng.normal(size=(600, 2))
    >>> y = (rng.random(600) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(np.int64)
    >>> card = ScorecardLearner(LearnerInput(["a", "b"], [False] * 2, [0] * 2), RiskSettings())
    >>> card.fit(x, y).describe()["variables_used"][0]  # the strongest first
    'a'
    >>> bool(card.coefficients_[0] < 0)  # a safer bin (higher WoE) lowers the risk
    True
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from finintel.models.learner import FloatArray, IntArray, LearnerInput, RiskLearner
from finintel.settings.risk import RiskSettings

SCORECARD_FILE = "risk_scorecard.csv"
# Points scaling of the scorecard table: 600 points at odds 50:1 (good:bad), 20 points double
# the odds. The points explain the linear score; the 0-100 risk_score comes from the PD.
BASE_POINTS = 600.0
BASE_ODDS = 50.0
POINTS_TO_DOUBLE = 20.0
# WoE of a category code not seen at fit time: 0 is the population's odds, so the variable
# neither raises nor lowers the customer's score.
UNSEEN_WOE = 0.0
# optbinning's own minimum pre-bin share, which the rare-event rule lowers to min_bin_bads rows.
DEFAULT_MIN_PREBIN_SIZE = 0.05


@dataclass(frozen=True)
class BinnedVariable:
    """The stored binning of one variable.

    Numeric: bins are (-inf, s0), [s0, s1), ..., [s_last, inf) from `splits`. Categorical:
    `groups` lists the category codes of each bin; a code seen in no group at fit time gets
    `woe_unseen` (0, the population's odds). Missing values get `woe_missing` (0 when the
    training rows had none).
    """

    name: str
    splits: list[float]
    woe: list[float]  # one per bin
    woe_missing: float
    iv: float
    groups: list[list[float]] | None = None  # categorical only: the codes of each bin
    bad_rates: list[float] | None = None  # categorical only: the default rate of each bin

    @property
    def categorical(self) -> bool:
        return self.groups is not None

    def transform(self, values: FloatArray) -> FloatArray:
        if self.groups is not None:
            out = np.full(len(values), UNSEEN_WOE, dtype=np.float64)
            for codes, group_woe in zip(self.groups, self.woe, strict=True):
                out[np.isin(values, np.asarray(codes, dtype=np.float64))] = group_woe
            out[np.isnan(values)] = self.woe_missing
            return out
        index = np.searchsorted(np.asarray(self.splits, dtype=np.float64), values, side="right")
        woe = np.asarray(self.woe, dtype=np.float64)[index]
        return np.where(np.isnan(values), self.woe_missing, woe)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "name": self.name,
            "splits": self.splits,
            "woe": self.woe,
            "woe_missing": self.woe_missing,
            "iv": self.iv,
        }
        if self.groups is not None:
            state.update(groups=self.groups, bad_rates=self.bad_rates, woe_unseen=UNSEEN_WOE)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BinnedVariable:
        groups = state.get("groups")
        rates = state.get("bad_rates")
        return cls(
            state["name"],
            [float(s) for s in state["splits"]],
            [float(w) for w in state["woe"]],
            float(state["woe_missing"]),
            float(state["iv"]),
            None if groups is None else [[float(c) for c in g] for g in groups],
            None if rates is None else [float(r) for r in rates],
        )


class ScorecardLearner(RiskLearner):
    """WoE logistic scorecard (see the module docstring)."""

    kind = "scorecard"
    description = "WoE logistic scorecard (optimal bins, points per bin)"

    def fit(self, x: FloatArray, y: IntArray) -> Self:
        from sklearn.linear_model import LogisticRegression

        settings = self.settings
        bins: list[tuple[int, BinnedVariable]] = []
        for j, name in enumerate(self.spec.names):
            b = bin_variable(x[:, j], y, name, self.spec.categorical[j], settings)
            if b is not None and b.iv >= settings.min_iv:
                bins.append((j, b))
        bins.sort(key=lambda jb: -jb[1].iv)  # stable: ties keep the column order
        woe = {j: b.transform(x[:, j]) for j, b in bins}
        kept = _uncorrelated([j for j, _ in bins], woe, settings.max_correlation)
        cap = max(1, int(int(y.sum()) // settings.events_per_variable))
        names = self.spec.names
        self.dropped_ = {names[j]: "correlated with a stronger variable" for j, _ in bins}
        for j in kept:
            del self.dropped_[names[j]]
        for j in kept[cap:]:
            self.dropped_[names[j]] = (
                f"beyond {cap} variables ({settings.events_per_variable:g} defaults per variable)"
            )
        kept = kept[:cap]
        binned = dict(bins)
        coefficients: list[float] = []
        intercept = float(np.log(y.mean() / (1 - y.mean())))
        while kept:
            model = LogisticRegression(max_iter=1000)
            model.fit(np.column_stack([woe[j] for j in kept]), y)
            coefficients = [float(c) for c in model.coef_[0]]
            intercept = float(model.intercept_[0])
            wrong = [k for k, c in enumerate(coefficients) if c > 0]
            if not wrong:
                break
            weakest = wrong[-1]  # kept is in IV order: the last wrong-signed is the weakest
            self.dropped_[self.spec.names[kept[weakest]]] = "wrong sign beside the others"
            del kept[weakest]
            coefficients = []
        self.columns_ = kept
        self.bins_ = [binned[j] for j in kept]
        self.coefficients_ = coefficients
        self.intercept_ = intercept
        self.expected_linear_ = intercept  # WoE 0 everywhere: the population's odds
        return self

    def _terms(self, x: FloatArray) -> FloatArray:
        """coef * WoE per kept variable (one column each)."""
        out = np.zeros((len(x), len(self.columns_)))
        for k, (j, b, c) in enumerate(
            zip(self.columns_, self.bins_, self.coefficients_, strict=True)
        ):
            out[:, k] = c * b.transform(x[:, j])
        return out

    def linear(self, x: FloatArray) -> FloatArray:
        total: FloatArray = self.intercept_ + self._terms(x).sum(axis=1)
        return total

    def contributions(self, x: FloatArray) -> FloatArray:
        """Each kept variable's coef * WoE: its push away from the population's odds (a bin
        with the population's default rate, or a category not seen in training, has WoE 0 and
        pushes nothing)."""
        out = np.zeros((len(x), len(self.spec.names)))
        out[:, self.columns_] = self._terms(x)
        return out

    def used(self) -> list[int]:
        return list(self.columns_)

    def bin_of(self, j: int) -> BinnedVariable:
        """The binning of variable j (an index into the spec's names); j must be used."""
        return self.bins_[self.columns_.index(j)]

    def describe(self) -> dict[str, Any]:
        return {
            "variables_used": [self.spec.names[j] for j in self.columns_],
            "coefficients": dict(
                zip((self.spec.names[j] for j in self.columns_), self.coefficients_, strict=True)
            ),
            "information_values": {
                self.spec.names[j]: round(b.iv, 6)
                for j, b in zip(self.columns_, self.bins_, strict=True)
            },
            "dropped": dict(sorted(self.dropped_.items())),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "bins": [b.to_state() for b in self.bins_],
            "coefficients": self.coefficients_,
            "intercept": self.intercept_,
            "expected_linear": self.expected_linear_,
            "dropped": self.dropped_,
        }

    @classmethod
    def from_state(
        cls, spec: LearnerInput, settings: RiskSettings, seed: int, state: Mapping[str, Any]
    ) -> Self:
        obj = cls(spec, settings, seed)
        obj.columns_ = [int(j) for j in state["columns"]]
        obj.bins_ = [BinnedVariable.from_state(b) for b in state["bins"]]
        obj.coefficients_ = [float(c) for c in state["coefficients"]]
        obj.intercept_ = float(state["intercept"])
        obj.expected_linear_ = float(state["expected_linear"])
        obj.dropped_ = {str(k): str(v) for k, v in state["dropped"].items()}
        return obj

    # ------------------------------------------------------------------------ the table

    def table(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """One row per variable and bin: the bin, its WoE and points (`labels`: per variable).

        A categorical variable's bins are its groups of codes, e.g. "{3, 10}", plus
        "other categories" (codes not seen at fit time) and "missing".
        """
        factor = POINTS_TO_DOUBLE / math.log(2.0)
        offset = BASE_POINTS - factor * math.log(BASE_ODDS)
        n = max(1, len(self.bins_))
        rows = []
        for j, b, coef in zip(self.columns_, self.bins_, self.coefficients_, strict=True):
            if b.groups is not None:
                bins = [
                    ("{" + ", ".join(_num(c) for c in g) + "}", w)
                    for g, w in zip(b.groups, b.woe, strict=True)
                ]
                bins.append(("other categories", UNSEEN_WOE))
            else:
                edges = [-math.inf, *b.splits, math.inf]
                bins = [
                    (f"[{_num(lo)}, {_num(hi)})", w)
                    for lo, hi, w in zip(edges[:-1], edges[1:], b.woe, strict=True)
                ]
            for text, woe in [*bins, ("missing", b.woe_missing)]:
                points = -(coef * woe + self.intercept_ / n) * factor + offset / n
                rows.append(
                    {
                        "variable": self.spec.names[j],
                        "label": labels[j],
                        "bin": text,
                        "woe": round(woe, 6),
                        "coefficient": round(coef, 6),
                        "iv": round(b.iv, 6),
                        "points": round(points, 2),
                    }
                )
        return rows


def _uncorrelated(order: list[int], woe: Mapping[int, FloatArray], limit: float) -> list[int]:
    """The variables of `order` (strongest first) kept when each weaker one whose WoE
    correlates above `limit` with a kept one is dropped."""
    kept: list[int] = []
    for j in order:
        if all(_abs_corr(woe[j], woe[k]) <= limit for k in kept):
            kept.append(j)
    return kept


def _abs_corr(a: FloatArray, b: FloatArray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return abs(float(np.corrcoef(a, b)[0, 1]))


def bin_variable(
    values: FloatArray,
    y: IntArray,
    name: str,
    categorical: bool,
    settings: RiskSettings,
) -> BinnedVariable | None:
    """Optimal binning of one variable; None when it has fewer than two values.

    Numbers get bins whose default rate follows `bin_trend` (optbinning's `monotonic_trend`);
    category codes are grouped (optbinning orders the categories by default rate and merges
    neighbours), so the codes' order plays no part. Every bin holds at least `min_bin_bads`
    defaults; a pre-bin may be as small as `min_bin_bads` rows (the rare-event rule).
    """
    from optbinning import OptimalBinning

    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.all(finite == finite[0]):
        return None
    bads = int(y.sum())
    min_events = min(settings.min_bin_bads, max(1, bads // 2))
    prebin = min(DEFAULT_MIN_PREBIN_SIZE, max(settings.min_bin_bads / len(y), 1e-4))
    common: dict[str, Any] = {"solver": "cp", "min_bin_n_event": min_events}
    if categorical:
        optb = OptimalBinning(name=name, dtype="categorical", **common)
    else:
        optb = OptimalBinning(
            name=name,
            dtype="numerical",
            monotonic_trend=settings.bin_trend,
            min_prebin_size=prebin,
            **common,
        )
    optb.fit(values, y)
    with warnings.catch_warnings():
        # optbinning 1.0 builds its table with a pandas dtype change pandas 3 warns about;
        # the numbers are unaffected
        warnings.filterwarnings("ignore", message="Setting an item of incompatible dtype")
        table = optb.binning_table.build()
    groups = [sorted(float(c) for c in g) for g in optb.splits] if categorical else None
    splits = [] if categorical else [float(s) for s in optb.splits]
    n_bins = len(groups) if groups is not None else len(splits) + 1
    woe = [float(w) for w in table["WoE"].iloc[:n_bins]]
    missing_count = int(table["Count"].iloc[n_bins + 1])
    woe_missing = float(table["WoE"].iloc[n_bins + 1]) if missing_count > 0 else 0.0
    iv = float(table["IV"].iloc[: n_bins + 2].sum())
    rates = [float(r) for r in table["Event rate"].iloc[:n_bins]] if categorical else None
    return BinnedVariable(name, splits, woe, woe_missing, iv, groups, rates)


def table_csv(rows: list[dict[str, Any]]) -> bytes:
    """The scorecard table as CSV."""
    buffer = io.StringIO()
    fields = ["variable", "label", "bin", "woe", "coefficient", "iv", "points"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _num(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:.6g}"
