"""Properties that must hold for any input: counts add up, features ignore row order and
other customers' transactions."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import rows, run_validate
from finintel.config import FeatureSettings, FinintelConfig
from finintel.features import FeaturePlan, build_features, plan_features

IDS = st.sampled_from(["C1", "C2", "C3", "C4", "", " C1 ", "NA", "c1"])
NUMBERS = st.one_of(
    st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False).map(str),
    st.sampled_from(["", "abc", "1,5", "1e3", "inf", "NaN", "-0", "  12 ", "$5"]),
)
STAMPS = st.one_of(
    st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.sampled_from(["", "2024-02-30", "yesterday", "1900-01-01", "2024-01-01"]),
)
DIRECTIONS = st.sampled_from(["debit", "credit", "DR", "cr", "", "sideways"])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=8)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CSV_CONFIG = {
    "customers": {"path": "c.csv", "delimiter": ",", "quote": '"'},
    "transactions": {"path": "t.csv", "delimiter": ",", "quote": '"'},
}


def _csv(header: list[str], records: list[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return buffer.getvalue()


@pytest.mark.slow
@SETTINGS
@given(
    customers=st.lists(st.tuples(IDS, NUMBERS, STAMPS, TEXT), min_size=1, max_size=15),
    transactions=st.lists(
        st.tuples(IDS, STAMPS, NUMBERS, DIRECTIONS, TEXT), min_size=1, max_size=30
    ),
)
def test_rows_in_equal_clean_plus_quarantined(
    customers: list[tuple[str, ...]], transactions: list[tuple[str, ...]]
) -> None:
    with TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "c.csv").write_text(
            _csv(["customer_id", "annual_income", "birth_date", "region"], customers)
        )
        (base / "t.csv").write_text(
            _csv(["customer_id", "timestamp", "amount", "direction", "channel"], transactions)
        )
        con, res = run_validate(FinintelConfig.model_validate(CSV_CONFIG), base)
        for name, written in (("customers", customers), ("transactions", transactions)):
            report = res.reports[name]
            assert report.rows_in == len(written)
            assert report.clean + report.quarantined == report.rows_in
            assert rows(con, f"SELECT count(*) FROM clean_{name}") == [(report.clean,)]
            quarantined = rows(con, f"SELECT count(*) FROM rejects WHERE \"table\" = '{name}'")
            assert quarantined == [(report.quarantined,)]
            distinct_rows = rows(
                con, f'SELECT count(DISTINCT "row") FROM rejects WHERE "table" = \'{name}\''
            )
            assert distinct_rows == [(report.quarantined,)]


CLEAN_TX = st.tuples(
    st.sampled_from(["A", "B", "C", "D"]),
    st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2024, 12, 31)),
    st.decimals(min_value="0.01", max_value="5000", places=2),
    st.sampled_from(["debit", "credit"]),
    st.sampled_from(["card", "atm", "online"]),
    st.sampled_from(["food", "rent", "travel"]),
    st.decimals(min_value="-1000", max_value="9000", places=2),
)
TX_HEADER = [
    "customer_id",
    "timestamp",
    "amount",
    "direction",
    "channel",
    "category",
    "balance_after",
]
CUSTOMER_CSV = "customer_id,annual_income\nA,50000\nB,\nC,1000\nD,70000\nE,30000\n"


def _features(
    records: list[tuple[object, ...]], plan: FeaturePlan | None = None
) -> tuple[dict[str, tuple[object, ...]], FeaturePlan]:
    with TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "c.csv").write_text(CUSTOMER_CSV)
        (base / "t.csv").write_text(_csv(TX_HEADER, [tuple(str(v) for v in r) for r in records]))
        con, res = run_validate(FinintelConfig.model_validate(CSV_CONFIG), base)
        assert res.reports["transactions"].quarantined == 0
        plan = plan or plan_features(con, FeatureSettings(), res.extra_columns)
        build_features(con, plan)
        return {r[0]: r for r in rows(con, "SELECT * FROM features")}, plan


@pytest.mark.slow
@SETTINGS
@given(records=st.lists(CLEAN_TX, min_size=1, max_size=40), data=st.data())
def test_shuffling_transactions_does_not_change_features(
    records: list[tuple[object, ...]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(records))
    before, _ = _features(records)
    after, _ = _features(list(shuffled))
    assert before == after


@pytest.mark.slow
@SETTINGS
@given(
    records=st.lists(CLEAN_TX, min_size=1, max_size=30),
    added=st.lists(CLEAN_TX, min_size=1, max_size=10),
)
def test_adding_transactions_for_one_customer_leaves_others_alone(
    records: list[tuple[object, ...]], added: list[tuple[object, ...]]
) -> None:
    before, plan = _features(records)
    # the same plan (reference date, mix levels) as the data without the added transactions
    after, _ = _features(records + [("B", *r[1:]) for r in added], plan)
    assert {k: v for k, v in before.items() if k != "B"} == {
        k: v for k, v in after.items() if k != "B"
    }
