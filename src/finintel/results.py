"""Write a run's decisions: scored customers, the segment summary and transaction alerts.

`customers_scored` is the feature table joined with every model output on `customer_id`, ordered
by `customer_id`, as Parquet and CSV (without risk columns when the run has no risk score);
`segments.csv` has one row per segment with its profile, description and recommended actions;
`transaction_alerts.csv` lists the flagged transactions with score and reasons. File names and
columns come from `finintel.run_layout`; model outputs that differ from those columns are
refused. All writes are atomic.

Example:
    >>> write_results(con, out_dir, scored)  # doctest: +SKIP
    >>> sorted(p.name for p in out_dir.iterdir())  # doctest: +SKIP
    ['customers_scored.csv', 'customers_scored.parquet', 'segments.csv', 'transaction_alerts.csv']
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from finintel.run_layout import (
    ALERTS_CSV_COLUMNS,
    CUSTOMER_ID,
    PROBABILITY_COLUMN,
    PROFILE_PREFIX,
    SEGMENTS_CSV_COLUMNS,
    RunLayout,
    scored_output_columns,
)
from finintel.scoring import ALERTS_TABLE, ScoredCustomers
from finintel.sql import quote_ident
from finintel.writers import atomic_path, write_query

SCORED_VIEW = "customers_scored"


def write_results(
    con: duckdb.DuckDBPyConnection, out_dir: Path, scored: ScoredCustomers
) -> dict[str, Path]:
    """Write customers_scored.parquet/.csv, segments.csv and transaction_alerts.csv."""
    names = scored.table.column_names
    outputs = scored_output_columns(
        supervised=PROBABILITY_COLUMN in names, risk=scored.risk_off is None
    )
    _require_columns(names, (CUSTOMER_ID, *outputs), "the scored customers")
    alert_names = [d[0] for d in con.execute(f"SELECT * FROM {ALERTS_TABLE} LIMIT 0").description]
    _require_columns(alert_names, ALERTS_CSV_COLUMNS, f"the {ALERTS_TABLE} table")
    selected = ", ".join(f"m.{quote_ident(c)}" for c in outputs)
    con.register("_model_outputs", scored.table)
    con.execute(
        f"CREATE OR REPLACE TABLE {SCORED_VIEW} AS SELECT f.*, {selected} "
        "FROM features f JOIN _model_outputs m USING (customer_id) ORDER BY customer_id"
    )
    con.unregister("_model_outputs")
    layout = RunLayout(out_dir)
    paths = {
        "customers_scored_parquet": layout.scored_parquet,
        "customers_scored_csv": layout.scored_csv,
        "segments": layout.segments_csv,
        "transaction_alerts": layout.alerts_csv,
    }
    query = f"SELECT * FROM {SCORED_VIEW} ORDER BY customer_id"
    write_query(con, query, paths["customers_scored_parquet"], "parquet")
    write_query(con, query, paths["customers_scored_csv"], "csv")
    write_segments(paths["segments"], scored.segments)
    alerts = ", ".join(quote_ident(c) for c in ALERTS_CSV_COLUMNS)
    write_query(con, f"SELECT {alerts} FROM {ALERTS_TABLE}", paths["transaction_alerts"], "csv")
    return paths


def _require_columns(found: list[str], expected: tuple[str, ...], what: str) -> None:
    """Refuse model outputs whose columns differ from the result layout (a bug, not user error).

    The files take the layout's column order, so only the set of columns must match.
    """
    missing = [c for c in expected if c not in found]
    unknown = [c for c in found if c not in expected]
    if missing or unknown:
        raise RuntimeError(
            f"{what} do not have the columns finintel.run_layout declares: "
            f"missing {missing}, not declared {unknown}"
        )


def segment_rows(segments: list[Any]) -> list[dict[str, Any]]:
    """Flat rows for segments.csv: id, name, size, share, description, actions, profile."""
    rows = []
    for segment in segments:
        data = _as_dict(segment)
        values = (
            data["id"],
            data["name"],
            data["size"],
            round(float(data["share"]), 6),
            data.get("description", ""),
            "; ".join(data.get("actions", [])),
        )
        row: dict[str, Any] = dict(zip(SEGMENTS_CSV_COLUMNS, values, strict=True))
        for feature, value in (data.get("profile") or {}).items():
            row[f"{PROFILE_PREFIX}{feature}"] = _profile_value(value)
        rows.append(row)
    return rows


def write_segments(target: Path, segments: list[Any]) -> None:
    rows = segment_rows(segments)
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(target) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def _as_dict(segment: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(segment) and not isinstance(segment, type):
        return dataclasses.asdict(segment)
    if isinstance(segment, Mapping):
        return dict(segment)
    raise TypeError(f"cannot describe segment {segment!r}")


def _profile_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = value.get("value", value.get("median"))
    return round(float(value), 6) if isinstance(value, int | float) else value
