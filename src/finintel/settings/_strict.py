"""The base of every settings model: unknown keys are an error and settings never change.

Example:
    >>> class Demo(Strict):
    ...     size: int = 1
    >>> Demo(size=2).size
    2
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A frozen pydantic model that refuses keys it does not know (a typo is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
