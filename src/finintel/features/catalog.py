"""Every customer feature as a named SQL expression with its meaning and unit.

Expressions read two row sources: `c` (the clean customer row) and `t` (the per-customer
transaction aggregates built in one pass by `finintel.features.build`), plus `l` (loan
aggregates). `{as_of}` is the reference date, `{window}` the trend window in months and
`{window_start}` the first day of its oldest month. The same text runs on any SQL engine with
these functions, so the definitions can move to Spark.

A feature is computed only when the data has what it `needs`; the rest are reported as omitted.

Example:
    >>> feature = CATALOG["debit_avg"]
    >>> feature.unit, sorted(feature.needs)
    ('money', ['transactions'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Model default sets a feature can belong to (see `default_set`).
ROLES = ("anomaly", "segments")


@dataclass(frozen=True)
class Feature:
    """One feature: its name, meaning, unit, SQL and requirements, and how models use it.

    `label` is the short phrase reasons and plots use ("days since last transaction");
    `defaults` places the feature in a model's default feature set at a rank (the order the
    model reads its columns in): `"anomaly"` (sustained behaviour the customer anomaly
    detector watches) and `"segments"` (the behaviour K-Means segments on); `concepts` makes it
    a member of persona concepts (`"activity"`, `"wealth"`, ...) at a rank.
    """

    name: str
    description: str
    unit: str
    sql: str
    needs: frozenset[str]
    label: str = ""
    defaults: Mapping[str, int] = field(default_factory=dict)
    concepts: Mapping[str, int] = field(default_factory=dict)

    @property
    def reads(self) -> frozenset[str]:
        """The per-customer values the SQL reads, e.g. `t.n_debit`, `c.annual_income`."""
        return frozenset(_READS.findall(self.sql))


_READS = re.compile(r"\b[tlc]\.[a-z_][a-z0-9_]*")


def _f(
    name: str,
    description: str,
    unit: str,
    sql: str,
    *needs: str,
    label: str = "",
    defaults: Mapping[str, int] | None = None,
    concepts: Mapping[str, int] | None = None,
) -> Feature:
    return Feature(
        name,
        description,
        unit,
        " ".join(sql.split()),
        frozenset(needs),
        label,
        dict(defaults or {}),
        dict(concepts or {}),
    )


_DEBIT_MEAN = "(t.debit_total::DOUBLE / t.n_debit)"
_SX = "({window} * ({window} - 1) / 2.0)"
_SXX = "(({window} - 1) * {window} * (2 * {window} - 1) / 6.0)"

# The customer held the account when the trend window began: an earlier transaction, or a
# relationship start before it. Only then is a silent start of the window a dormant spell.
_HELD_AT_WINDOW_START = "(t.first_ts < {window_start} OR c.customer_since < {window_start})"
_WINDOW_CREDITS = "(t.win_amount - coalesce(t.win_debit, 0))"

# Money laundering and fraud patterns that monitoring teams look for. Their thresholds are
# `FeatureSettings` values, stored in the feature plan; see docs/features.md, "Typologies".
TYPOLOGY_FEATURES: tuple[Feature, ...] = (
    _f(
        "pass_through_count",
        "Credits that leave again: credits followed, at the same time or up to "
        "pass_through_hours later (default 24 h, both ends included), by a debit of "
        "pass_through_min_share (default 90%) to 100% of the credit's amount. A credit counts "
        "once however many debits qualify (it is matched to the first of them); a debit may "
        "complete more than one credit.",
        "count",
        "coalesce(t.pt_n, 0)",
        "transactions",
        label="credits passed straight out",
    ),
    _f(
        "pass_through_share",
        "Share of the credit amount that leaves again: the amount of the credits counted by "
        "pass_through_count over all credits (0 without credits).",
        "share",
        "CASE WHEN t.credit_total > 0 THEN coalesce(t.pt_total, 0)::DOUBLE / "
        "t.credit_total::DOUBLE ELSE 0 END",
        "transactions",
        label="share of money in passed straight out",
        defaults={"anomaly": 9},
    ),
    _f(
        "pass_through_largest",
        "Largest credit counted by pass_through_count (0 when there is none).",
        "money",
        "coalesce(t.pt_max, 0)::DOUBLE",
        "transactions",
        label="largest amount passed straight out",
    ),
    _f(
        "turnover_to_income",
        "Money through the account, credits plus debits over the trend window per year, "
        "divided by annual income; empty without a positive income. Spending what one earns "
        "gives about 2 however many payments it takes, so a busy customer stays near 2 while "
        "money flowing through the account lifts it far above.",
        "ratio",
        "CASE WHEN c.annual_income > 0 THEN coalesce(t.win_amount, 0)::DOUBLE * 12 / {window} "
        "/ c.annual_income END",
        "transactions",
        "customers.annual_income",
        label="turnover-to-income",
    ),
    _f(
        "largest_30d_debit_to_income",
        "Debit total of the customer's biggest-spending calendar month within the trend "
        "window, over monthly income: annual_income / 12 when positive, else the customer's "
        "average monthly credits over the trend window; empty when neither is positive.",
        "ratio",
        "CASE WHEN c.annual_income > 0 THEN coalesce(t.peak_month_debit, 0)::DOUBLE * 12 "
        f"/ c.annual_income WHEN {_WINDOW_CREDITS} > 0 THEN t.peak_month_debit::DOUBLE "
        f"* {{window}} / {_WINDOW_CREDITS}::DOUBLE END",
        "transactions",
        label="biggest month's spend over monthly income",
    ),
    _f(
        "structuring_count",
        "Cash and transfer transactions (either direction) kept just under the reporting "
        "threshold: amounts from structuring_band x reporting_threshold (default 8,500) up to "
        "just below reporting_threshold (default 10,000). A transaction is cash or transfer "
        "when its channel or category is one of structuring_kinds, or when it has neither.",
        "count",
        "coalesce(t.struct_n, 0)",
        "transactions",
        label="amounts just under the reporting threshold",
        defaults={"anomaly": 11},
    ),
    _f(
        "structuring_share",
        "structuring_count over all transactions (0 without transactions).",
        "share",
        "CASE WHEN t.n > 0 THEN t.struct_n::DOUBLE / t.n ELSE 0 END",
        "transactions",
        label="share just under the reporting threshold",
    ),
    _f(
        "dormant_months",
        "Longest run of calendar months without a transaction, within the trend window, "
        "after which transactions resumed (the latest such run when several are longest). "
        "A run at the start of the window counts when the customer held the account then "
        "(an earlier transaction, or customer_since before the window); 0 without one.",
        "months",
        f"CASE WHEN {_HELD_AT_WINDOW_START} AND t.lead_months > coalesce(t.gap_months, 0) "
        "THEN t.lead_months ELSE coalesce(t.gap_months, 0) END",
        "transactions",
        label="months inactive before reactivation",
    ),
    _f(
        "after_dormancy_tx_count",
        "Transactions in the calendar month that ended the dormant_months run (0 without one).",
        "count",
        f"CASE WHEN {_HELD_AT_WINDOW_START} AND t.lead_months > coalesce(t.gap_months, 0) "
        "THEN t.lead_after_n ELSE coalesce(t.gap_after_n, 0) END",
        "transactions",
        label="transactions in the month after inactivity",
    ),
    _f(
        "tiny_debit_count",
        "Debits of at most tiny_amount (default 2.00), as in card testing.",
        "count",
        "coalesce(t.tiny_n, 0)",
        "transactions",
        label="tiny debits",
    ),
    _f(
        "tiny_payment_burst",
        "Most tiny debits (those of tiny_debit_count) within tiny_burst_minutes (default 60, "
        "both ends included): many small test payments in a short time are how stolen card "
        "details are tried out.",
        "count",
        "coalesce(t.tiny_burst, 0)",
        "transactions",
        label="most tiny debits within an hour",
        defaults={"anomaly": 10},
    ),
    _f(
        "round_amount_share",
        "Share of transactions whose amount is a whole multiple of round_unit (default 100) "
        "and at least round_unit (0 without transactions).",
        "share",
        "CASE WHEN t.n > 0 THEN t.round_n::DOUBLE / t.n ELSE 0 END",
        "transactions",
        label="share of round amounts",
        defaults={"anomaly": 12},
    ),
)

FEATURES: tuple[Feature, ...] = (
    # activity
    _f(
        "tx_count",
        "Number of transactions up to the reference date.",
        "count",
        "coalesce(t.n, 0)",
        "transactions",
        label="transactions",
        defaults={"anomaly": 1, "segments": 1},
        concepts={"activity": 1},
    ),
    _f(
        "debit_count",
        "Number of debit (money out) transactions.",
        "count",
        "coalesce(t.n_debit, 0)",
        "transactions",
        label="debits",
        concepts={"activity": 2},
    ),
    _f(
        "credit_count",
        "Number of credit (money in) transactions.",
        "count",
        "coalesce(t.n_credit, 0)",
        "transactions",
        label="credits",
        defaults={"segments": 3},
    ),
    _f(
        "recency_days",
        "Days from the last transaction to the reference date; empty when the "
        "customer has no transaction.",
        "days",
        "date_diff('day', CAST(t.last_ts AS DATE), {as_of})",
        "transactions",
        label="days since last transaction",
        defaults={"anomaly": 3, "segments": 2},
    ),
    _f(
        "active_months",
        "Calendar months with at least one transaction within the trend window.",
        "months",
        "coalesce(t.active_month_n, 0)",
        "transactions",
        label="active months",
        defaults={"anomaly": 2},
        concepts={"activity": 3},
    ),
    _f(
        "peak_month_tx_count",
        "Transactions in the customer's busiest calendar month within the trend window. A "
        "burst of activity (a spending spree, money passing through, a dormant account "
        "waking up) shows here even when yearly totals look ordinary, and one unusual "
        "transaction moves it by one only.",
        "count",
        "coalesce(t.peak_month_n, 0)",
        "transactions",
        label="transactions in the busiest month",
        defaults={"anomaly": 4},
    ),
    _f(
        "peak_month_ratio",
        "Transactions in the busiest month of the trend window over the customer's average "
        "month with any transaction (1 when every active month is alike). A spree stands out "
        "against the customer's own months, even for a customer who is busy every month.",
        "ratio",
        "CASE WHEN t.window_n > 0 THEN t.peak_month_n * t.active_month_n / t.window_n::DOUBLE "
        "ELSE 0 END",
        "transactions",
        label="busiest month over usual month",
        defaults={"anomaly": 5},
    ),
    # money
    _f(
        "debit_total",
        "Sum of debit amounts.",
        "money",
        "coalesce(t.debit_total, 0)::DOUBLE",
        "transactions",
        label="total spend",
        concepts={"spend": 2},
    ),
    _f(
        "credit_total",
        "Sum of credit amounts.",
        "money",
        "coalesce(t.credit_total, 0)::DOUBLE",
        "transactions",
        label="total money in",
    ),
    _f(
        "debit_avg",
        "Average debit amount (0 without debits).",
        "money",
        f"CASE WHEN t.n_debit > 0 THEN {_DEBIT_MEAN} ELSE 0 END",
        "transactions",
        label="average debit",
        defaults={"segments": 5},
    ),
    _f(
        "credit_avg",
        "Average credit amount (0 without credits).",
        "money",
        "CASE WHEN t.n_credit > 0 THEN t.credit_total::DOUBLE / t.n_credit ELSE 0 END",
        "transactions",
        label="average credit",
    ),
    _f(
        "net_flow",
        "Credits minus debits.",
        "money",
        "(coalesce(t.credit_total, 0) - coalesce(t.debit_total, 0))::DOUBLE",
        "transactions",
        label="net flow",
    ),
    _f(
        "largest_transaction",
        "Largest single amount, debit or credit.",
        "money",
        "coalesce(t.max_amount, 0)::DOUBLE",
        "transactions",
        label="largest transaction",
    ),
    _f(
        "largest_debit",
        "Largest single debit.",
        "money",
        "coalesce(t.max_debit, 0)::DOUBLE",
        "transactions",
        label="largest debit",
    ),
    _f(
        "spend_volatility",
        "Coefficient of variation of debit amounts: standard deviation "
        "divided by mean (0 with fewer than two debits).",
        "ratio",
        f"CASE WHEN t.n_debit > 1 AND t.debit_total > 0 THEN sqrt(greatest("
        f"t.debit_sq::DOUBLE / t.n_debit - {_DEBIT_MEAN} * {_DEBIT_MEAN}, 0)) / {_DEBIT_MEAN} "
        "ELSE 0 END",
        "transactions",
        label="spend volatility",
    ),
    _f(
        "monthly_spend_avg",
        "Average monthly debit total over the trend window (months without spend count as 0).",
        "money per month",
        "coalesce(t.win_debit, 0)::DOUBLE / {window}",
        "transactions",
        label="monthly spend",
        defaults={"segments": 4},
        concepts={"spend": 1},
    ),
    _f(
        "monthly_spend_trend",
        "Least-squares slope of the monthly debit total over the trend "
        "window, oldest month first (months without spend count as 0).",
        "money per month",
        f"coalesce(({{window}} * t.win_xy::DOUBLE - {_SX} * t.win_debit::DOUBLE) / "
        f"({{window}} * {_SXX} - {_SX} * {_SX}), 0)",
        "transactions",
        label="monthly spend trend",
    ),
    # rhythm
    _f(
        "night_share",
        "Share of transactions booked at night (by default 22:00 to 06:00).",
        "share",
        "CASE WHEN t.n > 0 THEN t.n_night::DOUBLE / t.n ELSE 0 END",
        "transactions",
        "time_of_day",
        label="night-time share",
        defaults={"anomaly": 6, "segments": 14},
    ),
    _f(
        "night_tx_count",
        "Number of transactions booked at night (the hours of night_share). With "
        "night_share it tells a sustained night-time habit from one or two late payments.",
        "count",
        "coalesce(t.n_night, 0)",
        "transactions",
        "time_of_day",
        label="night-time transactions",
        defaults={"anomaly": 7},
    ),
    _f(
        "weekend_share",
        "Share of transactions booked on Saturday or Sunday.",
        "share",
        "CASE WHEN t.n > 0 THEN t.n_weekend::DOUBLE / t.n ELSE 0 END",
        "transactions",
        label="weekend share",
        defaults={"anomaly": 8},
    ),
    # balances
    _f(
        "balance_last",
        "Balance after the customer's last transaction.",
        "money",
        "t.bal_last::DOUBLE",
        "balance",
        label="current balance",
        concepts={"wealth": 3, "balance": 3},
    ),
    _f(
        "balance_min",
        "Lowest balance after any transaction.",
        "money",
        "t.bal_min::DOUBLE",
        "balance",
        label="lowest balance",
    ),
    _f(
        "balance_avg",
        "Average balance after transactions.",
        "money",
        "CASE WHEN t.bal_n > 0 THEN t.bal_sum::DOUBLE / t.bal_n END",
        "balance",
        label="average balance",
        defaults={"segments": 6},
        concepts={"wealth": 1, "balance": 1},
    ),
    _f(
        "balance_volatility",
        "Standard deviation of the balance after transactions.",
        "money",
        "CASE WHEN t.bal_n > 0 THEN sqrt(greatest(t.bal_sq::DOUBLE / t.bal_n - "
        "(t.bal_sum::DOUBLE / t.bal_n) * (t.bal_sum::DOUBLE / t.bal_n), 0)) END",
        "balance",
        label="balance volatility",
    ),
    _f(
        "overdraft_days",
        "Days on which a transaction left the balance below zero.",
        "days",
        "coalesce(t.od_days, 0)",
        "balance",
        label="overdraft days",
        defaults={"segments": 7},
        concepts={"overdraft": 1},
    ),
    # profile
    _f(
        "age",
        "Age in whole years at the reference date (from age or birth_date).",
        "years",
        "coalesce(c.age, floor(date_diff('day', c.birth_date, {as_of}) / 365.25))",
        "age",
        label="age",
        defaults={"segments": 9},
        concepts={"age": 1},
    ),
    _f(
        "tenure_months",
        "Months from the start of the relationship (customer_since, else the "
        "first transaction) to the reference date.",
        "months",
        "date_diff('month', coalesce(c.customer_since, CAST(t.first_ts AS DATE)), {as_of})",
        "tenure",
        label="tenure",
        defaults={"segments": 10},
        concepts={"tenure": 1},
    ),
    _f(
        "annual_income",
        "Yearly income as given.",
        "money",
        "c.annual_income",
        "customers.annual_income",
        label="annual income",
        defaults={"segments": 8},
        concepts={"wealth": 4, "income": 1},
    ),
    _f(
        "account_balance",
        "Current balance as given.",
        "money",
        "c.account_balance",
        "customers.account_balance",
        label="account balance",
        concepts={"wealth": 2, "balance": 2},
    ),
    _f(
        "credit_limit",
        "Credit limit as given.",
        "money",
        "c.credit_limit",
        "customers.credit_limit",
        label="credit limit",
    ),
    _f(
        "loan_balance",
        "Outstanding loan principal as given.",
        "money",
        "c.loan_balance",
        "customers.loan_balance",
        label="loan balance",
        concepts={"debt": 3},
    ),
    _f(
        "credit_score",
        "Credit score as given.",
        "points",
        "c.credit_score",
        "customers.credit_score",
        label="credit score",
    ),
    _f(
        "employment_years",
        "Years in employment as given.",
        "years",
        "c.employment_years",
        "customers.employment_years",
        label="years employed",
    ),
    # loans
    _f(
        "loan_count",
        "Number of loans.",
        "count",
        "coalesce(l.n_loans, 0)",
        "loans",
        label="loans",
        defaults={"segments": 11},
        concepts={"debt": 1},
    ),
    _f(
        "loan_amount_total",
        "Sum of the principal of all loans.",
        "money",
        "coalesce(l.total, 0)::DOUBLE",
        "loans",
        label="total borrowed",
        concepts={"debt": 5},
    ),
    _f(
        "loan_exposure",
        "Principal of loans running at the reference date.",
        "money",
        "coalesce(l.exposure, 0)::DOUBLE",
        "loans",
        label="loan exposure",
        concepts={"debt": 2},
    ),
    # ratios
    _f(
        "spend_to_income",
        "Yearly spend (monthly_spend_avg x 12) divided by annual income; "
        "empty without a positive income.",
        "ratio",
        "CASE WHEN c.annual_income > 0 THEN coalesce(t.win_debit, 0)::DOUBLE * 12 / {window} "
        "/ c.annual_income END",
        "transactions",
        "customers.annual_income",
        label="spend-to-income",
    ),
    _f(
        "debt_to_income",
        "Debt (loan_balance, else loan_exposure) divided by annual income; "
        "empty without a positive income.",
        "ratio",
        "CASE WHEN c.annual_income > 0 THEN coalesce(c.loan_balance, l.exposure, 0)::DOUBLE "
        "/ c.annual_income END",
        "customers.annual_income",
        "debt",
        label="debt-to-income",
        defaults={"segments": 12},
        concepts={"debt": 4},
    ),
    *TYPOLOGY_FEATURES,
)

CATALOG: dict[str, Feature] = {f.name: f for f in FEATURES}

MIX_FEATURES = (
    _f(
        "channel_share_<level>",
        "Share of transactions made through each of the most common "
        "channels (one column per channel, the rest in channel_share_other).",
        "share",
        "count of the customer's transactions in the channel / tx_count",
        "channel",
    ),
    _f(
        "category_spend_share_<level>",
        "Share of debit amount spent in each of the most common "
        "categories (the rest in category_spend_share_other).",
        "share",
        "debit total in the category / debit_total",
        "category",
    ),
)


def default_set(role: str, others: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """The features of a model's default set, by rank; `others` adds columns that are not
    catalogue features (a channel share) at their rank.

    Example:
        >>> default_set("anomaly")[:3]
        ('tx_count', 'active_months', 'recency_days')
    """
    ranked = {f.name: f.defaults[role] for f in FEATURES if role in f.defaults}
    ranked.update(others or {})
    return tuple(sorted(ranked, key=ranked.__getitem__))


def concept_members(concept: str) -> tuple[str, ...]:
    """The catalogue features of a persona concept, by rank.

    Example:
        >>> concept_members("wealth")
        ('balance_avg', 'account_balance', 'balance_last', 'annual_income')
    """
    ranked = {f.name: f.concepts[concept] for f in FEATURES if concept in f.concepts}
    return tuple(sorted(ranked, key=ranked.__getitem__))


def feature_concepts() -> tuple[str, ...]:
    """Every persona concept some catalogue feature belongs to, sorted."""
    return tuple(sorted({c for f in FEATURES for c in f.concepts}))


# What in the input data provides each requirement in `Feature.needs`.
NEED_SOURCES: dict[str, str] = {
    "transactions": "a transactions table",
    "balance": "balance_after on transactions",
    "channel": "channel on transactions",
    "category": "category on transactions",
    "time_of_day": "transaction timestamps with a time of day",
    "age": "age or birth_date on customers",
    "tenure": "customer_since on customers, or transactions",
    "loans": "a loans table",
    "debt": "a loans table, or loan_balance on customers",
}


def provided_by(name: str) -> str | None:
    """What input data a catalogue feature needs, in words; None for another column.

    Example:
        >>> provided_by("balance_min")
        'balance_min needs balance_after on transactions'
        >>> provided_by("spend_to_income")
        'spend_to_income needs a transactions table and annual_income on customers'
    """
    feature = CATALOG.get(name)
    if feature is None:
        return None
    words = [
        f"{need.split('.', 1)[1]} on customers"
        if need.startswith("customers.")
        else NEED_SOURCES.get(need, need)
        for need in sorted(feature.needs, key=_need_order)
    ]
    return f"{name} needs {' and '.join(words)}"


def _need_order(need: str) -> tuple[int, str]:
    return (need.startswith("customers."), need)
