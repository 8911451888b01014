"""Persona naming: rules on concepts, skipped rules, unique names, fallbacks and the playbook;
the relative test, codes and flags, neutral names, and each domain's vocabulary."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from finintel.models.personas import (
    column_kind,
    concept_level,
    concept_z,
    name_segments,
    relative_difference,
    rule_strength,
)
from finintel.settings.segments import (
    DEFAULT_PERSONA_RULES,
    DEFAULT_PLAYBOOKS,
    DOMAINS,
    RULE_ACTIONS,
    PersonaRule,
    PlaybookEntry,
    SegmentSettings,
)

# Words that propose a product or a bank's service: the neutral vocabulary has none of them.
PRODUCT_WORDS = (
    "offer",
    "upgrade",
    "cross-sell",
    "campaign",
    "card",
    "loan",
    "account",
    "savings",
    "pension",
    "wealth management",
    "overdraft",
    "credit",
    "rewards",
    "premium",
    "loyalty",
    "instalment plan",
)
# Bank and card products a shop does not sell.
BANK_WORDS = ("card", "loan", "account", "savings", "pension", "wealth", "overdraft", "credit")

BANK = [
    {"tx_count": -2.0, "annual_income": 1.5, "balance_avg": 0.8, "loan_count": -0.3, "age": 1.2},
    {"tx_count": 1.1, "annual_income": 0.3, "balance_avg": 0.1, "loan_count": -0.2, "age": -0.6},
    {"tx_count": 0.4, "annual_income": -0.1, "balance_avg": -1.2, "loan_count": 2.5, "age": 0.1},
    {
        "tx_count": -0.6,
        "annual_income": -1.3,
        "balance_avg": -0.2,
        "loan_count": -0.4,
        "age": -1.4,
        "tenure_months": -1.0,
    },
    {"tx_count": 0.1, "annual_income": 0.0, "balance_avg": 0.2, "loan_count": -0.3, "age": 0.6},
]


def test_concepts_average_the_present_features() -> None:
    z = {"tx_count": 1.0, "active_months": 0.0, "annual_income": 2.0}
    assert concept_z("activity", z) == pytest.approx(0.5)
    assert concept_z("wealth", z) == pytest.approx(2.0)
    assert concept_z("annual_income", z) == 2.0  # a column is a concept of its own
    assert concept_z("debt", z) is None


def test_rule_strength_sums_margins_and_fails_on_any_condition() -> None:
    rule = PersonaRule(name="x", conditions={"wealth": "high", "activity": "low"})
    assert rule_strength(rule, {"annual_income": 1.5, "tx_count": -2.0}, 0.5) == pytest.approx(2.5)
    assert rule_strength(rule, {"annual_income": 1.5, "tx_count": -0.4}, 0.5) is None
    assert rule_strength(rule, {"annual_income": 1.5}, 0.5) is None  # activity unknown: skipped
    average = PersonaRule(name="y", conditions={"activity": "average"})
    assert rule_strength(average, {"tx_count": 0.2}, 0.5) == pytest.approx(0.3)
    assert rule_strength(average, {"tx_count": 0.5}, 0.5) is None


def test_bank_segments_get_the_builtin_names() -> None:
    personas = name_segments(BANK, SegmentSettings(domain="retail_bank"))
    assert [p.name for p in personas] == [
        "Wealthy inactives",
        "Most active",
        "Loan-heavy",
        "Young starters",
        "Steady earners",
    ]
    assert personas[2].actions == ["risk monitoring of repayments", "offer debt consolidation"]
    assert personas[0].rule == "Wealthy inactives"
    assert personas[0].traits[0] == "low transactions (-2.0 robust z)"


def test_cash_and_branch_users_are_named_from_the_channel_mix() -> None:
    segments = [
        {
            "channel_share_atm": 0.1,
            "channel_share_branch": 2.2,
            "annual_income": 1.7,
            "tx_count": -2,
        },
        {"channel_share_atm": 2.1, "channel_share_branch": 0.9, "category_spend_share_cash": 1.2},
        {"channel_share_atm": 0.3, "channel_share_branch": 0.2, "category_spend_share_cash": 0.3},
    ]
    personas = name_segments(segments, SegmentSettings(domain="retail_bank"))
    # the branch-loving wealthy segment keeps its stronger rule; the cash users get theirs
    assert [p.name for p in personas][:2] == ["Wealthy inactives", "Cash and branch users"]
    assert concept_z("cash_and_branch", segments[1]) == pytest.approx(1.4)
    assert "digital banking onboarding with branch support" in personas[1].actions
    assert personas[2].rule != "Cash and branch users"


def test_card_only_segments_skip_bank_rules() -> None:
    card = [
        {"cash_advance": 2.4, "purchases": 0.5, "purchases_frequency": 0.7, "account_balance": 0.5},
        {
            "cash_advance": 1.6,
            "purchases": -1.4,
            "purchases_frequency": -1.5,
            "account_balance": 0.2,
        },
        {
            "cash_advance": 0.1,
            "purchases": 1.2,
            "purchases_frequency": 1.3,
            "account_balance": -0.1,
        },
        {
            "cash_advance": 0.2,
            "purchases": -0.3,
            "purchases_frequency": -0.9,
            "account_balance": -1.1,
        },
    ]
    names = [p.name for p in name_segments(card, SegmentSettings())]
    assert names == [
        "Cash-advance users",
        "Cash-advance only",
        "Big spenders",
        "Inactive low-balance",
    ]


def test_names_are_unique_with_fallbacks() -> None:
    twins = [{"loan_count": 2.0}, {"loan_count": 1.5}, {"age": 0.1}]
    personas = name_segments(twins, SegmentSettings())
    assert personas[0].name == "Loan-heavy"
    # the second loan segment matches no free rule: named from its deviation
    assert personas[1].name == "High loans" and personas[1].rule is None
    assert personas[1].actions == ["risk monitoring of repayments"]
    assert personas[2].name == "Segment 3: close to the average customer"
    assert personas[2].actions == ["no specific action"]
    assert personas[2].description.startswith("Close to the average customer")
    same = [{"age": 1.0, "tx_count": -0.9}, {"age": 1.0, "tx_count": -0.9}]
    names = [p.name for p in name_segments(same, SegmentSettings(persona_rules=[]))]
    assert names == ["High age, low transactions", "High age, low transactions (segment 2)"]


def test_configured_rules_and_playbook_replace_the_builtins() -> None:
    settings = SegmentSettings(
        persona_rules=[
            PersonaRule(name="Savers", conditions={"balance": "high"}, description="Save a lot.")
        ],
        playbook=[PlaybookEntry(concept="age", level="high", action="pension advice")],
    )
    personas = name_segments([{"balance_avg": 1.0}, {"age": 2.0}], settings)
    assert personas[0].name == "Savers" and personas[0].description == "Save a lot."
    assert personas[0].actions == ["no specific action"]  # no rule actions, no playbook match
    assert personas[1].name == "High age" and personas[1].actions == ["pension advice"]


def test_summaries_make_readable_traits() -> None:
    population = {"loan_count": (0.0, 0.5), "tenure_months": (98.0, 110.0)}
    segment = {"loan_count": (0.0, 0.3), "tenure_months": (260.0, 255.0)}
    (persona,) = name_segments(
        [{"loan_count": -0.6, "tenure_months": 1.6}],
        SegmentSettings(persona_rules=[]),
        [segment],
        population,
    )
    # fewer loans on average, but the typical member has none, like the typical customer
    assert persona.traits == ["high tenure: 260 months vs 98 months for all customers"]
    assert persona.name == "High tenure"


def test_rule_settings_are_validated() -> None:
    assert len({r.name for r in DEFAULT_PERSONA_RULES}) == len(DEFAULT_PERSONA_RULES)
    with pytest.raises(ValidationError, match="unique names"):
        SegmentSettings(
            persona_rules=[
                PersonaRule(name="A", conditions={"age": "high"}),
                PersonaRule(name="A", conditions={"age": "low"}),
            ]
        )
    with pytest.raises(ValidationError):
        PersonaRule(name="A", conditions={"age": "very high"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        PersonaRule(name="A", conditions={})
    with pytest.raises(ValidationError, match="k_min"):
        SegmentSettings(k_min=6, k_max=4)


# ------------------------------------------------------------------ relative test


def test_relative_difference_is_against_the_population_value() -> None:
    assert relative_difference(1.1, 0.9) == pytest.approx(0.2222, abs=1e-4)
    assert relative_difference(0.5, 2.0) == pytest.approx(-0.75)
    assert relative_difference(-3.0, -2.0) == pytest.approx(-0.5)
    assert relative_difference(2.0, 0.0) == float("inf")
    assert relative_difference(0.0, 0.0) == 0.0
    assert relative_difference(None, 1.0) is None


def test_a_large_z_with_a_small_relative_difference_is_no_trait() -> None:
    # the Kaggle case: tenure 1.1 vs 0.9 months on average, medians equal, z large
    z = [{"tenure_months": 1.4, "night_share": 2.0}]
    segment = {"tenure_months": (1.0, 1.1), "night_share": (1.0, 0.9)}
    population = {"tenure_months": (1.0, 0.9), "night_share": (0.0, 0.1)}
    (persona,) = name_segments(z, SegmentSettings(), [segment], population)
    assert persona.name == "High night-time share"
    assert persona.traits == ["high night-time share: 100% vs 0% for all customers"]
    # 30% more at a 25% bar is a trait; at a 40% bar it is not
    z = [{"tenure_months": 1.4}]
    segment, population = {"tenure_months": (13.0, 13.0)}, {"tenure_months": (10.0, 10.0)}
    named = name_segments(z, SegmentSettings(), [segment], population)
    assert named[0].name == "High tenure"
    strict = SegmentSettings(persona_min_relative=0.4)
    assert name_segments(z, strict, [segment], population)[0].name == (
        "Segment 1: close to the average customer"
    )


def test_rules_need_the_relative_difference_too() -> None:
    # the Berka case: most customers have no transactions; the segment's median is the same 0
    z = [{"tx_count": -1.5, "annual_income": 0.1}, {"tx_count": 1.5, "annual_income": 0.0}]
    summaries = [
        {"tx_count": (0.0, 0.4), "annual_income": (40e3, 41e3)},
        {"tx_count": (30.0, 35.0), "annual_income": (40e3, 40e3)},
    ]
    population = {"tx_count": (0.0, 12.0), "annual_income": (40e3, 40e3)}
    bank = SegmentSettings(domain="retail_bank")
    first, second = name_segments(z, bank, summaries, population)
    assert first.name == "Steady earners"  # not inactive: it looks like the typical customer
    assert "reactivation campaign" not in first.actions
    assert second.name == "Most active"
    assert concept_level("activity", "low", z[0], 0.5) == pytest.approx(1.0)  # z alone: low
    assert concept_level("activity", "low", z[0], 0.5, {"tx_count": 0.0}, 0.25) == -1.0
    assert concept_level("activity", "average", z[0], 0.5, {"tx_count": 0.0}, 0.25) == 0.0
    assert concept_level("debt", "high", z[0], 0.5) is None


# ------------------------------------------------------------------ codes and flags

CREDIT = SegmentSettings(
    domain="retail_bank",
    code_columns=["purpose_code"],
    value_labels={
        "credit_history_code": {"2": "paid back duly", "4": "critical account"},
        "housing_own": {"0": "rent / for free", "1": "own"},
    },
)


def test_column_kinds() -> None:
    flags = ["has_telephone", "night_share"]
    kinds = {
        c: column_kind(c, CREDIT, flags)
        for c in ("has_telephone", "housing_own", "credit_history_code", "purpose_code")
    }
    assert kinds == {
        "has_telephone": "flag",
        "housing_own": "flag",
        "credit_history_code": "ordinal",
        "purpose_code": "category",
    }
    # a catalogue share that happens to be 0 or 1 per customer stays a quantity
    assert column_kind("night_share", CREDIT, flags) == "quantity"


def test_codes_are_never_described_as_quantities() -> None:
    z = [
        {"has_telephone": 1.6, "credit_history_code": 1.2, "purpose_code": 2.0, "age": 0.1},
        {"has_telephone": -0.8, "credit_history_code": -0.1, "purpose_code": -1.5, "age": 0.0},
    ]
    summaries = [
        {
            "has_telephone": (1.0, 0.82),
            "credit_history_code": (4.0, 3.6),
            "purpose_code": (3.0, 3.1),
            "age": (36.0, 37.0),
        },
        {
            "has_telephone": (0.0, 0.1),
            "credit_history_code": (2.0, 2.3),
            "purpose_code": (1.0, 1.8),
            "age": (35.0, 35.5),
        },
    ]
    population = {
        "has_telephone": (0.0, 0.4),
        "credit_history_code": (2.0, 2.5),
        "purpose_code": (2.0, 2.4),
        "age": (35.0, 36.0),
    }
    first, second = name_segments(z, CREDIT, summaries, population, flags=["has_telephone"])
    assert first.name == "Has telephone: 82% vs 40%"
    assert first.traits == [
        "has telephone: 82% of the segment vs 40% of all customers",
        "credit history code: typically 'critical account' vs 'paid back duly' for all customers",
    ]
    assert second.name == "Has telephone: 10% vs 40%"
    for persona in (first, second):
        text = " ".join([persona.name.lower(), *persona.traits])
        for label in ("has telephone", "credit history code", "purpose code"):
            assert f"high {label}" not in text and f"low {label}" not in text
        assert "purpose" not in text  # an unordered code is neither named nor described


def test_a_segment_with_only_small_differences_gets_a_neutral_name() -> None:
    z = [{"tx_count": 0.3, "age": -0.2}, {"tx_count": 1.0, "age": 0.9}]
    summaries = [
        {"tx_count": (20.0, 21.0), "age": (40.0, 40.0)},
        {"tx_count": (22.0, 24.0), "age": (44.0, 45.0)},  # 10% more: large z, small change
    ]
    population = {"tx_count": (20.0, 21.0), "age": (40.0, 41.0)}
    personas = name_segments(z, SegmentSettings(persona_rules=[]), summaries, population)
    assert [p.name for p in personas] == [
        "Segment 1: close to the average customer",
        "Segment 2: close to the average customer",
    ]
    assert personas[1].traits == [] and personas[1].actions == ["no specific action"]


# ------------------------------------------------------------------ domain vocabularies


def _vocabulary(domain: str) -> list[str]:
    rules = [a for actions in RULE_ACTIONS[domain].values() for a in actions]  # type: ignore[index]
    return rules + [e.action for e in DEFAULT_PLAYBOOKS[domain]]  # type: ignore[index]


def test_every_builtin_rule_has_actions_in_every_domain() -> None:
    names = {r.name for r in DEFAULT_PERSONA_RULES}
    for domain in DOMAINS:
        assert set(RULE_ACTIONS[domain]) == names, domain
        assert all(RULE_ACTIONS[domain].values()), domain


def test_the_neutral_domain_proposes_no_product() -> None:
    for action in _vocabulary("neutral"):
        assert not any(word in action.lower() for word in PRODUCT_WORDS), action
    personas = name_segments(BANK, SegmentSettings())
    assert personas[2].actions == ["risk monitoring of repayments", "review this group's needs"]
    for persona in personas:
        for action in persona.actions:
            assert not any(word in action.lower() for word in PRODUCT_WORDS), action


def test_each_domain_speaks_its_own_vocabulary() -> None:
    retail = _vocabulary("retail")
    assert not any(w in a.lower() for a in retail for w in BANK_WORDS)
    assert "win-back campaign" in retail
    cards = _vocabulary("cards")
    assert not any(w in a.lower() for a in cards for w in ("account", "pension", "mortgage"))
    assert any("card" in a for a in cards)
    bank = _vocabulary("retail_bank")
    assert "premium account upgrade" in bank and "reactivation campaign" in bank
    # the same segments, in each domain's words
    by_domain = {d: name_segments(BANK, SegmentSettings(domain=d))[1].actions for d in DOMAINS}
    assert by_domain == {
        "neutral": ["review this group's needs: it uses the service most"],
        "retail_bank": ["rewards and card cross-sell", "premium account upgrade"],
        "cards": ["rewards programme upgrade", "premium card upgrade"],
        "retail": [
            "loyalty programme: top tier and early access",
            "personalised recommendations",
        ],
    }
    for domain in DOMAINS:
        for persona in name_segments(BANK, SegmentSettings(domain=domain)):
            assert set(persona.actions) <= {*_vocabulary(domain), "no specific action"}


def test_configured_rule_actions_are_kept_in_any_domain() -> None:
    rule = PersonaRule(name="Savers", conditions={"balance": "high"}, actions=["call them"])
    for domain in DOMAINS:
        settings = SegmentSettings(persona_rules=[rule], domain=domain)
        assert name_segments([{"balance_avg": 1.0}], settings)[0].actions == ["call them"]
