"""The regularised logistic challenger: encoding, additive pushes, JSON state, robustness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from finintel.errors import DataError, ModelStateError, NotFittedError
from finintel.models.learner import LearnerInput
from finintel.models.logistic_risk import CLIP, LogisticLearner
from finintel.settings.risk import RiskSettings

SETTINGS = RiskSettings()


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-v)))


def _mixed(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, LearnerInput]:
    """Numbers (one money column, one with gaps), a category code with gaps, and noise.

    Risk rises with `dti`, falls with `income`, is high for purpose 2 and when `score` is
    missing.
    """
    rng = np.random.default_rng(seed)
    dti = rng.normal(0.3, 0.1, rows)
    income = rng.lognormal(10.0, 0.5, rows)
    score = rng.normal(600.0, 50.0, rows)
    score_missing = rng.random(rows) < 0.2
    score[score_missing] = np.nan
    purpose = rng.integers(1, 5, rows).astype(np.float64)
    purpose[rng.random(rows) < 0.1] = np.nan
    noise = rng.normal(size=rows)
    logit = (
        15.0 * (dti - 0.3)
        - 3.0 * (np.log(income) - 10.0)
        + 1.5 * (purpose == 2)
        + 1.5 * score_missing
        - 1.0
    )
    y = (rng.random(rows) < _sigmoid(logit)).astype(np.int64)
    x = np.column_stack([dti, income, score, purpose, noise])
    spec = LearnerInput(
        ["dti", "income", "score", "purpose", "noise"],
        [False, False, False, True, False],
        [1, -1, -1, 0, 0],
        {"dti": "ratio", "income": "money", "score": "points"},
    )
    return x, y, spec


def _fitted(rows: int = 2000, seed: int = 0) -> tuple[LogisticLearner, np.ndarray, np.ndarray]:
    x, y, spec = _mixed(rows, seed)
    return LogisticLearner(spec, SETTINGS, seed=seed).fit(x, y), x, y


def test_contributions_add_up_to_the_linear_score() -> None:
    learner, x, _ = _fitted()
    new, _, _ = _mixed(500, 1)
    for data in (x, new):
        parts = learner.contributions(data)
        assert parts.shape == (len(data), 5)
        total = learner.expected_linear_ + parts.sum(axis=1)
        assert np.max(np.abs(learner.linear(data) - total)) < 1e-9
    # pushes are measured from the training population: they average 0 there
    assert np.max(np.abs(learner.contributions(x).mean(axis=0))) < 1e-9
    state = learner.to_state()
    expected = state["intercept"] + np.dot(state["coefficients"], state["means"])
    assert learner.expected_linear_ == pytest.approx(expected, abs=1e-12)


def test_json_round_trip_gives_bit_identical_outputs() -> None:
    learner, _, _ = _fitted()
    new, _, _ = _mixed(400, 2)
    new[0, 3] = 99.0  # a purpose code not seen in training
    new[1, 0] = np.nan  # dti had no gaps in training
    new[2, 1] = 1e15
    text = json.dumps(learner.to_state(), allow_nan=False)
    spec = LearnerInput.from_state(json.loads(json.dumps(learner.spec.to_state())))
    loaded = LogisticLearner.from_state(spec, SETTINGS, 0, json.loads(text))
    assert np.array_equal(loaded.linear(new), learner.linear(new))
    assert np.array_equal(loaded.contributions(new), learner.contributions(new))
    assert loaded.expected_linear_ == learner.expected_linear_
    assert loaded.used() == learner.used()
    assert loaded.describe() == learner.describe()


def test_categories_are_one_hot_with_nan_its_own_and_unseen_codes_neutral() -> None:
    learner, x, _ = _fitted()
    codes = learner.describe()["coefficients"]["purpose"]["codes"]
    assert sorted(codes) == ["1", "2", "3", "4", "missing"]
    assert codes["2"] == max(codes.values())  # the planted risky purpose
    # a code unseen at fit time has all its one-hot columns at 0: its push is -coef . mean
    rows = np.repeat(x[:1], 4, axis=0)
    rows[:, 3] = [2.0, 99.0, -7.0, np.nan]
    push = learner.contributions(rows)[:, 3]
    state = learner.to_state()
    neutral = -sum(
        c * m
        for col, c, m in zip(state["columns"], state["coefficients"], state["means"], strict=True)
        if col["kind"] == "category"
    )
    assert push[1] == pytest.approx(neutral, abs=1e-12)
    assert push[2] == push[1]
    assert push[0] > push[1]
    assert push[3] == pytest.approx(neutral + codes["missing"], abs=1e-12)
    # only the category variable's push changes with the code
    others = learner.contributions(rows)[:, [0, 1, 2, 4]]
    assert np.array_equal(others, np.repeat(others[:1], 4, axis=0))


def test_nan_unseen_in_training_is_treated_like_an_unseen_code() -> None:
    x, y, spec = _mixed(800, 3)
    x[np.isnan(x[:, 3]), 3] = 1.0
    learner = LogisticLearner(spec, SETTINGS).fit(x, y)
    assert "missing" not in learner.describe()["coefficients"]["purpose"]["codes"]
    rows = np.repeat(x[:1], 2, axis=0)
    rows[:, 3] = [np.nan, 42.0]
    push = learner.contributions(rows)[:, 3]
    assert push[0] == push[1]


def test_missing_indicator_only_for_numbers_with_gaps_in_training() -> None:
    learner, x, _ = _fitted()
    coefficients = learner.describe()["coefficients"]
    assert "missing" in coefficients["score"]
    assert coefficients["score"]["missing"] > 0.3  # missing scores were planted as risky
    assert "missing" not in coefficients["dti"]
    # a missing score sits at the median (0 after the transform) plus the indicator
    state = learner.to_state()
    center = next(c for c in state["transform"]["columns"] if c["name"] == "score")["center"]
    rows = np.repeat(x[:1], 2, axis=0)
    rows[:, 2] = [center, np.nan]
    push = learner.contributions(rows)[:, 2]
    assert push[1] - push[0] == pytest.approx(coefficients["score"]["missing"], abs=1e-12)


def test_planted_signal_is_found_with_the_right_signs() -> None:
    x, y, spec = _mixed(3000, 4)
    learner = LogisticLearner(spec, SETTINGS, seed=4).fit(x[:2000], y[:2000])
    assert roc_auc_score(y[2000:], learner.linear(x[2000:])) > 0.8
    coefficients = learner.describe()["coefficients"]
    assert coefficients["dti"]["value"] > 0
    assert coefficients["income"]["value"] < 0
    assert abs(coefficients["noise"]["value"]) < 0.2 * coefficients["dti"]["value"]
    described = learner.describe()
    assert described["variables_used"] == ["dti", "income", "score", "purpose", "noise"]
    assert described["regularisation"]["C"] == learner.c
    assert learner.kind == "logistic"


def test_fits_are_deterministic() -> None:
    a, x, _ = _fitted(seed=5)
    b, _, _ = _fitted(seed=5)
    assert json.dumps(a.to_state()) == json.dumps(b.to_state())
    assert np.array_equal(a.linear(x), b.linear(x))


def test_one_outlier_does_not_dominate() -> None:
    rng = np.random.default_rng(6)
    rows = 1000
    signal = rng.normal(size=rows)
    y = (rng.random(rows) < _sigmoid(1.5 * signal)).astype(np.int64)
    spec = LearnerInput(["signal"], [False], [1], {"signal": "as given"})
    clean = LogisticLearner(spec, SETTINGS).fit(signal[:, None], y)
    spiked = signal.copy()
    spiked[0] = 1e9 if y[0] == 0 else -1e9  # an extreme value on the wrong side
    dirty = LogisticLearner(spec, SETTINGS).fit(spiked[:, None], y)
    slope_clean = clean.describe()["coefficients"]["signal"]["value"]
    slope_dirty = dirty.describe()["coefficients"]["signal"]["value"]
    assert slope_dirty == pytest.approx(slope_clean, rel=0.1)
    # the outlier's push is capped at CLIP robust units from the median
    push = dirty.contributions(spiked[:1, None])[0, 0]
    mean = dirty.to_state()["means"][0]
    assert abs(push) == pytest.approx(abs(slope_dirty) * abs(np.sign(spiked[0]) * CLIP - mean))


def test_constant_and_empty_columns_are_unused() -> None:
    x, y, spec = _mixed(600, 7)
    x = np.column_stack([x, np.full(600, np.nan), np.full(600, 3.0), np.full(600, np.nan)])
    spec = LearnerInput(
        [*spec.names, "empty", "constant", "empty_code"],
        [*spec.categorical, False, False, True],
        [*spec.directions, 0, 0, 0],
        spec.units,
    )
    learner = LogisticLearner(spec, SETTINGS).fit(x, y)
    assert learner.used() == [0, 1, 2, 3, 4]
    new = x[:50].copy()
    new[:, 5:] = [1.0, 4.0, 2.0]
    parts = learner.contributions(new)
    assert np.all(parts[:, 5:] == 0.0)
    assert np.all(np.isfinite(learner.linear(new)))


def test_few_rows_fit() -> None:
    x, _, spec = _mixed(60, 8)
    y = np.zeros(60, dtype=np.int64)
    y[np.argsort(x[:, 0])[-20:]] = 1  # the 20 highest dti default
    learner = LogisticLearner(spec, SETTINGS).fit(x, y)
    assert learner.describe()["coefficients"]["dti"]["value"] > 0
    assert roc_auc_score(y, learner.linear(x)) > 0.8


def test_nothing_varies_gives_the_base_rate() -> None:
    spec = LearnerInput(["flat"], [False], [0])
    y = np.array([0, 0, 0, 1] * 10, dtype=np.int64)
    learner = LogisticLearner(spec, SETTINGS).fit(np.ones((40, 1)), y)
    assert learner.used() == []
    assert learner.linear(np.array([[5.0]]))[0] == pytest.approx(np.log(1 / 3))


def test_bad_inputs_are_refused() -> None:
    x, y, spec = _mixed(100, 9)
    learner = LogisticLearner(spec, SETTINGS)
    with pytest.raises(NotFittedError):
        learner.linear(x)
    with pytest.raises(DataError, match="0 \\(repaid\\) or 1"):
        learner.fit(x, np.where(y == 1, 2, 0))
    with pytest.raises(DataError, match="both"):
        learner.fit(x, np.zeros(100, dtype=np.int64))
    learner.fit(x, y)
    with pytest.raises(DataError, match="5 columns"):
        learner.linear(x[:, :4])
    state = learner.to_state()
    del state["means"]
    with pytest.raises(ModelStateError, match="damaged"):
        LogisticLearner.from_state(spec, SETTINGS, 0, state)
