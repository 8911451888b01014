"""Persona names, descriptions and actions from how each segment's centroid differs from everyone.

A segment's profile is how far its centroid sits from the population average, per feature, in
robust z units (one unit is a robust standard deviation of the feature after its transform).
Features are grouped into *concepts* ("activity", "wealth", "debt", ...); a concept's z is the
mean z of its features present in the segmentation columns. Each `PersonaRule` lists
conditions on concepts or single features ("high", "low", "average", measured against
`persona_threshold`); a segment matches a rule when every condition holds. A rule that names
a concept with none of its features present is skipped, so the same library works for full
bank data and for card-only data.

Names are given greedily by strength (the summed margins by which the conditions hold), strongest
pair first, each rule used once, so names are unique and do not depend on segment order. A
segment that matches no free rule gets a name from its two strongest deviations ("High annual
income, low transactions"); a repeated name gets the segment id appended.

Example:
    >>> from finintel.settings.segments import SegmentSettings
    >>> z = [{"tx_count": -2.0, "annual_income": 1.5}, {"tx_count": 1.2, "annual_income": 0.1}]
    >>> [p.name for p in name_segments(z, SegmentSettings())]
    ['Wealthy inactives', 'Most active']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from finintel.features.catalog import concept_members, feature_concepts
from finintel.models.explain import feature_label, feature_unit, format_value
from finintel.settings.segments import Level, PersonaRule, SegmentSettings

# Columns of common source tables that are not catalogue features but measure a concept: card
# statements (CC GENERAL) and per-channel or per-category shares (one column per level of the
# data's channel or category, so only the levels named here count). They follow the
# catalogue's members (`concepts=` in `finintel.features.catalog`).
SOURCE_COLUMN_CONCEPTS: dict[str, tuple[str, ...]] = {
    "activity": ("purchases_trx", "purchases_frequency"),
    "spend": ("purchases", "oneoff_purchases"),
    "card_spend": ("purchases", "oneoff_purchases"),
    "tenure": ("tenure",),
    "cash_advance": ("cash_advance", "cash_advance_frequency", "cash_advance_trx"),
    "full_payment": ("prc_full_payment",),
    "instalments": ("installments_purchases", "purchases_installments_frequency"),
    "digital": ("channel_share_online",),
    "cash_and_branch": (
        "channel_share_atm",
        "channel_share_branch",
        "channel_share_cash",
        "channel_share_cash_withdrawal",
        "category_spend_share_cash",
    ),
}

# Concept -> the columns that measure it (any present ones are averaged).
CONCEPTS: dict[str, tuple[str, ...]] = {
    concept: concept_members(concept) + SOURCE_COLUMN_CONCEPTS.get(concept, ())
    for concept in sorted({*feature_concepts(), *SOURCE_COLUMN_CONCEPTS})
}


# (median, mean) of a feature in original units, None when no value is known.
Summary = tuple[float | None, float | None]


@dataclass(frozen=True)
class Persona:
    """The name, description, recommended actions and plain-words traits of one segment."""

    name: str
    description: str
    actions: list[str]
    traits: list[str] = field(default_factory=list)
    rule: str | None = None  # the matched rule, None for a name built from deviations


def concept_z(concept: str, z: Mapping[str, float]) -> float | None:
    """The z of a concept (mean over its present features) or of a single feature column."""
    members = [f for f in CONCEPTS.get(concept, (concept,)) if f in z]
    if not members:
        return None
    return sum(z[f] for f in members) / len(members)


def rule_strength(rule: PersonaRule, z: Mapping[str, float], threshold: float) -> float | None:
    """Summed margins by which the conditions of `rule` hold; None if one fails or is unknown.

    Summing (not averaging) lets a rule that explains more of a segment win over a broader one.
    """
    margins = []
    for concept, level in rule.conditions.items():
        value = concept_z(concept, z)
        if value is None:
            return None
        margin = _margin(level, value, threshold)
        if margin < 0:
            return None
        margins.append(margin)
    return sum(margins)


def _margin(level: Level, value: float, threshold: float) -> float:
    if level == "high":
        return value - threshold
    if level == "low":
        return -value - threshold
    return threshold - abs(value) - 1e-12  # strictly closer than the threshold


def name_segments(
    z: Sequence[Mapping[str, float]],
    settings: SegmentSettings,
    summaries: Sequence[Mapping[str, Summary]] | None = None,
    population: Mapping[str, Summary] | None = None,
) -> list[Persona]:
    """One persona per segment (in the given order), from centroid z and optional summaries.

    `summaries` (per segment) and `population` (everyone): (median, mean) per feature in
    original units, to write readable traits ("annual income 150,000 vs 46,000 for all
    customers"; averages when the medians coincide).
    """
    rules = settings.rules()
    threshold = settings.persona_threshold
    candidates = []
    for s, profile in enumerate(z):
        for r, rule in enumerate(rules):
            strength = rule_strength(rule, profile, threshold)
            if strength is not None:
                candidates.append((-strength, s, r))
    chosen: dict[int, int] = {}
    for _, s, r in sorted(candidates):
        if s not in chosen and r not in chosen.values():
            chosen[s] = r
    personas: list[Persona] = []
    used: set[str] = set()
    for s, profile in enumerate(z):
        traits = _traits(profile, threshold, summaries[s] if summaries else None, population)
        if s in chosen:
            rule = rules[chosen[s]]
            name, description, rule_name = rule.name, rule.description, rule.name
            actions = list(rule.actions) or _playbook(profile, settings)
        else:
            name = _fallback_name(profile, threshold)
            description = "Customers with " + "; ".join(traits) if traits else "Typical customers."
            actions, rule_name = _playbook(profile, settings), None
        if name in used:
            name = f"{name} (segment {s + 1})"
        used.add(name)
        personas.append(
            Persona(name, description, actions or ["no specific action"], traits, rule_name)
        )
    return personas


def _strongest(profile: Mapping[str, float], threshold: float, n: int) -> list[tuple[str, float]]:
    ranked = sorted(profile.items(), key=lambda item: (-abs(item[1]), item[0]))
    return [(f, v) for f, v in ranked[:n] if abs(v) >= threshold]


def _fallback_name(profile: Mapping[str, float], threshold: float) -> str:
    parts = [
        f"{'high' if v > 0 else 'low'} {feature_label(f)}"
        for f, v in _strongest(profile, threshold, 2)
    ]
    if not parts:
        return "Average customers"
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def _traits(
    profile: Mapping[str, float],
    threshold: float,
    summary: Mapping[str, Summary] | None,
    population: Mapping[str, Summary] | None,
) -> list[str]:
    traits = []
    for f, v in _strongest(profile, threshold, 3):
        word = "high" if v > 0 else "low"
        if summary is None or population is None:
            traits.append(f"{word} {feature_label(f)} ({v:+.1f} robust z)")
            continue
        (median, mean), (pop_median, pop_mean) = summary[f], population[f]
        here, there = _with_unit(f, median), _with_unit(f, pop_median)
        if here == there:  # e.g. most customers have no loan: compare averages instead
            here, there = _with_unit(f, mean), _with_unit(f, pop_mean)
            traits.append(
                f"{word} {feature_label(f)}: {here} on average vs {there} for all customers"
            )
        else:
            traits.append(f"{word} {feature_label(f)}: {here} vs {there} for all customers")
    return traits


def _with_unit(name: str, value: float | None) -> str:
    text = format_value(name, value)
    unit = feature_unit(name)
    return f"{text} {unit}" if value is not None and unit in ("days", "months", "years") else text


def _playbook(profile: Mapping[str, float], settings: SegmentSettings) -> list[str]:
    actions: list[str] = []
    for entry in settings.actions_playbook():
        value = concept_z(entry.concept, profile)
        if value is None or _margin(entry.level, value, settings.persona_threshold) < 0:
            continue
        if entry.action not in actions:
            actions.append(entry.action)
    return actions
