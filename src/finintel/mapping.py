"""Map a source (file, named source or SQL query, plus joins) onto one canonical table.

The result says, for every canonical column, which raw SQL expression feeds it and how to parse
it; `validate` turns that into clean rows and quarantined ones. Canonical columns that the
config does not map are taken from a source column of the same name (case-insensitive), so a
file already in the canonical layout needs no mapping at all.

Example:
    >>> from finintel.config import config_for_files
    >>> con = connect()
    >>> cfg = config_for_files("customers.csv", None)
    >>> mapped = map_table(con, "customers", cfg, Path("."), SourceCache())  # doctest: +SKIP
    >>> mapped.raw_sql["customer_id"]  # doctest: +SKIP
    'src."customer_id"'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from finintel.config import ColumnSpec, FinintelConfig, JoinSpec, SourceSpec, TableSpec
from finintel.errors import ConfigError, InputFileError
from finintel.readers import MalformedRecord, RawSource, read_source
from finintel.schema import TABLES
from finintel.sql import connect, first_line, quote_ident, quote_literal


@dataclass
class SourceCache:
    """Files already loaded in this run, so a file used by several tables is read once."""

    loaded: dict[tuple[str, str], RawSource] = field(default_factory=dict)

    def read(
        self, con: duckdb.DuckDBPyConnection, spec: SourceSpec, base: Path, hint: str
    ) -> RawSource:
        key = (str((base / spec.path).resolve()), spec.model_dump_json())
        if key not in self.loaded:
            relation = f"raw_{hint}_{len(self.loaded)}"
            self.loaded[key] = read_source(con, spec, base, relation)
        return self.loaded[key]


@dataclass(frozen=True)
class JoinCheck:
    """A required join: the SQL condition that it matched, and the reason when it did not."""

    matched_sql: str
    reason_sql: str


@dataclass(frozen=True)
class MappedTable:
    """Everything validation needs to know about one canonical table's source."""

    name: str
    source_label: str
    relation: str
    rows_in: int
    malformed: list[MalformedRecord]
    from_sql: str
    raw_sql: dict[str, str]
    raw_types: dict[str, str]
    specs: dict[str, ColumnSpec]
    extra_sql: dict[str, str]
    extra_types: dict[str, str]
    extra_specs: dict[str, ColumnSpec]
    join_checks: list[JoinCheck]
    amount_sign: str


def map_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    cfg: FinintelConfig,
    base: Path,
    cache: SourceCache,
) -> MappedTable:
    """Load the table's sources and resolve every column mapping; raise on what cannot work."""
    spec = cfg.tables()[name]
    raw, label = _base_source(con, name, spec, cfg, base, cache)
    if raw.n_rows == 0 and not raw.malformed:
        raise InputFileError(raw.path, f"has no data rows (it should hold the {name} table)")
    joins = {j.name: _join(con, j, cfg, base, cache, raw, name) for j in spec.joins}
    from_sql = f"{quote_ident(raw.relation)} AS src" + "".join(j[0] for j in joins.values())
    join_columns = {jn: j[1] for jn, j in joins.items()}
    resolver = _Resolver(label, raw.columns, join_columns)

    canonical = TABLES[name]
    specs: dict[str, ColumnSpec] = dict(spec.columns)
    lower_columns = {c.strip().lower(): c for c in raw.columns}
    for col in canonical.names:
        if col not in specs and col in lower_columns:
            specs[col] = ColumnSpec(source=lower_columns[col])
    missing = [c.name for c in canonical.required if c.name not in specs]
    if missing:
        raise InputFileError(raw.path, resolver.missing_message(missing, name))

    raw_sql = {col: resolver.sql(col, s) for col, s in specs.items()}
    extra_sql = {col: resolver.sql(col, s) for col, s in spec.extra_columns.items()}
    types = _types(con, from_sql, {**raw_sql, **{f"x:{k}": v for k, v in extra_sql.items()}}, label)
    checks = [JoinCheck(j[2], j[3]) for jn, j in joins.items() if _join_spec(spec, jn).required]
    sign = spec.amount_sign
    if sign == "auto":
        sign = "positive" if "direction" in specs else "negative_is_debit"
    return MappedTable(
        name=name,
        source_label=label,
        relation=raw.relation,
        rows_in=raw.rows_in,
        malformed=raw.malformed,
        from_sql=from_sql,
        raw_sql=raw_sql,
        raw_types={k: v for k, v in types.items() if not k.startswith("x:")},
        specs=specs,
        extra_sql=extra_sql,
        extra_types={k[2:]: v for k, v in types.items() if k.startswith("x:")},
        extra_specs=dict(spec.extra_columns),
        join_checks=checks,
        amount_sign=sign,
    )


def _join_spec(spec: TableSpec, name: str) -> JoinSpec:
    return next(j for j in spec.joins if j.name == name)


def _base_source(
    con: duckdb.DuckDBPyConnection,
    name: str,
    spec: TableSpec,
    cfg: FinintelConfig,
    base: Path,
    cache: SourceCache,
) -> tuple[RawSource, str]:
    if spec.path is not None:
        raw = cache.read(con, spec.read_options(), base, name)
        return raw, raw.path
    if spec.source is not None:
        raw = cache.read(con, cfg.sources[spec.source], base, spec.source)
        return raw, raw.path
    assert spec.sql is not None
    for source_name, source_spec in cfg.sources.items():
        loaded = cache.read(con, source_spec, base, source_name)
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_ident(source_name)} AS "
            f"SELECT * EXCLUDE (_row) FROM {quote_ident(loaded.relation)}"
        )
    relation = f"query_{name}"
    label = f"query for {name} over {', '.join(sorted(cfg.sources)) or 'no sources'}"
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote_ident(relation + '__data')} AS {spec.sql}")
    except duckdb.Error as exc:
        raise ConfigError(f"[{name}] sql does not run: {first_line(exc)}") from None
    con.execute(
        f"CREATE OR REPLACE VIEW {quote_ident(relation)} AS "
        f"SELECT *, rowid + 1 AS _row FROM {quote_ident(relation + '__data')}"
    )
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {quote_ident(relation)}").fetchall()]
    count = con.execute(f"SELECT count(*) FROM {quote_ident(relation)}").fetchall()[0][0]
    return RawSource(label, relation, [c for c in columns if c != "_row"], int(count)), label


def _join(
    con: duckdb.DuckDBPyConnection,
    join: JoinSpec,
    cfg: FinintelConfig,
    base: Path,
    cache: SourceCache,
    left: RawSource,
    table: str,
) -> tuple[str, list[str], str, str]:
    """Return (JOIN clause, joined columns, matched condition, reason when unmatched)."""
    if join.path is not None:
        read = SourceSpec(path=join.path, format=join.format, delimiter=join.delimiter)
    else:
        assert join.source is not None
        read = cfg.sources[join.source]
    raw = cache.read(con, read, base, f"join_{join.name}")
    for left_col, right_col in join.on.items():
        if left_col not in left.columns:
            raise ConfigError(
                f"[{table}] join {join.name!r}: {left.path} has no column {left_col!r}; "
                f"its columns are {left.columns}"
            )
        if right_col not in raw.columns:
            raise ConfigError(
                f"[{table}] join {join.name!r}: {raw.path} has no column {right_col!r}; "
                f"its columns are {raw.columns}"
            )
    view = f"join_{table}_{join.name}"
    where = f"WHERE {join.filter}" if join.filter else ""
    try:
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_ident(view)} AS "
            f"SELECT * EXCLUDE (_row), true AS __matched FROM {quote_ident(raw.relation)} {where}"
        )
        keys = ", ".join(quote_ident(c) for c in join.on.values())
        dup = con.execute(
            f"SELECT {keys}, count(*) FROM {quote_ident(view)} GROUP BY ALL "
            "HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"[{table}] join {join.name!r}: {first_line(exc)}") from None
    if dup:
        raise ConfigError(
            f"[{table}] join {join.name!r}: {raw.path} has {dup[0][-1]} rows for "
            f"{dict(zip(join.on.values(), dup[0][:-1], strict=False))}"
            f"{' after filter ' + repr(join.filter) if join.filter else ''}; a join must find "
            "at most one row per key (add a filter that makes it unique)"
        )
    alias = quote_ident(join.name)
    conditions = " AND ".join(
        f"trim(CAST(src.{quote_ident(lc)} AS VARCHAR)) = trim(CAST({alias}.{quote_ident(rc)} "
        "AS VARCHAR))"
        for lc, rc in join.on.items()
    )
    clause = f" LEFT JOIN {quote_ident(view)} AS {alias} ON {conditions}"
    keys_shown = " || ', ' || ".join(
        f"{quote_literal(lc + '=')} || coalesce(CAST(src.{quote_ident(lc)} AS VARCHAR), 'NULL')"
        for lc in join.on
    )
    reason = (
        f"concat('no row in {Path(raw.path).name.replace(chr(39), '')} for ', {keys_shown}"
        f"{', ' + quote_literal(' where ' + join.filter) if join.filter else ''})"
    )
    return clause, raw.columns, f"{alias}.__matched IS NOT NULL", reason


class _Resolver:
    """Turns a ColumnSpec into the SQL of its raw value, checking that columns exist."""

    def __init__(self, label: str, columns: list[str], joins: dict[str, list[str]]) -> None:
        self.label = label
        self.columns = columns
        self.joins = joins

    def sql(self, target: str, spec: ColumnSpec) -> str:
        if spec.value is not None:
            value = spec.value
            return quote_literal(value) if isinstance(value, str) else repr(value)
        if spec.expr is not None:
            return f"({spec.expr})"
        assert spec.source is not None
        return self._column(target, spec.source)

    def _column(self, target: str, ref: str) -> str:
        if ref in self.columns:
            return f"src.{quote_ident(ref)}"
        head, _, tail = ref.partition(".")
        if tail and head in self.joins:
            if tail not in self.joins[head]:
                raise ConfigError(
                    f"{target} = {ref!r}: join {head!r} has no column {tail!r}; "
                    f"its columns are {self.joins[head]}"
                )
            return f"{quote_ident(head)}.{quote_ident(tail)}"
        raise InputFileError(
            self.label,
            f"has no column {ref!r} (mapped to {target}); {self._found()}",
        )

    def missing_message(self, missing: list[str], table: str) -> str:
        return (
            f"required {table} column(s) {missing} are missing and not mapped in the config; "
            f"{self._found()}"
        )

    def _found(self) -> str:
        shown = self.columns[:20]
        text = f"the columns found are {shown}{' ...' if len(self.columns) > 20 else ''}"
        if len(self.columns) == 1:
            for sep in (";", "\t", "|", ","):
                if sep in self.columns[0]:
                    text += (
                        f"; the header looks {sep!r}-separated, so the delimiter is probably "
                        f"wrong (set delimiter = {sep!r})"
                    )
                    break
        return text


def _types(
    con: duckdb.DuckDBPyConnection, from_sql: str, exprs: dict[str, str], label: str
) -> dict[str, str]:
    if not exprs:
        return {}
    select = ", ".join(f"{sql} AS {quote_ident(name)}" for name, sql in exprs.items())
    try:
        rows = con.execute(f"DESCRIBE SELECT {select} FROM {from_sql}").fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"{label}: a column mapping does not work: {first_line(exc)}") from None
    # Match by position: DESCRIBE may report an alias that differs only in case from the source
    # column (e.g. CREDIT_LIMIT AS credit_limit) under the source column's spelling.
    return {name: str(r[1]) for name, r in zip(exprs, rows, strict=True)}


__all__ = ["MappedTable", "SourceCache", "connect", "map_table"]
