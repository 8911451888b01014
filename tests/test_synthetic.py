"""Behaviour of the synthetic bank generator: layout, determinism, realism and planted truth."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from finintel import synthetic
from finintel.schema import CUSTOMERS, LABELS, LOANS, TRANSACTIONS
from finintel.synthetic import (
    CATEGORIES,
    CHANNELS,
    CUSTOMER_ANOMALIES,
    DEFAULT_DESIGN,
    DIRTY_KINDS,
    OPTIONAL_CUSTOMER_COLUMNS,
    OPTIONAL_TRANSACTION_COLUMNS,
    PERSONAS,
    TRANSACTION_ANOMALIES,
    BankDesign,
    DefaultMechanism,
    GeneratedBank,
    Persona,
    generate_bank,
)

N = 2_000
SEED = 11
START = date(2024, 1, 1)
END = date(2025, 1, 1)
DESIGNED_SHARES = {
    "steady": 0.25,
    "wealthy_inactive": 0.15,
    "most_active": 0.20,
    "loan_heavy": 0.20,
    "young_starter": 0.20,
}

Array = npt.NDArray[Any]


def _read(path: Path) -> pa.Table:
    if path.suffix == ".csv":
        return pa_csv.read_csv(path)
    return pq.read_table(path)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _np(table: pa.Table, column: str) -> Array:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False))


def _number(ids: pa.ChunkedArray) -> Array:
    """C0000042 -> 41 (a zero-based customer index)."""
    return np.asarray(pc.cast(pc.utf8_slice_codeunits(ids, 1), pa.int64()).to_numpy()) - 1


@dataclass(frozen=True)
class Bank:
    """A generated bank read back into memory, with the clean transactions singled out."""

    meta: GeneratedBank
    customers: pa.Table
    transactions: pa.Table
    loans: pa.Table
    labels: pa.Table
    truth_customers: pa.Table
    truth_transactions: pa.Table

    @property
    def clean_tx_mask(self) -> Array:
        """Rows that are not one of the planted dirty transactions."""
        tx = self.transactions
        ids = _np(tx, "transaction_id")
        _, first = np.unique(ids, return_index=True)
        first_occurrence = np.zeros(len(ids), dtype=bool)
        first_occurrence[first] = True
        cid = tx.column("customer_id")
        known = np.asarray(pc.fill_null(pc.is_in(cid, self.customers.column("customer_id")), False))
        ts = _np(tx, "timestamp").astype("datetime64[us]")
        in_period = ts < np.datetime64("2090-01-01")
        return known & in_period & (_np(tx, "amount") > 0) & first_occurrence


def _load(meta: GeneratedBank) -> Bank:
    return Bank(
        meta=meta,
        customers=_read(meta.customers),
        transactions=_read(meta.transactions),
        loans=_read(meta.loans),
        labels=_read(meta.labels),
        truth_customers=_read(meta.truth_customers),
        truth_transactions=_read(meta.truth_transactions),
    )


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    out = tmp_path_factory.mktemp("bank")
    return _load(generate_bank(out, N, seed=SEED))


@dataclass(frozen=True)
class PerCustomer:
    """Per-customer aggregates of the clean data for the customers without dirty rows."""

    persona: Array
    defaulted: Array
    income: Array
    balance: Array
    loan_balance: Array
    age: Array
    tenure: Array
    n_tx: Array
    debit: Array
    credit: Array
    min_balance: Array
    overdraft_share: Array
    night_share: Array
    weekend_share: Array
    channel_share: Array  # (n, len(CHANNELS))


@pytest.fixture(scope="module")
def per_customer(bank: Bank) -> PerCustomer:
    truth = bank.truth_customers
    assert _number(truth.column("customer_id")).tolist() == list(range(N))
    customers = bank.customers
    first_row = np.unique(_np(customers, "customer_id"), return_index=True)[1]
    customers = customers.take(pa.array(np.sort(first_row)))
    assert customers.num_rows == N

    tx = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    owner = _number(tx.column("customer_id"))
    amount = _np(tx, "amount")
    credit = _np(tx, "direction") == "credit"
    balance_after = _np(tx, "balance_after")
    ts = _np(tx, "timestamp").astype("datetime64[us]")
    hour = (ts - ts.astype("datetime64[D]")).astype("timedelta64[h]").astype(int)
    weekday = (ts.astype("datetime64[D]").astype(int) + 3) % 7  # Monday is 0
    n_tx = np.bincount(owner, minlength=N)
    shares = np.maximum(n_tx, 1)
    channel = np.asarray(pc.index_in(tx.column("channel"), pa.array(CHANNELS)).to_numpy())
    channel_counts = np.bincount(owner * len(CHANNELS) + channel, minlength=N * len(CHANNELS))
    min_balance = _np(customers, "account_balance").astype(float)
    np.minimum.at(min_balance, owner, balance_after)

    def days(column: str) -> Array:
        d = _np(customers, column).astype("datetime64[D]")
        return np.asarray((np.datetime64(START) - d).astype(int) / 365.25)

    labels = bank.labels
    assert _number(labels.column("customer_id")).tolist() == list(range(N))
    duplicated = np.isin(_np(customers, "customer_id"), _duplicate_customer_ids(bank))
    birth = _np(customers, "birth_date").astype("datetime64[D]")
    dirty = duplicated | (_np(customers, "annual_income") < 0) | (birth < np.datetime64("1901"))
    assert 3 <= dirty.sum() <= 10
    full = PerCustomer(
        persona=_np(truth, "persona"),
        defaulted=_np(labels, "defaulted"),
        income=_np(customers, "annual_income"),
        balance=_np(customers, "account_balance"),
        loan_balance=_np(customers, "loan_balance"),
        age=days("birth_date"),
        tenure=days("customer_since"),
        n_tx=n_tx,
        debit=np.bincount(owner, weights=amount * ~credit, minlength=N),
        credit=np.bincount(owner, weights=amount * credit, minlength=N),
        min_balance=min_balance,
        overdraft_share=np.bincount(owner, weights=balance_after < 0, minlength=N) / shares,
        night_share=np.bincount(owner, weights=(hour < 6) | (hour >= 22), minlength=N) / shares,
        weekend_share=np.bincount(owner, weights=weekday >= 5, minlength=N) / shares,
        channel_share=channel_counts.reshape(N, len(CHANNELS)) / shares[:, None],
    )
    return PerCustomer(*(getattr(full, f.name)[~dirty] for f in fields(PerCustomer)))


def _auc(labels: Array, score: Array) -> float:
    """ROC-AUC by the rank-sum formula (ties get average ranks)."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    sorted_score = score[order]
    _, start, counts = np.unique(sorted_score, return_index=True, return_counts=True)
    average = start + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# ---------------------------------------------------------------------------------------------
# Layout and counts
# ---------------------------------------------------------------------------------------------


def test_files_use_the_canonical_columns_and_types(bank: Bank) -> None:
    assert bank.customers.column_names == [c for c in CUSTOMERS.names if c != "age"]
    assert bank.transactions.column_names == TRANSACTIONS.names
    assert bank.loans.column_names == LOANS.names
    assert bank.labels.column_names == LABELS.names
    assert bank.truth_customers.column_names == [
        "customer_id",
        "persona",
        "is_anomalous",
        "anomaly_kind",
    ]
    assert bank.truth_transactions.column_names == ["transaction_id", "customer_id", "anomaly_kind"]
    tx_schema = bank.transactions.schema
    assert tx_schema.field("timestamp").type == pa.timestamp("us")
    assert tx_schema.field("customer_id").type == pa.string()
    assert tx_schema.field("transaction_id").type == pa.string()
    assert bank.customers.schema.field("birth_date").type == pa.date32()
    assert bank.loans.schema.field("start_date").type == pa.date32()
    assert bank.meta.customers.parent.name == bank.meta.transactions.parent.name
    assert bank.meta.labels.parent.name == "truth"


def test_row_counts_match_the_report(bank: Bank) -> None:
    meta = bank.meta
    dirty = meta.n_dirty_rows
    assert meta.n_customers == N
    assert bank.customers.num_rows == N + dirty["duplicate_customer_id"]
    assert len(np.unique(_np(bank.customers, "customer_id"))) == N
    extra_tx = sum(dirty[k] for k in synthetic.TRANSACTION_DIRTY_KINDS)
    assert bank.transactions.num_rows == meta.n_transactions + extra_tx
    assert 0.8 * 20 * N <= meta.n_transactions <= 1.25 * 20 * N
    assert bank.loans.num_rows == meta.n_loans > 0
    assert bank.labels.num_rows == N
    assert bank.truth_customers.num_rows == N


def test_ids_are_zero_padded_strings(bank: Bank) -> None:
    ids = _np(bank.truth_customers, "customer_id")
    assert ids[0] == "C0000001"
    assert ids[-1] == f"C{N:07d}"
    tx_ids = _np(bank.transactions, "transaction_id")
    assert all(t.startswith("T") and t[1:].isdigit() for t in tx_ids[:1000])
    loan_ids = _np(bank.loans, "loan_id")
    assert len(np.unique(loan_ids)) == len(loan_ids)


def test_clean_transactions_belong_to_known_customers(bank: Bank) -> None:
    clean = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    assert clean.num_rows == bank.meta.n_transactions
    assert pc.all(pc.is_in(clean.column("customer_id"), bank.truth_customers.column("customer_id")))
    assert pc.all(
        pc.is_in(bank.loans.column("customer_id"), bank.truth_customers.column("customer_id"))
    )
    ts = _np(clean, "timestamp").astype("datetime64[us]")
    assert ts.min() >= np.datetime64(START)
    assert ts.max() < np.datetime64(END)
    assert len(np.unique(_np(clean, "transaction_id"))) == clean.num_rows


def test_values_are_well_formed(bank: Bank) -> None:
    tx = bank.transactions
    assert set(_np(tx, "direction")) == {"debit", "credit"}
    assert set(_np(tx, "channel")) <= set(CHANNELS)
    assert set(_np(tx, "category")) <= set(CATEGORIES)
    amount = _np(tx, "amount")
    assert int((amount <= 0).sum()) == bank.meta.n_dirty_rows["negative_amount"]
    assert np.allclose(amount, np.round(amount, 2))
    assert set(_np(bank.labels, "defaulted")) == {0, 1}
    rate = _np(bank.loans, "interest_rate")
    assert rate.min() > 0 and rate.max() < 30
    assert set(_np(bank.loans, "status")) <= {"active", "closed"}


def test_balance_after_is_a_running_balance(bank: Bank) -> None:
    tx = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    owner = _number(tx.column("customer_id"))
    ts = _np(tx, "timestamp").astype("datetime64[us]").astype(np.int64)
    assert np.all(np.diff(owner) >= 0), "transactions are grouped by customer"
    same = owner[1:] == owner[:-1]
    assert np.all(np.diff(ts)[same] >= 0), "and in time order within a customer"
    signed = np.where(_np(tx, "direction") == "credit", 1.0, -1.0) * _np(tx, "amount")
    balance = _np(tx, "balance_after")
    step = balance[1:] - balance[:-1]
    assert np.allclose(step[same], signed[1:][same], atol=0.006)

    # The customer's account_balance is the balance after their last transaction.
    last = np.r_[~same, True]
    final = dict(zip(_np(tx, "customer_id")[last], balance[last], strict=True))
    customers = bank.truth_customers.join(bank.customers, "customer_id")
    sample = _np(customers, "customer_id")[:200]
    recorded = dict(zip(sample, _np(customers, "account_balance")[:200], strict=True))
    duplicated = set(_duplicate_customer_ids(bank))
    for cid in sample:
        if cid in final and cid not in duplicated:
            assert recorded[cid] == pytest.approx(final[cid], abs=0.006)


def _duplicate_customer_ids(bank: Bank) -> list[str]:
    ids, counts = np.unique(_np(bank.customers, "customer_id"), return_counts=True)
    return [str(i) for i in ids[counts > 1]]


# ---------------------------------------------------------------------------------------------
# Determinism and atomic output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_identical_files(tmp_path: Path, fmt: str) -> None:
    a = generate_bank(tmp_path / "a", 300, seed=5, fmt=fmt)  # type: ignore[arg-type]
    b = generate_bank(tmp_path / "b", 300, seed=5, fmt=fmt)  # type: ignore[arg-type]
    c = generate_bank(tmp_path / "c", 300, seed=6, fmt=fmt)  # type: ignore[arg-type]
    assert a.n_transactions == b.n_transactions
    digests = _digests(tmp_path / "a")
    assert len(digests) == 6
    assert all(name.endswith(f".{fmt}") for name in digests)
    assert digests == _digests(tmp_path / "b")
    other = _digests(tmp_path / "c")
    assert all(digests[name] != other[name] for name in digests)
    assert c.n_customers == 300


def test_several_chunks_stay_consistent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "_CHUNK_SIZE", 400)
    seen: list[int] = []
    meta = generate_bank(tmp_path / "x", 1_500, seed=2, progress=seen.append)
    assert seen == [400, 800, 1_200, 1_500]
    again = generate_bank(tmp_path / "y", 1_500, seed=2)
    assert _digests(tmp_path / "x") == _digests(tmp_path / "y")
    bank = _load(meta)
    assert len(np.unique(_np(bank.customers, "customer_id"))) == 1_500
    clean = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    assert len(np.unique(_np(clean, "transaction_id"))) == clean.num_rows == again.n_transactions
    assert len(np.unique(_np(bank.loans, "loan_id"))) == bank.loans.num_rows
    _assert_dirty_counts(bank)


def test_no_partial_files_after_a_failure(tmp_path: Path) -> None:
    def explode(done: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        generate_bank(tmp_path, 100, progress=explode)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_output_replaces_previous_files(tmp_path: Path) -> None:
    first = generate_bank(tmp_path, 100, seed=1)
    before = first.customers.read_bytes()
    generate_bank(tmp_path, 120, seed=1)
    assert first.customers.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "customers.parquet",
        "loans.parquet",
        "transactions.parquet",
        "truth",
    ]


def test_period_follows_start_and_months(tmp_path: Path) -> None:
    meta = generate_bank(
        tmp_path, 200, seed=3, start=date(2023, 7, 15), months=3, fmt="csv", dirty_rows=False
    )
    tx = _read(meta.transactions)
    ts = _np(tx, "timestamp").astype("datetime64[us]")
    assert ts.min() >= np.datetime64("2023-07-15")
    assert ts.max() < np.datetime64("2023-10-15")
    salaries = _np(tx, "category") == "salary"
    first_salaried = _np(tx, "customer_id")[salaries][0]
    assert (_np(tx, "customer_id")[salaries] == first_salaried).sum() == 3


# ---------------------------------------------------------------------------------------------
# Personas
# ---------------------------------------------------------------------------------------------


def test_persona_shares_follow_the_design(per_customer: PerCustomer) -> None:
    assert set(per_customer.persona) == set(PERSONAS)
    for persona, share in DESIGNED_SHARES.items():
        assert np.mean(per_customer.persona == persona) == pytest.approx(share, abs=0.04)


def test_personas_behave_as_designed(per_customer: PerCustomer) -> None:
    pc_ = per_customer

    def median(values: Array, persona: str) -> float:
        return float(np.median(values[pc_.persona == persona]))

    others = list(PERSONAS)
    balance = {p: median(pc_.balance, p) for p in others}
    assert all(
        balance["wealthy_inactive"] > 10 * balance[p] for p in others if p != "wealthy_inactive"
    )
    count = {p: median(pc_.n_tx.astype(float), p) for p in others}
    assert all(count["most_active"] > 1.15 * count[p] for p in others if p != "most_active")
    assert count["wealthy_inactive"] < 0.5 * min(
        count[p] for p in others if p != "wealthy_inactive"
    )
    young = pc_.persona == "young_starter"
    assert pc_.age[young].min() >= 18 and pc_.age[young].max() < 27
    assert median(pc_.tenure, "young_starter") < 3
    assert median(pc_.income, "young_starter") < 0.6 * median(pc_.income, "steady")
    loan = {p: median(pc_.loan_balance, p) for p in others}
    assert loan["loan_heavy"] > 0 and all(loan[p] == 0 for p in others if p != "loan_heavy")
    overdraft = {p: float(np.mean(pc_.overdraft_share[pc_.persona == p])) for p in others}
    assert overdraft["loan_heavy"] == max(overdraft.values())
    assert balance["steady"] > 0
    digital = pc_.channel_share[:, 0] + pc_.channel_share[:, 1]
    assert median(digital, "most_active") > median(digital, "steady") + 0.2
    night = {p: float(np.mean(pc_.night_share[pc_.persona == p])) for p in others}
    assert night["young_starter"] == max(night.values())


def test_personas_are_not_separable_by_one_column(per_customer: PerCustomer) -> None:
    steady = per_customer.persona == "steady"
    active = per_customer.persona == "most_active"
    for values in (per_customer.income, per_customer.age, per_customer.n_tx):
        lo = max(values[steady].min(), values[active].min())
        hi = min(values[steady].max(), values[active].max())
        assert lo < hi, "the two personas' ranges overlap"


def test_kmeans_recovers_personas(per_customer: PerCustomer) -> None:
    pytest.importorskip("sklearn")
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import RobustScaler

    pc_ = per_customer
    features = np.column_stack(
        [
            np.log1p(pc_.n_tx),
            np.log1p(pc_.debit),
            np.log1p(pc_.credit),
            np.arcsinh(pc_.balance / 1_000.0),
            np.log(pc_.income),
            np.log1p(pc_.loan_balance),
            pc_.age,
            pc_.tenure,
            pc_.channel_share[:, CHANNELS.index("card")],
            pc_.channel_share[:, CHANNELS.index("online")],
            pc_.channel_share[:, CHANNELS.index("transfer")],
        ]
    )
    scaled = np.clip(RobustScaler().fit_transform(features), -5, 5)
    clusters = KMeans(n_clusters=5, n_init=10, random_state=0).fit_predict(scaled)
    assert adjusted_rand_score(pc_.persona, clusters) >= 0.8


# ---------------------------------------------------------------------------------------------
# Default labels
# ---------------------------------------------------------------------------------------------


def _risk_features(pc_: PerCustomer) -> Array:
    months_income = pc_.income / 12.0
    return np.column_stack(
        [
            np.log1p(pc_.loan_balance / pc_.income),
            pc_.overdraft_share,
            np.clip(pc_.debit / pc_.income, 0, 3),
            np.clip(pc_.min_balance / months_income, -5, 5),
            np.log(pc_.income),
        ]
    )


def test_default_rate_depends_on_behaviour(per_customer: PerCustomer) -> None:
    pc_ = per_customer
    assert 0.05 <= pc_.defaulted.mean() <= 0.15
    rate = {p: pc_.defaulted[pc_.persona == p].mean() for p in PERSONAS}
    assert rate["loan_heavy"] > 2 * rate["steady"]
    assert rate["wealthy_inactive"] < rate["steady"]

    features = _risk_features(pc_)
    median = np.median(features, axis=0)
    iqr = np.subtract(*np.percentile(features, [75, 25], axis=0))
    z = (features - median) / np.where(iqr > 0, iqr, features.std(axis=0))
    composite = z[:, 0] + z[:, 1] + z[:, 2] - z[:, 3] - z[:, 4]
    assert _auc(pc_.defaulted, composite) >= 0.75


def test_logistic_regression_predicts_defaults(per_customer: PerCustomer) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    features = _risk_features(per_customer)
    scores = cross_val_predict(
        LogisticRegression(max_iter=1_000),
        features,
        per_customer.defaulted,
        cv=5,
        method="predict_proba",
    )[:, 1]
    assert _auc(per_customer.defaulted, scores) >= 0.75


# ---------------------------------------------------------------------------------------------
# Planted anomalies
# ---------------------------------------------------------------------------------------------


def test_anomalous_customers_are_planted(bank: Bank) -> None:
    truth = bank.truth_customers
    anomalous = _np(truth, "is_anomalous").astype(bool)
    kinds = _np(truth, "anomaly_kind")
    assert 0.003 <= anomalous.mean() <= 0.025
    assert set(kinds[anomalous]) <= set(CUSTOMER_ANOMALIES)
    assert all(k is None for k in kinds[~anomalous])


def test_anomalous_transactions_are_planted(bank: Bank) -> None:
    truth = bank.truth_transactions
    share = truth.num_rows / bank.meta.n_transactions
    assert 0.0005 <= share <= 0.004
    assert set(_np(truth, "anomaly_kind")) <= set(TRANSACTION_ANOMALIES)
    tx = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    planted = tx.join(truth, "transaction_id", join_type="inner", right_suffix="_truth")
    assert planted.num_rows == truth.num_rows
    assert _np(planted, "customer_id").tolist() == _np(planted, "customer_id_truth").tolist()


def test_large_amounts_dwarf_the_customers_usual(bank: Bank) -> None:
    tx = bank.transactions.filter(pa.array(bank.clean_tx_mask))
    truth = bank.truth_transactions
    large = set(_np(truth, "transaction_id")[_np(truth, "anomaly_kind") == "large_amount"])
    assert large
    ids = _np(tx, "transaction_id")
    owners = _np(tx, "customer_id")
    amount = _np(tx, "amount")
    debit = _np(tx, "direction") == "debit"
    planted = np.isin(ids, list(large))
    checked = 0
    for row in np.flatnonzero(planted)[:30]:
        usual = (owners == owners[row]) & debit & ~planted
        if usual.any():
            assert amount[row] > 2 * amount[usual].max()
            checked += 1
    assert checked >= 1


def test_truth_excludes_dirty_rows(bank: Bank) -> None:
    truth_ids = set(_np(bank.truth_transactions, "transaction_id"))
    dirty = bank.transactions.filter(pa.array(~bank.clean_tx_mask))
    duplicated = _np(bank.transactions, "transaction_id")
    ids, counts = np.unique(duplicated, return_counts=True)
    assert truth_ids.isdisjoint(set(ids[counts > 1]))
    assert truth_ids.isdisjoint(set(_np(dirty, "transaction_id")))
    anomalous = set(
        _np(bank.truth_customers, "customer_id")[_np(bank.truth_customers, "is_anomalous")]
    )
    customers = bank.customers
    income = _np(customers, "annual_income")
    birth = _np(customers, "birth_date")
    corrupted = set(_np(customers, "customer_id")[income < 0])
    corrupted |= set(_np(customers, "customer_id")[birth == date(1900, 1, 1)])
    corrupted |= set(_duplicate_customer_ids(bank))
    assert anomalous.isdisjoint(corrupted)


# ---------------------------------------------------------------------------------------------
# Dirty rows
# ---------------------------------------------------------------------------------------------


def _assert_dirty_counts(bank: Bank) -> None:
    customers, tx = bank.customers, bank.transactions
    found = {
        "duplicate_customer_id": customers.num_rows - len(np.unique(_np(customers, "customer_id"))),
        "negative_income": int((_np(customers, "annual_income") < 0).sum()),
        "placeholder_birth_date": int((_np(customers, "birth_date") == date(1900, 1, 1)).sum()),
        "null_customer_id": tx.column("customer_id").null_count,
        "unknown_customer_id": int(
            np.sum(
                np.asarray(pc.is_valid(tx.column("customer_id")))
                & ~np.asarray(pc.is_in(tx.column("customer_id"), customers.column("customer_id")))
            )
        ),
        "future_timestamp": int(
            (_np(tx, "timestamp").astype("datetime64[us]") >= np.datetime64("2099-01-01")).sum()
        ),
        "negative_amount": int((_np(tx, "amount") < 0).sum()),
        "duplicate_transaction_id": tx.num_rows - len(np.unique(_np(tx, "transaction_id"))),
    }
    assert found == bank.meta.n_dirty_rows
    assert all(count >= 1 for count in found.values())


def test_dirty_rows_are_planted_and_counted(bank: Bank) -> None:
    assert list(bank.meta.n_dirty_rows) == list(DIRTY_KINDS)
    _assert_dirty_counts(bank)


def test_duplicate_customer_differs_from_the_original(bank: Bank) -> None:
    for cid in _duplicate_customer_ids(bank):
        rows = bank.customers.filter(pc.equal(bank.customers.column("customer_id"), cid))
        assert rows.num_rows == 2
        first, second = rows.slice(0, 1).to_pylist()[0], rows.slice(1, 1).to_pylist()[0]
        assert first != second


def test_even_a_tiny_bank_has_every_dirty_kind(tmp_path: Path) -> None:
    bank = _load(generate_bank(tmp_path, 1, seed=0))
    assert bank.truth_customers.num_rows == 1
    _assert_dirty_counts(bank)


def test_clean_bank_has_no_dirty_rows(tmp_path: Path) -> None:
    meta = generate_bank(tmp_path, 300, seed=4, dirty_rows=False)
    bank = _load(meta)
    assert set(meta.n_dirty_rows.values()) == {0}
    assert bank.customers.num_rows == 300
    assert bank.transactions.num_rows == meta.n_transactions
    assert bool(np.all(bank.clean_tx_mask))
    assert (_np(bank.customers, "annual_income") > 0).all()


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": -5}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"tx_per_customer": 0}, "tx_per_customer"),
        ({"tx_per_customer": -1.0}, "tx_per_customer"),
        ({"tx_per_customer": float("nan")}, "tx_per_customer"),
        ({"months": 0}, "months"),
        ({"fmt": "xlsx"}, "fmt"),
        ({"seed": -1}, "seed"),
        ({"start": "2024-01-01"}, "start"),
    ],
)
def test_bad_arguments_raise_value_error(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"n_customers": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_bank(tmp_path, **args)
    assert not any(tmp_path.iterdir())


def test_accepts_a_datetime_start_and_numpy_sizes(tmp_path: Path) -> None:
    meta = generate_bank(
        tmp_path,
        np.int64(50),  # type: ignore[arg-type]
        seed=np.int64(1),  # type: ignore[arg-type]
        start=datetime(2024, 3, 1, 12, 0),
        months=1,
    )
    assert meta.n_customers == 50
    ts = _np(_read(meta.transactions), "timestamp").astype("datetime64[us]")
    assert ts[ts < np.datetime64("2090-01-01")].min() >= np.datetime64("2024-03-01")


# ---------------------------------------------------------------------------------------------
# Bank designs
# ---------------------------------------------------------------------------------------------

# SHA-256 of every file of `generate_bank(dir, 1_200, seed=13, fmt="csv", tx_per_customer=15)`
# as written before bank designs existed: the default design must keep producing them.
DEFAULT_BANK_DIGESTS = {
    "customers.csv": "720220f9be8bec70a0ab5395948082b48c386da1d3f98314cccbc548f6ed0776",
    "loans.csv": "8543af9e101698ba7adec621631b166024529349cbc23e6797bafd4c67cb0987",
    "transactions.csv": "e50cd7c458cd25c31cf5a8e414f73dcd771df29b4c64e3104a85ddac6420a1eb",
    "truth/customers.csv": "eb9620db04505aa320b054b9b984d3ce300133e764b09e03b7940c10a9fbb89b",
    "truth/labels.csv": "f0633158979c7ce125b582f2c368c4abbe700f79f546f95626e460b3f8c44038",
    "truth/transactions.csv": "1afd4ed83bd5b9ee8a7b7dc130c8b2009ce3f28267b68113488bafeaaecb5ff5",
}


def test_default_design_reproduces_the_original_bank(tmp_path: Path) -> None:
    generate_bank(tmp_path / "a", 1_200, seed=13, fmt="csv", tx_per_customer=15.0)
    generate_bank(
        tmp_path / "b", 1_200, seed=13, fmt="csv", tx_per_customer=15.0, design=BankDesign()
    )
    assert _digests(tmp_path / "a") == DEFAULT_BANK_DIGESTS
    assert _digests(tmp_path / "b") == DEFAULT_BANK_DIGESTS


def test_default_design_describes_todays_bank() -> None:
    design = DEFAULT_DESIGN
    assert design.persona_names == PERSONAS
    assert {p.name: p.share for p in design.personas} == DESIGNED_SHARES
    assert design.anomaly_kinds == CUSTOMER_ANOMALIES
    assert design.anomaly_rate == 0.01
    assert design.customer_file_columns() == [c for c in CUSTOMERS.names if c != "age"]
    assert design.transaction_file_columns() == TRANSACTIONS.names
    assert design.default == DefaultMechanism()


def test_a_design_writes_only_its_optional_columns(tmp_path: Path) -> None:
    design = replace(
        DEFAULT_DESIGN,
        customer_columns=("region", "loan_balance"),
        transaction_columns=("channel",),
    )
    bank = _load(generate_bank(tmp_path, 300, seed=12, design=design))
    assert bank.customers.column_names == [
        "customer_id",
        "birth_date",
        "region",
        "annual_income",
        "loan_balance",
    ]
    assert bank.transactions.column_names == [
        "customer_id",
        "timestamp",
        "amount",
        "transaction_id",
        "direction",
        "channel",
    ]
    _assert_dirty_counts(bank)


def test_leaving_out_columns_keeps_the_rest_of_the_bank(tmp_path: Path) -> None:
    lean = replace(DEFAULT_DESIGN, customer_columns=(), transaction_columns=())
    full = _load(generate_bank(tmp_path / "full", 300, seed=11, fmt="csv"))
    bare = _load(generate_bank(tmp_path / "bare", 300, seed=11, fmt="csv", design=lean))
    for table in ("customers", "transactions"):
        kept = getattr(bare, table)
        assert kept.equals(getattr(full, table).select(kept.column_names))
    assert bare.labels.equals(full.labels)
    assert bare.truth_customers.equals(full.truth_customers)


def test_persona_shares_and_anomaly_weights_are_followed(tmp_path: Path) -> None:
    personas = tuple(
        replace(p, share=s) for p, s in zip(DEFAULT_DESIGN.personas[:2], (0.7, 0.3), strict=True)
    )
    design = replace(
        DEFAULT_DESIGN,
        personas=personas,
        anomaly_rate=0.2,
        anomalies=(("money_mule", 3.0), ("round_amounts", 1.0)),
    )
    bank = _load(generate_bank(tmp_path, 2_000, seed=12, design=design, dirty_rows=False))
    persona = _np(bank.truth_customers, "persona")
    assert np.mean(persona == "steady") == pytest.approx(0.7, abs=0.04)
    assert set(persona) == {"steady", "wealthy_inactive"}
    kind = _np(bank.truth_customers, "anomaly_kind")
    planted = kind[kind != None]  # noqa: E711
    assert len(planted) / 2_000 == pytest.approx(0.2, abs=0.03)
    assert np.mean(planted == "money_mule") == pytest.approx(0.75, abs=0.07)


def test_default_mechanism_sets_the_default_rate(tmp_path: Path) -> None:
    rates = []
    for intercept in (-4.5, -3.3, -2.0):
        design = replace(DEFAULT_DESIGN, default=DefaultMechanism(intercept=intercept))
        meta = generate_bank(tmp_path / str(intercept), 1_500, seed=11, design=design)
        rates.append(float(_np(_read(meta.labels), "defaulted").mean()))
    assert rates[0] < rates[1] < rates[2]
    assert 0.05 <= rates[1] <= 0.15


def _persona(**changes: Any) -> Persona:
    return replace(DEFAULT_DESIGN.personas[0], **changes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: replace(DEFAULT_DESIGN, personas=()), "at least one persona"),
        (lambda: replace(DEFAULT_DESIGN, personas=(_persona(share=0.5),)), "add up to 1"),
        (
            lambda: replace(DEFAULT_DESIGN, personas=(_persona(share=0.5),) * 2),
            "unique",
        ),
        (lambda: replace(DEFAULT_DESIGN, anomalies=(("smurfing", 1.0),)), "unknown anomaly"),
        (lambda: replace(DEFAULT_DESIGN, anomalies=(("night_owl", 0.0),)), "positive"),
        (lambda: replace(DEFAULT_DESIGN, anomaly_rate=0.9), "anomaly_rate"),
        (lambda: replace(DEFAULT_DESIGN, customer_columns=("birth_date",)), "optional"),
        (lambda: replace(DEFAULT_DESIGN, transaction_columns=("amount",)), "optional"),
        (lambda: replace(DEFAULT_DESIGN, missed_payments=1.5), "missed_payments"),
        (lambda: replace(DEFAULT_DESIGN, reporting_threshold=10), "reporting_threshold"),
        (lambda: _persona(categories=(1.0, 2.0)), "categories"),
        (lambda: _persona(channel_bias=(1.0,) * 4), "channel_bias"),
        (lambda: _persona(share=0.0), "share"),
        (lambda: _persona(salaried=False, credit_income=0.0), "credit_income"),
        (lambda: DefaultMechanism(intercept=float("nan")), "finite"),
    ],
)
def test_bad_designs_raise_value_error(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_generate_bank_refuses_a_design_of_another_type(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="design"):
        generate_bank(tmp_path, 10, design="high_street")  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_optional_column_lists_cover_the_schema() -> None:
    assert set(OPTIONAL_CUSTOMER_COLUMNS) < set(CUSTOMERS.names)
    assert set(OPTIONAL_TRANSACTION_COLUMNS) < set(TRANSACTIONS.names)
    assert not {c.name for c in TRANSACTIONS.required} & set(OPTIONAL_TRANSACTION_COLUMNS)
