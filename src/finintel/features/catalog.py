"""Every customer feature as a named SQL expression with its meaning and unit.

Expressions read two row sources: `c` (the clean customer row) and `t` (the per-customer
transaction aggregates built in one pass by `finintel.features.build`), plus `l` (loan
aggregates). `{as_of}` is the reference date and `{window}` the trend window in months. The same
text runs on any SQL engine with these functions, so the definitions can move to Spark.

A feature is computed only when the data has what it `needs`; the rest are reported as omitted.

Example:
    >>> feature = CATALOG["debit_avg"]
    >>> feature.unit, sorted(feature.needs)
    ('money', ['transactions'])
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One feature: its output name, what it measures, its unit, SQL and requirements."""

    name: str
    description: str
    unit: str
    sql: str
    needs: frozenset[str]


def _f(name: str, description: str, unit: str, sql: str, *needs: str) -> Feature:
    return Feature(name, description, unit, " ".join(sql.split()), frozenset(needs))


_DEBIT_MEAN = "(t.debit_total::DOUBLE / t.n_debit)"
_SX = "({window} * ({window} - 1) / 2.0)"
_SXX = "(({window} - 1) * {window} * (2 * {window} - 1) / 6.0)"

FEATURES: tuple[Feature, ...] = (
    # activity
    _f(
        "tx_count",
        "Number of transactions up to the reference date.",
        "count",
        "coalesce(t.n, 0)",
        "transactions",
    ),
    _f(
        "debit_count",
        "Number of debit (money out) transactions.",
        "count",
        "coalesce(t.n_debit, 0)",
        "transactions",
    ),
    _f(
        "credit_count",
        "Number of credit (money in) transactions.",
        "count",
        "coalesce(t.n_credit, 0)",
        "transactions",
    ),
    _f(
        "recency_days",
        "Days from the last transaction to the reference date; empty when the "
        "customer has no transaction.",
        "days",
        "date_diff('day', CAST(t.last_ts AS DATE), {as_of})",
        "transactions",
    ),
    _f(
        "active_months",
        "Calendar months with at least one transaction within the trend window.",
        "months",
        "coalesce(t.active_month_n, 0)",
        "transactions",
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
    ),
    # money
    _f(
        "debit_total",
        "Sum of debit amounts.",
        "money",
        "coalesce(t.debit_total, 0)::DOUBLE",
        "transactions",
    ),
    _f(
        "credit_total",
        "Sum of credit amounts.",
        "money",
        "coalesce(t.credit_total, 0)::DOUBLE",
        "transactions",
    ),
    _f(
        "debit_avg",
        "Average debit amount (0 without debits).",
        "money",
        f"CASE WHEN t.n_debit > 0 THEN {_DEBIT_MEAN} ELSE 0 END",
        "transactions",
    ),
    _f(
        "credit_avg",
        "Average credit amount (0 without credits).",
        "money",
        "CASE WHEN t.n_credit > 0 THEN t.credit_total::DOUBLE / t.n_credit ELSE 0 END",
        "transactions",
    ),
    _f(
        "net_flow",
        "Credits minus debits.",
        "money",
        "(coalesce(t.credit_total, 0) - coalesce(t.debit_total, 0))::DOUBLE",
        "transactions",
    ),
    _f(
        "largest_transaction",
        "Largest single amount, debit or credit.",
        "money",
        "coalesce(t.max_amount, 0)::DOUBLE",
        "transactions",
    ),
    _f(
        "largest_debit",
        "Largest single debit.",
        "money",
        "coalesce(t.max_debit, 0)::DOUBLE",
        "transactions",
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
    ),
    _f(
        "monthly_spend_avg",
        "Average monthly debit total over the trend window (months without spend count as 0).",
        "money per month",
        "coalesce(t.win_debit, 0)::DOUBLE / {window}",
        "transactions",
    ),
    _f(
        "monthly_spend_trend",
        "Least-squares slope of the monthly debit total over the trend "
        "window, oldest month first (months without spend count as 0).",
        "money per month",
        f"coalesce(({{window}} * t.win_xy::DOUBLE - {_SX} * t.win_debit::DOUBLE) / "
        f"({{window}} * {_SXX} - {_SX} * {_SX}), 0)",
        "transactions",
    ),
    # rhythm
    _f(
        "night_share",
        "Share of transactions booked at night (by default 22:00 to 06:00).",
        "share",
        "CASE WHEN t.n > 0 THEN t.n_night::DOUBLE / t.n ELSE 0 END",
        "transactions",
        "time_of_day",
    ),
    _f(
        "night_tx_count",
        "Number of transactions booked at night (the hours of night_share). With "
        "night_share it tells a sustained night-time habit from one or two late payments.",
        "count",
        "coalesce(t.n_night, 0)",
        "transactions",
        "time_of_day",
    ),
    _f(
        "weekend_share",
        "Share of transactions booked on Saturday or Sunday.",
        "share",
        "CASE WHEN t.n > 0 THEN t.n_weekend::DOUBLE / t.n ELSE 0 END",
        "transactions",
    ),
    # balances
    _f(
        "balance_last",
        "Balance after the customer's last transaction.",
        "money",
        "t.bal_last::DOUBLE",
        "balance",
    ),
    _f(
        "balance_min",
        "Lowest balance after any transaction.",
        "money",
        "t.bal_min::DOUBLE",
        "balance",
    ),
    _f(
        "balance_avg",
        "Average balance after transactions.",
        "money",
        "CASE WHEN t.bal_n > 0 THEN t.bal_sum::DOUBLE / t.bal_n END",
        "balance",
    ),
    _f(
        "balance_volatility",
        "Standard deviation of the balance after transactions.",
        "money",
        "CASE WHEN t.bal_n > 0 THEN sqrt(greatest(t.bal_sq::DOUBLE / t.bal_n - "
        "(t.bal_sum::DOUBLE / t.bal_n) * (t.bal_sum::DOUBLE / t.bal_n), 0)) END",
        "balance",
    ),
    _f(
        "overdraft_days",
        "Days on which a transaction left the balance below zero.",
        "days",
        "coalesce(t.od_days, 0)",
        "balance",
    ),
    # profile
    _f(
        "age",
        "Age in whole years at the reference date (from age or birth_date).",
        "years",
        "coalesce(c.age, floor(date_diff('day', c.birth_date, {as_of}) / 365.25))",
        "age",
    ),
    _f(
        "tenure_months",
        "Months from the start of the relationship (customer_since, else the "
        "first transaction) to the reference date.",
        "months",
        "date_diff('month', coalesce(c.customer_since, CAST(t.first_ts AS DATE)), {as_of})",
        "tenure",
    ),
    _f(
        "annual_income",
        "Yearly income as given.",
        "money",
        "c.annual_income",
        "customers.annual_income",
    ),
    _f(
        "account_balance",
        "Current balance as given.",
        "money",
        "c.account_balance",
        "customers.account_balance",
    ),
    _f(
        "credit_limit",
        "Credit limit as given.",
        "money",
        "c.credit_limit",
        "customers.credit_limit",
    ),
    _f(
        "loan_balance",
        "Outstanding loan principal as given.",
        "money",
        "c.loan_balance",
        "customers.loan_balance",
    ),
    _f(
        "credit_score",
        "Credit score as given.",
        "points",
        "c.credit_score",
        "customers.credit_score",
    ),
    _f(
        "employment_years",
        "Years in employment as given.",
        "years",
        "c.employment_years",
        "customers.employment_years",
    ),
    # loans
    _f("loan_count", "Number of loans.", "count", "coalesce(l.n_loans, 0)", "loans"),
    _f(
        "loan_amount_total",
        "Sum of the principal of all loans.",
        "money",
        "coalesce(l.total, 0)::DOUBLE",
        "loans",
    ),
    _f(
        "loan_exposure",
        "Principal of loans running at the reference date.",
        "money",
        "coalesce(l.exposure, 0)::DOUBLE",
        "loans",
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
    ),
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
