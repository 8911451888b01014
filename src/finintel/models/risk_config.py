"""Settings of the risk score: mode, risk factors (direction and weight), bands and actions.

Plain pydantic, no scikit-learn: the TOML config is validated without the `models` extra.

Example:
    >>> RiskSettings().bands[-1].name
    'Critical'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskFactorSpec(_Strict):
    """One declared risk factor: a SQL expression over feature columns, its direction, weight."""

    name: str
    label: str  # plain words used in reasons, e.g. "debt-to-income"
    sql: str  # e.g. "debt_to_income" or "balance_min / nullif(annual_income / 12, 0)"
    direction: Literal["higher_is_riskier", "lower_is_riskier"] = "higher_is_riskier"
    weight: float = Field(default=1.0, gt=0)


class RiskBand(_Strict):
    """A band starts at `min_score` (inclusive) and carries a recommended action."""

    name: str
    min_score: float = Field(ge=0, le=100)
    action: str


DEFAULT_BANDS = (
    RiskBand(name="Low", min_score=0, action="no action"),
    RiskBand(name="Medium", min_score=50, action="monitor"),
    RiskBand(name="High", min_score=75, action="raise an alert"),
    RiskBand(name="Critical", min_score=90, action="manual review"),
)


class RiskSettings(_Strict):
    """How the risk score is built. `mode = "auto"` is supervised exactly when labels exist."""

    mode: Literal["auto", "unsupervised", "supervised"] = "auto"
    factors: list[RiskFactorSpec] | None = None  # None: the built-in factor library
    bands: list[RiskBand] = Field(default_factory=lambda: list(DEFAULT_BANDS))
    cv_folds: int = Field(default=5, ge=2, le=20)

    @model_validator(mode="after")
    def _bands_ordered(self) -> RiskSettings:
        cuts = [b.min_score for b in self.bands]
        if not cuts or cuts[0] != 0 or cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError("risk bands need strictly increasing min_score starting at 0")
        return self
