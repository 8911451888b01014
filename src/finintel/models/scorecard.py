"""Supervised risk: a WoE scorecard with a calibrated probability of default.

Trained only on labelled customers (label 1 = defaulted, 0 = not; NaN = unlabelled), then every
customer is scored. The steps, all refitted inside every cross-validation fold:

1. Candidate variables: every feature column (minus `exclude_columns`) plus the risk factors
   of `risk_factors.factor_library` that are more than one column: the built-in ratios the data
   supports (e.g. lowest balance in months of income) and the factors of the roles declared in
   `[risk.roles]` (ratios such as utilisation = bill / limit, and several columns of one role
   aggregated per customer). A derived variable whose name is a feature column is left out
   when it holds the same values, else it is named `<name>_factor`.
2. Optimal binning of each variable (optbinning): numbers into bins whose default rate rises,
   falls, or has one peak or valley (`bin_trend`); the codes of `categorical_columns` into
   groups of categories with similar default rates. Weight of evidence (WoE = ln(share of
   goods / share of bads), so higher = safer) per bin; a missing value gets its own WoE, a
   category not seen at fit time the neutral 0. Variables with an information value below
   `min_iv` are dropped.
3. Logistic regression on the WoE values.
4. Platt calibration: a one-variable logistic regression of the label on the out-of-fold linear
   scores of the (repeated) cross-validation, so probabilities are not over-confident.

Persisted as JSON only (bin edges or category groups, WoE per bin and for missing values,
coefficients, points, calibration, score scale); scoring uses this JSON alone through the same
code as at fit time, so a reloaded model gives bit-identical outputs. optbinning objects are
never pickled.

Labels computed from the inputs are refused (ConfigError): when one variable alone (a category
code ranked by its default rate), or a decision tree of depth 3 on all variables, reaches an
in-sample ROC-AUC of `leakage_auc` (0.999) or more, the label is a function of the features,
not an observed outcome.

Example:
    >>> from finintel.settings.risk import RiskSettings
    >>> model = ScorecardRisk(RiskSettings(), seed=0)  # .fit(frame, labels)  # doctest: +SKIP
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
import numpy.typing as npt

from finintel.errors import ConfigError, DataError
from finintel.models.distribution import TrainingDistribution
from finintel.models.explain import ValueLabels, feature_label, labels_for, value_label
from finintel.models.frame import FeatureFrame, FloatArray
from finintel.models.risk_base import (
    RiskModel,
    RiskScores,
    band_counts,
    factor_phrases,
    percent_scale,
    reason_strings,
    score_summary,
)
from finintel.models.risk_factors import (
    FactorLibrary,
    bare_column,
    evaluate_factors,
    factor_library,
    roles_record,
)
from finintel.settings.risk import RiskFactorSpec, RiskSettings

SCORECARD_FILE = "risk_scorecard.csv"
# Points scaling of the scorecard table: 600 points at odds 50:1 (good:bad), 20 points double
# the odds. The points explain the linear score; the 0-100 risk_score comes from the PD.
BASE_POINTS = 600.0
BASE_ODDS = 50.0
POINTS_TO_DOUBLE = 20.0
LEAKAGE_TREE_DEPTH = 3
# WoE of a category code not seen at fit time: 0 is the population's odds, so the variable
# neither raises nor lowers the customer's score.
UNSEEN_WOE = 0.0
# cv_repeats = "auto": repeat the folds this often up to this many training rows (small samples
# are where one split's luck moves the estimate; large ones would pay 3x the fitting time).
AUTO_REPEATS = 3
AUTO_REPEATS_MAX_ROWS = 20_000
# A derived variable named like a feature column (with other values) gets this suffix.
CLASH_SUFFIX = "_factor"


@dataclass(frozen=True)
class Variable:
    """One scorecard variable: a feature column, or a factor expression over columns."""

    name: str
    label: str
    column: str | None  # the frame column when the variable is one column
    sql: str | None  # the expression otherwise


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


@dataclass(frozen=True)
class FittedCard:
    """A fitted scorecard: binned variables, logistic coefficients (on WoE) and intercept."""

    bins: list[BinnedVariable]
    coefficients: list[float]
    intercept: float

    def contributions(self, values: FloatArray, names: Sequence[str]) -> FloatArray:
        """coef * WoE per variable: the variable's push on the log-odds of default."""
        out = np.empty((len(values), len(self.bins)))
        for j, (b, c) in enumerate(zip(self.bins, self.coefficients, strict=True)):
            out[:, j] = c * b.transform(values[:, list(names).index(b.name)])
        return out

    def linear(self, values: FloatArray, names: Sequence[str]) -> FloatArray:
        total: FloatArray = self.intercept + self.contributions(values, names).sum(axis=1)
        return total


class ScorecardRisk(RiskModel):
    """WoE logistic scorecard, calibrated PD, 0-100 score, bands, actions and reasons."""

    mode = "supervised"

    # ------------------------------------------------------------------------ fit

    def fit(
        self, frame: FeatureFrame, labels: FloatArray, value_labels: ValueLabels | None = None
    ) -> Self:
        y_all = _check_labels(labels, len(frame), self.settings)
        candidates = _candidates(frame, self.settings)
        variables, values = candidates.variables, candidates.values
        names = [v.name for v in variables]
        labelled = np.flatnonzero(np.isfinite(y_all))
        train = _sample(labelled, y_all, self.settings.max_train_rows, self.seed)
        x, y = values[train], y_all[train].astype(np.int64)
        _refuse_leakage(x, y, variables, self.settings, self.seed)

        cv = _cross_validate(x, y, names, self.settings, self.seed)
        card = _fit_card(x, y, names, self.settings)
        if not card.bins:
            raise ConfigError(
                f"no variable reaches the minimum information value {self.settings.min_iv} "
                "for these labels: the scorecard would be a constant"
            )
        slope, offset = _calibrate(cv["oof_linear"], y)
        pd_all = _sigmoid(slope * card.linear(values, names) + offset)
        used = {b.name for b in card.bins}

        self.variables_ = [v for v in variables if v.name in used]
        self.card_ = card
        self.calibration_ = (slope, offset)
        self.score_scale_ = percent_scale(pd_all)
        self.value_scales_ = [percent_scale(values[:, names.index(b.name)]) for b in card.bins]
        self.columns_ = _columns_read(self.variables_, frame.columns)
        self.value_labels_ = labels_for(value_labels, self.columns_)
        scores = self._predict(frame)
        self.metrics_ = self._metrics(frame, y_all, train, cv, scores, candidates)
        return self

    def _metrics(
        self,
        frame: FeatureFrame,
        y_all: FloatArray,
        train: npt.NDArray[np.intp],
        cv: dict[str, Any],
        scores: RiskScores,
        candidates: Candidates,
    ) -> dict[str, Any]:
        labelled = np.isfinite(y_all)
        bads = int(np.nansum(y_all))
        used = {b.name for b in self.card_.bins}
        return {
            "mode": self.mode,
            "customers": len(frame),
            "labelled": int(labelled.sum()),
            "unlabelled": int((~labelled).sum()),
            "bads": bads,
            "goods": int(labelled.sum()) - bads,
            "bad_rate": round(bads / int(labelled.sum()), 6),
            "trained_on": len(train),
            "candidate_variables": len(candidates.variables),
            "derived_variables": [{**d, "used": d["name"] in used} for d in candidates.derived],
            "roles": roles_record(candidates.library, self.settings),
            "unavailable_factors": dict(sorted(candidates.unavailable.items())),
            "variables_used": [b.name for b in self.card_.bins],
            "categorical_variables": [b.name for b in self.card_.bins if b.categorical],
            "columns_used": self.columns_,
            "cross_validation": {k: v for k, v in cv.items() if k != "oof_linear"},
            "calibration": {
                "method": "Platt scaling on out-of-fold linear scores",
                "slope": self.calibration_[0],
                "intercept": self.calibration_[1],
            },
            "leakage_check": {
                "test": f"single variable or depth-{LEAKAGE_TREE_DEPTH} decision tree, "
                "in-sample ROC-AUC",
                "refuse_at": self.settings.leakage_auc,
                "passed": True,
            },
            "scorecard": self.scorecard_table(),
            "score_scale": "mid-rank percentile of the probability of default in the fitted "
            "population",
            "bands": band_counts(scores.risk_band, self.settings),
            "score_quantiles": score_summary(scores.risk_score),
            "mean_probability_of_default": round(float(np.mean(scores.probability_of_default)), 6),
        }

    def scorecard_table(self) -> list[dict[str, Any]]:
        """One row per variable and bin: the bin, its WoE and points.

        A categorical variable's bins are its groups of codes, e.g. "{3, 10}", plus
        "other categories" (codes not seen at fit time) and "missing".
        """
        factor = POINTS_TO_DOUBLE / math.log(2.0)
        offset = BASE_POINTS - factor * math.log(BASE_ODDS)
        n = len(self.card_.bins)
        rows = []
        for var, b, coef in zip(
            self.variables_, self.card_.bins, self.card_.coefficients, strict=True
        ):
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
                points = -(coef * woe + self.card_.intercept / n) * factor + offset / n
                rows.append(
                    {
                        "variable": var.name,
                        "label": var.label,
                        "bin": text,
                        "woe": round(woe, 6),
                        "coefficient": round(coef, 6),
                        "iv": round(b.iv, 6),
                        "points": round(points, 2),
                    }
                )
        return rows

    # ------------------------------------------------------------------------ score

    def _risk(self, frame: FeatureFrame) -> tuple[FloatArray, npt.NDArray[np.object_], FloatArray]:
        values = _variable_values(frame, self.variables_)
        names = [v.name for v in self.variables_]
        contributions = self.card_.contributions(values, names)
        linear = self.card_.intercept + contributions.sum(axis=1)
        slope, offset = self.calibration_
        pd = _sigmoid(slope * linear + offset)
        risk_score = self.score_scale_.midrank(pd)

        def phrases_for(j: int, rows: npt.NDArray[np.intp]) -> list[str]:
            variable, binned, column = self.variables_[j], self.card_.bins[j], values[rows, j]
            if binned.categorical:
                return _category_phrases(
                    variable.label, binned, column, self.value_labels_, variable.column
                )
            percentiles = self.value_scales_[j].midrank(column)
            return factor_phrases(
                variable.label,
                variable.column,
                variable.name,
                column,
                percentiles,
                self.value_labels_,
            )

        # a variable pushes the score up when its bin has worse odds than the population
        reasons = reason_strings(slope * contributions, phrases_for)
        return risk_score, reasons, pd

    # ------------------------------------------------------------------------ persistence

    def _mode_state(self) -> dict[str, Any]:
        return {
            "variables": [
                {"name": v.name, "label": v.label, "column": v.column, "sql": v.sql}
                for v in self.variables_
            ],
            "bins": [b.to_state() for b in self.card_.bins],
            "coefficients": self.card_.coefficients,
            "intercept": self.card_.intercept,
            "calibration": {"slope": self.calibration_[0], "intercept": self.calibration_[1]},
            "score_scale": self.score_scale_.to_state(),
            "value_scales": [s.to_state() for s in self.value_scales_],
        }

    def _extra_files(self) -> dict[str, bytes]:
        return {SCORECARD_FILE: _table_csv(self.scorecard_table())}

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.variables_ = [
            Variable(v["name"], v["label"], v["column"], v["sql"]) for v in state["variables"]
        ]
        self.card_ = FittedCard(
            bins=[BinnedVariable.from_state(b) for b in state["bins"]],
            coefficients=[float(c) for c in state["coefficients"]],
            intercept=float(state["intercept"]),
        )
        cal = state["calibration"]
        self.calibration_ = (float(cal["slope"]), float(cal["intercept"]))
        self.score_scale_ = TrainingDistribution.from_state(state["score_scale"])
        self.value_scales_ = [TrainingDistribution.from_state(s) for s in state["value_scales"]]


# ---------------------------------------------------------------------------- labels


def _check_labels(labels: FloatArray, n: int, settings: RiskSettings) -> FloatArray:
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (n,):
        raise ConfigError(f"labels have shape {y.shape}, expected one per customer ({n})")
    known = y[np.isfinite(y)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise ConfigError("labels must be 0 (no default), 1 (default) or empty (unlabelled)")
    bads = int(known.sum())
    goods = int(known.size - bads)
    if known.size == 0:
        raise ConfigError("labels were given but no customer has one")
    if bads == 0 or goods == 0:
        raise ConfigError(
            f"all {known.size} labelled customers are {'good' if bads == 0 else 'bad'}: "
            "a scorecard needs both defaults and non-defaults"
        )
    if bads < settings.min_bads or goods < settings.min_goods:
        raise ConfigError(
            f"too few labelled outcomes for a scorecard: {bads} defaults and {goods} "
            f"non-defaults (at least {settings.min_bads} and {settings.min_goods} needed)"
        )
    return y


def _sample(
    labelled: npt.NDArray[np.intp], y: FloatArray, limit: int, seed: int
) -> npt.NDArray[np.intp]:
    """All labelled rows, or a stratified sample of `limit` of them (in row order)."""
    if len(labelled) <= limit:
        return labelled
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(labelled, train_size=limit, stratify=y[labelled], random_state=seed)
    return np.sort(np.asarray(kept, dtype=np.intp))


def _refuse_leakage(
    x: FloatArray,
    y: npt.NDArray[np.int64],
    variables: list[Variable],
    settings: RiskSettings,
    seed: int,
) -> None:
    """Refuse a label that one variable or a shallow tree separates (almost) perfectly."""
    from sklearn.metrics import roc_auc_score
    from sklearn.tree import DecisionTreeClassifier

    filled = _median_filled(x)
    categorical = set(settings.categorical_columns)
    for j, var in enumerate(variables):
        if np.ptp(filled[:, j]) == 0:
            continue
        # codes of unordered categories are ranked by their default rate instead
        # (a missing code is a category of its own there)
        ranked = _category_rates(x[:, j], y) if var.name in categorical else filled[:, j]
        auc = float(roc_auc_score(y, ranked))
        if max(auc, 1.0 - auc) >= settings.leakage_auc:
            raise ConfigError(
                f"the label looks computed from the inputs: {var.label} ({var.name}) alone "
                f"separates it (in-sample ROC-AUC {max(auc, 1 - auc):.4f}); a supervised risk "
                "score needs observed outcomes such as defaults"
            )
    tree = DecisionTreeClassifier(max_depth=LEAKAGE_TREE_DEPTH, random_state=seed)
    tree.fit(filled, y)
    auc = float(roc_auc_score(y, tree.predict_proba(filled)[:, 1]))
    if auc >= settings.leakage_auc:
        raise ConfigError(
            f"the label looks computed from the inputs: a depth-{LEAKAGE_TREE_DEPTH} decision "
            f"tree of the features separates it (in-sample ROC-AUC {auc:.4f}); a supervised "
            "risk score needs observed outcomes such as defaults"
        )


# ---------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class Candidates:
    """The scorecard's candidate variables and their values (`values[:, j]` is
    `variables[j]`), what each derived variable is (`derived`: name, label, sql, source,
    role, columns), the factor library they came from, and the factors left out with why."""

    variables: list[Variable]
    values: FloatArray
    derived: list[dict[str, Any]]
    library: FactorLibrary
    unavailable: dict[str, str]


def _candidates(frame: FeatureFrame, settings: RiskSettings) -> Candidates:
    """Feature columns plus the factors of the library that are more than one column.

    The factors are those of `factor_library` (built-in or declared factors and the factors of
    `[risk.roles]`); a factor that is one column alone is that column, already a candidate.
    """
    _check_categorical(frame, settings)
    excluded = set(settings.exclude_columns)
    variables = [Variable(c, feature_label(c), c, None) for c in frame.columns if c not in excluded]
    library = factor_library(frame.columns, settings)
    expressions = [s for s in library.specs if bare_column(s) is None]
    # a ratio over category codes means nothing: such expressions are left out
    evaluated = evaluate_factors(
        frame, expressions, [*settings.exclude_columns, *settings.categorical_columns]
    )
    unavailable = {**library.unavailable, **evaluated.unavailable}
    columns = [frame.columns.index(v.column) for v in variables if v.column is not None]
    kept: list[int] = []
    derived: list[dict[str, Any]] = []
    default_source = "settings" if settings.factors is not None else "built-in"
    for j, spec in enumerate(evaluated.specs):
        name = spec.name
        if name in frame.columns:
            if _same_values(frame.column(name), evaluated.values[:, j]):
                unavailable[name] = f"the same values as the feature column {name}"
                continue
            name += CLASH_SUFFIX
        role = library.roles.get(spec.name)
        variables.append(Variable(name, spec.label, None, spec.sql))
        kept.append(j)
        derived.append(
            {
                "name": name,
                "label": spec.label,
                "sql": spec.sql,
                "source": "role" if role else default_source,
                "role": role,
                "columns": _columns_read([variables[-1]], frame.columns),
            }
        )
    values = np.hstack([frame.values[:, columns], evaluated.values[:, kept]])
    return Candidates(variables, values, derived, library, unavailable)


def _check_categorical(frame: FeatureFrame, settings: RiskSettings) -> None:
    absent = [c for c in settings.categorical_columns if c not in frame.columns]
    if absent:
        raise ConfigError(
            f"risk categorical_columns {absent} are not feature columns of this data "
            f"(its columns: {', '.join(frame.columns)})"
        )


def _same_values(a: FloatArray, b: FloatArray) -> bool:
    """Whether two columns hold the same values (missing in the same rows)."""
    return bool(np.array_equal(a, b, equal_nan=True))


def _variable_values(frame: FeatureFrame, variables: Sequence[Variable]) -> FloatArray:
    out = np.empty((len(frame), len(variables)))
    expressions = [
        RiskFactorSpec(name=v.name, label=v.label, sql=v.sql) for v in variables if v.sql
    ]
    evaluated = evaluate_factors(frame, expressions)
    if evaluated.unavailable:
        raise DataError(f"scorecard variables could not be evaluated: {evaluated.unavailable}")
    k = 0
    for j, v in enumerate(variables):
        if v.column is not None:
            out[:, j] = frame.column(v.column)
        else:
            out[:, j] = evaluated.values[:, k]
            k += 1
    return out


def _columns_read(variables: Sequence[Variable], columns: tuple[str, ...]) -> list[str]:
    import re

    used: set[str] = set()
    for v in variables:
        if v.column is not None:
            used.add(v.column)
        elif v.sql is not None:
            used.update(w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", v.sql) if w in columns)
    return sorted(used)


# ---------------------------------------------------------------------------- fitting


def _fit_card(
    x: FloatArray, y: npt.NDArray[np.int64], names: Sequence[str], settings: RiskSettings
) -> FittedCard:
    from sklearn.linear_model import LogisticRegression

    categorical = set(settings.categorical_columns)
    bins = [
        b
        for j, name in enumerate(names)
        if (b := _bin(x[:, j], y, name, name in categorical, settings.bin_trend)) is not None
    ]
    bins = [b for b in bins if b.iv >= settings.min_iv]
    if not bins:
        return FittedCard([], [], 0.0)
    woe = np.column_stack([b.transform(x[:, list(names).index(b.name)]) for b in bins])
    model = LogisticRegression(max_iter=1000)
    model.fit(woe, y)
    return FittedCard(bins, [float(c) for c in model.coef_[0]], float(model.intercept_[0]))


def _bin(
    values: FloatArray,
    y: npt.NDArray[np.int64],
    name: str,
    categorical: bool = False,
    trend: str = "auto_heuristic",
) -> BinnedVariable | None:
    """Optimal binning of one variable; None when it has fewer than two values.

    Numbers get bins whose default rate follows `trend` (optbinning's `monotonic_trend`);
    category codes are grouped (optbinning orders the categories by default rate and merges
    neighbours), so the codes' order plays no part.
    """
    from optbinning import OptimalBinning

    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.all(finite == finite[0]):
        return None
    if categorical:
        optb = OptimalBinning(name=name, dtype="categorical", solver="cp")
    else:
        optb = OptimalBinning(name=name, dtype="numerical", monotonic_trend=trend, solver="cp")
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


def _cross_validate(
    x: FloatArray,
    y: npt.NDArray[np.int64],
    names: Sequence[str],
    settings: RiskSettings,
    seed: int,
) -> dict[str, Any]:
    """Repeated stratified k-fold CV of the whole scorecard and of a plain logistic baseline.

    `oof_linear` holds one out-of-fold linear score per repeat and row (repeats x rows).
    """
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import RepeatedStratifiedKFold

    repeats = cv_repeats(settings, len(y))
    # the first repeat has the same folds as StratifiedKFold(shuffle=True, random_state=seed)
    folds = RepeatedStratifiedKFold(
        n_splits=settings.cv_folds, n_repeats=repeats, random_state=seed
    )
    oof = np.zeros((repeats, len(y)))
    card_auc, card_ks, base_auc = [], [], []
    for k, (train, test) in enumerate(folds.split(x, y)):
        card = _fit_card(x[train], y[train], names, settings)
        linear = card.linear(x[test], names)
        oof[k // settings.cv_folds, test] = linear
        card_auc.append(float(roc_auc_score(y[test], linear)))
        fpr, tpr, _ = roc_curve(y[test], linear)
        card_ks.append(float(np.max(tpr - fpr)))
        baseline = _baseline(names, settings)
        baseline.fit(x[train], y[train])
        base_auc.append(float(roc_auc_score(y[test], baseline.predict_proba(x[test])[:, 1])))
    auc = float(np.mean(card_auc))
    b_auc = float(np.mean(base_auc))
    return {
        "folds": settings.cv_folds,
        "repeats": repeats,
        "seed": seed,
        "roc_auc": round(auc, 6),
        "roc_auc_std": round(float(np.std(card_auc)), 6),
        "gini": round(2 * auc - 1, 6),
        "ks": round(float(np.mean(card_ks)), 6),
        "roc_auc_by_fold": [round(a, 6) for a in card_auc],
        "baseline": {
            "model": BASELINE_MODEL,
            "roc_auc": round(b_auc, 6),
            "gini": round(2 * b_auc - 1, 6),
            "roc_auc_by_fold": [round(a, 6) for a in base_auc],
        },
        "oof_linear": oof,
    }


BASELINE_MODEL = (
    "logistic regression on median-imputed, standardised variables "
    "(categorical columns one-hot encoded, missing as its own category)"
)


def _baseline(names: Sequence[str], settings: RiskSettings) -> Any:
    """The plain logistic baseline: numbers standardised, category codes one-hot encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = set(settings.categorical_columns)
    codes = [j for j, name in enumerate(names) if name in categorical]
    numbers = [j for j, name in enumerate(names) if name not in categorical]
    encode = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(
                    SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
                ),
                numbers,
            ),
            ("categories", OneHotEncoder(handle_unknown="ignore"), codes),
        ]
    )
    return make_pipeline(encode, LogisticRegression(max_iter=2000))


def cv_repeats(settings: RiskSettings, rows: int) -> int:
    """How often the cross-validation is repeated (with new folds) for `rows` training rows."""
    if settings.cv_repeats != "auto":
        return settings.cv_repeats
    return AUTO_REPEATS if rows <= AUTO_REPEATS_MAX_ROWS else 1


def _calibrate(linear: FloatArray, y: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Platt scaling: PD = sigmoid(slope * linear + intercept), fitted out of fold.

    `linear` holds one out-of-fold score per repeat and row; all repeats are stacked.
    """
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(linear.reshape(-1, 1), np.tile(y, linear.shape[0]))
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


# ---------------------------------------------------------------------------- helpers


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _category_rates(codes: FloatArray, y: npt.NDArray[np.int64]) -> FloatArray:
    """Each row's in-sample default rate of its category (NaN is one category)."""
    unique, index = np.unique(codes, return_inverse=True, equal_nan=True)
    rates = np.bincount(index, weights=y, minlength=len(unique)) / np.bincount(index)
    out: FloatArray = rates[index]
    return out


def _median_filled(x: FloatArray) -> FloatArray:
    out = x.copy()
    for j in range(x.shape[1]):
        col = out[:, j]
        finite = col[np.isfinite(col)]
        col[~np.isfinite(col)] = float(np.median(finite)) if finite.size else 0.0
    return out


def _category_phrases(
    label: str,
    binned: BinnedVariable,
    codes: FloatArray,
    labels: ValueLabels | None = None,
    column: str | None = None,
) -> list[str]:
    """ "<label> <code>, a group with 38% defaults" per customer (computed once per code); the
    code is the source's words for it (quoted) when `labels` knows the column's codes."""
    assert binned.groups is not None and binned.bad_rates is not None
    rate_of = {c: r for g, r in zip(binned.groups, binned.bad_rates, strict=True) for c in g}
    cache: dict[float, str] = {}
    out = []
    for code in codes.tolist():
        text = cache.get(code)
        if text is None:
            if math.isnan(code):
                text = f"{label} missing"
            else:
                said = value_label(labels, column, code)
                shown = f"'{said}'" if said is not None else _num(code)
                if code in rate_of:
                    text = f"{label} {shown}, a category group with {rate_of[code]:.0%} defaults"
                else:
                    text = f"{label} {shown}, a category not seen in training"
            cache[code] = text
        out.append(text)
    return out


def _num(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:.6g}"


def _table_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    fields = ["variable", "label", "bin", "woe", "coefficient", "iv", "points"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
