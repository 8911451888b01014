"""The risk score on real data: German credit (supervised and unsupervised) and Berka.

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
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from finintel.config import load_config
from finintel.models.frame import FeatureFrame, load_frame
from finintel.models.risk import fit_risk
from finintel.models.risk_config import RiskSettings
from finintel.pipeline import run_features

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
def frame_and_labels(name: str, out: Path) -> tuple[FeatureFrame, np.ndarray]:
    cfg, base = load_config(ROOT / "examples" / f"{name}.toml")
    run = run_features(cfg, base, out / name, today=TODAY)
    con = run.validation.con
    frame = load_frame(con, "features")
    known = dict(con.execute("SELECT customer_id, defaulted FROM clean_labels").fetchall())
    labels = np.array([float(known[i]) if i in known else np.nan for i in frame.ids])
    return frame, labels


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_data()
    return tmp_path_factory.mktemp("risk_realdata")


def test_german_credit_scorecard_against_a_one_hot_baseline(out: Path) -> None:
    frame, labels = frame_and_labels("german_credit", out)
    model = fit_risk(frame, labels, RiskSettings(), seed=SEED)
    m = model.metrics_
    assert (m["labelled"], m["unlabelled"], m["bads"]) == (1000, 0, 300)
    cv = m["cross_validation"]
    # measured: scorecard 0.785, baseline on the mapped numeric columns 0.783
    assert cv["roc_auc"] >= 0.78, cv

    # plain logistic regression on the raw CSV: every text column one-hot, numbers
    # standardised, the same five folds (same rows in the same order, same seed)
    raw = pa_csv.read_csv(DATA / "german_credit" / "germancredit.csv").to_pandas()
    y = (raw.pop("creditability") == "bad").to_numpy().astype(int)
    assert np.array_equal(y, labels.astype(int))
    numbers = [c for c in raw.columns if is_numeric_dtype(raw[c])]
    text = [c for c in raw.columns if c not in numbers]
    baseline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), text), (StandardScaler(), numbers)
        ),
        LogisticRegression(max_iter=2000),
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    one_hot_auc = float(np.mean(cross_val_score(baseline, raw, y, cv=folds, scoring="roc_auc")))
    print(
        f"German credit 5-fold ROC-AUC: scorecard {cv['roc_auc']:.3f}, "
        f"one-hot logistic {one_hot_auc:.3f}"
    )
    assert one_hot_auc == pytest.approx(0.78, abs=0.02)
    assert cv["roc_auc"] >= one_hot_auc - 0.01


def test_german_credit_unsupervised_factors(out: Path) -> None:
    frame, labels = frame_and_labels("german_credit", out)
    model = fit_risk(frame, None, RiskSettings(), seed=SEED)
    scores = model.score(frame)
    auc = roc_auc_score(labels, scores.risk_score)
    # measured 0.752, against 0.63 for a min-max composite of a few hand-picked columns
    assert auc >= 0.72, auc
    assert len(model.metrics_["factors"]) == 9


def test_berka_loan_outcome_scorecard(out: Path) -> None:
    frame, labels = frame_and_labels("berka", out)
    model = fit_risk(frame, labels, RiskSettings(), seed=SEED)
    m = model.metrics_
    assert (m["customers"], m["labelled"], m["unlabelled"]) == (5369, 682, 4687)
    assert (m["bads"], m["goods"]) == (76, 606)
    assert m["bad_rate"] == pytest.approx(76 / 682, abs=1e-6)
    cv = m["cross_validation"]
    # trans_prefix.asc covers only 160 of the 682 loan accounts (25 of the 76 bads): the
    # transaction aggregates carry little signal here (measured 0.45, baseline 0.49)
    print(
        f"Berka 5-fold ROC-AUC: scorecard {cv['roc_auc']:.3f}, "
        f"baseline {cv['baseline']['roc_auc']:.3f}"
    )
    assert len(cv["roc_auc_by_fold"]) == 5 and 0.0 <= cv["roc_auc"] <= 1.0
    scores = model.score(frame)
    assert np.isfinite(scores.probability_of_default).all()
