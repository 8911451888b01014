"""Segmentation on the synthetic bank: default columns planned from the data, k chosen by
evidence with a confidence bound, planted personas recovered, the same k for any seed, an
honest flag when nothing is stable, saved models assign identically, settings respected and
wrong inputs refused."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

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
    default_candidates,
    mix_block,
    plan_columns,
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


def test_default_columns_cover_levels_and_every_share(synthetic: SyntheticRun) -> None:
    columns = segmentation_columns(SegmentSettings(), synthetic.frame.columns)
    assert columns == default_candidates(synthetic.frame.columns)
    core = [c for c in DEFAULT_FEATURES if c in synthetic.frame.columns]
    assert columns[: len(core)] == core  # the core set first, in the catalogue's order
    shares = [c for c in synthetic.frame.columns if c.startswith(("channel_share_", "category_"))]
    assert len(shares) >= 10 and set(shares) <= set(columns)  # every channel and category share
    assert {"debit_total", "account_balance", "loan_exposure"} <= set(columns)  # more levels
    # the pipeline appends the model scores; the default does not use them
    extended = [*synthetic.frame.columns, "risk_score", "anomaly_score"]
    assert segmentation_columns(SegmentSettings(), extended) == columns


def test_plan_drops_near_constant_and_redundant_columns_and_weighs_blocks() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=400)
    rare = np.where(np.arange(400) < 4, 1.0, 0.0)  # 1% differ from the most common value
    mix = rng.dirichlet([1, 1, 1, 1], size=400)
    values = np.column_stack([x, np.exp(x), rng.normal(size=400), rare, mix])
    names = ["a", "b", "c", "rare", *(f"channel_share_{c}" for c in "wxyz")]
    settings = SegmentSettings(mix_block_weight=2.0)
    plan = plan_columns(values, names, settings)
    assert plan.kept == ["a", "c", *names[4:]]
    dropped = {d["column"]: d for d in plan.dropped}
    assert dropped["b"]["reason"] == "redundant" and dropped["b"]["with"] == "a"
    assert dropped["b"]["spearman"] == pytest.approx(1.0)
    assert dropped["rare"]["reason"] == "near-constant" and "99.0%" in dropped["rare"]["detail"]
    weights = dict(zip(names, plan.weights, strict=True))
    assert weights["a"] == weights["c"] == 1.0 and weights["b"] == weights["rare"] == 0.0
    # the four share columns together weigh as much as two ordinary columns
    assert sum(weights[c] ** 2 for c in names[4:]) == pytest.approx(2.0)
    assert plan.blocks == [
        {
            "name": "channel mix",
            "columns": names[4:],
            "counts_as": 2.0,
            "column_weight": pytest.approx(np.sqrt(0.5)),
        }
    ]
    assert mix_block("category_spend_share_rent") == "category mix"
    # a lower threshold drops more; the earlier column of a pair is always the one kept
    strict = plan_columns(values, ["b", "a", "c"], SegmentSettings(max_correlation=0.5))
    assert strict.kept == ["b", "c"]


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
    metrics = fitted.metrics_
    selection = metrics["k_selection"]
    assert selection["mode"] == "auto"
    assert selection["chosen_k"] == 5 == metrics["k"] == len(fitted.segments_)
    assert metrics["stable"] is True and selection["stable"] is True
    assert metrics["note"].startswith("The 5 segments are stable")
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
            "stability_low",
            "stability_high",
            "rounds",
            "restarts",
            "verdict",
            "min_share",
            "eligible",
        }
        assert 0 <= row["stability"] <= 1 and -1 <= row["silhouette"] <= 1
        assert row["stability_low"] <= row["stability"] <= row["stability_high"]
        assert row["rounds"] >= 10 and row["verdict"] in {"stable", "unstable", "undecided"}
    chosen = table[3]
    # the choice rests on at least 20 resamples and the lower confidence bound clears the bar
    assert chosen["eligible"] and chosen["verdict"] == "stable" and chosen["rounds"] >= 20
    assert chosen["stability_low"] >= 0.9
    # the elbow: the 5th segment still explains >= 4% of the spread, the 6th does not
    assert chosen["explained_gain"] >= 0.04 > table[4]["explained_gain"]
    assert "5 segments" in selection["reason"] and "stable" in selection["reason"]
    assert "lower confidence bound" in selection["rule"]
    assert metrics["stability"] == chosen["stability"]
    assert metrics["stability_low"] == chosen["stability_low"]
    json.dumps(metrics, allow_nan=False)


@pytest.mark.slow
def test_feature_selection_is_recorded(fitted: Segmenter, segment_frame: FeatureFrame) -> None:
    selection = fitted.metrics_["feature_selection"]
    assert selection["mode"] == "default" and "Spearman" in selection["rule"]
    assert selection["candidates"] == list(segment_frame.columns) == fitted.metrics_["columns"]
    dropped = {d["column"]: d for d in selection["dropped"]}
    # debit_total is monthly spend times the months: the same ranking, so it is dropped
    assert dropped["debit_total"]["reason"] == "redundant"
    assert dropped["debit_total"]["with"] == "monthly_spend_avg"
    assert all(abs(d["spearman"]) > 0.9 for d in dropped.values() if d["reason"] == "redundant")
    assert set(selection["kept"]) | set(dropped) == set(segment_frame.columns)
    assert selection["kept"][:3] == ["tx_count", "recency_days", "credit_count"]
    blocks = {b["name"]: b for b in selection["blocks"]}
    assert set(blocks) == {"channel mix", "category mix"}
    for block in blocks.values():
        squared = sum(selection["weights"][c] ** 2 for c in block["columns"])
        assert squared == pytest.approx(4.0)  # each block weighs like four columns
    assert all(selection["weights"][c] == 0 for c in dropped)


@pytest.mark.slow
def test_segments_recover_the_planted_personas(
    fitted: Segmenter, segment_frame: FeatureFrame, synthetic: SyntheticRun
) -> None:
    assignment = fitted.predict(segment_frame)
    ari = adjusted_rand_score(synthetic.persona, assignment.segment_id)
    assert ari >= 0.88, ari
    for persona, name in EXPECTED_NAMES.items():
        names = Counter(assignment.segment_name[synthetic.persona == persona])
        assert names.most_common(1)[0][0] == name, (persona, names)


@pytest.mark.slow
def test_the_same_k_and_segments_for_any_seed(
    fitted: Segmenter, segment_frame: FeatureFrame
) -> None:
    reference = fitted.predict(segment_frame).segment_id
    for seed in (3, 11):
        other = Segmenter(SegmentSettings(), seed=seed).fit(segment_frame)
        assert other.metrics_["k"] == fitted.metrics_["k"]
        assert adjusted_rand_score(reference, other.predict(segment_frame).segment_id) >= 0.95


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
    last = segment_frame.columns[-1]
    with pytest.raises(DataError, match=rf"missing \['{last}'\]"):
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
    # the bank's channel_share_other is constant too: no channel falls outside the top ones
    assert seg.metrics_["constant_columns"] == ["channel_share_other", "flat"]
    assert all(s.profile["flat"]["value"] == 7.0 for s in seg.segments_)
    selection = seg.metrics_["feature_selection"]
    assert {"column": "flat", "reason": "near-constant"}.items() <= selection["dropped"][-1].items()
    assert selection["weights"]["flat"] == 0.0 and "flat" not in selection["kept"]


def test_configured_columns_are_used_as_given(small: FeatureFrame) -> None:
    columns = ["tx_count", "debit_count", "monthly_spend_avg", "debit_total"]  # redundant pairs
    settings = SegmentSettings(features=columns, k=3, bootstrap_rounds=3)
    seg = Segmenter(settings, seed=0).fit(small.select(columns))
    selection = seg.metrics_["feature_selection"]
    assert selection["mode"] == "configured" and selection["dropped"] == []
    assert selection["kept"] == columns and set(selection["weights"].values()) == {1.0}


# ------------------------------------------------------------------ no structure, more resamples


@pytest.fixture(scope="module")
def structureless() -> FeatureFrame:
    """600 customers spread evenly over four independent columns: no groups at all."""
    rng = np.random.default_rng(20261121)
    values = rng.uniform(size=(600, 4))
    ids = np.array([f"C{i:04d}" for i in range(600)], dtype=object)
    return FeatureFrame(ids, ("age", "annual_income", "credit_score", "employment_years"), values)


def test_no_stable_k_is_said_plainly_and_falls_back(structureless: FeatureFrame) -> None:
    settings = SegmentSettings(k_max=6, screen_rounds=6, bootstrap_rounds=10)
    seg = Segmenter(settings, seed=0).fit(structureless)
    metrics = seg.metrics_
    assert metrics["stable"] is False and metrics["k_selection"]["stable"] is False
    assert metrics["k"] == settings.fallback_k == 3 == len(seg.segments_)
    assert metrics["note"].startswith("No k from 2 to 6 was stable")
    assert "a partition of the customers, not a structure found in the data" in metrics["note"]
    assert "fallback_k" in metrics["k_selection"]["reason"]
    assert not any(row["eligible"] for row in metrics["k_selection"]["table"])
    # the elbow was retried with three times more restarts before it was given up
    retries = [a for a in metrics["k_selection"]["attempts"] if a["step"].startswith("three")]
    assert len(retries) == 1 and retries[0]["restarts"] == 3 * settings.bootstrap_n_init


class _Scripted(Segmenter):
    """A segmenter whose resample agreements are given: 1.0 and 0.79 in turn (mean 0.895)."""

    def _resample_scores(
        self, search: Any, k: int, start: int, count: int, restarts: int
    ) -> list[float]:
        return [1.0 if b % 2 == 0 else 0.79 for b in range(start, start + count)]


def test_undecided_bounds_get_more_resamples_then_the_mean_decides(small: FeatureFrame) -> None:
    settings = SegmentSettings(k=4, screen_rounds=4, bootstrap_rounds=8, bootstrap_max_rounds=20)
    seg = _Scripted(settings, seed=0).fit(small)
    row = seg.metrics_["k_selection"]["table"][0]
    assert row["rounds"] == 20 and row["verdict"] == "borderline"
    assert row["stability"] == pytest.approx(0.895)
    assert row["stability_low"] < 0.9 < row["stability_high"]
    assert row["eligible"] is False and seg.metrics_["stable"] is False  # the mean is below 0.9
    steps = [(a["step"], a["rounds"]) for a in seg.metrics_["k_selection"]["attempts"]]
    assert steps == [("more resamples", 20)]  # 8, then 4 more at a time while undecided
    assert "is not stable" in seg.metrics_["note"]


def test_a_state_without_weights_uses_every_column(small: FeatureFrame) -> None:
    columns = ["tx_count", "annual_income", "age"]
    seg = Segmenter(SegmentSettings(features=columns, k=3, bootstrap_rounds=2), seed=0)
    seg.fit(small.select(columns))
    state = json.loads(seg.to_files()[STATE_FILE])
    del state["weights"]
    loaded = Segmenter.from_files({STATE_FILE: json.dumps(state).encode()})
    assert loaded.weights_.tolist() == [1.0, 1.0, 1.0]
    frame = small.select(columns)
    assert np.array_equal(loaded.predict(frame).segment_id, seg.predict(frame).segment_id)
