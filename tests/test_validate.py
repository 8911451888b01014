"""Validation rules: every row is clean or quarantined with a named rule and a reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import rows, run_validate
from finintel.config import FinintelConfig, config_for_files
from finintel.errors import ConfigError, InputFileError

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
