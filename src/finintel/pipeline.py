"""The only place that knows the order of the steps: validate, then build features, then write.

Each step writes its files atomically into the output directory; `validation.json` and
`features.json` are written last in their step, so their presence marks a finished step.

Example:
    >>> from finintel.config import config_for_files
    >>> cfg = config_for_files("customers.csv", "transactions.csv")
    >>> result = run_features(cfg, Path("."), Path("out"))  # doctest: +SKIP
    >>> result.features_path.name  # doctest: +SKIP
    'features.parquet'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from finintel import __version__
from finintel.config import FinintelConfig
from finintel.features import FeaturePlan, build_features, feature_columns, plan_features
from finintel.features.catalog import CATALOG, MIX_FEATURES
from finintel.readers import connect
from finintel.validate import NULLED, REJECTS, TABLE_ORDER, ValidationResult, validate
from finintel.writers import write_json, write_query

Progress = Callable[[str], None]


@dataclass
class ValidationRun:
    """A finished validation: the open engine connection and what was written where."""

    con: duckdb.DuckDBPyConnection
    result: ValidationResult
    out_dir: Path


@dataclass
class FeatureRun:
    """A finished feature build."""

    validation: ValidationRun
    plan: FeaturePlan
    n_customers: int
    features_path: Path


def run_validation(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    today: date | None = None,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> ValidationRun:
    """Validate every table and write clean tables, rejects and `validation.json`."""
    con = con or connect()
    result = validate(con, cfg, base, today=today, progress=progress)
    if progress:
        progress("writing clean tables and rejects")
    for name in TABLE_ORDER:
        write_query(
            con,
            f"SELECT * FROM {result.clean[name]}",
            out_dir / "clean" / f"{name}.parquet",
            "parquet",
        )
    rejects = f'SELECT * FROM {REJECTS} ORDER BY "table", "row"'
    write_query(con, rejects, out_dir / "rejects.csv", "csv")
    write_query(con, rejects, out_dir / "rejects.parquet", "parquet")
    write_query(
        con,
        f'SELECT * FROM {NULLED} ORDER BY "table", "row", "column"',
        out_dir / "nulled_values.csv",
        "csv",
    )
    write_json(out_dir / "validation.json", {"finintel_version": __version__, **result.to_dict()})
    return ValidationRun(con, result, out_dir)


def run_features(
    cfg: FinintelConfig,
    base: Path,
    out_dir: Path,
    today: date | None = None,
    progress: Progress | None = None,
) -> FeatureRun:
    """Validate, then build one feature row per customer and write features.parquet/.csv."""
    validation = run_validation(cfg, base, out_dir, today, progress)
    con = validation.con
    if progress:
        progress("building customer features")
    plan = plan_features(con, cfg.features, validation.result.extra_columns, fallback_as_of=today)
    table = build_features(con, plan)
    features_path = out_dir / "features.parquet"
    write_query(con, f"SELECT * FROM {table}", features_path, "parquet")
    write_query(con, f"SELECT * FROM {table}", out_dir / "features.csv", "csv")
    count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    write_json(out_dir / "features.json", feature_manifest(plan, int(count)))
    return FeatureRun(validation, plan, int(count), features_path)


def feature_manifest(plan: FeaturePlan, n_customers: int) -> dict[str, Any]:
    """What the feature table holds: the plan, and each column (in order) with meaning and unit."""
    columns = []
    for name in feature_columns(plan):
        if name in CATALOG:
            description, unit = CATALOG[name].description, CATALOG[name].unit
        elif name in plan.extra_columns:
            description, unit = "extra column declared in the config", "as given"
        else:
            mix = MIX_FEATURES[0] if name.startswith("channel_share_") else MIX_FEATURES[1]
            description, unit = mix.description, mix.unit
        columns.append({"name": name, "description": description, "unit": unit})
    return {
        "finintel_version": __version__,
        "customers": n_customers,
        "plan": plan.to_dict(),
        "columns": columns,
    }
