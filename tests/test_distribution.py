"""The one training-distribution class: every read-out against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finintel.errors import DataError
from finintel.models.distribution import TrainingDistribution


def test_ranks_are_exact_in_the_tails() -> None:
    cdf = TrainingDistribution.of_ranks(np.arange(100_000, dtype=np.float64))
    assert len(cdf.knots_) < 1_500  # compact for any number of customers
    top = np.array([99_999.0, 99_990.0, 5.0])
    np.testing.assert_allclose(cdf.right(top), [1e-5, 1e-4, 0.99995])
    np.testing.assert_allclose(cdf.left(np.array([0.0, 9.0, -1.0])), [1e-5, 1e-4, 0.0])
    left, right = cdf.tail_surprise(np.array([-1.0, 99_999.0, 1e9]))
    np.testing.assert_allclose(left, [np.log(1e5), np.log(1e5) * 0, 0.0], atol=1e-12)
    np.testing.assert_allclose(right, [0.0, np.log(1e5), np.log(1e5)], atol=1e-12)


def test_a_distribution_needs_a_value() -> None:
    with pytest.raises(DataError, match="at least one finite value"):
        TrainingDistribution.of_ranks(np.array([np.nan]))
    empty = TrainingDistribution.on_grid(np.array([np.nan, np.nan]), 101, "linear")
    assert empty.empty and empty.median() is None
    assert np.isnan(empty.at_or_below(np.array([1.0]))).all()


def test_midrank_gives_ties_their_middle() -> None:
    scale = TrainingDistribution.on_grid(np.array([0.0] * 8 + [1.0, 2.0]), 1001, "inverted_cdf")
    got = scale.midrank(np.array([0.0, 1.0, 2.0, -1.0, 3.0, np.nan]))
    np.testing.assert_allclose(got[:5], [40.0, 85.0, 95.0, 0.0, 100.0], atol=0.1)
    assert np.isnan(got[5])
    one = TrainingDistribution.on_grid(np.array([3.0, 3.0]), 1001, "inverted_cdf")
    assert one.midrank(np.array([2.0, 3.0, 4.0])).tolist() == [0.0, 50.0, 100.0]


def test_at_or_below_puts_a_tie_at_the_top_of_its_run() -> None:
    values = np.concatenate([np.zeros(80), np.arange(1.0, 21.0)])
    ref = TrainingDistribution.on_grid(values, 101, "linear")
    pct = ref.at_or_below(np.array([0.0, 20.0, 50.0, np.nan]))
    assert pct[0] == pytest.approx(80.0, abs=1.0)
    assert pct[1] == 100.0 and pct[2] == 100.0
    assert np.isnan(pct[3])
    assert ref.median() == 0.0
    assert len(ref.quantiles()) == 101


def test_profile_holds_decile_shares_and_the_missing_share() -> None:
    values = np.concatenate([np.arange(100.0), [np.nan] * 25])
    profile = TrainingDistribution.of_ranks(values).profile_
    assert profile["missing_share"] == 0.2
    assert len(profile["edges"]) == 9 and len(profile["shares"]) == 10
    assert profile["shares"] == [0.1] * 10


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300),
    st.lists(st.floats(-2e6, 2e6), min_size=1, max_size=20),
)
def test_state_round_trip_and_batch_independence(train: list[float], new: list[float]) -> None:
    values, x = np.array(train), np.array(new)
    for dist in (
        TrainingDistribution.of_ranks(values),
        TrainingDistribution.on_grid(values, 1001, "inverted_cdf"),
        TrainingDistribution.on_grid(values, 101, "linear"),
    ):
        again = TrainingDistribution.from_state(dist.to_state())
        for read in ("left", "right", "percentile", "midrank", "at_or_below"):
            batch = getattr(dist, read)(x)
            assert np.array_equal(getattr(again, read)(x), batch, equal_nan=True)
            alone = [getattr(dist, read)(x[i : i + 1])[0] for i in range(len(x))]
            assert np.array_equal(np.array(alone), batch, equal_nan=True), read
        surprise = dist.tail_surprise(x)
        for i in range(len(x)):
            single = dist.tail_surprise(x[i : i + 1])
            assert (single[0][0], single[1][0]) == (surprise[0][i], surprise[1][i])
        assert np.all(np.diff(dist.left(np.sort(x))) >= 0)
