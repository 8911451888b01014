"""Persona names, descriptions and actions from how each segment differs from everyone.

A segment's profile is how far its centroid sits from the population average, per feature, in
robust z units (one unit is a robust standard deviation of the feature after its transform).
A deviation is a *trait* of the segment only when it is large in both senses: at least
`persona_threshold` robust z, and the segment's typical value (its median; for a flag, the
share of customers with it) differs from the population's by at least `persona_min_relative`
of the population's value, in the same direction. So "tenure 1.1 vs 0.9 months" on average is
no trait, and neither is a lower mean when the segment's median equals everyone's (a segment
of customers without transactions, where most customers have none).

Columns have a kind (`column_kind`): quantities are "high" or "low"; flags (0/1) are shares
("has telephone: 100% of the segment vs 40% of all customers"); ordinal codes from a value map
are described by the source's words for the typical code and never name a segment; unordered
category codes (`code_columns`) are neither named nor described.

Features are grouped into *concepts* ("activity", "wealth", "debt", ...); a concept's z is the
mean z of its quantity columns present in the segmentation. Each `PersonaRule` lists conditions
on concepts or single columns ("high", "low", "average"); "high" holds when the concept's z
reaches `persona_threshold` and one of its columns is a trait in that direction ("low" alike),
"average" when neither holds. A rule naming a concept with none of its columns present is
skipped, so the same library works for full bank data and for card-only data.

Names are given greedily by strength (the summed z margins by which the conditions hold),
strongest pair first, each rule used once, so names are unique and do not depend on segment
order. A segment that matches no free rule is named after its two strongest quantity or flag
traits ("High annual income, low transactions"); with none, it gets a plain neutral name
("Segment 3: close to the average customer"). Actions come from the vocabulary of
`SegmentSettings.domain` (`RULE_ACTIONS`, `DEFAULT_PLAYBOOKS`).

Without summaries (`name_segments(z, settings)`), only the z test applies.

Example:
    >>> from finintel.settings.segments import SegmentSettings
    >>> z = [{"tx_count": -2.0, "annual_income": 1.5}, {"tx_count": 1.2, "annual_income": 0.1}]
    >>> [p.name for p in name_segments(z, SegmentSettings())]
    ['Wealthy inactives', 'Most active']
    >>> medians = [{"tx_count": (1.0, 1.2), "annual_income": (9e4, 9e4)},
    ...            {"tx_count": (30.0, 31.0), "annual_income": (4.6e4, 4.7e4)}]
    >>> everyone = {"tx_count": (29.0, 26.0), "annual_income": (4.6e4, 5.2e4)}
    >>> [p.name for p in name_segments(z, SegmentSettings(), medians, everyone)]
    ['Wealthy inactives', 'Steady earners']
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from finintel.features.catalog import concept_members, feature_concepts
from finintel.models.explain import feature_label, feature_unit, format_value, value_label
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
Kind = Literal["quantity", "flag", "ordinal", "category"]


@dataclass(frozen=True)
class Persona:
    """The name, description, recommended actions and plain-words traits of one segment."""

    name: str
    description: str
    actions: list[str]
    traits: list[str] = field(default_factory=list)
    rule: str | None = None  # the matched rule, None for a name built from traits


def column_kind(name: str, settings: SegmentSettings, flags: Collection[str] = ()) -> Kind:
    """How a column may be described: as a quantity, a flag (share), an ordinal code or not.

    `flags` are the columns holding only 0 and 1 in the data; a catalogue feature (a count or
    a share of its own) stays a quantity. A value map with codes 0 and 1 only is a flag too.

    Example:
        >>> s = SegmentSettings(code_columns=["purpose_code"],
        ...     value_labels={"savings_status": {"1": "< 100", "2": ">= 100"},
        ...                   "housing_own": {"0": "rent", "1": "own"}})
        >>> [column_kind(c, s, ["has_telephone"]) for c in
        ...     ("tx_count", "has_telephone", "housing_own", "savings_status", "purpose_code")]
        ['quantity', 'flag', 'flag', 'ordinal', 'category']
    """
    if name in settings.code_columns:
        return "category"
    codes = settings.value_labels.get(name)
    if codes is not None:
        return "flag" if set(codes) <= {"0", "1"} else "ordinal"
    if name in flags and feature_unit(name) == "as given":
        return "flag"
    return "quantity"


def relative_difference(here: float | None, there: float | None) -> float | None:
    """(here - there) / |there|: how much a segment's value differs from the population's.

    Infinite (signed) when the population's value is 0 and the segment's is not.

    Example:
        >>> round(relative_difference(1.1, 0.9), 3), relative_difference(3.0, 0.0)
        (0.222, inf)
    """
    if here is None or there is None or not (math.isfinite(here) and math.isfinite(there)):
        return None
    if there == 0:
        return 0.0 if here == 0 else math.copysign(math.inf, here)
    return (here - there) / abs(there)


def concept_z(concept: str, z: Mapping[str, float]) -> float | None:
    """The z of a concept (mean over its present features) or of a single feature column."""
    members = _members(concept, z)
    if not members:
        return None
    return sum(z[f] for f in members) / len(members)


def _members(concept: str, z: Mapping[str, float]) -> list[str]:
    return [f for f in CONCEPTS.get(concept, (concept,)) if f in z]


def concept_level(
    concept: str,
    level: Level,
    z: Mapping[str, float],
    threshold: float,
    relative: Mapping[str, float] | None = None,
    min_relative: float = 0.0,
) -> float | None:
    """The z margin by which `concept` is at `level` (>= 0), -1.0 when it is not, None if unknown.

    "high": the concept's z reaches `threshold` and (with `relative`) one of its columns is at
    least `min_relative` above the population's value; "low" alike; "average": neither.

    Example:
        >>> concept_level("activity", "high", {"tx_count": 1.5}, 0.5)
        1.0
        >>> concept_level("activity", "high", {"tx_count": 1.5}, 0.5, {"tx_count": 0.1}, 0.25)
        -1.0
        >>> concept_level("activity", "average", {"tx_count": 1.5}, 0.5, {"tx_count": 0.1}, 0.25)
        0.0
    """
    value = concept_z(concept, z)
    if value is None:
        return None
    high = _holds(concept, 1, value, z, threshold, relative, min_relative)
    low = _holds(concept, -1, value, z, threshold, relative, min_relative)
    if level == "high":
        return value - threshold if high else -1.0
    if level == "low":
        return -value - threshold if low else -1.0
    if high or low:
        return -1.0
    return max(threshold - abs(value), 0.0)


def _holds(
    concept: str,
    sign: int,
    value: float,
    z: Mapping[str, float],
    threshold: float,
    relative: Mapping[str, float] | None,
    min_relative: float,
) -> bool:
    if sign * value < threshold:
        return False
    if relative is None:
        return True
    return any(sign * relative.get(f, 0.0) >= min_relative for f in _members(concept, z))


def rule_strength(
    rule: PersonaRule,
    z: Mapping[str, float],
    threshold: float,
    relative: Mapping[str, float] | None = None,
    min_relative: float = 0.0,
) -> float | None:
    """Summed margins by which the conditions of `rule` hold; None if one fails or is unknown.

    Summing (not averaging) lets a rule that explains more of a segment win over a broader one.
    `relative` (signed relative differences per column) adds the relative test of
    `concept_level`.
    """
    margins = []
    for concept, level in rule.conditions.items():
        margin = concept_level(concept, level, z, threshold, relative, min_relative)
        if margin is None or margin < 0:
            return None
        margins.append(margin)
    return sum(margins)


@dataclass(frozen=True)
class _Trait:
    column: str
    kind: Kind
    z: float
    text: str  # for the description
    label: str | None  # for a name, None when the trait may not name a segment


def name_segments(
    z: Sequence[Mapping[str, float]],
    settings: SegmentSettings,
    summaries: Sequence[Mapping[str, Summary]] | None = None,
    population: Mapping[str, Summary] | None = None,
    flags: Collection[str] = (),
) -> list[Persona]:
    """One persona per segment (in the given order), from centroid z and optional summaries.

    `summaries` (per segment) and `population` (everyone): (median, mean) per column in
    original units, for the relative test and readable traits ("annual income 150,000 vs
    46,000 for all customers"). `flags`: the columns holding only 0 and 1 in the data.
    """
    rules = settings.rules()
    kinds = [{c: column_kind(c, settings, flags) for c in profile} for profile in z]
    # rules and the playbook measure quantities and flags only: codes are no amounts
    measured = [
        {c: v for c, v in p.items() if k[c] in ("quantity", "flag")}
        for p, k in zip(z, kinds, strict=True)
    ]
    relative: list[dict[str, float] | None] = [
        _relatives(k, summaries[s], population) if summaries and population else None
        for s, k in enumerate(kinds)
    ]
    candidates = []
    for s, shown in enumerate(measured):
        for r, rule in enumerate(rules):
            strength = rule_strength(
                rule,
                shown,
                settings.persona_threshold,
                relative[s],
                settings.persona_min_relative,
            )
            if strength is not None:
                candidates.append((-strength, s, r))
    chosen: dict[int, int] = {}
    for _, s, r in sorted(candidates):
        if s not in chosen and r not in chosen.values():
            chosen[s] = r
    personas: list[Persona] = []
    used: set[str] = set()
    for s, profile in enumerate(z):
        summary = summaries[s] if summaries and population else None
        traits = _traits(profile, kinds[s], relative[s], settings, summary, population)
        texts = [t.text for t in traits[:3]]
        playbook = _playbook(measured[s], relative[s], settings)
        if s in chosen:
            rule = rules[chosen[s]]
            name, description, rule_name = rule.name, rule.description, rule.name
            actions = settings.rule_actions(rule) or playbook
        else:
            name = _trait_name(traits, s)
            description = "Customers with " + "; ".join(texts) if texts else _average(settings)
            actions, rule_name = playbook, None
        if name in used:
            name = f"{name} (segment {s + 1})"
        used.add(name)
        personas.append(
            Persona(name, description, actions or ["no specific action"], texts, rule_name)
        )
    return personas


def _relatives(
    kinds: Mapping[str, Kind],
    summary: Mapping[str, Summary],
    population: Mapping[str, Summary],
) -> dict[str, float]:
    """Signed relative difference of the typical value per quantity (median) and flag (share)."""
    out = {}
    for column, kind in kinds.items():
        if kind not in ("quantity", "flag") or column not in summary or column not in population:
            continue
        at = 1 if kind == "flag" else 0  # a flag's mean is the share of customers with it
        value = relative_difference(summary[column][at], population[column][at])
        if value is not None:
            out[column] = value
    return out


def _traits(
    profile: Mapping[str, float],
    kinds: Mapping[str, Kind],
    relative: Mapping[str, float] | None,
    settings: SegmentSettings,
    summary: Mapping[str, Summary] | None,
    population: Mapping[str, Summary] | None,
) -> list[_Trait]:
    """Every trait of a segment, strongest (largest |z|) first."""
    threshold, min_relative = settings.persona_threshold, settings.persona_min_relative
    ranked = sorted(profile.items(), key=lambda item: (-abs(item[1]), item[0]))
    traits = []
    for column, v in ranked:
        kind = kinds[column]
        if abs(v) < threshold or kind == "category":
            continue
        label = feature_label(column)
        word = "high" if v > 0 else "low"
        if summary is None or population is None:
            if kind == "quantity":
                traits.append(
                    _Trait(
                        column, kind, v, f"{word} {label} ({v:+.1f} robust z)", f"{word} {label}"
                    )
                )
            elif kind == "flag":
                more = "more" if v > 0 else "fewer"
                traits.append(
                    _Trait(column, kind, v, f"{more} with {label} ({v:+.1f} robust z)", None)
                )
            continue
        (median, mean), (pop_median, pop_mean) = summary[column], population[column]
        if kind == "ordinal":
            here = value_label(settings.value_labels, column, median)
            there = value_label(settings.value_labels, column, pop_median)
            if here is not None and there is not None and median != pop_median:
                text = f"{label}: typically '{here}' vs '{there}' for all customers"
                traits.append(_Trait(column, kind, v, text, None))
            continue
        change = relative.get(column) if relative is not None else None
        if change is None or change * v <= 0 or abs(change) < min_relative:
            continue
        if kind == "flag" and mean is not None and pop_mean is not None:
            here, there = f"{mean:.0%}", f"{pop_mean:.0%}"
            text = f"{label}: {here} of the segment vs {there} of all customers"
            name = f"{label}: {here} vs {there}"
        elif kind == "quantity":
            here, there = _with_unit(column, median), _with_unit(column, pop_median)
            text = f"{word} {label}: {here} vs {there} for all customers"
            name = f"{word} {label}"
        else:
            continue
        if here != there:  # a difference too small to show is no trait
            traits.append(_Trait(column, kind, v, text, name))
    return traits


def _trait_name(traits: Sequence[_Trait], s: int) -> str:
    parts = [t.label for t in traits if t.label is not None][:2]
    if not parts:
        return f"Segment {s + 1}: close to the average customer"
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def _average(settings: SegmentSettings) -> str:
    return (
        "Close to the average customer: no column differs from everyone by at least "
        f"{settings.persona_threshold:g} robust z and {settings.persona_min_relative:.0%}."
    )


def _with_unit(name: str, value: float | None) -> str:
    text = format_value(name, value)
    unit = feature_unit(name)
    return f"{text} {unit}" if value is not None and unit in ("days", "months", "years") else text


def _playbook(
    profile: Mapping[str, float],
    relative: Mapping[str, float] | None,
    settings: SegmentSettings,
) -> list[str]:
    actions: list[str] = []
    for entry in settings.actions_playbook():
        margin = concept_level(
            entry.concept,
            entry.level,
            profile,
            settings.persona_threshold,
            relative,
            settings.persona_min_relative,
        )
        if margin is None or margin < 0:
            continue
        if entry.action not in actions:
            actions.append(entry.action)
    return actions
