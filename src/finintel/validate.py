"""Raw relations -> clean canonical tables + quarantined rows, each with a named rule and reason.

Rules, in the order they are checked (the first one a row breaks is the one reported):

| rule | table(s) | what |
|---|---|---|
| `malformed_row` | any CSV | the record does not have the header's number of fields |
| `unmatched_join` | any with joins | a required join found no row for the record |
| `required_missing` | any | a required column is empty |
| `unparseable_number`, `unparseable_date`, `invalid_value` | any | a value does not parse |
| `negative_value`, `out_of_range` | any | a number outside its allowed range |
| `placeholder_date`, `date_too_early`, `future_date` | any | an impossible date |
| `duplicate_id` | any with a unique key | the key was already seen in an earlier row |
| `unknown_customer` | transactions, loans, labels | the customer is not among the clean customers |
| `before_customer_since` | transactions | dated before the customer's `customer_since` |

A broken *required* value quarantines the whole row; a broken *optional* value is set to NULL
and recorded in the nulled-values table, so a customer is not lost for a placeholder birth date.
Counts add up exactly per table: rows in = clean rows + quarantined rows.

Flags mark clean rows that look wrong but are kept (they are not in the rejects and do not
change the counts); `TableReport.flagged` counts them by flag and `flag_examples` shows the
first few:

- `before_customer_since` on loans: a loan starting before the customer's `customer_since`.
  A loan can predate the relationship (taken over from another lender, migrated from an older
  system), and dropping it would hide a real debt from the risk score.
- `balance_mismatch` on transactions with `balance_after`: a balance that follows from no
  balance of the customer at the same or the previous timestamp plus a credit or minus a debit
  (`[validation] balance_tolerance`). Postings of one day are often listed out of order, and
  a quarantined transaction in between breaks the chain, so the row is not proven wrong.

A table whose *reject share* is above `[validation] max_reject_share` (default 0.5) makes the
data unusable for the steps after validation: `check_reject_share` raises `RejectShareError`.
The share is quarantined / rows in, where a `duplicate_id` row whose canonical values equal the
row it repeats (an extract that repeats each transaction per loan, say) counts on neither side:
it loses no information.

Output columns, the same order in `rejects` and `nulled_values`: `table`, `source`, `row`
(1-based record number), `rule`, `column`, `reason`, then the raw text: `raw` (the whole raw
record as JSON) in `rejects`, `raw_value` (the one raw value) in `nulled_values`.

Example:
    >>> from finintel.config import config_for_files
    >>> con = connect()
    >>> result = validate(con, config_for_files("c.csv", "t.csv"), Path("."))  # doctest: +SKIP
    >>> result.reports["transactions"].quarantined  # doctest: +SKIP
    3
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from finintel.config import ColumnSpec, FinintelConfig, ValidationSettings
from finintel.errors import ConfigError, DataError, InputFileError
from finintel.mapping import MappedTable, SourceCache, map_table
from finintel.parsing import ColumnParser, column_parser
from finintel.schema import CUSTOMER_CHILD_TABLES, TABLES, Column, Kind, Table
from finintel.sql import connect, first_line, quote_ident, quote_literal

REJECTS = "rejects"
NULLED = "nulled_values"
FLAGGED = "flagged_rows"
TABLE_ORDER = ("customers", "transactions", "loans", "labels")
# The column dated against customer_since in each table that has one, and whether a row dated
# before it is quarantined (True) or flagged and kept (False).
SINCE_CHECKED = {"transactions": ("timestamp", True), "loans": ("start_date", False)}
FLAG_EXAMPLES = 5

__all__ = [
    "RejectShareError",
    "TableReport",
    "ValidationResult",
    "check_reject_share",
    "connect",
    "validate",
]


class RejectShareError(DataError):
    """A table lost more of its rows in validation than `[validation] max_reject_share` allows.

    The message names the table, its source, the share, the most frequent rule with one example
    and a hint; `report` is the table's report.
    """

    def __init__(self, message: str, report: TableReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class TableReport:
    """What happened to one table's rows."""

    table: str
    source: str
    rows_in: int
    clean: int
    quarantined: int
    by_rule: dict[str, int] = field(default_factory=dict)
    nulled: dict[str, int] = field(default_factory=dict)
    derived: bool = False
    repeats: int = 0  # duplicate_id rows equal to the row they repeat (among the quarantined)
    flagged: dict[str, int] = field(default_factory=dict)  # kept rows, by flag
    flag_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reject_share(self) -> float:
        """Share of the rows lost, not counting exact repeats on either side.

        Example:
            >>> TableReport("t", "t.csv", 10, 6, 4, repeats=2).reject_share
            0.25
        """
        rows = self.rows_in - self.repeats
        return (self.quarantined - self.repeats) / rows if rows > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reject_share": round(self.reject_share, 6)}


@dataclass
class ValidationResult:
    """Names of the clean relations in the engine, plus the per-table reports."""

    clean: dict[str, str]
    reports: dict[str, TableReport]
    extra_columns: list[str]
    rejects: str = REJECTS
    nulled: str = NULLED

    @property
    def rows_in(self) -> int:
        return sum(r.rows_in for r in self.reports.values() if not r.derived)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.reports.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": {name: r.to_dict() for name, r in self.reports.items()},
            "rows_in": self.rows_in,
            "clean": sum(r.clean for r in self.reports.values() if not r.derived),
            "quarantined": self.quarantined,
            "flagged": sum(sum(r.flagged.values()) for r in self.reports.values()),
            "extra_columns": self.extra_columns,
        }


def validate(
    con: duckdb.DuckDBPyConnection,
    cfg: FinintelConfig,
    base: Path,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Map, parse and check every configured table; leave `clean_<table>` relations in `con`."""
    today = today or date.today()
    cache = SourceCache()
    _create_outputs(con)
    reports: dict[str, TableReport] = {}
    clean: dict[str, str] = {}
    extras: list[str] = []
    for name in TABLE_ORDER:
        if name not in cfg.tables():
            continue
        if progress:
            progress(f"validating {name}")
        mapped = map_table(con, name, cfg, base, cache)
        if name == "customers":
            extras = list(mapped.extra_sql)
        checked = _check_rows(con, mapped, cfg.validation, today)
        reports[name] = _finish_table(
            con,
            mapped,
            checked,
            extras if name == "customers" else [],
            reports.get("customers"),
            cfg.validation,
        )
        clean[name] = f"clean_{name}"
        if name == "transactions" and "customers" not in clean:
            reports["customers"] = _derive_customers(con)
            clean["customers"] = "clean_customers"
    for name in TABLE_ORDER:
        if name not in clean:
            _empty_table(con, TABLES[name])
            clean[name] = f"clean_{name}"
    return ValidationResult(clean, reports, extras)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])


def _create_outputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f'CREATE OR REPLACE TABLE {REJECTS} ("table" VARCHAR, source VARCHAR, "row" BIGINT, '
        'rule VARCHAR, "column" VARCHAR, reason VARCHAR, raw VARCHAR)'
    )
    con.execute(
        f'CREATE OR REPLACE TABLE {NULLED} ("table" VARCHAR, source VARCHAR, "row" BIGINT, '
        'rule VARCHAR, "column" VARCHAR, reason VARCHAR, raw_value VARCHAR)'
    )
    con.execute(
        f'CREATE OR REPLACE TABLE {FLAGGED} ("table" VARCHAR, source VARCHAR, "row" BIGINT, '
        'flag VARCHAR, "column" VARCHAR, reason VARCHAR)'
    )


def _empty_table(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    cols = ", ".join(f"{quote_ident(c.name)} {c.sql_type}" for c in table.columns)
    con.execute(f"CREATE OR REPLACE TABLE clean_{table.name} ({cols})")


def _columns_of(mapped: MappedTable) -> list[tuple[Column, str, ColumnSpec]]:
    """(column, raw SQL, spec) for every mapped canonical and extra column, in schema order."""
    table = TABLES[mapped.name]
    cols = [
        (table.column(n), mapped.raw_sql[n], mapped.specs[n])
        for n in table.names
        if n in mapped.raw_sql
    ]
    for name, sql in mapped.extra_sql.items():
        extra = Column(name, Kind.NUMBER, "extra numeric column declared in the config")
        cols.append((extra, sql, mapped.extra_specs[name]))
    if mapped.name == "transactions" and mapped.amount_sign == "positive":
        # The sign comes from the direction column: it must be valid and the amount positive.
        stricter = {
            "amount": dataclasses.replace(TABLES["transactions"].column("amount"), min_value=0),
            "direction": dataclasses.replace(
                TABLES["transactions"].column("direction"), required=True
            ),
        }
        cols = [(stricter.get(c.name, c), s, sp) for c, s, sp in cols]
    return cols


def _check_rows(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedTable,
    settings: ValidationSettings,
    today: date,
) -> str:
    """Materialise `checked_<table>`: typed values, the row's error and its nulled values."""
    cols = _columns_of(mapped)
    types = {**mapped.raw_types, **mapped.extra_types}
    parsers: list[ColumnParser] = [
        column_parser(col, types[col.name], spec, settings, today) for col, _, spec in cols
    ]
    signed = mapped.amount_sign != "positive"
    if mapped.name == "transactions" and "direction" in mapped.raw_sql and signed:
        raise ConfigError(
            "[transactions] maps a direction column and also says amounts are signed "
            f"(amount_sign = {mapped.amount_sign!r}); use one or the other"
        )
    stage1 = ", ".join(
        ["src._row AS _row"]
        + [
            f"{p.text_sql.format(raw=raw)} AS {quote_ident('t:' + p.column.name)}"
            for p, (_, raw, _) in zip(parsers, cols, strict=True)
        ]
        + [
            f"({j.matched_sql}) AS {quote_ident(f'j:{i}')}"
            for i, j in enumerate(mapped.join_checks)
        ]
        + [
            f"({j.reason_sql}) AS {quote_ident(f'jr:{i}')}"
            for i, j in enumerate(mapped.join_checks)
        ]
    )
    stage2 = ", ".join(
        f"{p.parsed(quote_ident('t:' + p.column.name))} AS {quote_ident('p:' + p.column.name)}"
        for p in parsers
    )
    errors = {
        p.column.name: p.error(quote_ident("t:" + p.column.name), quote_ident("p:" + p.column.name))
        for p in parsers
    }
    join_errors = [
        f"CASE WHEN NOT {quote_ident(f'j:{i}')} THEN {{'rule': 'unmatched_join', "
        f"'column': NULL, 'reason': {quote_ident(f'jr:{i}')}, 'raw': NULL}} END"
        for i in range(len(mapped.join_checks))
    ]
    required = [p.column.name for p in parsers if p.column.required]
    optional = [p.column.name for p in parsers if not p.column.required]
    row_error = [*join_errors, *[errors[n] for n in required]]
    row_error_sql = f"coalesce({', '.join(row_error)})" if len(row_error) > 1 else row_error[0]
    values = [_final_value(p, errors) for p in parsers]
    if mapped.name == "transactions" and mapped.amount_sign != "positive":
        values = _signed_amounts(values, mapped.amount_sign)
    nulled_sql = (
        f"list_filter([{', '.join(errors[n] for n in optional)}], lambda x: x IS NOT NULL)"
        if optional
        else "[]"
    )
    checked = f"checked_{mapped.name}"
    sql = (
        f"CREATE OR REPLACE TABLE {checked} AS SELECT _row, {', '.join(values)}, "
        f"{row_error_sql} AS row_error, {nulled_sql} AS nulled FROM "
        f"(SELECT *, {stage2} FROM (SELECT {stage1} FROM {mapped.from_sql}))"
    )
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise ConfigError(
            f"{mapped.source_label}: the [{mapped.name}] mapping fails on the data: "
            f"{first_line(exc)}"
        ) from None
    return checked


def _final_value(parser: ColumnParser, errors: dict[str, str]) -> str:
    col = parser.column
    value = quote_ident("p:" + col.name)
    if not col.required:
        value = f"CASE WHEN ({errors[col.name]}) IS NULL THEN {value} END"
    if col.kind is Kind.DATE:
        value = f"CAST({value} AS DATE)"
    return f"{value} AS {quote_ident(col.name)}"


def _signed_amounts(values: list[str], sign: str) -> list[str]:
    """Derive direction from the sign of amount and keep the amount's magnitude."""
    negative, positive = ("debit", "credit") if sign == "negative_is_debit" else ("credit", "debit")
    amount = quote_ident("p:amount")
    out = [v for v in values if not v.endswith(' AS "amount"')]
    out.append(f'abs({amount}) AS "amount"')
    out.append(
        f"CASE WHEN {amount} < 0 THEN '{negative}' WHEN {amount} >= 0 THEN '{positive}' END "
        'AS "direction"'
    )
    return out


def _finish_table(
    con: duckdb.DuckDBPyConnection,
    mapped: MappedTable,
    checked: str,
    extras: list[str],
    customers: TableReport | None,
    settings: ValidationSettings,
) -> TableReport:
    """Quarantine row errors, malformed records, duplicates, orphans and rows dated before the
    customer's `customer_since`; build clean_<table>; flag inconsistent balances.

    Orphans are checked against the customers when there are any yet (`customers` is their
    report); transactions read before customers are derived from them have none to check.
    """
    name = mapped.name
    table = TABLES[name]
    label = quote_literal(mapped.source_label)
    raw_json = _raw_json(con, mapped.relation)
    con.execute(
        f"INSERT INTO {REJECTS} SELECT {quote_literal(name)}, {label}, c._row, "
        f"c.row_error.rule, c.row_error.column, c.row_error.reason, r.raw FROM {checked} c "
        f"LEFT JOIN ({raw_json}) r ON r.__r = c._row WHERE c.row_error IS NOT NULL"
    )
    if mapped.malformed:
        con.executemany(
            f"INSERT INTO {REJECTS} VALUES ({quote_literal(name)}, {label}, ?, "
            "'malformed_row', NULL, ?, to_json(?::VARCHAR))",
            [(m.row, f"malformed record: {m.problem}", m.text) for m in mapped.malformed],
        )
    con.execute(
        f"INSERT INTO {NULLED} SELECT {quote_literal(name)}, {label}, _row, e.rule, e.column, "
        f"e.reason, e.raw FROM (SELECT _row, unnest(nulled) AS e FROM {checked} "
        "WHERE row_error IS NULL AND len(nulled) > 0)"
    )
    ok = f"ok_{name}"
    present = [c for c in [*table.names, *extras] if c in _columns(con, checked)]
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {ok} AS SELECT _row, "
        f"{', '.join(quote_ident(c) for c in present)} FROM {checked} WHERE row_error IS NULL"
    )
    dropped = f"dropped_{name}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {dropped} (_row BIGINT)")
    key = table.unique_key
    repeats = 0
    if key is not None and key in present:
        repeats = _quarantine_duplicates(con, name, label, ok, key, present, raw_json, dropped)
    if name in CUSTOMER_CHILD_TABLES and customers is not None:
        _quarantine_orphans(con, name, label, ok, raw_json, dropped, customers.derived)
        since_column, quarantine = SINCE_CHECKED.get(name, ("", False))
        if since_column in present and not customers.derived:
            _check_before_since(con, name, label, ok, since_column, quarantine, raw_json, dropped)
    if name == "transactions" and "balance_after" in present:
        _flag_balances(con, label, ok, dropped, settings.balance_tolerance)
    order = "_row"
    cols = ", ".join(_canonical_select(table, present, extras))
    con.execute(
        f"CREATE OR REPLACE TABLE clean_{name} AS SELECT {cols} FROM {ok} "
        f"ANTI JOIN {dropped} USING (_row) ORDER BY {order}"
    )
    return _report(con, mapped, name, repeats)


def _canonical_select(table: Table, present: list[str], extras: list[str]) -> list[str]:
    """Every canonical column (NULL when unmapped) followed by the extra columns."""
    out = [
        quote_ident(c.name) if c.name in present else f"NULL::{c.sql_type} AS {quote_ident(c.name)}"
        for c in table.columns
    ]
    return out + [quote_ident(e) for e in extras]


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [str(r[0]) for r in con.execute(f"DESCRIBE {quote_ident(relation)}").fetchall()]


def _raw_json(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    cols = [c for c in _columns(con, relation) if c != "_row"]
    fields = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in cols)
    return f"SELECT _row AS __r, to_json(struct_pack({fields})) AS raw FROM {quote_ident(relation)}"


def _quarantine_duplicates(
    con: duckdb.DuckDBPyConnection,
    name: str,
    label: str,
    ok: str,
    key: str,
    present: list[str],
    raw_json: str,
    dropped: str,
) -> int:
    """Quarantine every row whose key an earlier row has; return how many repeat it exactly.

    A repeat has the same canonical values as the first row with its key (the raw records may
    differ in columns that are not mapped).
    """
    k = quote_ident(key)
    same = " AND ".join(
        f"o.{quote_ident(c)} IS NOT DISTINCT FROM first.{quote_ident(c)}" for c in present
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dup_{name} AS SELECT o._row, o.{k} AS key, f.first_row, "
        f"({same}) AS repeat FROM {ok} o JOIN (SELECT {k}, min(_row) AS first_row FROM {ok} "
        f"WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1) f ON o.{k} = f.{k} "
        f"JOIN {ok} first ON first._row = f.first_row WHERE o._row <> f.first_row"
    )
    con.execute(
        f"INSERT INTO {REJECTS} SELECT {quote_literal(name)}, {label}, d._row, 'duplicate_id', "
        f"{quote_literal(key)}, concat({quote_literal(key + ' ')}, '''', d.key, "
        f"''' already appears in row ', d.first_row), r.raw FROM dup_{name} d "
        f"LEFT JOIN ({raw_json}) r ON r.__r = d._row"
    )
    con.execute(f"INSERT INTO {dropped} SELECT _row FROM dup_{name}")
    return _scalar(con, f"SELECT count(*) FILTER (WHERE repeat) FROM dup_{name}")


def _quarantine_orphans(
    con: duckdb.DuckDBPyConnection,
    name: str,
    label: str,
    ok: str,
    raw_json: str,
    dropped: str,
    customers_derived: bool,
) -> None:
    missing = "concat('customer_id ''', o.customer_id, ''' is not in the customers table')"
    if customers_derived:  # no customer rows were checked, so none can have been quarantined
        reason, quarantined_join = missing, ""
    else:
        reason = (
            "CASE WHEN q.first_row IS NOT NULL THEN concat('customer_id ''', o.customer_id, "
            f"''' was quarantined in customers row ', q.first_row) ELSE {missing} END"
        )
        quarantined_join = (
            "LEFT JOIN (SELECT customer_id, min(_row) AS first_row FROM checked_customers "
            "WHERE row_error IS NOT NULL AND customer_id IS NOT NULL GROUP BY customer_id) q "
            "ON q.customer_id = o.customer_id"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE orphan_{name} AS SELECT o._row, {reason} AS reason "
        f"FROM {ok} o ANTI JOIN {dropped} d USING (_row) "
        f"ANTI JOIN clean_customers c ON c.customer_id = o.customer_id {quarantined_join}"
    )
    con.execute(
        f"INSERT INTO {REJECTS} SELECT {quote_literal(name)}, {label}, o._row, "
        f"'unknown_customer', 'customer_id', o.reason, r.raw FROM orphan_{name} o "
        f"LEFT JOIN ({raw_json}) r ON r.__r = o._row"
    )
    con.execute(f"INSERT INTO {dropped} SELECT _row FROM orphan_{name}")


def _check_before_since(
    con: duckdb.DuckDBPyConnection,
    name: str,
    label: str,
    ok: str,
    column: str,
    quarantine: bool,
    raw_json: str,
    dropped: str,
) -> None:
    """Quarantine (or flag) rows dated before their (clean) customer's `customer_since`."""
    col = quote_ident(column)
    reason = (
        f"concat({quote_literal(column + ' ')}, strftime(CAST(o.{col} AS DATE), '%Y-%m-%d'), "
        f"{quote_literal(' is before the customer_since ')}, "
        f"strftime(c.customer_since, '%Y-%m-%d'), {quote_literal(' of customer_id ')}, "
        "'''', o.customer_id, '''')"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE early_{name} AS SELECT o._row, {reason} AS reason "
        f"FROM {ok} o ANTI JOIN {dropped} d USING (_row) "
        "JOIN clean_customers c ON c.customer_id = o.customer_id "
        f"WHERE CAST(o.{col} AS DATE) < c.customer_since"
    )
    if not quarantine:
        con.execute(
            f"INSERT INTO {FLAGGED} SELECT {quote_literal(name)}, {label}, _row, "
            f"'before_customer_since', {quote_literal(column)}, reason FROM early_{name} "
            "ORDER BY _row"
        )
        return
    con.execute(
        f"INSERT INTO {REJECTS} SELECT {quote_literal(name)}, {label}, e._row, "
        f"'before_customer_since', {quote_literal(column)}, e.reason, r.raw FROM early_{name} e "
        f"LEFT JOIN ({raw_json}) r ON r.__r = e._row"
    )
    con.execute(f"INSERT INTO {dropped} SELECT _row FROM early_{name}")


def _flag_balances(
    con: duckdb.DuckDBPyConnection, label: str, ok: str, dropped: str, tolerance: float
) -> None:
    """Flag kept transactions whose balance_after follows from no earlier balance.

    The order of a customer's postings at one timestamp is unknown (often only the day is
    given), so a row is consistent when some balance of the customer at the same or the
    previous timestamp, plus a credit or minus a debit, gives its balance. Rows at the
    customer's first timestamp are not checked: their previous balance is not in the data.
    """
    tol = repr(float(tolerance))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE balance_check AS SELECT _row, customer_id, balance_after, "
        "CASE WHEN direction = 'credit' THEN amount ELSE -amount END AS signed, "
        "dense_rank() OVER w AS g, lag(balance_after) OVER w2 AS prev_balance, "
        f"lag(_row) OVER w2 AS prev_row FROM {ok} ANTI JOIN {dropped} USING (_row) "
        "WHERE balance_after IS NOT NULL AND direction IS NOT NULL "
        "WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp), "
        "w2 AS (PARTITION BY customer_id ORDER BY timestamp, _row)"
    )
    reason = (
        "concat('balance_after ', b.balance_after, ' does not follow from a balance of the "
        "customer at the same or the previous time (e.g. row ', b.prev_row, ': ', "
        "b.prev_balance, CASE WHEN b.signed < 0 THEN ' - ' ELSE ' + ' END, abs(b.signed), "
        "' = ', b.prev_balance + b.signed, ')')"
    )
    con.execute(
        f"INSERT INTO {FLAGGED} SELECT 'transactions', {label}, b._row, 'balance_mismatch', "
        f"'balance_after', {reason} FROM balance_check b WHERE b.g > 1 AND NOT EXISTS ("
        "SELECT 1 FROM balance_check p WHERE p.customer_id = b.customer_id "
        "AND p.g IN (b.g - 1, b.g) AND p._row <> b._row "
        f"AND abs(p.balance_after + b.signed - b.balance_after) <= {tol}) ORDER BY b._row"
    )


def _report(
    con: duckdb.DuckDBPyConnection, mapped: MappedTable, name: str, repeats: int
) -> TableReport:
    clean = _scalar(con, f"SELECT count(*) FROM clean_{name}")
    rules = con.execute(
        f'SELECT rule, count(*) FROM {REJECTS} WHERE "table" = ? GROUP BY rule ORDER BY rule',
        [name],
    ).fetchall()
    nulled = con.execute(
        f'SELECT "column" || \':\' || rule, count(*) FROM {NULLED} WHERE "table" = ? '
        "GROUP BY ALL ORDER BY 1",
        [name],
    ).fetchall()
    flagged = con.execute(
        f'SELECT flag, count(*) FROM {FLAGGED} WHERE "table" = ? GROUP BY flag ORDER BY flag',
        [name],
    ).fetchall()
    examples = con.execute(
        f'SELECT "row", flag, "column", reason FROM {FLAGGED} WHERE "table" = ? '
        f'ORDER BY "row", flag LIMIT {FLAG_EXAMPLES}',
        [name],
    ).fetchall()
    quarantined = sum(int(n) for _, n in rules)
    if clean + quarantined != mapped.rows_in:
        raise InputFileError(
            mapped.source_label,
            f"internal count mismatch for {name}: {mapped.rows_in} rows in, {clean} clean, "
            f"{quarantined} quarantined; please report this",
        )
    return TableReport(
        name,
        mapped.source_label,
        mapped.rows_in,
        clean,
        quarantined,
        {str(r): int(n) for r, n in rules},
        {str(r): int(n) for r, n in nulled},
        repeats=repeats,
        flagged={str(f): int(n) for f, n in flagged},
        flag_examples=[
            {"row": int(row), "flag": str(flag), "column": str(col), "reason": str(reason)}
            for row, flag, col, reason in examples
        ],
    )


def _derive_customers(con: duckdb.DuckDBPyConnection) -> TableReport:
    """Without a customers table, every customer seen in clean transactions is a customer."""
    cols = ", ".join(
        "customer_id" if c.name == "customer_id" else f"NULL::{c.sql_type} AS {quote_ident(c.name)}"
        for c in TABLES["customers"].columns
    )
    con.execute(
        f"CREATE OR REPLACE TABLE clean_customers AS SELECT {cols} FROM "
        "(SELECT DISTINCT customer_id FROM clean_transactions) ORDER BY customer_id"
    )
    count = _scalar(con, "SELECT count(*) FROM clean_customers")
    return TableReport(
        "customers", "derived from the clean transactions", count, count, 0, derived=True
    )


# What to change when most rows break one rule.
_HINTS = {
    "malformed_row": "check the table's `delimiter`, `quote` and `header`",
    "unmatched_join": "check the join's `on` columns and `filter`",
    "required_missing": "map the required column to a source column that holds values",
    "unparseable_number": "set the column's `decimal`, `thousands` or `currency`",
    "unparseable_date": "set the column's `formats` (strptime codes such as %d/%m/%Y %H:%M)",
    "invalid_value": "map the source's values onto the canonical ones with the column's `map`",
    "negative_value": "check the column mapping, or `amount_sign` for signed amounts",
    "out_of_range": "check the column mapping and its unit",
    "placeholder_date": "check the column mapping, or `[validation] placeholder_dates`",
    "date_too_early": "check the column's `formats` (%y or %Y?), or `[validation] earliest_date`",
    "future_date": "check the column's `formats` (day and month swapped?), or "
    "`[validation] latest_date` (or --today)",
    "duplicate_id": "check which source column is mapped to the id",
    "unknown_customer": "check that both tables write the customer ids the same way",
    "before_customer_since": "check the `customer_since` mapping and the dates' `formats`",
}


def check_reject_share(
    con: duckdb.DuckDBPyConnection,
    result: ValidationResult,
    settings: ValidationSettings,
    where: str = "rejects.csv",
) -> None:
    """Raise `RejectShareError` for the first table that lost too many of its rows.

    `where` names the rejects file in the message. Needs the engine `validate` filled.

    Example:
        >>> con = connect()
        >>> result = validate(con, cfg, Path("."))  # doctest: +SKIP
        >>> check_reject_share(con, result, cfg.validation)  # doctest: +SKIP
        Traceback (most recent call last):
        finintel.validate.RejectShareError: t.csv: 3 of 3 transactions rejected (100%), ...
    """
    limit = settings.max_reject_share
    for name in TABLE_ORDER:
        report = result.reports.get(name)
        if report is None or report.derived or report.reject_share <= limit:
            continue
        raise RejectShareError(_share_message(con, report, limit, where), report)


def _share_message(
    con: duckdb.DuckDBPyConnection, report: TableReport, limit: float, where: str
) -> str:
    name, rows_in, lost = report.table, report.rows_in, report.quarantined
    counts = f"{lost:,} of {rows_in:,} {name} rejected ({_percent(report.reject_share)})"
    if report.repeats:
        counts += f"; {report.repeats:,} exact repeats of an earlier row not counted"
    opening = f"{report.source}: "
    if report.clean == 0:
        opening += "no row passed validation: "
    top, top_n = min(report.by_rule.items(), key=lambda kv: (-kv[1], kv[0]))
    row, reason = con.execute(
        f'SELECT "row", reason FROM {REJECTS} WHERE "table" = ? AND rule = ? '
        'ORDER BY "row" LIMIT 1',
        [name, top],
    ).fetchall()[0]
    hint = _HINTS.get(top, "check the mapping of the column named in the reason")
    if name == "labels":
        hint += ", or remove [labels] from the config for an unsupervised risk score"
    return (
        f"{opening}{counts}, more than [validation] max_reject_share = {limit:g} allows. "
        f"Most rows break {top}: {top_n:,}; e.g. row {row}: {reason}. "
        f"Hint: {hint}; or raise [validation] max_reject_share if this share is expected. "
        f"Nothing was built after validation; see {where} for each row's reason."
    )


def _percent(share: float) -> str:
    """A share as a percentage that does not round a partial share to 0% or 100%.

    Example:
        >>> _percent(1.0), _percent(0.4), _percent(0.9996), _percent(0.0004)
        ('100%', '40%', '99.96%', '0.04%')
    """
    text = f"{share:.0%}"
    if text in ("0%", "100%") and 0 < share < 1:
        text = f"{share:.2%}"
    return text
