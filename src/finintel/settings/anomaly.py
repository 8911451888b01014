"""Settings of anomaly detection: customer ensemble and transaction alerts.

Plain pydantic, no scikit-learn: the TOML config (`[anomaly]` and `[anomaly.transactions]`)
is validated without the `models` extra.

Example:
    >>> AnomalySettings().expected_rate
    0.01
    >>> AnomalySettings().transactions.burst_window_minutes
    60
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from finintel.settings._strict import Strict


class TransactionAlertSettings(Strict):
    """How transactions are compared with their customer's history and segment.

    `alert_budget` (a number of transactions) wins over `expected_rate` when both are given.
    """

    expected_rate: float = Field(default=0.005, gt=0, le=0.5)
    alert_budget: int | None = Field(default=None, ge=1)
    # prior transactions a customer needs before "unusual for this customer" is judged
    min_history: int = Field(default=3, ge=1)
    burst_window_minutes: int = Field(default=60, ge=1)
    hour_bucket_hours: int = Field(default=3, ge=1, le=12)
    # component weights in the alert score (0 switches a component off)
    weight_amount: float = Field(default=1.0, ge=0)
    weight_segment_amount: float = Field(default=1.0, ge=0)
    weight_category_amount: float = Field(default=1.0, ge=0)
    weight_hour: float = Field(default=1.0, ge=0)
    weight_new_channel: float = Field(default=1.0, ge=0)
    weight_new_category: float = Field(default=1.0, ge=0)
    weight_burst: float = Field(default=1.0, ge=0)


class AnomalySettings(Strict):
    """`alert_budget` (a number of customers) wins over `expected_rate` when both are given."""

    features: list[str] | None = None  # None: the sustained-behaviour set (docs/anomalies.md)
    expected_rate: float = Field(default=0.01, gt=0, le=0.5)
    alert_budget: int | None = Field(default=None, ge=1)
    n_estimators: int = Field(default=300, ge=10)
    max_samples: int = Field(default=2048, ge=16)
    # how detector percentiles combine: "auto" chooses at fit time between the mean and one
    # detector alone (`finintel.models.combination.choose_combination`; docs/anomalies.md)
    combine: Literal["auto", "max", "mean"] = "auto"
    # transformed features are clipped to +-clip robust SDs before the detectors see them
    clip: float | None = Field(default=10.0, gt=0)
    reason_count: int = Field(default=3, ge=1, le=10)
    transactions: TransactionAlertSettings = Field(default_factory=TransactionAlertSettings)


def alert_count(n_rows: int, expected_rate: float, budget: int | None) -> int:
    """How many training rows a threshold should flag: the budget wins, else the rate.

    Example:
        >>> alert_count(6000, 0.01, None), alert_count(6000, 0.01, 25)
        (60, 25)
    """
    wanted = budget if budget is not None else math.ceil(expected_rate * n_rows)
    return max(1, min(int(wanted), n_rows))
