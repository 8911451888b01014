"""Write a run's decisions: scored customers, the segment summary and transaction alerts.

`customers_scored` is the feature table joined with every model output on `customer_id`, ordered
by `customer_id`, as Parquet and CSV; `segments.csv` has one row per segment with its profile,
description and recommended actions; `transaction_alerts.csv` lists the flagged transactions
with score and reasons. All writes are atomic.

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

from finintel.scoring import ALERTS_TABLE, ScoredCustomers
from finintel.writers import atomic_path, write_query

SCORED_VIEW = "customers_scored"


def write_results(
    con: duckdb.DuckDBPyConnection, out_dir: Path, scored: ScoredCustomers
) -> dict[str, Path]:
    """Write customers_scored.parquet/.csv, segments.csv and transaction_alerts.csv."""
    con.register("_model_outputs", scored.table)
    con.execute(
        f"CREATE OR REPLACE TABLE {SCORED_VIEW} AS SELECT f.*, m.* EXCLUDE (customer_id) "
        "FROM features f JOIN _model_outputs m USING (customer_id) ORDER BY customer_id"
    )
    con.unregister("_model_outputs")
    paths = {
        "customers_scored_parquet": out_dir / "customers_scored.parquet",
        "customers_scored_csv": out_dir / "customers_scored.csv",
        "segments": out_dir / "segments.csv",
        "transaction_alerts": out_dir / "transaction_alerts.csv",
    }
    query = f"SELECT * FROM {SCORED_VIEW} ORDER BY customer_id"
    write_query(con, query, paths["customers_scored_parquet"], "parquet")
    write_query(con, query, paths["customers_scored_csv"], "csv")
    write_segments(paths["segments"], scored.segments)
    write_query(con, f"SELECT * FROM {ALERTS_TABLE}", paths["transaction_alerts"], "csv")
    return paths


def segment_rows(segments: list[Any]) -> list[dict[str, Any]]:
    """Flat rows for segments.csv: id, name, size, share, description, actions, profile."""
    rows = []
    for segment in segments:
        data = _as_dict(segment)
        row: dict[str, Any] = {
            "segment_id": data["id"],
            "segment_name": data["name"],
            "size": data["size"],
            "share": round(float(data["share"]), 6),
            "description": data.get("description", ""),
            "actions": "; ".join(data.get("actions", [])),
        }
        for feature, value in (data.get("profile") or {}).items():
            row[f"profile_{feature}"] = _profile_value(value)
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
