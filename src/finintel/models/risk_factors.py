"""The built-in risk factor library and the safe evaluation of factor expressions.

A risk factor is a SQL expression over feature columns (`RiskFactorSpec`). Expressions run in
DuckDB on a fresh in-memory connection that can reach no file or network (external access is
disabled and the configuration locked), over one registered Arrow table holding the frame, so
a factor can compute ratios with `nullif`, `CASE`, `greatest`... but cannot read anything else.
A factor whose columns the data lacks is *unavailable* (with the reason), not an error.

The built-in library covers the kinds of data finintel reads by their column names: bank
accounts with transactions, balances, loans and income (the synthetic bank, Berka, Kaggle),
card statements (CC GENERAL) and credit applications (German credit). Each data set uses the
factors its columns support.

Any other table says what its columns mean with roles (`[risk.roles] pay_0 =
"arrears_status"`, vocabulary in `finintel.settings.risk.ROLES`): `factor_library` turns the
declared columns into stand-alone factors with the role's direction (several columns of a role
aggregated per customer) and into ratios of parts (`RATIOS`: balance / limit, payment / bill,
loan amount / income...), and sets aside the built-in factors a declaration contradicts.

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
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.errors import ConfigError
from finintel.features.catalog import provided_by
from finintel.models.frame import FeatureFrame
from finintel.settings.risk import HIGHER, LOWER, ROLES, Direction, RiskFactorSpec, RiskSettings
from finintel.sql import quote_ident

FloatArray = npt.NDArray[np.float64]

_HIGH = HIGHER
_LOW = LOWER


def _factor(
    name: str,
    label: str,
    sql: str,
    direction: Direction = _HIGH,
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
    # without income: the loan burden itself (the customer's own loan balance, else the
    # principal of running loans from a loans table)
    _factor(
        "loan_balance",
        "outstanding loan balance",
        "loan_balance",
        weight=0.5,
        excluded_by=["debt_to_income"],
    ),
    _factor(
        "loan_exposure",
        "loan exposure",
        "loan_exposure",
        weight=0.5,
        excluded_by=["debt_to_income", "loan_balance"],
    ),
    # without income: the buffers themselves
    _factor("lowest_balance", "lowest balance", "balance_min", _LOW, excluded_by=["annual_income"]),
    _factor(
        "balance_volatility",
        "balance volatility",
        "balance_volatility",
        weight=0.5,
        excluded_by=["annual_income"],
    ),
    # the customer's own balance (money held; negative when overdrawn) when there is no running
    # balance: relative to income, else as it is
    _factor(
        "balance_to_income",
        "account balance in months of income",
        "account_balance / nullif(annual_income / 12, 0)",
        _LOW,
        excluded_by=["balance_min", "payments"],
    ),
    _factor(
        "deposit_balance",
        "account balance",
        "account_balance",
        _LOW,
        excluded_by=["balance_min", "payments", "annual_income"],
    ),
    # an agreed overdraft in use (bank data; card statements have credit_utilisation below)
    _factor(
        "overdraft_utilisation",
        "share of the credit limit overdrawn",
        "CASE WHEN account_balance IS NULL THEN NULL WHEN account_balance < 0 "
        "THEN -account_balance ELSE 0 END / nullif(credit_limit, 0)",
        excluded_by=["payments"],
    ),
    _factor("credit_score", "credit score", "credit_score", _LOW),
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

# ---------------------------------------------------------------------------- factors by role


@dataclass(frozen=True)
class RatioRule:
    """A factor derived from two roles: the first numerator role with columns / denominator.

    `replaces` names stand-alone role factors the ratio measures better (a loan amount
    relative to income replaces the bare loan amount).
    """

    name: str
    label: str
    numerators: tuple[str, ...]
    denominator: str
    direction: Direction
    weight: float = 1.0
    replaces: tuple[str, ...] = ()


RATIOS: tuple[RatioRule, ...] = (
    RatioRule("utilisation", "credit utilisation", ("balance", "bill"), "limit", _HIGH),
    RatioRule("payment_ratio", "payments as a share of the bill", ("payment",), "bill", _LOW),
    RatioRule(
        "payment_to_minimum_due",
        "payments in multiples of the minimum due",
        ("payment",),
        "minimum_due",
        _LOW,
    ),
    RatioRule("debt_to_income", "debt-to-income", ("debt",), "income", _HIGH, replaces=("debt",)),
    RatioRule(
        "loan_to_income",
        "loan amount relative to income",
        ("loan_amount",),
        "income",
        _HIGH,
        replaces=("loan_amount",),
    ),
    RatioRule(
        "loan_to_value",
        "loan-to-value",
        ("loan_amount",),
        "collateral_value",
        _HIGH,
        replaces=("loan_amount",),
    ),
    RatioRule(
        "instalment_to_income",
        "instalment relative to income",
        ("instalment",),
        "income",
        _HIGH,
        replaces=("instalment",),
    ),
    RatioRule(
        "expenses_to_income", "expenses relative to income", ("expenses",), "income", _HIGH, 0.5
    ),
    RatioRule(
        "deposit_to_income",
        "account balance relative to income",
        ("deposit_balance",),
        "income",
        _LOW,
        replaces=("deposit_balance",),
    ),
)

# Canonical columns that are the parts of ratios when no column is declared with their role;
# they make no stand-alone role factor (the built-in factors read them).
IMPLICIT_PARTS: dict[str, str] = {
    "income": "annual_income",
    "limit": "credit_limit",
    "debt": "loan_balance",
}

# What the canonical columns the built-in factors read mean, as roles: declaring one of them
# with this role keeps the built-in ratios over it, another role sets them aside.
CANONICAL_ROLES: dict[str, str] = {
    "annual_income": "income",
    "account_balance": "deposit_balance",
    "credit_limit": "limit",
    "loan_balance": "debt",
    "credit_score": "credit_score",
    "employment_years": "employment_length",
}

# Built-in factors that a role declaration provides for other data: appended to the reason.
_ROLE_HINTS: dict[str, str] = {
    "debt_to_income": 'or declare debt and income columns: [risk.roles] <column> = "debt" and '
    '<column> = "income"',
    "low_income": 'or declare an income column: [risk.roles] <column> = "income"',
    "credit_utilisation": "or, for any credit line, declare the balance owed and the limit: "
    '[risk.roles] <column> = "balance" and <column> = "limit"',
    "payment_to_minimum": 'or declare [risk.roles] <column> = "payment" and <column> = '
    '"minimum_due"',
    "full_payment_share": 'or declare a payment ratio: [risk.roles] <column> = "payment_ratio"',
    "loan_duration": 'or declare a loan term: [risk.roles] <column> = "term"',
    "credit_amount": 'or declare a loan amount: [risk.roles] <column> = "loan_amount"',
    "savings": 'or declare savings or assets: [risk.roles] <column> = "assets"',
    "employment_length": 'or declare [risk.roles] <column> = "employment_length"',
    "credit_score": 'or declare [risk.roles] <column> = "credit_score"',
    "deposit_balance": 'or declare a balance held: [risk.roles] <column> = "deposit_balance"',
    "balance_to_income": 'or declare [risk.roles] <column> = "deposit_balance" and <column> = '
    '"income"',
}


@dataclass(frozen=True)
class FactorLibrary:
    """The factors to evaluate over one feature table, the role each stands for, and the
    factors left out before evaluation with the reason (a missing part, a replacement)."""

    specs: tuple[RiskFactorSpec, ...]
    roles: dict[str, str]  # factor name -> role, or "numerator / denominator" for a ratio
    role_columns: dict[str, list[str]]  # role -> the columns read for it
    implicit: dict[str, str]  # role -> canonical column used as that part without a declaration
    unavailable: dict[str, str]


def factor_library(columns: Sequence[str], settings: RiskSettings) -> FactorLibrary:
    """Declared (or built-in) factors plus the factors of the roles declared in `settings`.

    The declaration says what a column means, so a built-in factor stands aside when a role
    factor of its name is built or when it reads a declared column alone or in another
    meaning (`_stands_aside`). Factors declared in `[[risk.factors]]` are kept as written.
    A role column the table lacks raises ConfigError.

    Example:
        >>> s = RiskSettings(roles={"pay_0": "arrears_status", "bal": "balance"})
        >>> lib = factor_library(["pay_0", "bal"], s)
        >>> [(f.name, f.sql) for f in lib.specs if f.name in lib.roles]
        [('arrears_status', '"pay_0"')]
        >>> lib.unavailable["utilisation"]
        'utilisation needs a limit column: declare one with [risk.roles] <column> = "limit"'
    """
    declared = _declared_roles(columns, settings.roles)
    parts = _RoleParts.of(
        columns, declared, {*settings.exclude_columns, *settings.categorical_columns}
    )
    specs, roles, unavailable = _role_factors(parts)
    if settings.factors is not None:  # declared factors are kept as declared
        names = {f.name for f in settings.factors}
        for name in [s.name for s in specs if s.name in names]:
            unavailable[name] = "a factor declared in [[risk.factors]] has this name"
            roles.pop(name)
        kept = list(settings.factors)
        specs = [s for s in specs if s.name not in names]
    else:
        kept = []
        for spec in BUILTIN_FACTORS:
            reason = _stands_aside(spec, declared, set(roles))
            if reason:
                unavailable[spec.name] = reason
            else:
                kept.append(spec)
    return FactorLibrary(tuple(kept + specs), roles, parts.columns, parts.implicit, unavailable)


@dataclass(frozen=True)
class _RoleParts:
    """The columns of each role: `declared` (minus excluded ones, which are in `dropped`), and
    `columns`, which adds the canonical columns standing in for undeclared ratio parts."""

    declared: dict[str, list[str]]
    dropped: dict[str, list[str]]
    implicit: dict[str, str]
    columns: dict[str, list[str]]

    @classmethod
    def of(cls, columns: Sequence[str], declared: dict[str, str], excluded: set[str]) -> _RoleParts:
        by_role: dict[str, list[str]] = {}
        dropped: dict[str, list[str]] = {r: [] for r in ROLES}
        for column, role in declared.items():
            (dropped[role] if column in excluded else by_role.setdefault(role, [])).append(column)
        implicit = {
            role: column
            for role, column in IMPLICIT_PARTS.items()
            if role not in by_role
            and not dropped[role]
            and column in columns
            and column not in excluded
            and column not in declared
        }
        return cls(by_role, dropped, implicit, {**by_role, **{r: [c] for r, c in implicit.items()}})

    def named(self, role: str) -> bool:
        """Whether a column was declared with the role (used or excluded)."""
        return bool(self.declared.get(role) or self.dropped[role])


def _role_factors(
    parts: _RoleParts,
) -> tuple[list[RiskFactorSpec], dict[str, str], dict[str, str]]:
    """The ratio and stand-alone role factors, the role of each, and the reasons for those
    that a declared column asks for but cannot be built."""
    specs: list[RiskFactorSpec] = []
    roles: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    replaced_by: dict[str, str] = {}  # stand-alone role -> the ratio that replaces it
    for rule in RATIOS:
        spec, reason = _ratio(rule, parts)
        if spec is not None:
            specs.append(spec)
            roles[spec.name] = f"{_numerator(rule, parts.columns)} / {rule.denominator}"
            replaced_by.update(dict.fromkeys(rule.replaces, rule.name))
        elif reason:
            unavailable[rule.name] = reason
    for meta in ROLES.values():
        if meta.direction is None or not parts.named(meta.name):
            continue
        # a column declared with the role itself wins over the ratio of the same name
        unavailable.pop(meta.name, None)
        specs = [s for s in specs if s.name != meta.name]
        roles.pop(meta.name, None)
        if not parts.declared.get(meta.name):
            unavailable[meta.name] = _excluded_reason(parts.dropped[meta.name], meta.name)
        elif replaced_by.get(meta.name) in roles:
            unavailable[meta.name] = f"replaced by {replaced_by[meta.name]}"
        else:
            specs.append(_role_factor(meta.name, parts.declared[meta.name]))
            roles[meta.name] = meta.name
    return specs, roles, unavailable


def _declared_roles(columns: Sequence[str], roles: dict[str, str]) -> dict[str, str]:
    """Role declarations by the frame's own column names (matched ignoring case)."""
    by_lower = {c.lower(): c for c in columns}
    missing = [c for c in roles if c.lower() not in by_lower]
    if missing:
        raise ConfigError(
            f"risk roles name column(s) {missing} that the feature table does not have "
            f"(its columns: {', '.join(columns)})"
        )
    return {by_lower[c.lower()]: r for c, r in roles.items()}


def _numerator(rule: RatioRule, parts: dict[str, list[str]]) -> str:
    return next((r for r in rule.numerators if parts.get(r)), rule.numerators[0])


def _ratio(rule: RatioRule, parts: _RoleParts) -> tuple[RiskFactorSpec | None, str | None]:
    """The ratio factor when both parts exist and one is declared; else the reason, when a
    declared part waits for the other (None when no part was declared)."""
    numerator = _numerator(rule, parts.columns)
    num, den = parts.columns.get(numerator), parts.columns.get(rule.denominator)
    if not any(parts.named(r) for r in (*rule.numerators, rule.denominator)):
        return None, None
    if num and den:
        top = _aggregate(num, ROLES[numerator].aggregate)
        bottom = _aggregate(den, ROLES[rule.denominator].aggregate)
        sql = f"CASE WHEN {bottom} > 0 THEN {top} / {bottom} END"
        return _factor(rule.name, rule.label, sql, rule.direction, rule.weight), None
    options = (rule.denominator,) if num else rule.numerators
    gone = [c for r in options for c in parts.dropped[r]]
    if gone:
        return None, f"{rule.name} needs {_excluded_reason(gone, ' or '.join(options))}"
    declare = " or ".join(f'<column> = "{o}"' for o in options)
    return None, (
        f"{rule.name} needs a {' or '.join(options)} column: declare one with "
        f"[risk.roles] {declare}"
    )


def _excluded_reason(columns: Sequence[str], role: str) -> str:
    return f"column {', '.join(columns)} (role {role}) is excluded by the settings"


def _role_factor(role: str, columns: Sequence[str]) -> RiskFactorSpec:
    """The stand-alone factor of a role over its columns (aggregated when several)."""
    meta = ROLES[role]
    assert meta.direction is not None
    label = meta.label
    if len(columns) > 1:
        label = f"{'mean' if meta.aggregate == 'mean' else 'total'} {label}"
    sql = _aggregate(columns, meta.aggregate)
    return _factor(role, label, sql, meta.direction, meta.weight)


def _aggregate(columns: Sequence[str], how: str) -> str:
    """One value per customer from several columns of a role; missing values are skipped.

    Example:
        >>> _aggregate(["a"], "mean"), _aggregate(["a", "b"], "sum")
        ('"a"', 'list_sum(["a", "b"])')
    """
    quoted = [quote_ident(c) for c in columns]
    if len(quoted) == 1:
        return quoted[0]
    return f"{'list_avg' if how == 'mean' else 'list_sum'}([{', '.join(quoted)}])"


def _stands_aside(
    spec: RiskFactorSpec, declared: dict[str, str], role_factors: set[str]
) -> str | None:
    """Why a built-in factor gives way to the role factors, or None.

    It does when a role factor has its name, when it is one declared column alone (the role
    factor reads that column), or when it reads a declared column in another meaning than
    the declared role (`account_balance` declared as a card's "balance" is not money held).
    """
    if spec.name in role_factors:
        return f"replaced by the role factor {spec.name}"
    column = bare_column(spec)
    if column in declared:
        return f"column {column} has the role {declared[column]}: its role factor reads it"
    other = sorted(
        c for c in _reads(spec) if c in declared and CANONICAL_ROLES.get(c) != declared[c]
    )
    if other:
        which = ", ".join(f"{c} ({declared[c]})" for c in other)
        return f"it reads {which} in another meaning than the declared role"
    return None


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
            unavailable[spec.name] = _no_column(lacking, _hint(spec))
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
                unavailable[spec.name] = _no_column([missing], _hint(spec))
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
            # named: the superseders that measure the same thing (read a column it reads)
            own = _reads(spec) & set(present)
            same = [n for n in by if _reads(next(s for s in bound if s.name == n)) & own]
            by = same or by
            if by:
                replaced[spec.name] = by
            else:
                replaced.pop(spec.name, None)
    return replaced


def _reads(spec: RiskFactorSpec) -> set[str]:
    """The column names a factor's expression and requirements mention."""
    return {*_NAME.findall(spec.sql), *spec.requires}


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _no_column(columns: Sequence[str], hint: str | None = None) -> str:
    """ "the data has no column X", what in the input data would provide a feature X, and
    which role declaration gives the same measure on other data."""
    text = f"the data has no column {', '.join(columns)}"
    sources = [source for c in columns if (source := provided_by(c))]
    if hint:
        sources.append(hint)
    return f"{text} ({'; '.join(sources)})" if sources else text


def _hint(spec: RiskFactorSpec) -> str | None:
    """The role declaration that stands in for a built-in factor on other data."""
    return _ROLE_HINTS.get(spec.name) if spec in BUILTIN_FACTORS else None


def _sandbox(frame: FeatureFrame, columns: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """A fresh engine that sees only the frame's columns and can reach no file or network."""
    con = duckdb.connect(config={"enable_external_access": False})
    con.execute("SET lock_configuration = true")
    index = [frame.columns.index(c) for c in columns]
    # a missing value (NaN) is SQL NULL, so comparisons, CASE and list aggregates skip it
    table = pa.table(
        {
            "__row": pa.array(np.arange(len(frame), dtype=np.int64)),
            **{
                c: pa.array(frame.values[:, j], from_pandas=True)
                for c, j in zip(columns, index, strict=True)
            },
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


def roles_record(library: FactorLibrary, settings: RiskSettings) -> dict[str, Any]:
    """The roles as the metrics record them: declared, columns read per role, canonical
    columns used as parts, and the roles nothing was declared for; both risk modes write it."""
    return {
        "declared": dict(settings.roles),
        "columns_by_role": {r: list(c) for r, c in sorted(library.role_columns.items())},
        "canonical_parts": dict(sorted(library.implicit.items())),
        "not_declared": [r for r in ROLES if r not in settings.roles.values()],
    }
