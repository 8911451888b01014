"""Validation rules: every row is clean or quarantined with a named rule and a reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from conftest import rows, run_validate
from finintel.config import FinintelConfig, config_for_files
from finintel.errors import ConfigError, DataError, InputFileError
from finintel.validate import RejectShareError, ValidationResult, check_reject_share

CUSTOMERS = """customer_id,birth_date,annual_income,account_balance
C1,1980-01-02,50000,100
C2,1900-01-01,-5,20
C3,19xx,60000,
C1,1970-01-01,1,1
,1990-01-01,1,1
C4,2001-05-05,"1,000",-50
"""

TRANSACTIONS = """customer_id,timestamp,amount,direction,channel
C1,2024-01-01 10:00:00,10.5,debit,card
C2,2024-01-02,20,credit,atm
C9,2024-01-03,5,debit,card
C3,2099-01-01,5,debit,card
C4,2024-02-01,abc,debit,card
C4,2024-02-01,-3,debit,card
C4,2024-02-01,3,sideways,card
C4,2024-02-01,3,debit
C2,2024-03-01,7,DR,online
C1,1850-03-01,7,debit,online
"""


@pytest.fixture
def result(write: Callable[[str, str], Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    write("customers.csv", CUSTOMERS)
    write("transactions.csv", TRANSACTIONS)
    return run_validate(config_for_files("customers.csv", "transactions.csv"), tmp_path)


def test_counts_add_up_per_table(result) -> None:  # type: ignore[no-untyped-def]
    _, res = result
    customers, transactions = res.reports["customers"], res.reports["transactions"]
    assert (customers.rows_in, customers.clean, customers.quarantined) == (6, 4, 2)
    assert (transactions.rows_in, transactions.clean, transactions.quarantined) == (10, 3, 7)
    assert res.to_dict()["rows_in"] == 16
    assert res.to_dict()["clean"] + res.to_dict()["quarantined"] == 16


def test_each_rule_names_row_and_reason(result) -> None:  # type: ignore[no-untyped-def]
    con, _ = result
    found = rows(con, 'SELECT "table", "row", rule, reason FROM rejects ORDER BY 1, 2')
    assert found == [
        ("customers", 4, "duplicate_id", "customer_id 'C1' already appears in row 1"),
        ("customers", 5, "required_missing", "customer_id is empty"),
        ("transactions", 3, "unknown_customer", "customer_id 'C9' is not in the customers table"),
        (
            "transactions",
            4,
            "future_date",
            "timestamp 2099-01-01 is in the future (after 2026-11-21)",
        ),
        ("transactions", 5, "unparseable_number", "amount 'abc' is not a number"),
        ("transactions", 6, "negative_value", "amount -3.00 is negative"),
        (
            "transactions",
            7,
            "invalid_value",
            "direction 'sideways' is neither debit nor credit; "
            "map it with direction.map in the config",
        ),
        (
            "transactions",
            8,
            "malformed_row",
            "malformed record: Expected Number of Columns: 5 Found: 4",
        ),
        ("transactions", 10, "date_too_early", "timestamp 1850-03-01 is before 1900-01-01"),
    ]


def test_rejects_keep_raw_values(result) -> None:  # type: ignore[no-untyped-def]
    con, _ = result
    raw = rows(con, "SELECT raw FROM rejects WHERE rule = 'unparseable_number'")[0][0]
    assert '"amount":"abc"' in str(raw) and '"customer_id":"C4"' in str(raw)
    malformed = rows(con, "SELECT raw FROM rejects WHERE rule = 'malformed_row'")[0][0]
    assert "C4,2024-02-01,3,debit" in str(malformed)


def test_optional_values_are_nulled_not_rejected(result) -> None:  # type: ignore[no-untyped-def]
    con, _ = result
    nulled = rows(con, 'SELECT "row", "column", rule, raw_value FROM nulled_values ORDER BY 1, 2')
    assert nulled == [
        (2, "annual_income", "negative_value", "-5"),
        (2, "birth_date", "placeholder_date", "1900-01-01"),
        (3, "birth_date", "unparseable_date", "19xx"),
        (6, "annual_income", "unparseable_number", "1,000"),
    ]
    c2 = rows(con, "SELECT birth_date, annual_income FROM clean_customers WHERE customer_id = 'C2'")
    assert c2 == [(None, None)]


def test_direction_synonyms_and_exact_money(result) -> None:  # type: ignore[no-untyped-def]
    con, _ = result
    clean = rows(con, "SELECT customer_id, amount::VARCHAR, direction FROM clean_transactions")
    assert clean == [("C1", "10.50", "debit"), ("C2", "20.00", "credit"), ("C2", "7.00", "debit")]


def test_signed_amounts_give_direction(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("t.csv", "customer_id,timestamp,amount\nA,2024-01-01,-12.5\nA,2024-01-02,30\n")
    con, res = run_validate(config_for_files(None, "t.csv"), tmp_path)
    assert rows(con, "SELECT amount::VARCHAR, direction FROM clean_transactions") == [
        ("12.50", "debit"),
        ("30.00", "credit"),
    ]
    assert res.reports["customers"].derived and res.reports["customers"].clean == 1


def test_mapping_formats_separators_currency_and_maps(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write(
        "t.csv",
        "kunde;datum;betrag;art\nK1;31.12.2023;€1.234,50;AUS\nK1;01.01.2024;€10,00;EIN\n"
        "K2;2024-13-01;€1,00;AUS\n",
    )
    cfg = FinintelConfig.model_validate(
        {
            "transactions": {
                "path": "t.csv",
                "delimiter": ";",
                "columns": {
                    "customer_id": "kunde",
                    "timestamp": {"source": "datum", "formats": ["%d.%m.%Y", "%Y-%m-%d"]},
                    "amount": {
                        "source": "betrag",
                        "decimal": ",",
                        "thousands": ".",
                        "currency": ["€"],
                    },
                    "direction": {"source": "art", "map": {"AUS": "debit", "EIN": "credit"}},
                },
            }
        }
    )
    con, res = run_validate(cfg, tmp_path)
    assert rows(
        con, "SELECT timestamp::DATE::VARCHAR, amount::VARCHAR, direction FROM clean_transactions"
    ) == [
        ("2023-12-31", "1234.50", "debit"),
        ("2024-01-01", "10.00", "credit"),
    ]
    assert rows(con, "SELECT rule, reason FROM rejects") == [
        (
            "unparseable_date",
            "timestamp '2024-13-01' does not match the format(s) %d.%m.%Y, %Y-%m-%d",
        )
    ]
    assert res.reports["transactions"].rows_in == 3


def test_numeric_value_maps_give_words_for_codes() -> None:
    cfg = FinintelConfig.model_validate(
        {
            "customers": {
                "path": "c.csv",
                "columns": {
                    "customer_id": "id",
                    "gender": {"source": "sex", "map": {"m": "M", "w": "F"}},  # text: no codes
                },
                "extra_columns": {
                    "plans": {"source": "p", "map": {"none": 0, "bank": 1, "stores": 1}},
                    "share": {"source": "s", "map": {"half": 0.5, "all": 1}},
                    "amount": "a",
                },
            }
        }
    )
    assert cfg.value_labels() == {
        "plans": {"0": "none", "1": "bank / stores"},
        "share": {"0.5": "half", "1": "all"},
    }


def test_join_maps_accounts_to_customers(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("tx.csv", "account,ts,amt\n1,2024-01-01,5\n2,2024-01-02,6\n3,2024-01-03,7\n")
    write("owners.csv", "account,client,type\n1,K1,OWNER\n2,K2,OWNER\n2,K3,USER\n")
    cfg = FinintelConfig.model_validate(
        {
            "transactions": {
                "path": "tx.csv",
                "joins": [
                    {
                        "name": "own",
                        "path": "owners.csv",
                        "on": {"account": "account"},
                        "filter": "type = 'OWNER'",
                    }
                ],
                "columns": {"customer_id": "own.client", "timestamp": "ts", "amount": "amt"},
            }
        }
    )
    con, _ = run_validate(cfg, tmp_path)
    assert rows(con, "SELECT customer_id FROM clean_transactions") == [("K1",), ("K2",)]
    assert rows(con, 'SELECT "row", rule, reason FROM rejects') == [
        (3, "unmatched_join", "no row in owners.csv for account=3 where type = 'OWNER'")
    ]


def test_join_that_is_not_unique_is_refused(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("tx.csv", "account,ts,amt\n1,2024-01-01,5\n")
    write("owners.csv", "account,client\n1,K1\n1,K2\n")
    cfg = FinintelConfig.model_validate(
        {
            "transactions": {
                "path": "tx.csv",
                "joins": [{"name": "own", "path": "owners.csv", "on": {"account": "account"}}],
                "columns": {"customer_id": "own.client", "timestamp": "ts", "amount": "amt"},
            }
        }
    )
    with pytest.raises(ConfigError, match="a join must find at most one row per key"):
        run_validate(cfg, tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary\x00garbage" * 50, "looks like a binary file"),
        (
            "customer_id,timestamp,amount\nC1,2024-01-01,5\nJ\xe9r\xf4me,2024-01-01,5\n".encode(
                "latin-1"
            ),
            "is not valid UTF-8 (line 3",
        ),
        (b"customer_id;timestamp;amount\nC1;2024-01-01;5\n", None),
        (
            b"customer_id,amount\nC1,5\n",
            "required transactions column(s) ['timestamp'] are missing",
        ),
        (b"customer_id,timestamp,amount\n", "has no data rows"),
    ],
)
def test_malformed_files_name_the_file(tmp_path: Path, content: bytes, message: str | None) -> None:
    (tmp_path / "t.csv").write_bytes(content)
    cfg = config_for_files(None, "t.csv")
    if message is None:  # a ';' file is sniffed correctly without a config
        _, res = run_validate(cfg, tmp_path)
        assert res.reports["transactions"].clean == 1
        return
    with pytest.raises(InputFileError, match=re.escape(message)) as err:
        run_validate(cfg, tmp_path)
    assert "t.csv" in str(err.value)


def test_wrong_delimiter_gets_a_hint(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("t.csv", "customer_id;timestamp;amount\nC1;2024-01-01;5\n")
    cfg = FinintelConfig.model_validate({"transactions": {"path": "t.csv", "delimiter": ","}})
    with pytest.raises(InputFileError, match="the delimiter is probably wrong"):
        run_validate(cfg, tmp_path)


def test_parquet_and_json_sources(tmp_path: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('A', TIMESTAMP '2024-01-01 08:00', 5.5, 'debit'), "
        "('B', TIMESTAMP '2024-01-02 09:00', -1.0, 'debit')) t(customer_id, timestamp, amount, "
        f"direction)) TO '{tmp_path / 't.parquet'}' (FORMAT parquet)"
    )
    (tmp_path / "c.jsonl").write_text(
        '{"customer_id": "A", "annual_income": 10}\n{"customer_id": "B", "annual_income": "x"}\n'
    )
    con2, res = run_validate(config_for_files("c.jsonl", "t.parquet"), tmp_path)
    assert res.reports["transactions"].by_rule == {"negative_value": 1}
    assert rows(con2, 'SELECT "row" FROM rejects') == [(2,)]
    assert res.reports["customers"].nulled == {"annual_income:unparseable_number": 1}


# ------------------------------------------------------------------------------ cross-table

CROSS_CUSTOMERS = """customer_id,customer_since
C1,2023-01-01
C2,
C3,2024-06-01
"""

# Row 7 repeats row 1 exactly; rows 8 and 9 share a timestamp and are listed in the opposite
# order of their posting (100 + 10 = 110, then 110 - 30 = 80); row 10's balance follows from
# no balance before it (80 - 5 = 75, 110 - 5 = 105), row 11's follows from row 10's.
CROSS_TRANSACTIONS = """transaction_id,customer_id,timestamp,amount,direction,balance_after
T1,C1,2022-12-31 23:00:00,5,debit,95
T2,C1,2023-01-01 00:00:00,100,credit,100
T3,C2,2020-01-01 00:00:00,7,credit,7
T4,C3,2024-05-31 00:00:00,1,credit,1
T5,C3,2024-06-01 00:00:00,1,credit,1
T6,C9,2020-01-01 00:00:00,1,credit,1
T1,C1,2022-12-31 23:00:00,5,debit,95
T8,C1,2023-02-01 00:00:00,30,debit,80
T9,C1,2023-02-01 00:00:00,10,credit,110
T10,C1,2023-03-01 00:00:00,5,debit,60
T11,C1,2023-04-01 00:00:00,10,debit,50
"""

CROSS_LOANS = """loan_id,customer_id,amount,start_date
L1,C1,1000,2022-06-01
L2,C3,500,2024-07-01
L3,C2,200,2000-01-01
"""


@pytest.fixture
def cross(write: Callable[[str, str], Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    write("c.csv", CROSS_CUSTOMERS)
    write("t.csv", CROSS_TRANSACTIONS)
    write("l.csv", CROSS_LOANS)
    return run_validate(config_for_files("c.csv", "t.csv", "l.csv"), tmp_path)


def test_cross_table_rules_are_counted_like_every_rule(cross) -> None:  # type: ignore[no-untyped-def]
    con, res = cross
    tx, loans = res.reports["transactions"], res.reports["loans"]
    assert (tx.rows_in, tx.clean, tx.quarantined) == (11, 7, 4)
    assert tx.by_rule == {"before_customer_since": 2, "duplicate_id": 1, "unknown_customer": 1}
    # A loan before customer_since is flagged and kept: the debt is real.
    assert (loans.rows_in, loans.clean, loans.quarantined) == (3, 3, 0)
    assert loans.flagged == {"before_customer_since": 1}
    assert loans.flag_examples == [
        {
            "row": 1,
            "flag": "before_customer_since",
            "column": "start_date",
            "reason": "start_date 2022-06-01 is before the customer_since 2023-01-01 of "
            "customer_id 'C1'",
        }
    ]
    for report in res.reports.values():
        assert report.rows_in == report.clean + report.quarantined
    assert res.to_dict()["rows_in"] == res.to_dict()["clean"] + res.to_dict()["quarantined"]
    found = rows(
        con,
        'SELECT "table", "row", rule, "column", reason FROM rejects '
        "WHERE rule = 'before_customer_since' ORDER BY 1, 2",
    )
    assert found == [
        (
            "transactions",
            1,
            "before_customer_since",
            "timestamp",
            "timestamp 2022-12-31 is before the customer_since 2023-01-01 of customer_id 'C1'",
        ),
        (
            "transactions",
            4,
            "before_customer_since",
            "timestamp",
            "timestamp 2024-05-31 is before the customer_since 2024-06-01 of customer_id 'C3'",
        ),
    ]
    assert rows(con, "SELECT loan_id FROM clean_loans ORDER BY 1") == [("L1",), ("L2",), ("L3",)]


def test_inconsistent_balances_are_flagged_and_kept(cross) -> None:  # type: ignore[no-untyped-def]
    con, res = cross
    tx = res.reports["transactions"]
    assert tx.flagged == {"balance_mismatch": 1}
    assert tx.flag_examples == [
        {
            "row": 10,
            "flag": "balance_mismatch",
            "column": "balance_after",
            "reason": "balance_after 60.00 does not follow from a balance of the customer at the "
            "same or the previous time (e.g. row 9: 110.00 - 5.00 = 105.00)",
        }
    ]
    assert rows(con, "SELECT count(*) FROM clean_transactions WHERE transaction_id = 'T10'") == [
        (1,)
    ]
    assert res.to_dict()["flagged"] == 2  # and the loan
    assert "balance_mismatch" not in tx.by_rule


def test_exact_repeats_do_not_count_in_the_reject_share(cross) -> None:  # type: ignore[no-untyped-def]
    _, res = cross
    tx = res.reports["transactions"]
    assert tx.repeats == 1
    assert tx.reject_share == pytest.approx(3 / 10)
    assert tx.to_dict()["reject_share"] == 0.3


def test_balance_tolerance_is_a_setting(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("t.csv", CROSS_TRANSACTIONS)
    cfg = FinintelConfig.model_validate(
        {"transactions": {"path": "t.csv"}, "validation": {"balance_tolerance": 15}}
    )
    _, res = run_validate(cfg, tmp_path)
    tx = res.reports["transactions"]
    assert tx.by_rule == {"duplicate_id": 1}  # no customer_since: T1 stays
    # Row 10 (60, 15 from 75) passes; row 2 now follows T1 (95 + 100 = 195, not 100).
    assert tx.flagged == {"balance_mismatch": 1}
    assert [e["row"] for e in tx.flag_examples] == [2]


def test_rejects_and_nulled_values_share_one_column_order(result) -> None:  # type: ignore[no-untyped-def]
    con, _ = result
    order = ["table", "source", "row", "rule", "column", "reason"]
    assert [r[0] for r in rows(con, "DESCRIBE rejects")] == [*order, "raw"]
    assert [r[0] for r in rows(con, "DESCRIBE nulled_values")] == [*order, "raw_value"]


# ------------------------------------------------------------------------------ reject share


def validated(
    write: Callable[[str, str], Path], tmp_path: Path, text: str, **validation: float
) -> tuple[duckdb.DuckDBPyConnection, ValidationResult, FinintelConfig]:
    write("t.csv", text)
    cfg = FinintelConfig.model_validate(
        {"transactions": {"path": "t.csv"}, "validation": validation}
    )
    con, res = run_validate(cfg, tmp_path)
    return con, res, cfg


def test_a_table_over_the_reject_share_is_refused_with_an_example(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    text = "customer_id,timestamp,amount\nA,03/15/2024 10:00,5\nB,03/16/2024 11:00,6\n"
    con, res, cfg = validated(write, tmp_path, text)
    with pytest.raises(RejectShareError) as err:
        check_reject_share(con, res, cfg.validation, "out/rejects.csv")
    assert str(err.value) == (
        f"{tmp_path / 't.csv'}: no row passed validation: "
        "2 of 2 transactions rejected (100%), more than [validation] "
        "max_reject_share = 0.5 allows. Most rows break unparseable_date: 2; e.g. row 1: "
        "timestamp '03/15/2024 10:00' does not match an ISO date (YYYY-MM-DD[ HH:MM:SS]); "
        "set 'formats' for other layouts. Hint: set the column's `formats` (strptime codes "
        "such as %d/%m/%Y %H:%M); or raise [validation] max_reject_share if this share is "
        "expected. Nothing was built after validation; see out/rejects.csv for each row's "
        "reason."
    )
    assert err.value.report is res.reports["transactions"]
    assert isinstance(err.value, DataError)


def test_the_reject_share_limit_is_configurable(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    text = "customer_id,timestamp,amount\nA,2024-01-01,5\nB,2024-01-02,x\nC,2024-01-03,y\n"
    con, res, cfg = validated(write, tmp_path, text, max_reject_share=0.7)
    check_reject_share(con, res, cfg.validation)  # 2 of 3 is within 0.7
    with pytest.raises(RejectShareError, match=r"2 of 3 transactions rejected \(67%\)"):
        check_reject_share(con, res, cfg.validation.model_copy(update={"max_reject_share": 0.6}))


def test_repeated_rows_do_not_trip_the_limit_but_conflicting_ids_do(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    # An extract that repeats each transaction once per loan: 4 of 6 rows are repeats.
    repeated = "transaction_id,customer_id,timestamp,amount,loan\n" + "".join(
        f"T{t},A,2024-01-0{t},5,L{loan}\n" for t in (1, 2) for loan in (1, 2, 3)
    )
    con, res, cfg = validated(write, tmp_path, repeated)
    report = res.reports["transactions"]
    assert (report.quarantined, report.repeats, report.reject_share) == (4, 4, 0.0)
    check_reject_share(con, res, cfg.validation)
    # The same ids with other amounts: an id column that is not an id.
    conflicting = "transaction_id,customer_id,timestamp,amount\n" + "".join(
        f"T1,A,2024-01-01,{n}\n" for n in range(1, 7)
    )
    con, res, cfg = validated(write, tmp_path, conflicting)
    assert res.reports["transactions"].repeats == 0
    with pytest.raises(RejectShareError, match=r"5 of 6 transactions rejected \(83%\)"):
        check_reject_share(con, res, cfg.validation)
