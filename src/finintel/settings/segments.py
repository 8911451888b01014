"""Settings of segmentation: features, the k range or a fixed k, sampling, persona rules.

Plain pydantic, no scikit-learn: the TOML config (`[segments]`) is validated without the
`models` extra. `persona_rules = None` and `playbook = None` mean the built-in libraries below
(`DEFAULT_PERSONA_RULES`, `DEFAULT_PLAYBOOK`); a list replaces them. See `docs/segments.md`.

Example:
    >>> SegmentSettings().k_max
    10
    >>> [r.name for r in DEFAULT_PERSONA_RULES][:3]
    ['Loan-heavy', 'Wealthy inactives', 'Young starters']
    >>> PersonaRule(name="Savers", conditions={"wealth": "high"}).conditions
    {'wealth': 'high'}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from finintel.settings._strict import Strict

Level = Literal["high", "low", "average"]


class PersonaRule(Strict):
    """A named persona: a segment matches when its centroid meets every condition.

    A condition names a feature column or a concept (see `CONCEPTS` in `models/personas.py`,
    e.g. "activity" = transactions, debits, active months, purchase counts) and a level:
    "high" (at least `persona_threshold` robust z above the population median), "low" (at
    least that far below) or "average" (closer than that). A rule whose features are all
    missing from the segmentation columns is skipped.
    """

    name: str = Field(min_length=1)
    description: str = ""
    actions: list[str] = Field(default_factory=list)
    conditions: dict[str, Level] = Field(min_length=1)


class PlaybookEntry(Strict):
    """An action recommended for any segment whose feature or concept is at `level`."""

    concept: str
    level: Level
    action: str


DEFAULT_PERSONA_RULES: tuple[PersonaRule, ...] = (
    PersonaRule(
        name="Loan-heavy",
        description="Carry much more debt than most customers, with several loans.",
        actions=["risk monitoring of repayments", "offer debt consolidation"],
        conditions={"debt": "high"},
    ),
    PersonaRule(
        name="Wealthy inactives",
        description="High balances or income, but use the account far less than most.",
        actions=["wealth management and investment cross-sell", "reactivation campaign"],
        conditions={"wealth": "high", "activity": "low"},
    ),
    PersonaRule(
        name="Young starters",
        description="Young customers with low income and a short relationship so far.",
        actions=["starter products and digital onboarding", "build loyalty early"],
        conditions={"age": "low", "income": "low", "tenure": "low"},
    ),
    PersonaRule(
        name="Most active",
        description="Transact much more often than most customers.",
        actions=["rewards and card cross-sell", "premium account upgrade"],
        conditions={"activity": "high"},
    ),
    PersonaRule(
        name="Cash and branch users",
        description="Use ATMs and branches and pay in cash far more than most customers.",
        actions=["digital banking onboarding with branch support", "review cash-handling fees"],
        conditions={"cash_and_branch": "high"},
    ),
    PersonaRule(
        name="Cash-advance users",
        description="Draw cash advances on the card far more than most card holders.",
        actions=["offer a lower-cost instalment loan", "risk monitoring"],
        conditions={"cash_advance": "high"},
    ),
    PersonaRule(
        name="Cash-advance only",
        description="Use the card for cash advances and hardly for purchases.",
        actions=["offer a personal loan or overdraft instead", "purchase incentives"],
        conditions={"cash_advance": "high", "card_spend": "low"},
    ),
    PersonaRule(
        name="Big spenders",
        description="Spend much more than most card holders, often in single large purchases.",
        actions=["premium card upgrade", "rewards and travel benefits"],
        conditions={"card_spend": "high", "activity": "high"},
    ),
    PersonaRule(
        name="Full-payment transactors",
        description="Use the card for purchases and pay the balance in full.",
        actions=["rewards for card usage", "cross-sell savings products"],
        conditions={"full_payment": "high", "card_spend": "high"},
    ),
    PersonaRule(
        name="Instalment buyers",
        description="Buy mostly in instalments, regularly.",
        actions=["instalment offers at partner merchants", "credit limit review"],
        conditions={"instalments": "high"},
    ),
    PersonaRule(
        name="Revolvers",
        description="Carry a high balance from month to month and rarely pay it in full.",
        actions=["balance-transfer or instalment offer", "risk monitoring"],
        conditions={"balance": "high", "full_payment": "low"},
    ),
    PersonaRule(
        name="Inactive low-balance",
        description="Low balance and little card or account usage.",
        actions=["reactivation campaign", "usage incentives"],
        conditions={"activity": "low", "balance": "low"},
    ),
    PersonaRule(
        name="Steady earners",
        description="Regular income and average activity, balances and income.",
        actions=["savings and pension cross-sell", "keep informed of new products"],
        conditions={"activity": "average", "wealth": "average", "income": "average"},
    ),
)

DEFAULT_PLAYBOOK: tuple[PlaybookEntry, ...] = (
    PlaybookEntry(concept="debt", level="high", action="risk monitoring of repayments"),
    PlaybookEntry(concept="overdraft", level="high", action="overdraft and budgeting support"),
    PlaybookEntry(concept="risk_score", level="high", action="risk monitoring"),
    PlaybookEntry(concept="anomaly_score", level="high", action="review unusual activity"),
    PlaybookEntry(
        concept="cash_advance", level="high", action="offer a lower-cost instalment loan"
    ),
    PlaybookEntry(concept="activity", level="low", action="reactivation campaign"),
    PlaybookEntry(concept="activity", level="high", action="rewards and card cross-sell"),
    PlaybookEntry(concept="wealth", level="high", action="wealth management cross-sell"),
    PlaybookEntry(concept="spend", level="high", action="premium card upgrade"),
    PlaybookEntry(concept="age", level="low", action="digital onboarding and starter products"),
)


class SegmentSettings(Strict):
    """`k` fixes the number of segments; otherwise it is chosen in [k_min, k_max] by evidence."""

    features: list[str] | None = None  # None: the documented behavioural default set
    k: int | None = Field(default=None, ge=2)
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=10, ge=2)
    # With no stable k in [k_min, k_max], this many segments (clamped to the range) are shown,
    # flagged as a partition rather than a structure in the data.
    fallback_k: int = Field(default=3, ge=2)
    # K-Means is fitted on at most this many customers (a seeded random sample); all are assigned.
    sample_size: int = Field(default=20_000, ge=500)
    # Bootstrap stability is measured on at most this many of the sampled customers.
    evaluation_size: int = Field(default=10_000, ge=200)
    # Silhouette (reported evidence, O(n^2)) is measured on at most this many of them.
    silhouette_size: int = Field(default=3_000, ge=200)
    # K-Means restarts (k-means++) of the reference fit per k; the lowest inertia is kept.
    n_init: int = Field(default=10, ge=1)
    # Transformed values are clipped to +-clip robust z units, so a few extreme customers
    # cannot pull a centroid of their own.
    clip: float = Field(default=4.0, gt=0)
    # Default columns only: a column whose |Spearman| with a column earlier in the priority
    # order exceeds this is dropped as redundant.
    max_correlation: float = Field(default=0.9, gt=0, le=1)
    # Default columns only: a block of share columns (channel mix, category mix) weighs as
    # much as this many ordinary columns together, however many columns it has.
    mix_block_weight: float = Field(default=4.0, gt=0)
    min_segment_share: float = Field(default=0.02, ge=0, lt=0.5)
    min_stability: float = Field(default=0.9, ge=0, le=1)
    # A k counts as stable when the one-sided lower confidence bound of its mean bootstrap
    # agreement, at this confidence, reaches min_stability (see docs/segments.md).
    stability_confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # An extra segment must explain at least this share of the total spread (elbow rule).
    min_explained_gain: float = Field(default=0.04, ge=0, lt=1)
    # Resamples per k for the evidence table (at most bootstrap_rounds); a k the choice
    # depends on gets at least bootstrap_rounds, and more (in steps of screen_rounds, up to
    # bootstrap_max_rounds) while its confidence bounds cannot decide.
    screen_rounds: int = Field(default=10, ge=2)
    bootstrap_rounds: int = Field(default=20, ge=2)
    bootstrap_max_rounds: int = Field(default=60, ge=2)
    bootstrap_fraction: float = Field(default=0.8, gt=0.1, lt=1)
    # K-Means restarts per resample refit; an unstable elbow is retried with three times more.
    bootstrap_n_init: int = Field(default=3, ge=1)
    # A concept is "high"/"low" at this many robust z units from the population median.
    persona_threshold: float = Field(default=0.5, gt=0)
    persona_rules: list[PersonaRule] | None = None  # None: DEFAULT_PERSONA_RULES
    playbook: list[PlaybookEntry] | None = None  # None: DEFAULT_PLAYBOOK

    @model_validator(mode="after")
    def _range(self) -> SegmentSettings:
        if self.k_min > self.k_max:
            raise ValueError("segments.k_min must not exceed segments.k_max")
        if self.persona_rules is not None:
            names = [r.name for r in self.persona_rules]
            if len(set(names)) != len(names):
                raise ValueError("segments.persona_rules must have unique names")
        return self

    def rules(self) -> list[PersonaRule]:
        """The persona rules in force: the configured list or the built-in library."""
        return list(DEFAULT_PERSONA_RULES if self.persona_rules is None else self.persona_rules)

    def actions_playbook(self) -> list[PlaybookEntry]:
        """The playbook in force: the configured list or the built-in one."""
        return list(DEFAULT_PLAYBOOK if self.playbook is None else self.playbook)
