"""Monotone gradient boosting: sklearn's scores from plain JSON, Saabas pushes, categories."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from finintel.models import boosting
from finintel.models.boosting import BoostingLearner, CategoryRates, min_samples_leaf
from finintel.models.learner import LearnerInput
from finintel.settings.risk import RiskSettings

Fitted = tuple[BoostingLearner, np.ndarray, np.ndarray]
SPEC = LearnerInput(
    ["dti", "score", "noise", "purpose"], [False, False, False, True], [1, -1, 0, 0]
)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """dti raises risk, score lowers it, noise is noise, purpose codes 0-5 (5 is risky)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[:, 3] = rng.integers(0, 6, n)
    z = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 2.0 * (x[:, 3] == 5) - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    x[rng.random((n, 4)) < 0.08] = np.nan
    return x, y


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    x, y = _data(1500, 7)
    return BoostingLearner(SPEC, RiskSettings(), seed=3).fit(x, y), x, y


def _probe(seed: int, n: int = 800) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(n, 4))
    x[:, 3] = rng.integers(-1, 8, n)  # codes -1, 6 and 7 were never seen
    x[rng.random((n, 4)) < 0.2] = np.nan
    return x


def test_linear_equals_sklearn_decision_function(fitted: Fitted) -> None:
    model, x, y = fitted
    reference = HistGradientBoostingClassifier(
        learning_rate=boosting.LEARNING_RATE,
        max_iter=boosting.MAX_ITER,
        max_leaf_nodes=boosting.MAX_LEAF_NODES,
        min_samples_leaf=min_samples_leaf(len(y)),
        l2_regularization=boosting.L2_REGULARIZATION,
        max_bins=boosting.MAX_BINS,
        monotonic_cst=model.constraints(),
        early_stopping=False,
        random_state=3,
    ).fit(model._encoded(x), y)
    probe = _probe(11)
    expected = reference.decision_function(model._encoded(probe))
    np.testing.assert_allclose(model.linear(probe), expected, rtol=0, atol=1e-10)
    assert len(model._forest().trees) == boosting.MAX_ITER


def test_json_round_trip_is_bit_identical(fitted: Fitted) -> None:
    model, _, _ = fitted
    text = json.dumps(model.to_state(), allow_nan=False)
    again = BoostingLearner.from_state(SPEC, RiskSettings(), 3, json.loads(text))
    probe = _probe(12)
    assert np.array_equal(again.linear(probe), model.linear(probe))
    assert np.array_equal(again.contributions(probe), model.contributions(probe))
    assert again.expected_linear_ == model.expected_linear_
    assert again.describe() == model.describe()
    assert json.dumps(again.to_state(), allow_nan=False) == text


def test_contributions_add_up_to_linear(fitted: Fitted) -> None:
    model, x, _ = fitted
    probe = np.vstack([x, _probe(13)])
    pushes = model.contributions(probe)
    assert pushes.shape == probe.shape
    total = model.expected_linear_ + pushes.sum(axis=1)
    np.testing.assert_allclose(total, model.linear(probe), rtol=0, atol=1e-9)
    # the signal variables push hardest; the encoded purpose pushes risky codes up
    importance = model.describe()["importance"]
    assert list(importance)[:2] == ["dti", "score"]
    risky = np.array([[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 1.0]])
    push = model.contributions(risky)[:, 3]
    assert push[0] > 0 > push[1]


def test_saabas_on_a_single_stump() -> None:
    """One split at x <= 0: pushes are the leaf value minus the count-weighted mean."""
    tree: dict[str, list[Any]] = {
        "feature": [0, -1, -1],
        "threshold": [0.0, 0.0, 0.0],
        "missing_left": [False, False, False],
        "left": [1, 0, 0],
        "right": [2, 0, 0],
        "leaf": [False, True, True],
        "value": [0.0, -1.0, 2.0],
        "count": [0, 30, 10],
    }
    forest = boosting.Forest([tree], baseline=0.5)
    assert forest.expected_linear == pytest.approx(0.5 + (30 * -1.0 + 10 * 2.0) / 40)
    linear, pushes = forest.walk(np.array([[-1.0], [3.0], [np.nan]]), credit=True)
    assert linear.tolist() == [-0.5, 2.5, 2.5]  # NaN goes right
    assert pushes is not None
    assert pushes[:, 0].tolist() == pytest.approx([-0.75, 2.25, 2.25])


def test_a_malformed_state_is_refused(fitted: Fitted) -> None:
    model, _, _ = fitted
    state = json.loads(json.dumps(model.to_state()))
    root = state["trees"][0]
    root["left"][0] = 0  # the root as its own child: a walk that never ends
    with pytest.raises(ValueError, match="node 0"):
        BoostingLearner.from_state(SPEC, RiskSettings(), 3, state)
    narrow = LearnerInput(["dti"], [False], [1])
    with pytest.raises(ValueError, match="columns"):
        BoostingLearner.from_state(narrow, RiskSettings(), 3, model.to_state())


def test_monotone_directions_hold(fitted: Fitted) -> None:
    model, _, _ = fitted
    grid = np.linspace(-5, 5, 201)
    rows = _probe(14, 40)
    rows[:, :3] = np.nan_to_num(rows[:, :3])
    for j, sign in [(0, 1), (1, -1)]:
        for row in rows:
            sweep = np.tile(row, (len(grid), 1))
            sweep[:, j] = grid
            steps = np.diff(model.linear(sweep)) * sign
            assert np.all(steps >= 0), (j, steps.min())
    assert model.describe()["monotonic_constraints"] == {
        "dti": 1,
        "score": -1,
        "noise": 0,
        "purpose": 1,
    }


def test_category_rates_smooth_and_handle_unseen_and_missing() -> None:
    codes = np.array([1.0] * 10 + [2.0] * 10 + [np.nan] * 5)
    y = np.array([1] * 8 + [0] * 2 + [0] * 10 + [1] * 5)
    enc = CategoryRates.fit(codes, y)
    prior = 13 / 25
    assert enc.prior == pytest.approx(prior)
    out = enc.transform(np.array([1.0, 2.0, np.nan, 3.0, -1.0, np.inf]))
    expected = [
        (8 + 10 * prior) / 20,
        (0 + 10 * prior) / 20,
        (5 + 10 * prior) / 15,
        prior,
        prior,
        (5 + 10 * prior) / 15,  # an infinite code counts as missing
    ]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert CategoryRates.fit(np.array([1.0, 2.0]), np.array([0, 1])).missing_rate == 0.5
    assert CategoryRates.from_state(json.loads(json.dumps(enc.to_state()))) == enc


def test_categorical_codes_are_unordered() -> None:
    """Relabelling the category codes leaves the scores unchanged (only their rates count)."""
    x, y = _data(800, 21)
    relabelled = x.copy()
    relabelled[:, 3] = np.where(np.isnan(x[:, 3]), np.nan, 10.0 - 3.0 * x[:, 3])
    a = BoostingLearner(SPEC, RiskSettings(), seed=1).fit(x, y)
    b = BoostingLearner(SPEC, RiskSettings(), seed=1).fit(relabelled, y)
    assert np.array_equal(a.linear(x), b.linear(relabelled))
    unseen = x[:5].copy()
    unseen[:, 3] = 99.0
    overall = x[:5].copy()
    overall[:, 3] = -7.0
    assert np.array_equal(a.linear(unseen), a.linear(overall))  # both at the overall rate


def test_planted_signal_is_found_on_held_out_rows() -> None:
    x, y = _data(2000, 31)
    model = BoostingLearner(SPEC, RiskSettings(), seed=2).fit(x[:1200], y[:1200])
    assert roc_auc_score(y[1200:], model.linear(x[1200:])) > 0.8
    assert set(model.used()) >= {0, 1, 3}


def test_same_seed_same_model() -> None:
    x, y = _data(600, 41)
    a = BoostingLearner(SPEC, RiskSettings(), seed=5).fit(x, y)
    b = BoostingLearner(SPEC, RiskSettings(), seed=5).fit(x, y)
    assert a.to_state() == b.to_state()


def test_empty_constant_and_tiny_tables() -> None:
    rng = np.random.default_rng(51)
    x = rng.normal(size=(60, 4))
    x[:, 2] = np.nan  # all missing
    x[:, 3] = 4.0  # one category only
    y = np.array([1] * 20 + [0] * 40)
    x[:20, 0] += 2.0
    model = BoostingLearner(SPEC, RiskSettings(), seed=1).fit(x, y)
    assert 0 in model.used()
    assert set(model.used()) <= {0, 1}  # never the empty or the constant column
    pushes = model.contributions(x)
    assert np.all(pushes[:, 2:] == 0)
    np.testing.assert_allclose(
        model.expected_linear_ + pushes.sum(axis=1), model.linear(x), rtol=0, atol=1e-9
    )
    assert model.describe()["hyper_parameters"]["min_samples_leaf"] == 20


def test_bad_input_is_refused() -> None:
    x, y = _data(100, 61)
    learner = BoostingLearner(SPEC, RiskSettings())
    with pytest.raises(ValueError, match="0 \\(repaid\\) or 1"):
        learner.fit(x, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="both"):
        learner.fit(x, np.zeros(100, dtype=np.int64))
    with pytest.raises(ValueError, match="4 columns"):
        learner.fit(x[:, :3], y)
    with pytest.raises(ValueError, match="not fitted"):
        learner.linear(x)


def test_min_samples_leaf_grows_with_rows() -> None:
    assert min_samples_leaf(60) == 20
    assert min_samples_leaf(200_000) > min_samples_leaf(20_000) >= 20
