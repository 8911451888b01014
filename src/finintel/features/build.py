"""Build the customer feature table: one row per customer, computed in the engine as SQL.

`plan_features` looks at the clean data once (what columns hold values, the reference date,
the most common channels and categories) and fixes what will be computed: a `FeaturePlan`,
which can be stored and reused so that new data gets exactly the same columns.
`build_features` then runs one aggregation pass over the transactions and one small one over
the loans, and joins them onto every customer (customers without transactions get zeros).
Money is summed exactly (DECIMAL), so results do not depend on row order or thread timing.

Example:
    >>> plan = plan_features(con, FeatureSettings())  # doctest: +SKIP
    >>> build_features(con, plan, "features")  # doctest: +SKIP
    >>> con.sql("select count(*) from features").fetchall()  # doctest: +SKIP
    [(500,)]
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb

from finintel.config import FeatureSettings
from finintel.features.catalog import FEATURES, MIX_FEATURES, Feature
from finintel.sql import quote_ident, quote_literal

PROFILE_COLUMNS = (
    "annual_income",
    "account_balance",
    "credit_limit",
    "loan_balance",
    "credit_score",
    "employment_years",
)


@dataclass(frozen=True)
class FeaturePlan:
    """What the feature table holds and the fixed parameters it is computed with."""

    as_of: date
    window_months: int
    night_start_hour: int
    night_end_hour: int
    capabilities: list[str]
    channels: list[str]
    categories: list[str]
    extra_columns: list[str]
    features: list[str]
    omitted: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        values = dict(data)
        values["as_of"] = date.fromisoformat(values["as_of"])
        return cls(**values)


def plan_features(
    con: duckdb.DuckDBPyConnection,
    settings: FeatureSettings,
    extra_columns: list[str] | None = None,
    tables: dict[str, str] | None = None,
    fallback_as_of: date | None = None,
) -> FeaturePlan:
    """Decide the features from what the clean data holds."""
    names = _tables(tables)
    tx = _profile_transactions(con, names["transactions"])
    caps: set[str] = set()
    if tx["n"]:
        caps.add("transactions")
        caps.update(k for k in ("channel", "category", "balance") if tx[k])
        if tx["time_of_day"]:
            caps.add("time_of_day")
    customer_counts = _non_null_counts(
        con, names["customers"], ["age", "birth_date", "customer_since", *PROFILE_COLUMNS]
    )
    caps.update(f"customers.{c}" for c in PROFILE_COLUMNS if customer_counts[c])
    if customer_counts["age"] or customer_counts["birth_date"]:
        caps.add("age")
    if customer_counts["customer_since"] or "transactions" in caps:
        caps.add("tenure")
    loans = con.execute(f"SELECT count(*) FROM {quote_ident(names['loans'])}").fetchall()[0][0]
    if loans:
        caps.add("loans")
    if "loans" in caps or "customers.loan_balance" in caps:
        caps.add("debt")

    as_of = settings.as_of or (tx["last"].date() if tx["last"] else None)
    if as_of is None:
        as_of = customer_counts["max_since"] or fallback_as_of or date.today()
    window = settings.trend_months
    if tx["first"] is not None:
        span = (as_of.year - tx["first"].year) * 12 + as_of.month - tx["first"].month + 1
        window = max(2, min(window, span))
    chosen, omitted = [], {}
    for feature in FEATURES:
        missing = sorted(feature.needs - caps)
        if missing:
            omitted[feature.name] = f"the data has no {', '.join(missing)}"
        else:
            chosen.append(feature.name)
    levels = {}
    for mix in ("channel", "category"):
        levels[mix] = (
            _top_levels(con, names["transactions"], mix, settings.max_mix_levels, as_of)
            if mix in caps
            else []
        )
        if mix not in caps:
            omitted[next(f.name for f in MIX_FEATURES if mix in f.needs)] = f"the data has no {mix}"
    return FeaturePlan(
        as_of=as_of,
        window_months=window,
        night_start_hour=settings.night_start_hour,
        night_end_hour=settings.night_end_hour,
        capabilities=sorted(caps),
        channels=levels["channel"],
        categories=levels["category"],
        extra_columns=list(extra_columns or []),
        features=chosen,
        omitted=omitted,
    )


def feature_columns(plan: FeaturePlan) -> list[str]:
    """The feature table's columns after customer_id, in order."""
    mix = [f"channel_share_{s}" for s in _slugs(plan.channels)]
    if plan.channels:
        mix.append("channel_share_other")
    mix += [f"category_spend_share_{s}" for s in _slugs(plan.categories)]
    if plan.categories:
        mix.append("category_spend_share_other")
    return [*plan.features, *mix, *plan.extra_columns]


def build_features(
    con: duckdb.DuckDBPyConnection,
    plan: FeaturePlan,
    target: str = "features",
    tables: dict[str, str] | None = None,
) -> str:
    """Create table `target` with one row per customer, ordered by customer_id."""
    con.execute(f"CREATE OR REPLACE TABLE {quote_ident(target)} AS {feature_query(plan, tables)}")
    return target


def feature_query(plan: FeaturePlan, tables: dict[str, str] | None = None) -> str:
    """The SELECT that computes the feature table."""
    names = _tables(tables)
    as_of = f"DATE '{plan.as_of.isoformat()}'"
    params = {"as_of": as_of, "window": str(plan.window_months)}
    selected = [_expr(f, params) for f in FEATURES if f.name in plan.features]
    selected += _mix_exprs(plan)
    selected += [f"c.{quote_ident(e)}::DOUBLE AS {quote_ident(e)}" for e in plan.extra_columns]
    joins = ""
    if "transactions" in plan.capabilities:
        joins += (
            f" LEFT JOIN ({_transaction_aggregates(plan, names['transactions'])}) t "
            "ON t.customer_id = c.customer_id"
        )
    else:
        joins += (
            " LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::TIMESTAMP AS first_ts) t "
            "ON false"
        )
    if "loans" in plan.capabilities:
        joins += (
            f" LEFT JOIN ({_loan_aggregates(plan, names['loans'])}) l "
            "ON l.customer_id = c.customer_id"
        )
    else:
        joins += (
            " LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::DOUBLE AS exposure) l ON false"
        )
    body = ", ".join(["c.customer_id", *selected])
    return f"SELECT {body} FROM {quote_ident(names['customers'])} c{joins} ORDER BY c.customer_id"


def _expr(feature: Feature, params: dict[str, str]) -> str:
    return f"{feature.sql.format(**params)} AS {quote_ident(feature.name)}"


def _mix_exprs(plan: FeaturePlan) -> list[str]:
    return _share_columns(plan.channels, "ch", "t.n", "channel_share_") + _share_columns(
        plan.categories, "cat", "t.debit_total", "category_spend_share_"
    )


def _share_columns(levels: list[str], part: str, total: str, prefix: str) -> list[str]:
    """One share column per level (aggregate `t.<part>_<i>` over `total`), plus `other`."""
    parts = [f"coalesce(t.{part}_{i}, 0)" for i in range(len(levels))]
    columns = [
        f"CASE WHEN {total} > 0 THEN {p}::DOUBLE / {total}::DOUBLE ELSE 0 END "
        f"AS {quote_ident(prefix + slug)}"
        for p, slug in zip(parts, _slugs(levels), strict=True)
    ]
    if levels:
        columns.append(
            f"CASE WHEN {total} > 0 THEN ({total} - ({' + '.join(parts)}))::DOUBLE / "
            f"{total}::DOUBLE ELSE 0 END AS {quote_ident(prefix + 'other')}"
        )
    return columns


def _transaction_aggregates(plan: FeaturePlan, relation: str) -> str:
    """One GROUP BY customer_id pass holding every transaction aggregate the features use.

    Conditions cost more than aggregates here (each conditional aggregate evaluates its
    condition over every row), so the query is shaped to need few of them:
    - per-row values are projected once in inner SELECTs: `debit_amount` is the amount of a
      debit and NULL otherwise, so debit count, total, maximum and squares are plain
      aggregates over it (NULLs are skipped); `window_debit` likewise for the trend window;
    - credit totals and counts are the whole minus the debit part (the clean data's
      direction is always 'debit' or 'credit');
    - one count per calendar month of the window gives the busiest month, the number of
      active months and the transactions in the window.
    """
    as_of = f"DATE '{plan.as_of.isoformat()}'"
    end = f"DATE '{(plan.as_of + timedelta(days=1)).isoformat()}'"
    window = plan.window_months
    rows = [
        "customer_id",
        "amount",
        "timestamp",
        "CASE WHEN direction = 'debit' THEN amount END AS debit_amount",
        # date_diff counts calendar-month boundaries crossed: 0 in the reference month
        f"date_diff('month', timestamp, {as_of}) AS months_ago",
        "dayofweek(timestamp) IN (0, 6) AS is_weekend",
    ]
    month_counts = [f"count_if(months_ago = {k})" for k in range(window)]
    aggs = [
        "count(*) AS n",
        "count(debit_amount) AS n_debit",
        "count(*) - count(debit_amount) AS n_credit",
        "sum(debit_amount) AS debit_total",
        "sum(amount) - coalesce(sum(debit_amount), 0) AS credit_total",
        "sum(debit_amount * CAST(debit_amount AS DECIMAL(20,2))) AS debit_sq",
        "max(debit_amount) AS max_debit",
        "max(amount) AS max_amount",
        "min(timestamp) AS first_ts",
        "max(timestamp) AS last_ts",
        "sum(window_debit) AS win_debit",
        f"sum(window_debit * ({window - 1} - months_ago)) AS win_xy",
        "count_if(is_weekend) AS n_weekend",
        # the engine computes each distinct aggregate once, so the month counts are shared
        f"greatest({', '.join(month_counts)}) AS peak_month_n",
        f"{' + '.join(month_counts)} AS window_n",
        f"{' + '.join(f'({c} > 0)::INTEGER' for c in month_counts)} AS active_month_n",
    ]
    if "time_of_day" in plan.capabilities:
        start, stop = plan.night_start_hour, plan.night_end_hour
        join = "OR" if start > stop else "AND"
        rows.append(f"(hour(timestamp) >= {start} {join} hour(timestamp) < {stop}) AS is_night")
        aggs.append("count_if(is_night) AS n_night")
    if "balance" in plan.capabilities:
        rows.append("balance_after")
        aggs += [
            "min(balance_after) AS bal_min",
            "sum(balance_after) AS bal_sum",
            "sum(balance_after * CAST(balance_after AS DECIMAL(20,2))) AS bal_sq",
            "count(balance_after) AS bal_n",
            # the balance after the latest transaction; equal timestamps resolve to the higher
            # balance, so the result does not depend on row order
            "arg_max(balance_after, epoch_us(timestamp)::HUGEINT * 100000000000000000000 "
            "+ CAST(balance_after * 100 AS HUGEINT)) AS bal_last",
            # distinct overdrawn days: a list of the (few) overdrawn rows' days, de-duplicated
            # per customer, is much cheaper than a DISTINCT aggregate over every row
            "len(list_distinct(list(CAST(timestamp AS DATE)) FILTER (balance_after < 0))) "
            "AS od_days",
        ]
    if plan.channels:
        rows.append("channel")
        aggs += [
            f"count_if(channel = {quote_literal(level)}) AS ch_{i}"
            for i, level in enumerate(plan.channels)
        ]
    if plan.categories:
        rows.append("category")
        aggs += [
            f"sum(CASE WHEN category = {quote_literal(level)} THEN debit_amount END) AS cat_{i}"
            for i, level in enumerate(plan.categories)
        ]
    source = f"SELECT {', '.join(rows)} FROM {quote_ident(relation)} WHERE timestamp < {end}"
    windowed = (
        f"SELECT *, CASE WHEN months_ago < {window} THEN debit_amount END AS window_debit "
        f"FROM ({source})"
    )
    return f"SELECT customer_id, {', '.join(aggs)} FROM ({windowed}) GROUP BY customer_id"


def _loan_aggregates(plan: FeaturePlan, relation: str) -> str:
    as_of = f"DATE '{plan.as_of.isoformat()}'"
    running = (
        f"(start_date IS NULL OR start_date <= {as_of}) "
        f"AND (end_date IS NULL OR end_date >= {as_of})"
    )
    return (
        "SELECT customer_id, count(*) AS n_loans, sum(amount) AS total, "
        f"coalesce(sum(amount) FILTER ({running}), 0) AS exposure "
        f"FROM {quote_ident(relation)} WHERE start_date IS NULL OR start_date <= {as_of} "
        "GROUP BY customer_id"
    )


def _tables(tables: dict[str, str] | None) -> dict[str, str]:
    names = {t: f"clean_{t}" for t in ("customers", "transactions", "loans")}
    names.update(tables or {})
    return names


def _profile_transactions(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, Any]:
    row = con.execute(
        "SELECT count(*), count(channel), count(category), count(balance_after), "
        "coalesce(bool_or(CAST(timestamp AS TIME) <> TIME '00:00:00'), false), "
        f"min(timestamp), max(timestamp) FROM {quote_ident(relation)}"
    ).fetchall()[0]
    keys = ("n", "channel", "category", "balance", "time_of_day", "first", "last")
    return dict(zip(keys, row, strict=True))


def _non_null_counts(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]
) -> dict[str, Any]:
    counts = ", ".join(f"count({quote_ident(c)})" for c in columns)
    row = con.execute(
        f"SELECT {counts}, max(customer_since) FROM {quote_ident(relation)}"
    ).fetchall()[0]
    result: dict[str, Any] = dict(zip(columns, row[:-1], strict=True))
    result["max_since"] = row[-1]
    return result


def _top_levels(
    con: duckdb.DuckDBPyConnection, relation: str, column: str, limit: int, as_of: date
) -> list[str]:
    """The most frequent levels (by count; categories among debits, since shares are of spend)."""
    debits_only = "AND direction = 'debit'" if column == "category" else ""
    rows = con.execute(
        f"SELECT {column}, count(*) AS n FROM {quote_ident(relation)} "
        f"WHERE {column} IS NOT NULL AND CAST(timestamp AS DATE) <= ? {debits_only} "
        f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT {int(limit)}",
        [as_of],
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def _slugs(levels: list[str]) -> list[str]:
    """Column-name-safe, unique versions of category levels: 'Card / POS' -> 'card_pos'."""
    seen: set[str] = set()
    out = []
    for level in levels:
        slug = re.sub(r"[^0-9a-z]+", "_", level.lower()).strip("_") or "blank"
        base, n = slug, 2
        while slug in seen or slug == "other":
            slug, n = f"{base}_{n}", n + 1
        seen.add(slug)
        out.append(slug)
    return out
