"""The built-in risk factor library and the safe evaluation of factor expressions.

A risk factor is a SQL expression over feature columns (`RiskFactorSpec`). Expressions run in
DuckDB on a fresh in-memory connection that can reach no file or network (external access is
disabled and the configuration locked), over one registered Arrow table holding the frame, so
a factor can compute ratios with `nullif`, `CASE`, `greatest`... but cannot read anything else.
A factor whose columns the data lacks is *unavailable* (with the reason), not an error.

The library covers the kinds of data finintel reads: bank accounts with transactions, balances,
loans and income (the synthetic bank, Berka, Kaggle), card statements (CC GENERAL) and credit
applications (German credit). Each data set uses the factors its columns support.

Example:
    >>> import numpy as np
    >>> from finintel.models.frame import FeatureFrame
    >>> frame = FeatureFrame(np.array(["A", "B"], dtype=object), ("debt_to_income",),
    ...                      np.array([[0.5], [2.0]]))
    >>> result = evaluate_factors(frame, BUILTIN_FACTORS)
    >>> [s.name for s in result.specs]
    ['debt_to_income']
    >>> result.unavailable["overdraft_days"]
    'the data has no column overdraft_days (overdraft_days needs balance_after on transactions)'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.errors import ConfigError
from finintel.features.catalog import provided_by
from finintel.models.frame import FeatureFrame
from finintel.settings.risk import RiskFactorSpec

FloatArray = npt.NDArray[np.float64]

_HIGH = "higher_is_riskier"
_LOW = "lower_is_riskier"


def _factor(
    name: str,
    label: str,
    sql: str,
    direction: str = _HIGH,
    weight: float = 1.0,
    requires: Sequence[str] = (),
    excluded_by: Sequence[str] = (),
) -> RiskFactorSpec:
    return RiskFactorSpec.model_validate(
        {
            "name": name,
            "label": label,
            "sql": sql,
            "direction": direction,
            "weight": weight,
            "requires": list(requires),
            "excluded_by": list(excluded_by),
        }
    )


BUILTIN_FACTORS: tuple[RiskFactorSpec, ...] = (
    # bank accounts: debt, spending, overdrafts and buffers relative to income
    _factor("debt_to_income", "debt-to-income", "debt_to_income"),
    _factor("spend_to_income", "spend-to-income", "spend_to_income"),
    _factor("overdraft_days", "overdraft days", "overdraft_days"),
    _factor(
        "low_balance_to_income",
        "lowest balance in months of income",
        "balance_min / nullif(annual_income / 12, 0)",
        _LOW,
    ),
    _factor(
        "net_flow_to_income",
        "net flow in years of income",
        "net_flow / nullif(annual_income, 0)",
        _LOW,
    ),
    _factor(
        "balance_volatility_to_income",
        "balance volatility in months of income",
        "balance_volatility / nullif(annual_income / 12, 0)",
        weight=0.5,
    ),
    _factor("low_income", "annual income", "annual_income", _LOW, weight=0.5),
    # without income: the buffers themselves
    _factor("lowest_balance", "lowest balance", "balance_min", _LOW, excluded_by=["annual_income"]),
    _factor(
        "balance_volatility",
        "balance volatility",
        "balance_volatility",
        weight=0.5,
        excluded_by=["annual_income"],
    ),
    _factor(
        "deposit_balance",
        "account balance",
        "account_balance",
        _LOW,
        excluded_by=["balance_min", "credit_limit"],
    ),
    # penalty and late-payment events (Berka's penalty interest)
    _factor(
        "penalty_interest",
        "spend on penalty interest",
        "category_spend_share_penalty_interest",
    ),
    # card statements (CC GENERAL): the balance is owed money
    _factor(
        "credit_utilisation",
        "credit utilisation",
        "account_balance / nullif(credit_limit, 0)",
        requires=["payments"],
    ),
    _factor(
        "cash_advance_share",
        "cash advances as a share of card use",
        "cash_advance / nullif(cash_advance + purchases, 0)",
    ),
    _factor(
        "cash_advance_frequency", "cash-advance frequency", "cash_advance_frequency", weight=0.5
    ),
    _factor(
        "payment_to_minimum",
        "payments in multiples of the minimum due",
        "payments / nullif(minimum_payments, 0)",
        _LOW,
    ),
    _factor("full_payment_share", "share of bills paid in full", "prc_full_payment", _LOW),
    # credit applications (German credit)
    _factor("checking_account", "checking account status", "checking_account_status", _LOW),
    _factor("loan_duration", "loan duration in months", "duration_in_month"),
    _factor("credit_amount", "credit amount", "credit_amount", weight=0.5),
    _factor("savings", "savings status", "savings_status", _LOW),
    _factor("employment_length", "employment length", "employment_since_code", _LOW),
    _factor("property", "lack of property", "property_code"),
    _factor(
        "installment_rate",
        "instalment as a share of disposable income",
        "installment_rate_in_percentage_of_disposable_income",
        weight=0.5,
    ),
    _factor(
        "other_installments", "other instalment plans", "other_installment_plans_flag", weight=0.5
    ),
    _factor("not_home_owner", "home ownership", "housing_own", _LOW, weight=0.5),
)

_MISSING_COLUMN = re.compile(r'Referenced column "?([^"\s]+)"? not found')


@dataclass(frozen=True)
class FactorValues:
    """Factor values by customer (`values[:, j]` belongs to `specs[j]`) and what was left out."""

    specs: tuple[RiskFactorSpec, ...]
    values: FloatArray
    unavailable: dict[str, str]


def bare_column(spec: RiskFactorSpec) -> str | None:
    """The column a factor reads when its expression is just a column name, else None."""
    text = spec.sql.strip().strip('"')
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) else None


def evaluate_factors(
    frame: FeatureFrame,
    specs: Sequence[RiskFactorSpec],
    exclude_columns: Sequence[str] = (),
) -> FactorValues:
    """Evaluate every usable factor over `frame`; non-finite results become NaN.

    A factor is unavailable when a column it reads, or one it `requires`, is missing (or
    excluded; the reason says what in the data would provide it), or when another computable
    factor reads a column in its `excluded_by` (the reason names that factor). An expression
    that is not valid SQL over the frame raises ConfigError naming the factor.
    """
    present = [c for c in frame.columns if c not in set(exclude_columns)]
    unavailable: dict[str, str] = {}
    candidates = []
    for spec in specs:
        lacking = [c for c in spec.requires if c not in frame.columns]
        if lacking:
            unavailable[spec.name] = _no_column(lacking)
        else:
            candidates.append(spec)
    con = _sandbox(frame, present)
    try:
        bound = []
        for spec in candidates:
            missing = _check_expression(con, spec)
            if missing is None:
                bound.append(spec)
            elif missing in exclude_columns:
                unavailable[spec.name] = f"column {missing} is excluded by the settings"
            else:
                unavailable[spec.name] = _no_column([missing])
        replaced = _replaced(bound, present)
        unavailable.update({n: f"replaced by {', '.join(by)}" for n, by in replaced.items()})
        usable = [spec for spec in bound if spec.name not in replaced]
        if usable:
            selected = ", ".join(f"CAST(({s.sql}) AS DOUBLE)" for s in usable)
            arrow = con.sql(f"SELECT {selected} FROM frame ORDER BY __row").to_arrow_table()
            values = np.column_stack(
                [
                    arrow.column(j).to_numpy(zero_copy_only=False).astype(np.float64)
                    for j in range(len(usable))
                ]
            )
        else:
            values = np.empty((len(frame), 0), dtype=np.float64)
    finally:
        con.close()
    values[~np.isfinite(values)] = np.nan
    return FactorValues(tuple(usable), values, unavailable)


def _replaced(bound: Sequence[RiskFactorSpec], present: Sequence[str]) -> dict[str, list[str]]:
    """Factors superseded through `excluded_by`, with the factors that supersede them.

    A column in a factor's `excluded_by` means a factor over that column is better; it
    applies only when such a factor can be computed here and is not superseded itself.

    Example:
        >>> from finintel.settings.risk import RiskFactorSpec as F
        >>> raw = F(name="raw", label="x", sql="a", excluded_by=["b"])
        >>> ratio = F(name="ratio", label="x", sql="a / b")
        >>> _replaced([raw, ratio], ["a", "b"]), _replaced([raw], ["a", "b"])
        ({'raw': ['ratio']}, {})
    """
    replaced: dict[str, list[str]] = {}
    for _ in range(2):  # a second look drops superseders that were superseded themselves
        for spec in bound:
            better = {c for c in spec.excluded_by if c in present}
            by = [
                s.name
                for s in bound
                if s is not spec and s.name not in replaced and _reads(s) & better
            ]
            if by:
                replaced[spec.name] = by
            else:
                replaced.pop(spec.name, None)
    return replaced


def _reads(spec: RiskFactorSpec) -> set[str]:
    """The column names a factor's expression and requirements mention."""
    return {*_NAME.findall(spec.sql), *spec.requires}


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _no_column(columns: Sequence[str]) -> str:
    """ "the data has no column X", and what in the input data would provide a feature X."""
    text = f"the data has no column {', '.join(columns)}"
    sources = [source for c in columns if (source := provided_by(c))]
    return f"{text} ({'; '.join(sources)})" if sources else text


def _sandbox(frame: FeatureFrame, columns: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """A fresh engine that sees only the frame's columns and can reach no file or network."""
    con = duckdb.connect(config={"enable_external_access": False})
    con.execute("SET lock_configuration = true")
    index = [frame.columns.index(c) for c in columns]
    table = pa.table(
        {
            "__row": pa.array(np.arange(len(frame), dtype=np.int64)),
            **{c: pa.array(frame.values[:, j]) for c, j in zip(columns, index, strict=True)},
        }
    )
    con.register("frame", table)
    return con


def _check_expression(con: duckdb.DuckDBPyConnection, spec: RiskFactorSpec) -> str | None:
    """None when the expression binds over the frame, else the missing column it names."""
    if ";" in spec.sql:
        raise ConfigError(f"risk factor {spec.name!r}: the expression must not contain ';'")
    try:
        con.table("frame").select(duckdb.SQLExpression(f"CAST(({spec.sql}) AS DOUBLE)")).limit(
            0
        ).fetchall()
    except duckdb.BinderException as exc:
        missing = _MISSING_COLUMN.search(str(exc))
        if missing:
            return missing.group(1)
        raise ConfigError(f"risk factor {spec.name!r}: {str(exc).splitlines()[0]}") from exc
    except duckdb.Error as exc:
        raise ConfigError(f"risk factor {spec.name!r}: {str(exc).splitlines()[0]}") from exc
    return None
