"""The shared base of the two risk modes: outputs, the 0-100 scale, bands and reasons.

`finintel.models.composite` (unsupervised) and `finintel.models.scorecard` (supervised) both
build on this module; `finintel.models.risk` is the front door that picks one. Keeping the
shared parts here means the front door imports the modes and nothing imports it back.

Example:
    >>> import numpy as np
    >>> from finintel.settings.risk import RiskSettings
    >>> bands, actions = assign_bands(np.array([10.0, 95.0]), RiskSettings().bands)
    >>> bands.tolist()
    ['Low', 'Critical']
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.errors import DataError, ModelStateError
from finintel.models.base import FinintelModel
from finintel.models.distribution import TrainingDistribution
from finintel.models.explain import (
    ValueLabels,
    feature_unit,
    format_value,
    population_phrase,
    value_label,
)
from finintel.models.frame import FeatureFrame
from finintel.run_layout import PROBABILITY_COLUMN, RISK_OUTPUT_COLUMNS
from finintel.settings.risk import RiskBand, RiskSettings

FloatArray = npt.NDArray[np.float64]

MAX_REASONS = 3


@dataclass(frozen=True)
class RiskScores:
    """Risk outputs aligned with the scored frame's rows."""

    ids: npt.NDArray[np.object_]
    risk_score: FloatArray
    risk_band: npt.NDArray[np.object_]
    risk_action: npt.NDArray[np.object_]
    risk_reasons: npt.NDArray[np.object_]
    probability_of_default: FloatArray
    mode: str

    def __len__(self) -> int:
        return len(self.ids)

    def columns(self) -> dict[str, pa.Array]:
        """The risk result columns; `probability_of_default` only from a supervised model."""
        arrays = [
            pa.array(self.risk_score, pa.float64()),
            pa.array(list(self.risk_band), pa.string()),
            pa.array(list(self.risk_action), pa.string()),
            pa.array(list(self.risk_reasons), pa.string()),
        ]
        columns = dict(zip(RISK_OUTPUT_COLUMNS, arrays, strict=True))
        if self.mode == "supervised":
            columns[PROBABILITY_COLUMN] = pa.array(self.probability_of_default, pa.float64())
        return columns


class RiskModel(FinintelModel[FeatureFrame, RiskScores]):
    """What both modes share: settings, bands and actions, and the common stored state.

    A mode writes `fit`, `_risk` (the 0-100 score, reasons and probability of default per
    row), `_mode_state` and `_restore` (its own part of the stored state).
    """

    part = "risk"
    mode: ClassVar[str]
    columns_: list[str]
    value_labels_: dict[str, dict[str, str]]

    def __init__(self, settings: RiskSettings, seed: int = 0) -> None:
        self.settings = settings
        self.seed = seed

    def _predict(self, frame: FeatureFrame) -> RiskScores:
        require_columns(frame, self.columns_)
        risk_score, reasons, probability = self._risk(frame)
        band, action = assign_bands(risk_score, self.settings.bands)
        return RiskScores(frame.ids, risk_score, band, action, reasons, probability, self.mode)

    @abstractmethod
    def _risk(self, frame: FeatureFrame) -> tuple[FloatArray, npt.NDArray[np.object_], FloatArray]:
        """Score, reasons and probability of default (NaN when unsupervised) per row."""

    @abstractmethod
    def _mode_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _restore(self, state: Mapping[str, Any]) -> None: ...

    def _state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seed": self.seed,
            "settings": self.settings.model_dump(mode="json"),
            "columns": self.columns_,
            "value_labels": self.value_labels_,
            **self._mode_state(),
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        if state.get("mode") != cls.mode:
            raise ModelStateError(f"the risk model's state holds a {state.get('mode')} model")
        obj = cls(RiskSettings.model_validate(state["settings"]), int(state["seed"]))
        obj.columns_ = list(state["columns"])
        obj.value_labels_ = dict(state["value_labels"])
        obj._restore(state)
        return obj


def require_columns(frame: FeatureFrame, columns: Sequence[str]) -> None:
    """Refuse a frame that lacks a column the fitted model reads."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"the risk model was fitted with column(s) {missing} that this feature table "
            f"does not have; build the features the same way as for fitting"
        )


# ---------------------------------------------------------------------------- the 0-100 scale


# Grid points of the risk scales: a percentile to 0.1.
SCALE_POINTS = 1001


def percent_scale(values: FloatArray) -> TrainingDistribution:
    """The training distribution a risk value is placed in by its mid-rank (`midrank`).

    Example:
        >>> scale = percent_scale(np.array([0.0, 0.0, 0.0, 1.0, 2.0]))
        >>> [round(float(v)) for v in scale.midrank(np.array([0.0, 2.0, 5.0]))]
        [30, 90, 100]
    """
    return TrainingDistribution.on_grid(values, SCALE_POINTS, "inverted_cdf")


# ---------------------------------------------------------------------------- bands and reasons


def assign_bands(
    scores: FloatArray, bands: Sequence[RiskBand]
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """The band (the last whose min_score the score reaches) and its action, per customer."""
    cuts = np.array([b.min_score for b in bands], dtype=np.float64)
    index = np.searchsorted(cuts, scores, side="right") - 1
    index = np.clip(index, 0, len(bands) - 1)
    names = np.array([b.name for b in bands], dtype=object)
    actions = np.array([b.action for b in bands], dtype=object)
    return names[index], actions[index]


def band_counts(bands: npt.NDArray[np.object_], settings: RiskSettings) -> dict[str, int]:
    return {b.name: int(np.sum(bands == b.name)) for b in settings.bands}


def describe_value(
    column: str | None, name: str, value: float, labels: ValueLabels | None = None
) -> str:
    """A factor's value in plain words: the source's words for a coded column, else the
    column's unit when the factor is one column."""
    key = column or name
    if (
        value_label(labels, key, value) is None
        and feature_unit(key) == "as given"
        and math.isfinite(value)
        and float(value).is_integer()
        and abs(value) < 1e6
    ):
        return f"{int(value)}"
    return format_value(key, value, labels)


PhraseMaker = Callable[[int, npt.NDArray[np.intp]], Sequence[str]]


def reason_strings(pushes: FloatArray, phrases_for: PhraseMaker) -> npt.NDArray[np.object_]:
    """Join the phrases of the (up to three) factors with the largest positive push per row.

    `pushes[i, j]` is how much factor j raised customer i's risk (<= 0: it did not);
    `phrases_for(j, rows)` gives the plain-words text of factor j for those customers. It is
    asked only for the customers whose reasons name factor j, so text is built for at most
    three factors per customer instead of for every factor.

    Example:
        >>> pushes = np.array([[2.0, 5.0], [-1.0, 0.0]])
        >>> reason_strings(pushes, lambda j, rows: [f"f{j} row {i}" for i in rows]).tolist()
        ['f1 row 0; f0 row 0', '']
    """
    n, k = pushes.shape
    out = np.full(n, "", dtype=object)
    if k == 0:
        return out
    # stable order: the largest push first, ties by factor order; pushes <= 0 sort last
    order = np.argsort(-np.where(pushes > 0, pushes, -np.inf), axis=1, kind="stable")
    top = order[:, :MAX_REASONS]
    named = np.take_along_axis(pushes, top, axis=1) > 0  # a prefix of each row
    texts = np.full(top.shape, "", dtype=object)
    for j in range(k):
        slots = named & (top == j)  # at most one slot per row
        rows = np.nonzero(slots.any(axis=1))[0]
        if rows.size:
            texts[slots] = np.asarray(list(phrases_for(j, rows)), dtype=object)
    for i in np.nonzero(named[:, 0])[0]:
        out[i] = "; ".join(texts[i, : int(named[i].sum())])
    return out


def factor_phrases(
    label: str,
    column: str | None,
    name: str,
    values: FloatArray,
    percentiles: FloatArray,
    labels: ValueLabels | None = None,
) -> list[str]:
    """ "<label> <value>, <population phrase>" for every customer (computed once per value)."""
    cache: dict[tuple[float, float], str] = {}
    out = []
    for v, p in zip(values.tolist(), percentiles.tolist(), strict=True):
        key = (v, p)
        text = cache.get(key)
        if text is None:
            if math.isnan(v):
                text = f"{label} missing"
            else:
                words = describe_value(column, name, v, labels)
                text = f"{label} {words}, {population_phrase(p)}"
            cache[key] = text
        out.append(text)
    return out


def score_summary(scores: FloatArray) -> dict[str, float]:
    """Quantiles of the score at fit time, for the report."""
    q = np.percentile(scores, [10, 25, 50, 75, 90])
    return {f"p{p}": round(float(v), 4) for p, v in zip((10, 25, 50, 75, 90), q, strict=True)}
