"""Scenario banks: designs unlike the default bank, with planted typologies seen in raw data.

Every typology is checked the way a bank's monitoring would see it, from the written files
only: a signature computed per customer from their transactions must hold for the customers
planted with it and for few of the normal customers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from finintel.scenarios import PERSONA_LIBRARY, SCENARIOS
from finintel.synthetic import (
    ANOMALY_KINDS,
    CUSTOMER_ANOMALIES,
    DEFAULT_DESIGN,
    OPTIONAL_CUSTOMER_COLUMNS,
    OPTIONAL_TRANSACTION_COLUMNS,
    TYPOLOGIES,
    BankDesign,
    DefaultMechanism,
    GeneratedBank,
    generate_bank,
)

N = 2_000
SEEDS = {"high_street": 11, "digital_gig": 12, "regional_business": 13}
DAY = np.int64(86_400_000_000)
MINUTE = np.int64(60_000_000)
NET_SHARE = 0.72
PURCHASES = ("groceries", "dining", "travel", "entertainment", "health", "shopping")

Array = npt.NDArray[Any]


def _np(table: pa.Table, column: str) -> Array:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False))


@dataclass(frozen=True)
class Customer:
    """One customer's transactions in time order, as read from the written file."""

    time: Array  # microseconds
    amount: Array
    credit: Array
    channel: Array | None
    category: Array | None
    monthly_net: float


@dataclass(frozen=True)
class ScenarioBank:
    """A generated scenario bank read back, with transaction columns as arrays."""

    design: BankDesign
    meta: GeneratedBank
    customers: pa.Table
    transactions: pa.Table
    persona: Array
    kind: Array  # planted anomaly kind, None for normal customers
    defaulted: Array
    starts: Array  # first transaction row of each customer, and the row count at the end
    income: Array
    time: Array  # microseconds
    amount: Array
    credit: Array
    channel: Array | None
    category: Array | None

    @property
    def normal(self) -> Array:
        return np.array([k is None for k in self.kind])

    def customer(self, i: int) -> Customer:
        rows = slice(int(self.starts[i]), int(self.starts[i + 1]))
        return Customer(
            time=self.time[rows],
            amount=self.amount[rows],
            credit=self.credit[rows],
            channel=None if self.channel is None else self.channel[rows],
            category=None if self.category is None else self.category[rows],
            monthly_net=float(self.income[i]) * NET_SHARE / 12.0,
        )


def _optional(table: pa.Table, name: str) -> Array | None:
    return _np(table, name) if name in table.column_names else None


def _load(design: BankDesign, meta: GeneratedBank) -> ScenarioBank:
    customers = pq.read_table(meta.customers)
    tx = pq.read_table(meta.transactions)
    truth = pq.read_table(meta.truth_customers)
    labels = pq.read_table(meta.labels)
    ids = _np(truth, "customer_id")
    assert _np(customers, "customer_id").tolist() == ids.tolist()
    owner = np.asarray(pc.index_in(tx.column("customer_id"), truth.column("customer_id")))
    assert np.all(np.diff(owner) >= 0), "transactions are grouped by customer"
    return ScenarioBank(
        design=design,
        meta=meta,
        customers=customers,
        transactions=tx,
        persona=_np(truth, "persona"),
        kind=_np(truth, "anomaly_kind"),
        defaulted=_np(labels, "defaulted"),
        starts=np.searchsorted(owner, np.arange(len(ids) + 1)),
        income=_np(customers, "annual_income"),
        time=_np(tx, "timestamp").astype("datetime64[us]").astype(np.int64),
        amount=_np(tx, "amount"),
        credit=_np(tx, "direction") == "credit",
        channel=_optional(tx, "channel"),
        category=_optional(tx, "category"),
    )


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioBank]:
    loaded = {}
    for name, design in SCENARIOS.items():
        out = tmp_path_factory.mktemp(name)
        meta = generate_bank(out, N, seed=SEEDS[name], design=design, dirty_rows=False)
        loaded[name] = _load(design, meta)
    return loaded


@pytest.fixture(scope="module")
def planted_banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioBank]:
    """The scenarios with 6% anomalous customers, so every typology has a few dozen."""
    loaded = {}
    for name, design in SCENARIOS.items():
        out = tmp_path_factory.mktemp(f"{name}_planted")
        rich = replace(design, anomaly_rate=0.06)
        meta = generate_bank(out, N, seed=SEEDS[name], design=rich, dirty_rows=False)
        loaded[name] = _load(rich, meta)
    return loaded


# ---------------------------------------------------------------------------------------------
# Signatures: what a monitoring team would look for, from the raw transactions
# ---------------------------------------------------------------------------------------------


def _max_in_window(time: Array, width: np.int64) -> tuple[int, int]:
    """Most rows within any window of `width` starting at a row: (count, first row)."""
    if len(time) == 0:
        return 0, 0
    counts = np.searchsorted(time, time + width, side="left") - np.arange(len(time))
    first = int(np.argmax(counts))
    return int(counts[first]), first


def pass_through_pairs(c: Customer) -> int:
    """Credits of 1,000 or more followed within 24 h by a debit of 90-100% of them."""
    debits = np.flatnonzero(~c.credit)
    pairs = 0
    for i in np.flatnonzero(c.credit & (c.amount >= 1_000)):
        after = debits[(c.time[debits] > c.time[i]) & (c.time[debits] <= c.time[i] + DAY)]
        ratio = c.amount[after] / c.amount[i]
        pairs += bool(np.any((ratio >= 0.9 - 1e-9) & (ratio <= 1.0 + 1e-9)))
    return pairs


def velocity_window(c: Customer) -> tuple[int, float, float]:
    """The busiest 21 days: transactions, share of credits, and money out / money in
    without the largest row of each direction (a salary or a rent payment that happens
    to fall in the window)."""
    count, first = _max_in_window(c.time, 21 * DAY)
    amount, credit = c.amount[first : first + count], c.credit[first : first + count]

    def trimmed(values: Array) -> float:
        return float(values.sum() - values.max()) if len(values) > 1 else 0.0

    money_in, money_out = trimmed(amount[credit]), trimmed(amount[~credit])
    share = float(credit.mean()) if count else 0.0
    return count, share, money_out / money_in if money_in else np.inf


def is_velocity(c: Customer) -> bool:
    count, share, out_in = velocity_window(c)
    return count >= 24 and 0.3 <= share <= 0.7 and 0.6 <= out_in <= 1.6


def large_purchases_in_30_days(c: Customer) -> int:
    """Purchases of at least a quarter of a month's net pay within any 30 days."""
    big = ~c.credit & (c.amount >= 0.25 * c.monthly_net)
    if c.category is not None:
        big &= np.isin(c.category, PURCHASES)
    elif c.channel is not None:
        big &= np.isin(c.channel, ("card", "online"))
    return _max_in_window(c.time[big], 30 * DAY)[0]


def near_threshold_credits(c: Customer, threshold: float) -> tuple[int, float]:
    """Credits of 85-99.9% of the threshold within any 10 weeks, and the days they span."""
    near = c.credit & (c.amount >= 0.85 * threshold) & (c.amount < threshold)
    time = c.time[near]
    count, first = _max_in_window(time, 70 * DAY)
    span = (time[first + count - 1] - time[first]) / DAY if count else 0.0
    return count, float(span)


def dormant_then_burst(c: Customer) -> tuple[float, int]:
    """The longest silence in days and the transactions in the 10 days after it."""
    if len(c.time) < 2:
        return 0.0, 0
    gaps = np.diff(c.time)
    at = int(np.argmax(gaps))
    wake = c.time[at + 1]
    after = int(np.sum((c.time >= wake) & (c.time < wake + 10 * DAY)))
    return float(gaps[at] / DAY), after


def tiny_card_burst(c: Customer) -> tuple[int, float]:
    """Most payments of 2.00 or less within 15 minutes, and the online share of them."""
    tiny = ~c.credit & (c.amount <= 2.0)
    count, first = _max_in_window(c.time[tiny], 15 * MINUTE)
    if count == 0 or c.channel is None:
        return count, 0.0
    channel = c.channel[tiny][first : first + count]
    return count, float(np.mean(channel == "online"))


def round_share(c: Customer) -> float:
    """Share of transactions that are whole multiples of 100."""
    if len(c.amount) == 0:
        return 0.0
    cents = np.round(c.amount * 100).astype(np.int64)
    return float(np.mean((cents % 10_000 == 0) & (cents > 0)))


def signature(kind: str, c: Customer, design: BankDesign) -> bool:
    """Whether the customer's raw transactions show the typology."""
    if kind == "pass_through":
        return pass_through_pairs(c) >= 3
    if kind == "velocity":
        return is_velocity(c)
    if kind == "large_spend_month":
        return large_purchases_in_30_days(c) >= 3
    if kind == "structuring":
        count, span = near_threshold_credits(c, design.reporting_threshold)
        return count >= 5 and span >= 14
    if kind == "dormant_then_active":
        silence, burst = dormant_then_burst(c)
        return silence >= 90 and burst >= 10
    if kind == "card_testing":
        count, online = tiny_card_burst(c)
        return count >= 6 and (c.channel is None or online >= 0.5)
    if kind == "round_amounts":
        return round_share(c) >= 0.2
    raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------
# The scenario set
# ---------------------------------------------------------------------------------------------


def test_scenarios_differ_from_the_default_and_from_each_other() -> None:
    designs = [DEFAULT_DESIGN, *SCENARIOS.values()]
    assert len(SCENARIOS) >= 3
    assert all(name == d.name for name, d in SCENARIOS.items())
    for i, a in enumerate(designs):
        for b in designs[i + 1 :]:
            assert a.persona_names != b.persona_names or a.personas != b.personas
            assert set(a.anomaly_kinds) != set(b.anomaly_kinds)
            assert a.default != b.default
    for design in SCENARIOS.values():
        assert len(design.description) > 80
        assert not set(design.persona_names) & set(DEFAULT_DESIGN.persona_names)


def test_every_typology_is_planted_in_at_least_two_scenarios() -> None:
    for design in SCENARIOS.values():
        planted = set(design.anomaly_kinds)
        assert planted <= set(TYPOLOGIES)
        assert len(planted) >= 4
        assert 0.01 <= design.anomaly_rate <= 0.03
    for kind in TYPOLOGIES:
        assert sum(kind in d.anomaly_kinds for d in SCENARIOS.values()) >= 2, kind
    assert set(DEFAULT_DESIGN.anomaly_kinds) == set(CUSTOMER_ANOMALIES)


def test_scenarios_leave_out_different_columns() -> None:
    def lacks(design: BankDesign, column: str) -> bool:
        return column not in design.customer_columns + design.transaction_columns

    designs = list(SCENARIOS.values())
    assert any(lacks(d, "balance_after") and lacks(d, "credit_score") for d in designs)
    assert any(lacks(d, "category") for d in designs)
    everything = set(OPTIONAL_CUSTOMER_COLUMNS) | set(OPTIONAL_TRANSACTION_COLUMNS)
    assert any(set(d.customer_columns + d.transaction_columns) == everything for d in designs)


def test_default_mechanisms_have_different_drivers() -> None:
    def top(mechanism: DefaultMechanism) -> set[str]:
        weights = {
            "debt": mechanism.debt_to_income,
            "balance_and_spending": abs(mechanism.low_balance) * 4
            + mechanism.overdraft
            + mechanism.net_outflow,
            "utilisation_and_arrears": mechanism.utilisation + mechanism.arrears * 2,
        }
        return {max(weights, key=lambda k: weights[k])}

    drivers = [top(d.default) for d in SCENARIOS.values()]
    assert set().union(*drivers) == {"debt", "balance_and_spending", "utilisation_and_arrears"}


# ---------------------------------------------------------------------------------------------
# Generated scenario banks
# ---------------------------------------------------------------------------------------------


def test_files_hold_the_designed_columns(banks: dict[str, ScenarioBank]) -> None:
    for bank in banks.values():
        design = bank.design
        assert bank.customers.column_names == design.customer_file_columns()
        assert bank.transactions.column_names == design.transaction_file_columns()
        for column in OPTIONAL_CUSTOMER_COLUMNS:
            assert (column in bank.customers.column_names) == (column in design.customer_columns)
        for column in OPTIONAL_TRANSACTION_COLUMNS:
            written = column in bank.transactions.column_names
            assert written == (column in design.transaction_columns)
    lean = banks["digital_gig"]
    assert "balance_after" not in lean.transactions.column_names
    assert "credit_score" not in lean.customers.column_names
    assert "category" not in banks["regional_business"].transactions.column_names
    assert len(banks["high_street"].transactions.column_names) == 8


def test_truth_files_name_persona_and_typology(banks: dict[str, ScenarioBank]) -> None:
    for bank in banks.values():
        truth = pq.read_table(bank.meta.truth_customers)
        assert truth.column_names == ["customer_id", "persona", "is_anomalous", "anomaly_kind"]
        anomalous = _np(truth, "is_anomalous").astype(bool)
        assert set(bank.kind[anomalous]) == set(bank.design.anomaly_kinds)
        assert all(k is None for k in bank.kind[~anomalous])
        assert 0.006 <= anomalous.mean() <= 0.04
        assert set(bank.persona) == set(bank.design.persona_names)


def test_persona_shares_follow_the_design(banks: dict[str, ScenarioBank]) -> None:
    for bank in banks.values():
        for persona in bank.design.personas:
            share = float(np.mean(bank.persona == persona.name))
            assert share == pytest.approx(persona.share, abs=0.035), persona.name


def test_default_rates_are_realistic(banks: dict[str, ScenarioBank]) -> None:
    for name, bank in banks.items():
        assert 0.05 <= bank.defaulted.mean() <= 0.2, name


def _auc(labels: Array, score: Array) -> float:
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]  # ties share their rank
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _lowest_balance(bank: ScenarioBank) -> Array:
    owner = np.repeat(np.arange(N), np.diff(bank.starts))
    low = _np(bank.customers, "account_balance").astype(float)
    np.minimum.at(low, owner, _np(bank.transactions, "balance_after"))
    return low


def test_defaults_follow_each_scenarios_driver(banks: dict[str, ScenarioBank]) -> None:
    debt = banks["high_street"]
    dti = _np(debt.customers, "loan_balance") / debt.income
    assert _auc(debt.defaulted, dti) >= 0.62

    lean = banks["digital_gig"]  # no balance_after: the customer's own balance tells
    balance = _np(lean.customers, "account_balance") / lean.income
    assert _auc(lean.defaulted, -balance) >= 0.7
    assert _auc(lean.defaulted, _np(lean.customers, "loan_balance")) < 0.6

    limits = banks["regional_business"]
    use = np.maximum(-_lowest_balance(limits), 0.0) / np.maximum(
        _np(limits.customers, "credit_limit"), 100.0
    )
    assert _auc(limits.defaulted, use) >= 0.65


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [(name, kind) for name, design in SCENARIOS.items() for kind in design.anomaly_kinds],
)
def test_typology_is_visible_in_the_raw_transactions(
    planted_banks: dict[str, ScenarioBank], scenario: str, kind: str
) -> None:
    bank = planted_banks[scenario]
    planted = np.flatnonzero(bank.kind == kind)
    normal = np.flatnonzero(bank.normal)
    assert len(planted) >= 10
    shown = [signature(kind, bank.customer(int(i)), bank.design) for i in planted]
    assert np.mean(shown) >= 0.9, f"{kind}: {sum(shown)} of {len(planted)} planted show it"
    sample = normal[:: max(1, len(normal) // 600)]
    false = [signature(kind, bank.customer(int(i)), bank.design) for i in sample]
    assert np.mean(false) <= 0.01, f"{kind}: {sum(false)} of {len(sample)} normal show it"


def test_pass_through_credits_leave_within_a_day(
    planted_banks: dict[str, ScenarioBank],
) -> None:
    for name in ("high_street", "digital_gig"):
        bank = planted_banks[name]
        for i in np.flatnonzero(bank.kind == "pass_through"):
            assert pass_through_pairs(bank.customer(int(i))) >= 3


def test_typologies_are_not_given_away_by_one_column(
    planted_banks: dict[str, ScenarioBank],
) -> None:
    """Planted customers use the channels and categories normal customers use, and keep
    their persona's profile (income) and everyday life besides the typology."""
    for bank in planted_banks.values():
        normal = bank.normal
        owner = np.repeat(np.arange(N), np.diff(bank.starts))
        planted_rows = ~normal[owner]
        for column in ("channel", "category"):
            if column in bank.transactions.column_names:
                values = _np(bank.transactions, column)
                assert set(values[planted_rows]) <= set(values[~planted_rows])
        amounts = _np(bank.transactions, "amount")
        low, high = amounts[~planted_rows].min(), amounts[~planted_rows].max()
        inside = (amounts[planted_rows] >= low) & (amounts[planted_rows] <= high)
        assert inside.mean() >= 0.98
        ratio = np.median(bank.income[~normal]) / np.median(bank.income[normal])
        assert 0.6 <= ratio <= 1.6
        for i in np.flatnonzero(~normal)[:20]:
            everyday = bank.customer(int(i))
            assert len(everyday.time) >= 5  # their own transactions stay


def test_cash_and_branch_group_differs_mainly_in_how_it_pays(
    banks: dict[str, ScenarioBank],
) -> None:
    bank = banks["high_street"]
    owner = np.repeat(np.arange(N), np.diff(bank.starts))
    channel = _np(bank.transactions, "channel")
    debit = _np(bank.transactions, "direction") == "debit"
    counts = np.bincount(owner, weights=debit, minlength=N)
    cash_like = np.bincount(owner, weights=debit & np.isin(channel, ["atm", "branch"]), minlength=N)
    share = cash_like / np.maximum(counts, 1)
    cash, card = bank.persona == "cash_and_branch", bank.persona == "salaried_card"
    assert 0.10 <= cash.mean() <= 0.20
    assert np.median(share[cash]) > np.median(share[card]) + 0.2
    age = (np.datetime64("2024-01-01") - _np(bank.customers, "birth_date")).astype(int) / 365.25
    n_tx = np.diff(bank.starts)
    for values in (bank.income, age, n_tx.astype(float), share):
        lo = max(values[cash].min(), values[card].min())
        hi = min(values[cash].max(), values[card].max())
        assert lo < hi, "no single column separates the two groups"
    assert 0.7 <= np.median(bank.income[cash]) / np.median(bank.income[card]) <= 1.1
    assert 0.8 <= np.median(n_tx[cash]) / np.median(n_tx[card]) <= 1.25


def test_personas_have_realistic_values(banks: dict[str, ScenarioBank]) -> None:
    for bank in banks.values():
        age = (np.datetime64("2024-01-01") - _np(bank.customers, "birth_date")).astype(int)
        assert age.min() >= 18 * 365 and age.max() <= 100 * 366
        assert bank.income.min() >= 6_000 and np.median(bank.income) <= 120_000
        n_tx = np.diff(bank.starts)
        assert 5 <= np.median(n_tx) <= 60
        amounts = _np(bank.transactions, "amount")
        assert 20 <= np.median(amounts) <= 2_000
    bank = banks["high_street"]
    age = (np.datetime64("2024-01-01") - _np(bank.customers, "birth_date")).astype(int) / 365.25
    retiree, student = bank.persona == "retiree", bank.persona == "student"
    assert age[retiree].min() >= 63 and age[student].max() < 29
    assert np.median(bank.income[student]) < 0.5 * np.median(bank.income[retiree])


# ---------------------------------------------------------------------------------------------
# Determinism and dirty rows
# ---------------------------------------------------------------------------------------------


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_and_design_give_identical_files(tmp_path: Path, name: str) -> None:
    design = SCENARIOS[name]
    generate_bank(tmp_path / "a", 400, seed=12, design=design)
    generate_bank(tmp_path / "b", 400, seed=12, design=design)
    generate_bank(tmp_path / "c", 400, seed=13, design=design)
    generate_bank(tmp_path / "d", 400, seed=12)
    first = _digests(tmp_path / "a")
    assert first == _digests(tmp_path / "b")
    assert all(first[f] != digest for f, digest in _digests(tmp_path / "c").items())
    assert all(first[f] != digest for f, digest in _digests(tmp_path / "d").items())


def test_a_scenario_bank_keeps_its_dirty_rows(tmp_path: Path) -> None:
    meta = generate_bank(tmp_path, 1_000, seed=11, design=SCENARIOS["digital_gig"])
    customers, tx = pq.read_table(meta.customers), pq.read_table(meta.transactions)
    dirty = meta.n_dirty_rows
    assert customers.num_rows == 1_000 + dirty["duplicate_customer_id"]
    assert int((_np(customers, "annual_income") < 0).sum()) == dirty["negative_income"]
    assert tx.column("customer_id").null_count == dirty["null_customer_id"]
    assert int((_np(tx, "amount") < 0).sum()) == dirty["negative_amount"]
    assert tx.num_rows == meta.n_transactions + sum(
        dirty[k]
        for k in (
            "null_customer_id",
            "unknown_customer_id",
            "future_timestamp",
            "negative_amount",
            "duplicate_transaction_id",
        )
    )


def test_missed_payments_leave_months_without_a_loan_payment(tmp_path: Path) -> None:
    design = replace(SCENARIOS["regional_business"], transaction_columns=("category",))
    meta = generate_bank(tmp_path, 1_500, seed=13, design=design, dirty_rows=False)
    tx, loans = pq.read_table(meta.transactions), pq.read_table(meta.loans)
    labels = pq.read_table(meta.labels)
    ids = _np(labels, "customer_id")
    owner = np.asarray(pc.index_in(tx.column("customer_id"), labels.column("customer_id")))
    payments = np.bincount(owner, weights=_np(tx, "category") == "loan_payment", minlength=len(ids))
    running = np.isin(ids, _np(loans, "customer_id")[_np(loans, "status") == "active"])
    long_running = running & (payments > 0)
    short = long_running & (payments < 12)
    assert 0.05 <= short.sum() / long_running.sum() <= 0.8
    defaulted = _np(labels, "defaulted")
    assert defaulted[short].mean() > 1.5 * defaulted[long_running & ~short].mean()


def test_default_design_plants_no_typology(tmp_path: Path) -> None:
    meta = generate_bank(tmp_path, 1_500, seed=12)
    kinds = set(_np(pq.read_table(meta.truth_customers), "anomaly_kind")) - {None}
    assert kinds == set(CUSTOMER_ANOMALIES)
    assert set(ANOMALY_KINDS) == set(CUSTOMER_ANOMALIES) | set(TYPOLOGIES)


def test_persona_library_values_are_in_range() -> None:
    for persona in PERSONA_LIBRARY.values():
        assert 8_000 <= persona.income[0] <= 200_000
        assert 18 <= persona.age[2] < persona.age[0] < persona.age[3] <= 100
        assert 0 < persona.activity <= 5
