"""The feature table as numbers: customer ids, column names and a float matrix.

Models never read files; the pipeline loads the feature table from the engine once into a
`FeatureFrame` (missing values are NaN) and hands it to each model.

Example:
    >>> import numpy as np
    >>> frame = FeatureFrame(np.array(["A", "B"], dtype=object), ("x", "y"),
    ...                      np.array([[1.0, 2.0], [3.0, np.nan]]))
    >>> frame.column("y").tolist()
    [2.0, nan]
    >>> frame.select(["y"]).columns
    ('y',)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from finintel.errors import DataError
from finintel.sql import quote_ident

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureFrame:
    """One row per customer: `ids[i]` owns `values[i]`; `columns` name the value columns."""

    ids: npt.NDArray[np.object_]
    columns: tuple[str, ...]
    values: FloatArray

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.ids), len(self.columns)):
            raise DataError(
                f"values shape {self.values.shape} does not match "
                f"{len(self.ids)} ids x {len(self.columns)} columns"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> FloatArray:
        """The values of one column."""
        return self.values[:, self.columns.index(name)]

    def select(self, names: Sequence[str]) -> FeatureFrame:
        """A frame with only `names`, in that order; unknown names raise DataError."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise DataError(f"the feature table has no column(s) {missing}")
        index = [self.columns.index(n) for n in names]
        return FeatureFrame(self.ids, tuple(names), self.values[:, index])

    def with_columns(self, names: Sequence[str], values: FloatArray) -> FeatureFrame:
        """A frame with extra columns appended (e.g. `risk_score` for segmentation)."""
        block = values.reshape(len(self), len(names))
        return FeatureFrame(
            self.ids, (*self.columns, *names), np.hstack([self.values, block.astype(np.float64)])
        )

    def rows(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> FeatureFrame:
        """A frame with a subset of the customers."""
        return FeatureFrame(self.ids[index], self.columns, self.values[index])


def load_frame(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str] | None = None
) -> FeatureFrame:
    """Read `customer_id` and numeric `columns` (default: all others) of `table`, by customer_id.

    Example:
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE f AS SELECT 'A' AS customer_id, 1.5 AS x")
        >>> load_frame(con, "f").values.tolist()
        [[1.5]]
    """
    if columns is None:
        described = con.execute(f"SELECT * FROM {quote_ident(table)} LIMIT 0").description
        columns = [d[0] for d in described if d[0] != "customer_id"]
    selected = ", ".join(
        ["customer_id", *(f"CAST({quote_ident(c)} AS DOUBLE) AS {quote_ident(c)}" for c in columns)]
    )
    arrow = con.sql(
        f"SELECT {selected} FROM {quote_ident(table)} ORDER BY customer_id"
    ).to_arrow_table()
    ids = np.array(arrow.column("customer_id").to_pylist(), dtype=object)
    if columns:
        values = np.column_stack(
            [arrow.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in columns]
        )
    else:
        values = np.empty((len(ids), 0), dtype=np.float64)
    return FeatureFrame(ids, tuple(columns), values)
