"""SQL that turns one raw value into its canonical type, and says why when it cannot.

For each canonical column the parser builds three expressions, evaluated in three stacked
SELECTs so each is computed once per row:

1. `text`: the raw value cleaned (trimmed, missing markers to NULL, value map applied), or the
   native value when the source already has the right type (Parquet numbers and dates);
2. `parsed`: the typed value, NULL when the text does not parse;
3. `error`: NULL, or a struct `{rule, column, reason, raw}` naming the first rule the value breaks.

Example:
    >>> from finintel.schema import TRANSACTIONS
    >>> from finintel.config import ColumnSpec, ValidationSettings
    >>> p = column_parser(TRANSACTIONS.column("amount"), "VARCHAR", ColumnSpec(source="a"),
    ...                   ValidationSettings(), date(2026, 1, 1))
    >>> "DECIMAL(18,2)" in p.parsed("t")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from finintel.config import ColumnSpec, ValidationSettings
from finintel.schema import CREDIT, DEBIT, Column, Kind
from finintel.sql import quote_literal

DEBIT_WORDS = ("debit", "dr", "d", "withdrawal", "out", "outflow", "expense", "purchase", "-")
CREDIT_WORDS = ("credit", "cr", "c", "deposit", "in", "inflow", "income", "+")
TRUE_WORDS = ("1", "1.0", "true", "t", "yes", "y", "bad", "default", "defaulted")
FALSE_WORDS = ("0", "0.0", "false", "f", "no", "n", "good")

_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "DECIMAL",
)
_TEMPORAL_TYPES = ("DATE", "TIMESTAMP")
RAW_SHOWN = 60


def _in_list(expr: str, words: tuple[str, ...] | list[str]) -> str:
    return f"{expr} IN ({', '.join(quote_literal(w) for w in words)})"


def _shown(expr: str) -> str:
    """A raw value as it appears in a reason: quoted and cut to a readable length."""
    return f"'''' || left(CAST({expr} AS VARCHAR), {RAW_SHOWN}) || ''''"


@dataclass(frozen=True)
class ColumnParser:
    """The three SQL expressions for one column; `t` and `p` name the earlier stages."""

    column: Column
    native: bool
    text_sql: str
    parse_template: str
    checks: list[tuple[str, str, str]]  # (condition, rule, reason) over {t} and {p}

    def parsed(self, t: str) -> str:
        return self.parse_template.format(t=t)

    def error(self, t: str, p: str) -> str:
        """A CASE giving the first broken rule as a struct, or NULL."""
        name = quote_literal(self.column.name)
        whens = [
            f"WHEN {cond.format(t=t, p=p)} THEN {{'rule': {quote_literal(rule)}, "
            f"'column': {name}, 'reason': {reason.format(t=t, p=p)}, "
            f"'raw': CAST({t} AS VARCHAR)}}"
            for cond, rule, reason in self.checks
        ]
        return f"CASE {' '.join(whens)} END" if whens else "NULL"


def column_parser(
    column: Column,
    raw_type: str,
    spec: ColumnSpec,
    settings: ValidationSettings,
    today: date,
) -> ColumnParser:
    """Build the parser of `column` for a raw expression of engine type `raw_type`."""
    native = _is_native(column.kind, raw_type) and not spec.map
    text_sql = "{raw}" if native else _clean_text(spec, settings)
    name = column.name
    checks: list[tuple[str, str, str]] = []
    if column.required:
        checks.append(("{t} IS NULL", "required_missing", quote_literal(f"{name} is empty")))
    parse, failure = _parse(column, spec, native)
    if failure is not None:
        checks.append(failure)
    checks.extend(_range_checks(column, settings, today))
    return ColumnParser(column, native, text_sql, parse, checks)


def _is_native(kind: Kind, raw_type: str) -> bool:
    base = raw_type.split("(")[0].upper()
    if kind in (Kind.NUMBER, Kind.MONEY, Kind.FLAG):
        return base in _NUMERIC_TYPES
    if kind in (Kind.DATE, Kind.TIMESTAMP):
        return base in _TEMPORAL_TYPES or base.startswith("TIMESTAMP")
    return False


def _clean_text(spec: ColumnSpec, settings: ValidationSettings) -> str:
    trimmed = "trim(CAST({raw} AS VARCHAR))"
    text = f"CASE WHEN {_in_list(trimmed, settings.missing_values)} THEN NULL ELSE {trimmed} END"
    if spec.map:
        cases = " ".join(
            f"WHEN {quote_literal(str(k))} THEN {quote_literal(str(v))}"
            for k, v in spec.map.items()
        )
        text = f"(CASE ({text}) {cases} ELSE ({text}) END)"
    return text.replace("{", "{{").replace("}", "}}").replace("{{raw}}", "{raw}")


def _number_text(spec: ColumnSpec) -> str:
    expr = "{t}"
    for symbol in [*spec.currency, " "]:
        expr = f"replace({expr}, {quote_literal(symbol)}, '')"
    if spec.thousands:
        expr = f"replace({expr}, {quote_literal(spec.thousands)}, '')"
    if spec.decimal != ".":
        expr = f"replace({expr}, {quote_literal(spec.decimal)}, '.')"
    return expr


def _parse(
    column: Column, spec: ColumnSpec, native: bool
) -> tuple[str, tuple[str, str, str] | None]:
    """The typed-value template and the check that fires when parsing fails."""
    name = column.name
    kind = column.kind
    if kind in (Kind.ID, Kind.TEXT):
        return "{t}", None
    if kind in (Kind.NUMBER, Kind.MONEY):
        target = column.sql_type
        if native:
            parse = f"try_cast({{t}} AS {target})"
        else:
            number = _number_text(spec)
            if kind is Kind.MONEY:
                parse = (
                    f"coalesce(try_cast({number} AS {target}), "
                    f"try_cast(try_cast({number} AS DOUBLE) AS {target}))"
                )
            else:
                parse = f"try_cast({number} AS DOUBLE)"
        finite = "" if kind is Kind.MONEY else " OR NOT isfinite({p})"
        fail = (
            f"{{t}} IS NOT NULL AND ({{p}} IS NULL{finite})",
            "unparseable_number",
            f"concat({quote_literal(name + ' ')}, {_shown('{t}')}, ' is not a number')",
        )
        return parse, fail
    if kind in (Kind.DATE, Kind.TIMESTAMP):
        if native:
            parse = "CAST({t} AS TIMESTAMP)"
            wanted = "a date"
        elif spec.formats:
            fmts = ", ".join(quote_literal(f) for f in spec.formats)
            parse = f"try_strptime({{t}}, [{fmts}])"
            wanted = f"the format(s) {', '.join(spec.formats)}"
        else:
            parse = "try_cast({t} AS TIMESTAMP)"
            wanted = "an ISO date (YYYY-MM-DD[ HH:MM:SS]); set 'formats' for other layouts"
        fail = (
            "{t} IS NOT NULL AND {p} IS NULL",
            "unparseable_date",
            f"concat({quote_literal(name + ' ')}, {_shown('{t}')}, "
            f"{quote_literal(' does not match ' + wanted)})",
        )
        return parse, fail
    if kind is Kind.DIRECTION:
        low = "lower({t})"
        parse = (
            f"CASE WHEN {_in_list(low, DEBIT_WORDS)} THEN {quote_literal(DEBIT)} "
            f"WHEN {_in_list(low, CREDIT_WORDS)} THEN {quote_literal(CREDIT)} END"
        )
        fail = (
            "{t} IS NOT NULL AND {p} IS NULL",
            "invalid_value",
            f"concat({quote_literal(name + ' ')}, {_shown('{t}')}, "
            "' is neither debit nor credit; map it with direction.map in the config')",
        )
        return parse, fail
    if kind is Kind.FLAG:
        text = "CAST({t} AS VARCHAR)" if native else "lower({t})"
        parse = (
            f"CASE WHEN {_in_list(text, TRUE_WORDS)} THEN 1 "
            f"WHEN {_in_list(text, FALSE_WORDS)} THEN 0 END"
        )
        fail = (
            "{t} IS NOT NULL AND {p} IS NULL",
            "invalid_value",
            f"concat({quote_literal(name + ' ')}, {_shown('{t}')}, ' is not 0 or 1')",
        )
        return parse, fail
    raise AssertionError(f"unhandled kind {kind}")


def _range_checks(
    column: Column, settings: ValidationSettings, today: date
) -> list[tuple[str, str, str]]:
    name = column.name
    checks: list[tuple[str, str, str]] = []
    if column.min_value is not None:
        rule = "negative_value" if column.min_value == 0 else "out_of_range"
        words = "is negative" if column.min_value == 0 else f"is below {column.min_value:g}"
        checks.append(
            (
                f"{{p}} < {column.min_value}",
                rule,
                f"concat({quote_literal(name + ' ')}, CAST({{p}} AS VARCHAR), "
                f"{quote_literal(' ' + words)})",
            )
        )
    if column.max_value is not None:
        checks.append(
            (
                f"{{p}} > {column.max_value}",
                "out_of_range",
                f"concat({quote_literal(name + ' ')}, CAST({{p}} AS VARCHAR), "
                f"{quote_literal(f' is above {column.max_value:g}')})",
            )
        )
    if column.kind in (Kind.DATE, Kind.TIMESTAMP):
        day = "CAST({p} AS DATE)"
        shown = f"concat({quote_literal(name + ' ')}, strftime({day}, '%Y-%m-%d'), "
        if settings.placeholder_dates:
            days = ", ".join(f"DATE '{d.isoformat()}'" for d in settings.placeholder_dates)
            checks.append(
                (f"{day} IN ({days})", "placeholder_date", shown + "' is a placeholder date')")
            )
        earliest = settings.earliest_date.isoformat()
        checks.append(
            (
                f"{day} < DATE '{earliest}'",
                "date_too_early",
                shown + quote_literal(f" is before {earliest}") + ")",
            )
        )
        if not column.allow_future:
            latest = (settings.latest_date or today).isoformat()
            checks.append(
                (
                    f"{day} > DATE '{latest}'",
                    "future_date",
                    shown + quote_literal(f" is in the future (after {latest})") + ")",
                )
            )
    return checks
