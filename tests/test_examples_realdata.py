"""The example configs in `examples/` against the real public data sets in ../shared/data.

Every config is validated with a fixed `today`, and the exact counts (rows in, clean,
quarantined, by rule, nulled, flagged) are asserted, together with at least one real row per
data set: a quarantined row or a nulled value with its source row, rule and reason, or, for data
sets that have none, the most questionable real row and how it was kept. Every config also runs
end to end with `finintel run` (models, results, bundle, report) and exits 0; those are the
slowest tests of the suite (most of their time is model fitting).

The data is not in the repository. Without ../shared/data the tests skip, except on CI
(CI=true), where a missing data folder is a failure.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from finintel.cli import app
from finintel.config import load_config
from finintel.run_layout import RunLayout
from finintel.sql import connect
from finintel.validate import ValidationResult, check_reject_share, validate

pytestmark = pytest.mark.realdata

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXAMPLES = ROOT / "examples"
TODAY = date(2026, 11, 21)
MISSING = "public data sets not found at ../shared/data"

CONFIGS = (
    "inu_bank",
    "users",
    "berka",
    "kaggle_bank_transactions",
    "cc_general",
    "german_credit",
    "cdnow",
)

# table -> (rows_in, clean, quarantined, by_rule, nulled)
Counts = dict[str, tuple[int, int, int, dict[str, int], dict[str, int]]]

EXPECTED: dict[str, Counts] = {
    "inu_bank": {
        "customers": (87, 87, 0, {}, {}),
        "transactions": (
            1554,
            726,
            828,
            {"before_customer_since": 274, "duplicate_id": 554},
            {},
        ),
        "loans": (129, 129, 0, {}, {}),
    },
    "users": {
        "customers": (500, 500, 0, {}, {}),
    },
    "berka": {
        "customers": (5369, 5369, 0, {}, {}),
        "transactions": (49102, 49102, 0, {}, {}),
        "loans": (682, 682, 0, {}, {}),
        "labels": (682, 682, 0, {}, {}),
    },
    "kaggle_bank_transactions": {
        "customers": (
            19937,
            19937,
            0,
            {},
            {"birth_date:future_date": 3, "birth_date:placeholder_date": 1281},
        ),
        "transactions": (20000, 20000, 0, {}, {}),
    },
    "cc_general": {
        "customers": (8950, 8950, 0, {}, {}),
    },
    "german_credit": {
        "customers": (1000, 1000, 0, {}, {}),
        "labels": (1000, 1000, 0, {}, {}),
    },
    "cdnow": {
        "transactions": (69659, 69659, 0, {}, {}),
        # derived from the clean transactions: one per distinct customer_id
        "customers": (23570, 23570, 0, {}, {}),
    },
}


def require_data(data: Path = DATA) -> Path:
    """The data folder; skip without it, but fail on CI, where it must be provided."""
    if data.is_dir():
        return data
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{MISSING} (looked in {data}); CI=true, so the real-data tests must run: "
            "provide the data sets next to the repository",
            pytrace=False,
        )
    pytest.skip(MISSING)


def run(name: str) -> tuple[duckdb.DuckDBPyConnection, ValidationResult]:
    """Validate examples/<name>.toml once per session (inside the test, so CI fails, not errors)."""
    require_data()
    return _validated(name)


@cache
def _validated(name: str) -> tuple[duckdb.DuckDBPyConnection, ValidationResult]:
    cfg, base = load_config(EXAMPLES / f"{name}.toml")
    assert base == (DATA / base.name).resolve(), f"{name}: base_dir should point into {DATA}"
    con = connect()
    return con, validate(con, cfg, base, today=TODAY)


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def rejects(con: duckdb.DuckDBPyConnection, table: str, row: int) -> list[tuple[Any, ...]]:
    return rows(
        con,
        'SELECT rule, "column", reason, raw FROM rejects WHERE "table" = ? AND "row" = ?',
        table,
        row,
    )


def nulled(con: duckdb.DuckDBPyConnection, table: str, row: int) -> list[tuple[Any, ...]]:
    return rows(
        con,
        'SELECT "column", rule, reason, raw_value FROM nulled_values '
        'WHERE "table" = ? AND "row" = ?',
        table,
        row,
    )


# ------------------------------------------------------------------------------ data guard


def test_missing_data_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="public data sets not found"):
        require_data(tmp_path / "absent")


def test_missing_data_fails_on_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_data(tmp_path / "absent")


# ------------------------------------------------------------------------------ every config


# Flagged (kept) rows, by table and flag; every other config has none.
FLAGGED: dict[str, dict[str, dict[str, int]]] = {
    "inu_bank": {"loans": {"before_customer_since": 54}},
    "berka": {"transactions": {"balance_mismatch": 2353}},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_counts(name: str) -> None:
    con, result = run(name)
    got = {
        table: (r.rows_in, r.clean, r.quarantined, r.by_rule, r.nulled)
        for table, r in result.reports.items()
    }
    assert got == EXPECTED[name]
    flagged = {table: r.flagged for table, r in result.reports.items() if r.flagged}
    assert flagged == FLAGGED.get(name, {})
    check_reject_share(con, result, load_config(EXAMPLES / f"{name}.toml")[0].validation)
    for table, report in result.reports.items():
        assert report.rows_in == report.clean + report.quarantined, table
        assert report.clean > 0, f"{name}: clean_{table} is empty"
        assert rows(con, f"SELECT count(*) FROM clean_{table}") == [(report.clean,)]
        assert rows(con, 'SELECT count(*) FROM rejects WHERE "table" = ?', table) == [
            (report.quarantined,)
        ]


@pytest.mark.parametrize("name", CONFIGS)
def test_finintel_run_finishes(name: str, tmp_path: Path) -> None:
    """`finintel run` on the example: exit 0, a finished run with the validated counts."""
    require_data()
    out = tmp_path / name
    args = ["run", "--config", str(EXAMPLES / f"{name}.toml"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--today", TODAY.isoformat(), "--quiet"])
    assert result.exit_code == 0, result.output
    layout = RunLayout(out)
    record = json.loads(layout.run_json.read_text(encoding="utf-8"))
    counts = {
        table: (c["rows_in"], c["clean"], c["quarantined"])
        for table, c in record["counts"]["validation"].items()
    }
    assert counts == {table: v[:3] for table, v in EXPECTED[name].items()}
    assert layout.scored_csv.is_file() and layout.model_dir.is_dir()


# ------------------------------------------------------------------------------ inu_bank


def test_inu_bank_repeated_transaction_rows_are_duplicates() -> None:
    con, result = run("inu_bank")
    # File rows 2-5 are transaction 2, repeated once per loan of customer 91.
    ((rule, column, reason, raw),) = rejects(con, "transactions", 3)
    assert (rule, column) == ("duplicate_id", "transaction_id")
    assert reason == "transaction_id '2' already appears in row 2"
    assert json.loads(raw)["Loan_ID"] == "48.0"
    assert [r[2] for r in rejects(con, "transactions", 5)] == [
        "transaction_id '2' already appears in row 2"
    ]
    # The repeats equal the row they repeat: they do not count in the reject share.
    report = result.reports["transactions"]
    assert report.repeats == 554
    assert report.reject_share == pytest.approx(274 / 1000)
    # At most one clean row per distinct Transaction_ID, both directions present.
    assert rows(
        con, "SELECT direction, count(*) FROM clean_transactions GROUP BY ALL ORDER BY 1"
    ) == [("credit", 331), ("debit", 395)]


def test_inu_bank_rows_before_the_first_account_are_quarantined() -> None:
    con, result = run("inu_bank")
    # File row 6: transaction 3 of customer 89 on 2019-05-17; the earliest of the customer's
    # accounts was opened on 2020-06-17.
    ((rule, column, reason, raw),) = rejects(con, "transactions", 6)
    assert (rule, column) == ("before_customer_since", "timestamp")
    assert reason == (
        "timestamp 2019-05-17 is before the customer_since 2020-06-17 of customer_id '89'"
    )
    assert json.loads(raw)["Transaction_ID"] == "3"
    # Loan 2 (row 2) of customer 98 started 18 months before the first account: flagged, kept.
    assert rejects(con, "loans", 2) == []
    assert result.reports["loans"].flag_examples[0] == {
        "row": 2,
        "flag": "before_customer_since",
        "column": "start_date",
        "reason": "start_date 2020-08-06 is before the customer_since 2022-02-19 "
        "of customer_id '98'",
    }
    # 274 of the 1,000 distinct transactions are quarantined (54 of the 129 loans flagged).
    assert rows(
        con,
        'SELECT "table", count(*) FROM rejects WHERE rule = ? GROUP BY ALL ORDER BY 1',
        "before_customer_since",
    ) == [("transactions", 274)]


def test_inu_bank_customers_and_loans() -> None:
    con, _ = run("inu_bank")
    # Customer 1 has three accounts: their balances are summed once each.
    assert rows(
        con,
        "SELECT account_balance, customer_since, n_accounts FROM clean_customers "
        "WHERE customer_id = '1'",
    ) == [(13335.43, date(2020, 10, 11), 3.0)]
    assert rows(con, "SELECT * FROM clean_loans WHERE loan_id = '44'") == [
        ("44", "91", Decimal("32428.90"), date(2021, 6, 24), date(2050, 1, 8), 2.12, "Mortgage")
    ]


# ------------------------------------------------------------------------------ users


def test_users_keeps_implausible_but_valid_rows() -> None:
    con, _ = run("users")
    assert rows(con, "SELECT count(*) FROM rejects") == [(0,)]
    assert rows(con, "SELECT count(*) FROM nulled_values") == [(0,)]
    # Synthetic quirk no single-column rule can see: user 14 is 23 with 17 years in work.
    assert rows(
        con,
        "SELECT age, annual_income, credit_score, employment_years FROM clean_customers "
        "WHERE customer_id = '14'",
    ) == [(23.0, 1879665.0, 611.0, 17.0)]


# ------------------------------------------------------------------------------ berka


def test_berka_decodes_birth_number_and_district() -> None:
    con, _ = run("berka")
    # client 1: birth_number 706213 = a woman (month 62 = 12 + 50) born 1970-12-13.
    # client 2: 450204 = a man born 1945-02-04, district 1 = Prague.
    assert rows(
        con,
        "SELECT customer_id, birth_date, gender, region FROM clean_customers "
        "WHERE customer_id IN ('1', '2') ORDER BY customer_id",
    ) == [("1", date(1970, 12, 13), "F", "Pisek"), ("2", date(1945, 2, 4), "M", "Hl.m. Praha")]
    assert rows(con, "SELECT gender, count(*) FROM clean_customers GROUP BY ALL ORDER BY 1") == [
        ("F", 2645),
        ("M", 2724),
    ]


def test_berka_transactions() -> None:
    con, _ = run("berka")
    assert rows(con, "SELECT count(*) FROM rejects") == [(0,)]
    assert rows(
        con,
        "SELECT direction, count(*), min(timestamp), max(timestamp) FROM clean_transactions "
        "GROUP BY ALL ORDER BY 1",
    ) == [
        ("credit", 22994, datetime(1993, 1, 1), datetime(1994, 3, 31)),
        ("debit", 26108, datetime(1993, 1, 31), datetime(1994, 3, 31)),
    ]
    # First file row: a cash deposit on account 2378, owned by client 2873.
    assert rows(con, "SELECT * FROM clean_transactions LIMIT 1") == [
        (
            "2873",
            datetime(1993, 1, 1),
            Decimal("700.00"),
            "695247",
            "credit",
            "cash credit",
            None,
            Decimal("700.00"),
        )
    ]
    # Codes are mapped to words; the blank k_symbols stay NULL.
    assert rows(
        con, "SELECT category, count(*) FROM clean_transactions GROUP BY ALL ORDER BY 1"
    ) == [
        ("household", 3719),
        ("insurance", 644),
        ("interest credited", 9463),
        ("loan payment", 123),
        ("penalty interest", 64),
        ("pension", 1770),
        ("statement fee", 5445),
        (None, 27874),
    ]
    # Overdrafts are real: 93 transactions leave a negative balance, and are kept.
    assert rows(
        con, "SELECT count(*), min(balance_after) FROM clean_transactions WHERE balance_after < 0"
    ) == [(93, Decimal("-5446.60"))]


def test_berka_loans_and_labels() -> None:
    con, _ = run("berka")
    # loan.asc row 1: loan 5314 on account 1787 (owner: client 2166), 12 months, status B.
    assert rows(con, "SELECT * FROM clean_loans LIMIT 1") == [
        (
            "5314",
            "2166",
            Decimal("96396.00"),
            date(1993, 7, 5),
            date(1994, 7, 5),
            None,
            "finished, unpaid",
        )
    ]
    assert rows(con, "SELECT defaulted FROM clean_labels WHERE customer_id = '2166'") == [(1,)]
    # B (31) + D (45) are the defaults.
    assert rows(con, "SELECT defaulted, count(*) FROM clean_labels GROUP BY ALL ORDER BY 1") == [
        (0, 606),
        (1, 76),
    ]


# ------------------------------------------------------------------------------ kaggle


def test_kaggle_placeholder_birth_date_is_nulled() -> None:
    con, _ = run("kaggle_bank_transactions")
    # Customer row 18 is C1012814 (file line 4376, T4375): DOB 1/1/1800, a placeholder.
    assert nulled(con, "customers", 18) == [
        (
            "birth_date",
            "placeholder_date",
            "birth_date 1800-01-01 is a placeholder date",
            "1/1/1800",
        )
    ]
    # The customer stays, with the rest of its profile.
    assert rows(
        con,
        "SELECT customer_id, birth_date, gender, region, account_balance FROM clean_customers "
        "WHERE customer_id = 'C1012814'",
    ) == [("C1012814", None, "M", "ASPATAL ASHOK NAGAR MORADABAD", 148.64)]


def test_kaggle_birth_dates_after_the_extract_are_nulled() -> None:
    con, _ = run("kaggle_bank_transactions")
    # Three customer ids share one profile born "19-01-2021", five years after the data ends.
    assert rows(
        con,
        'SELECT "row", reason, raw_value FROM nulled_values WHERE rule = ? ORDER BY "row"',
        "future_date",
    ) == [
        (row, "birth_date 2021-01-19 is in the future (after 2016-10-21)", "19-01-2021")
        for row in (7828, 8337, 13232)
    ]


def test_kaggle_transactions() -> None:
    con, _ = run("kaggle_bank_transactions")
    # T1: 02-08-2016 at 143207.
    assert rows(con, "SELECT * FROM clean_transactions LIMIT 1") == [
        (
            "C5841053",
            datetime(2016, 8, 2, 14, 32, 7),
            Decimal("25.00"),
            "T1",
            "debit",
            None,
            None,
            None,
        )
    ]
    # TransactionTime is an integer: 633 is 00:06:33 and 400 is 00:04:00.
    assert rows(
        con,
        "SELECT transaction_id, timestamp FROM clean_transactions "
        "WHERE transaction_id IN ('T5122', 'T5126') ORDER BY 1",
    ) == [("T5122", datetime(2016, 9, 22, 0, 6, 33)), ("T5126", datetime(2016, 9, 22, 0, 4))]
    assert rows(
        con,
        "SELECT min(timestamp), max(timestamp), count(DISTINCT customer_id) "
        "FROM clean_transactions",
    ) == [(datetime(2016, 8, 1, 8, 22, 53), datetime(2016, 10, 21, 22, 48, 48), 19937)]


# ------------------------------------------------------------------------------ cc_general


def test_cc_general_blanks_are_missing_not_errors() -> None:
    con, _ = run("cc_general")
    # File row 5204 (C15349) has the only blank CREDIT_LIMIT: it is NULL, not an error.
    assert rows(
        con,
        "SELECT customer_id, credit_limit, account_balance, tenure FROM clean_customers "
        "WHERE customer_id = 'C15349'",
    ) == [("C15349", None, 18.400472, 6.0)]
    assert rows(con, "SELECT count(*) FROM rejects") == [(0,)]
    assert rows(con, "SELECT count(*) FROM nulled_values") == [(0,)]
    assert rows(con, "SELECT count(*) FROM clean_customers WHERE minimum_payments IS NULL") == [
        (313,)
    ]
    # A real oddity kept as it is: eight "frequencies" above 1.
    assert rows(
        con,
        "SELECT count(*), max(cash_advance_frequency) FROM clean_customers "
        "WHERE cash_advance_frequency > 1",
    ) == [(8, 1.5)]


# ------------------------------------------------------------------------------ german credit


def test_german_credit_row_numbers_and_encodings() -> None:
    con, _ = run("german_credit")
    assert rows(con, "SELECT count(*) FROM rejects") == [(0,)]
    # Row 2: "0 <= ... < 200 DM", 48 months, 5951 DM, savings "... < 100 DM", employed
    # "1 <= ... < 4 years", credit history "existing credits paid back duly", creditability bad.
    assert rows(
        con,
        "SELECT customer_id, age, gender, checking_account_status, savings_status, "
        "credit_history_code, employment_since_code, duration_in_month, credit_amount "
        "FROM clean_customers WHERE customer_id = 'G0002'",
    ) == [("G0002", 22.0, "M", 2.0, 1.0, 2.0, 3.0, 48.0, 5951.0)]
    assert rows(con, "SELECT defaulted FROM clean_labels WHERE customer_id = 'G0002'") == [(1,)]
    assert rows(con, "SELECT min(customer_id), max(customer_id) FROM clean_customers") == [
        ("G0001", "G1000")
    ]
    assert rows(con, "SELECT sum(defaulted) FROM clean_labels") == [(300,)]
    # Every category is in a map: no extra column has a NULL.
    assert rows(
        con,
        "SELECT count(*) FROM clean_customers WHERE checking_account_status IS NULL "
        "OR savings_status IS NULL OR credit_history_code IS NULL "
        "OR employment_since_code IS NULL OR property_code IS NULL OR foreign_worker IS NULL "
        "OR purpose_code IS NULL OR personal_status_code IS NULL OR other_debtors_code IS NULL "
        "OR job_code IS NULL OR other_installment_plans_code IS NULL OR housing_code IS NULL",
    ) == [(0,)]
    # Row 2's unordered categories as Statlog codes: radio/television (A43), male divorced/
    # separated (A91), no other debtors (A101), skilled (A173), no other plans (A143), own (A152).
    assert rows(
        con,
        "SELECT purpose_code, personal_status_code, other_debtors_code, job_code, "
        "other_installment_plans_code, housing_code FROM clean_customers "
        "WHERE customer_id = 'G0002'",
    ) == [(3.0, 1.0, 1.0, 3.0, 3.0, 2.0)]
    assert rows(
        con,
        "SELECT count(DISTINCT purpose_code), count(DISTINCT personal_status_code), "
        "count(DISTINCT job_code) FROM clean_customers",
    ) == [(10, 4, 4)]


# ------------------------------------------------------------------------------ cdnow


def test_cdnow_zero_dollar_purchases_are_kept() -> None:
    con, result = run("cdnow")
    assert result.reports["customers"].derived
    assert rows(con, "SELECT count(*) FROM rejects") == [(0,)]
    # Record 1549: customer 00455 bought 1 CD for 0.00 on 1997-01-02; 80 such rows exist.
    assert rows(con, "SELECT * FROM clean_transactions WHERE customer_id = '00455' LIMIT 1") == [
        ("00455", datetime(1997, 1, 2), Decimal("0.00"), None, "debit", None, None, None)
    ]
    assert rows(con, "SELECT count(*) FROM clean_transactions WHERE amount = 0") == [(80,)]
    assert rows(con, "SELECT min(timestamp), max(timestamp) FROM clean_transactions") == [
        (datetime(1997, 1, 1), datetime(1998, 6, 30))
    ]
