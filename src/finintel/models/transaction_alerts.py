"""Transaction alerts: each transaction against its customer's own past and its segment.

Everything runs as DuckDB SQL over the clean transactions (window functions, no Python loop
per row), so millions of transactions score in seconds. Seven score components, each 0 when
the transaction is ordinary:

- `amount`: robust z of log amount vs the customer's PRIOR transactions of the same
  direction, plus how far it exceeds their largest prior one (needs `min_history` of them);
- `segment_amount`: robust z of log amount vs the segment's amounts (quantiles from fit);
- `category_amount`: robust z of log amount vs everyone's amounts in the same category and
  direction (quantiles from fit): a groceries bill of thousands is unusual even for a new
  customer whose history cannot say so yet;
- `hour`: surprise (-log probability) of the hour bucket given the customer's prior
  transactions, smoothed toward the population's hours (learned at fit);
- `new_channel` / `new_category`: the same surprise for channel and category;
- `burst`: transactions in the last `burst_window_minutes` vs the customer's usual rate
  (Poisson log-likelihood ratio).

At fit time each component's 95th and 99.9th percentiles over the training transactions
are stored; a component contributes (value - q95) / (q99.9 - q95) when above its q95, so
ordinary values add nothing and 1.0 means "as unusual as the top 0.1%"; `alert_score` is
the weighted sum of contributions (not a 0-100 percentile: each alert's reasons end with the
score and the contribution of each component, "score 5.8 from own amounts 0.8, category
amounts 3.7, ..."). Reasons quote at most `MAX_QUOTED_SDS` robust SDs and name a segment by
its `segment_name` when the segments table has one. The alert threshold is the training score at the
expected alert rate (or budget) and is reused unchanged. A component whose column is entirely
NULL is skipped and listed in `metrics_["skipped_components"]`. Rows without
`transaction_id` get the stable key `customer_id@timestamp#n` (n numbers a customer's
identical timestamps by amount, direction, channel and category).

Example:
    >>> tables = TransactionTables(con)  # doctest: +SKIP
    >>> alerter = TransactionAlerter(TransactionAlertSettings()).fit(tables)  # doctest: +SKIP
    >>> alerter.predict(tables).table.column_names[:3]  # doctest: +SKIP
    ['transaction_id', 'customer_id', 'timestamp']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from finintel.errors import DataError
from finintel.models.base import FinintelModel, check_is_fitted
from finintel.models.explain import MAX_QUOTED_SDS
from finintel.settings.anomaly import TransactionAlertSettings, alert_count
from finintel.sql import quote_ident

COMPONENTS = (
    "amount",
    "segment_amount",
    "category_amount",
    "hour",
    "new_channel",
    "new_category",
    "burst",
)
# The smallest spread (natural-log units) a robust z divides by: amounts within ~50% of each
# other are never "many SDs apart" just because a customer's history is very regular.
MIN_LOG_SPREAD = math.log(1.5)
# A component is named in the reasons when it reaches this share of its 99.9th percentile.
REASON_LEVEL = 0.5
ORDINARY_QUANTILE = 0.95
NORMALISER_QUANTILE = 0.999
# Each customer's transaction evidence, rolled up from every transaction's alert score:
# - tx_alert_count: the customer's alerts (transactions at or above the alert threshold),
# - tx_alert_score_sum: the sum of those alerts' scores (many strong alerts add up),
# - tx_alert_score_max: the highest alert score among all the customer's transactions,
# - tx_alerted_debit_share: the share of the customer's money out that was alerted (of all
#   money moved when the data has no direction),
# - tx_alert_largest: the largest alerted amount (cited in reasons, not a detector feature),
# - tx_alert_surprise: how unlikely that many alerts are by chance: -log10 of the Poisson
#   probability of at least tx_alert_count alerts among the customer's transactions at the
#   alerter's expected rate (0 without alerts; one alert among many transactions is no
#   surprise, ten among forty are).
EVIDENCE_COLUMNS = (
    "tx_alert_surprise",
    "tx_alert_count",
    "tx_alert_score_sum",
    "tx_alert_score_max",
    "tx_alerted_debit_share",
    "tx_alert_largest",
)
_WORK = "_fi_tx_components"
_ALERTS = "_fi_tx_alerts"
_SEGMENT_STATS = "_fi_tx_segment_amounts"
_CATEGORY_STATS = "_fi_tx_category_amounts"
# A category's amounts are a reference only with this many training transactions of a direction.
MIN_CATEGORY_TRANSACTIONS = 50
_POPULATION = "_fi_tx_population_shares"
# Customer habits are smoothed toward the whole population's habits with the weight of this
# many transactions: a first transaction at 3 a.m. (rare for everyone) is more surprising than
# a first one at noon, and a new but common channel less surprising than a new rare one.
PRIOR_WEIGHT = 2.0
MIN_SHARE = 1e-4  # population share of a level never seen at fit time


@dataclass(frozen=True)
class TransactionTables:
    """The alerter's input: transactions (and each customer's segment) in an engine connection."""

    con: duckdb.DuckDBPyConnection
    transactions: str = "clean_transactions"
    segments: str | None = "customer_segments"


@dataclass(frozen=True)
class TransactionAlerts:
    """The alerter's output: the flagged transactions with score and reasons, highest first,
    and `customers`: each customer's transaction evidence (`EVIDENCE_COLUMNS`, one row per
    customer with transactions), which the customer anomaly detector reads."""

    table: pa.Table
    customers: pa.Table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def evidence(self, ids: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
        """The evidence columns aligned with `ids` (0 for a customer without transactions).

        Example:
            >>> table = pa.table({"customer_id": ["b"], **{c: [1.0] for c in EVIDENCE_COLUMNS}})
            >>> empty = pa.table({"transaction_id": pa.array([], pa.string())})
            >>> TransactionAlerts(empty, table).evidence(np.array(["a", "b"], dtype=object))[:, 0]
            array([0., 1.])
        """
        out = np.zeros((len(ids), len(EVIDENCE_COLUMNS)), dtype=np.float64)
        if self.customers.num_rows == 0:
            return out
        row_of = {cid: i for i, cid in enumerate(self.customers.column("customer_id").to_pylist())}
        at = np.array([row_of.get(cid, -1) for cid in ids], dtype=np.int64)
        known = at >= 0
        for j, name in enumerate(EVIDENCE_COLUMNS):
            values = self.customers.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            out[known, j] = np.nan_to_num(values[at[known]])
        return out


class TransactionAlerter(FinintelModel[TransactionTables, TransactionAlerts]):
    """Scores every transaction and keeps those above a fit-time threshold as alerts."""

    part = "transaction_alerts"

    def __init__(self, settings: TransactionAlertSettings | None = None, seed: int = 0) -> None:
        self.settings = settings or TransactionAlertSettings()
        self.seed = seed  # no randomness is used; kept for the common model signature
        # inputs of a work table kept by fit(keep_for_alerts=True); never saved
        self._kept_inputs: list[Any] | None = None
        # the alerts of the last predict() on inputs with this fingerprint; never saved
        self._last_alerts: tuple[list[Any], TransactionAlerts] | None = None

    # ---------------------------------------------------------------- fit
    def fit(self, data: TransactionTables, keep_for_alerts: bool = False) -> Self:
        """Learn the statistics, normalisers and threshold from the training transactions.

        With `keep_for_alerts`, the per-transaction work table stays in the connection, and the
        next `predict()` or `decision_function()` on unchanged inputs (same row counts and
        content hashes) uses it instead of computing every component a second time.
        """
        con, transactions, segments = data.con, data.transactions, data.segments
        self._kept_inputs = None
        self._last_alerts = None
        available = _available_columns(con, transactions)
        n_rows = int(_one(con, f"SELECT count(*) FROM {quote_ident(transactions)}"))
        if n_rows == 0:
            return self._fit_without_transactions(available)
        skipped = _skipped(available, segments is not None)
        segment_stats = _segment_stats(con, transactions, segments)
        category_stats = _category_stats(con, transactions) if available["category"] else []
        population = _population_shares(con, transactions, available, self.settings)
        _components_table(
            con,
            self.settings,
            transactions,
            segments,
            available,
            AmountStats(segment_stats, category_stats),
            population,
            _WORK,
        )
        normalisers = {}
        for name in COMPONENTS:
            if name in skipped:
                continue
            q = _one(
                con,
                f"SELECT quantile_cont({name}, [{ORDINARY_QUANTILE}, {NORMALISER_QUANTILE}]) "
                f"FROM {_WORK} WHERE {name} IS NOT NULL",
            )
            low, high = (0.0, 1.0) if q is None else (float(q[0]), float(q[1]))
            normalisers[name] = (low, high if high > low else low + 1.0)
        weights = self._weights(skipped)
        score = _score_sql(normalisers, weights)
        count = alert_count(n_rows, self.settings.expected_rate, self.settings.alert_budget)
        threshold = float(
            _one(
                con,
                f"SELECT min(s) FROM (SELECT {score} AS s FROM {_WORK} ORDER BY s DESC "
                f"LIMIT {count})",
            )
        )
        flagged = int(_one(con, f"SELECT count(*) FROM {_WORK} WHERE {score} >= {threshold!r}"))
        judged = {
            name: int(_one(con, f"SELECT count({name}) FROM {_WORK}"))
            for name in COMPONENTS
            if name not in skipped
        }
        if keep_for_alerts:
            self._kept_inputs = _inputs_fingerprint(con, transactions, segments)
        else:
            con.execute(f"DROP TABLE IF EXISTS {_WORK}")

        self.available_columns_ = available
        self.skipped_ = skipped
        self.segment_stats_ = segment_stats
        self.category_stats_ = category_stats
        self.population_ = population
        self.normalisers_ = normalisers
        self.weights_ = weights
        self.threshold_: float | None = threshold
        self.metrics_ = {
            "transactions": n_rows,
            "components": {
                name: {
                    "weight": weights[name],
                    "ordinary_q95": round(normalisers[name][0], 6),
                    "top_q999": round(normalisers[name][1], 6),
                    "transactions_judged": judged[name],
                }
                for name in normalisers
            },
            "skipped_components": skipped,
            "segments": len({row["segment_id"] for row in segment_stats}),
            "threshold": {
                "alert_score": round(threshold, 6),
                "source": (
                    "alert_budget" if self.settings.alert_budget is not None else "expected_rate"
                ),
                "expected_rate": self.settings.expected_rate,
                "alert_budget": self.settings.alert_budget,
            },
            "flagged": flagged,
            "flagged_rate": round(flagged / n_rows, 6),
            "settings": self.settings.model_dump(mode="json"),
            "transaction_key": (
                "transaction_id"
                if available["transaction_id"]
                else "customer_id@timestamp#n (no transaction_id in the data)"
            ),
        }
        return self

    def _fit_without_transactions(self, available: dict[str, bool]) -> Self:
        """No transactions to learn from (a customer-only table): the alerter stays silent."""
        why = "no transactions in the training data"
        self.available_columns_ = available
        self.skipped_ = dict.fromkeys(COMPONENTS, why)
        self.segment_stats_ = []
        self.category_stats_ = []
        self.population_ = []
        self.normalisers_ = {}
        self.weights_ = {}
        self.threshold_ = None
        self.metrics_ = {
            "transactions": 0,
            "components": {},
            "skipped_components": self.skipped_,
            "flagged": 0,
            "note": f"{why}: no transaction alerts are produced, now or when scoring",
            "settings": self.settings.model_dump(mode="json"),
        }
        return self

    @property
    def active(self) -> bool:
        """False when fitted without transactions: nothing to compare a transaction with."""
        return self.threshold_ is not None

    def _weights(self, skipped: Mapping[str, str]) -> dict[str, float]:
        s = self.settings
        given = {
            "amount": s.weight_amount,
            "segment_amount": s.weight_segment_amount,
            "category_amount": s.weight_category_amount,
            "hour": s.weight_hour,
            "new_channel": s.weight_new_channel,
            "new_category": s.weight_new_category,
            "burst": s.weight_burst,
        }
        return {k: v for k, v in given.items() if k not in skipped}

    # ---------------------------------------------------------------- alerts
    def _predict(self, data: TransactionTables) -> TransactionAlerts:
        """The transactions at or above the threshold, with reasons, and each customer's
        evidence. Asked twice about unchanged inputs (the customer anomaly detector reads the
        evidence before the alerts are stored), the second answer is the first one's."""
        con = data.con
        if not self.active:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_ALERTS} ({_ALERT_COLUMNS})")
            table = con.sql(f"SELECT * FROM {_ALERTS}").to_arrow_table()
            con.execute(f"DROP TABLE {_ALERTS}")
            return TransactionAlerts(table, _empty_evidence())
        inputs = _inputs_fingerprint(con, data.transactions, data.segments)
        if self._last_alerts is not None and self._last_alerts[0] == inputs:
            return self._last_alerts[1]
        alerts = self._alerts(data, inputs)
        self._last_alerts = (inputs, alerts)
        return alerts

    def _alerts(self, data: TransactionTables, inputs: list[Any]) -> TransactionAlerts:
        con = data.con
        self._fitted_components(con, data.transactions, data.segments, inputs)
        score = _score_sql(self.normalisers_, self.weights_)
        reasons = _reasons_sql(self.normalisers_, self.weights_, self.settings)
        scored = f"(SELECT *, {score} AS alert_score FROM {_WORK})"
        table = con.sql(
            "SELECT tx_key AS transaction_id, customer_id, ts AS timestamp, tx_amount AS amount, "
            "direction, "
            f"channel, category, segment_id, alert_score, {reasons} AS reasons "
            f"FROM {scored} "
            f"WHERE alert_score >= {self.threshold_!r} "
            "ORDER BY alert_score DESC, transaction_id"
        ).to_arrow_table()
        evidence = con.sql(_evidence_sql(scored, self.threshold_)).to_arrow_table()
        con.execute(f"DROP TABLE IF EXISTS {_WORK}")
        surprise = alert_surprise(
            evidence.column("tx_alert_count").to_numpy(),
            evidence.column("tx_scored").to_numpy(),
            self.settings.expected_rate,
        )
        evidence = evidence.append_column("tx_alert_surprise", pa.array(surprise, pa.float64()))
        return TransactionAlerts(table, evidence.select(["customer_id", *EVIDENCE_COLUMNS]))

    def decision_function(self, data: TransactionTables) -> pa.Table:
        """Every transaction's key, components and alert_score (alerts or not), by key."""
        check_is_fitted(self)
        if not self.active:
            raise DataError("this alerter was fitted without transactions and scores none")
        self._fitted_components(data.con, data.transactions, data.segments)
        score = _score_sql(self.normalisers_, self.weights_)
        table = data.con.sql(
            f"SELECT tx_key AS transaction_id, customer_id, {', '.join(COMPONENTS)}, "
            f"{score} AS alert_score FROM {_WORK} ORDER BY transaction_id"
        ).to_arrow_table()
        data.con.execute(f"DROP TABLE IF EXISTS {_WORK}")
        return table

    def _fitted_components(
        self,
        con: duckdb.DuckDBPyConnection,
        transactions: str,
        segments: str | None,
        inputs: list[Any] | None = None,
    ) -> None:
        """Create the work table of per-transaction components with the fit-time statistics.

        A table kept by `fit(keep_for_alerts=True)` is used once, when it was built from the
        same inputs (`inputs`: their fingerprint, when the caller has it already).
        """
        kept, self._kept_inputs = self._kept_inputs, None
        same = kept is not None and _table_exists(con, _WORK)
        if same and kept == (inputs or _inputs_fingerprint(con, transactions, segments)):
            return
        _components_table(
            con,
            self.settings,
            transactions,
            segments,
            _available_columns(con, transactions),
            AmountStats(self.segment_stats_, self.category_stats_),
            self.population_,
            _WORK,
        )

    # ---------------------------------------------------------------- files
    def _state(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(mode="json"),
            "seed": self.seed,
            "available_columns": self.available_columns_,
            "skipped": self.skipped_,
            "segment_stats": self.segment_stats_,
            "category_stats": self.category_stats_,
            "population": self.population_,
            "normalisers": self.normalisers_,
            "weights": self.weights_,
            "threshold": self.threshold_,
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any], files: Mapping[str, bytes]) -> Self:
        obj = cls(TransactionAlertSettings.model_validate(state["settings"]), int(state["seed"]))
        obj.available_columns_ = {k: bool(v) for k, v in state["available_columns"].items()}
        obj.skipped_ = dict(state["skipped"])
        obj.segment_stats_ = list(state["segment_stats"])
        obj.category_stats_ = list(state["category_stats"])
        obj.population_ = list(state["population"])
        obj.normalisers_ = {k: (float(v[0]), float(v[1])) for k, v in state["normalisers"].items()}
        obj.weights_ = {k: float(v) for k, v in state["weights"].items()}
        obj.threshold_ = None if state["threshold"] is None else float(state["threshold"])
        return obj


def _evidence_sql(scored: str, threshold: float | None) -> str:
    """Each customer's `EVIDENCE_COLUMNS` from the scored work table, by customer_id."""
    alerted = f"alert_score >= {threshold!r}"
    # money out where the data has a direction; every transaction where it has none
    out = "(direction = 'debit' OR direction IS NULL)"
    return (
        "SELECT customer_id, "
        f"count(*) FILTER ({alerted})::DOUBLE AS tx_alert_count, "
        f"coalesce(sum(alert_score) FILTER ({alerted}), 0) AS tx_alert_score_sum, "
        "max(alert_score) AS tx_alert_score_max, "
        f"coalesce(sum(tx_amount::DOUBLE) FILTER ({alerted} AND {out}) "
        f"/ nullif(sum(tx_amount::DOUBLE) FILTER ({out}), 0), 0) AS tx_alerted_debit_share, "
        f"coalesce(max(tx_amount::DOUBLE) FILTER ({alerted}), 0) AS tx_alert_largest, "
        "count(*)::DOUBLE AS tx_scored "
        f"FROM {scored} GROUP BY customer_id ORDER BY customer_id"
    )


def alert_surprise(
    alerts: npt.NDArray[np.float64], transactions: npt.NDArray[np.float64], rate: float
) -> npt.NDArray[np.float64]:
    """-log10 P(at least `alerts` alerts) for Poisson(`transactions` x `rate`); 0 without alerts.

    Example:
        >>> alerts, transactions = np.array([0.0, 1.0, 10.0]), np.array([20.0, 200.0, 40.0])
        >>> alert_surprise(alerts, transactions, 0.005).round(2).tolist()
        [0.0, 0.0, 11.93]
    """
    from scipy.stats import poisson

    alerts = np.asarray(alerts, dtype=np.float64)
    expected = np.asarray(transactions, dtype=np.float64) * rate
    beyond = alerts - 1  # one unusual transaction is the alert's business, not the customer's
    log_tail = poisson.logsf(beyond - 1, expected)  # log P(X >= beyond)
    out = np.where(beyond > 0, -log_tail / np.log(10), 0.0)
    return np.asarray(np.maximum(out, 0.0), dtype=np.float64)


def _empty_evidence() -> pa.Table:
    columns = {"customer_id": pa.array([], pa.string())}
    columns.update({name: pa.array([], pa.float64()) for name in EVIDENCE_COLUMNS})
    return pa.table(columns)


# The alert table's columns, for an alerter fitted without transactions.
_ALERT_COLUMNS = (
    "transaction_id VARCHAR, customer_id VARCHAR, timestamp TIMESTAMP, amount DECIMAL(18,2), "
    "direction VARCHAR, channel VARCHAR, category VARCHAR, segment_id INTEGER, "
    "alert_score DOUBLE, reasons VARCHAR"
)


# -------------------------------------------------------------------- SQL guts
def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    rows = con.execute(sql).fetchall()  # fetch everything: the engine needs finished results
    return rows[0][0] if rows else None


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(_one(con, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'"))


def _inputs_fingerprint(
    con: duckdb.DuckDBPyConnection, transactions: str, segments: str | None
) -> list[Any]:
    """The work table's inputs: names, row counts and order-free sums of row hashes."""
    out: list[Any] = [transactions, segments]
    for table in (transactions, segments):
        if table is not None:
            row = con.execute(f"SELECT count(*), sum(hash(r)) FROM {quote_ident(table)} r")
            out.extend(row.fetchall()[0])
    return out


OPTIONAL = ("transaction_id", "direction", "channel", "category")


@dataclass(frozen=True)
class AmountStats:
    """Fit-time quartiles of log amount per segment and per category (with direction)."""

    segments: list[dict[str, Any]]
    categories: list[dict[str, Any]]


def _log_amount_quartiles(
    con: duckdb.DuckDBPyConnection, key: str, source: str, name: str
) -> list[dict[str, Any]]:
    """Count, quartiles and median of log amount per `key` value and direction."""
    rows = con.execute(
        f"SELECT {key} AS k, coalesce(t.direction, 'unknown') AS direction, count(*) AS n, "
        "quantile_cont(ln(greatest(t.amount::DOUBLE, 0.01)), [0.25, 0.5, 0.75]) AS q "
        f"FROM {source} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return [
        {
            name: k,
            "direction": str(direction),
            "n": int(n),
            "q25": float(q[0]),
            "median": float(q[1]),
            "q75": float(q[2]),
        }
        for k, direction, n, q in rows
    ]


def _segment_stats(
    con: duckdb.DuckDBPyConnection, transactions: str, segments: str | None
) -> list[dict[str, Any]]:
    """Quartiles of log amount per segment and direction (training data), with the segment's
    name when the segments table has a `segment_name` column (None otherwise)."""
    seg_join, seg_col = _segment_join(segments)
    source = f"{quote_ident(transactions)} t {seg_join}"
    rows = _log_amount_quartiles(con, seg_col, source, "segment_id")
    names = _segment_names(con, segments)
    return [
        {**row, "segment_id": int(row["segment_id"]), "segment_name": names.get(row["segment_id"])}
        for row in rows
    ]


def _has_segment_names(con: duckdb.DuckDBPyConnection, segments: str | None) -> bool:
    """True when the segments table carries the segments' names (`segment_name`)."""
    if segments is None:
        return False
    described = con.execute(f"SELECT * FROM {quote_ident(segments)} LIMIT 0").description
    return "segment_name" in {d[0] for d in described}


def _segment_names(con: duckdb.DuckDBPyConnection, segments: str | None) -> dict[int, str]:
    """Each segment's name (the first in sort order, should a segment have several)."""
    if segments is None or not _has_segment_names(con, segments):
        return {}
    rows = con.execute(
        f"SELECT segment_id, min(segment_name) FROM {quote_ident(segments)} "
        "WHERE segment_name IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return {int(k): str(v) for k, v in rows}


def _category_stats(con: duckdb.DuckDBPyConnection, transactions: str) -> list[dict[str, Any]]:
    """Quartiles of log amount per category and direction (training data), for the categories
    with at least `MIN_CATEGORY_TRANSACTIONS` of that direction; rarer ones are not judged."""
    source = f"{quote_ident(transactions)} t WHERE t.category IS NOT NULL"
    rows = _log_amount_quartiles(con, "t.category", source, "category")
    return [
        {**row, "category": str(row["category"])}
        for row in rows
        if row["n"] >= MIN_CATEGORY_TRANSACTIONS
    ]


def _available_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, bool]:
    """Which optional columns exist and hold at least one value."""
    described = con.execute(f"SELECT * FROM {quote_ident(table)} LIMIT 0").description
    present = {d[0] for d in described}
    for required in ("customer_id", "timestamp", "amount"):
        if required not in present:
            raise DataError(f"the transactions table has no {required!r} column")
    counts = {}
    for name in OPTIONAL:
        if name in present:
            counts[name] = bool(
                _one(con, f"SELECT count({quote_ident(name)}) > 0 FROM {quote_ident(table)}")
            )
        else:
            counts[name] = False
    return counts


def _population_shares(
    con: duckdb.DuckDBPyConnection,
    table: str,
    available: Mapping[str, bool],
    settings: TransactionAlertSettings,
) -> list[dict[str, Any]]:
    """Share of all training transactions per hour bucket, channel and category."""
    levels = {"hour_bucket": f'CAST(hour("timestamp") // {settings.hour_bucket_hours} AS VARCHAR)'}
    for name in ("channel", "category"):
        if available[name]:
            levels[name] = quote_ident(name)
    out: list[dict[str, Any]] = []
    for kind, expr in levels.items():
        rows = con.execute(
            f"SELECT {expr} AS level, count(*) / sum(count(*)) OVER () AS share "
            f"FROM {quote_ident(table)} WHERE {expr} IS NOT NULL GROUP BY ALL ORDER BY level"
        ).fetchall()
        out.extend({"kind": kind, "level": str(lv), "share": float(sh)} for lv, sh in rows)
    return out


def _skipped(available: Mapping[str, bool], has_segments: bool) -> dict[str, str]:
    skipped = {}
    if not available["channel"]:
        skipped["new_channel"] = "no channel values in the transactions"
    if not available["category"]:
        skipped["new_category"] = "no category values in the transactions"
        skipped["category_amount"] = "no category values in the transactions"
    if not has_segments:
        skipped["segment_amount"] = "no customer segments given"
    return skipped


def _segment_join(segments: str | None) -> tuple[str, str]:
    if segments is None:
        return "", "-1"
    return (
        f"LEFT JOIN {quote_ident(segments)} sg ON sg.customer_id = t.customer_id",
        "coalesce(sg.segment_id, -1)",
    )


def _column(available: Mapping[str, bool], name: str, sql_type: str = "VARCHAR") -> str:
    return f"t.{quote_ident(name)}" if available[name] else f"CAST(NULL AS {sql_type})"


def _components_table(
    con: duckdb.DuckDBPyConnection,
    settings: TransactionAlertSettings,
    transactions: str,
    segments: str | None,
    available: Mapping[str, bool],
    stats: AmountStats,
    population: list[dict[str, Any]],
    target: str,
) -> None:
    """One row per transaction with its seven components (NULL when not judged)."""
    seg_join, seg_col = _segment_join(segments)
    seg_name = "sg.segment_name" if _has_segment_names(con, segments) else "NULL"
    # keyed by `level` (a segment id or a category), a name no transaction column has
    for table, key, key_type, rows in (
        (_SEGMENT_STATS, "segment_id", "INTEGER", stats.segments),
        (_CATEGORY_STATS, "category", "VARCHAR", stats.categories),
    ):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} "
            f"(level {key_type}, direction VARCHAR, median DOUBLE, iqr DOUBLE, name VARCHAR)"
        )
        values = [
            (r[key], r["direction"], r["median"], r["q75"] - r["q25"], r.get("segment_name"))
            for r in rows
        ]
        if values:
            con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", values)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_POPULATION} (kind VARCHAR, level VARCHAR, share DOUBLE)"
    )
    share_rows = [(p["kind"], p["level"], p["share"]) for p in population]
    if share_rows:
        con.executemany(f"INSERT INTO {_POPULATION} VALUES (?, ?, ?)", share_rows)
    tx_id = _column(available, "transaction_id")
    direction = _column(available, "direction")
    channel = _column(available, "channel")
    category = _column(available, "category")
    bucket = settings.hour_bucket_hours
    window_us = settings.burst_window_minutes * 60_000_000
    hist = settings.min_history
    prior = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    spread = f"greatest((q[3] - q[1]) / 1.3489795003921634, {MIN_LOG_SPREAD!r})"
    seg_spread = f"greatest(ss.iqr / 1.3489795003921634, {MIN_LOG_SPREAD!r})"
    cat_spread = f"greatest(cs.iqr / 1.3489795003921634, {MIN_LOG_SPREAD!r})"

    def surprise(column: str, kind: str) -> str:
        same = f"count(*) OVER (PARTITION BY customer_id, {column} ORDER BY ts, tx_key {prior})"
        share = f"{kind}_share"
        return (
            f"CASE WHEN {column} IS NOT NULL AND prior_n >= {hist} "
            f"THEN -ln(({same} + {PRIOR_WEIGHT!r} * {share}) / (prior_n + {PRIOR_WEIGHT!r})) END"
        )

    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH base AS (
            SELECT t.customer_id, t."timestamp" AS ts, t.amount AS tx_amount,
                   coalesce({tx_id}, t.customer_id || '@' || strftime(t."timestamp",
                       '%Y-%m-%dT%H:%M:%S.%f') || '#' || row_number() OVER (
                       PARTITION BY t.customer_id, t."timestamp"
                       ORDER BY t.amount, {direction}, {channel}, {category})) AS tx_key,
                   {direction} AS direction, {channel} AS channel, {category} AS category,
                   {seg_col} AS segment_id, CAST({seg_name} AS VARCHAR) AS live_segment_name,
                   ln(greatest(t.amount::DOUBLE, 0.01)) AS log_amount,
                   hour(t."timestamp") // {bucket} AS hour_bucket,
                   epoch_us(t."timestamp") AS ts_us
            FROM {quote_ident(transactions)} t {seg_join}
        ),
        shared AS (
            SELECT b.*,
                   coalesce(ph.share, {MIN_SHARE!r}) AS hour_bucket_share,
                   coalesce(pc.share, {MIN_SHARE!r}) AS channel_share,
                   coalesce(pg.share, {MIN_SHARE!r}) AS category_share
            FROM base b
            LEFT JOIN {_POPULATION} ph
                ON ph.kind = 'hour_bucket' AND ph.level = CAST(b.hour_bucket AS VARCHAR)
            LEFT JOIN {_POPULATION} pc ON pc.kind = 'channel' AND pc.level = b.channel
            LEFT JOIN {_POPULATION} pg ON pg.kind = 'category' AND pg.level = b.category
        ),
        history AS (
            SELECT *,
                   row_number() OVER (PARTITION BY customer_id ORDER BY ts, tx_key) - 1
                       AS prior_n,
                   min(ts_us) OVER (PARTITION BY customer_id) AS first_us,
                   count(*) OVER (PARTITION BY customer_id, coalesce(direction, '')
                       ORDER BY ts, tx_key {prior}) AS prior_dir_n,
                   quantile_cont(log_amount, [0.25, 0.5, 0.75]) OVER (
                       PARTITION BY customer_id, coalesce(direction, '')
                       ORDER BY ts, tx_key {prior}) AS q,
                   max(log_amount) OVER (PARTITION BY customer_id, coalesce(direction, '')
                       ORDER BY ts, tx_key {prior}) AS prior_max_log,
                   count(*) OVER (PARTITION BY customer_id ORDER BY ts_us
                       RANGE BETWEEN {window_us} PRECEDING AND CURRENT ROW) - 1 AS recent_n
            FROM shared
        ),
        judged AS (
            SELECT h.*,
                   CASE WHEN prior_dir_n >= {hist}
                        THEN greatest((log_amount - q[2]) / {spread}, 0)
                             + greatest(log_amount - prior_max_log, 0) / {MIN_LOG_SPREAD!r}
                        END AS amount,
                   CASE WHEN ss.median IS NOT NULL
                        THEN greatest((log_amount - ss.median) / {seg_spread}, 0) END
                       AS segment_amount,
                   ss.median AS ss_median,
                   coalesce(h.live_segment_name, ss.name) AS segment_name,
                   CASE WHEN prior_dir_n >= {hist}
                        THEN greatest((log_amount - q[2]) / {spread}, 0) END AS amount_sds,
                   CASE WHEN cs.median IS NOT NULL
                        THEN greatest((log_amount - cs.median) / {cat_spread}, 0) END
                       AS category_amount,
                   cs.median AS cs_median,
                   {surprise("hour_bucket", "hour_bucket")} AS hour,
                   {surprise("channel", "channel")} AS new_channel,
                   {surprise("category", "category")} AS new_category,
                   CASE WHEN prior_n >= {hist} THEN
                       {window_us}.0 * prior_n / greatest(ts_us - first_us, 86400000000)
                   END AS expected_n
            FROM history h
            LEFT JOIN {_SEGMENT_STATS} ss ON ss.level = h.segment_id
                AND ss.direction = coalesce(h.direction, 'unknown')
            LEFT JOIN {_CATEGORY_STATS} cs ON cs.level = h.category
                AND cs.direction = coalesce(h.direction, 'unknown')
        )
        SELECT tx_key, customer_id, ts, tx_amount, direction, channel, category, segment_id,
               segment_name, q[2] AS customer_median_log, prior_max_log, amount_sds,
               ss_median, cs_median, recent_n,
               amount, segment_amount, category_amount, hour, new_channel, new_category,
               CASE WHEN expected_n IS NULL THEN NULL
                    WHEN recent_n > expected_n
                    THEN recent_n * ln(recent_n / expected_n) - (recent_n - expected_n)
                    ELSE 0 END AS burst
        FROM judged
        """
    )


def _score_sql(normalisers: Mapping[str, tuple[float, float]], weights: Mapping[str, float]) -> str:
    terms = [
        _contribution_sql(name, normalisers[name], weights[name])
        for name in COMPONENTS  # fixed order: the same float sum after a round trip
        if name in normalisers and weights.get(name, 0) > 0
    ]
    return "(" + " + ".join(terms or ["0.0"]) + ")"


# How the score explanation at the end of a reason names each component.
COMPONENT_WORDS = {
    "amount": "own amounts",
    "segment_amount": "segment amounts",
    "category_amount": "category amounts",
    "hour": "hour",
    "new_channel": "channel",
    "new_category": "category",
    "burst": "burst",
}
# A component is named in the score explanation when it adds at least this much.
SCORE_PART_LEVEL = 0.05


def _sds_sql(expr: str) -> str:
    """A robust-SD figure in SQL, at most `MAX_QUOTED_SDS` quoted (as in customer reasons)."""
    return (
        f"CASE WHEN {expr} > {MAX_QUOTED_SDS!r} THEN 'more than {MAX_QUOTED_SDS:.0f}' "
        f"ELSE printf('%.1f', {expr}) END"
    )


def _contribution_sql(name: str, normaliser: tuple[float, float], weight: float) -> str:
    """One component's share of `alert_score` in SQL (0 when ordinary)."""
    low, high = normaliser
    return f"{weight!r} * greatest(coalesce({name}, 0) - {low!r}, 0) / {high - low!r}"


def _score_words_sql(
    normalisers: Mapping[str, tuple[float, float]], weights: Mapping[str, float]
) -> str:
    """The score and what it is made of: 'score 3.4 from own amounts 2.1, burst 1.3 (1 = as
    unusual as the top 0.1% of training transactions in one respect)'."""
    parts = []
    for name in COMPONENTS:
        if name in normalisers and weights.get(name, 0) > 0:
            part = _contribution_sql(name, normalisers[name], weights[name])
            parts.append(
                f"CASE WHEN {part} >= {SCORE_PART_LEVEL!r} "
                f"THEN '{COMPONENT_WORDS[name]} ' || printf('%.1f', {part}) END"
            )
    made_of = "concat_ws(', ', " + ", ".join(parts) + ")" if parts else "''"
    top = f"{(1 - NORMALISER_QUANTILE) * 100:.1f}%"
    return (
        f"'score ' || printf('%.1f', alert_score) || ' from ' || {made_of} || "
        f"' (1 = as unusual as the top {top} of training transactions in one respect)'"
    )


def _reasons_sql(
    normalisers: Mapping[str, tuple[float, float]],
    weights: Mapping[str, float],
    settings: TransactionAlertSettings,
) -> str:
    """Every component that reaches `REASON_LEVEL` of its top level, in words, then the
    score explained (`_score_words_sql`)."""

    def hit(name: str) -> str:
        low, high = normalisers[name]
        return f"coalesce({name}, 0) >= {low + REASON_LEVEL * (high - low)!r}"

    money = "format('{{:,.2f}}', {})"
    amount = "'amount ' || " + money.format("tx_amount::DOUBLE") + " || ' is ' || "
    kind = "coalesce(direction, 'transaction') || 's"
    # a segment by its name when the segments table gave one
    segment = (
        "CASE WHEN segment_name IS NOT NULL THEN 'segment ''' || segment_name || '''' "
        "WHEN segment_id = -1 THEN 'customers without a segment' "
        "ELSE 'segment ' || segment_id END"
    )
    beyond = "ln(greatest(tx_amount::DOUBLE, 0.01)) > prior_max_log"
    parts = {
        "amount": (
            amount + _sds_sql("amount_sds") + " || ' robust SDs above this customer''s usual ' || "
            f"{kind} (median ' || " + money.format("exp(customer_median_log)") + " || "
            f"CASE WHEN {beyond} THEN ', largest before ' || "
            + money.format("exp(prior_max_log)")
            + " ELSE '' END || ')'"
        ),
        "segment_amount": (
            amount + _sds_sql("segment_amount") + " || ' robust SDs above typical ' || "
            f"{kind} in ' || {segment} || ' (median ' || "
            + money.format("exp(ss_median)")
            + " || ')'"
        ),
        "category_amount": (
            amount + _sds_sql("category_amount") + " || ' robust SDs above typical ' || "
            f"category || ' ' || {kind} (median ' || " + money.format("exp(cs_median)") + " || ')'"
        ),
        "hour": ("'unusual hour for this customer (' || strftime(ts, '%H:%M') || ')'"),
        "new_channel": "'channel ' || channel || ' new or rare for this customer'",
        "new_category": "'category ' || category || ' new or rare for this customer'",
        "burst": (
            f"recent_n || ' other transactions in the previous "
            f"{settings.burst_window_minutes} minutes (usual rate far lower)'"
        ),
    }
    cases = [f"CASE WHEN {hit(n)} THEN {parts[n]} END" for n in COMPONENTS if n in normalisers]
    cases.append(_score_words_sql(normalisers, weights))
    return "concat_ws('; ', " + ", ".join(cases) + ")"
