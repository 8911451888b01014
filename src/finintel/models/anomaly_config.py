"""Settings of anomaly detection: features, how many customers to flag, detector sizes.

Example:
    >>> AnomalySettings().expected_rate
    0.01
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnomalySettings(_Strict):
    """`alert_budget` (a number of customers) wins over `expected_rate` when both are given."""

    features: list[str] | None = None  # None: every numeric feature
    expected_rate: float = Field(default=0.01, gt=0, le=0.5)
    alert_budget: int | None = Field(default=None, ge=1)
    n_estimators: int = Field(default=300, ge=10)
    max_samples: int = Field(default=2048, ge=16)
