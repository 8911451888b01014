"""Champion and challengers: every supervised learner on the same folds, one delivered, gated.

The WoE scorecard (`finintel.models.scorecard`), a regularised logistic regression
(`finintel.models.logistic_risk`) and monotone gradient boosting (`finintel.models.boosting`)
are cross-validated on the same repeated stratified folds. The folds run in parallel on the
machine's cores, each fitting every learner once (binning computed once per fold and variable).

`choose` then decides, with `[risk]` settings:

- A learner **passes the gate** when its mean cross-validated ROC-AUC is at least
  `min_cv_auc` (0.6), clears 0.5 by more than its spread across folds (mean - standard
  deviation > 0.5), and its calibration slope (Platt scaling of the out-of-fold scores) is
  positive: below that the model ranks customers no better than chance, or the wrong way round.
- `model = "auto"`: the scorecard when it passes and is within `tolerance` (0.01) of the best
  passing learner, since a credit officer can read it; else the best passing learner.
  `model = "scorecard" | "logistic" | "boosting"`: that one only.
- No passing learner: nothing is delivered; the caller falls back to the unsupervised
  composite, or stops when `require_supervised` is set.

Example:
    >>> result = CandidateResult("scorecard", [0.70, 0.74], 0.9, 3.0)
    >>> result.roc_auc, gate_failure(result, 0.6)
    (0.72, None)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finintel.models.learner import FloatArray, IntArray, LearnerInput, RiskLearner
from finintel.settings.risk import RiskSettings

# cv_repeats = "auto": repeat the folds this often up to this many training rows (small samples
# are where one split's luck moves the estimate; large ones would pay 3x the fitting time).
AUTO_REPEATS = 3
AUTO_REPEATS_MAX_ROWS = 20_000
KINDS = ("scorecard", "logistic", "boosting")

FoldProgress = Callable[[int, int], None]


def learner_class(kind: str) -> type[RiskLearner]:
    """The learner class of a kind ("scorecard", "logistic", "boosting")."""
    if kind == "scorecard":
        from finintel.models.scorecard import ScorecardLearner

        return ScorecardLearner
    if kind == "logistic":
        from finintel.models.logistic_risk import LogisticLearner

        return LogisticLearner
    if kind == "boosting":
        from finintel.models.boosting import BoostingLearner

        return BoostingLearner
    raise ValueError(f"unknown risk learner {kind!r}")


def kinds_to_fit(settings: RiskSettings) -> tuple[str, ...]:
    return KINDS if settings.model == "auto" else (settings.model,)


def cv_repeats(settings: RiskSettings, rows: int) -> int:
    """How often the cross-validation is repeated (with new folds) for `rows` training rows."""
    if settings.cv_repeats != "auto":
        return settings.cv_repeats
    return AUTO_REPEATS if rows <= AUTO_REPEATS_MAX_ROWS else 1


@dataclass(frozen=True)
class CandidateResult:
    """One learner's cross-validation: ROC-AUC per fold, its calibration slope on the
    out-of-fold scores, the mean number of variables used."""

    kind: str
    roc_auc_by_fold: list[float]
    calibration_slope: float
    variables: float

    @property
    def roc_auc(self) -> float:
        return round(float(np.mean(self.roc_auc_by_fold)), 6)

    @property
    def roc_auc_std(self) -> float:
        return round(float(np.std(self.roc_auc_by_fold)), 6)


@dataclass(frozen=True)
class CrossValidation:
    """All learners on the same folds: results per kind, out-of-fold linear scores per kind
    (repeats x rows), and the KS statistic per fold per kind."""

    folds: int
    repeats: int
    seed: int
    results: dict[str, CandidateResult]
    oof: dict[str, FloatArray]
    ks_by_fold: dict[str, list[float]]


def cross_validate(
    x: FloatArray,
    y: IntArray,
    spec: LearnerInput,
    settings: RiskSettings,
    seed: int,
    progress: FoldProgress | None = None,
) -> CrossValidation:
    """Fit every learner of `kinds_to_fit(settings)` on every fold, folds in parallel."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold

    kinds = kinds_to_fit(settings)
    repeats = cv_repeats(settings, len(y))
    # the first repeat has the same folds as StratifiedKFold(shuffle=True, random_state=seed)
    splitter = RepeatedStratifiedKFold(
        n_splits=settings.cv_folds, n_repeats=repeats, random_state=seed
    )
    folds = list(splitter.split(x, y))
    jobs = max(1, min(os.cpu_count() or 1, len(folds)))
    tasks = (
        delayed(_fit_fold)(x, y, train, test, spec, settings, seed, kinds) for train, test in folds
    )
    outcomes: list[list[tuple[str, FloatArray, float, int]]] = [[] for _ in folds]
    runner = Parallel(n_jobs=jobs, return_as="generator")
    for done, (k, outcome) in enumerate(
        zip(range(len(folds)), runner(tasks), strict=True), start=1
    ):
        outcomes[k] = outcome
        if progress is not None:
            progress(done, len(folds))
    return _collect(outcomes, folds, y, settings, seed, repeats, kinds)


def _fit_fold(
    x: FloatArray,
    y: IntArray,
    train: Any,
    test: Any,
    spec: LearnerInput,
    settings: RiskSettings,
    seed: int,
    kinds: Sequence[str],
) -> list[tuple[str, FloatArray, float, int]]:
    """Each learner fitted on the fold's training rows: its linear score of the test rows,
    ROC-AUC, variables used."""
    from sklearn.metrics import roc_auc_score

    out = []
    for kind in kinds:
        learner = learner_class(kind)(spec, settings, seed).fit(x[train], y[train])
        linear = learner.linear(x[test])
        out.append((kind, linear, float(roc_auc_score(y[test], linear)), len(learner.used())))
    return out


def _collect(
    outcomes: list[list[tuple[str, FloatArray, float, int]]],
    folds: list[tuple[Any, Any]],
    y: IntArray,
    settings: RiskSettings,
    seed: int,
    repeats: int,
    kinds: Sequence[str],
) -> CrossValidation:
    from sklearn.metrics import roc_curve

    results: dict[str, CandidateResult] = {}
    oof: dict[str, FloatArray] = {}
    ks: dict[str, list[float]] = {}
    for kind in kinds:
        scores = np.zeros((repeats, len(y)))
        aucs, variables, kss = [], [], []
        for k, ((_, test), outcome) in enumerate(zip(folds, outcomes, strict=True)):
            linear, auc, used = next((o[1], o[2], o[3]) for o in outcome if o[0] == kind)
            scores[k // settings.cv_folds, test] = linear
            aucs.append(auc)
            variables.append(used)
            fpr, tpr, _ = roc_curve(y[test], linear)
            kss.append(float(np.max(tpr - fpr)))
        slope, _ = calibrate(scores, y)
        results[kind] = CandidateResult(
            kind, [round(a, 6) for a in aucs], slope, float(np.mean(variables))
        )
        oof[kind] = scores
        ks[kind] = kss
    return CrossValidation(settings.cv_folds, repeats, seed, results, oof, ks)


def calibrate(linear: FloatArray, y: IntArray) -> tuple[float, float]:
    """Platt scaling: PD = sigmoid(slope * linear + intercept), fitted on out-of-fold scores.

    `linear` holds one out-of-fold score per repeat and row; all repeats are stacked.
    """
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(linear.reshape(-1, 1), np.tile(y, linear.shape[0]))
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def gate_failure(result: CandidateResult, min_cv_auc: float) -> str | None:
    """Why a learner may not be delivered, or None when it passes the gate."""
    auc, spread = result.roc_auc, result.roc_auc_std
    if auc < min_cv_auc:
        return f"cross-validated ROC-AUC {auc:.3f} is below the minimum {min_cv_auc:g}"
    if auc - spread <= 0.5:
        return (
            f"cross-validated ROC-AUC {auc:.3f} does not clear 0.5 by its spread across folds "
            f"({spread:.3f})"
        )
    if result.calibration_slope <= 0:
        return (
            f"its calibration slope is {result.calibration_slope:.3f}: out of fold, higher "
            "scores do not mean more defaults"
        )
    return None


@dataclass(frozen=True)
class Choice:
    """The learner delivered (None: none passed) and why, in one sentence."""

    delivered: str | None
    reason: str


def choose(results: dict[str, CandidateResult], settings: RiskSettings) -> Choice:
    """Pick the learner to deliver (see the module docstring)."""
    failures = {k: gate_failure(r, settings.min_cv_auc) for k, r in results.items()}
    passing = {k: r for k, r in results.items() if failures[k] is None}
    if not passing:
        why = "; ".join(f"{k}: {failures[k]}" for k in results)
        return Choice(None, f"no supervised model passed the gate ({why})")
    if settings.model != "auto":
        return Choice(settings.model, f"{settings.model} was asked for ([risk] model)")
    best = max(passing.values(), key=lambda r: (r.roc_auc, -KINDS.index(r.kind)))
    card = passing.get("scorecard")
    if card is not None and card.roc_auc >= best.roc_auc - settings.tolerance:
        if best.kind == "scorecard":
            return Choice("scorecard", "the scorecard has the best cross-validated ROC-AUC")
        return Choice(
            "scorecard",
            f"the scorecard's cross-validated ROC-AUC {card.roc_auc:.3f} is within the "
            f"tolerance {settings.tolerance:g} of the best ({best.kind} {best.roc_auc:.3f})",
        )
    if card is None:
        lead = f"the scorecard did not pass the gate ({failures['scorecard']})"
    else:
        lead = (
            f"the scorecard's cross-validated ROC-AUC {card.roc_auc:.3f} is more than the "
            f"tolerance {settings.tolerance:g} below {best.kind}'s {best.roc_auc:.3f}"
        )
    return Choice(best.kind, f"{lead}; {best.kind} is the best model that passed")


def selection_record(cv: CrossValidation, choice: Choice, settings: RiskSettings) -> dict[str, Any]:
    """What metrics.json and the report show of the choice: one row per learner."""
    rows = []
    for kind, r in cv.results.items():
        failure = gate_failure(r, settings.min_cv_auc)
        rows.append(
            {
                "model": kind,
                "description": learner_class(kind).description,
                "roc_auc": r.roc_auc,
                "roc_auc_std": r.roc_auc_std,
                "roc_auc_by_fold": r.roc_auc_by_fold,
                "calibration_slope": round(r.calibration_slope, 6),
                "mean_variables": round(r.variables, 2),
                "passed_gate": failure is None,
                "gate": failure or "passed",
                "delivered": kind == choice.delivered,
            }
        )
    return {
        "requested": settings.model,
        "delivered": choice.delivered,
        "reason": choice.reason,
        "tolerance": settings.tolerance,
        "min_cv_auc": settings.min_cv_auc,
        "folds": cv.folds,
        "repeats": cv.repeats,
        "seed": cv.seed,
        "candidates": rows,
    }
