"""The exceptions finintel raises on purpose.

Every error a user can cause by their input or configuration derives from `FinintelError`; the
command line prints its message as one paragraph and exits with `exit_code`, never a traceback.

- `ConfigError`: the TOML mapping or a command-line option is wrong (exit 2).
- `InputFileError`: an input file is missing, empty, binary, badly encoded, has the wrong
  delimiter or lacks a required column (exit 2). The message names the file.
- `DataError`: the data is readable but cannot support a step (e.g. too few customers to fit
  models) (exit 2). `NoRiskFactorError` (no risk factor applies) and `NoSupervisedModelError`
  (no supervised risk model passed the gate) are kinds of it.
- `NotFittedError`: a model was asked for output before it was fitted (exit 2).
- `ModelStateError`: a model's stored state cannot be read (other format, damaged) (exit 2).
- `BundleError`: a model bundle is missing, changed, incomplete or from another version (exit 2).
- `RunDirError`: a directory given as a run is not a finished run (exit 2).
- `PlotUnavailableError`: the data cannot support one plot; the report leaves it out.
- `DashboardStartError`: the dashboard server ended or did not answer in time (exit 2).
- `OptionalDependencyError`: a feature needs an optional extra that is not installed (exit 3).

Example:
    >>> raise InputFileError("data/tx.csv", "the file is empty")
    Traceback (most recent call last):
    finintel.errors.InputFileError: data/tx.csv: the file is empty
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class FinintelError(Exception):
    """Base class of all errors finintel reports to a user."""

    exit_code = 2


class ConfigError(FinintelError):
    """The configuration or the options given are not usable."""


class InputFileError(FinintelError):
    """An input file cannot be read as the data it should hold."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataError(FinintelError):
    """The data is valid but cannot support the requested step."""


class NoRiskFactorError(DataError):
    """No risk factor can be computed from the feature table (anomaly-only data, say)."""


class NoSupervisedModelError(DataError):
    """No supervised risk model passed the gate: the labels do not support one.

    `selection` holds the candidates' cross-validation and why each failed (metrics.json).
    """

    def __init__(self, message: str, selection: dict[str, Any]) -> None:
        super().__init__(message)
        self.selection = selection


class OptionalDependencyError(FinintelError):
    """A feature needs an optional extra that is not installed."""

    exit_code = 3

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this needs the optional package {package!r}: install it with "
            f"pip install 'finintel[{extra}]'"
        )


class NotFittedError(FinintelError):
    """A model was asked for output before `fit` (or loading) gave it its fitted state."""


class ModelStateError(FinintelError):
    """A model's stored state cannot be read: another format version, or damaged."""


class BundleError(FinintelError):
    """A model bundle cannot be used: missing, changed, incomplete or from another version."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"model bundle {path}: {problem}")


class RunDirError(FinintelError):
    """The directory is not a finished run (a required file is missing)."""


class PlotUnavailableError(FinintelError):
    """The data cannot support a plot; the message says why."""


class DashboardStartError(FinintelError):
    """The dashboard server ended or did not answer before it was ready."""
