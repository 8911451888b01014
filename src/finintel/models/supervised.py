"""Supervised risk: the best of scorecard, logistic regression and boosting, calibrated, gated.

Trained only on labelled customers (1 = defaulted, 0 = not; NaN = unlabelled), then every
customer is scored:

1. Candidate variables (`finintel.models.risk_variables`): feature columns, minus excluded and
   protected ones, plus derived ratios and role factors.
2. The label is refused when it looks computed from the inputs: one variable alone (a category
   code ranked by its default rate), or a decision tree of depth 3 on all variables, reaching
   an in-sample ROC-AUC of `leakage_auc` (0.999) or more.
3. Champion and challengers on the same repeated folds (`finintel.models.model_choice`): the
   scorecard is delivered when within `tolerance` of the best, else the best; a learner that
   does not pass the gate is never delivered, and when none passes `NoSupervisedModelError`
   says why (the caller falls back to the unsupervised composite).
4. The delivered learner is refitted on all training rows and calibrated by Platt scaling of
   its out-of-fold scores, so probabilities of default are not over-confident.
5. Reasons: the learner's per-variable pushes on the log-odds (points per bin for the
   scorecard, coefficient x distance from the average customer for the logistic regression,
   path attributions for boosting), the largest three named in plain words.

Persisted as JSON only; scoring uses the stored state through the same code as at fit time, so
a reloaded model gives bit-identical outputs.

Example:
    >>> from finintel.settings.risk import RiskSettings
    >>> model = SupervisedRisk(RiskSettings(), seed=0)  # .fit(frame, labels)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from finintel.errors import ConfigError, NoSupervisedModelError
from finintel.models.distribution import TrainingDistribution
from finintel.models.explain import ValueLabels, feature_units, labels_for, value_label
from finintel.models.frame import FeatureFrame, FloatArray
from finintel.models.learner import LearnerInput
from finintel.models.model_choice import (
    calibrate,
    choose,
    cross_validate,
    learner_class,
    selection_record,
)
from finintel.models.risk_base import (
    RiskModel,
    RiskScores,
    band_counts,
    factor_phrases,
    percent_scale,
    reason_strings,
    score_summary,
)
from finintel.models.risk_factors import roles_record
from finintel.models.risk_variables import (
    Candidates,
    Variable,
    candidates,
    columns_read,
    variable_values,
)
from finintel.models.scorecard import SCORECARD_FILE, ScorecardLearner, table_csv
from finintel.settings.risk import RiskSettings

LEAKAGE_TREE_DEPTH = 3
Progress = Callable[[str], None]


class SupervisedRisk(RiskModel):
    """The delivered supervised learner, its calibration, 0-100 score, bands and reasons."""

    mode = "supervised"

    # ------------------------------------------------------------------------ fit

    def fit(
        self,
        frame: FeatureFrame,
        labels: FloatArray,
        value_labels: ValueLabels | None = None,
        progress: Progress | None = None,
    ) -> Self:
        settings = self.settings
        y_all = check_labels(labels, len(frame), settings)
        cands = candidates(frame, settings)
        names = [v.name for v in cands.variables]
        coded = set(settings.categorical_columns)
        spec = LearnerInput(
            names, [n in coded for n in names], cands.directions, feature_units(names)
        )
        labelled = np.flatnonzero(np.isfinite(y_all))
        train = _sample(labelled, y_all, settings.max_train_rows, self.seed)
        x, y = cands.values[train], y_all[train].astype(np.int64)
        _refuse_leakage(x, y, cands.variables, settings, self.seed)

        def fold_done(done: int, total: int) -> None:
            if progress is not None:
                progress(f"cross-validating the supervised risk models: fold {done} of {total}")

        cv = cross_validate(x, y, spec, settings, self.seed, fold_done)
        choice = choose(cv.results, settings)
        selection = selection_record(cv, choice, settings)
        if choice.delivered is None:
            raise NoSupervisedModelError(
                choice.reason,
                {**self._label_counts(y_all, train), "model_selection": selection},
            )
        kind = choice.delivered
        learner = learner_class(kind)(spec, settings, self.seed).fit(x, y)
        slope, offset = calibrate(cv.oof[kind], y)
        used = learner.used()
        self.spec_ = spec
        self.variables_ = cands.variables
        self.learner_ = learner
        self.calibration_ = (slope, offset)
        self.score_scale_ = percent_scale(_sigmoid(slope * learner.linear(cands.values) + offset))
        self.value_scales_ = {j: percent_scale(cands.values[:, j]) for j in used}
        self.category_rates_ = {j: _code_rates(x[:, j], y) for j in used if spec.categorical[j]}
        self.columns_ = columns_read([cands.variables[j] for j in used], frame.columns)
        self.value_labels_ = labels_for(value_labels, self.columns_)
        scores = self._predict(frame)
        self.metrics_ = self._metrics(frame, y_all, train, cv, selection, scores, cands)
        return self

    @staticmethod
    def _label_counts(y_all: FloatArray, train: npt.NDArray[np.intp]) -> dict[str, Any]:
        labelled = np.isfinite(y_all)
        bads = int(np.nansum(y_all))
        return {
            "customers": len(y_all),
            "labelled": int(labelled.sum()),
            "unlabelled": int((~labelled).sum()),
            "bads": bads,
            "goods": int(labelled.sum()) - bads,
            "bad_rate": round(bads / int(labelled.sum()), 6),
            "trained_on": len(train),
        }

    def _metrics(
        self,
        frame: FeatureFrame,
        y_all: FloatArray,
        train: npt.NDArray[np.intp],
        cv: Any,
        selection: dict[str, Any],
        scores: RiskScores,
        cands: Candidates,
    ) -> dict[str, Any]:
        kind = self.learner_.kind
        result = cv.results[kind]
        used_names = {self.spec_.names[j] for j in self.learner_.used()}
        metrics: dict[str, Any] = {
            "mode": self.mode,
            "model": kind,
            "model_description": self.learner_.description,
            **self._label_counts(y_all, train),
            "candidate_variables": len(cands.variables),
            "derived_variables": [{**d, "used": d["name"] in used_names} for d in cands.derived],
            "roles": roles_record(cands.library, self.settings),
            "unavailable_factors": dict(sorted(cands.unavailable.items())),
            "protected": {
                "attributes": list(self.settings.protected),
                "allowed": list(self.settings.allow_protected),
                "left_out": cands.protected_left_out,
            },
            "variables_used": [self.spec_.names[j] for j in self.learner_.used()],
            "categorical_variables": [
                self.spec_.names[j] for j in self.learner_.used() if self.spec_.categorical[j]
            ],
            "columns_used": self.columns_,
            "learner": self.learner_.describe(),
            "model_selection": selection,
            "cross_validation": {
                "model": kind,
                "folds": cv.folds,
                "repeats": cv.repeats,
                "seed": cv.seed,
                "roc_auc": result.roc_auc,
                "roc_auc_std": result.roc_auc_std,
                "gini": round(2 * result.roc_auc - 1, 6),
                "ks": round(float(np.mean(cv.ks_by_fold[kind])), 6),
                "roc_auc_by_fold": result.roc_auc_by_fold,
            },
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
            "score_scale": "mid-rank percentile of the probability of default in the fitted "
            "population",
            "bands": band_counts(scores.risk_band, self.settings),
            "score_quantiles": score_summary(scores.risk_score),
            "mean_probability_of_default": round(float(np.mean(scores.probability_of_default)), 6),
        }
        if isinstance(self.learner_, ScorecardLearner):
            metrics["scorecard"] = self.scorecard_table()
        return metrics

    def scorecard_table(self) -> list[dict[str, Any]]:
        """The points per bin when the delivered model is the scorecard, else empty."""
        if not isinstance(self.learner_, ScorecardLearner):
            return []
        return self.learner_.table([v.label for v in self.variables_])

    # ------------------------------------------------------------------------ score

    def _values(self, frame: FeatureFrame) -> FloatArray:
        """The candidate matrix with the used variables' values (the others are unread: NaN)."""
        used = self.learner_.used()
        out = np.full((len(frame), len(self.variables_)), np.nan)
        if used:
            out[:, used] = variable_values(frame, [self.variables_[j] for j in used])
        return out

    def _risk(self, frame: FeatureFrame) -> tuple[FloatArray, npt.NDArray[np.object_], FloatArray]:
        values = self._values(frame)
        slope, offset = self.calibration_
        pd = _sigmoid(slope * self.learner_.linear(values) + offset)
        risk_score = self.score_scale_.midrank(pd)

        def phrases_for(j: int, rows: npt.NDArray[np.intp]) -> list[str]:
            variable, column = self.variables_[j], values[rows, j]
            if j in self.category_rates_:
                return _category_phrases(
                    variable.label,
                    self.category_rates_[j],
                    column,
                    self.value_labels_,
                    variable.column,
                )
            return factor_phrases(
                variable.label,
                variable.column,
                variable.name,
                column,
                self.value_scales_[j].midrank(column),
                self.value_labels_,
            )

        # a variable pushes the score up when it moves the log-odds of default above the
        # population's (a positive calibration slope keeps the direction)
        reasons = reason_strings(slope * self.learner_.contributions(values), phrases_for)
        return risk_score, reasons, pd

    # ------------------------------------------------------------------------ persistence

    def _mode_state(self) -> dict[str, Any]:
        return {
            "variables": [v.to_state() for v in self.variables_],
            "learner": {
                "kind": self.learner_.kind,
                "input": self.spec_.to_state(),
                "state": self.learner_.to_state(),
            },
            "calibration": {"slope": self.calibration_[0], "intercept": self.calibration_[1]},
            "score_scale": self.score_scale_.to_state(),
            "value_scales": {str(j): s.to_state() for j, s in self.value_scales_.items()},
            "category_rates": {
                str(j): [[c, r] for c, r in rates.items()]
                for j, rates in self.category_rates_.items()
            },
        }

    def _extra_files(self) -> dict[str, bytes]:
        if not isinstance(self.learner_, ScorecardLearner):
            return {}
        return {SCORECARD_FILE: table_csv(self.scorecard_table())}

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.variables_ = [
            Variable(v["name"], v["label"], v["column"], v["sql"]) for v in state["variables"]
        ]
        stored = state["learner"]
        self.spec_ = LearnerInput.from_state(stored["input"])
        self.learner_ = learner_class(stored["kind"]).from_state(
            self.spec_, self.settings, self.seed, stored["state"]
        )
        cal = state["calibration"]
        self.calibration_ = (float(cal["slope"]), float(cal["intercept"]))
        self.score_scale_ = TrainingDistribution.from_state(state["score_scale"])
        self.value_scales_ = {
            int(j): TrainingDistribution.from_state(s) for j, s in state["value_scales"].items()
        }
        self.category_rates_ = {
            int(j): {float(c): float(r) for c, r in rates}
            for j, rates in state["category_rates"].items()
        }


# ---------------------------------------------------------------------------- labels


def check_labels(labels: FloatArray, n: int, settings: RiskSettings) -> FloatArray:
    """The labels as floats, refused unless 0/1/NaN with enough of each outcome."""
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
            "a supervised risk model needs both defaults and non-defaults"
        )
    if bads < settings.min_bads or goods < settings.min_goods:
        raise ConfigError(
            f"too few labelled outcomes for a supervised risk model: {bads} defaults and "
            f"{goods} non-defaults (at least {settings.min_bads} and {settings.min_goods} needed)"
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
    variables: Sequence[Variable],
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


# ---------------------------------------------------------------------------- helpers


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _category_rates(codes: FloatArray, y: npt.NDArray[np.int64]) -> FloatArray:
    """Each row's in-sample default rate of its category (NaN is one category)."""
    unique, index = np.unique(codes, return_inverse=True, equal_nan=True)
    rates = np.bincount(index, weights=y, minlength=len(unique)) / np.bincount(index)
    out: FloatArray = rates[index]
    return out


def _code_rates(codes: FloatArray, y: npt.NDArray[np.int64]) -> dict[float, float]:
    """The training default rate of each category code (missing codes left out)."""
    finite = np.isfinite(codes)
    unique, index = np.unique(codes[finite], return_inverse=True)
    bads = np.bincount(index, weights=y[finite], minlength=len(unique))
    counts = np.bincount(index, minlength=len(unique))
    return {float(c): round(float(b / n), 6) for c, b, n in zip(unique, bads, counts, strict=True)}


def _median_filled(x: FloatArray) -> FloatArray:
    out = x.copy()
    for j in range(x.shape[1]):
        col = out[:, j]
        finite = col[np.isfinite(col)]
        col[~np.isfinite(col)] = float(np.median(finite)) if finite.size else 0.0
    return out


def _category_phrases(
    label: str,
    rates: Mapping[float, float],
    codes: FloatArray,
    labels: ValueLabels | None = None,
    column: str | None = None,
) -> list[str]:
    """ "<label> <code>, a category with 38% defaults" per customer (computed once per code);
    the code is the source's words for it (quoted) when `labels` knows the column's codes."""
    cache: dict[float, str] = {}
    out = []
    for code in codes.tolist():
        text = cache.get(code)
        if text is None:
            if math.isnan(code):
                text = f"{label} missing"
            else:
                said = value_label(labels, column, code)
                shown = f"'{said}'" if said is not None else f"{code:.6g}"
                if code in rates:
                    text = f"{label} {shown}, a category with {rates[code]:.0%} defaults"
                else:
                    text = f"{label} {shown}, a category not seen in training"
            cache[code] = text
        out.append(text)
    return out
