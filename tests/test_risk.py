"""The unsupervised risk composite, the shared risk API, bands and reasons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from conftest import SyntheticRun
from finintel.errors import ConfigError, DataError
from finintel.models.base import STATE_FILE
from finintel.models.composite import CompositeRisk
from finintel.models.frame import FeatureFrame
from finintel.models.risk import fit_risk, load_risk
from finintel.models.risk_base import RiskScores, assign_bands, reason_strings
from finintel.models.risk_factors import BUILTIN_FACTORS, evaluate_factors
from finintel.settings.risk import RiskBand, RiskFactorSpec, RiskSettings


def small_frame() -> FeatureFrame:
    rng = np.random.default_rng(3)
    n = 400
    dti = rng.gamma(2.0, 0.4, n)
    od = rng.poisson(1.0, n).astype(float)
    income = rng.lognormal(10.5, 0.4, n)
    values = np.column_stack([dti, od, income])
    ids = np.array([f"C{i:04d}" for i in range(n)], dtype=object)
    return FeatureFrame(ids, ("debt_to_income", "overdraft_days", "annual_income"), values)


def assert_same(a: RiskScores, b: RiskScores) -> None:
    assert np.array_equal(a.risk_score, b.risk_score)
    assert np.array_equal(a.probability_of_default, b.probability_of_default, equal_nan=True)
    assert a.risk_band.tolist() == b.risk_band.tolist()
    assert a.risk_action.tolist() == b.risk_action.tolist()
    assert a.risk_reasons.tolist() == b.risk_reasons.tolist()


# ------------------------------------------------------------------------- synthetic bank


@pytest.fixture(scope="module")
def fixture_model(synthetic: SyntheticRun) -> tuple[CompositeRisk, RiskScores]:
    model = fit_risk(synthetic.frame, None, RiskSettings(), seed=7)
    assert isinstance(model, CompositeRisk)
    return model, model.predict(synthetic.frame)


def test_unsupervised_score_ranks_defaults(
    synthetic: SyntheticRun, fixture_model: tuple[CompositeRisk, RiskScores]
) -> None:
    model, scores = fixture_model
    assert model.mode == "unsupervised"
    auc = roc_auc_score(synthetic.defaulted, scores.risk_score)
    pr_auc = average_precision_score(synthetic.defaulted, scores.risk_score)
    # measured 0.841 ROC-AUC, 0.49 PR-AUC (base rate ~0.09)
    assert auc >= 0.75, auc
    assert pr_auc >= 0.35, pr_auc
    # the riskier the band, the higher the observed default rate
    rates = [synthetic.defaulted[scores.risk_band == b.name].mean() for b in DEFAULT_BANDS]
    assert rates == sorted(rates), rates
    assert np.isnan(scores.probability_of_default).all()


DEFAULT_BANDS = RiskSettings().bands


def test_unsupervised_metrics_name_used_and_unavailable_factors(
    fixture_model: tuple[CompositeRisk, RiskScores],
) -> None:
    model, scores = fixture_model
    used = [f["name"] for f in model.metrics_["factors"]]
    assert used == [
        "debt_to_income",
        "spend_to_income",
        "overdraft_days",
        "low_balance_to_income",
        "net_flow_to_income",
        "balance_volatility_to_income",
        "low_income",
    ]
    unavailable = model.metrics_["unavailable_factors"]
    assert unavailable["lowest_balance"].startswith("replaced by low_balance_to_income")
    assert unavailable["cash_advance_share"] == "the data has no column cash_advance"
    assert unavailable["credit_utilisation"] == "the data has no column payments"
    assert set(used) | set(unavailable) == {f.name for f in BUILTIN_FACTORS}
    assert sum(model.metrics_["bands"].values()) == len(scores)
    json.dumps(model.metrics_, allow_nan=False)


def test_bands_split_the_population_by_score(
    fixture_model: tuple[CompositeRisk, RiskScores],
) -> None:
    _, scores = fixture_model
    counts = {b.name: int((scores.risk_band == b.name).sum()) for b in DEFAULT_BANDS}
    # the score is a percentile of the fitted population: Critical = riskiest 10%, and so on
    assert counts["Critical"] == pytest.approx(600, abs=12)
    assert counts["High"] == pytest.approx(900, abs=12)
    assert counts["Low"] == pytest.approx(3000, abs=12)
    actions = dict(zip(scores.risk_band.tolist(), scores.risk_action.tolist(), strict=True))
    assert actions == {
        "Low": "no action",
        "Medium": "monitor",
        "High": "raise an alert",
        "Critical": "manual review",
    }
    assert scores.risk_score.min() >= 0 and scores.risk_score.max() <= 100


def test_reasons_name_top_factors_in_plain_words(
    fixture_model: tuple[CompositeRisk, RiskScores],
) -> None:
    _, scores = fixture_model
    critical = scores.risk_reasons[scores.risk_band == "Critical"]
    assert np.mean([len(r.split("; ")) == 3 for r in critical]) > 0.9
    counts = [len(r.split("; ")) if r else 0 for r in scores.risk_reasons]
    assert max(counts) == 3 and min(counts) < 3  # fewer when fewer factors push up
    top = scores.risk_reasons[np.argmax(scores.risk_score)]
    assert "% of customers" in top
    assert any(
        r.startswith("debt-to-income ") and ", above " in r for r in scores.risk_reasons[:200]
    )


def test_unsupervised_is_deterministic_and_round_trips_exactly(
    synthetic: SyntheticRun, fixture_model: tuple[CompositeRisk, RiskScores]
) -> None:
    model, scores = fixture_model
    again = fit_risk(synthetic.frame, None, RiskSettings(), seed=7)
    assert_same(scores, again.predict(synthetic.frame))
    files = model.to_files()
    assert list(files) == [STATE_FILE]
    assert files == again.to_files()
    loaded = load_risk(files)
    assert loaded.mode == "unsupervised"
    assert_same(scores, loaded.predict(synthetic.frame))
    assert loaded.metrics_ == json.loads(json.dumps(model.metrics_))


def test_scoring_a_subset_uses_fit_time_statistics(
    synthetic: SyntheticRun, fixture_model: tuple[CompositeRisk, RiskScores]
) -> None:
    model, scores = fixture_model
    rows = np.arange(0, len(synthetic.frame), 37)
    part = model.predict(synthetic.frame.rows(rows))
    assert np.array_equal(part.risk_score, scores.risk_score[rows])
    assert part.risk_reasons.tolist() == scores.risk_reasons[rows].tolist()


def test_scoring_refuses_a_frame_without_the_model_columns(
    fixture_model: tuple[CompositeRisk, RiskScores], synthetic: SyntheticRun
) -> None:
    model, _ = fixture_model
    without = [c for c in synthetic.frame.columns if c != "overdraft_days"]
    with pytest.raises(DataError, match=r"\['overdraft_days'\]"):
        model.predict(synthetic.frame.select(without))


# ------------------------------------------------------------------------- factors


def test_factors_adapt_to_the_columns() -> None:
    frame = small_frame()
    model = CompositeRisk(RiskSettings(), seed=0).fit(frame)
    assert [f["name"] for f in model.metrics_["factors"]] == [
        "debt_to_income",
        "overdraft_days",
        "low_income",
    ]
    assert model.columns_ == ["annual_income", "debt_to_income", "overdraft_days"]
    assert model.metrics_["unavailable_factors"]["spend_to_income"] == (
        "the data has no column spend_to_income "
        "(spend_to_income needs a transactions table and annual_income on customers)"
    )


def test_declared_factors_with_expressions_directions_and_weights() -> None:
    frame = small_frame()
    factors = [
        RiskFactorSpec(name="dti", label="debt-to-income", sql="debt_to_income", weight=3),
        RiskFactorSpec(
            name="od_per_income",
            label="overdraft days per 10k income",
            sql="overdraft_days / nullif(annual_income / 10000, 0)",
        ),
        RiskFactorSpec(name="gone", label="x", sql="no_such_column * 2"),
        RiskFactorSpec(name="flat", label="y", sql="debt_to_income * 0"),
    ]
    model = CompositeRisk(RiskSettings(factors=factors), seed=0).fit(frame)
    assert model.metrics_["factor_source"] == "settings"
    assert model.metrics_["unavailable_factors"] == {
        "flat": "every customer has the same value",
        "gone": "the data has no column no_such_column",
    }
    assert [f["weight_share"] for f in model.metrics_["factors"]] == [0.75, 0.25]
    scores = model.predict(frame)
    # dti carries 3/4 of the weight: its rank correlation with the score dominates
    dti_corr = np.corrcoef(
        np.argsort(np.argsort(frame.column("debt_to_income"))),
        np.argsort(np.argsort(scores.risk_score)),
    )[0, 1]
    assert dti_corr > 0.85


def test_factor_expressions_cannot_reach_files() -> None:
    frame = small_frame()
    bad = RiskFactorSpec(
        name="peek", label="x", sql="(SELECT count(*) FROM read_csv('/etc/passwd'))"
    )
    with pytest.raises(ConfigError, match="peek"):
        evaluate_factors(frame, [bad])
    with pytest.raises(ConfigError, match="must not contain ';'"):
        evaluate_factors(frame, [RiskFactorSpec(name="two", label="x", sql="1; SELECT 2")])


def test_excluded_columns_are_never_used() -> None:
    frame = small_frame()
    settings = RiskSettings(exclude_columns=["annual_income"])
    model = CompositeRisk(settings, seed=0).fit(frame)
    assert model.metrics_["unavailable_factors"]["low_income"] == (
        "column annual_income is excluded by the settings"
    )
    assert "annual_income" not in model.columns_


def test_categorical_codes_are_never_ordered_factors() -> None:
    frame = small_frame()
    codes = np.resize(np.array([3.0, 1.0, 2.0]), len(frame)).reshape(-1, 1)
    frame = frame.with_columns(["purpose_code"], codes)
    factors = [
        RiskFactorSpec(name="dti", label="debt-to-income", sql="debt_to_income"),
        RiskFactorSpec(name="purpose", label="purpose", sql="purpose_code"),
        RiskFactorSpec(name="ratio", label="x", sql="purpose_code / nullif(debt_to_income, 0)"),
    ]
    settings = RiskSettings(factors=factors, categorical_columns=["purpose_code"])
    model = CompositeRisk(settings, seed=0).fit(frame)
    assert [f["name"] for f in model.metrics_["factors"]] == ["dti"]
    assert model.metrics_["unavailable_factors"] == {
        "purpose": "column purpose_code is excluded by the settings",
        "ratio": "column purpose_code is excluded by the settings",
    }
    assert model.columns_ == ["debt_to_income"]
    # the built-in library reads no code declared categorical in the German credit example
    from finintel.config import load_config
    from finintel.models.risk_factors import bare_column

    cfg, _ = load_config(Path(__file__).parents[1] / "examples" / "german_credit.toml")
    read = {bare_column(f) or f.sql for f in BUILTIN_FACTORS}
    assert cfg.risk.categorical_columns and not read & set(cfg.risk.categorical_columns)


def test_no_usable_factor_is_a_clear_error() -> None:
    frame = FeatureFrame(np.array(["A", "B"], dtype=object), ("age",), np.array([[30.0], [40.0]]))
    with pytest.raises(DataError, match="no risk factor can be computed"):
        CompositeRisk(RiskSettings(), seed=0).fit(frame)


# ------------------------------------------------------------------------- scale, bands, mode


def test_custom_bands_and_actions() -> None:
    bands = [
        RiskBand(name="Low", min_score=0, action="none"),
        RiskBand(name="Watch", min_score=60, action="call"),
        RiskBand(name="Critical", min_score=95, action="freeze"),
    ]
    names, actions = assign_bands(np.array([0.0, 59.99, 60.0, 94.9, 95.0, 100.0]), bands)
    assert names.tolist() == ["Low", "Low", "Watch", "Watch", "Critical", "Critical"]
    assert actions.tolist() == ["none", "none", "call", "call", "freeze", "freeze"]
    with pytest.raises(ValueError, match="strictly increasing"):
        RiskSettings(bands=[RiskBand(name="A", min_score=10, action="x")])


def test_mode_selection() -> None:
    frame = small_frame()
    with pytest.raises(ConfigError, match="needs labels"):
        fit_risk(frame, None, RiskSettings(mode="supervised"), seed=0)
    labels = (frame.column("debt_to_income") > 1).astype(float)
    model = fit_risk(frame, labels, RiskSettings(mode="unsupervised"), seed=0)
    assert model.mode == "unsupervised"
    assert "labels_ignored" in model.metrics_


def test_reasons_name_the_three_largest_pushes_and_word_only_those() -> None:
    pushes = np.array(
        [
            [1.0, 4.0, 3.0, 2.0],  # all four push: the top three, largest first
            [0.0, -2.0, 5.0, 0.0],  # one factor pushes
            [-1.0, 0.0, -3.0, 0.0],  # none
            [2.0, 2.0, 0.0, 2.0],  # ties keep the factor order
        ]
    )
    asked: list[tuple[int, list[int]]] = []

    def phrases_for(j: int, rows: np.ndarray) -> list[str]:
        asked.append((j, rows.tolist()))
        return [f"f{j}@{i}" for i in rows]

    reasons = reason_strings(pushes, phrases_for).tolist()
    assert reasons == ["f1@0; f2@0; f3@0", "f2@1", "", "f0@3; f1@3; f3@3"]
    # text is built only where a reason uses it: never for factor 0 of row 0, nor for row 2
    assert asked == [(0, [3]), (1, [0, 3]), (2, [0, 1]), (3, [0, 3])]


def test_coded_columns_are_worded_with_the_source_words_and_kept_in_the_model() -> None:
    frame = small_frame()
    codes = np.where(frame.column("overdraft_days") > 1, 3.0, 1.0)
    frame = frame.with_columns(["savings_code"], codes)
    factors = [
        RiskFactorSpec(name="savings", label="savings", sql="savings_code"),
        RiskFactorSpec(name="dti", label="debt-to-income", sql="debt_to_income"),
    ]
    words = {"savings_code": {"1": "some savings", "3": "no savings / unknown"}, "other": {}}
    model = CompositeRisk(RiskSettings(factors=factors), seed=0).fit(frame, words)
    assert model.value_labels_ == {"savings_code": words["savings_code"]}  # only what it reads
    reasons = model.predict(frame).risk_reasons.tolist()
    assert any("savings 'no savings / unknown', above" in r for r in reasons)
    assert not any("savings 3" in r or "savings 1" in r for r in reasons)
    loaded = load_risk(model.to_files())
    assert loaded.predict(frame).risk_reasons.tolist() == reasons


def test_a_factor_is_replaced_only_by_one_the_data_supports() -> None:
    # transactions without balance_after (no balance_min) and customers with a credit limit
    # but no card payments: the customer's own account balance is the balance signal
    rng = np.random.default_rng(11)
    n = 300
    values = np.column_stack(
        [
            rng.gamma(2.0, 0.4, n),
            rng.normal(500, 2_000, n),
            rng.lognormal(8, 0.5, n),
            rng.lognormal(10.5, 0.4, n),
        ]
    )
    columns = ("debt_to_income", "account_balance", "credit_limit", "annual_income")
    frame = FeatureFrame(np.array([f"C{i}" for i in range(n)], dtype=object), columns, values)
    result = evaluate_factors(frame, BUILTIN_FACTORS)
    used = [s.name for s in result.specs]
    assert "deposit_balance" in used  # credit_limit alone (no payments) supersedes nothing
    assert result.unavailable["lowest_balance"] == (
        "the data has no column balance_min (balance_min needs balance_after on transactions)"
    )
    assert result.unavailable["credit_utilisation"] == "the data has no column payments"
