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
from decimal import ROUND_CEILING, Decimal
from typing import Any

import duckdb

from finintel.config import FeatureSettings
from finintel.features.catalog import (
    CATALOG,
    FEATURES,
    MIX_FEATURES,
    TYPOLOGY_FEATURES,
    Feature,
)
from finintel.sql import quote_ident, quote_literal

_TYPOLOGY_DEFAULTS = FeatureSettings()

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
    """What the feature table holds and the fixed parameters it is computed with.

    The typology thresholds have defaults, so a plan stored before they existed still loads
    (it lists none of the typology features, so they are not computed for it).
    """

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
    reporting_threshold: float = _TYPOLOGY_DEFAULTS.reporting_threshold
    structuring_band: float = _TYPOLOGY_DEFAULTS.structuring_band
    structuring_kinds: list[str] = field(
        default_factory=lambda: list(_TYPOLOGY_DEFAULTS.structuring_kinds)
    )
    pass_through_hours: int = _TYPOLOGY_DEFAULTS.pass_through_hours
    pass_through_min_share: float = _TYPOLOGY_DEFAULTS.pass_through_min_share
    tiny_amount: float = _TYPOLOGY_DEFAULTS.tiny_amount
    tiny_burst_minutes: int = _TYPOLOGY_DEFAULTS.tiny_burst_minutes
    round_unit: float = _TYPOLOGY_DEFAULTS.round_unit

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
    typologies = {f.name for f in TYPOLOGY_FEATURES}
    for feature in FEATURES:
        missing = sorted(feature.needs - caps)
        if missing:
            omitted[feature.name] = f"the data has no {', '.join(missing)}"
        elif feature.name in typologies and not settings.typologies:
            omitted[feature.name] = "typologies are turned off ([features] typologies = false)"
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
        reporting_threshold=settings.reporting_threshold,
        structuring_band=settings.structuring_band,
        structuring_kinds=list(settings.structuring_kinds),
        pass_through_hours=settings.pass_through_hours,
        pass_through_min_share=settings.pass_through_min_share,
        tiny_amount=settings.tiny_amount,
        tiny_burst_minutes=settings.tiny_burst_minutes,
        round_unit=settings.round_unit,
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
    params = {
        "as_of": as_of,
        "window": str(plan.window_months),
        "window_start": f"DATE '{_window_start(plan).isoformat()}'",
    }
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


def _window_start(plan: FeaturePlan) -> date:
    """The first day of the trend window's oldest month.

    Example:
        >>> _window_start(FeaturePlan(date(2024, 3, 31), 3, 22, 6, [], [], [], [], []))
        datetime.date(2024, 1, 1)
    """
    months = plan.as_of.year * 12 + plan.as_of.month - 1 - (plan.window_months - 1)
    return date(months // 12, months % 12 + 1, 1)


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
    """Every per-customer transaction aggregate the planned features read, as one relation.

    The main part is one GROUP BY customer_id pass (`_main_pass`); the typology features add
    the pass-through pairs (`_pass_through`) and the tiny debits (`_tiny_debits`), each a small
    aggregate joined on customer_id, and read the month counts of the main pass again for the
    dormant spells (`_with_dormancy`). Only the parts some planned feature reads are built.
    """
    reads = _reads(plan)
    main = _main_pass(plan, relation, reads)
    if reads & _DORMANCY_COLUMNS:
        main = _with_dormancy(main, plan.window_months)
    extra: list[str] = []
    joins = ""
    for alias, columns, query in (
        ("pt", _PASS_THROUGH_COLUMNS, _pass_through),
        ("tiny", _TINY_COLUMNS, _tiny_debits),
    ):
        if reads & columns:
            extra += [f"{alias}.{c}" for c in sorted(columns)]
            joins += (
                f" LEFT JOIN ({query(plan, relation)}) {alias} "
                f"ON {alias}.customer_id = m.customer_id"
            )
    if not extra:
        return main
    return f"SELECT m.*, {', '.join(extra)} FROM ({main}) m{joins}"


_DORMANCY_COLUMNS = frozenset({"gap_months", "gap_after_n", "lead_months", "lead_after_n"})
_PASS_THROUGH_COLUMNS = frozenset({"pt_n", "pt_total", "pt_max"})
_TINY_COLUMNS = frozenset({"tiny_n", "tiny_burst"})


def _reads(plan: FeaturePlan) -> set[str]:
    """The `t.` aggregates the planned catalogue features read, by name."""
    return {
        read.split(".", 1)[1]
        for name in plan.features
        if name in CATALOG
        for read in CATALOG[name].reads
        if read.startswith("t.")
    }


def _main_pass(plan: FeaturePlan, relation: str, reads: set[str]) -> str:
    """One GROUP BY customer_id pass holding every plain transaction aggregate.

    Conditions cost more than aggregates here (each conditional aggregate evaluates its
    condition over every row), so the query is shaped to need few of them:
    - per-row values are projected once in inner SELECTs: `debit_amount` is the amount of a
      debit and NULL otherwise, so debit count, total, maximum and squares are plain
      aggregates over it (NULLs are skipped); `window_debit` likewise for the trend window;
    - credit totals and counts are the whole minus the debit part (the clean data's
      direction is always 'debit' or 'credit');
    - one count per calendar month of the window gives the busiest month, the number of
      active months, the transactions in the window and the dormant spells.
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
        *_window_debit_aggregates(window, "peak_month_debit" in reads),
        "count_if(is_weekend) AS n_weekend",
        # the engine computes each distinct aggregate once, so the month counts are shared
        f"greatest({', '.join(month_counts)}) AS peak_month_n",
        f"{' + '.join(month_counts)} AS window_n",
        f"{' + '.join(f'({c} > 0)::INTEGER' for c in month_counts)} AS active_month_n",
    ]
    if reads & _DORMANCY_COLUMNS:
        aggs.append(f"[{', '.join(month_counts)}] AS month_n")
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
        aggs += [
            f"count_if(channel = {quote_literal(level)}) AS ch_{i}"
            for i, level in enumerate(plan.channels)
        ]
    if plan.categories:
        aggs += [
            f"sum(CASE WHEN category = {quote_literal(level)} THEN debit_amount END) AS cat_{i}"
            for i, level in enumerate(plan.categories)
        ]
    aggs += _typology_aggregates(plan, reads)
    if plan.channels or "struct_n" in reads:
        rows.append("channel")
    if plan.categories or "struct_n" in reads:
        rows.append("category")
    source = f"SELECT {', '.join(rows)} FROM {quote_ident(relation)} WHERE timestamp < {end}"
    windowed = (
        f"SELECT *, CASE WHEN months_ago < {window} THEN debit_amount END AS window_debit "
        f"FROM ({source})"
    )
    return f"SELECT customer_id, {', '.join(aggs)} FROM ({windowed}) GROUP BY customer_id"


def _typology_aggregates(plan: FeaturePlan, reads: set[str]) -> list[str]:
    """The typology features' aggregates of the main pass (those some planned feature reads).

    Example:
        >>> plan = FeaturePlan(date(2024, 3, 31), 3, 22, 6, [], [], [], [], [])
        >>> _typology_aggregates(plan, {"round_n"})
        ['count_if(amount >= 100.00 AND amount % 100.00 = 0) AS round_n']
    """
    window = plan.window_months
    aggs = []
    if "struct_n" in reads:
        threshold = _money(plan.reporting_threshold)
        lower = (threshold * Decimal(repr(plan.structuring_band))).quantize(
            Decimal("0.01"), ROUND_CEILING
        )
        kinds = ", ".join(quote_literal(k) for k in plan.structuring_kinds)
        # the kind is looked at only for the few amounts inside the band
        aggs.append(
            f"count(CASE WHEN amount >= {lower} AND amount < {threshold} THEN CASE WHEN "
            f"lower(channel) IN ({kinds}) OR lower(category) IN ({kinds}) "
            "OR (channel IS NULL AND category IS NULL) THEN 1 END END) AS struct_n"
        )
    if "round_n" in reads:
        unit = _money(plan.round_unit)
        aggs.append(f"count_if(amount >= {unit} AND amount % {unit} = 0) AS round_n")
    if "win_amount" in reads:
        aggs.append(f"sum(CASE WHEN months_ago < {window} THEN amount END) AS win_amount")
    if "peak_month_debit" in reads:
        aggs.append(f"greatest({', '.join(_month_debits(window))}) AS peak_month_debit")
    return aggs


def _month_debits(window: int) -> list[str]:
    """The debit total of each calendar month of the window, newest first (0 without debits)."""
    return [
        f"coalesce(sum(CASE WHEN months_ago = {k} THEN debit_amount END), 0)" for k in range(window)
    ]


def _window_debit_aggregates(window: int, by_month: bool) -> list[str]:
    """The trend window's debit total and its first moment over the months (for the slope).

    With the month debit totals computed anyway (`by_month`), both are sums of those shared
    aggregates; else plain sums over `window_debit`. Either way the sums are exact, so the
    values are identical (0 in place of empty when there is no debit; features read both with
    coalesce).
    """
    if not by_month:
        return [
            "sum(window_debit) AS win_debit",
            f"sum(window_debit * ({window - 1} - months_ago)) AS win_xy",
        ]
    months = _month_debits(window)
    return [
        f"{' + '.join(months)} AS win_debit",
        f"{' + '.join(f'{m} * {window - 1 - k}' for k, m in enumerate(months))} AS win_xy",
    ]


def _money(value: float) -> Decimal:
    """A money setting as an exact two-decimal number (settings hold whole cents)."""
    return Decimal(repr(value)).quantize(Decimal("0.01"))


def _with_dormancy(relation: str, window: int) -> str:
    """`relation` (the main pass, whose `month_n` lists the month counts newest first) with
    its dormant spells; each step is its own SELECT, so every list is built once per row.

    A spell is a run of calendar months without transactions followed by a month with some:
    `gap_months` is the longest run between two active months of the window (the latest when
    several are longest; 0 when the active months are consecutive or fewer than two) and
    `gap_after_n` the transactions of the month that ended it; `lead_months` counts the silent
    months from the start of the window to the first active one, `lead_after_n` that month's
    transactions (both empty without an active month).
    """
    # positions in month_n of the active months, newest first: a run between two neighbours
    # ends at the newer one; a run's length and its end share one integer (length x 100 +
    # how far back it ended, at most 59), so the longest, latest run is a plain maximum
    active = (
        f"SELECT *, list_filter(range(1, {window + 1}), lambda i: month_n[i] > 0) AS active "
        f"FROM ({relation})"
    )
    longest = (
        "SELECT *, list_max(list_transform(range(1, len(active)), lambda j: "
        f"(active[j + 1] - active[j] - 1) * 100 + {window} - active[j])) AS longest "
        f"FROM ({active})"
    )
    return (
        "SELECT * EXCLUDE (month_n, active, longest), "
        "coalesce(longest // 100, 0) AS gap_months, "
        f"CASE WHEN longest >= 100 THEN month_n[{window} - longest % 100] ELSE 0 END "
        f"AS gap_after_n, {window} - active[-1] AS lead_months, "
        "month_n[active[-1]] AS lead_after_n "
        f"FROM ({longest})"
    )


def _pass_through(plan: FeaturePlan, relation: str) -> str:
    """Credits that leave again, per customer: count, total and largest amount.

    A credit passes through when a debit of the same customer follows it within
    `pass_through_hours` (same timestamp up to exactly the limit) for `pass_through_min_share`
    to 100% of its amount. It is a semi join, so each credit row counts once however many
    debits qualify, and the result depends on values only, not on row order.

    Pairs are looked for by customer and time bucket, never across all of a customer's rows:
    buckets are four windows wide, a credit looks in its own bucket, and a debit that falls in
    the first window of its bucket is also offered to the bucket before, so every debit within
    the window after a credit shares a bucket with it. A credit meets the debits of about four
    windows, however long the customer's history.
    """
    end = f"DATE '{(plan.as_of + timedelta(days=1)).isoformat()}'"
    span = plan.pass_through_hours * 3_600_000_000  # microseconds
    width = 4 * span
    # microseconds since 0001-01-01, never negative, so integer division is a floor
    since = f"epoch_us(timestamp) + {_YEAR_ONE_US} AS us"
    table = quote_ident(relation)
    credits = (
        f"SELECT customer_id, us, amount, us // {width} AS bucket FROM (SELECT customer_id, "
        f"{since}, amount FROM {table} WHERE direction = 'credit' AND timestamp < {end})"
    )
    debits = (
        f"SELECT customer_id, us, amount, unnest(CASE WHEN us % {width} < {span} "
        f"THEN [us // {width}, us // {width} - 1] ELSE [us // {width}] END) AS bucket "
        f"FROM (SELECT customer_id, {since}, amount FROM {table} "
        f"WHERE direction = 'debit' AND timestamp < {end})"
    )
    share = Decimal(repr(plan.pass_through_min_share))
    return (
        "SELECT c.customer_id, count(*) AS pt_n, sum(c.amount) AS pt_total, "
        f"max(c.amount) AS pt_max FROM ({credits}) c SEMI JOIN ({debits}) d "
        "ON d.customer_id = c.customer_id AND d.bucket = c.bucket "
        f"AND d.us >= c.us AND d.us <= c.us + {span} "
        f"AND d.amount >= c.amount * {share} AND d.amount <= c.amount "
        "GROUP BY c.customer_id"
    )


_YEAR_ONE_US = 62_135_596_800_000_000  # microseconds from 0001-01-01 to 1970-01-01


def _tiny_debits(plan: FeaturePlan, relation: str) -> str:
    """Tiny debits per customer: their number and the most of them within the burst window.

    Only the (few) tiny debits are ordered; a window ending at each one counts those from
    `tiny_burst_minutes` before it up to it, equal timestamps included, so the result does not
    depend on row order.
    """
    end = f"DATE '{(plan.as_of + timedelta(days=1)).isoformat()}'"
    tiny = (
        "SELECT customer_id, count(*) OVER (PARTITION BY customer_id ORDER BY timestamp "
        f"RANGE BETWEEN INTERVAL {plan.tiny_burst_minutes} MINUTE PRECEDING AND CURRENT ROW) "
        f"AS burst FROM {quote_ident(relation)} WHERE direction = 'debit' "
        f"AND amount <= {_money(plan.tiny_amount)} AND timestamp < {end}"
    )
    return (
        "SELECT customer_id, count(*) AS tiny_n, max(burst) AS tiny_burst "
        f"FROM ({tiny}) GROUP BY customer_id"
    )


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
