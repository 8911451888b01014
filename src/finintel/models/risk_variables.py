"""The candidate variables of the supervised risk models, and their values per customer.

Every feature column (minus `exclude_columns` and the protected attributes not allowed) plus
the risk factors of `risk_factors.factor_library` that are more than one column: the built-in
ratios the data supports (e.g. lowest balance in months of income) and the factors of the roles
declared in `[risk.roles]` (utilisation = bill / limit, several columns of one role aggregated
per customer). A derived variable whose name is a feature column is left out when it holds the
same values, else it is named `<name>_factor`. A variable's known direction (+1: higher is
riskier, -1: lower is, 0: unknown) comes from its role or built-in factor.

Example:
    >>> import numpy as np
    >>> from finintel.models.frame import FeatureFrame
    >>> from finintel.settings.risk import RiskSettings
    >>> frame = FeatureFrame(np.array(["a", "b"], dtype=object), ("age", "debt_to_income"),
    ...                      np.array([[30.0, 0.2], [50.0, 0.4]]))
    >>> c = candidates(frame, RiskSettings())
    >>> [v.name for v in c.variables], c.directions, c.protected_left_out
    (['debt_to_income'], [1], ['age'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finintel.errors import ConfigError, DataError
from finintel.models.explain import feature_label
from finintel.models.frame import FeatureFrame, FloatArray
from finintel.models.risk_factors import (
    FactorLibrary,
    bare_column,
    evaluate_factors,
    factor_library,
)
from finintel.settings.risk import HIGHER, RiskFactorSpec, RiskSettings

# A derived variable named like a feature column (with other values) gets this suffix.
CLASH_SUFFIX = "_factor"


@dataclass(frozen=True)
class Variable:
    """One candidate variable: a feature column, or a factor expression over columns."""

    name: str
    label: str
    column: str | None  # the frame column when the variable is one column
    sql: str | None  # the expression otherwise

    def to_state(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "column": self.column, "sql": self.sql}


@dataclass(frozen=True)
class Candidates:
    """The candidate variables and their values (`values[:, j]` is `variables[j]`), their known
    directions, what each derived variable is (`derived`: name, label, sql, source, role,
    columns), the factor library they came from, the factors left out with why, and the
    protected feature columns left out."""

    variables: list[Variable]
    values: FloatArray
    directions: list[int]
    derived: list[dict[str, Any]]
    library: FactorLibrary
    unavailable: dict[str, str]
    protected_left_out: list[str]


def protected_columns(columns: Sequence[str], settings: RiskSettings) -> list[str]:
    """The feature columns that are protected attributes and not allowed (case ignored)."""
    protected = {c.lower() for c in settings.protected}
    allowed = {c.lower() for c in settings.allow_protected}
    return [c for c in columns if c.lower() in protected and c.lower() not in allowed]


def candidates(frame: FeatureFrame, settings: RiskSettings) -> Candidates:
    """Feature columns plus the factors of the library that are more than one column.

    A factor that is one column alone is that column, already a candidate; it lends the column
    its direction.
    """
    check_categorical(frame, settings)
    protected = protected_columns(frame.columns, settings)
    excluded = {*settings.exclude_columns, *protected}
    library = factor_library(frame.columns, settings)
    direction_of = {
        column: _sign(spec) for spec in library.specs if (column := bare_column(spec)) is not None
    }
    coded = set(settings.categorical_columns)
    variables = [Variable(c, feature_label(c), c, None) for c in frame.columns if c not in excluded]
    directions = [0 if v.name in coded else direction_of.get(v.name, 0) for v in variables]
    expressions = [s for s in library.specs if bare_column(s) is None]
    # a ratio over category codes means nothing, and a protected attribute is not read
    evaluated = evaluate_factors(
        frame, expressions, [*settings.exclude_columns, *settings.categorical_columns, *protected]
    )
    unavailable = {**library.unavailable, **evaluated.unavailable}
    columns = [frame.columns.index(v.column) for v in variables if v.column is not None]
    kept: list[int] = []
    derived: list[dict[str, Any]] = []
    default_source = "settings" if settings.factors is not None else "built-in"
    for j, spec in enumerate(evaluated.specs):
        name = spec.name
        if name in frame.columns:
            if np.array_equal(frame.column(name), evaluated.values[:, j], equal_nan=True):
                unavailable[name] = f"the same values as the feature column {name}"
                continue
            name += CLASH_SUFFIX
        role = library.roles.get(spec.name)
        variables.append(Variable(name, spec.label, None, spec.sql))
        directions.append(_sign(spec))
        kept.append(j)
        derived.append(
            {
                "name": name,
                "label": spec.label,
                "sql": spec.sql,
                "source": "role" if role else default_source,
                "role": role,
                "columns": columns_read([variables[-1]], frame.columns),
            }
        )
    values = np.hstack([frame.values[:, columns], evaluated.values[:, kept]])
    return Candidates(
        variables, values, directions, derived, library, unavailable, sorted(protected)
    )


def _sign(spec: RiskFactorSpec) -> int:
    return 1 if spec.direction == HIGHER else -1


def check_categorical(frame: FeatureFrame, settings: RiskSettings) -> None:
    absent = [c for c in settings.categorical_columns if c not in frame.columns]
    if absent:
        raise ConfigError(
            f"risk categorical_columns {absent} are not feature columns of this data "
            f"(its columns: {', '.join(frame.columns)})"
        )


def variable_values(frame: FeatureFrame, variables: Sequence[Variable]) -> FloatArray:
    """The values of `variables` for every row of `frame` (one column per variable)."""
    out = np.empty((len(frame), len(variables)))
    expressions = [
        RiskFactorSpec(name=v.name, label=v.label, sql=v.sql) for v in variables if v.sql
    ]
    evaluated = evaluate_factors(frame, expressions)
    if evaluated.unavailable:
        raise DataError(f"risk model variables could not be evaluated: {evaluated.unavailable}")
    k = 0
    for j, v in enumerate(variables):
        if v.column is not None:
            out[:, j] = frame.column(v.column)
        else:
            out[:, j] = evaluated.values[:, k]
            k += 1
    return out


def columns_read(variables: Sequence[Variable], columns: Sequence[str]) -> list[str]:
    """The feature columns the variables read, sorted."""
    used: set[str] = set()
    for v in variables:
        if v.column is not None:
            used.add(v.column)
        elif v.sql is not None:
            used.update(w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", v.sql) if w in columns)
    return sorted(used)
