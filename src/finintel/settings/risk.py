"""Settings of the risk score: mode, risk factors (direction and weight), bands and actions.

Plain pydantic, no scikit-learn: the TOML config is validated without the `models` extra.
`docs/risk.md` explains every setting and its default.

Example:
    >>> RiskSettings().bands[-1].name
    'Critical'
    >>> RiskFactorSpec(name="dti", label="debt-to-income", sql="debt_to_income").weight
    1.0
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from finintel.settings._strict import Strict


class RiskFactorSpec(Strict):
    """One declared risk factor: a SQL expression over feature columns, its direction, weight.

    `requires` lists columns that must exist besides those the expression reads (they tell what
    kind of data it is, e.g. card statements); `excluded_by` lists columns whose presence means
    a better measure of the same thing is available, so this factor is left out.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str  # plain words used in reasons, e.g. "debt-to-income"
    sql: str  # e.g. "debt_to_income" or "balance_min / nullif(annual_income / 12, 0)"
    direction: Literal["higher_is_riskier", "lower_is_riskier"] = "higher_is_riskier"
    weight: float = Field(default=1.0, gt=0)
    requires: list[str] = Field(default_factory=list)
    excluded_by: list[str] = Field(default_factory=list)


class RiskBand(Strict):
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


class RiskSettings(Strict):
    """How the risk score is built. `mode = "auto"` is supervised exactly when labels exist.

    - `enabled`: false skips the risk score (data for anomaly detection or segments only).

    - `factors`: the declared risk factors; None uses the built-in library
      (`finintel.models.risk_factors.BUILTIN_FACTORS`).
    - `exclude_columns`: feature columns never used by either mode (e.g. protected attributes).
    - `categorical_columns`: feature columns holding codes of unordered categories (e.g. from a
      value map in the config: loan purpose 1..10). The scorecard groups their categories by
      default rate instead of binning them as numbers, its baseline one-hot encodes them, and
      no risk factor may read them (a code's size means nothing).
    - `bands`: score cut points (a band starts at its `min_score`) and recommended actions.
    - `cv_folds`: stratified folds of the supervised cross-validation.
    - `cv_repeats`: how often the folds are drawn anew and the cross-validation repeated (the
      reported numbers average all repeats); "auto" repeats 3 times up to 20,000 labelled
      training rows and once above.
    - `min_bads`, `min_goods`: the fewest labelled defaults / non-defaults a scorecard accepts.
    - `leakage_auc`: in-sample ROC-AUC at or above which a single feature or a depth-3 decision
      tree separating the label makes the label refused as computed from the inputs.
    - `bin_trend`: the shape the default rate may take across a numeric variable's bins:
      "auto_heuristic" (rising, falling, or one peak or valley, e.g. young and old applicants
      both safer or both riskier than the middle), "auto_asc_desc" (strictly rising or
      falling), "auto" (like "auto_heuristic", chosen by optbinning's trend classifier).
    - `min_iv`: information value a variable needs to enter the scorecard.
    - `max_train_rows`: labelled rows the scorecard is fitted on at most (a stratified sample).
    """

    enabled: bool = True
    mode: Literal["auto", "unsupervised", "supervised"] = "auto"
    factors: list[RiskFactorSpec] | None = None  # None: the built-in factor library
    exclude_columns: list[str] = Field(default_factory=list)
    categorical_columns: list[str] = Field(default_factory=list)
    bands: list[RiskBand] = Field(default_factory=lambda: list(DEFAULT_BANDS))
    cv_folds: int = Field(default=5, ge=2, le=20)
    cv_repeats: Literal["auto"] | Annotated[int, Field(ge=1, le=10)] = "auto"
    min_bads: int = Field(default=20, ge=2)
    min_goods: int = Field(default=20, ge=2)
    leakage_auc: float = Field(default=0.999, gt=0.5, le=1.0)
    bin_trend: Literal["auto_heuristic", "auto_asc_desc", "auto"] = "auto_heuristic"
    min_iv: float = Field(default=0.02, ge=0)
    max_train_rows: int = Field(default=200_000, ge=100)

    @model_validator(mode="after")
    def _bands_ordered(self) -> RiskSettings:
        cuts = [b.min_score for b in self.bands]
        if not cuts or cuts[0] != 0 or cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError("risk bands need strictly increasing min_score starting at 0")
        return self

    @model_validator(mode="after")
    def _categorical_unique(self) -> RiskSettings:
        if len(set(self.categorical_columns)) != len(self.categorical_columns):
            raise ValueError("risk categorical_columns must not repeat a column")
        return self

    @model_validator(mode="after")
    def _factor_names_unique(self) -> RiskSettings:
        names = [f.name for f in self.factors or []]
        if len(set(names)) != len(names):
            raise ValueError("risk factor names must be unique")
        return self
