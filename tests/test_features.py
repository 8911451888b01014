"""Customer features: hand-checked values, zeros for customers without transactions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from conftest import rows, run_validate
from finintel.config import FeatureSettings, config_for_files
from finintel.features import FEATURES, FeaturePlan, build_features, plan_features

CUSTOMERS = """customer_id,birth_date,annual_income,customer_since,loan_balance
A,1990-06-15,60000,2020-01-01,30000
B,1960-01-01,,2023-06-01,
Z,2000-01-01,20000,2024-01-01,
"""

# A: 3 debits over Jan-Mar 2024 (one at night, one on a Saturday), 1 salary credit.
# B: 1 debit in March. Z: none.
TRANSACTIONS = """customer_id,timestamp,amount,direction,channel,category,balance_after
A,2024-01-10 12:00:00,100.00,debit,card,food,900
A,2024-02-10 23:30:00,200.00,debit,online,travel,-100
A,2024-03-09 10:00:00,300.00,debit,card,food,-400
A,2024-03-01 09:00:00,1000.00,credit,transfer,salary,600
B,2024-03-31 18:00:00,50.00,debit,card,food,10
"""


def built(
    write: Callable[[str, str], Path], tmp_path: Path, settings: FeatureSettings
) -> tuple[duckdb.DuckDBPyConnection, FeaturePlan]:
    """The `features` table of CUSTOMERS and TRANSACTIONS, and its plan."""
    write("c.csv", CUSTOMERS)
    write("t.csv", TRANSACTIONS)
    con, res = run_validate(config_for_files("c.csv", "t.csv"), tmp_path)
    plan = plan_features(con, settings, res.extra_columns)
    build_features(con, plan)
    return con, plan


@pytest.fixture
def features(write: Callable[[str, str], Path], tmp_path: Path) -> dict[str, dict[str, object]]:
    con, _ = built(write, tmp_path, FeatureSettings(trend_months=3))
    cur = con.execute("SELECT * FROM features ORDER BY customer_id")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_one_row_per_customer_including_inactive(features: dict[str, dict[str, object]]) -> None:
    assert sorted(features) == ["A", "B", "Z"]
    z = features["Z"]
    for name in (
        "tx_count",
        "debit_total",
        "credit_total",
        "debit_avg",
        "active_months",
        "monthly_spend_trend",
        "night_share",
        "overdraft_days",
    ):
        assert z[name] == 0, name
    assert z["recency_days"] is None


def test_activity_and_money(features: dict[str, dict[str, object]]) -> None:
    a = features["A"]
    assert (a["tx_count"], a["debit_count"], a["credit_count"]) == (4, 3, 1)
    assert (a["debit_total"], a["credit_total"], a["net_flow"]) == (600.0, 1000.0, 400.0)
    assert a["debit_avg"] == 200.0 and a["credit_avg"] == 1000.0
    assert a["largest_transaction"] == 1000.0 and a["largest_debit"] == 300.0
    assert a["recency_days"] == 22  # as of 2024-03-31, last transaction 2024-03-09
    assert a["active_months"] == 3
    assert a["peak_month_tx_count"] == 2  # March: 03-01 and 03-09
    assert features["B"]["peak_month_tx_count"] == 1
    # busiest month 2 over the average active month 4 / 3
    assert a["peak_month_ratio"] == pytest.approx(1.5)
    assert features["B"]["peak_month_ratio"] == 1.0 and features["Z"]["peak_month_ratio"] == 0
    # std of (100, 200, 300) (population) / mean 200
    assert a["spend_volatility"] == pytest.approx((20000 / 3) ** 0.5 / 200)


def test_trend_rhythm_and_mix(features: dict[str, dict[str, object]]) -> None:
    a = features["A"]
    # monthly spend 100, 200, 300 over a 3-month window: slope 100 per month
    assert a["monthly_spend_trend"] == pytest.approx(100.0)
    assert a["monthly_spend_avg"] == pytest.approx(200.0)
    assert a["night_share"] == 0.25  # 23:30
    assert a["weekend_share"] == 0.5  # 2024-02-10 and 2024-03-09 are Saturdays
    assert a["channel_share_card"] == 0.5 and a["channel_share_online"] == 0.25
    assert a["category_spend_share_food"] == pytest.approx(400 / 600)
    assert a["category_spend_share_other"] == 0.0


def test_balances_income_and_profile(features: dict[str, dict[str, object]]) -> None:
    a = features["A"]
    assert a["balance_last"] == -400.0  # after the latest transaction (03-09)
    assert a["balance_min"] == -400.0
    assert a["overdraft_days"] == 2
    assert a["spend_to_income"] == pytest.approx(600 * 12 / 3 / 60000)
    assert a["debt_to_income"] == pytest.approx(0.5)
    assert a["age"] == 33
    assert a["tenure_months"] == 50
    assert features["B"]["spend_to_income"] is None  # no income


def test_month_counts_stay_inside_the_trend_window(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    con, _ = built(write, tmp_path, FeatureSettings(trend_months=2))
    query = (
        "SELECT active_months, peak_month_tx_count, monthly_spend_avg, tx_count "
        "FROM features WHERE customer_id = 'A'"
    )
    # January falls outside a Feb-Mar window: it counts in tx_count only
    assert rows(con, query) == [(2, 2, 250.0, 4)]


def test_reference_date_cuts_later_transactions(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    con, plan = built(write, tmp_path, FeatureSettings(as_of=date(2024, 2, 29)))
    assert rows(con, "SELECT tx_count, debit_total FROM features WHERE customer_id = 'A'") == [
        (2, 300.0)
    ]
    assert plan.window_months == 2  # data spans Jan-Feb up to the reference date


def test_features_adapt_to_available_columns(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("t.csv", "customer_id,timestamp,amount\nA,2024-01-01,-5\n")
    con, res = run_validate(config_for_files(None, "t.csv"), tmp_path)
    plan = plan_features(con, FeatureSettings(), res.extra_columns)
    assert "night_share" not in plan.features  # dates only: no time of day
    assert plan.omitted["night_share"] == "the data has no time_of_day"
    assert "balance_min" in plan.omitted and "annual_income" in plan.omitted
    assert {"tx_count", "debit_total", "recency_days", "tenure_months"} <= set(plan.features)


def test_every_feature_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "features.md").read_text()
    for feature in FEATURES:
        assert f"`{feature.name}`" in doc, feature.name
