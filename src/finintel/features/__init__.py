"""Customer features: named SQL definitions (`catalog`) and the one-pass builder (`build`).

Example:
    >>> from finintel.features import CATALOG
    >>> CATALOG["recency_days"].unit
    'days'
"""

from finintel.features.build import FeaturePlan, build_features, feature_columns, plan_features
from finintel.features.catalog import CATALOG, FEATURES, MIX_FEATURES, Feature

__all__ = [
    "CATALOG",
    "FEATURES",
    "MIX_FEATURES",
    "Feature",
    "FeaturePlan",
    "build_features",
    "feature_columns",
    "plan_features",
]
