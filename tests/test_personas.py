"""Persona naming: rules on concepts, skipped rules, unique names, fallbacks and the playbook."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from finintel.models.personas import concept_z, name_segments, rule_strength
from finintel.settings.segments import (
    DEFAULT_PERSONA_RULES,
    PersonaRule,
    PlaybookEntry,
    SegmentSettings,
)

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
    personas = name_segments(BANK, SegmentSettings())
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
    personas = name_segments(segments, SegmentSettings())
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
    assert personas[2].name == "Average customers"
    assert personas[2].actions == ["no specific action"]
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
    assert persona.traits == [
        "high tenure: 260 months vs 98 months for all customers",
        "low loans: 0.3 on average vs 0.5 for all customers",
    ]


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
