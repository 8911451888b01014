"""Transaction alerts: planted transactions found, thresholds, reasons, degradation, files."""

from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from conftest import SyntheticRun, transactions_with_segments
from finintel.errors import DataError
from finintel.models import transaction_alerts
from finintel.models.base import STATE_FILE
from finintel.models.explain import MAX_QUOTED_SDS
from finintel.models.transaction_alerts import TransactionAlerter, TransactionTables
from finintel.settings.anomaly import TransactionAlertSettings

# Bars chosen from synthetic seeds 11-13 (PR-AUC 0.64-0.67, recall among the alerts at the
# default 0.5% rate: large amounts 0.79-0.84, bursts in a new channel 0.66-0.71); planted
# transactions are about 0.2% of all, so a random ranking has PR-AUC 0.002.
MIN_PR_AUC = 0.45
MIN_RECALL = {"large_amount": 0.6, "new_channel_burst": 0.45}


def store(con: duckdb.DuckDBPyConnection, table: object, target: str) -> str:
    """Keep an output table in the connection as `target`, for SQL checks."""
    con.register("_out", table)
    con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _out")
    con.unregister("_out")
    return target


def alerts(
    model: TransactionAlerter,
    con: duckdb.DuckDBPyConnection,
    transactions: str = "clean_transactions",
    segments: str | None = "customer_segments",
    target: str = "transaction_alerts",
) -> str:
    return store(con, model.predict(TransactionTables(con, transactions, segments)).table, target)


@pytest.fixture(scope="module")
def con(synthetic: SyntheticRun) -> duckdb.DuckDBPyConnection:
    c = transactions_with_segments(synthetic, 4)
    c.execute(f"CREATE TABLE truth AS SELECT * FROM '{synthetic.bank.truth_transactions}'")
    return c


@pytest.fixture(scope="module")
def alerter(con: duckdb.DuckDBPyConnection) -> TransactionAlerter:
    return TransactionAlerter(TransactionAlertSettings(), seed=0).fit(TransactionTables(con))


def test_planted_transactions_score_high(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    store(con, alerter.decision_function(TransactionTables(con)), "scores")
    rows = con.execute(
        "SELECT s.alert_score, t.anomaly_kind IS NOT NULL FROM scores s "
        "LEFT JOIN truth t USING (transaction_id) ORDER BY s.transaction_id"
    ).fetchall()
    score = np.array([r[0] for r in rows])
    planted = np.array([r[1] for r in rows])
    assert planted.sum() > 100
    assert average_precision_score(planted, score) >= MIN_PR_AUC
    alerts(alerter, con)
    for kind, bar in MIN_RECALL.items():
        recall = con.execute(
            "SELECT avg(CAST(a.transaction_id IS NOT NULL AS DOUBLE)) FROM truth t "
            "LEFT JOIN transaction_alerts a USING (transaction_id) WHERE t.anomaly_kind = ?",
            [kind],
        ).fetchone()
        assert recall is not None and recall[0] >= bar, (kind, recall)


def test_a_large_amount_is_explained_against_its_category(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    alerts(alerter, con, target="alerts_c")
    reasons = con.execute(
        "SELECT a.category, a.reasons FROM alerts_c a JOIN truth t USING (transaction_id) "
        "WHERE t.anomaly_kind = 'large_amount'"
    ).fetchall()
    assert reasons
    said = [(c, r) for c, r in reasons if f"robust SDs above typical {c} debits (median" in r]
    assert len(said) >= 0.8 * len(reasons), reasons[:3]


def test_alert_table_rows_and_order(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    alerts(alerter, con, target="alerts_a")
    cols = [d[0] for d in con.execute("SELECT * FROM alerts_a LIMIT 0").description]
    assert cols == [
        "transaction_id",
        "customer_id",
        "timestamp",
        "amount",
        "direction",
        "channel",
        "category",
        "segment_id",
        "alert_score",
        "reasons",
    ]
    n, n_tx = con.execute(
        "SELECT (SELECT count(*) FROM alerts_a), (SELECT count(*) FROM clean_transactions)"
    ).fetchone() or (0, 0)
    assert n == alerter.metrics_["flagged"]
    assert abs(n - 0.005 * n_tx) <= 5
    scores = [r[0] for r in con.execute("SELECT alert_score FROM alerts_a").fetchall()]
    assert scores == sorted(scores, reverse=True)
    empty = con.execute("SELECT count(*) FROM alerts_a WHERE reasons = ''").fetchone()
    assert empty == (0,)
    burst = con.execute(
        "SELECT reasons FROM alerts_a WHERE reasons LIKE '%other transactions in the previous%'"
    ).fetchall()
    assert burst


def test_budget_wins(con: duckdb.DuckDBPyConnection) -> None:
    settings = TransactionAlertSettings(expected_rate=0.3, alert_budget=40)
    model = TransactionAlerter(settings).fit(TransactionTables(con))
    alerts(model, con, target="alerts_b")
    assert con.execute("SELECT count(*) FROM alerts_b").fetchone() == (40,)
    assert model.metrics_["threshold"]["source"] == "alert_budget"


@pytest.mark.slow
def test_deterministic_and_exact_round_trip(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    again = TransactionAlerter(TransactionAlertSettings(), seed=0).fit(TransactionTables(con))
    loaded = TransactionAlerter.from_files(alerter.to_files())
    alerts(alerter, con, target="r1")
    alerts(again, con, target="r2")
    alerts(loaded, con, target="r3")
    first = con.execute("SELECT * FROM r1").fetchall()
    assert first == con.execute("SELECT * FROM r2").fetchall()
    assert first == con.execute("SELECT * FROM r3").fetchall()
    json.loads(alerter.to_files()[STATE_FILE])
    json.dumps(alerter.metrics_, allow_nan=False)


@pytest.mark.slow
def test_kept_work_table_and_alerts_are_reused_only_for_the_same_inputs(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerter.predict(TransactionTables(con))  # this alerter's last alerts are these inputs'

    builds: list[str] = []
    build = transaction_alerts._components_table

    def counting(*args: object, **kwargs: object) -> None:
        builds.append("built")
        build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction_alerts, "_components_table", counting)
    # a loaded alerter has kept nothing: its first alerts are built here
    alerts(TransactionAlerter.from_files(alerter.to_files()), con, target="fresh")
    assert len(builds) == 1
    kept = TransactionAlerter(TransactionAlertSettings(), seed=0).fit(
        TransactionTables(con), keep_for_alerts=True
    )
    assert len(builds) == 2
    alerts(kept, con, target="reused")
    assert len(builds) == 2  # the fit's table, not a new one
    expected = con.execute("SELECT * FROM fresh").fetchall()
    assert con.execute("SELECT * FROM reused").fetchall() == expected
    alerts(kept, con, target="again")  # the same inputs again: the same answer, not rebuilt
    assert len(builds) == 2
    assert con.execute("SELECT * FROM again").fetchall() == expected
    con.execute("CREATE TABLE one_less AS SELECT * FROM clean_transactions LIMIT 100")
    kept.predict(TransactionTables(con, transactions="one_less"))  # other inputs: built anew
    assert len(builds) == 3

    # the segments change between fit and alerts: the kept table is not used
    con.execute("CREATE TABLE moved AS SELECT * FROM customer_segments")
    changed = TransactionAlerter(TransactionAlertSettings(), seed=0)
    changed.fit(TransactionTables(con, segments="moved"), keep_for_alerts=True)
    con.execute("UPDATE moved SET segment_id = (segment_id + 1) % 4 WHERE segment_id < 2")
    alerts(changed, con, segments="moved", target="after_move")
    assert len(builds) == 5
    fresh = TransactionAlerter.from_files(changed.to_files())
    alerts(fresh, con, segments="moved", target="after_move_fresh")
    assert (
        con.execute("SELECT * FROM after_move").fetchall()
        == con.execute("SELECT * FROM after_move_fresh").fetchall()
    )


def test_a_rare_category_is_not_a_reference(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE rare AS SELECT * REPLACE (CASE WHEN transaction_id IN "
        "(SELECT transaction_id FROM clean_transactions ORDER BY transaction_id LIMIT 3) "
        "THEN 'rare' ELSE category END AS category) FROM clean_transactions"
    )
    model = TransactionAlerter().fit(TransactionTables(con, "rare", "customer_segments"))
    assert "rare" not in {row["category"] for row in model.category_stats_}
    assert {row["category"] for row in model.category_stats_} >= {"groceries", "shopping"}
    table = model.decision_function(TransactionTables(con, "rare", "customer_segments"))
    store(con, table, "rare_scores")
    judged = con.execute(
        "SELECT r.category = 'rare', count(category_amount) FROM rare_scores s "
        "JOIN rare r USING (transaction_id) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert judged[0][1] > 0 and judged[1] == (True, 0)


def test_degrades_without_optional_columns(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE bare AS SELECT customer_id, timestamp, amount, direction, "
        "CAST(NULL AS VARCHAR) AS channel FROM clean_transactions"
    )
    model = TransactionAlerter().fit(TransactionTables(con, "bare", None))
    assert set(model.metrics_["skipped_components"]) == {
        "new_channel",
        "new_category",
        "category_amount",
        "segment_amount",
    }
    assert model.metrics_["transaction_key"].startswith("customer_id@timestamp#n")
    alerts(model, con, "bare", None, target="bare_alerts")
    keys = con.execute("SELECT transaction_id FROM bare_alerts LIMIT 3").fetchall()
    assert keys and all("@" in k[0] and "#" in k[0] for k in keys)
    dup = con.execute(
        "SELECT count(*) - count(DISTINCT transaction_id) FROM bare_alerts"
    ).fetchone()
    assert dup == (0,)


def test_missing_required_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE no_amount AS SELECT customer_id, timestamp FROM clean_transactions")
    with pytest.raises(DataError, match="amount"):
        TransactionAlerter().fit(TransactionTables(con, "no_amount", None))


def test_fitted_without_transactions_the_alerter_stays_silent() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE tx (customer_id VARCHAR, timestamp TIMESTAMP, amount DECIMAL(18,2), "
        "direction VARCHAR, transaction_id VARCHAR, channel VARCHAR, category VARCHAR, "
        "balance_after DECIMAL(18,2))"
    )
    alerter = TransactionAlerter(seed=1).fit(TransactionTables(con, "tx", None))
    assert not alerter.active
    assert alerter.metrics_["transactions"] == 0
    again = TransactionAlerter.from_files(alerter.to_files())
    con.execute(
        "INSERT INTO tx VALUES "
        "('A', TIMESTAMP '2024-01-01 10:00', 10, 'debit', 'T1', NULL, NULL, NULL)"
    )
    alerts(again, con, "tx", None, "alerts")
    assert con.execute("SELECT count(*) FROM alerts").fetchall() == [(0,)]
    names = [d[0] for d in con.execute("SELECT * FROM alerts").description]
    assert names[:3] == ["transaction_id", "customer_id", "timestamp"] and names[-1] == "reasons"


def test_customer_evidence_rolls_up_every_customers_alerts(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    result = alerter.predict(TransactionTables(con))
    evidence = result.customers.to_pydict()
    n_customers = con.execute("SELECT count(DISTINCT customer_id) FROM clean_transactions")
    assert len(evidence["customer_id"]) == n_customers.fetchall()[0][0]
    assert evidence["customer_id"] == sorted(evidence["customer_id"])
    per_customer: dict[str, list[float]] = {}
    for cid, score in zip(
        result.table.column("customer_id").to_pylist(),
        result.table.column("alert_score").to_pylist(),
        strict=True,
    ):
        per_customer.setdefault(cid, []).append(score)
    rows = {cid: i for i, cid in enumerate(evidence["customer_id"])}
    for cid, scores in per_customer.items():
        i = rows[cid]
        assert evidence["tx_alert_count"][i] == len(scores)
        assert evidence["tx_alert_score_sum"][i] == pytest.approx(sum(scores))
        assert evidence["tx_alert_score_max"][i] == pytest.approx(max(scores))
    quiet = [i for i, cid in enumerate(evidence["customer_id"]) if cid not in per_customer]
    assert quiet and all(evidence["tx_alert_count"][i] == 0 for i in quiet)
    assert all(evidence["tx_alert_surprise"][i] == 0 for i in quiet)
    assert all(0 <= v <= 1 for v in evidence["tx_alerted_debit_share"])
    # one alert is the transaction's business: only alerts beyond the first are surprising
    single = [i for i, c in enumerate(evidence["tx_alert_count"]) if c == 1]
    assert single and all(evidence["tx_alert_surprise"][i] == 0 for i in single)
    several = [i for i, c in enumerate(evidence["tx_alert_count"]) if c >= 3]
    assert several and all(evidence["tx_alert_surprise"][i] > 1 for i in several)
    # aligned with any list of customers; customers without transactions get zeros
    ids = np.array([evidence["customer_id"][several[0]], "C-NOBODY"], dtype=object)
    aligned = result.evidence(ids)
    assert aligned[0, 1] == evidence["tx_alert_count"][several[0]]
    assert aligned[1].tolist() == [0.0] * len(transaction_alerts.EVIDENCE_COLUMNS)


def test_alert_surprise_is_the_poisson_tail_beyond_the_first_alert() -> None:
    surprise = transaction_alerts.alert_surprise(
        np.array([0.0, 1.0, 2.0, 2.0, 12.0]), np.array([50.0, 50.0, 50.0, 500.0, 40.0]), 0.01
    )
    # P(X >= 1) for Poisson(0.5) = 1 - e^-0.5; P(X >= 1) for Poisson(5) is almost 1
    assert surprise[:2].tolist() == [0.0, 0.0]
    assert surprise[2] == pytest.approx(-np.log10(1 - np.exp(-0.5)))
    assert surprise[3] == pytest.approx(-np.log10(1 - np.exp(-5.0)))
    assert surprise[4] > 10


def test_reasons_name_the_segment_cap_robust_sds_and_explain_the_score(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute(
        "CREATE TABLE named_segments AS SELECT customer_id, segment_id, "
        "'Group ' || chr(65 + segment_id) AS segment_name FROM customer_segments"
    )
    model = TransactionAlerter().fit(TransactionTables(con, segments="named_segments"))
    assert {row["segment_name"] for row in model.segment_stats_} == {
        "Group A",
        "Group B",
        "Group C",
        "Group D",
    }
    target = alerts(model, con, segments="named_segments", target="named_alerts")
    rows = con.execute(f"SELECT alert_score, reasons FROM {target}").fetchall()
    reasons = [r for _, r in rows]
    # a segment is named by its name, never by a bare number
    segment = [r for r in reasons if "in segment" in r]
    assert segment and all(re.search(r"in segment 'Group [A-D]' \(median", r) for r in segment)
    assert not any(re.search(r"segment -?[0-9]", r) for r in reasons)
    # no figure beyond the cap: "more than 10 robust SDs" instead
    figures = [float(f) for r in reasons for f in re.findall(r"([0-9.]+) robust SDs", r)]
    assert figures and max(figures) <= MAX_QUOTED_SDS
    assert any("more than 10 robust SDs" in r for r in reasons)
    # every reason ends with the score and its parts, which add up to it
    for score, reason in rows:
        said = re.search(r"score ([0-9.]+) from (.*) \(1 = as unusual as the top 0\.1% ", reason)
        assert said, reason
        assert float(said.group(1)) == pytest.approx(score, abs=0.05)
        parts = [float(p) for p in re.findall(r" ([0-9]+\.[0-9])(?:,|$)", said.group(2))]
        # each named part is rounded (0.05 at most); each unnamed one adds less than 0.05
        assert sum(parts) == pytest.approx(score, abs=0.05 * len(parts) + 0.05 * 7)
    # the same alerter with unnamed segments at scoring time keeps the names it learned
    plain = alerts(model, con, target="plain_alerts")
    unnamed = [r[0] for r in con.execute(f"SELECT reasons FROM {plain}").fetchall()]
    assert unnamed == reasons


def test_an_unnamed_segment_is_named_by_its_number(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    assert all(row["segment_name"] is None for row in alerter.segment_stats_)
    target = alerts(alerter, con, target="numbered_alerts")
    reasons = [r[0] for r in con.execute(f"SELECT reasons FROM {target}").fetchall()]
    segment = [r for r in reasons if "in segment" in r]
    assert segment and all(re.search(r"in segment [0-3] \(median", r) for r in segment)


def test_a_bundle_without_segment_names_still_scores(
    con: duckdb.DuckDBPyConnection, alerter: TransactionAlerter
) -> None:
    files = alerter.to_files()
    state = json.loads(files[STATE_FILE])
    for row in state["segment_stats"]:
        del row["segment_name"]  # as written before segments were named
    old = TransactionAlerter.from_files({**files, STATE_FILE: json.dumps(state).encode()})
    first = alerts(alerter, con, target="new_state")
    second = alerts(old, con, target="old_state")
    assert (
        con.execute(f"SELECT * FROM {first}").fetchall()
        == con.execute(f"SELECT * FROM {second}").fetchall()
    )
