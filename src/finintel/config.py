"""Typed settings: how source files map onto the canonical model, and how the run behaves.

A TOML file describes each canonical table (`customers`, `transactions`, `loans`, `labels`):
where its rows come from (a file, a named source, or a SQL query over named sources), which
tables to join, and how each canonical column is taken from the source (a column, a SQL
expression or a constant) and parsed (date formats, separators, currency symbols, value maps).
Relative paths are resolved against `base_dir`, itself relative to the config file.

Example:
    >>> cfg = FinintelConfig.model_validate({
    ...     "customers": {"path": "users.csv", "columns": {"customer_id": "user_id"}},
    ... })
    >>> cfg.customers.columns["customer_id"].source
    'user_id'
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from finintel.errors import ConfigError
from finintel.schema import TABLES, code_key
from finintel.settings._strict import Strict
from finintel.settings.anomaly import AnomalySettings
from finintel.settings.risk import RiskSettings
from finintel.settings.segments import SegmentSettings

DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "-")
DEFAULT_PLACEHOLDER_DATES = ("1900-01-01", "1899-12-31", "1800-01-01", "9999-12-31")

FileFormat = Literal["auto", "csv", "parquet", "json", "whitespace"]


class ColumnSpec(Strict):
    """Where one canonical column comes from and how its raw text is parsed.

    Exactly one of `source` (a column of the source, or `join_name.column`), `expr` (a SQL
    expression over the source's columns; `_row` is the 1-based row number) or `value` (a
    constant) is given. A plain string in TOML is shorthand for `source`.
    """

    source: str | None = None
    expr: str | None = None
    value: str | float | int | None = None
    formats: list[str] = Field(default_factory=list)
    decimal: str = "."
    thousands: str | None = None
    currency: list[str] = Field(default_factory=list)
    map: dict[str, str | float | int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        given = [k for k in ("source", "expr", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'source', 'expr' or 'value'")
        if self.decimal == self.thousands:
            raise ValueError("'decimal' and 'thousands' separators must differ")
        return self


def _column_spec(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


class SourceSpec(Strict):
    """How to read one file."""

    path: str
    format: FileFormat = "auto"
    delimiter: str | None = None
    quote: str | None = None
    header: bool = True
    encoding: str = "utf-8"


class JoinSpec(Strict):
    """A many-to-one lookup joined onto every row of a table (e.g. account -> client).

    `on` maps a column of the base source to a column of the joined one. The joined rows must
    be unique on that key after `filter`; a row without a match is quarantined when `required`.
    """

    name: str
    path: str | None = None
    source: str | None = None
    on: dict[str, str]
    filter: str | None = None
    required: bool = True
    format: FileFormat = "auto"
    delimiter: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> JoinSpec:
        if (self.path is None) == (self.source is None):
            raise ValueError(f"join {self.name!r}: give exactly one of 'path' or 'source'")
        if not self.on:
            raise ValueError(f"join {self.name!r}: 'on' needs at least one column pair")
        return self


class TableSpec(Strict):
    """Where one canonical table's rows come from and how its columns are mapped."""

    path: str | None = None
    source: str | None = None
    sql: str | None = None
    format: FileFormat = "auto"
    delimiter: str | None = None
    quote: str | None = None
    header: bool = True
    encoding: str = "utf-8"
    joins: list[JoinSpec] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    extra_columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    amount_sign: Literal["auto", "positive", "negative_is_debit", "negative_is_credit"] = "auto"

    @field_validator("columns", "extra_columns", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _column_spec(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> TableSpec:
        given = [k for k in ("path", "source", "sql") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'path', 'source' or 'sql'")
        for name in self.extra_columns:
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"extra column name {name!r} must be a lower-case identifier")
        return self

    def read_options(self) -> SourceSpec:
        assert self.path is not None
        return SourceSpec(
            path=self.path,
            format=self.format,
            delimiter=self.delimiter,
            quote=self.quote,
            header=self.header,
            encoding=self.encoding,
        )


class ValidationSettings(Strict):
    """Knobs of the validation rules (`[validation]` in the TOML file).

    `max_reject_share`: when more than this share of a table's rows is quarantined (repeated
    rows that equal the row they repeat not counted), the data is taken as unusable: the clean
    tables, rejects and validation.json are written, then the run stops with exit code 2 before
    any feature or model (1 lets every share through). `balance_tolerance`: how far (in money
    units) a transaction's `balance_after` may be from the previous balance plus or minus its
    amount before the row is flagged `balance_mismatch` (flagged rows are kept).

    Example:
        >>> ValidationSettings(max_reject_share=0.2).max_reject_share
        0.2
    """

    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING_VALUES))
    placeholder_dates: list[date] = Field(
        default_factory=lambda: [date.fromisoformat(d) for d in DEFAULT_PLACEHOLDER_DATES]
    )
    earliest_date: date = date(1900, 1, 1)
    latest_date: date | None = None  # default: the day the run starts
    max_reject_share: float = Field(default=0.5, gt=0, le=1)
    balance_tolerance: float = Field(default=0.01, ge=0, le=1e12)


class FeatureSettings(Strict):
    """Knobs of the customer feature table.

    The typology thresholds (money laundering and fraud patterns, see the "Typologies" section
    of docs/features.md) are stored in the feature plan, so data scored later is measured
    against the same thresholds. Money thresholds are whole cents, because transaction amounts
    are compared with them exactly.

    Example:
        >>> FeatureSettings(reporting_threshold=15000).structuring_band
        0.85
    """

    as_of: date | None = None  # default: the date of the last clean transaction
    trend_months: int = Field(default=12, ge=2, le=60)
    night_start_hour: int = Field(default=22, ge=0, le=23)
    night_end_hour: int = Field(default=6, ge=0, le=23)
    max_mix_levels: int = Field(default=8, ge=1, le=50)
    # The typology features below add about two thirds to the feature build time (half of it
    # the pass-through pairing); false leaves them out.
    typologies: bool = True
    # Structuring: cash or transfer amounts kept just under the amount that must be reported,
    # from structuring_band x reporting_threshold up to just below the threshold.
    reporting_threshold: float = Field(default=10_000.0, gt=0, le=1e12)
    structuring_band: float = Field(default=0.85, gt=0, lt=1)
    # channel or category values (any case) that mark a cash or transfer transaction; a
    # transaction without channel and category counts as one
    structuring_kinds: list[str] = Field(
        default_factory=lambda: ["atm", "cash", "transfer", "wire"], min_length=1
    )
    # Pass-through: a credit followed within pass_through_hours by a debit of at least
    # pass_through_min_share (and at most all) of its amount.
    pass_through_hours: int = Field(default=24, ge=1, le=24 * 31)
    pass_through_min_share: float = Field(default=0.9, gt=0, le=1)
    # Card testing: debits of at most tiny_amount, counted within tiny_burst_minutes.
    tiny_amount: float = Field(default=2.0, gt=0, le=1e6)
    tiny_burst_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Round amounts: whole multiples of round_unit (and at least round_unit).
    round_unit: float = Field(default=100.0, gt=0, le=1e12)

    @field_validator("reporting_threshold", "tiny_amount", "round_unit")
    @classmethod
    def _whole_cents(cls, value: float) -> float:
        return cls._at_most_decimals(value, 2, "is not a whole number of cents")

    @field_validator("structuring_band", "pass_through_min_share")
    @classmethod
    def _four_decimals(cls, value: float) -> float:
        return cls._at_most_decimals(value, 4, "has more than four decimals")

    @field_validator("structuring_kinds")
    @classmethod
    def _lower_kinds(cls, kinds: list[str]) -> list[str]:
        cleaned = sorted({k.strip().lower() for k in kinds if k.strip()})
        if not cleaned:
            raise ValueError("structuring_kinds needs at least one channel or category value")
        return cleaned

    @staticmethod
    def _at_most_decimals(value: float, places: int, problem: str) -> float:
        """`value` unchanged when written with at most `places` decimals, else a ValueError."""
        from decimal import Decimal

        exponent = Decimal(repr(value)).normalize().as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -places:
            raise ValueError(f"{value} {problem}")
        return value


class FinintelConfig(Strict):
    """The whole configuration file."""

    name: str = "finintel"
    base_dir: str | None = None
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    customers: TableSpec | None = None
    transactions: TableSpec | None = None
    loans: TableSpec | None = None
    labels: TableSpec | None = None
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    seed: int = 42
    # What kind of business the data comes from: the personas' recommended actions are in its
    # vocabulary ("neutral" recommends no product). See docs/segments.md.
    domain: Literal["neutral", "retail_bank", "cards", "retail"] = "neutral"

    @model_validator(mode="after")
    def _check_tables(self) -> FinintelConfig:
        if self.customers is None and self.transactions is None:
            raise ValueError("the config needs a [customers] or a [transactions] table")
        for table_name, spec in self.tables().items():
            canonical = TABLES[table_name]
            unknown = set(spec.columns) - set(canonical.names)
            if unknown:
                raise ValueError(
                    f"[{table_name}.columns] has unknown column(s) {sorted(unknown)}; "
                    f"canonical columns are {canonical.names}"
                )
            if spec.extra_columns and table_name != "customers":
                raise ValueError("extra_columns are only allowed on [customers]")
            clash = set(spec.extra_columns) & set(canonical.names)
            if clash:
                raise ValueError(f"extra column(s) {sorted(clash)} clash with canonical names")
            names = [j.name for j in spec.joins]
            if len(names) != len(set(names)):
                raise ValueError(f"[{table_name}] has two joins with the same name")
            for ref in [spec.source, *[j.source for j in spec.joins]]:
                if ref is not None and ref not in self.sources:
                    raise ValueError(f"[{table_name}] names unknown source {ref!r}")
        return self

    def value_labels(self) -> dict[str, dict[str, str]]:
        """The source's words for each numeric code of the mapped customer columns.

        Reasons then say "housing own 'rent / for free'" instead of "housing own 0".

        Example:
            A map `{ "none" = 0, "bank" = 1, "stores" = 1 }` on `other_installment_plans_flag`
            gives `{"other_installment_plans_flag": {"0": "none", "1": "bank / stores"}}`.
        """
        if self.customers is None:
            return {}
        specs = {**self.customers.columns, **self.customers.extra_columns}
        out: dict[str, dict[str, str]] = {}
        for name, spec in specs.items():
            codes = list(spec.map.values())
            if not codes or not all(isinstance(v, int | float) for v in codes):
                continue
            words: dict[str, list[str]] = {}
            for text, code in spec.map.items():
                words.setdefault(code_key(float(code)), []).append(text)
            out[name] = {key: " / ".join(texts) for key, texts in words.items()}
        return out

    def tables(self) -> dict[str, TableSpec]:
        """The tables this config defines, by canonical name."""
        found = {
            "customers": self.customers,
            "transactions": self.transactions,
            "loans": self.loans,
            "labels": self.labels,
        }
        return {k: v for k, v in found.items() if v is not None}


def load_config(path: str | os.PathLike[str]) -> tuple[FinintelConfig, Path]:
    """Read a TOML config; return it and the directory its relative paths start from.

    Example:
        >>> cfg, base = load_config("examples/cc_general.toml")  # doctest: +SKIP
    """
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        cfg = FinintelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: {_explain(exc)}") from None
    base = file.resolve().parent
    if cfg.base_dir is not None:
        base = (base / cfg.base_dir).resolve()
    return cfg, base


def config_for_files(
    customers: str | None,
    transactions: str | None,
    loans: str | None = None,
    labels: str | None = None,
    extra_columns: list[str] | None = None,
    domain: str = "neutral",
) -> FinintelConfig:
    """A config for plain files already in the canonical layout (no mapping needed).

    `domain` is the business the data comes from (the personas' action vocabulary).

    Example:
        >>> config_for_files("customers.csv", "transactions.csv").transactions.path
        'transactions.csv'
        >>> config_for_files("customers.csv", None, domain="retail_bank").domain
        'retail_bank'
    """
    tables: dict[str, Any] = {"domain": domain}
    for name, path in (
        ("customers", customers),
        ("transactions", transactions),
        ("loans", loans),
        ("labels", labels),
    ):
        if path is not None:
            tables[name] = {"path": str(path)}
    if extra_columns:
        if "customers" not in tables:
            raise ConfigError("--extra needs --customers: extra columns come from the customers")
        tables["customers"]["extra_columns"] = {
            _identifier(c): {"source": c} for c in extra_columns
        }
    try:
        return FinintelConfig.model_validate(tables)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _identifier(column: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in column.strip().lower()).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"x_{cleaned}"


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)
