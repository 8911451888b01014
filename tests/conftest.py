"""Shared test helpers: small input files, validation, and a synthetic bank with ground truth."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
import pytest

from finintel.config import FinintelConfig, config_for_files
from finintel.models.frame import FeatureFrame, load_frame
from finintel.pipeline import FeatureRun, run_features
from finintel.sql import connect
from finintel.synthetic import GeneratedBank, generate_bank
from finintel.validate import ValidationResult, validate

TODAY = date(2026, 11, 21)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> Generator[None, list[pytest.Collector], list[pytest.Collector]]:
    """Doctests are collected from src/finintel only, not from the test modules themselves.

    `--doctest-modules` (pyproject.toml) applies to every Python file collected; a test module
    that fails to import would otherwise be reported twice (as an error and as a doctest skip).
    """
    collected = yield
    return [node for node in collected if type(node).__name__ != "DoctestModule"]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write text to a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def run_validate(
    cfg: FinintelConfig, base: Path
) -> tuple[duckdb.DuckDBPyConnection, ValidationResult]:
    con = connect()
    return con, validate(con, cfg, base, today=TODAY)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return list(con.execute(sql).fetchall())


# Seed of the synthetic bank the model tests measure on. No model setting was tuned on it.
SYNTHETIC_SEED = 20261121
SYNTHETIC_CUSTOMERS = 6000


@dataclass(frozen=True)
class SyntheticRun:
    """A generated bank after validation and features, with its ground truth by customer."""

    bank: GeneratedBank
    out_dir: Path
    features: FeatureRun
    frame: FeatureFrame
    persona: npt.NDArray[np.object_]  # planted persona, aligned with frame.ids
    is_anomalous: npt.NDArray[np.bool_]
    anomaly_kind: npt.NDArray[np.object_]
    defaulted: npt.NDArray[np.int64]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRun:
    """A 6,000-customer synthetic bank (seed SYNTHETIC_SEED), validated, with features."""
    root = tmp_path_factory.mktemp("synthetic")
    bank = generate_bank(root / "bank", SYNTHETIC_CUSTOMERS, seed=SYNTHETIC_SEED)
    cfg = config_for_files(
        str(bank.customers), str(bank.transactions), str(bank.loans), str(bank.labels)
    )
    run = run_features(cfg, root, root / "run", today=TODAY)
    frame = load_frame(run.validation.con, "features")
    truth = pq.read_table(bank.truth_customers).to_pydict()
    labels = pq.read_table(bank.labels).to_pydict()
    persona = dict(zip(truth["customer_id"], truth["persona"], strict=True))
    anomalous = dict(zip(truth["customer_id"], truth["is_anomalous"], strict=True))
    kind = dict(zip(truth["customer_id"], truth["anomaly_kind"], strict=True))
    default = dict(zip(labels["customer_id"], labels["defaulted"], strict=True))
    ids = list(frame.ids)
    return SyntheticRun(
        bank=bank,
        out_dir=root / "run",
        features=run,
        frame=frame,
        persona=np.array([persona[i] for i in ids], dtype=object),
        is_anomalous=np.array([bool(anomalous[i]) for i in ids]),
        anomaly_kind=np.array([kind[i] for i in ids], dtype=object),
        defaulted=np.array([int(default[i]) for i in ids], dtype=np.int64),
    )


def transactions_with_segments(synthetic: SyntheticRun, segments: int) -> duckdb.DuckDBPyConnection:
    """A connection holding the synthetic bank's clean transactions and `segments` made-up
    segments (customers spread by a hash of their id), as the transaction alerter reads them."""
    con = duckdb.connect()
    clean = synthetic.out_dir / "clean" / "transactions.parquet"
    con.execute(f"CREATE TABLE clean_transactions AS SELECT * FROM '{clean}'")
    con.execute(
        "CREATE TABLE customer_segments AS SELECT customer_id, "
        f"CAST(hash(customer_id) % {segments} AS INTEGER) AS segment_id "
        "FROM (SELECT DISTINCT customer_id FROM clean_transactions)"
    )
    return con
