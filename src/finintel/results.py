"""Write a run's decisions: scored customers, the segment summary and transaction alerts.

`customers_scored` is the feature table joined with every model output on `customer_id`, ordered
by `customer_id`, as Parquet and CSV (without risk columns when the run has no risk score);
`segments.csv` has one row per segment with its profile, description and recommended actions;
`transaction_alerts.csv` lists the flagged transactions with score and reasons. File names and
columns come from `finintel.run_layout`; model outputs that differ from those columns are
refused. All writes are atomic.

The CSV files are for people: scores (0-100 risk and anomaly scores, alert scores) are rounded
to 2 decimals and probabilities of default to 6 (`CSV_DECIMALS`); the Parquet file keeps full
precision. Segment sizes and shares in segments.csv count the customers of this batch, with the
sizes of the population the segmenter was fitted on beside them (`training_size`,
`training_share`) when the two differ, as after `finintel score` on new customers.

Example:
    >>> write_results(con, out_dir, scored)  # doctest: +SKIP
    >>> sorted(p.name for p in out_dir.iterdir())  # doctest: +SKIP
    ['customers_scored.csv', 'customers_scored.parquet', 'segments.csv', 'transaction_alerts.csv']
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
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
# Decimals of the model outputs in the CSV files (Parquet keeps full precision).
SCORE_DECIMALS = 2
PROBABILITY_DECIMALS = 6
CSV_DECIMALS = {
    "risk_score": SCORE_DECIMALS,
    "anomaly_score": SCORE_DECIMALS,
    "alert_score": SCORE_DECIMALS,
    PROBABILITY_COLUMN: PROBABILITY_DECIMALS,
}
# segments.csv: the sizes of the fitted population, after the declared columns.
TRAINING_SIZE = "training_size"
TRAINING_SHARE = "training_share"


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
    scored_names = [d[0] for d in con.execute(f"{query} LIMIT 0").description]
    csv_query = f"SELECT {rounded_columns(scored_names)} FROM {SCORED_VIEW} ORDER BY customer_id"
    write_query(con, csv_query, paths["customers_scored_csv"], "csv")
    segment_ids = scored.table.column("segment_id").to_pylist()
    write_segments(paths["segments"], scored.segments, batch_sizes(segment_ids))
    alerts = rounded_columns(list(ALERTS_CSV_COLUMNS))
    write_query(con, f"SELECT {alerts} FROM {ALERTS_TABLE}", paths["transaction_alerts"], "csv")
    return paths


def rounded_columns(names: list[str]) -> str:
    """A select list of `names` with the scores and probabilities rounded for the CSV files.

    Example:
        >>> rounded_columns(["customer_id", "risk_score"])
        '"customer_id", round("risk_score", 2) AS "risk_score"'
    """
    parts = []
    for name in names:
        column = quote_ident(name)
        digits = CSV_DECIMALS.get(name)
        parts.append(column if digits is None else f"round({column}, {digits}) AS {column}")
    return ", ".join(parts)


def batch_sizes(segment_ids: list[Any]) -> dict[int, int]:
    """Customers per segment id in a scored batch.

    Example:
        >>> batch_sizes([2, 1, 2, None])
        {1: 1, 2: 2}
    """
    counts = Counter(int(s) for s in segment_ids if s is not None)
    return dict(sorted(counts.items()))


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


def segment_rows(
    segments: list[Any], sizes: Mapping[int, int] | None = None
) -> list[dict[str, Any]]:
    """Flat rows for segments.csv: id, name, size, share, description, actions, then the
    training size and share (only when they differ from the batch's), then the profile.

    `sizes` (customers per segment id in the scored batch, see `batch_sizes`) gives `size` and
    `share`; without it they are the training sizes. A batch whose sizes are the training sizes
    (`finintel run`, or `score` on the data the model was fitted on) has no training columns,
    so scoring the training data reproduces the run's segments.csv.

    Example:
        >>> seg = {"id": 1, "name": "Savers", "size": 80, "share": 0.8, "actions": ["none"]}
        >>> row = segment_rows([seg], {1: 3})[0]
        >>> row["size"], row["share"], row["training_size"], row["training_share"]
        (3, 1.0, 80, 0.8)
    """
    total = sum(sizes.values()) if sizes is not None else 0
    described = [_as_dict(segment) for segment in segments]
    refitted_elsewhere = sizes is not None and any(
        int(sizes.get(int(d["id"]), 0)) != int(d["size"]) for d in described
    )
    rows = []
    for data in described:
        training_share = round(float(data["share"]), 6)
        if sizes is None:
            size, share = int(data["size"]), training_share
        else:
            size = int(sizes.get(int(data["id"]), 0))
            share = round(size / total, 6) if total else 0.0
        values = (
            data["id"],
            data["name"],
            size,
            share,
            data.get("description", ""),
            "; ".join(data.get("actions", [])),
        )
        row: dict[str, Any] = dict(zip(SEGMENTS_CSV_COLUMNS, values, strict=True))
        if refitted_elsewhere:
            row[TRAINING_SIZE] = int(data["size"])
            row[TRAINING_SHARE] = training_share
        for feature, value in (data.get("profile") or {}).items():
            row[f"{PROFILE_PREFIX}{feature}"] = _profile_value(value)
        rows.append(row)
    return rows


def write_segments(
    target: Path, segments: list[Any], sizes: Mapping[int, int] | None = None
) -> None:
    """Write segments.csv (see `segment_rows`) atomically."""
    rows = segment_rows(segments, sizes)
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
