"""The risk score on real data: German credit (supervised and unsupervised), CC GENERAL
(unsupervised card statements, by name and by role) and Berka.

Without ../shared/data the tests skip, except on CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from pandas.api.types import is_numeric_dtype
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from finintel.config import load_config
from finintel.models.frame import FeatureFrame, load_frame
from finintel.models.risk import fit_risk
from finintel.pipeline import run_features
from finintel.settings.risk import RiskSettings

pytestmark = pytest.mark.realdata

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TODAY = date(2026, 11, 21)
SEED = 0


def require_data() -> None:
    if not DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"public data sets not found at {DATA} (CI=true: this is a failure)")
        pytest.skip(f"public data sets not found at {DATA}")


@cache
def frame_and_labels(name: str, out: Path) -> tuple[FeatureFrame, np.ndarray, RiskSettings, int]:
    """The example's feature frame, labels, `[risk]` settings and seed, as the pipeline has them."""
    cfg, base = load_config(ROOT / "examples" / f"{name}.toml")
    run = run_features(cfg, base, out / name, today=TODAY)
    con = run.validation.con
    frame = load_frame(con, "features")
    labels = np.full(len(frame), np.nan)
    if cfg.labels is not None:
        known = dict(con.execute("SELECT customer_id, defaulted FROM clean_labels").fetchall())
        labels = np.array([float(known[i]) if i in known else np.nan for i in frame.ids])
    return frame, labels, cfg.risk, cfg.seed


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_data()
    return tmp_path_factory.mktemp("risk_realdata")


def one_hot_auc(labels: np.ndarray, seed: int, repeats: int) -> float:
    """Plain logistic regression on the raw CSV (all 20 attributes: text one-hot, numbers
    standardised), cross-validated on the same folds as the scorecard (same rows, same order)."""
    raw = pa_csv.read_csv(DATA / "german_credit" / "germancredit.csv").to_pandas()
    y = (raw.pop("creditability") == "bad").to_numpy().astype(int)
    assert np.array_equal(y, labels.astype(int))
    assert raw.shape[1] == 20
    numbers = [c for c in raw.columns if is_numeric_dtype(raw[c])]
    text = [c for c in raw.columns if c not in numbers]
    baseline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), text), (StandardScaler(), numbers)
        ),
        LogisticRegression(max_iter=2000),
    )
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=seed)
    return float(np.mean(cross_val_score(baseline, raw, y, cv=folds, scoring="roc_auc")))


@pytest.mark.slow
def test_german_credit_scorecard_against_a_one_hot_baseline(out: Path) -> None:
    frame, labels, settings, seed = frame_and_labels("german_credit", out)
    assert seed == 42  # the seed `finintel run` uses for this example
    assert settings.categorical_columns == [
        "purpose_code",
        "other_debtors_code",
        "job_code",
        "other_installment_plans_code",
        "housing_code",
    ]
    assert settings.exclude_columns == ["personal_status_code"]
    model = fit_risk(frame, labels, settings, seed=seed)
    m = model.metrics_
    assert "personal_status_code" not in m["columns_used"]
    assert m["protected"]["left_out"] == ["age"]  # a protected attribute by default
    assert (m["labelled"], m["unlabelled"], m["bads"]) == (1000, 0, 300)
    selection = m["model_selection"]
    rows = {r["model"]: r for r in selection["candidates"]}
    assert set(rows) == {"scorecard", "logistic", "boosting"}
    for r in rows.values():
        assert len(r["roc_auc_by_fold"]) == 15  # 5 folds x 3 repeats, the same for all
    best = max(r["roc_auc"] for r in rows.values())
    cv = m["cross_validation"]
    assert cv["model"] == selection["delivered"] == m["model"]
    one_hot = one_hot_auc(labels, seed, cv["repeats"])
    print(
        f"German credit 5-fold x 3 ROC-AUC, seed {seed}: "
        + ", ".join(f"{k} {r['roc_auc']:.4f}" for k, r in rows.items())
        + f"; delivered {cv['model']}; one-hot logistic on the raw CSV {one_hot:.4f}"
    )
    # measured at seed 42: scorecard 0.7786, logistic 0.7928, boosting 0.7865 (logistic
    # delivered: the scorecard is more than 0.01 below it); one-hot on the raw CSV 0.7758
    assert cv["roc_auc"] >= best - settings.tolerance
    assert cv["roc_auc"] >= 0.79, cv
    assert one_hot == pytest.approx(0.78, abs=0.02)
    assert cv["roc_auc"] >= one_hot
    card = fit_risk(frame, labels, settings.model_copy(update={"model": "scorecard"}), seed=seed)
    assert "purpose_code" in card.metrics_["categorical_variables"]
    purpose = [r for r in card.metrics_["scorecard"] if r["variable"] == "purpose_code"]
    assert purpose[-2:][0]["bin"] == "other categories" and purpose[-1]["bin"] == "missing"
    scores = model.predict(frame)
    assert ((scores.probability_of_default > 0) & (scores.probability_of_default < 1)).all()
    assert scores.probability_of_default.mean() == pytest.approx(0.3, abs=0.01)


def test_german_credit_unsupervised_factors(out: Path) -> None:
    frame, labels, settings, _ = frame_and_labels("german_credit", out)
    model = fit_risk(frame, None, settings, seed=SEED)
    scores = model.predict(frame)
    auc = roc_auc_score(labels, scores.risk_score)
    # measured 0.752 before and after the role factors (no roles are declared here), against
    # 0.63 for a min-max composite of a few hand-picked columns
    assert auc >= 0.75, auc
    assert [f["name"] for f in model.metrics_["factors"]] == [
        "checking_account",
        "loan_duration",
        "credit_amount",
        "savings",
        "employment_length",
        "property",
        "installment_rate",
        "other_installments",
        "not_home_owner",
    ]


def test_cc_general_card_statements_by_name_and_by_role(out: Path) -> None:
    frame, _, settings, _ = frame_and_labels("cc_general", out)
    by_name = fit_risk(frame, None, settings, seed=SEED)
    assert [f["name"] for f in by_name.metrics_["factors"]] == [
        "credit_utilisation",
        "cash_advance_share",
        "cash_advance_frequency",
        "payment_to_minimum",
        "full_payment_share",
    ]
    unavailable = by_name.metrics_["unavailable_factors"]
    # the balance of card statements is money owed: the readings as money held stand aside
    assert unavailable["deposit_balance"] == "replaced by credit_utilisation"
    assert unavailable["overdraft_utilisation"] == "replaced by credit_utilisation"
    # the same statements declared by role: the same measures, and the same ranking
    roles = {
        "account_balance": "balance",
        "payments": "payment",
        "minimum_payments": "minimum_due",
        "prc_full_payment": "payment_ratio",
    }
    by_role = fit_risk(frame, None, settings.model_copy(update={"roles": roles}), seed=SEED)
    factors = {f["name"]: f["role"] for f in by_role.metrics_["factors"]}
    assert factors == {
        "cash_advance_share": None,
        "cash_advance_frequency": None,
        "utilisation": "balance / limit",
        "payment_to_minimum_due": "payment / minimum_due",
        "payment_ratio": "payment_ratio",
    }
    assert by_role.metrics_["roles"]["canonical_parts"] == {"limit": "credit_limit"}
    a, b = by_name.predict(frame).risk_score, by_role.predict(frame).risk_score
    # the same measures with the same weights: measured correlation 1.000
    assert np.corrcoef(a, b)[0, 1] > 0.999


@pytest.mark.slow
def test_berka_loan_outcome_delivers_no_below_chance_model(out: Path) -> None:
    frame, labels, settings, seed = frame_and_labels("berka", out)
    model = fit_risk(frame, labels, settings, seed=seed)
    m = model.metrics_
    # trans_prefix.asc covers only 160 of the 682 loan accounts (25 of the 76 bads): the
    # transaction aggregates carry little signal here (measured at seed 42: scorecard 0.55,
    # logistic 0.53, boosting 0.51), so no supervised model passes the gate and the run falls
    # back to the unsupervised composite, saying why
    assert model.mode == "unsupervised"
    fallback = m["supervised_fallback"]
    assert (fallback["customers"], fallback["labelled"], fallback["unlabelled"]) == (
        5369,
        682,
        4687,
    )
    assert (fallback["bads"], fallback["goods"]) == (76, 606)
    rows = fallback["model_selection"]["candidates"]
    print(
        "Berka 5-fold x 3 ROC-AUC: " + ", ".join(f"{r['model']} {r['roc_auc']:.3f}" for r in rows)
    )
    assert [r["model"] for r in rows] == ["scorecard", "logistic", "boosting"]
    assert all(not r["passed_gate"] and len(r["roc_auc_by_fold"]) == 15 for r in rows)
    assert "no supervised model passed the gate" in fallback["reason"]
    scores = model.predict(frame)
    assert np.isnan(scores.probability_of_default).all()
    known = np.isfinite(labels)
    # the delivered score does not rank the known outcomes the wrong way round
    assert roc_auc_score(labels[known], scores.risk_score[known]) > 0.5
