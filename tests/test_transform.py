"""Robust transform, percentile reference, feature frame and the plain-words helpers."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from finintel.errors import DataError
from finintel.models.explain import feature_label, format_value, population_phrase
from finintel.models.frame import FeatureFrame, load_frame
from finintel.models.transform import RobustTransform


def test_one_outlier_does_not_stretch_the_scale() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(50.0, 10.0, size=(1000, 1))
    with_outlier = np.vstack([base, [[1e9]]])
    units = {"x": "points"}
    a = RobustTransform().fit(base, ["x"], units)
    b = RobustTransform().fit(with_outlier, ["x"], units)
    assert a.specs_[0].scale == pytest.approx(10.0, rel=0.1)
    assert b.specs_[0].scale == pytest.approx(a.specs_[0].scale, rel=0.02)


def test_money_gets_signed_log_and_missing_becomes_the_median() -> None:
    values = np.array([[-100.0, 0.1], [0.0, 0.2], [100.0, np.nan], [1e6, 0.3]])
    t = RobustTransform().fit(values, ["net_flow", "night_share"], {"net_flow": "money"})
    assert [s.log for s in t.specs_] == [True, False]
    out = t.transform(values)
    assert out[2, 1] == 0.0
    assert out[0, 0] < 0 < out[3, 0]


def test_unknown_units_get_log_only_when_strongly_skewed() -> None:
    skewed = np.concatenate([np.zeros(500), np.exp(np.linspace(0, 12, 500))]).reshape(-1, 1)
    flat = np.linspace(0, 1, 1000).reshape(-1, 1)
    assert RobustTransform().fit(skewed, ["cash_advance"], {}).specs_[0].log
    assert not RobustTransform().fit(flat, ["prc_full_payment"], {}).specs_[0].log


def test_constant_column_gets_unit_scale_and_state_round_trips_exactly() -> None:
    values = np.column_stack([np.full(50, 3.0), np.arange(50.0)])
    t = RobustTransform(clip=4.0).fit(values, ["c", "x"], {})
    assert t.specs_[0].scale == 1.0
    again = RobustTransform.from_state(t.to_state())
    assert np.array_equal(again.transform(values), t.transform(values))
    assert np.abs(t.transform(values * 100)).max() == 4.0
    with pytest.raises(DataError, match="expected 2 columns, got 1"):
        t.transform(values[:, :1])


def test_load_frame_reads_numbers_by_customer_and_nulls_as_nan() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE f AS SELECT * FROM (VALUES ('B', 2.5::DECIMAL(18,2), NULL), "
        "('A', 1.0, 7)) t(customer_id, amount, n)"
    )
    frame = load_frame(con, "f")
    assert list(frame.ids) == ["A", "B"]
    assert frame.columns == ("amount", "n")
    assert frame.values[0].tolist() == [1.0, 7.0]
    assert np.isnan(frame.values[1, 1])
    with pytest.raises(DataError, match="no column"):
        frame.select(["missing"])
    extended = frame.with_columns(["risk_score"], np.array([10.0, 20.0]))
    assert extended.column("risk_score").tolist() == [10.0, 20.0]
    with pytest.raises(DataError, match="does not match"):
        FeatureFrame(frame.ids, ("a",), frame.values)


def test_plain_words() -> None:
    assert feature_label("channel_share_atm") == "share via atm"
    assert feature_label("cash_advance_trx") == "cash advance trx"
    assert format_value("debit_total", 12345.678) == "12,346"
    assert format_value("debt_to_income", 0.8234) == "0.82"
    assert format_value("overdraft_days", 3.0) == "3"
    assert format_value("age", float("nan")) == "missing"
    assert population_phrase(95.7) == "above 95% of customers"
    assert population_phrase(3.0) == "below 97% of customers"
