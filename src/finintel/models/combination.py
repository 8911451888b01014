"""Combining detector scores: a matrix in, one score per row out (PyOD's `combination`).

Column j of the matrix holds detector j's scores on one scale (here: percentiles among
training customers), so a detector added to the ensemble is one more column, and nothing else
changes.

Example:
    >>> import numpy as np
    >>> matrix = np.array([[10.0, 90.0, 50.0], [60.0, 60.0, 60.0]])
    >>> combine(matrix, "mean").tolist()
    [50.0, 60.0]
    >>> [round(v, 4) for v in combine(matrix, "max").tolist()]
    [89.996, 60.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from finintel.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

# Weight of the mean under the "max" rule: it only separates rows with equal maxima.
TIE_BREAK = 1e-4


def average(matrix: FloatArray) -> FloatArray:
    """The mean over detectors."""
    return np.asarray(matrix.mean(axis=1), dtype=np.float64)


def maximization(matrix: FloatArray) -> FloatArray:
    """The most confident detector, ties among equal maxima broken by the mean."""
    top = matrix.max(axis=1)
    return np.asarray(top + TIE_BREAK * (matrix.mean(axis=1) - top), dtype=np.float64)


RULES: dict[str, Callable[[FloatArray], FloatArray]] = {"mean": average, "max": maximization}


def combine(matrix: FloatArray, rule: str) -> FloatArray:
    """One score per row of `matrix` (rows = customers, columns = detectors) by `rule`."""
    if rule not in RULES:
        raise ConfigError(f"unknown combination rule {rule!r}; use one of {sorted(RULES)}")
    return RULES[rule](matrix)
