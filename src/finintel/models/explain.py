"""Plain words for reasons: short feature labels, formatted values, population phrases.

Risk and anomaly reasons read like "debt-to-income 0.82, above 95% of customers"; this module
is the one place that decides how a feature is named and how its value is written.

Example:
    >>> feature_label("debt_to_income")
    'debt-to-income'
    >>> format_value("night_share", 0.4567)
    '46%'
    >>> population_phrase(96.2)
    'above 96% of customers'
    >>> sds_phrase(26.2)
    'more than 10'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from finintel.features.catalog import CATALOG, FEATURES, MIX_FEATURES
from finintel.schema import code_key

# Short labels: each catalogue feature's own, and the model scores segmentation may use.
_LABELS = {
    **{feature.name: feature.label for feature in FEATURES},
    "risk_score": "risk score",
    "anomaly_score": "anomaly score",
}


def feature_label(name: str) -> str:
    """A short human label for a feature column."""
    if name in _LABELS:
        return _LABELS[name]
    for prefix, words in (("channel_share_", "share via "), ("category_spend_share_", "spend on ")):
        if name.startswith(prefix):
            return words + name[len(prefix) :].replace("_", " ")
    return name.replace("_", " ")


def feature_unit(name: str) -> str:
    """The unit of a feature column ("as given" for extra columns)."""
    if name in CATALOG:
        return CATALOG[name].unit
    if name.startswith("channel_share_"):
        return MIX_FEATURES[0].unit
    if name.startswith("category_spend_share_"):
        return MIX_FEATURES[1].unit
    return "as given"


def feature_units(names: Iterable[str]) -> dict[str, str]:
    """Units of many columns, for `RobustTransform.fit`."""
    return {n: feature_unit(n) for n in names}


# The source's words for numeric codes, per column: {"savings_status": {"5": "unknown"}}.
ValueLabels = Mapping[str, Mapping[str, str]]


def value_label(labels: ValueLabels | None, name: str | None, value: float | None) -> str | None:
    """The source's words for a coded value, when the column's codes came from a value map.

    Example:
        >>> value_label({"housing_own": {"0": "rent / for free", "1": "own"}}, "housing_own", 0.0)
        'rent / for free'
    """
    if not labels or name is None or value is None or not math.isfinite(value):
        return None
    return labels.get(name, {}).get(code_key(value))


def labels_for(labels: ValueLabels | None, columns: Iterable[str]) -> dict[str, dict[str, str]]:
    """The value labels of `columns` only, as plain dicts (what a model stores)."""
    if not labels:
        return {}
    return {c: dict(labels[c]) for c in columns if c in labels}


def format_value(name: str, value: float | None, labels: ValueLabels | None = None) -> str:
    """A value written for people: shares as percentages, money with separators, and a coded
    value as the source's words for it (quoted) when `labels` knows them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    words = value_label(labels, name, value)
    if words is not None:
        return f"'{words}'"
    unit = feature_unit(name)
    if unit == "share":
        return f"{value:.0%}"
    if unit in ("money", "money per month"):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if unit in ("count", "days", "months", "years"):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"


def population_phrase(percentile: float) -> str:
    """Where a value sits in the training population, from its percentile (0-100)."""
    if math.isnan(percentile):
        return "no population reference"
    if percentile >= 50:
        return f"above {min(math.floor(percentile), 99)}% of customers"
    return f"below {min(math.floor(100 - percentile), 99)}% of customers"


# The most robust SDs a reason quotes: beyond it the figure says nothing more (the detectors
# clip there too, by default) and mostly measures how small the spread is.
MAX_QUOTED_SDS = 10.0


def sds_phrase(sds: float) -> str:
    """A robust-SD figure for a reason, at most `MAX_QUOTED_SDS` quoted.

    Example:
        >>> sds_phrase(4.26), sds_phrase(10.0), sds_phrase(17.8)
        ('4.3', '10.0', 'more than 10')
    """
    if sds > MAX_QUOTED_SDS:
        return f"more than {MAX_QUOTED_SDS:.0f}"
    return f"{sds:.1f}"


def share_phrase(share: float) -> str:
    """A share of customers in whole percent, rounded down (never overstated) and below 100%
    unless every one of them.

    Example:
        >>> share_phrase(0.956), share_phrase(0.9999), share_phrase(1.0)
        ('95%', '99%', '100%')
    """
    if share >= 1.0:
        return "100%"
    return f"{min(math.floor(share * 100 + 1e-9), 99)}%"
