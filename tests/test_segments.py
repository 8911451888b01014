"""Segmentation on the synthetic bank: k chosen by evidence, planted personas recovered, saved
models assign identically, settings respected and wrong inputs refused."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import SyntheticRun
from finintel.errors import ConfigError, DataError, ModelStateError
from finintel.models.base import STATE_FILE
from finintel.models.frame import FeatureFrame
from finintel.models.segments import (
    DEFAULT_FEATURES,
    Segmenter,
    segmentation_columns,
)
from finintel.settings.segments import SegmentSettings

SEED = 42
EXPECTED_NAMES = {
    "steady": "Steady earners",
    "wealthy_inactive": "Wealthy inactives",
    "most_active": "Most active",
    "loan_heavy": "Loan-heavy",
    "young_starter": "Young starters",
}


@pytest.fixture(scope="module")
def segment_frame(synthetic: SyntheticRun) -> FeatureFrame:
    columns = segmentation_columns(SegmentSettings(), synthetic.frame.columns)
    return synthetic.frame.select(columns)


@pytest.fixture(scope="module")
def fitted(segment_frame: FeatureFrame) -> Segmenter:
    return Segmenter(SegmentSettings(), seed=SEED).fit(segment_frame)


@pytest.fixture(scope="module")
def small(segment_frame: FeatureFrame) -> FeatureFrame:
    """1,500 customers, for the tests that fit several times."""
    return segment_frame.rows(np.arange(0, len(segment_frame), 4))


# ------------------------------------------------------------------ columns


def test_default_columns_are_the_behavioural_set(synthetic: SyntheticRun) -> None:
    columns = segmentation_columns(SegmentSettings(), synthetic.frame.columns)
    assert columns == list(DEFAULT_FEATURES)
    # the pipeline appends the model scores; the default does not use them
    extended = [*synthetic.frame.columns, "risk_score", "anomaly_score"]
    assert segmentation_columns(SegmentSettings(), extended) == list(DEFAULT_FEATURES)


def test_default_columns_adapt_to_customer_only_data() -> None:
    card = ["account_balance", "credit_limit", "purchases", "cash_advance", "tenure"]
    assert segmentation_columns(SegmentSettings(), [*card, "risk_score"]) == card
    # a few default columns present: only those
    some = ["tx_count", "age", "annual_income", "tenure_months", "loan_count", "purchases"]
    assert segmentation_columns(SegmentSettings(), some) == [
        "tx_count",
        "annual_income",
        "age",
        "tenure_months",
        "loan_count",
    ]


def test_configured_columns_may_include_scores_and_unknown_ones_are_refused() -> None:
    settings = SegmentSettings(features=["annual_income", "debit_total", "risk_score"])
    available = ["annual_income", "debit_total", "age", "risk_score", "anomaly_score"]
    assert segmentation_columns(settings, available) == [
        "annual_income",
        "debit_total",
        "risk_score",
    ]
    with pytest.raises(ConfigError, match=r"unknown column\(s\) \['salary', 'wealth'\]"):
        segmentation_columns(SegmentSettings(features=["age", "salary", "wealth"]), available)
    with pytest.raises(ConfigError, match="more than once"):
        segmentation_columns(SegmentSettings(features=["age", "age"]), available)


# ------------------------------------------------------------------ planted personas


@pytest.mark.slow
def test_k_is_chosen_by_evidence_and_is_five(fitted: Segmenter) -> None:
    selection = fitted.metrics_["k_selection"]
    assert selection["mode"] == "auto"
    assert selection["chosen_k"] == 5 == fitted.metrics_["k"] == len(fitted.segments_)
    table = selection["table"]
    assert [row["k"] for row in table] == list(range(2, 11))
    for row in table:
        assert set(row) == {
            "k",
            "inertia",
            "explained_gain",
            "silhouette",
            "calinski_harabasz",
            "davies_bouldin",
            "stability",
            "stability_sd",
            "min_share",
            "eligible",
        }
        assert 0 <= row["stability"] <= 1 and -1 <= row["silhouette"] <= 1
    chosen = table[3]
    assert chosen["eligible"] and chosen["stability"] >= 0.9
    # the elbow: the 5th segment still explains >= 4% of the spread, the 6th does not
    assert chosen["explained_gain"] >= 0.04 > table[4]["explained_gain"]
    assert "5 segments" in selection["reason"] and "stable" in selection["reason"]
    assert "bootstrap" in selection["rule"]
    assert fitted.metrics_["stability"] == chosen["stability"]
    json.dumps(fitted.metrics_, allow_nan=False)


@pytest.mark.slow
def test_segments_recover_the_planted_personas(
    fitted: Segmenter, segment_frame: FeatureFrame, synthetic: SyntheticRun
) -> None:
    assignment = fitted.predict(segment_frame)
    ari = adjusted_rand_score(synthetic.persona, assignment.segment_id)
    assert ari >= 0.8, ari
    for persona, name in EXPECTED_NAMES.items():
        names = Counter(assignment.segment_name[synthetic.persona == persona])
        assert names.most_common(1)[0][0] == name, (persona, names)


@pytest.mark.slow
def test_segment_profiles_ids_and_names(fitted: Segmenter, segment_frame: FeatureFrame) -> None:
    segments = fitted.segments_
    assert [s.id for s in segments] == [1, 2, 3, 4, 5]
    sizes = [s.size for s in segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(segment_frame)
    assert sum(s.share for s in segments) == pytest.approx(1.0)
    assert len({s.name for s in segments}) == 5
    assignment = fitted.predict(segment_frame)
    assert np.bincount(assignment.segment_id)[1:].tolist() == sizes
    loan = next(s for s in segments if s.name == "Loan-heavy")
    assert loan.profile["loan_count"]["value"] >= 1 and loan.profile["loan_count"]["z"] > 1
    assert "risk monitoring of repayments" in loan.actions
    assert loan.description and len(loan.traits) == 3
    wealthy = next(s for s in segments if s.name == "Wealthy inactives")
    assert wealthy.profile["tx_count"]["z"] < -0.5
    assert set(wealthy.profile) == set(segment_frame.columns)


# ------------------------------------------------------------------ determinism and files


def test_same_seed_gives_identical_segments(small: FeatureFrame) -> None:
    settings = SegmentSettings(k_max=6, bootstrap_rounds=4)
    first = Segmenter(settings, seed=7).fit(small)
    second = Segmenter(settings, seed=7).fit(small)
    a, b = first.predict(small), second.predict(small)
    assert np.array_equal(a.segment_id, b.segment_id)
    assert a.segment_name.tolist() == b.segment_name.tolist()
    assert first.metrics_ == second.metrics_
    assert first.to_files() == second.to_files()


@pytest.mark.slow
def test_saved_model_assigns_identically(fitted: Segmenter, segment_frame: FeatureFrame) -> None:
    files = fitted.to_files()
    assert list(files) == [STATE_FILE]
    json.loads(files[STATE_FILE])
    loaded = Segmenter.from_files(files)
    a, b = fitted.predict(segment_frame), loaded.predict(segment_frame)
    assert a.segment_id.dtype == np.int64
    assert np.array_equal(a.segment_id, b.segment_id)
    assert a.segment_name.tolist() == b.segment_name.tolist()
    assert loaded.segments_ == fitted.segments_
    assert loaded.metrics_ == fitted.metrics_
    assert np.array_equal(loaded.centroids_, fitted.centroids_)
    assert loaded.to_files() == files
    # new customers (here: perturbed copies) get the same segments from both
    noisy = segment_frame.values * 1.01
    frame = FeatureFrame(segment_frame.ids, segment_frame.columns, noisy)
    assert np.array_equal(fitted.predict(frame).segment_id, loaded.predict(frame).segment_id)


def test_missing_file_is_refused() -> None:
    with pytest.raises(ModelStateError, match=STATE_FILE):
        Segmenter.from_files({})


# ------------------------------------------------------------------ settings and inputs


def test_fixed_k_is_respected_and_its_evidence_reported(small: FeatureFrame) -> None:
    seg = Segmenter(SegmentSettings(k=3, bootstrap_rounds=3), seed=1).fit(small)
    selection = seg.metrics_["k_selection"]
    assert selection["mode"] == "fixed" and selection["chosen_k"] == 3
    assert [row["k"] for row in selection["table"]] == [3]
    assert selection["table"][0]["stability"] is not None
    assert "fixed in the settings" in selection["reason"]
    assert set(seg.predict(small).segment_id.tolist()) == {1, 2, 3}


def test_large_data_is_fitted_on_a_sample_and_everyone_assigned(small: FeatureFrame) -> None:
    settings = SegmentSettings(sample_size=500, evaluation_size=300, k=4, bootstrap_rounds=3)
    seg = Segmenter(settings, seed=3).fit(small)
    assert seg.metrics_["fit_sample"] == 500 and seg.metrics_["evaluation_sample"] == 300
    assert seg.metrics_["customers"] == len(small)
    assignment = seg.predict(small)
    assert len(assignment.segment_id) == len(small)
    assert sum(s.size for s in seg.segments_) == len(small)


@pytest.mark.slow
def test_wrong_columns_are_refused(fitted: Segmenter, segment_frame: FeatureFrame) -> None:
    with pytest.raises(DataError, match=r"missing \['night_share'\]"):
        fitted.predict(segment_frame.select(list(segment_frame.columns)[:-1]))
    reordered = [*list(segment_frame.columns)[1:], segment_frame.columns[0]]
    with pytest.raises(DataError, match="order differs"):
        fitted.predict(segment_frame.select(reordered))


def test_too_few_customers_are_refused(small: FeatureFrame) -> None:
    with pytest.raises(DataError, match="at least 4 customers"):
        Segmenter(SegmentSettings(), seed=0).fit(small.rows(np.arange(3)))


def test_constant_columns_are_reported(small: FeatureFrame) -> None:
    values = np.column_stack([small.values, np.full(len(small), 7.0)])
    frame = FeatureFrame(small.ids, (*small.columns, "flat"), values)
    seg = Segmenter(SegmentSettings(k=3, bootstrap_rounds=2), seed=0).fit(frame)
    assert seg.metrics_["constant_columns"] == ["flat"]
    assert all(s.profile["flat"]["value"] == 7.0 for s in seg.segments_)
