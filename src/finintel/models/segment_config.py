"""Settings of segmentation: features, the k range or a fixed k, sampling, persona rules.

Example:
    >>> SegmentSettings().k_max
    10
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentSettings(_Strict):
    """`k` fixes the number of segments; otherwise it is chosen in [k_min, k_max] by evidence."""

    features: list[str] | None = None  # None: the documented behavioural default set
    k: int | None = Field(default=None, ge=2)
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=10, ge=2)
    sample_size: int = Field(default=20_000, ge=500)
    min_segment_share: float = Field(default=0.02, ge=0, lt=0.5)
    min_stability: float = Field(default=0.9, ge=0, le=1)
    bootstrap_rounds: int = Field(default=10, ge=2)

    @model_validator(mode="after")
    def _range(self) -> SegmentSettings:
        if self.k_min > self.k_max:
            raise ValueError("segments.k_min must not exceed segments.k_max")
        return self
