"""Settings of the risk score: mode, risk factors (direction and weight), roles, bands, actions.

Plain pydantic, no scikit-learn: the TOML config is validated without the `models` extra.
`docs/risk.md` explains every setting and its default.

Example:
    >>> RiskSettings().bands[-1].name
    'Critical'
    >>> RiskFactorSpec(name="dti", label="debt-to-income", sql="debt_to_income").weight
    1.0
    >>> RiskSettings(roles={"pay_0": "arrears_status"}).roles
    {'pay_0': 'arrears_status'}
    >>> ROLES["payment"].direction is None  # a part of a ratio only
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from finintel.settings._strict import Strict

Direction = Literal["higher_is_riskier", "lower_is_riskier"]
HIGHER: Direction = "higher_is_riskier"
LOWER: Direction = "lower_is_riskier"


@dataclass(frozen=True)
class RiskRole:
    """What a column assigned to a role means and how it enters the unsupervised score.

    `direction` None: the role is a part of derived ratios only (a limit, a bill) and never a
    factor by itself. `aggregate` combines several columns of one role per customer: "sum"
    for parts of one whole (two asset columns, several kinds of delinquency), "mean" for
    repeats of one quantity (six monthly bills, six monthly repayment statuses). `weight` is
    the factor's prior weight in the composite: payment history and a credit score 2,
    secondary signals (amount, term, income, assets, inquiries...) 0.5.
    """

    name: str
    meaning: str
    label: str  # words used in reasons
    direction: Direction | None
    aggregate: Literal["mean", "sum"]
    weight: float = 1.0


ROLES: dict[str, RiskRole] = {
    r.name: r
    for r in (
        RiskRole(
            "arrears_status",
            "months past due, or a repayment status code (higher = further behind)",
            "repayment status",
            HIGHER,
            "mean",
            2.0,
        ),
        RiskRole(
            "delinquencies",
            "count of past delinquencies, defaults or derogatory public records",
            "past delinquencies",
            HIGHER,
            "sum",
            2.0,
        ),
        RiskRole(
            "inquiries",
            "recent credit inquiries or applications",
            "credit inquiries",
            HIGHER,
            "sum",
            0.5,
        ),
        RiskRole(
            "utilisation",
            "share of a credit limit in use (a ratio column)",
            "credit utilisation",
            HIGHER,
            "mean",
        ),
        RiskRole(
            "payment_ratio",
            "payment as a share of the bill or of the minimum due (a ratio column)",
            "payments as a share of the bill",
            LOWER,
            "mean",
        ),
        RiskRole(
            "debt_to_income",
            "debt divided by income (a ratio column)",
            "debt-to-income",
            HIGHER,
            "mean",
        ),
        RiskRole(
            "credit_score",
            "bureau or internal credit score (higher = safer)",
            "credit score",
            LOWER,
            "mean",
            2.0,
        ),
        RiskRole(
            "interest_rate",
            "interest rate charged (the lender's price of the risk)",
            "interest rate",
            HIGHER,
            "mean",
        ),
        RiskRole(
            "loan_amount", "amount borrowed or applied for", "loan amount", HIGHER, "sum", 0.5
        ),
        RiskRole("term", "loan term or duration", "loan term", HIGHER, "mean", 0.5),
        RiskRole("instalment", "periodic instalment due", "instalment", HIGHER, "sum", 0.5),
        RiskRole("assets", "savings, deposits or property owned", "assets", LOWER, "sum", 0.5),
        RiskRole(
            "income",
            "income as an amount, not its logarithm (any period, the same for every customer)",
            "income",
            LOWER,
            "sum",
            0.5,
        ),
        RiskRole(
            "deposit_balance",
            "money held on accounts (negative when overdrawn)",
            "account balance",
            LOWER,
            "sum",
        ),
        RiskRole("debt", "outstanding debt", "debt", HIGHER, "sum", 0.5),
        RiskRole(
            "age_of_credit",
            "length of the credit history",
            "age of credit history",
            LOWER,
            "mean",
            0.5,
        ),
        RiskRole(
            "employment_length", "time in employment", "employment length", LOWER, "mean", 0.5
        ),
        RiskRole(
            "balance", "amount owed on a credit line (a card balance)", "balance owed", None, "sum"
        ),
        RiskRole("limit", "credit limit granted", "credit limit", None, "sum"),
        RiskRole("bill", "statement (bill) amount", "bill", None, "mean"),
        RiskRole("payment", "amount paid", "payment", None, "mean"),
        RiskRole("minimum_due", "minimum payment due", "minimum due", None, "mean"),
        RiskRole(
            "collateral_value",
            "value of the goods or property the loan finances",
            "collateral value",
            None,
            "sum",
        ),
        RiskRole("expenses", "regular living expenses", "expenses", None, "sum"),
    )
}


class RiskFactorSpec(Strict):
    """One declared risk factor: a SQL expression over feature columns, its direction, weight.

    `requires` lists columns that must exist besides those the expression reads (they tell what
    kind of data it is, e.g. card statements); `excluded_by` lists columns whose presence means
    a better measure of the same thing is available, so this factor is left out.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str  # plain words used in reasons, e.g. "debt-to-income"
    sql: str  # e.g. "debt_to_income" or "balance_min / nullif(annual_income / 12, 0)"
    direction: Direction = "higher_is_riskier"
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


# Attributes a supervised model leaves out unless `allow_protected` lists them.
DEFAULT_PROTECTED = ("age", "gender", "sex", "marital_status")


class RiskSettings(Strict):
    """How the risk score is built. `mode = "auto"` is supervised exactly when labels exist.

    - `enabled`: false skips the risk score (data for anomaly detection or segments only).

    - `factors`: the declared risk factors; None uses the built-in library
      (`finintel.models.risk_factors.BUILTIN_FACTORS`).
    - `roles`: feature column -> role (`ROLES`): what a column means, so the unsupervised
      score uses it with the role's direction and derives ratios (balance / limit, payment /
      bill, debt / income...) from the parts present. Several columns may share a role.
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

    Supervised model choice (`finintel.models.supervised`):

    - `model`: "auto" fits the WoE scorecard, a regularised logistic regression and monotone
      gradient boosting on the same folds and delivers the scorecard when its cross-validated
      ROC-AUC is within `tolerance` of the best, else the best; "scorecard", "logistic" or
      "boosting" fits and delivers that one alone (still gated).
    - `tolerance`: how much cross-validated ROC-AUC the scorecard may give up for being a
      scorecard (default 0.01).
    - `min_cv_auc`: the gate: a model is delivered only when its cross-validated ROC-AUC is at
      least this (default 0.6) and clears 0.5 by more than its spread across folds, and its
      calibration slope is positive. Otherwise the run falls back to the unsupervised composite
      and says why, or stops when `require_supervised` is true.
    - `require_supervised`: stop (exit 2) instead of falling back.
    - `protected`: attributes never used by a supervised model unless listed in
      `allow_protected` (names of feature columns, case ignored); the report shows the score per
      protected group.
    - `min_bin_bads`: a group of at least this many defaults may form its own scorecard bin,
      however small (a rare but decisive event such as penalty interest).
    - `events_per_variable`: the scorecard keeps at most (defaults / this) variables.
    - `max_correlation`: of two scorecard variables whose WoE values correlate above this, the
      one with the lower information value is dropped.
    """

    enabled: bool = True
    mode: Literal["auto", "unsupervised", "supervised"] = "auto"
    factors: list[RiskFactorSpec] | None = None  # None: the built-in factor library
    roles: dict[str, str] = Field(default_factory=dict)  # feature column -> role
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
    model: Literal["auto", "scorecard", "logistic", "boosting"] = "auto"
    tolerance: float = Field(default=0.01, ge=0, le=0.5)
    min_cv_auc: float = Field(default=0.6, ge=0.5, le=1.0)
    require_supervised: bool = False
    protected: list[str] = Field(default_factory=lambda: list(DEFAULT_PROTECTED))
    allow_protected: list[str] = Field(default_factory=list)
    min_bin_bads: int = Field(default=10, ge=2)
    events_per_variable: float = Field(default=10.0, gt=0)
    max_correlation: float = Field(default=0.8, gt=0, le=1.0)

    @model_validator(mode="after")
    def _bands_ordered(self) -> RiskSettings:
        cuts = [b.min_score for b in self.bands]
        if not cuts or cuts[0] != 0 or cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError("risk bands need strictly increasing min_score starting at 0")
        return self

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, str]) -> dict[str, str]:
        unknown = sorted({r for r in roles.values() if r not in ROLES})
        if unknown:
            raise ValueError(
                f"unknown risk role(s) {', '.join(map(repr, unknown))}; "
                f"the roles are: {', '.join(ROLES)}"
            )
        lowered = [c.lower() for c in roles]
        if len(set(lowered)) != len(lowered):
            raise ValueError("risk roles name a column twice (column names ignore case)")
        return roles

    @model_validator(mode="after")
    def _roles_are_not_categories(self) -> RiskSettings:
        coded = {c.lower() for c in self.categorical_columns}
        both = [c for c in self.roles if c.lower() in coded]
        if both:
            raise ValueError(
                f"column(s) {both} are categorical_columns (unordered codes) and cannot have a "
                "risk role (a role orders the values)"
            )
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
