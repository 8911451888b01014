"""The contract every finintel model keeps, in the manner of scikit-learn's estimators.

- `__init__` stores settings only; `fit(...)` learns and returns `self`; what it learned lives
  in attributes with a trailing underscore, among them `metrics_` (what the model measured and
  decided while fitting, written to metrics.json).
- `predict(data)` is the one output method: customer models take a `FeatureFrame` and return
  an output whose `columns()` are result columns aligned with the frame's rows; the
  transaction alerter takes `TransactionTables` and returns its alerts. Asking an unfitted
  model raises `NotFittedError`.
- `to_files()` / `from_files()` persist the fitted state written once, here: one JSON file
  (`STATE_FILE`, sorted keys, one style) with the model's `FORMAT_VERSIONS` entry and the
  `finintel_version` that wrote it, plus any extra files the model declares (a skops forest, a
  scorecard table). A state of another format version is refused with both versions named.

Example:
    >>> class Echo(FinintelModel[list[int], list[int]]):
    ...     part = "segments"
    ...     def fit(self, data):
    ...         self.metrics_ = {"rows": len(data)}
    ...         return self
    ...     def _predict(self, data):
    ...         return data
    ...     def _state(self):
    ...         return {}
    ...     @classmethod
    ...     def _from_state(cls, state, files):
    ...         return cls()
    >>> Echo().predict([1])
    Traceback (most recent call last):
    finintel.errors.NotFittedError: this Echo is not fitted: fit it, or load it from a bundle
    >>> sorted(Echo().fit([1, 2]).to_files())
    ['state.json']
    >>> Echo.from_files(Echo().fit([1, 2]).to_files()).metrics_
    {'rows': 2}
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import pyarrow as pa

from finintel import __version__
from finintel.errors import ModelStateError, NotFittedError

STATE_FILE = "state.json"
# The format of each model's stored state; raise one when its state changes shape.
FORMAT_VERSIONS: dict[str, int] = {
    "risk": 3,
    "anomaly": 3,
    "segments": 2,
    "transaction_alerts": 2,
}

InputT = TypeVar("InputT", contravariant=True)
OutputT = TypeVar("OutputT", covariant=True)


class ModelOutput(Protocol):
    """A customer model's output: result columns aligned with the scored frame's rows."""

    def columns(self) -> dict[str, pa.Array]: ...


def check_is_fitted(model: object) -> None:
    """Raise `NotFittedError` unless `model` has fitted attributes (names ending in `_`).

    Example:
        >>> class Model: pass
        >>> check_is_fitted(Model())
        Traceback (most recent call last):
        finintel.errors.NotFittedError: this Model is not fitted: fit it, or load it from a bundle
    """
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(model)):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted: fit it, or load it from a bundle"
        )


def json_safe(value: Any) -> Any:
    """Floats that are not finite become None; numpy scalars and arrays become Python values.

    Example:
        >>> json_safe({"a": [np.float64("nan"), np.int64(2)], "b": np.array([1.5])})
        {'a': [None, 2], 'b': [1.5]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def dump_state(state: Mapping[str, Any]) -> bytes:
    """The one JSON style of stored model state: sorted keys, one-space indent, no NaN."""
    text = json.dumps(json_safe(state), sort_keys=True, allow_nan=False, indent=1)
    return text.encode("utf-8")


def read_state(files: Mapping[str, bytes], part: str) -> dict[str, Any]:
    """The stored state of model `part`, refused unless it has this finintel's format."""
    if STATE_FILE not in files:
        raise ModelStateError(f"the {part} model has no {STATE_FILE}")
    try:
        state = json.loads(files[STATE_FILE].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"is not valid JSON ({exc})"
        raise ModelStateError(f"the {part} model's {STATE_FILE} {problem}") from None
    if not isinstance(state, dict):
        raise ModelStateError(f"the {part} model's {STATE_FILE} does not hold a model state")
    found, wanted = state.get("format_version"), FORMAT_VERSIONS[part]
    if found != wanted:
        raise ModelStateError(
            f"the {part} model's state has format version {found!r} (written by finintel "
            f"{state.get('finintel_version', 'unknown')}); this finintel reads format "
            f"{wanted}: refit the model with `finintel run`"
        )
    return state


class FinintelModel(ABC, Generic[InputT, OutputT]):
    """Base of the four models: the fitted check, `predict` and persistence, written once.

    A subclass sets `part` (its bundle part and `FORMAT_VERSIONS` key) and writes `fit`,
    `_predict` (trusting a fitted model), `_state` / `_from_state` (its JSON state without
    the common keys) and, when it stores more than JSON, `_extra_files`.
    """

    part: ClassVar[str]
    metrics_: dict[str, Any]

    def predict(self, data: InputT) -> OutputT:
        """The model's output for `data`, from fitted state only."""
        check_is_fitted(self)
        return self._predict(data)

    @abstractmethod
    def _predict(self, data: InputT) -> OutputT: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self: ...

    def _extra_files(self) -> dict[str, bytes]:
        return {}

    def to_files(self) -> dict[str, bytes]:
        """The fitted state as files: `STATE_FILE` and any extra files of the model."""
        check_is_fitted(self)
        state = {
            **self._state(),
            "format_version": FORMAT_VERSIONS[self.part],
            "finintel_version": __version__,
            "metrics": self.metrics_,
        }
        return {STATE_FILE: dump_state(state), **self._extra_files()}

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> Self:
        """Rebuild a fitted model from `to_files()` output; nothing in the files is executed."""
        return cls.from_state(read_state(files, cls.part), files)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        """Rebuild a fitted model from its checked state (`read_state`) and its files."""
        model = cls._from_state(state, files)
        model.metrics_ = state["metrics"]
        return model
