"""Typology features: hand-checked values on small banks, edge cases, and row-order properties.

The banks are written straight into canonical `clean_*` tables, as validation leaves them, so
each case states exactly which transactions the features see.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import run_validate
from finintel.config import FeatureSettings, config_for_files
from finintel.features import CATALOG, FeaturePlan, build_features, plan_features
from finintel.features.catalog import ROLES, TYPOLOGY_FEATURES
from finintel.schema import TABLES
from finintel.sql import connect

# (customer_id, timestamp, amount, direction, channel, category)
Tx = tuple[str, str, str, str, str | None, str | None]
Features = dict[str, dict[str, object]]

TYPOLOGY_NAMES = [f.name for f in TYPOLOGY_FEATURES]


def bank(
    customers: Sequence[dict[str, object]], transactions: Sequence[Tx]
) -> duckdb.DuckDBPyConnection:
    """A connection holding canonical clean tables with these customers and transactions."""
    con = connect()
    for name in ("customers", "transactions", "loans"):
        columns = ", ".join(f"{c.name} {c.sql_type}" for c in TABLES[name].columns)
        con.execute(f"CREATE TABLE clean_{name} ({columns})")
    for customer in customers:
        names = ", ".join(customer)
        marks = ", ".join("?" for _ in customer)
        con.execute(
            f"INSERT INTO clean_customers ({names}) VALUES ({marks})", list(customer.values())
        )
    if transactions:
        con.executemany(
            "INSERT INTO clean_transactions (customer_id, timestamp, amount, direction, channel, "
            "category) VALUES (?, CAST(? AS TIMESTAMP), CAST(? AS DECIMAL(18,2)), ?, ?, ?)",
            [list(t) for t in transactions],
        )
    return con


def features(
    con: duckdb.DuckDBPyConnection, feature_settings: FeatureSettings | None = None
) -> Features:
    """The feature rows by customer_id."""
    plan = plan_features(con, feature_settings or FeatureSettings())
    build_features(con, plan)
    cur = con.execute("SELECT * FROM features ORDER BY customer_id")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def ids(*names: str) -> list[dict[str, object]]:
    return [{"customer_id": n} for n in names]


def credit(customer: str, stamp: str, amount: str, channel: str | None = "transfer") -> Tx:
    return (customer, stamp, amount, "credit", channel, None)


def debit(customer: str, stamp: str, amount: str, channel: str | None = "transfer") -> Tx:
    return (customer, stamp, amount, "debit", channel, None)


# ------------------------------------------------------------------------------ pass-through

PASS_THROUGH = [
    # matched once although two debits qualify
    credit("P", "2024-03-01 10:00:00", "1000.00"),
    debit("P", "2024-03-01 11:00:00", "950.00"),
    debit("P", "2024-03-01 12:00:00", "960.00"),
    # 24 h and 1 s later: too late
    credit("P", "2024-03-05 09:00:00", "2000.00"),
    debit("P", "2024-03-06 09:00:01", "1900.00"),
    # 89% and 101% of the credit: outside 90-100%
    credit("P", "2024-03-10 10:00:00", "1000.00"),
    debit("P", "2024-03-10 11:00:00", "890.00"),
    debit("P", "2024-03-10 12:00:00", "1010.00"),
    # exactly 90%, booked at the same second as the credit: matched
    credit("P", "2024-03-15 10:00:00", "500.00"),
    debit("P", "2024-03-15 10:00:00", "450.00"),
    # a debit before the credit does not count
    debit("P", "2024-03-20 09:00:00", "700.00"),
    credit("P", "2024-03-20 10:00:00", "700.00"),
    # exactly 24 h later, all of it: matched
    credit("P", "2024-03-25 08:00:00", "300.00"),
    debit("P", "2024-03-26 08:00:00", "300.00"),
    # another customer's debit never completes Q's credit
    credit("Q", "2024-03-01 10:00:00", "100.00"),
    debit("P", "2024-03-01 10:30:00", "95.00"),
]


def test_pass_through_matching_rules() -> None:
    rows = features(bank(ids("P", "Q", "Z"), PASS_THROUGH))
    p = rows["P"]
    # matched: 1000 (03-01), 500 (03-15), 300 (03-25); credits 1000+2000+1000+500+700+300
    assert p["pass_through_count"] == 3
    assert p["pass_through_share"] == pytest.approx(1800 / 5500)
    assert p["pass_through_largest"] == 1000.0
    assert (rows["Q"]["pass_through_count"], rows["Q"]["pass_through_share"]) == (0, 0.0)
    z = rows["Z"]  # no transactions at all
    assert (z["pass_through_count"], z["pass_through_share"], z["pass_through_largest"]) == (
        0,
        0.0,
        0.0,
    )


def test_one_debit_can_complete_several_credits() -> None:
    rows = features(
        bank(
            ids("A"),
            [
                credit("A", "2024-05-01 10:00:00", "1000.00"),
                credit("A", "2024-05-01 11:00:00", "1000.00"),
                # identical credits are two credits
                credit("A", "2024-05-02 09:00:00", "200.00"),
                credit("A", "2024-05-02 09:00:00", "200.00"),
                debit("A", "2024-05-01 12:00:00", "950.00"),
                debit("A", "2024-05-02 10:00:00", "190.00"),
            ],
        )
    )
    assert rows["A"]["pass_through_count"] == 4
    assert rows["A"]["pass_through_share"] == 1.0
    assert rows["A"]["pass_through_largest"] == 1000.0


def _bucket_start_near(day: date) -> datetime:
    """A start of the engine's pass-through time buckets (4 x 24 h from 0001-01-01)."""
    days = day.toordinal() - 1
    return datetime.fromordinal(days - days % 4 + 1)


def test_pass_through_across_a_time_bucket_boundary() -> None:
    edge = _bucket_start_near(date(2024, 6, 10))

    def stamp(hours: float) -> str:
        return (edge + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")

    rows = features(
        bank(
            ids("B"),
            [
                credit("B", stamp(-23), "400.00"),
                debit("B", stamp(0.5), "380.00"),  # 23.5 h later, in the next bucket
                credit("B", stamp(-1), "600.00"),
                debit("B", stamp(24), "600.00"),  # 25 h later: too late
            ],
        )
    )
    assert (rows["B"]["pass_through_count"], rows["B"]["pass_through_largest"]) == (1, 400.0)


def test_pass_through_follows_its_settings() -> None:
    rows = features(
        bank(ids("P", "Q"), PASS_THROUGH),
        FeatureSettings(pass_through_hours=48, pass_through_min_share=0.85),
    )
    # now also 2000 -> 1900 (24 h 1 s) and 1000 -> 890 (89%)
    assert rows["P"]["pass_through_count"] == 5
    assert rows["P"]["pass_through_share"] == pytest.approx(4800 / 5500)


STAMP_SECONDS = st.integers(min_value=-3 * 86_400, max_value=3 * 86_400)
AMOUNTS = st.sampled_from(["100.00", "95.00", "90.00", "89.99", "100.01", "99.99", "50.00"])
RANDOM_TX = st.tuples(
    st.sampled_from(["A", "B"]), STAMP_SECONDS, AMOUNTS, st.sampled_from(["credit", "debit"])
)


def _expected_pass_through(
    records: Sequence[tuple[str, int, str, str]], customer: str
) -> tuple[int, Decimal]:
    """Brute force over every credit and debit pair: (count, largest) of matched credits."""
    mine = [r for r in records if r[0] == customer]
    matched = [
        Decimal(c[2])
        for c in mine
        if c[3] == "credit"
        and any(
            d[3] == "debit"
            and c[1] <= d[1] <= c[1] + 86_400
            and Decimal(c[2]) * Decimal("0.9") <= Decimal(d[2]) <= Decimal(c[2])
            for d in mine
        )
    ]
    return len(matched), max(matched, default=Decimal(0))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(RANDOM_TX, min_size=1, max_size=30), seed=st.integers(0, 2**16))
def test_pass_through_matches_brute_force_in_any_row_order(
    records: list[tuple[str, int, str, str]], seed: int
) -> None:
    edge = _bucket_start_near(date(2024, 6, 10))  # the times straddle bucket boundaries

    def table(rows: Sequence[tuple[str, int, str, str]]) -> list[Tx]:
        return [
            (c, str(edge + timedelta(seconds=s)), a, d, "transfer", None) for c, s, a, d in rows
        ]

    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    before = features(bank(ids("A", "B"), table(records)))
    after = features(bank(ids("A", "B"), table(shuffled)))
    for customer in ("A", "B"):
        count, largest = _expected_pass_through(records, customer)
        assert before[customer]["pass_through_count"] == count
        assert before[customer]["pass_through_largest"] == float(largest)
        assert after[customer] == before[customer]


# -------------------------------------------------------------------------------- structuring


def test_structuring_counts_cash_and_transfers_just_under_the_threshold() -> None:
    rows = features(
        bank(
            ids("S"),
            [
                ("S", "2024-02-01 10:00:00", "8499.99", "credit", "branch", "cash"),  # below band
                ("S", "2024-02-02 10:00:00", "8500.00", "credit", "ATM", None),  # band, any case
                ("S", "2024-02-03 10:00:00", "9999.99", "debit", "online", "Transfer"),
                ("S", "2024-02-04 10:00:00", "10000.00", "credit", "atm", "cash"),  # threshold
                ("S", "2024-02-05 10:00:00", "9000.00", "debit", "card", "shopping"),  # not cash
                ("S", "2024-02-06 10:00:00", "9000.00", "credit", None, None),  # kind unknown
            ],
        )
    )
    assert rows["S"]["structuring_count"] == 3
    assert rows["S"]["structuring_share"] == pytest.approx(3 / 6)


def test_structuring_follows_its_settings() -> None:
    con = bank(
        ids("S"),
        [
            ("S", "2024-02-01 10:00:00", "4500.00", "credit", "branch", "deposit"),
            ("S", "2024-02-02 10:00:00", "4499.99", "credit", "branch", "deposit"),
            ("S", "2024-02-03 10:00:00", "4999.99", "credit", "atm", None),
        ],
    )
    custom = FeatureSettings(
        reporting_threshold=5000, structuring_band=0.9, structuring_kinds=["Deposit"]
    )
    assert features(con, custom)["S"]["structuring_count"] == 1  # 4500.00 only


def test_without_channel_and_category_every_transaction_can_be_structuring(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("c.csv", "customer_id,annual_income\nA,60000\nB,\n")
    write(
        "t.csv",
        "customer_id,timestamp,amount,direction\n"
        "A,2024-01-05 10:00:00,9500.00,credit\n"
        "A,2024-01-05 18:00:00,9405.00,debit\n"
        "A,2024-01-06 10:00:00,200.00,debit\n",
    )
    con, _ = run_validate(config_for_files("c.csv", "t.csv"), tmp_path)
    rows = features(con)
    assert rows["A"]["structuring_count"] == 2
    assert rows["A"]["round_amount_share"] == pytest.approx(2 / 3)  # 9500 and 200
    assert rows["A"]["pass_through_count"] == 1  # 9405 is 99% of 9500, 8 h later
    assert rows["B"]["structuring_count"] == 0 and rows["B"]["turnover_to_income"] is None


# ----------------------------------------------------------------------- round and tiny amounts


def test_round_amount_share() -> None:
    amounts = ["100.00", "50.00", "250.00", "1000.00", "100.50", "300.00"]
    transactions = [debit("R", f"2024-01-{i + 1:02d} 10:00:00", a) for i, a in enumerate(amounts)]
    rows = features(bank(ids("R", "Z"), transactions))
    assert rows["R"]["round_amount_share"] == pytest.approx(3 / 6)  # 100, 1000, 300
    assert rows["Z"]["round_amount_share"] == 0.0


def test_tiny_debits_and_their_busiest_hour() -> None:
    rows = features(
        bank(
            ids("T", "U"),
            [
                debit("T", "2024-01-10 10:00:00", "1.00", "card"),
                debit("T", "2024-01-10 10:30:00", "2.00", "card"),
                debit("T", "2024-01-10 10:30:00", "0.50", "card"),  # same second
                debit("T", "2024-01-10 11:00:00", "0.99", "card"),  # exactly 60 min after
                debit("T", "2024-01-10 11:00:01", "1.50", "card"),  # 60 min 1 s after
                debit("T", "2024-01-10 10:45:00", "2.01", "card"),  # not tiny
                credit("T", "2024-01-10 10:10:00", "1.00", "card"),  # not a debit
                debit("T", "2024-01-12 09:00:00", "1.00", "card"),
                debit("U", "2024-01-10 10:00:00", "5.00", "card"),
            ],
        )
    )
    assert (rows["T"]["tiny_debit_count"], rows["T"]["tiny_payment_burst"]) == (6, 4)
    assert (rows["U"]["tiny_debit_count"], rows["U"]["tiny_payment_burst"]) == (0, 0)


# ----------------------------------------------------------------------- money against income


def test_turnover_and_biggest_month_against_income() -> None:
    customers: list[dict[str, object]] = [
        {"customer_id": "I", "annual_income": 24000.0},
        {"customer_id": "N"},  # no income: monthly credits instead
        {"customer_id": "O"},  # no income, no credits
        {"customer_id": "Z", "annual_income": 12000.0},  # no transactions
    ]
    transactions = [
        credit("I", "2024-01-15 10:00:00", "2000.00"),
        debit("I", "2024-01-20 10:00:00", "500.00"),
        debit("I", "2024-02-03 10:00:00", "1500.00"),
        debit("I", "2024-02-27 10:00:00", "1500.00"),
        credit("I", "2024-03-15 10:00:00", "2000.00"),
        credit("N", "2024-01-15 10:00:00", "3000.00"),
        credit("N", "2024-03-15 10:00:00", "3000.00"),
        debit("N", "2024-03-20 10:00:00", "4000.00"),
        debit("O", "2024-03-20 10:00:00", "10.00"),
    ]
    rows = features(bank(customers, transactions), FeatureSettings(trend_months=3))
    # I: 7500 through the account in 3 months, 30000 a year, over 24000
    assert rows["I"]["turnover_to_income"] == pytest.approx(30000 / 24000)
    # I: February's 3000 over a monthly income of 2000
    assert rows["I"]["largest_30d_debit_to_income"] == pytest.approx(1.5)
    # N: March's 4000 over average monthly credits 6000 / 3
    assert rows["N"]["largest_30d_debit_to_income"] == pytest.approx(2.0)
    assert rows["N"]["turnover_to_income"] is None
    assert rows["O"]["largest_30d_debit_to_income"] is None
    assert rows["Z"]["largest_30d_debit_to_income"] == 0.0
    assert rows["Z"]["turnover_to_income"] == 0.0


# ------------------------------------------------------------------------------------ dormancy


def test_dormant_spells_in_calendar_months() -> None:
    customers: list[dict[str, object]] = [
        {"customer_id": "D", "customer_since": date(2020, 1, 1)},  # silent since the start
        {"customer_id": "E", "customer_since": date(2024, 3, 1)},  # opened inside the window
        {"customer_id": "F", "customer_since": date(2020, 1, 1)},  # two gaps of equal length
        {"customer_id": "G"},  # busy every month
        {"customer_id": "Z", "customer_since": date(2020, 1, 1)},  # no transactions
    ]

    def month(customer: str, m: int, n: int) -> list[Tx]:
        return [debit(customer, f"2024-{m:02d}-{d + 1:02d} 10:00:00", "10.00") for d in range(n)]

    transactions = [
        *month("D", 5, 3),
        *month("D", 6, 1),
        *month("E", 5, 2),
        *month("F", 1, 1),
        *month("F", 3, 4),  # one silent month, then 4
        *month("F", 5, 2),  # one silent month, then 2: the latest of the longest
        *month("F", 6, 1),
        *[t for m in range(1, 7) for t in month("G", m, 1)],
    ]
    rows = features(bank(customers, transactions), FeatureSettings(trend_months=6))
    # window January to June 2024
    assert (rows["D"]["dormant_months"], rows["D"]["after_dormancy_tx_count"]) == (4, 3)
    assert (rows["E"]["dormant_months"], rows["E"]["after_dormancy_tx_count"]) == (0, 0)
    assert (rows["F"]["dormant_months"], rows["F"]["after_dormancy_tx_count"]) == (1, 2)
    assert (rows["G"]["dormant_months"], rows["G"]["after_dormancy_tx_count"]) == (0, 0)
    assert (rows["Z"]["dormant_months"], rows["Z"]["after_dormancy_tx_count"]) == (0, 0)


def test_an_earlier_transaction_makes_a_silent_window_start_dormant() -> None:
    transactions = [
        debit("H", "2023-06-01 10:00:00", "10.00"),  # before the window
        debit("H", "2024-05-02 10:00:00", "10.00"),
        debit("H", "2024-05-03 10:00:00", "10.00"),
        debit("H", "2024-06-03 10:00:00", "10.00"),
    ]
    rows = features(bank(ids("H"), transactions), FeatureSettings(trend_months=6))
    assert (rows["H"]["dormant_months"], rows["H"]["after_dormancy_tx_count"]) == (4, 2)


# ------------------------------------------------------------------------ plan and settings


def test_plan_records_the_thresholds_and_old_plans_still_load() -> None:
    con = bank([{"customer_id": "P", "annual_income": 50000.0}, *ids("Q")], PASS_THROUGH)
    plan = plan_features(con, FeatureSettings(tiny_amount=5, pass_through_hours=12))
    assert set(TYPOLOGY_NAMES) <= set(plan.features)
    assert (plan.tiny_amount, plan.pass_through_hours, plan.reporting_threshold) == (5, 12, 10000)
    assert FeaturePlan.from_dict(plan.to_dict()) == plan
    old = {k: v for k, v in plan.to_dict().items() if k in _FIELDS_BEFORE_TYPOLOGIES}
    old["features"] = [f for f in plan.features if f not in TYPOLOGY_NAMES]
    restored = FeaturePlan.from_dict(old)
    assert restored.pass_through_hours == FeatureSettings().pass_through_hours
    build_features(con, restored)
    columns = [d[0] for d in con.execute("SELECT * FROM features").description]
    assert not set(columns) & set(TYPOLOGY_NAMES) and "tx_count" in columns


_FIELDS_BEFORE_TYPOLOGIES = {
    "as_of",
    "window_months",
    "night_start_hour",
    "night_end_hour",
    "capabilities",
    "channels",
    "categories",
    "extra_columns",
    "features",
    "omitted",
}


def test_typologies_can_be_turned_off() -> None:
    con = bank(ids("P", "Q"), PASS_THROUGH)
    plan = plan_features(con, FeatureSettings(typologies=False))
    assert not set(plan.features) & set(TYPOLOGY_NAMES)
    assert plan.omitted["pass_through_count"].startswith("typologies are turned off")
    build_features(con, plan)
    columns = [d[0] for d in con.execute("SELECT * FROM features").description]
    assert not set(columns) & set(TYPOLOGY_NAMES)


def test_new_data_is_measured_with_the_stored_thresholds() -> None:
    training = bank(ids("T"), [debit("T", "2024-01-10 10:00:00", "4.00", "card")])
    plan = plan_features(training, FeatureSettings(tiny_amount=5))
    stored = FeaturePlan.from_dict(plan.to_dict())
    new = bank(
        ids("T"),
        [
            debit("T", "2024-01-10 10:00:00", "4.50", "card"),
            debit("T", "2024-01-10 10:05:00", "6.00", "card"),
        ],
    )
    build_features(new, stored)  # default settings would count no tiny debit here
    assert new.execute("SELECT tiny_debit_count FROM features").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "values",
    [
        {"reporting_threshold": 10000.001},
        {"reporting_threshold": 0},
        {"structuring_band": 1.0},
        {"structuring_band": 0.123456},
        {"structuring_kinds": [" "]},
        {"tiny_amount": -1},
        {"pass_through_hours": 0},
        {"pass_through_min_share": 1.5},
        {"round_unit": 0.001},
    ],
)
def test_thresholds_are_validated(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FeatureSettings.model_validate(values)


def test_kinds_are_compared_in_lower_case() -> None:
    assert FeatureSettings(structuring_kinds=["Cash", " ATM "]).structuring_kinds == ["atm", "cash"]


# The typologies the customer anomaly detector reads by default (docs/anomalies.md); the others
# diluted the sustained-behaviour features more than they added on the scenario banks.
ANOMALY_DEFAULTS = {
    "pass_through_share",
    "tiny_payment_burst",
    "structuring_count",
    "round_amount_share",
}


def test_typologies_are_documented_labelled_and_in_the_measured_default_sets() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "features.md").read_text()
    section = doc[doc.index("## Typologies") :]
    for feature in TYPOLOGY_FEATURES:
        assert CATALOG[feature.name] is feature
        assert f"`{feature.name}`" in section, feature.name
        assert feature.label, feature.name
        wanted = {"anomaly"} if feature.name in ANOMALY_DEFAULTS else set()
        assert set(feature.defaults) & set(ROLES) == wanted, feature.name
