"""The canonical data model: the column names and types every other module speaks.

A file that already uses these names needs no mapping. Each table lists its columns with the
engine type they are parsed into and the checks a value must pass.

Example:
    >>> from finintel.schema import TRANSACTIONS
    >>> TRANSACTIONS.column("amount").sql_type
    'DECIMAL(18,2)'
    >>> [c.name for c in TRANSACTIONS.required]
    ['customer_id', 'timestamp', 'amount']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a raw value is parsed."""

    ID = "id"  # trimmed text, never empty
    TEXT = "text"  # trimmed text
    NUMBER = "number"  # floating point
    MONEY = "money"  # exact to the cent
    DATE = "date"
    TIMESTAMP = "timestamp"
    DIRECTION = "direction"  # 'debit' or 'credit'
    FLAG = "flag"  # 0 or 1


SQL_TYPES: dict[Kind, str] = {
    Kind.ID: "VARCHAR",
    Kind.TEXT: "VARCHAR",
    Kind.NUMBER: "DOUBLE",
    Kind.MONEY: "DECIMAL(18,2)",
    Kind.DATE: "DATE",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.DIRECTION: "VARCHAR",
    Kind.FLAG: "INTEGER",
}

DEBIT = "debit"
CREDIT = "credit"


@dataclass(frozen=True)
class Column:
    """One canonical column and the rules its values obey."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    min_value: float | None = None
    max_value: float | None = None
    allow_future: bool = False

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns and the column that must be unique, if any."""

    name: str
    columns: tuple[Column, ...]
    unique_key: str | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[Column]:
        return [c for c in self.columns if c.required]


CUSTOMERS = Table(
    "customers",
    (
        Column("customer_id", Kind.ID, "Unique customer identifier.", required=True),
        Column("birth_date", Kind.DATE, "Date of birth."),
        Column(
            "age",
            Kind.NUMBER,
            "Age in years (used when birth_date is absent).",
            min_value=0,
            max_value=120,
        ),
        Column("gender", Kind.TEXT, "Gender as given by the source."),
        Column("region", Kind.TEXT, "Region, branch or city."),
        Column("annual_income", Kind.NUMBER, "Yearly income.", min_value=0),
        Column(
            "account_balance", Kind.NUMBER, "Current balance over all accounts; may be negative."
        ),
        Column("credit_limit", Kind.NUMBER, "Credit limit granted.", min_value=0),
        Column("loan_balance", Kind.NUMBER, "Outstanding loan principal.", min_value=0),
        Column("credit_score", Kind.NUMBER, "Bureau or internal credit score.", min_value=0),
        Column(
            "employment_years",
            Kind.NUMBER,
            "Years in current employment.",
            min_value=0,
            max_value=80,
        ),
        Column("customer_since", Kind.DATE, "Date the relationship started."),
    ),
    unique_key="customer_id",
)

TRANSACTIONS = Table(
    "transactions",
    (
        Column("customer_id", Kind.ID, "Customer who owns the account.", required=True),
        Column("timestamp", Kind.TIMESTAMP, "When the transaction was booked.", required=True),
        Column("amount", Kind.MONEY, "Amount; positive, its sign given by direction.", True),
        Column("transaction_id", Kind.ID, "Unique transaction identifier."),
        Column("direction", Kind.DIRECTION, "'debit' (money out) or 'credit' (money in)."),
        Column("channel", Kind.TEXT, "Channel: card, atm, online, branch, ..."),
        Column("category", Kind.TEXT, "Merchant or purpose category."),
        Column("balance_after", Kind.MONEY, "Account balance after the transaction."),
    ),
    unique_key="transaction_id",
)

LOANS = Table(
    "loans",
    (
        Column("loan_id", Kind.ID, "Unique loan identifier.", required=True),
        Column("customer_id", Kind.ID, "Borrower.", required=True),
        Column("amount", Kind.MONEY, "Principal granted.", required=True, min_value=0),
        Column("start_date", Kind.DATE, "Date the loan was granted."),
        Column("end_date", Kind.DATE, "Scheduled end of the loan.", allow_future=True),
        Column(
            "interest_rate",
            Kind.NUMBER,
            "Yearly interest rate in percent.",
            min_value=0,
            max_value=100,
        ),
        Column("status", Kind.TEXT, "Status as given by the source."),
    ),
    unique_key="loan_id",
)

LABELS = Table(
    "labels",
    (
        Column("customer_id", Kind.ID, "Customer the outcome belongs to.", required=True),
        Column("defaulted", Kind.FLAG, "1 if the customer defaulted, else 0.", required=True),
    ),
    unique_key="customer_id",
)

TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, TRANSACTIONS, LOANS, LABELS)}

# Tables whose customer_id must name a known (clean) customer.
CUSTOMER_CHILD_TABLES = ("transactions", "loans", "labels")


def code_key(value: float) -> str:
    """How a numeric code of a mapped column is written as a key: '3' for 3.0, '0.5' for 0.5.

    Example:
        >>> code_key(3.0), code_key(0.5)
        ('3', '0.5')
    """
    return str(int(value)) if float(value).is_integer() else repr(float(value))
