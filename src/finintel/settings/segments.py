"""Settings of segmentation: features, the k range or a fixed k, sampling, persona rules.

Plain pydantic, no scikit-learn: the TOML config (`[segments]`) is validated without the
`models` extra. `persona_rules = None` and `playbook = None` mean the built-in libraries below
(`DEFAULT_PERSONA_RULES` with `RULE_ACTIONS`, and `DEFAULT_PLAYBOOKS`, both in the vocabulary of
`domain`); a list replaces them. See `docs/segments.md`.

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
Domain = Literal["neutral", "retail_bank", "cards", "retail"]
DOMAINS: tuple[Domain, ...] = ("neutral", "retail_bank", "cards", "retail")


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
        conditions={"debt": "high"},
    ),
    PersonaRule(
        name="Wealthy inactives",
        description="High balances or income, but use the account far less than most.",
        conditions={"wealth": "high", "activity": "low"},
    ),
    PersonaRule(
        name="Young starters",
        description="Young customers with low income and a short relationship so far.",
        conditions={"age": "low", "income": "low", "tenure": "low"},
    ),
    PersonaRule(
        name="Most active",
        description="Transact much more often than most customers.",
        conditions={"activity": "high"},
    ),
    PersonaRule(
        name="Cash and branch users",
        description="Use ATMs and branches and pay in cash far more than most customers.",
        conditions={"cash_and_branch": "high"},
    ),
    PersonaRule(
        name="Cash-advance users",
        description="Draw cash advances on the card far more than most card holders.",
        conditions={"cash_advance": "high"},
    ),
    PersonaRule(
        name="Cash-advance only",
        description="Use the card for cash advances and hardly for purchases.",
        conditions={"cash_advance": "high", "card_spend": "low"},
    ),
    PersonaRule(
        name="Big spenders",
        description="Spend much more than most card holders, often in single large purchases.",
        conditions={"card_spend": "high", "activity": "high"},
    ),
    PersonaRule(
        name="Full-payment transactors",
        description="Use the card for purchases and pay the balance in full.",
        conditions={"full_payment": "high", "card_spend": "high"},
    ),
    PersonaRule(
        name="Instalment buyers",
        description="Buy mostly in instalments, regularly.",
        conditions={"instalments": "high"},
    ),
    PersonaRule(
        name="Revolvers",
        description="Carry a high balance from month to month and rarely pay it in full.",
        conditions={"balance": "high", "full_payment": "low"},
    ),
    PersonaRule(
        name="Inactive low-balance",
        description="Low balance and little card or account usage.",
        conditions={"activity": "low", "balance": "low"},
    ),
    PersonaRule(
        name="Steady earners",
        description="Regular income and average activity, balances and income.",
        conditions={"activity": "average", "wealth": "average", "income": "average"},
    ),
)

# The recommended actions of the built-in rules, per domain (`SegmentSettings.domain`). The
# neutral vocabulary proposes no product: it says what to look at, not what to sell.
RULE_ACTIONS: dict[Domain, dict[str, tuple[str, ...]]] = {
    "neutral": {
        "Loan-heavy": ("risk monitoring of repayments", "review this group's needs"),
        "Wealthy inactives": ("review why this group uses the service so little",),
        "Young starters": ("review this group's needs as new customers",),
        "Most active": ("review this group's needs: it uses the service most",),
        "Cash and branch users": ("review how this group prefers to be served",),
        "Cash-advance users": ("review this group's use of cash advances", "risk monitoring"),
        "Cash-advance only": ("review this group's use of cash advances",),
        "Big spenders": ("review this group's needs: it spends the most",),
        "Full-payment transactors": ("review this group's needs",),
        "Instalment buyers": ("review this group's use of instalments",),
        "Revolvers": ("risk monitoring of repayments",),
        "Inactive low-balance": ("review why this group uses the service so little",),
        "Steady earners": ("no specific action",),
    },
    "retail_bank": {
        "Loan-heavy": ("risk monitoring of repayments", "offer debt consolidation"),
        "Wealthy inactives": (
            "wealth management and investment cross-sell",
            "reactivation campaign",
        ),
        "Young starters": ("starter products and digital onboarding", "build loyalty early"),
        "Most active": ("rewards and card cross-sell", "premium account upgrade"),
        "Cash and branch users": (
            "digital banking onboarding with branch support",
            "review cash-handling fees",
        ),
        "Cash-advance users": ("offer a lower-cost instalment loan", "risk monitoring"),
        "Cash-advance only": ("offer a personal loan or overdraft instead", "purchase incentives"),
        "Big spenders": ("premium card upgrade", "rewards and travel benefits"),
        "Full-payment transactors": ("rewards for card usage", "cross-sell savings products"),
        "Instalment buyers": ("instalment offers at partner merchants", "credit limit review"),
        "Revolvers": ("balance-transfer or instalment offer", "risk monitoring"),
        "Inactive low-balance": ("reactivation campaign", "usage incentives"),
        "Steady earners": ("savings and pension cross-sell", "keep informed of new products"),
    },
    "cards": {
        "Loan-heavy": ("risk monitoring of repayments", "credit limit review"),
        "Wealthy inactives": ("card usage incentives", "premium card offer"),
        "Young starters": ("starter card with a low limit", "digital card onboarding"),
        "Most active": ("rewards programme upgrade", "premium card upgrade"),
        "Cash and branch users": ("contactless and online card payment onboarding",),
        "Cash-advance users": ("offer a lower-cost instalment plan", "risk monitoring"),
        "Cash-advance only": (
            "offer an instalment plan instead of cash advances",
            "purchase incentives",
        ),
        "Big spenders": ("premium card upgrade", "rewards and travel benefits"),
        "Full-payment transactors": ("rewards for card usage", "credit limit increase"),
        "Instalment buyers": ("instalment offers at partner merchants", "credit limit review"),
        "Revolvers": ("balance-transfer or instalment offer", "risk monitoring"),
        "Inactive low-balance": ("card reactivation campaign", "usage incentives"),
        "Steady earners": ("keep informed of card benefits",),
    },
    "retail": {
        "Loan-heavy": ("risk monitoring of payments",),
        "Wealthy inactives": ("win-back campaign",),
        "Young starters": ("welcome offer and first-purchase follow-up",),
        "Most active": (
            "loyalty programme: top tier and early access",
            "personalised recommendations",
        ),
        "Cash and branch users": ("in-store service and click-and-collect",),
        "Cash-advance users": ("risk monitoring of payments",),
        "Cash-advance only": ("risk monitoring of payments",),
        "Big spenders": ("VIP service and early access", "personalised recommendations"),
        "Full-payment transactors": ("loyalty points for regular purchases",),
        "Instalment buyers": ("pay-later offers at checkout",),
        "Revolvers": ("risk monitoring of payments",),
        "Inactive low-balance": ("win-back campaign", "purchase reminders"),
        "Steady earners": ("keep informed of new arrivals",),
    },
}


def _playbook(*entries: tuple[str, Level, str]) -> tuple[PlaybookEntry, ...]:
    return tuple(PlaybookEntry(concept=c, level=lv, action=a) for c, lv, a in entries)


# Actions for any segment whose concept is at a level, per domain: a segment named by its
# traits (or by a rule without actions) takes the actions of every matching entry.
DEFAULT_PLAYBOOKS: dict[Domain, tuple[PlaybookEntry, ...]] = {
    "neutral": _playbook(
        ("debt", "high", "risk monitoring of repayments"),
        ("overdraft", "high", "review why this group often runs short of funds"),
        ("risk_score", "high", "risk monitoring"),
        ("anomaly_score", "high", "review unusual activity"),
        ("cash_advance", "high", "review this group's use of cash advances"),
        ("activity", "low", "review why this group uses the service so little"),
        ("activity", "high", "review this group's needs: it uses the service most"),
        ("wealth", "high", "review this group's needs: it holds the most money"),
        ("spend", "high", "review this group's needs: it spends the most"),
        ("age", "low", "review this group's needs as younger customers"),
    ),
    "retail_bank": _playbook(
        ("debt", "high", "risk monitoring of repayments"),
        ("overdraft", "high", "overdraft and budgeting support"),
        ("risk_score", "high", "risk monitoring"),
        ("anomaly_score", "high", "review unusual activity"),
        ("cash_advance", "high", "offer a lower-cost instalment loan"),
        ("activity", "low", "reactivation campaign"),
        ("activity", "high", "rewards and card cross-sell"),
        ("wealth", "high", "wealth management cross-sell"),
        ("spend", "high", "premium card upgrade"),
        ("age", "low", "digital onboarding and starter products"),
    ),
    "cards": _playbook(
        ("debt", "high", "risk monitoring of repayments"),
        ("risk_score", "high", "risk monitoring"),
        ("anomaly_score", "high", "review unusual activity"),
        ("cash_advance", "high", "offer a lower-cost instalment plan"),
        ("full_payment", "low", "balance-transfer or instalment offer"),
        ("instalments", "high", "instalment offers at partner merchants"),
        ("activity", "low", "card usage incentives"),
        ("activity", "high", "rewards programme upgrade"),
        ("card_spend", "high", "premium card upgrade"),
        ("spend", "high", "premium card upgrade"),
        ("age", "low", "starter card and digital onboarding"),
    ),
    "retail": _playbook(
        ("risk_score", "high", "risk monitoring of payments"),
        ("anomaly_score", "high", "review unusual activity"),
        ("activity", "low", "win-back campaign"),
        ("activity", "high", "loyalty programme: top tier"),
        ("spend", "high", "VIP service and personalised recommendations"),
        ("age", "low", "welcome offer for new customers"),
    ),
}
# The retail bank's playbook, the one used before domains existed.
DEFAULT_PLAYBOOK: tuple[PlaybookEntry, ...] = DEFAULT_PLAYBOOKS["retail_bank"]


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
    # ... and, to name a segment or describe it, the segment's typical value (its median; the
    # share of customers for a flag) must also differ from the population's by at least this
    # share of the population's value (0.25: 1.1 vs 0.9 months does not count).
    persona_min_relative: float = Field(default=0.25, ge=0)
    # The vocabulary of recommended actions: "neutral" proposes no product. The pipeline sets
    # it from the config's top-level `domain` (`FinintelConfig.domain`).
    domain: Domain = "neutral"
    # Coded columns, never described as quantities: unordered category codes (the pipeline's
    # `[risk] categorical_columns`) and the source's words per code of value-mapped columns
    # (`FinintelConfig.value_labels()`). Columns holding only 0 and 1 are flags in any case.
    code_columns: list[str] = Field(default_factory=list)
    value_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
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
        """The playbook in force: the configured list or the built-in one of the domain."""
        return list(DEFAULT_PLAYBOOKS[self.domain] if self.playbook is None else self.playbook)

    def rule_actions(self, rule: PersonaRule) -> list[str]:
        """A rule's own actions, else the domain's actions for a built-in rule's name.

        Example:
            >>> rule = DEFAULT_PERSONA_RULES[0]
            >>> SegmentSettings(domain="retail_bank").rule_actions(rule)
            ['risk monitoring of repayments', 'offer debt consolidation']
            >>> SegmentSettings().rule_actions(rule)
            ['risk monitoring of repayments', "review this group's needs"]
        """
        return list(rule.actions or RULE_ACTIONS[self.domain].get(rule.name, ()))
