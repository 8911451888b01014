"""Synthetic bank generator: the embedded default data source.

`generate_bank` writes a complete, realistic bank in the canonical layout of `finintel.schema`
(customers, transactions, loans and default labels) plus ground truth for evaluation: the
planted persona of every customer, the planted anomalous customers and transactions. A few
deliberately dirty rows (duplicate ids, impossible values) exercise the validation layer.

What kind of bank is made is a `BankDesign`: its personas and their shares, which anomalous
customer kinds (the default kinds and the monitoring typologies of `TYPOLOGIES`) are planted
and how often, how defaults depend on behaviour (`DefaultMechanism`), and which optional
columns are written. `DEFAULT_DESIGN` is the default bank; `finintel.scenarios` holds banks
made differently.

Customers are generated in chunks with numpy and streamed to disk, so a million customers
need bounded memory. The same arguments always produce byte-identical files.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from finintel.synthetic import generate_bank
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     bank = generate_bank(Path(tmp), n_customers=200, seed=7)
    ...     bank.n_customers, bank.customers.name, bank.labels.parent.name
    (200, 'customers.parquet', 'truth')
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from finintel.schema import CUSTOMERS, LABELS, LOANS, TRANSACTIONS

__all__ = [
    "ANOMALY_KINDS",
    "CATEGORIES",
    "CHANNELS",
    "CUSTOMER_ANOMALIES",
    "CUSTOMER_DIRTY_KINDS",
    "DEFAULT_DESIGN",
    "DIRTY_KINDS",
    "OPTIONAL_CUSTOMER_COLUMNS",
    "OPTIONAL_TRANSACTION_COLUMNS",
    "PERSONAS",
    "SPENDING_CATEGORIES",
    "TRANSACTION_ANOMALIES",
    "TRANSACTION_DIRTY_KINDS",
    "TYPOLOGIES",
    "BankDesign",
    "DefaultMechanism",
    "GeneratedBank",
    "Persona",
    "generate_bank",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

PERSONAS: tuple[str, ...] = (
    "steady",
    "wealthy_inactive",
    "most_active",
    "loan_heavy",
    "young_starter",
)
CHANNELS: tuple[str, ...] = ("card", "online", "atm", "branch", "transfer")
# The first ten are the spending categories; the last two are the recurring flows.
CATEGORIES: tuple[str, ...] = (
    "groceries",
    "dining",
    "travel",
    "utilities",
    "rent",
    "entertainment",
    "cash",
    "transfer",
    "health",
    "shopping",
    "salary",
    "loan_payment",
)
SPENDING_CATEGORIES: tuple[str, ...] = CATEGORIES[:10]
# The anomalous customer kinds the default design plants.
CUSTOMER_ANOMALIES: tuple[str, ...] = (
    "spending_spike",
    "night_owl",
    "money_mule",
    "dormant_burst",
)
# Typologies a bank's monitoring team looks for, each planted as an anomalous customer kind.
TYPOLOGIES: tuple[str, ...] = (
    "pass_through",
    "velocity",
    "large_spend_month",
    "structuring",
    "dormant_then_active",
    "card_testing",
    "round_amounts",
)
ANOMALY_KINDS: tuple[str, ...] = CUSTOMER_ANOMALIES + TYPOLOGIES
TRANSACTION_ANOMALIES: tuple[str, ...] = ("large_amount", "odd_hour", "new_channel_burst")
CUSTOMER_DIRTY_KINDS: tuple[str, ...] = (
    "duplicate_customer_id",
    "negative_income",
    "placeholder_birth_date",
)
TRANSACTION_DIRTY_KINDS: tuple[str, ...] = (
    "null_customer_id",
    "unknown_customer_id",
    "future_timestamp",
    "negative_amount",
    "duplicate_transaction_id",
)
DIRTY_KINDS: tuple[str, ...] = CUSTOMER_DIRTY_KINDS + TRANSACTION_DIRTY_KINDS
# Columns a design may leave out; the others are always written (the dirty rows need
# birth_date and annual_income, the truth files need transaction_id).
OPTIONAL_CUSTOMER_COLUMNS: tuple[str, ...] = (
    "gender",
    "region",
    "account_balance",
    "credit_limit",
    "loan_balance",
    "credit_score",
    "employment_years",
    "customer_since",
)
OPTIONAL_TRANSACTION_COLUMNS: tuple[str, ...] = ("channel", "category", "balance_after")

_CHUNK_SIZE = 25_000
_TX_ID_WIDTH = 10
_LOAN_ID_WIDTH = 9
_MIN_CUSTOMER_ID_WIDTH = 7
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_EPOCH = date(1970, 1, 1)
_PLACEHOLDER_BIRTH = date(1900, 1, 1)
_FUTURE_YEAR_START = date(2099, 1, 1)
_NET_SHARE = 0.72  # net pay as a share of gross annual income
_LARGE_AMOUNT_RATE = 0.0025
_ODD_HOUR_RATE = 0.002
_CHANNEL_BURST_RATE = 0.002
_CUSTOMERS_PER_DIRTY_CUSTOMER = 2_000
_CUSTOMERS_PER_DIRTY_TRANSACTION = 1_000

_CAT_TRANSFER = CATEGORIES.index("transfer")
_CAT_SALARY = CATEGORIES.index("salary")
_CAT_LOAN = CATEGORIES.index("loan_payment")
_LEISURE = np.array([c in {"dining", "travel", "entertainment", "shopping"} for c in CATEGORIES])
_BILLS = np.array([c in {"utilities", "rent", "salary", "loan_payment"} for c in CATEGORIES])
# Relative size and log-spread of amounts per category; each customer's amounts are scaled
# to their income and spending habits.
_AMOUNT_MEDIAN = np.array([55, 32, 250, 110, 400, 45, 100, 200, 70, 80, 1, 1], dtype=np.float64)
_AMOUNT_SIGMA = np.array([0.5, 0.5, 0.7, 0.35, 0.2, 0.6, 0.5, 0.8, 0.7, 0.7, 0, 0])
# Channel probabilities per category: card, online, atm, branch, transfer.
_CATEGORY_CHANNELS = np.array(
    [
        [0.85, 0.13, 0.00, 0.00, 0.02],
        [0.90, 0.10, 0.00, 0.00, 0.00],
        [0.45, 0.50, 0.00, 0.02, 0.03],
        [0.00, 0.40, 0.00, 0.05, 0.55],
        [0.00, 0.25, 0.00, 0.05, 0.70],
        [0.60, 0.40, 0.00, 0.00, 0.00],
        [0.00, 0.00, 0.90, 0.10, 0.00],
        [0.00, 0.45, 0.00, 0.10, 0.45],
        [0.70, 0.20, 0.00, 0.05, 0.05],
        [0.55, 0.45, 0.00, 0.00, 0.00],
        [0.00, 0.00, 0.00, 0.00, 1.00],
        [0.00, 0.00, 0.00, 0.00, 1.00],
    ]
)
# Relative activity by hour of day; most activity falls between 8:00 and 22:00.
_HOUR_WEIGHTS = np.array(
    [
        0.25,
        0.03,
        0.015,
        0.01,
        0.015,
        0.1,
        0.4,
        1.2,
        2.5,
        3.5,
        4.2,
        4.6,
        5.2,
        5.0,
        4.5,
        4.4,
        4.7,
        5.3,
        5.6,
        5.2,
        4.4,
        3.3,
        1.8,
        0.8,
    ]
)
_NIGHT_HOURS = np.array([h < 6 or h >= 22 for h in range(24)])
# Relative activity by weekday (Monday first) for everyday, leisure and bill payments.
_WEEKDAY_EVERYDAY = np.array([1.0, 1.0, 1.0, 1.05, 1.15, 0.9, 0.45])
_WEEKDAY_LEISURE = np.array([0.7, 0.75, 0.8, 0.9, 1.5, 1.7, 0.7])
_WEEKDAY_BILLS = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.1])
_REGIONS: tuple[str, ...] = ("Capital", "North", "South", "East", "West", "Central", "Coast")
_REGION_WEIGHTS = np.array([0.24, 0.14, 0.15, 0.12, 0.13, 0.12, 0.10])
_GENDERS: tuple[str, ...] = ("F", "M", "X")
_GENDER_WEIGHTS = np.array([0.49, 0.49, 0.02])


@dataclass(frozen=True)
class Persona:
    """Behavioural parameters of one planted persona and its share of the customers.

    Amounts follow income: purchases scale gently with it, salaries and everyday credits add
    up to the net pay, and debits take `spend_ratio` of the credits. `categories` weighs the
    ten `SPENDING_CATEGORIES` and `channel_bias` multiplies the chance of each of `CHANNELS`
    (card, online, atm, branch, transfer) on top of each category's usual channels.

    Example:
        >>> DEFAULT_DESIGN.personas[0].name, DEFAULT_DESIGN.personas[0].salaried
        ('steady', True)
    """

    name: str
    share: float
    age: tuple[float, float, float, float]  # mean, sd, min, max in years
    income: tuple[float, float]  # median and log-sd of gross annual income
    tenure: tuple[float, float]  # uniform range of years as a customer
    activity: float  # relative rate of everyday transactions
    min_free: int  # everyday transactions every customer has at least
    salaried: bool  # receives a monthly salary (or pension) credit
    credit_share: float  # share of everyday transactions that are credits
    spend_ratio: float  # everyday debits as a share of credits
    credit_income: float  # without salary: everyday credits as a share of net income
    balance_months: float  # median opening balance in months of net pay
    loan_prob: float
    credit_limit: float  # credit limit as a share of income
    night: float  # multiplier on night-time activity
    categories: tuple[float, ...]  # weights of the spending categories
    channel_bias: tuple[float, ...]  # multiplier per channel
    overdrawn: float = 0.0  # months of net pay taken off the opening balance
    loan_size: float = 0.3  # median loan principal as a multiple of income
    loan_heavy: bool = False  # up to three long loans whose size grows with financial stress
    free_spending: bool = False  # spends from savings: debits do not follow credits
    late_hours: bool = False  # keeps late hours, so an odd-hour payment is nothing unusual
    capital_bias: float = 1.0  # multiplier on the chance of living in the capital

    def __post_init__(self) -> None:
        _check(bool(self.name), "a persona needs a name")
        _check(self.share > 0, f"persona {self.name!r}: share must be positive")
        _check(
            len(self.categories) == len(SPENDING_CATEGORIES),
            f"persona {self.name!r}: categories needs {len(SPENDING_CATEGORIES)} weights",
        )
        _check(
            len(self.channel_bias) == len(CHANNELS),
            f"persona {self.name!r}: channel_bias needs {len(CHANNELS)} multipliers",
        )
        _check(
            min(self.categories) >= 0 and sum(self.categories) > 0 and min(self.channel_bias) >= 0,
            f"persona {self.name!r}: weights must be >= 0 and not all zero",
        )
        _check(self.age[2] >= 18 and self.age[2] < self.age[3], f"{self.name!r}: bad age range")
        _check(self.income[0] > 0 and self.income[1] >= 0, f"{self.name!r}: bad income parameters")
        positive = (self.activity, self.spend_ratio, self.balance_months, self.loan_size)
        _check(min(positive) > 0, f"persona {self.name!r}: rates and sizes must be positive")
        _check(0 <= self.loan_prob <= 1, f"persona {self.name!r}: loan_prob must be in [0, 1]")
        _check(0 <= self.credit_share < 1, f"{self.name!r}: credit_share must be in [0, 1)")
        _check(
            self.salaried or self.credit_income > 0,
            f"persona {self.name!r}: without salary, credit_income must be positive",
        )


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


_PERSONAS: tuple[Persona, ...] = (
    Persona(
        "steady",
        share=0.25,
        age=(47, 9, 28, 75),
        income=(46_000, 0.30),
        tenure=(5, 20),
        activity=1.0,
        min_free=2,
        salaried=True,
        credit_share=0.05,
        spend_ratio=0.90,
        credit_income=0.0,
        balance_months=2.5,
        loan_prob=0.12,
        credit_limit=0.15,
        night=1.0,
        categories=(30, 8, 3, 14, 10, 5, 8, 6, 6, 10),
        channel_bias=(0.9, 0.6, 1.0, 1.5, 1.3),
    ),
    Persona(
        "wealthy_inactive",
        share=0.15,
        age=(58, 10, 35, 90),
        income=(150_000, 0.45),
        tenure=(8, 35),
        activity=0.5,
        min_free=4,
        salaried=False,
        credit_share=0.4,
        spend_ratio=1.0,
        credit_income=0.15,
        balance_months=40.0,
        loan_prob=0.04,
        credit_limit=0.3,
        night=0.6,
        categories=(8, 12, 20, 6, 2, 8, 4, 25, 6, 9),
        channel_bias=(0.8, 0.8, 0.5, 4.0, 1.2),
        free_spending=True,
        capital_bias=2.5,
    ),
    Persona(
        "most_active",
        share=0.20,
        age=(31, 6, 21, 55),
        income=(68_000, 0.35),
        tenure=(0.5, 8),
        activity=4.0,
        min_free=8,
        salaried=True,
        credit_share=0.06,
        spend_ratio=0.93,
        credit_income=0.0,
        balance_months=1.5,
        loan_prob=0.12,
        credit_limit=0.2,
        night=1.5,
        categories=(22, 20, 5, 5, 3, 14, 4, 5, 4, 18),
        channel_bias=(1.5, 1.8, 0.4, 0.1, 0.5),
        late_hours=True,
    ),
    Persona(
        "loan_heavy",
        share=0.20,
        age=(41, 8, 25, 67),
        income=(44_000, 0.35),
        tenure=(2, 15),
        activity=0.6,
        min_free=2,
        salaried=True,
        credit_share=0.04,
        spend_ratio=0.97,
        credit_income=0.0,
        balance_months=0.5,
        loan_prob=1.0,
        credit_limit=0.1,
        night=1.4,
        categories=(28, 8, 2, 14, 10, 5, 14, 8, 5, 6),
        channel_bias=(0.9, 0.7, 1.5, 2.0, 1.0),
        overdrawn=1.2,
        loan_size=1.4,
        loan_heavy=True,
    ),
    Persona(
        "young_starter",
        share=0.20,
        age=(22, 2.5, 18, 26.99),
        income=(19_000, 0.35),
        tenure=(0, 3),
        activity=2.2,
        min_free=4,
        salaried=False,
        credit_share=0.3,
        spend_ratio=0.95,
        credit_income=0.97,
        balance_months=1.5,
        loan_prob=0.05,
        credit_limit=0.05,
        night=2.0,
        categories=(18, 22, 3, 3, 6, 22, 4, 6, 2, 14),
        channel_bias=(1.0, 2.2, 0.7, 0.2, 0.8),
        late_hours=True,
    ),
)


@dataclass(frozen=True)
class DefaultMechanism:
    """How the chance of default depends on what a bank can observe: a logistic model.

    The logit is `intercept` plus each weight times its signal: `debt_to_income` (loan
    balance / income, capped at 8), `overdraft` (share of transactions that leave a negative
    balance), `spending` (debits / income over the period, less 0.75), `net_outflow` (debits
    less credits over the period, relative to income, within [-2, 2]), `low_balance` (lowest
    balance in months of gross income, within [-4, 10]; a negative weight makes a low balance
    risky), `log_income` (log of income / 40,000), `utilisation` (deepest overdraft as a
    share of the credit limit, capped at 3), `arrears` (missed loan payments, capped at 6),
    `hidden_stress` (a latent stress no column shows directly) and `noise` (life events no
    data can see). The intercept sets the default rate.

    Example:
        >>> DefaultMechanism().intercept, DefaultMechanism(utilisation=1.5).utilisation
        (-3.3, 1.5)
    """

    intercept: float = -3.3
    debt_to_income: float = 0.45
    overdraft: float = 1.6
    spending: float = 1.3
    net_outflow: float = 0.0
    low_balance: float = -0.1
    log_income: float = -0.6
    utilisation: float = 0.0
    arrears: float = 0.0
    hidden_stress: float = 0.3
    noise: float = 0.8

    def __post_init__(self) -> None:
        values = [getattr(self, f) for f in self.__dataclass_fields__]
        _check(all(math.isfinite(v) for v in values), "default weights must be finite")
        _check(self.noise >= 0, "the default noise must be >= 0")


@dataclass(frozen=True)
class BankDesign:
    """What kind of bank `generate_bank` makes.

    Args:
        name: Short name of the design.
        description: What the bank is like, in a sentence or two.
        personas: The planted personas; their shares must add up to 1.
        anomaly_rate: Share of customers planted as anomalous.
        anomalies: Anomalous customer kinds (names from `ANOMALY_KINDS`) with their relative
            weights; equal weights pick each kind equally often.
        default: How the default outcome depends on behaviour.
        missed_payments: Chance that a loan holder of average stress misses a monthly loan
            payment (stress raises it; the instalment stays owed); 0 for none.
        reporting_threshold: The cash reporting threshold `structuring` stays just under.
        cash_in_notes: ATM withdrawals come in whole notes (multiples of 20).
        micro_payments: Share of card and online purchases that are micro-payments of
            0.30-3.00 (apps, parking, transit); 0 for none.
        customer_columns: Optional customer columns written (from
            `OPTIONAL_CUSTOMER_COLUMNS`); the others are left out of the file.
        transaction_columns: Optional transaction columns written (from
            `OPTIONAL_TRANSACTION_COLUMNS`).

    Example:
        >>> from dataclasses import replace
        >>> lean = replace(DEFAULT_DESIGN, transaction_columns=("channel",))
        >>> lean.transaction_columns, DEFAULT_DESIGN.anomaly_rate
        (('channel',), 0.01)
    """

    name: str = "default"
    description: str = (
        "Five everyday personas (steady earners, wealthy savers, busy digital spenders, loan-"
        "heavy borrowers and young starters), the four default anomaly kinds at 1% of customers"
        " and a default driven by debt, overdrafts, spending and low balances; every column."
    )
    personas: tuple[Persona, ...] = _PERSONAS
    anomaly_rate: float = 0.01
    anomalies: tuple[tuple[str, float], ...] = tuple((k, 1.0) for k in CUSTOMER_ANOMALIES)
    default: DefaultMechanism = field(default_factory=DefaultMechanism)
    missed_payments: float = 0.0
    reporting_threshold: float = 10_000.0
    cash_in_notes: bool = False
    micro_payments: float = 0.0
    customer_columns: tuple[str, ...] = OPTIONAL_CUSTOMER_COLUMNS
    transaction_columns: tuple[str, ...] = OPTIONAL_TRANSACTION_COLUMNS

    def __post_init__(self) -> None:
        names = [p.name for p in self.personas]
        _check(bool(names), "a design needs at least one persona")
        _check(len(set(names)) == len(names), f"persona names must be unique: {names}")
        total = math.fsum(p.share for p in self.personas)
        _check(abs(total - 1.0) < 1e-6, f"persona shares must add up to 1, not {total:g}")
        _check(0.0 <= self.anomaly_rate <= 0.5, "anomaly_rate must be in [0, 0.5]")
        kinds = [k for k, _ in self.anomalies]
        unknown = sorted(set(kinds) - set(ANOMALY_KINDS))
        _check(not unknown, f"unknown anomaly kinds {unknown}; known: {list(ANOMALY_KINDS)}")
        _check(len(set(kinds)) == len(kinds), f"anomaly kinds must be unique: {kinds}")
        _check(all(w > 0 for _, w in self.anomalies), "anomaly weights must be positive")
        _check(bool(kinds) or self.anomaly_rate == 0, "a positive anomaly_rate needs kinds")
        _check(0.0 <= self.missed_payments < 1.0, "missed_payments must be in [0, 1)")
        _check(self.reporting_threshold >= 100, "reporting_threshold must be at least 100")
        _check(0.0 <= self.micro_payments <= 0.5, "micro_payments must be in [0, 0.5]")
        for given, allowed in (
            (self.customer_columns, OPTIONAL_CUSTOMER_COLUMNS),
            (self.transaction_columns, OPTIONAL_TRANSACTION_COLUMNS),
        ):
            extra = sorted(set(given) - set(allowed))
            _check(not extra, f"columns {extra} are not optional columns; choose from {allowed}")

    @property
    def persona_names(self) -> tuple[str, ...]:
        """The personas' names in design order."""
        return tuple(p.name for p in self.personas)

    @property
    def anomaly_kinds(self) -> tuple[str, ...]:
        """The anomalous customer kinds this design plants."""
        return tuple(k for k, _ in self.anomalies) if self.anomaly_rate > 0 else ()

    def customer_file_columns(self) -> list[str]:
        """The customers file's columns, in canonical order (`age` is never written)."""
        keep = set(self.customer_columns)
        return [
            c
            for c in CUSTOMERS.names
            if c != "age" and (c not in OPTIONAL_CUSTOMER_COLUMNS or c in keep)
        ]

    def transaction_file_columns(self) -> list[str]:
        """The transactions file's columns, in canonical order."""
        keep = set(self.transaction_columns)
        return [c for c in TRANSACTIONS.names if c not in OPTIONAL_TRANSACTION_COLUMNS or c in keep]


DEFAULT_DESIGN = BankDesign()


def _cdf(weights: FloatArray) -> FloatArray:
    """Cumulative distribution along the last axis, normalised to end at exactly 1."""
    c = np.cumsum(weights, axis=-1)
    c = c / c[..., -1:]
    c[..., -1] = 1.0
    return c


@dataclass(frozen=True)
class _Plan:
    """A design compiled into per-persona arrays (indexed by persona number)."""

    design: BankDesign
    share: FloatArray
    activity: FloatArray
    min_free: FloatArray
    salaried: BoolArray
    credit_share: FloatArray
    spend: FloatArray
    credit_income: FloatArray
    balance: FloatArray
    overdrawn: FloatArray
    loan: FloatArray
    limit: FloatArray
    log_loan_size: FloatArray
    loan_heavy: BoolArray
    free_spending: BoolArray
    late_hours: BoolArray
    region_group: IntArray  # row of `region_cdf` per persona
    region_cdf: FloatArray
    category_cdf: FloatArray
    channel_cdf: FloatArray  # per (persona, category)
    hour_cdf: FloatArray
    anomaly_kinds: IntArray  # index into ANOMALY_KINDS, in design order
    anomaly_cdf: FloatArray | None  # None: every kind equally likely


def _plan(design: BankDesign) -> _Plan:
    personas = design.personas

    def values(attr: str) -> FloatArray:
        return np.array([float(getattr(p, attr)) for p in personas])

    def flags(attr: str) -> BoolArray:
        return np.array([bool(getattr(p, attr)) for p in personas])

    biases = sorted({p.capital_bias for p in personas})
    region_w = np.stack([_REGION_WEIGHTS * np.r_[b, np.ones(len(_REGIONS) - 1)] for b in biases])
    weights = [w for _, w in design.anomalies]
    return _Plan(
        design=design,
        share=values("share"),
        activity=values("activity"),
        min_free=values("min_free"),
        salaried=flags("salaried"),
        credit_share=values("credit_share"),
        spend=values("spend_ratio"),
        credit_income=values("credit_income"),
        balance=values("balance_months"),
        overdrawn=values("overdrawn"),
        loan=values("loan_prob"),
        limit=values("credit_limit"),
        log_loan_size=np.array([np.log(float(p.loan_size)) for p in personas]),
        loan_heavy=flags("loan_heavy"),
        free_spending=flags("free_spending"),
        late_hours=flags("late_hours"),
        region_group=np.array([biases.index(p.capital_bias) for p in personas], dtype=np.int64),
        region_cdf=_cdf(region_w),
        category_cdf=_cdf(np.array([p.categories for p in personas], dtype=np.float64)),
        channel_cdf=_cdf(
            _CATEGORY_CHANNELS[None, :, :]
            * np.array([p.channel_bias for p in personas], dtype=np.float64)[:, None, :]
        ),
        hour_cdf=_cdf(
            _HOUR_WEIGHTS[None, :] * np.where(_NIGHT_HOURS[None, :], values("night")[:, None], 1.0)
        ),
        anomaly_kinds=np.array(
            [ANOMALY_KINDS.index(k) for k, _ in design.anomalies], dtype=np.int64
        ),
        anomaly_cdf=None if len(set(weights)) <= 1 else _cdf(np.array(weights, dtype=np.float64)),
    )


@dataclass(frozen=True)
class GeneratedBank:
    """Where `generate_bank` wrote its files and how many rows it produced.

    `n_customers`, `n_transactions` and `n_loans` count the clean rows. Dirty rows that add a
    row (duplicate customer, every dirty transaction) come on top; `negative_income` and
    `placeholder_birth_date` corrupt an existing customer row in place.
    """

    customers: Path
    transactions: Path
    loans: Path
    labels: Path
    truth_customers: Path
    truth_transactions: Path
    n_customers: int
    n_transactions: int
    n_loans: int
    n_dirty_rows: dict[str, int]


@dataclass(frozen=True)
class _Calendar:
    """The simulated period and derived constants shared by all chunks."""

    start: date
    months: int
    n_days: int
    start_us: int
    month_offsets: IntArray  # first day of each month, in days from start
    month_lengths: IntArray
    day_cdfs: FloatArray  # per weekday profile (everyday, leisure, bills), over days
    free_means: FloatArray  # mean everyday transactions per persona
    id_width: int
    n_customers: int
    plan: _Plan


@dataclass
class _Chunk:
    """The rows one chunk of customers contributes to each output file."""

    tables: dict[str, pa.Table]  # keyed like _files()
    n_transactions: int
    n_loans: int


_TYPES: dict[str, pa.DataType] = {
    "customer_id": pa.string(),
    "birth_date": pa.date32(),
    "gender": pa.string(),
    "region": pa.string(),
    "annual_income": pa.float64(),
    "account_balance": pa.float64(),
    "credit_limit": pa.float64(),
    "loan_balance": pa.float64(),
    "credit_score": pa.int32(),
    "employment_years": pa.float64(),
    "customer_since": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "amount": pa.float64(),
    "transaction_id": pa.string(),
    "direction": pa.string(),
    "channel": pa.string(),
    "category": pa.string(),
    "balance_after": pa.float64(),
    "loan_id": pa.string(),
    "start_date": pa.date32(),
    "end_date": pa.date32(),
    "interest_rate": pa.float64(),
    "status": pa.string(),
    "defaulted": pa.int32(),
    "persona": pa.string(),
    "is_anomalous": pa.bool_(),
    "anomaly_kind": pa.string(),
}


def _schema(names: Sequence[str]) -> pa.Schema:
    return pa.schema([(name, _TYPES[name]) for name in names])


def _files(design: BankDesign) -> dict[str, tuple[str, pa.Schema]]:
    """Output files (relative to out_dir) and their columns. Customers leave out the optional
    `age` (birth_date is always given) and the optional columns the design does not write."""
    return {
        "customers": ("customers", _schema(design.customer_file_columns())),
        "transactions": ("transactions", _schema(design.transaction_file_columns())),
        "loans": ("loans", _schema(LOANS.names)),
        "labels": ("truth/labels", _schema(LABELS.names)),
        "truth_customers": (
            "truth/customers",
            _schema(["customer_id", "persona", "is_anomalous", "anomaly_kind"]),
        ),
        "truth_transactions": (
            "truth/transactions",
            _schema(["transaction_id", "customer_id", "anomaly_kind"]),
        ),
    }


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def generate_bank(
    out_dir: Path,
    n_customers: int,
    seed: int = 0,
    *,
    tx_per_customer: float = 20.0,
    fmt: Literal["parquet", "csv"] = "parquet",
    start: date = date(2024, 1, 1),
    months: int = 12,
    dirty_rows: bool = True,
    progress: Callable[[int], None] | None = None,
    design: BankDesign = DEFAULT_DESIGN,
) -> GeneratedBank:
    """Generate a synthetic bank of `n_customers` customers into `out_dir`.

    Args:
        out_dir: Directory to write into; created if missing. Existing files are replaced.
        n_customers: Number of (clean, distinct) customers.
        seed: Random seed; equal arguments give byte-identical files.
        tx_per_customer: Mean number of transactions per customer over the whole period.
            Monthly salary and loan payments are always generated, so values below about
            `months` are exceeded.
        fmt: File format, "parquet" or "csv".
        start: First day of the simulated period.
        months: Length of the period in calendar months.
        dirty_rows: Plant a few invalid rows for the validation layer to find.
        progress: Called with the number of customers finished after each chunk.
        design: What kind of bank to make (personas, planted anomalies, default mechanism,
            optional columns); `finintel.scenarios.SCENARIOS` holds ready-made ones.

    Returns:
        The written paths and row counts.

    Raises:
        ValueError: If an argument is out of range.
    """
    _validate(n_customers, seed, tx_per_customer, fmt, start, months)
    if not isinstance(design, BankDesign):
        raise ValueError(f"design must be a BankDesign, got {type(design).__name__}")
    n_customers, months, tx_per_customer = int(n_customers), int(months), float(tx_per_customer)
    if isinstance(start, datetime):
        start = start.date()
    out_dir = Path(out_dir)
    truth_dir = out_dir / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    calendar = _make_calendar(start, months, n_customers, tx_per_customer, _plan(design))
    files = _files(design)

    n_chunks = math.ceil(n_customers / _CHUNK_SIZE)
    seeds = np.random.SeedSequence(int(seed)).spawn(n_chunks)
    dirty_totals = _dirty_totals(n_customers) if dirty_rows else dict.fromkeys(DIRTY_KINDS, 0)

    paths = {key: out_dir / f"{stem}.{fmt}" for key, (stem, _) in files.items()}
    sinks: dict[str, _Sink] = {}
    n_transactions = 0
    n_loans = 0
    tx_counter = 0
    try:
        for key, (_, schema) in files.items():
            sinks[key] = _Sink(paths[key], schema, fmt)
        for index, child in enumerate(seeds):
            first = index * _CHUNK_SIZE
            size = min(_CHUNK_SIZE, n_customers - first)
            quota = {
                kind: _share(total, first, size, n_customers)
                for kind, total in dirty_totals.items()
            }
            chunk = _generate_chunk(
                np.random.default_rng(child), calendar, first, size, tx_counter, n_loans, quota
            )
            tx_counter += chunk.tables["transactions"].num_rows
            n_transactions += chunk.n_transactions
            n_loans += chunk.n_loans
            for key, table in chunk.tables.items():
                sinks[key].write(table)
            if progress is not None:
                progress(first + size)
        for sink in sinks.values():
            sink.close()
        for sink in sinks.values():
            sink.commit()
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise

    return GeneratedBank(
        customers=paths["customers"],
        transactions=paths["transactions"],
        loans=paths["loans"],
        labels=paths["labels"],
        truth_customers=paths["truth_customers"],
        truth_transactions=paths["truth_transactions"],
        n_customers=n_customers,
        n_transactions=n_transactions,
        n_loans=n_loans,
        n_dirty_rows=dirty_totals,
    )


def _validate(
    n_customers: object,
    seed: object,
    tx_per_customer: object,
    fmt: object,
    start: object,
    months: object,
) -> None:
    if not _is_int(n_customers, minimum=1):
        raise ValueError(f"n_customers must be an integer >= 1, got {n_customers!r}")
    if not _is_int(seed, minimum=0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if (
        not isinstance(tx_per_customer, numbers.Real)
        or isinstance(tx_per_customer, bool)
        or not math.isfinite(tx_per_customer)
        or tx_per_customer <= 0
    ):
        raise ValueError(f"tx_per_customer must be a positive number, got {tx_per_customer!r}")
    if not _is_int(months, minimum=1):
        raise ValueError(f"months must be an integer >= 1, got {months!r}")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    if not isinstance(start, date):
        raise ValueError(f"start must be a date, got {start!r}")


def _is_int(value: object, *, minimum: int) -> bool:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return False
    return int(value) >= minimum


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


class _Sink:
    """Streams record batches to a temporary file that replaces `path` only on commit."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._writer: Any
        if fmt == "parquet":
            self.schema = schema
            self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        else:
            # Every timestamp is a whole second; CSV readers prefer them without fractions.
            self.schema = pa.schema(
                [
                    pa.field(f.name, pa.timestamp("s")) if pa.types.is_timestamp(f.type) else f
                    for f in schema
                ]
            )
            self._writer = pa_csv.CSVWriter(self.tmp, self.schema)
        self._closed = False

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def commit(self) -> None:
        self.tmp.replace(self.path)

    def abort(self) -> None:
        try:
            self.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _ids(prefix: str, numbers: IntArray, width: int, valid: BoolArray | None = None) -> pa.Array:
    """Fixed-width zero-padded identifiers such as C0000042, built without Python loops."""
    n = len(numbers)
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    row = len(head) + width
    data = np.empty((n, row), dtype=np.uint8)
    data[:, : len(head)] = head
    rest = numbers.astype(np.int64, copy=True)
    for j in range(row - 1, len(head) - 1, -1):
        data[:, j] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(0, (n + 1) * row, row, dtype=np.int32)
    buffers: list[pa.Buffer | None] = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    null_count = 0
    if valid is not None and not valid.all():
        buffers[0] = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int((~valid).sum())
    return pa.Array.from_buffers(pa.string(), n, buffers, null_count=null_count)


def _labels(names: Sequence[str], codes: npt.NDArray[Any]) -> pa.Array:
    return pa.array(list(names), pa.string()).take(pa.array(codes.astype(np.int32)))


def _dates(days_since_epoch: IntArray) -> pa.Array:
    return pa.array(days_since_epoch.astype(np.int32), pa.int32()).view(pa.date32())


def _money(values: FloatArray) -> pa.Array:
    return pa.array(np.round(values, 2), pa.float64())


# --------------------------------------------------------------------------------------------
# Calendar and volumes
# --------------------------------------------------------------------------------------------


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    next_first = date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_first - date(year, month, 1)).days
    return date(year, month, min(d.day, last_day))


def _make_calendar(
    start: date, months: int, n_customers: int, tx_per_customer: float, plan: _Plan
) -> _Calendar:
    end = _add_months(start, months)
    n_days = (end - start).days
    bounds = [(_add_months(start, k) - start).days for k in range(months + 1)]
    weekday = (start.weekday() + np.arange(n_days)) % 7
    profiles = np.stack([_WEEKDAY_EVERYDAY, _WEEKDAY_LEISURE, _WEEKDAY_BILLS])
    unknown = _dirty_totals(n_customers)["unknown_customer_id"]
    return _Calendar(
        start=start,
        months=months,
        n_days=n_days,
        start_us=(start - _EPOCH).days * _DAY_US,
        month_offsets=np.array(bounds[:-1], dtype=np.int64),
        month_lengths=np.array(bounds[1:], dtype=np.int64) - np.array(bounds[:-1], dtype=np.int64),
        day_cdfs=_cdf(profiles[:, weekday]),
        free_means=_free_means(tx_per_customer, months, plan),
        id_width=max(_MIN_CUSTOMER_ID_WIDTH, len(str(n_customers + unknown + 1))),
        n_customers=n_customers,
        plan=plan,
    )


def _free_means(tx_per_customer: float, months: int, plan: _Plan) -> FloatArray:
    """Mean everyday transactions per persona so that the overall mean hits the target.

    Salary and loan payments are monthly and fixed; the remaining budget is spread by each
    persona's activity, with a floor of `min_free` transactions.
    """
    recurring = months * (plan.salaried.astype(np.float64) + plan.loan)

    def total(scale: float) -> float:
        free = np.maximum(plan.min_free, scale * plan.activity)
        return float(np.sum(plan.share * (recurring + free)))

    lo, hi = 0.0, 1.0
    while total(hi) < tx_per_customer:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if total(mid) < tx_per_customer:
            lo = mid
        else:
            hi = mid
    return np.maximum(plan.min_free, hi * plan.activity)


def _dirty_totals(n_customers: int) -> dict[str, int]:
    per_customer = max(1, n_customers // _CUSTOMERS_PER_DIRTY_CUSTOMER)
    per_transaction = max(1, n_customers // _CUSTOMERS_PER_DIRTY_TRANSACTION)
    totals = dict.fromkeys(CUSTOMER_DIRTY_KINDS, per_customer)
    totals.update(dict.fromkeys(TRANSACTION_DIRTY_KINDS, per_transaction))
    return {kind: totals[kind] for kind in DIRTY_KINDS}


def _share(total: int, first: int, size: int, n: int) -> int:
    """The part of `total` that falls on customers [first, first + size) of n."""
    return (total * (first + size)) // n - (total * first) // n


# --------------------------------------------------------------------------------------------
# Chunk generation
# --------------------------------------------------------------------------------------------


@dataclass
class _Tx:
    """Transactions under construction; times are microseconds since the period start."""

    owner: IntArray
    time: IntArray
    amount: FloatArray
    credit: BoolArray
    channel: IntArray
    category: IntArray
    anomaly: IntArray  # index into TRANSACTION_ANOMALIES, -1 if none

    @staticmethod
    def concat(parts: Sequence[_Tx]) -> _Tx:
        return _Tx(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in _Tx.__dataclass_fields__)
        )

    @staticmethod
    def build(
        owner: IntArray,
        time: IntArray,
        amount: FloatArray,
        credit: BoolArray,
        channel: IntArray,
        category: IntArray,
        anomaly: int = -1,
    ) -> _Tx:
        n = len(owner)
        return _Tx(
            owner.astype(np.int64),
            time.astype(np.int64),
            amount.astype(np.float64),
            credit.astype(np.bool_),
            channel.astype(np.int64),
            category.astype(np.int64),
            np.full(n, anomaly, dtype=np.int64),
        )


@dataclass
class _People:
    """Per-customer attributes of one chunk."""

    persona: IntArray
    stress: FloatArray  # latent financial stress, drives risk behaviour
    age_days: IntArray
    income: FloatArray
    tenure_days: IntArray
    anomaly: IntArray  # index into ANOMALY_KINDS, -1 if none
    opening: FloatArray  # balance at the start of the period

    @property
    def monthly_net(self) -> FloatArray:
        return self.income * _NET_SHARE / 12.0


def _draw(rng: np.random.Generator, cdfs: FloatArray, group: IntArray) -> IntArray:
    """One categorical draw per element of `group` from its distribution `cdfs[group]`.

    `cdfs` holds one cumulative distribution per group along its last axis (each ending at
    exactly 1); `group` indexes the flattened leading axes. Shifting group g's distribution
    to [g, g + 1] lets a single sorted search serve all groups without an (n, k) temporary.
    """
    k = int(cdfs.shape[-1])
    table = cdfs.reshape(-1, k)
    shifted = (table + np.arange(len(table))[:, None]).ravel()
    idx = np.searchsorted(shifted, group + rng.random(len(group)), side="right")
    drawn: IntArray = np.minimum(idx - group * k, k - 1).astype(np.int64)
    return drawn


def _draw_n(rng: np.random.Generator, cdf: FloatArray, n: int) -> IntArray:
    """n categorical draws from one cumulative distribution."""
    idx: IntArray = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)
    return np.minimum(idx, len(cdf) - 1)


def _sum_by(owner: IntArray, weights: npt.NDArray[Any], size: int) -> FloatArray:
    """Per-customer sums of `weights`."""
    return np.bincount(owner, weights=weights, minlength=size).astype(np.float64)


def _draw_people(rng: np.random.Generator, plan: _Plan, size: int) -> _People:
    persona = _draw_n(rng, _cdf(plan.share), size)
    stress = rng.standard_normal(size)
    age = np.empty(size)
    income = np.empty(size)
    tenure = np.empty(size)
    for p, spec in enumerate(plan.design.personas):
        mask = persona == p
        k = int(mask.sum())
        mean, sd, lo, hi = spec.age
        age[mask] = np.clip(rng.normal(mean, sd, k), lo, hi)
        median, sigma = spec.income
        income[mask] = np.exp(rng.normal(math.log(median), sigma, k) - 0.08 * stress[mask])
        tenure[mask] = rng.uniform(*spec.tenure, k)
    tenure = np.minimum(tenure, age - 18.0)
    income = np.maximum(np.round(income, -2), 6_000.0)
    anomaly = _draw_anomalies(rng, plan, size)
    months = np.exp(np.log(plan.balance[persona]) - 0.5 * stress + 0.6 * rng.standard_normal(size))
    opening = income * _NET_SHARE / 12.0 * (months - plan.overdrawn[persona])
    return _People(
        persona=persona,
        stress=stress,
        # One day more than the exact age in years, so that 18.0 is never 17 and 364 days.
        age_days=np.ceil(age * 365.2425).astype(np.int64) + 1,
        income=income,
        tenure_days=np.floor(tenure * 365.2425).astype(np.int64),
        anomaly=anomaly,
        opening=np.round(opening, 2),
    )


def _draw_anomalies(rng: np.random.Generator, plan: _Plan, size: int) -> IntArray:
    """The planted kind of each customer (index into ANOMALY_KINDS), -1 for a normal one."""
    kinds = plan.anomaly_kinds
    if plan.design.anomaly_rate <= 0 or len(kinds) == 0:
        return np.full(size, -1, dtype=np.int64)
    planted = rng.random(size) < plan.design.anomaly_rate
    if plan.anomaly_cdf is None:
        choice = rng.integers(0, len(kinds), size)
    else:
        choice = _draw_n(rng, plan.anomaly_cdf, size)
    return np.where(planted, kinds[choice], -1).astype(np.int64)


def _kind(name: str) -> int:
    return ANOMALY_KINDS.index(name)


@dataclass
class _LoanBook:
    owner: IntArray
    amount: FloatArray
    start_day: IntArray  # days from the period start (negative: before)
    end_day: IntArray
    rate: FloatArray
    active: BoolArray


def _draw_loans(
    rng: np.random.Generator, people: _People, cal: _Calendar
) -> tuple[_LoanBook, FloatArray, _Tx, FloatArray]:
    """Loans, outstanding balance per customer at the period end, monthly payments and the
    number of payments each customer missed."""
    size = len(people.persona)
    plan = cal.plan
    heavy = plan.loan_heavy[people.persona]
    has_loan = rng.random(size) < plan.loan[people.persona]
    per_customer = np.where(has_loan, 1 + heavy * rng.binomial(2, 0.35, size), 0)
    owner = np.repeat(np.arange(size), per_customer)
    n = len(owner)
    o_heavy = heavy[owner]
    stress = people.stress[owner]
    size_of_loan = plan.log_loan_size[people.persona[owner]]
    multiple = np.where(o_heavy, size_of_loan + 0.3 * stress, size_of_loan)
    principal = np.round(
        people.income[owner] * np.exp(multiple + 0.45 * rng.standard_normal(n)), -2
    )
    principal = np.maximum(principal, 1_000.0)
    terms_heavy = np.array([36, 60, 120, 240, 300])
    terms_other = np.array([24, 36, 60])
    term = np.where(
        o_heavy,
        terms_heavy[rng.integers(0, len(terms_heavy), n)],
        terms_other[rng.integers(0, len(terms_other), n)],
    )
    elapsed = np.floor(rng.random(n) * 0.8 * term).astype(np.int64)
    rate = np.round(
        np.clip(np.where(o_heavy, 7.5, 6.0) + 1.5 * stress + rng.normal(0, 1, n), 1.5, 24.0), 2
    )
    monthly_rate = rate / 1200.0
    payment = principal * monthly_rate / (1.0 - (1.0 + monthly_rate) ** (-term.astype(float)))
    k_end = elapsed + cal.months
    growth = (1.0 + monthly_rate) ** np.minimum(k_end, term)
    outstanding = np.where(
        k_end >= term, 0.0, principal * growth - payment * (growth - 1.0) / monthly_rate
    )
    outstanding = np.maximum(outstanding, 0.0)
    start_day = -np.round(elapsed * 30.4375).astype(np.int64) - rng.integers(0, 28, n)
    end_day = start_day + np.round(term * 30.4375).astype(np.int64)
    balance = _sum_by(owner, outstanding, size)

    # One payment a month per customer: the sum over that customer's running loans.
    n_pay = np.clip(term - elapsed, 0, cal.months)
    pay_owner = np.repeat(owner, n_pay)
    pay_month = _ranks(np.repeat(np.arange(n), n_pay))
    pay_key = pay_owner * cal.months + pay_month
    keys, inverse = np.unique(pay_key, return_inverse=True)
    sums = np.bincount(inverse, weights=np.repeat(payment, n_pay))
    p_owner = keys // cal.months
    p_month = keys % cal.months
    active = people.anomaly[p_owner] != _kind("dormant_burst")
    p_owner, p_month, sums = p_owner[active], p_month[active], sums[active]
    pay_day_frac = rng.random(size)[p_owner]
    day = cal.month_offsets[p_month] + np.floor(pay_day_frac * cal.month_lengths[p_month])
    seconds = rng.integers(9 * 3_600, 12 * 3_600, len(p_owner))
    payments = _Tx.build(
        p_owner,
        day.astype(np.int64) * _DAY_US + seconds * 1_000_000,
        np.round(sums, 2),
        np.zeros(len(p_owner), dtype=np.bool_),
        np.full(len(p_owner), CHANNELS.index("transfer")),
        np.full(len(p_owner), _CAT_LOAN),
    )
    payments, missed, owed = _miss_payments(rng, people, plan.design.missed_payments, payments)
    balance = balance + owed

    # Some customers also have an older loan that was repaid before the period.
    closed = rng.random(size) < 0.08
    c_owner = np.flatnonzero(closed)
    m = len(c_owner)
    c_term = terms_other[rng.integers(0, len(terms_other), m)]
    c_end = -rng.integers(30, 1_500, m)
    c_start = c_end - np.round(c_term * 30.4375).astype(np.int64)
    book = _LoanBook(
        owner=np.concatenate([owner, c_owner]),
        amount=np.concatenate(
            [
                principal,
                np.maximum(np.round(people.income[c_owner] * rng.uniform(0.05, 0.4, m), -2), 500.0),
            ]
        ),
        start_day=np.concatenate([start_day, c_start]),
        end_day=np.concatenate([end_day, c_end]),
        rate=np.concatenate([rate, np.round(rng.uniform(2.0, 12.0, m), 2)]),
        active=np.concatenate([outstanding > 0, np.zeros(m, dtype=np.bool_)]),
    )
    return book, balance, payments, missed


def _miss_payments(
    rng: np.random.Generator, people: _People, chance: float, payments: _Tx
) -> tuple[_Tx, FloatArray, FloatArray]:
    """Drop the loan payments stressed customers miss; return the payments kept, the missed
    count and the missed amount (still owed) per customer."""
    size = len(people.persona)
    if chance <= 0:
        return payments, np.zeros(size), np.zeros(size)
    p = np.minimum(chance * np.exp(0.9 * people.stress[payments.owner]), 0.9)
    skip = rng.random(len(payments.owner)) < p
    kept = _Tx(*(getattr(payments, f)[~skip] for f in _Tx.__dataclass_fields__))
    missed = _sum_by(payments.owner[skip], np.ones(int(skip.sum())), size)
    owed = _sum_by(payments.owner[skip], payments.amount[skip], size)
    return kept, missed, owed


def _ranks(groups: IntArray) -> IntArray:
    """Position of each element within its run of equal, contiguous group values."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return (np.arange(n) - first).astype(np.int64)


def _time_of_day(rng: np.random.Generator, plan: _Plan, persona: IntArray) -> IntArray:
    """Whole seconds after midnight, in microseconds, following the persona's daily rhythm."""
    hour = _draw(rng, plan.hour_cdf, persona)
    return hour * _HOUR_US + rng.integers(0, 3_600, len(persona)) * 1_000_000


def _days(cal: _Calendar, category: IntArray, u: FloatArray) -> IntArray:
    """Day of each transaction: quantile `u` of its category's weekly rhythm over the period."""
    profile = np.where(_BILLS[category], 2, np.where(_LEISURE[category], 1, 0))
    day = np.empty(len(category), dtype=np.int64)
    for k in range(3):
        mask = profile == k
        idx = np.searchsorted(cal.day_cdfs[k], u[mask], side="right")
        day[mask] = np.minimum(idx, cal.n_days - 1)
    return day


def _salaries(rng: np.random.Generator, people: _People, cal: _Calendar) -> _Tx:
    size = len(people.persona)
    eligible = cal.plan.salaried[people.persona] & (people.anomaly != _kind("dormant_burst"))
    who = np.flatnonzero(eligible)
    payday = rng.random(size)
    owner = np.repeat(who, cal.months)
    month = np.tile(np.arange(cal.months), len(who))
    day = cal.month_offsets[month] + np.floor(payday[owner] * cal.month_lengths[month])
    seconds = rng.integers(8 * 3_600, 10 * 3_600, len(owner))
    amount = people.monthly_net[owner] * (1.0 + 0.01 * rng.standard_normal(len(owner)))
    return _Tx.build(
        owner,
        day.astype(np.int64) * _DAY_US + seconds * 1_000_000,
        np.round(amount, 2),
        np.ones(len(owner), dtype=np.bool_),
        np.full(len(owner), CHANNELS.index("transfer")),
        np.full(len(owner), _CAT_SALARY),
    )


def _everyday(rng: np.random.Generator, people: _People, cal: _Calendar) -> _Tx:
    """Everyday spending and ad-hoc credits, with raw (unscaled) amounts."""
    size = len(people.persona)
    plan = cal.plan
    mean = cal.free_means[people.persona]
    floor = plan.min_free[people.persona]
    lam = np.maximum(mean - floor, 0.0) * rng.gamma(4.0, 0.25, size)
    counts = (floor + rng.poisson(lam)).astype(np.int64)
    counts[people.anomaly == _kind("dormant_burst")] = 0
    owner = np.repeat(np.arange(size), counts)
    n = len(owner)
    persona = people.persona[owner]
    credit = rng.random(n) < plan.credit_share[persona]
    # Customers without a salary live off everyday credits: their first everyday transaction
    # is a credit and their second a debit.
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    first = starts[counts > 0]
    credit[first] |= ~plan.salaried[persona[first]]
    second = starts[counts > 1] + 1
    credit[second] &= plan.salaried[persona[second]]
    category = np.where(credit, _CAT_TRANSFER, _draw(rng, plan.category_cdf, persona))
    channel = _draw(rng, plan.channel_cdf, persona * len(CATEGORIES) + category)
    # Stratified quantiles spread each customer's spending evenly over the period, so
    # balances follow income rather than the luck of the draw.
    u = (_ranks(owner) + rng.random(n)) / counts[owner]
    day = _days(cal, category, u)
    time = day * _DAY_US + _time_of_day(rng, plan, persona)
    volatility = np.exp(0.15 * people.stress[owner])
    amount = _AMOUNT_MEDIAN[category] * np.exp(
        _AMOUNT_SIGMA[category] * volatility * rng.standard_normal(n)
    )
    return _Tx.build(owner, time, amount, credit, channel, category)


def _scale_amounts(
    rng: np.random.Generator, people: _People, cal: _Calendar, fixed: _Tx, everyday: _Tx
) -> FloatArray:
    """Give everyday transactions amounts that match income and spending habits.

    Purchases keep realistic sizes (scaled gently with income). Salaried customers receive
    small extra credits; the others live off their everyday credits, which add up to their
    net income. Debits take a persona- and stress-driven share of all credits, less most of
    the loan payments; what purchases leave of that goes out in bulk (rent and transfers),
    each bulk debit carrying the share accrued since the previous one, so balances follow
    income. Returns each customer's typical purchase, the yardstick for planted anomalies.
    """
    size = len(people.persona)
    plan = cal.plan
    persona = people.persona
    owner = everyday.owner
    is_credit = everyday.credit
    level = np.sqrt(people.income / 45_000.0) * np.exp(0.1 * rng.standard_normal(size))

    raw_credit = _sum_by(owner, everyday.amount * is_credit, size)
    credit_target = np.where(
        plan.salaried[persona],
        raw_credit * people.income / 50_000.0,
        people.monthly_net
        * cal.months
        * plan.credit_income[persona]
        * rng.uniform(0.85, 1.1, size),
    )
    credit_target = np.where(raw_credit > 0, credit_target, 0.0)
    credit_scale = np.divide(credit_target, raw_credit, out=np.zeros(size), where=raw_credit > 0)
    fixed_credit = _sum_by(fixed.owner, fixed.amount * fixed.credit, size)
    fixed_debit = _sum_by(fixed.owner, fixed.amount * ~fixed.credit, size)
    credits = fixed_credit + credit_target

    ratio = plan.spend[persona] * np.exp(0.05 * people.stress + 0.04 * rng.standard_normal(size))
    free = plan.free_spending[persona]
    ratio = np.where(free, np.exp(0.35 * rng.standard_normal(size)), ratio)
    debit_target = np.maximum(ratio * credits - 0.9 * fixed_debit, 0.2 * credits)

    bulk = _ensure_bulk(rng, people, plan, everyday)
    purchase = ~is_credit & ~bulk
    spent = _sum_by(owner, everyday.amount * level[owner] * purchase, size)
    cap = np.divide(0.6 * debit_target, spent, out=np.ones(size), where=spent > 0)
    purchase_scale = level * np.minimum(cap, 1.0)
    remainder = debit_target - np.minimum(spent, 0.6 * debit_target)

    amount = np.where(
        is_credit, everyday.amount * credit_scale[owner], everyday.amount * purchase_scale[owner]
    )
    amount[bulk] = _accrued_shares(owner[bulk], everyday.time[bulk], remainder)
    everyday.amount = np.maximum(np.round(amount, 2), 0.01)
    return np.asarray(60.0 * purchase_scale, dtype=np.float64)


def _ensure_bulk(
    rng: np.random.Generator, people: _People, plan: _Plan, everyday: _Tx
) -> BoolArray:
    """Mark bulk debits (rent, transfers); each customer's last debit becomes one."""
    debit = ~everyday.credit
    bulk = debit & np.isin(everyday.category, [CATEGORIES.index("rent"), _CAT_TRANSFER])
    rows = np.flatnonzero(debit)
    if len(rows) == 0:
        return bulk
    order = rows[np.lexsort((everyday.time[rows], everyday.owner[rows]))]
    owners = everyday.owner[order]
    last = order[np.r_[owners[1:] != owners[:-1], True]]
    convert = last[~bulk[last]]
    everyday.category[convert] = _CAT_TRANSFER
    persona = people.persona[everyday.owner[convert]]
    everyday.channel[convert] = _draw(
        rng, plan.channel_cdf, persona * len(CATEGORIES) + _CAT_TRANSFER
    )
    bulk[convert] = True
    return bulk


def _accrued_shares(owner: IntArray, time: IntArray, total: FloatArray) -> FloatArray:
    """Split each customer's `total` over their rows in proportion to the time since the
    previous row (the first row counts from the period start)."""
    order = np.lexsort((time, owner))
    o, t = owner[order], time[order].astype(np.float64)
    new = np.r_[True, o[1:] != o[:-1]]
    gap = np.where(new, t, t - np.r_[0.0, t[:-1]]) + 1.0
    span = _sum_by(o, gap, len(total))
    shares = np.empty(len(owner))
    shares[order] = total[o] * gap / span[o]
    return shares


def _between(rng: np.random.Generator, lo: int, hi: int, n: int) -> IntArray:
    """n sorted times in whole seconds, uniform in [lo, hi) microseconds."""
    seconds = rng.integers(-(-lo // 1_000_000), max(hi // 1_000_000, -(-lo // 1_000_000) + 1), n)
    return np.sort(seconds) * 1_000_000


@dataclass
class _Planting:
    """What planting an anomalous customer reads, and where its rows go."""

    rng: np.random.Generator
    people: _People
    cal: _Calendar
    everyday: _Tx
    typical: FloatArray  # each customer's typical purchase
    parts: list[_Tx] = field(default_factory=list)
    quiet: dict[int, tuple[int, int]] = field(default_factory=dict)  # silent [from, to) times

    @property
    def end(self) -> int:
        return self.cal.n_days * _DAY_US

    def add(
        self,
        c: int,
        time: IntArray,
        amount: FloatArray,
        credit: BoolArray,
        channel: IntArray,
        category: IntArray,
    ) -> None:
        n = len(time)
        self.parts.append(
            _Tx.build(np.full(n, c), time, np.round(amount, 2), credit, channel, category)
        )

    def rows(self, c: int) -> IntArray:
        """The everyday rows of customer c (everyday rows are grouped by customer)."""
        lo, hi = np.searchsorted(self.everyday.owner, [c, c + 1])
        return np.arange(lo, hi, dtype=np.int64)

    def channels(self, c: int, category: IntArray) -> IntArray:
        """Channels drawn from customer c's persona for the given categories."""
        persona = int(self.people.persona[c])
        group = persona * len(CATEGORIES) + category
        return _draw(self.rng, self.cal.plan.channel_cdf, group)


_TRANSFER = CHANNELS.index("transfer")
_ONLINE = CHANNELS.index("online")
_CARD = CHANNELS.index("card")
_ATM = CHANNELS.index("atm")
_BRANCH = CHANNELS.index("branch")
_CAT_CASH = CATEGORIES.index("cash")
_CAT_SHOPPING = CATEGORIES.index("shopping")
_CAT_TRAVEL = CATEGORIES.index("travel")
_CAT_ENTERTAINMENT = CATEGORIES.index("entertainment")
_CAT_HEALTH = CATEGORIES.index("health")


def _plant_customer_anomalies(
    rng: np.random.Generator, people: _People, cal: _Calendar, everyday: _Tx, typical: FloatArray
) -> tuple[_Tx, dict[int, tuple[int, int]]]:
    """Extra transactions of the planted anomalous customers (night owls are retimed, round
    amounts rounded in place) and the periods some of them stay silent."""
    ctx = _Planting(rng, people, cal, everyday, typical)
    for c in np.flatnonzero(people.anomaly >= 0).tolist():
        _PLANTERS[ANOMALY_KINDS[int(people.anomaly[c])]](ctx, c)
    tx = _Tx.concat(ctx.parts) if ctx.parts else _Tx.build(*_empty_tx())
    return tx, ctx.quiet


def _night_owl(ctx: _Planting, c: int) -> None:
    """Most everyday transactions move to the small hours."""
    rng, everyday = ctx.rng, ctx.everyday
    mine = np.flatnonzero(everyday.owner == c)
    moved = mine[rng.random(len(mine)) < 0.85]
    day = everyday.time[moved] // _DAY_US
    seconds = rng.integers(0, 5 * 3_600, len(moved))
    everyday.time[moved] = day * _DAY_US + seconds * 1_000_000


def _spending_spike(ctx: _Planting, c: int) -> None:
    """8-15 purchases of 4-12 typical purchases within four days."""
    rng, cal = ctx.rng, ctx.cal
    spree = np.array([_CAT_SHOPPING, _CAT_TRAVEL, _CAT_ENTERTAINMENT])
    k = int(rng.integers(8, 16))
    first_day = int(rng.integers(0, max(cal.n_days - 4, 1)))
    lo = first_day * _DAY_US + 9 * _HOUR_US
    time = np.minimum(_between(rng, lo, lo + 4 * _DAY_US - 12 * _HOUR_US, k), ctx.end - 1)
    ctx.add(
        c,
        time,
        ctx.typical[c] * rng.uniform(4.0, 12.0, k),
        np.zeros(k, np.bool_),
        np.where(rng.random(k) < 0.6, _CARD, _ONLINE),
        spree[rng.integers(0, 3, k)],
    )


def _money_mule(ctx: _Planting, c: int) -> None:
    """12-30 transfers in the last 60 days, each sent on within minutes to hours."""
    rng, cal = ctx.rng, ctx.cal
    k = int(rng.integers(12, 31))
    lo = max(cal.n_days - 60, 0) * _DAY_US
    t_in = _between(rng, lo, ctx.end - 7 * _HOUR_US, k)
    t_out = t_in + rng.integers(15 * 60, 6 * 3_600, k) * 1_000_000
    a_in = np.round(np.exp(rng.normal(math.log(1_500.0), 0.5, k)), 2)
    a_out = a_in * rng.uniform(0.9, 0.98, k)
    ctx.add(
        c,
        np.concatenate([t_in, t_out]),
        np.concatenate([a_in, a_out]),
        np.r_[np.ones(k, np.bool_), np.zeros(k, np.bool_)],
        np.r_[np.full(k, _TRANSFER), np.where(rng.random(k) < 0.5, _ONLINE, _TRANSFER)],
        np.full(2 * k, _CAT_TRANSFER),
    )


def _dormant_burst(ctx: _Planting, c: int) -> None:
    """Silent all period, then a large credit drained within days."""
    rng, cal = ctx.rng, ctx.cal
    k = int(rng.integers(12, 26))
    wake = max((cal.n_days - int(rng.integers(8, 15))) * _DAY_US + 10 * _HOUR_US, 0)
    windfall = float(ctx.people.income[c] * rng.uniform(0.3, 1.0))
    weights = rng.uniform(0.5, 1.5, k)
    drained = windfall * rng.uniform(0.8, 0.95) * weights / weights.sum()
    channel = np.array([_ATM, _ONLINE, _TRANSFER])[rng.integers(0, 3, k)]
    category = np.where(
        channel == _ATM, _CAT_CASH, np.where(channel == _ONLINE, _CAT_SHOPPING, _CAT_TRANSFER)
    )
    ctx.add(
        c,
        np.r_[wake, _between(rng, wake + _HOUR_US, ctx.end - 1, k)],
        np.r_[windfall, drained],
        np.r_[True, np.zeros(k, np.bool_)],
        np.r_[_TRANSFER, channel],
        np.r_[_CAT_TRANSFER, category],
    )


def _stratified_days(rng: np.random.Generator, first: int, span: int, k: int) -> IntArray:
    """k sorted days spread evenly (with jitter) over [first, first + span)."""
    days = first + np.floor((np.arange(k) + rng.random(k)) * span / k).astype(np.int64)
    return np.minimum(days, first + span - 1)


def _seconds(rng: np.random.Generator, lo_hour: int, hi_hour: int, k: int) -> IntArray:
    """k times of day in [lo_hour, hi_hour), whole seconds, in microseconds."""
    return rng.integers(lo_hour * 3_600, hi_hour * 3_600, k) * 1_000_000


def _pass_through(ctx: _Planting, c: int) -> None:
    """3-8 large incoming transfers over the period, each sent on within a day (mostly
    within 1-6 hours) as a debit of 90-100% of it."""
    rng, cal = ctx.rng, ctx.cal
    k = int(rng.integers(3, 9))
    day = _stratified_days(rng, 0, max(cal.n_days - 1, 1), k)
    t_in = day * _DAY_US + _seconds(rng, 8, 18, k)
    quick = rng.random(k) < 0.8
    delay = np.where(
        quick, rng.integers(3_600, 6 * 3_600, k), rng.integers(6 * 3_600, 23 * 3_600, k)
    )
    t_out = np.minimum(t_in + delay * 1_000_000, ctx.end - 1)
    size = max(1.5 * float(ctx.people.monthly_net[c]), 2_500.0)
    a_in = np.round(np.maximum(size * np.exp(0.45 * rng.standard_normal(k)), 1_000.0), 2)
    a_out = np.maximum(np.floor(a_in * rng.uniform(0.9, 1.0, k) * 100.0) / 100.0, 0.01)
    a_out = np.maximum(a_out, np.ceil(a_in * 90.0) / 100.0)
    ctx.add(
        c,
        np.r_[t_in, t_out],
        np.r_[a_in, a_out],
        np.r_[np.ones(k, np.bool_), np.zeros(k, np.bool_)],
        np.r_[np.full(k, _TRANSFER), np.where(rng.random(k) < 0.55, _ONLINE, _TRANSFER)],
        np.full(2 * k, _CAT_TRANSFER),
    )


def _velocity(ctx: _Planting, c: int) -> None:
    """Within 1-3 weeks, 6-12 times the persona's usual number of transactions (at least
    24), half in and half out, each about a fifth of a month's net pay, the money out
    roughly matching the money in."""
    rng, cal = ctx.rng, ctx.cal
    window = min(int(rng.integers(7, 22)), cal.n_days)
    first = int(rng.integers(0, cal.n_days - window + 1))
    persona = int(ctx.people.persona[c])
    usual = float(cal.free_means[persona]) * window / cal.n_days
    k = int(np.clip(round(usual * rng.uniform(6.0, 12.0)), 24, 160))
    day = first + rng.integers(0, window, k)
    time = np.sort(day * _DAY_US + _time_of_day(rng, cal.plan, np.full(k, persona)))
    credit = np.zeros(k, dtype=np.bool_)
    credit[rng.permutation(k)[: k // 2]] = True
    pay = max(float(ctx.people.monthly_net[c]), 500.0)
    amount = pay * np.exp(rng.normal(math.log(0.2), 0.5, k))
    out_total = amount[credit].sum() * rng.uniform(0.92, 1.0)
    amount[~credit] *= out_total / amount[~credit].sum()
    spend = np.where(rng.random(k) < 0.6, _CAT_TRANSFER, _CAT_SHOPPING)
    category = np.where(credit, _CAT_TRANSFER, spend)
    ctx.add(c, time, amount, credit, ctx.channels(c, category), category)


def _large_spend_month(ctx: _Planting, c: int) -> None:
    """3-6 purchases of about 0.4-1.3 months of net pay each, within one 30-day period."""
    rng, cal = ctx.rng, ctx.cal
    k = int(rng.integers(3, 7))
    first = int(rng.integers(0, max(cal.n_days - 30, 0) + 1))
    day = first + rng.integers(0, min(30, cal.n_days - first), k)
    time = np.sort(day * _DAY_US + _seconds(rng, 9, 21, k))
    size = float(ctx.people.monthly_net[c])
    amount = size * np.exp(rng.normal(math.log(0.7), 0.3, k))
    kinds = np.array([_CAT_SHOPPING, _CAT_TRAVEL, _CAT_SHOPPING, _CAT_HEALTH, _CAT_ENTERTAINMENT])
    category = kinds[rng.integers(0, len(kinds), k)]
    channel = np.where(rng.random(k) < 0.55, _CARD, _ONLINE)
    ctx.add(c, time, amount, np.zeros(k, np.bool_), channel, category)


def _structuring(ctx: _Planting, c: int) -> None:
    """6-15 cash deposits or incoming transfers of 85-99.9% of the reporting threshold,
    spread over 3-10 weeks, the money then sent on in a few transfers."""
    rng, cal = ctx.rng, ctx.cal
    threshold = cal.plan.design.reporting_threshold
    k = int(rng.integers(6, 16))
    span = min(int(rng.integers(21, 71)), cal.n_days)
    first = int(rng.integers(0, cal.n_days - span + 1))
    day = _stratified_days(rng, first, span, k)
    time = day * _DAY_US + _seconds(rng, 9, 17, k)
    amount = threshold * rng.uniform(0.85, 0.999, k)
    cash_share = 0.85 if rng.random() < 0.6 else 0.2
    cash = rng.random(k) < cash_share
    notes = np.maximum(np.floor(amount / 10.0) * 10.0, math.ceil(0.85 * threshold))
    amount = np.where(cash, notes, amount)
    channel = np.where(cash, np.where(rng.random(k) < 0.75, _BRANCH, _ATM), _TRANSFER)
    category = np.where(cash, _CAT_CASH, _CAT_TRANSFER)
    m = int(rng.integers(1, 4))
    out_day = np.minimum(day[-1] + rng.integers(1, 8, m), cal.n_days - 1)
    out_time = out_day * _DAY_US + _seconds(rng, 9, 18, m)
    weights = rng.uniform(0.5, 1.5, m)
    out = amount.sum() * rng.uniform(0.7, 0.95) * weights / weights.sum()
    ctx.add(
        c,
        np.r_[time, out_time],
        np.r_[amount, out],
        np.r_[np.ones(k, np.bool_), np.zeros(m, np.bool_)],
        np.r_[channel, np.where(rng.random(m) < 0.6, _ONLINE, _TRANSFER)],
        np.r_[category, np.full(m, _CAT_TRANSFER)],
    )


def _dormant_then_active(ctx: _Planting, c: int) -> None:
    """Ordinary activity, then 3-6 months without any transaction, then a burst: a large
    credit and 15-40 withdrawals, purchases and transfers within a few days."""
    rng, cal = ctx.rng, ctx.cal
    n = cal.n_days
    burst = int(rng.integers(2, 8))
    gap = min(int(rng.integers(100, 190)), max(n - burst - 1, 0))
    room = n - gap - burst
    lead = int(rng.integers(min(30, room), room + 1))
    wake = lead + gap
    ctx.quiet[c] = (lead * _DAY_US, wake * _DAY_US)
    k = int(rng.integers(15, 41))
    t_in = wake * _DAY_US + _seconds(rng, 8, 11, 1)
    t_out = _between(rng, int(t_in[0]) + _HOUR_US, min((wake + burst) * _DAY_US, ctx.end) - 1, k)
    windfall = float(ctx.people.monthly_net[c]) * rng.uniform(1.0, 4.0)
    weights = rng.uniform(0.5, 1.5, k)
    drained = windfall * rng.uniform(0.7, 0.98) * weights / weights.sum()
    channel = np.array([_ATM, _ONLINE, _CARD, _TRANSFER])[_draw_n(rng, _BURST_CHANNELS, k)]
    drained = np.where(channel == _ATM, np.maximum(np.round(drained / 20.0) * 20.0, 20.0), drained)
    category = np.where(
        channel == _ATM,
        _CAT_CASH,
        np.where(channel == _TRANSFER, _CAT_TRANSFER, _CAT_SHOPPING),
    )
    ctx.add(
        c,
        np.r_[t_in, t_out],
        np.r_[windfall, drained],
        np.r_[True, np.zeros(k, np.bool_)],
        np.r_[_TRANSFER, channel],
        np.r_[_CAT_TRANSFER, category],
    )


_BURST_CHANNELS = _cdf(np.array([0.3, 0.3, 0.2, 0.2]))


def _card_testing(ctx: _Planting, c: int) -> None:
    """1-3 bursts of 6-25 payments of 0.50-2.00 within minutes, mostly online, often
    followed by a larger online purchase."""
    rng, cal = ctx.rng, ctx.cal
    last = 0
    for _ in range(int(rng.integers(1, 4))):
        m = int(rng.integers(6, 26))
        lo = int(rng.integers(0, cal.n_days)) * _DAY_US + int(_seconds(rng, 0, 24, 1)[0])
        hi = lo + int(rng.integers(2, 16)) * 60 * 1_000_000
        time = np.minimum(_between(rng, lo, hi, m), ctx.end - 1)
        last = max(last, int(time[-1]))
        channel = np.where(rng.random(m) < 0.85, _ONLINE, _CARD)
        category = np.where(rng.random(m) < 0.5, _CAT_SHOPPING, _CAT_ENTERTAINMENT)
        ctx.add(c, time, rng.uniform(0.5, 2.0, m), np.zeros(m, np.bool_), channel, category)
    if rng.random() < 0.6:
        j = int(rng.integers(1, 3))
        lo = last + 10 * 60 * 1_000_000
        time = np.minimum(_between(rng, lo, lo + 2 * _HOUR_US, j), ctx.end - 1)
        amount = ctx.typical[c] * rng.uniform(5.0, 15.0, j)
        ctx.add(
            c, time, amount, np.zeros(j, np.bool_), np.full(j, _ONLINE), np.full(j, _CAT_SHOPPING)
        )


def _round_amounts(ctx: _Planting, c: int) -> None:
    """Most of the customer's amounts of 80 or more become multiples of 100 (large ones
    often of 1,000), plus 6-15 round cash and transfer movements in and out."""
    rng, cal, everyday = ctx.rng, ctx.cal, ctx.everyday
    rows = ctx.rows(c)
    share = rng.uniform(0.7, 0.95)
    pick = rows[(everyday.amount[rows] >= 80.0) & (rng.random(len(rows)) < share)]
    thousand = (everyday.amount[pick] >= 1_500.0) & (rng.random(len(pick)) < 0.5)
    unit = np.where(thousand, 1_000.0, 100.0)
    everyday.amount[pick] = np.maximum(np.round(everyday.amount[pick] / unit) * unit, unit)
    j = int(rng.integers(6, 16))
    day = _stratified_days(rng, 0, cal.n_days, j)
    time = day * _DAY_US + _seconds(rng, 9, 19, j)
    credit = rng.random(j) < 0.5
    cash = rng.random(j) < 0.5
    big = np.where(
        rng.random(j) < 0.3, 1_000.0 * rng.integers(1, 10, j), 100.0 * rng.integers(2, 31, j)
    )
    amount = np.where(cash & ~credit, 100.0 * rng.integers(1, 6, j), big)
    channel = np.where(cash, np.where(credit, _BRANCH, _ATM), _TRANSFER)
    category = np.where(cash, _CAT_CASH, _CAT_TRANSFER)
    ctx.add(c, time, amount, credit, channel, category)


_PLANTERS: dict[str, Callable[[_Planting, int], None]] = {
    "spending_spike": _spending_spike,
    "night_owl": _night_owl,
    "money_mule": _money_mule,
    "dormant_burst": _dormant_burst,
    "pass_through": _pass_through,
    "velocity": _velocity,
    "large_spend_month": _large_spend_month,
    "structuring": _structuring,
    "dormant_then_active": _dormant_then_active,
    "card_testing": _card_testing,
    "round_amounts": _round_amounts,
}


def _silence(tx: _Tx, quiet: dict[int, tuple[int, int]], size: int) -> _Tx:
    """Drop the transactions that fall in a customer's silent period."""
    if not quiet:
        return tx
    lo = np.zeros(size, dtype=np.int64)
    hi = np.zeros(size, dtype=np.int64)
    for c, (start, stop) in quiet.items():
        lo[c], hi[c] = start, stop
    keep = ~((tx.time >= lo[tx.owner]) & (tx.time < hi[tx.owner]))
    return _Tx(*(getattr(tx, f)[keep] for f in _Tx.__dataclass_fields__))


def _micro_payments(rng: np.random.Generator, everyday: _Tx, share: float) -> None:
    """Make `share` of the card and online purchases micro-payments of 0.30-3.00."""
    purchase = ~everyday.credit & np.isin(everyday.channel, [_CARD, _ONLINE])
    purchase &= ~np.isin(everyday.category, [CATEGORIES.index("rent"), _CAT_TRANSFER])
    rows = np.flatnonzero(purchase)
    rows = rows[rng.random(len(rows)) < share]
    everyday.amount[rows] = np.round(rng.uniform(0.3, 3.0, len(rows)), 2)


def _cash_in_notes(everyday: _Tx) -> None:
    """ATM withdrawals in whole notes: multiples of 20, at least 20."""
    atm = (everyday.channel == _ATM) & ~everyday.credit
    everyday.amount[atm] = np.maximum(np.round(everyday.amount[atm] / 20.0) * 20.0, 20.0)


def _empty_tx() -> tuple[IntArray, IntArray, FloatArray, BoolArray, IntArray, IntArray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z, np.zeros(0), np.zeros(0, dtype=np.bool_), z, z


def _plant_transaction_anomalies(
    rng: np.random.Generator,
    people: _People,
    cal: _Calendar,
    everyday: _Tx,
    fixed: _Tx,
    typical: FloatArray,
) -> _Tx:
    """Mark large and odd-hour everyday transactions; return bursts in unused channels."""
    size = len(people.persona)
    normal = people.anomaly[everyday.owner] < 0
    n = len(everyday.owner)

    # Large amounts dwarf everything else the customer does.
    large = normal & ~everyday.credit & (rng.random(n) < _LARGE_AMOUNT_RATE)
    biggest = np.zeros(size)
    np.maximum.at(biggest, everyday.owner, np.where(everyday.credit, 0.0, everyday.amount))
    k = int(large.sum())
    owners = everyday.owner[large]
    everyday.amount[large] = np.round(
        np.maximum(biggest[owners] * rng.uniform(3.0, 6.0, k), typical[owners] * 40.0), 2
    )
    everyday.anomaly[large] = TRANSACTION_ANOMALIES.index("large_amount")

    hour = (everyday.time % _DAY_US) // _HOUR_US
    daytime = (hour >= 8) & (hour < 21)
    calm = ~cal.plan.late_hours[people.persona[everyday.owner]]
    odd = normal & ~large & daytime & calm & (rng.random(n) < _ODD_HOUR_RATE)
    day = everyday.time[odd] // _DAY_US
    seconds = rng.integers(2 * 3_600, 4 * 3_600 + 1_800, int(odd.sum()))
    everyday.time[odd] = day * _DAY_US + seconds * 1_000_000
    everyday.anomaly[odd] = TRANSACTION_ANOMALIES.index("odd_hour")

    owners = np.concatenate([everyday.owner, fixed.owner])
    channels = np.concatenate([everyday.channel, fixed.channel])
    counts = np.bincount(owners * len(CHANNELS) + channels, minlength=size * len(CHANNELS))
    used = counts.reshape(size, len(CHANNELS)) > 0
    n_tx = used.sum(axis=1)
    chosen = np.flatnonzero(
        (people.anomaly < 0) & (n_tx < len(CHANNELS)) & (rng.random(size) < _CHANNEL_BURST_RATE)
    )
    burst_category = np.array(
        [CATEGORIES.index(c) for c in ("shopping", "shopping", "cash", "cash", "transfer")]
    )
    parts: list[_Tx] = []
    for c in chosen.tolist():
        scores = np.where(used[c], -1.0, rng.random(len(CHANNELS)))
        channel = int(np.argmax(scores))
        k = int(rng.integers(4, 8))
        lo = int(rng.integers(0, cal.n_days)) * _DAY_US + int(rng.integers(8, 20)) * _HOUR_US
        time = _between(rng, lo, lo + _HOUR_US // 2, k)
        amount = np.round(typical[c] * rng.uniform(3.0, 8.0, k), 2)
        parts.append(
            _Tx.build(
                np.full(k, c),
                time,
                amount,
                np.zeros(k, np.bool_),
                np.full(k, channel),
                np.full(k, burst_category[channel]),
                TRANSACTION_ANOMALIES.index("new_channel_burst"),
            )
        )
    return _Tx.concat(parts) if parts else _Tx.build(*_empty_tx())


@dataclass
class _Ledger:
    """Clean transactions in (customer, time) order with their running balances."""

    tx: _Tx
    balance_cents: IntArray
    final_balance: FloatArray
    debit_total: FloatArray
    count: IntArray
    overdraft_share: FloatArray
    min_balance: FloatArray


def _post(tx: _Tx, opening: FloatArray) -> _Ledger:
    size = len(opening)
    order = np.lexsort((tx.time, tx.owner))
    tx = _Tx(*(getattr(tx, f)[order] for f in _Tx.__dataclass_fields__))
    cents = np.round(tx.amount * 100.0).astype(np.int64)
    signed = np.where(tx.credit, cents, -cents)
    running = np.cumsum(signed)
    count = np.bincount(tx.owner, minlength=size).astype(np.int64)
    first = np.r_[0, np.cumsum(count)[:-1]]
    has = count > 0
    offset = np.zeros(size, dtype=np.int64)
    offset[has] = running[first[has]] - signed[first[has]]
    opening_cents = np.round(opening * 100.0).astype(np.int64)
    balance = opening_cents[tx.owner] + running - offset[tx.owner]

    final = opening_cents.copy()
    final[has] = balance[first[has] + count[has] - 1]
    low = opening_cents.copy()
    if len(balance):
        low[has] = np.minimum(np.minimum.reduceat(balance, first[has]), opening_cents[has])
    negative = _sum_by(tx.owner, balance < 0, size)
    return _Ledger(
        tx=tx,
        balance_cents=balance,
        final_balance=final / 100.0,
        debit_total=_sum_by(tx.owner, tx.amount * ~tx.credit, size),
        count=count,
        overdraft_share=np.divide(negative, count, out=np.zeros(size), where=has),
        min_balance=low / 100.0,
    )


@dataclass(frozen=True)
class _Luck:
    """The random part of each customer's default outcome, drawn before the customer table."""

    noise: FloatArray
    uniform: FloatArray


def _draw_luck(rng: np.random.Generator, size: int) -> _Luck:
    return _Luck(noise=rng.standard_normal(size), uniform=rng.random(size))


def _default_flags(
    mechanism: DefaultMechanism,
    people: _People,
    cal: _Calendar,
    ledger: _Ledger,
    loan_balance: FloatArray,
    limit: FloatArray,
    missed: FloatArray,
    luck: _Luck,
) -> IntArray:
    """Defaults follow a logistic model of the customer's observable behaviour."""
    income = people.income
    period_income = income * cal.months / 12.0

    def net_outflow() -> FloatArray:
        tx = ledger.tx
        credits = _sum_by(tx.owner, tx.amount * tx.credit, len(income))
        return np.clip((ledger.debit_total - credits) / period_income, -2.0, 2.0)

    terms: list[tuple[float, Callable[[], FloatArray]]] = [
        (mechanism.debt_to_income, lambda: np.clip(loan_balance / income, 0.0, 8.0)),
        (mechanism.overdraft, lambda: ledger.overdraft_share),
        (
            mechanism.spending,
            lambda: np.clip(ledger.debit_total / period_income, 0.0, 3.0) - 0.75,
        ),
        (mechanism.net_outflow, net_outflow),
        (mechanism.low_balance, lambda: np.clip(ledger.min_balance / (income / 12.0), -4.0, 10.0)),
        (mechanism.log_income, lambda: np.log(income / 40_000.0)),
        (
            mechanism.utilisation,
            lambda: np.clip(np.maximum(-ledger.min_balance, 0.0) / np.maximum(limit, 100.0), 0, 3),
        ),
        (mechanism.arrears, lambda: np.minimum(missed, 6.0)),
        (mechanism.hidden_stress, lambda: people.stress),
        (mechanism.noise, lambda: luck.noise),  # life events no data can see
    ]
    logit: FloatArray | float = mechanism.intercept
    for weight, signal in terms:
        if weight:
            logit = logit + weight * signal()
    p = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64)))
    return (luck.uniform < p).astype(np.int64)


def _pick(rng: np.random.Generator, candidates: IntArray, fallback: int, k: int) -> IntArray:
    """k distinct candidates if possible, else with repetition (tiny chunks)."""
    pool = candidates if len(candidates) else np.arange(fallback)
    return np.sort(rng.choice(pool, size=k, replace=k > len(pool))).astype(np.int64)


def _generate_chunk(
    rng: np.random.Generator,
    cal: _Calendar,
    first: int,
    size: int,
    tx_counter: int,
    loan_counter: int,
    quota: dict[str, int],
) -> _Chunk:
    """Customers [first, first + size): their attributes, loans, salary and loan payments,
    everyday transactions, planted anomalies, running balances, default labels, dirty rows
    (`quota` per kind) and the output tables. Ids continue from the counters given."""
    design = cal.plan.design
    people = _draw_people(rng, cal.plan, size)
    book, loan_balance, payments, missed = _draw_loans(rng, people, cal)
    fixed = _Tx.concat([_salaries(rng, people, cal), payments])
    everyday = _everyday(rng, people, cal)
    typical = _scale_amounts(rng, people, cal, fixed, everyday)
    if design.cash_in_notes:
        _cash_in_notes(everyday)
    if design.micro_payments > 0:
        _micro_payments(rng, everyday, design.micro_payments)
    planted, quiet = _plant_customer_anomalies(rng, people, cal, everyday, typical)
    fixed, everyday = _silence(fixed, quiet, size), _silence(everyday, quiet, size)
    bursts = _plant_transaction_anomalies(rng, people, cal, everyday, fixed, typical)
    ledger = _post(_Tx.concat([fixed, everyday, planted, bursts]), people.opening)
    luck = _draw_luck(rng, size)

    customer_number = np.arange(first + 1, first + size + 1, dtype=np.int64)
    customers, limit = _customer_table(
        rng, people, cal, customer_number, ledger, loan_balance, quota
    )
    defaulted = _default_flags(
        design.default, people, cal, ledger, loan_balance, limit, missed, luck
    )
    transactions, truth_tx = _transaction_table(
        rng, people, cal, customer_number, ledger, tx_counter, quota
    )
    customer_ids = _ids("C", customer_number, cal.id_width)
    anomalous = people.anomaly >= 0
    truth_customers = pa.table(
        {
            "customer_id": customer_ids,
            "persona": _labels(design.persona_names, people.persona),
            "is_anomalous": pa.array(anomalous),
            "anomaly_kind": pa.array(ANOMALY_KINDS, pa.string()).take(
                pa.array(np.maximum(people.anomaly, 0).astype(np.int32), mask=~anomalous)
            ),
        }
    )
    labels = pa.table({"customer_id": customer_ids, "defaulted": pa.array(defaulted, pa.int32())})
    loans = _loan_table(book, cal, customer_number, loan_counter)
    return _Chunk(
        tables={
            "customers": _select(customers, design.customer_file_columns()),
            "transactions": _select(transactions, design.transaction_file_columns()),
            "loans": loans,
            "labels": labels,
            "truth_customers": truth_customers,
            "truth_transactions": truth_tx,
        },
        n_transactions=len(ledger.tx.owner),
        n_loans=loans.num_rows,
    )


def _select(table: pa.Table, names: list[str]) -> pa.Table:
    return table if table.column_names == names else table.select(names)


def _customer_table(
    rng: np.random.Generator,
    people: _People,
    cal: _Calendar,
    number: IntArray,
    ledger: _Ledger,
    loan_balance: FloatArray,
    quota: dict[str, int],
) -> tuple[pa.Table, FloatArray]:
    """Customer rows (clean rows plus dirty rows) and each customer's clean credit limit."""
    size = len(number)
    start_days = (cal.start - _EPOCH).days
    age_years = people.age_days / 365.2425
    birth = start_days - people.age_days
    since = start_days - people.tenure_days
    gender = _draw_n(rng, _cdf(_GENDER_WEIGHTS), size)
    plan = cal.plan
    region = _draw(rng, plan.region_cdf, plan.region_group[people.persona])
    limit = people.income * plan.limit[people.persona] * np.exp(0.3 * rng.standard_normal(size))
    limit = np.where(rng.random(size) < 0.1, 0.0, np.round(limit, -2))
    # Most overdrafts stay within an agreed limit; the rest run over it.
    agreed = np.ceil(np.maximum(-ledger.min_balance, 0.0) / 100.0) * 100.0
    limit = np.where(rng.random(size) < 0.85, np.maximum(limit, agreed), limit)
    dti = np.minimum(loan_balance / people.income, 4.0)
    score = (
        690.0
        - 55.0 * people.stress
        - 20.0 * dti
        + 25.0 * np.log(people.income / 45_000.0)
        + rng.normal(0.0, 30.0, size)
    )
    score = np.clip(np.round(score), 300, 850).astype(np.int32)
    employment = np.round(np.minimum(rng.uniform(0.05, 1.0, size) * (age_years - 18.0), 45.0), 1)
    income = people.income.copy()

    # Dirty rows go to customers without planted anomalies (in tiny chunks, possibly several
    # kinds to one customer). The duplicate row copies the customer's clean values.
    n_dup, n_neg = quota["duplicate_customer_id"], quota["negative_income"]
    needed = sum(quota[k] for k in CUSTOMER_DIRTY_KINDS)
    picks = np.zeros(0, dtype=np.int64)
    if needed:
        picks = rng.permutation(_pick(rng, np.flatnonzero(people.anomaly < 0), size, needed))
    dup = np.sort(picks[:n_dup])
    negative = picks[n_dup : n_dup + n_neg]
    placeholder = picks[n_dup + n_neg :]

    columns: dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}

    def column(name: str, clean: npt.NDArray[Any], dirty: npt.NDArray[Any]) -> None:
        columns[name] = (clean, dirty)

    k = len(dup)
    column("number", number, number[dup])
    column("birth", birth, birth[dup] - rng.integers(200, 4_000, k))
    column("gender", gender, gender[dup])
    column("region", region, (region[dup] + 1 + rng.integers(0, 5, k)) % len(_REGIONS))
    column("income", income, np.round(income[dup] * rng.uniform(0.6, 1.4, k), -2))
    column(
        "balance",
        np.round(ledger.final_balance, 2),
        np.round(ledger.final_balance[dup] * rng.uniform(0.5, 1.5, k), 2),
    )
    column("limit", limit, limit[dup])
    column("loan", np.round(loan_balance, 2), np.round(loan_balance[dup], 2))
    column("score", score, score[dup])
    column("employment", employment, employment[dup])
    column("since", since, since[dup] - rng.integers(30, 900, k))
    columns["income"][0][negative] *= -1.0
    columns["birth"][0][placeholder] = (_PLACEHOLDER_BIRTH - _EPOCH).days

    # Each duplicate row follows the row it copies.
    order = np.argsort(np.r_[np.arange(size) * 2, dup * 2 + 1], kind="stable")
    merged = {name: np.concatenate(pair)[order] for name, pair in columns.items()}
    table = pa.table(
        {
            "customer_id": _ids("C", merged["number"], cal.id_width),
            "birth_date": _dates(merged["birth"]),
            "gender": _labels(_GENDERS, merged["gender"]),
            "region": _labels(_REGIONS, merged["region"]),
            "annual_income": pa.array(merged["income"], pa.float64()),
            "account_balance": pa.array(merged["balance"], pa.float64()),
            "credit_limit": pa.array(merged["limit"], pa.float64()),
            "loan_balance": pa.array(merged["loan"], pa.float64()),
            "credit_score": pa.array(merged["score"], pa.int32()),
            "employment_years": pa.array(merged["employment"], pa.float64()),
            "customer_since": _dates(merged["since"]),
        }
    )
    return table, limit


def _transaction_table(
    rng: np.random.Generator,
    people: _People,
    cal: _Calendar,
    number: IntArray,
    ledger: _Ledger,
    tx_counter: int,
    quota: dict[str, int],
) -> tuple[pa.Table, pa.Table]:
    """Transactions (clean rows plus dirty rows right after their host) and the truth file."""
    tx = ledger.tx
    m = len(tx.owner)
    owner_number = number[tx.owner]
    valid = np.ones(m, dtype=np.bool_)
    time = tx.time + cal.start_us
    amount = tx.amount
    balance = ledger.balance_cents
    host_rows: list[IntArray] = []
    dirty_parts: dict[str, list[npt.NDArray[Any]]] = {
        "number": [],
        "valid": [],
        "time": [],
        "amount": [],
        "dup": [],
    }
    needed = sum(quota[k] for k in TRANSACTION_DIRTY_KINDS)
    if needed and m:
        eligible = np.flatnonzero((people.anomaly[tx.owner] < 0) & (tx.anomaly < 0))
        picks = rng.permutation(_pick(rng, eligible, m, needed))
        # Unknown ids continue after the last real one, numbered across chunks.
        n = cal.n_customers
        unknown_first = n + 1 + _dirty_totals(n)["unknown_customer_id"] * int(number[0] - 1) // n
        at = 0
        for kind in TRANSACTION_DIRTY_KINDS:
            rows = np.sort(picks[at : at + quota[kind]])
            at += quota[kind]
            k = len(rows)
            num = owner_number[rows]
            ok = np.ones(k, dtype=np.bool_)
            t = time[rows] + rng.integers(1, 600, k) * 1_000_000
            a = amount[rows]
            if kind == "null_customer_id":
                ok[:] = False
            elif kind == "unknown_customer_id":
                num = unknown_first + np.arange(k, dtype=np.int64)
            elif kind == "future_timestamp":
                into_year = (time[rows] - cal.start_us) % (365 * _DAY_US)
                t = (_FUTURE_YEAR_START - _EPOCH).days * _DAY_US + into_year
            elif kind == "negative_amount":
                a = -a
            else:
                a = np.round(a * rng.uniform(0.5, 2.0, k), 2)
            host_rows.append(rows)
            dirty_parts["number"].append(num)
            dirty_parts["valid"].append(ok)
            dirty_parts["time"].append(t)
            dirty_parts["amount"].append(a)
            dirty_parts["dup"].append(np.full(k, kind == "duplicate_transaction_id"))
    hosts = np.concatenate(host_rows) if host_rows else np.zeros(0, dtype=np.int64)
    d = len(hosts)

    def joined(clean: npt.NDArray[Any], key: str) -> npt.NDArray[Any]:
        extra = np.concatenate(dirty_parts[key]) if dirty_parts[key] else clean[:0]
        return np.concatenate([clean, extra])

    # Dirty rows follow their host row, in the order of TRANSACTION_DIRTY_KINDS.
    order = np.lexsort((np.r_[np.zeros(m), np.arange(1, d + 1)], np.r_[np.arange(m), hosts]))
    position = np.empty(m + d, dtype=np.int64)
    position[order] = np.arange(m + d)
    serial = tx_counter + 1 + position
    is_dup = joined(np.zeros(m, dtype=np.bool_), "dup")
    serial[m:][is_dup[m:]] = serial[hosts[is_dup[m:]]]

    def final(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return values[order]

    transactions = pa.table(
        {
            "customer_id": _ids(
                "C",
                final(joined(owner_number, "number")),
                cal.id_width,
                valid=final(joined(valid, "valid")),
            ),
            "timestamp": pa.array(final(joined(time, "time")), pa.int64()).view(pa.timestamp("us")),
            "amount": _money(final(joined(amount, "amount"))),
            "transaction_id": _ids("T", final(serial), _TX_ID_WIDTH),
            "direction": _labels(("debit", "credit"), final(np.r_[tx.credit, tx.credit[hosts]])),
            "channel": _labels(CHANNELS, final(np.r_[tx.channel, tx.channel[hosts]])),
            "category": _labels(CATEGORIES, final(np.r_[tx.category, tx.category[hosts]])),
            "balance_after": pa.array(final(np.r_[balance, balance[hosts]]) / 100.0, pa.float64()),
        }
    )
    marked = np.flatnonzero(tx.anomaly >= 0)
    truth = pa.table(
        {
            "transaction_id": _ids("T", serial[marked], _TX_ID_WIDTH),
            "customer_id": _ids("C", owner_number[marked], cal.id_width),
            "anomaly_kind": _labels(TRANSACTION_ANOMALIES, tx.anomaly[marked]),
        }
    )
    return transactions, truth


def _loan_table(book: _LoanBook, cal: _Calendar, number: IntArray, loan_counter: int) -> pa.Table:
    order = np.lexsort((book.start_day, book.owner))
    start_days = (cal.start - _EPOCH).days
    n = len(order)
    return pa.table(
        {
            "loan_id": _ids("L", loan_counter + 1 + np.arange(n, dtype=np.int64), _LOAN_ID_WIDTH),
            "customer_id": _ids("C", number[book.owner[order]], cal.id_width),
            "amount": _money(book.amount[order]),
            "start_date": _dates(start_days + book.start_day[order]),
            "end_date": _dates(start_days + book.end_day[order]),
            "interest_rate": pa.array(book.rate[order], pa.float64()),
            "status": _labels(("closed", "active"), book.active[order].astype(np.int64)),
        }
    )
