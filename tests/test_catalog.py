"""The feature catalogue describes itself: labels, model roles, concepts and what each reads."""

from __future__ import annotations

import pytest

from finintel.features.catalog import (
    FEATURES,
    ROLES,
    concept_members,
    default_set,
    feature_concepts,
)
from finintel.models.anomaly import SUSTAINED_FEATURES
from finintel.models.explain import feature_label
from finintel.models.personas import CONCEPTS
from finintel.models.segments import DEFAULT_FEATURES
from finintel.schema import CUSTOMERS


def test_every_feature_has_a_label_and_says_what_it_reads() -> None:
    labels = [f.label for f in FEATURES]
    assert all(labels) and len(set(labels)) == len(labels)
    customer_columns = {c.name for c in CUSTOMERS.columns}
    for feature in FEATURES:
        assert feature_label(feature.name) == feature.label
        assert feature.reads, feature.name
        for read in feature.reads:
            source, column = read.split(".")
            if source == "c":
                assert column in customer_columns, (feature.name, read)
    assert {"t.n_debit", "t.debit_total"} <= next(
        f for f in FEATURES if f.name == "debit_avg"
    ).reads


@pytest.mark.parametrize("role", ROLES)
def test_default_sets_come_from_the_catalogue_with_distinct_ranks(role: str) -> None:
    ranks = [f.defaults[role] for f in FEATURES if role in f.defaults]
    assert len(ranks) == len(set(ranks)) >= 4
    assert set(default_set(role)) == {f.name for f in FEATURES if role in f.defaults}
    assert all(set(f.defaults) <= set(ROLES) for f in FEATURES)


def test_models_read_their_defaults_from_the_catalogue() -> None:
    assert default_set("anomaly") == SUSTAINED_FEATURES
    assert DEFAULT_FEATURES[:12] == default_set("segments")[:12]
    assert DEFAULT_FEATURES[12] == "channel_share_online"  # a per-channel column, ranked 13
    assert DEFAULT_FEATURES[13] == "night_share"


def test_concepts_list_catalogue_members_first() -> None:
    for concept in feature_concepts():
        members = concept_members(concept)
        assert CONCEPTS[concept][: len(members)] == members
        ranks = [f.concepts[concept] for f in FEATURES if concept in f.concepts]
        assert sorted(ranks) == list(range(1, len(ranks) + 1)), concept
    assert CONCEPTS["wealth"] == ("balance_avg", "account_balance", "balance_last", "annual_income")
    assert CONCEPTS["digital"] == ("channel_share_online",)
