"""One check every model passes (the model contract of `finintel.models.base`).

For each of the four models: asking before fitting raises `NotFittedError`; saving and loading
gives identical outputs; scoring one customer at a time gives exactly the batch's outputs; the
stored state records its format and finintel version, and a state of another format version
is refused naming both versions. The fitted models together (`scoring.FittedModels`) keep it
without a risk model too: their parts round-trip and score the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from conftest import SyntheticRun, transactions_with_segments
from finintel import __version__
from finintel.config import load_config
from finintel.errors import ModelStateError, NotFittedError
from finintel.models.anomaly import CustomerAnomalyDetector
from finintel.models.base import FORMAT_VERSIONS, STATE_FILE, FinintelModel
from finintel.models.composite import CompositeRisk
from finintel.models.frame import FeatureFrame, load_frame
from finintel.models.risk import load_risk
from finintel.models.segments import Segmenter, segmentation_columns
from finintel.models.supervised import SupervisedRisk
from finintel.models.transaction_alerts import TransactionAlerter, TransactionTables
from finintel.pipeline import run_features
from finintel.run_layout import (
    ALERTS_CSV_COLUMNS,
    ANOMALY_OUTPUT_COLUMNS,
    PROBABILITY_COLUMN,
    RISK_OUTPUT_COLUMNS,
    SEGMENT_OUTPUT_COLUMNS,
)
from finintel.scoring import FittedModels, RiskOff, apply_models, fit_models
from finintel.settings.anomaly import AnomalySettings, TransactionAlertSettings
from finintel.settings.risk import RiskSettings
from finintel.settings.segments import SegmentSettings
from test_run import write_anonymised_cards

pytestmark = pytest.mark.slow

ONE_BY_ONE = 25  # customers scored alone and compared with the batch


@dataclass(frozen=True)
class CustomerModelCase:
    """How to make, fit and load one customer model."""

    name: str
    make: Callable[[], FinintelModel[FeatureFrame, Any]]
    fit: Callable[[Any, SyntheticRun], Any]
    load: Callable[[dict[str, bytes]], FinintelModel[FeatureFrame, Any]]
    segments: bool = False  # reads the default segmentation columns, not the whole frame


CASES = [
    CustomerModelCase(
        "composite risk",
        lambda: CompositeRisk(RiskSettings(), seed=1),
        lambda model, s: model.fit(s.frame),
        load_risk,
    ),
    CustomerModelCase(
        "supervised risk",
        lambda: SupervisedRisk(RiskSettings(), seed=1),
        lambda model, s: model.fit(s.frame, s.defaulted.astype(np.float64)),
        load_risk,
    ),
    CustomerModelCase(
        "customer anomalies",
        lambda: CustomerAnomalyDetector(AnomalySettings(), seed=1),
        lambda model, s: model.fit(s.frame),
        CustomerAnomalyDetector.from_files,
    ),
    CustomerModelCase(
        "segments",
        lambda: Segmenter(SegmentSettings(), seed=1),
        lambda model, s: model.fit(segment_frame(s)),
        Segmenter.from_files,
        segments=True,
    ),
]


def segment_frame(synthetic: SyntheticRun) -> FeatureFrame:
    columns = segmentation_columns(SegmentSettings(), synthetic.frame.columns)
    return synthetic.frame.select(columns)


def frame_for(case: CustomerModelCase, synthetic: SyntheticRun) -> FeatureFrame:
    return segment_frame(synthetic) if case.segments else synthetic.frame


def as_lists(columns: dict[str, pa.Array]) -> dict[str, list[Any]]:
    return {name: array.to_pylist() for name, array in columns.items()}


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def fitted(
    request: pytest.FixtureRequest, synthetic: SyntheticRun
) -> tuple[CustomerModelCase, FinintelModel[FeatureFrame, Any]]:
    case: CustomerModelCase = request.param
    model = case.make()
    case.fit(model, synthetic)
    return case, model


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_unfitted_model_refuses_to_score_or_save(
    case: CustomerModelCase, synthetic: SyntheticRun
) -> None:
    model = case.make()
    with pytest.raises(NotFittedError, match="is not fitted"):
        model.predict(frame_for(case, synthetic))
    with pytest.raises(NotFittedError, match="is not fitted"):
        model.to_files()


def test_save_and_load_give_identical_outputs(
    fitted: tuple[CustomerModelCase, FinintelModel[FeatureFrame, Any]], synthetic: SyntheticRun
) -> None:
    case, model = fitted
    frame = frame_for(case, synthetic)
    files = model.to_files()
    loaded = case.load(files)
    assert type(loaded) is type(model)
    names = tuple(model.predict(frame).columns())
    assert names in {
        RISK_OUTPUT_COLUMNS,
        (*RISK_OUTPUT_COLUMNS, PROBABILITY_COLUMN),
        ANOMALY_OUTPUT_COLUMNS,
        SEGMENT_OUTPUT_COLUMNS,
    }
    assert as_lists(loaded.predict(frame).columns()) == as_lists(model.predict(frame).columns())
    assert loaded.metrics_ == model.metrics_
    # nothing is lost or changed by a round trip (a skops archive's bytes carry a timestamp)
    again = loaded.to_files()
    assert again.keys() == files.keys()
    assert all(again[name] == data for name, data in files.items() if name.endswith(".json"))


def test_one_customer_at_a_time_equals_the_batch(
    fitted: tuple[CustomerModelCase, FinintelModel[FeatureFrame, Any]], synthetic: SyntheticRun
) -> None:
    case, model = fitted
    frame = frame_for(case, synthetic)
    batch = as_lists(model.predict(frame).columns())
    picks = np.random.default_rng(5).choice(len(frame), ONE_BY_ONE, replace=False)
    for i in picks:
        alone = as_lists(model.predict(frame.rows(np.array([i]))).columns())
        assert alone == {name: [values[i]] for name, values in batch.items()}, frame.ids[i]


def test_the_state_records_its_format_and_refuses_another(
    fitted: tuple[CustomerModelCase, FinintelModel[FeatureFrame, Any]],
) -> None:
    case, model = fitted
    files = model.to_files()
    state = json.loads(files[STATE_FILE])
    assert state["format_version"] == FORMAT_VERSIONS[model.part]
    assert state["finintel_version"] == __version__
    learned = set(vars(model)) - set(vars(case.make()))
    assert "metrics_" in learned
    assert all(name.endswith("_") or name.startswith("_") for name in learned), learned
    json.dumps(model.metrics_, allow_nan=False)
    older = json.dumps({**state, "format_version": 1}).encode()
    wanted = FORMAT_VERSIONS[model.part]
    with pytest.raises(ModelStateError, match=rf"format version 1 .* reads format {wanted}"):
        case.load({**files, STATE_FILE: older})


# ---------------------------------------------------------------- the transaction alerter


@pytest.fixture(scope="module")
def con(synthetic: SyntheticRun) -> duckdb.DuckDBPyConnection:
    return transactions_with_segments(synthetic, 3)


def test_the_alerter_keeps_the_contract(con: duckdb.DuckDBPyConnection) -> None:
    tables = TransactionTables(con)
    with pytest.raises(NotFittedError):
        TransactionAlerter().predict(tables)
    alerter = TransactionAlerter(TransactionAlertSettings(), seed=1).fit(tables)
    batch = alerter.predict(tables).table
    assert tuple(batch.column_names) == ALERTS_CSV_COLUMNS
    assert len(alerter.predict(tables)) == batch.num_rows == alerter.metrics_["flagged"]
    loaded = TransactionAlerter.from_files(alerter.to_files())
    assert loaded.predict(tables).table.equals(batch)

    # one customer's transactions alone give exactly that customer's alerts in the batch
    alerted = sorted(set(batch.column("customer_id").to_pylist()))
    quiet = con.execute(
        "SELECT DISTINCT customer_id FROM clean_transactions ORDER BY customer_id LIMIT 3"
    ).fetchall()
    for customer in [*alerted[:: max(1, len(alerted) // 5)][:5], *(q[0] for q in quiet)]:
        con.execute(
            "CREATE OR REPLACE TABLE one_customer AS SELECT * FROM clean_transactions "
            "WHERE customer_id = ?",
            [customer],
        )
        alone = alerter.predict(TransactionTables(con, "one_customer")).table.to_pylist()
        expected = [row for row in batch.to_pylist() if row["customer_id"] == customer]
        assert alone == expected, customer


# ---------------------------------------------------------------- the models without risk


def test_the_fitted_models_without_risk_keep_the_contract(tmp_path: Path) -> None:
    cfg, base = load_config(write_anonymised_cards(tmp_path / "data")["off"])
    con = run_features(cfg, base, tmp_path / "run").validation.con
    frame = load_frame(con, "features")
    fitted = fit_models(con, frame, None, cfg, seed=1)
    assert fitted.risk is None and fitted.risk_off == RiskOff.by_config()
    assert "risk_score" not in fitted.segment_columns
    parts = fitted.to_parts()
    assert set(parts) == {"anomaly", "segments", "transaction_alerts"}
    columns = fitted.segment_columns
    loaded = FittedModels.from_parts(parts, columns, fitted.risk_off)
    scored = apply_models(con, frame, fitted)
    assert scored.risk_off == fitted.risk_off
    assert tuple(scored.table.column_names) == (
        "customer_id",
        *ANOMALY_OUTPUT_COLUMNS,
        *SEGMENT_OUTPUT_COLUMNS,
    )
    assert apply_models(con, frame, loaded).table.equals(scored.table)
    assert loaded.metrics()["risk"] == fitted.risk_off.to_dict()
    # a bundle part and the manifest's record must agree on whether there is a risk model
    with pytest.raises(ModelStateError, match="the bundle has no model part"):
        FittedModels.from_parts(parts, columns)
    with pytest.raises(ModelStateError, match="has a risk part but its manifest says"):
        FittedModels.from_parts({**parts, "risk": {}}, columns, fitted.risk_off)
    with pytest.raises(ModelStateError, match="or the reason there is none"):
        FittedModels(None, loaded.anomaly, loaded.segmenter, loaded.alerter, columns)
