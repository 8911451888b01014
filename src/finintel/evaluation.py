"""Score a run against the synthetic bank's ground truth: how well the models find what was planted.

The generator plants personas, anomalous customers and a behaviour-driven default outcome; this
module compares a run's `customers_scored.parquet` with them: segment recovery (adjusted Rand
index, and which segment name each planted persona mostly received), anomaly PR-AUC and ROC-AUC,
the share of each planted kind of anomalous customer among the flagged (recall per kind; also
among as many top-scored customers as were planted), the
risk score's ROC-AUC against the planted defaults (absent when the run has no risk score), and
which planted transactions are among `transaction_alerts.csv` (recall per kind, precision).

Example:
    >>> evaluate_against_truth(Path("run"), Path("bank"))  # doctest: +SKIP
    {'customers': 5000, 'segments': {'adjusted_rand_index': 0.93, ...}, ...}
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

from finintel.bundle import load_bundle
from finintel.errors import OptionalDependencyError
from finintel.models.frame import load_frame
from finintel.run_layout import RunLayout
from finintel.sql import quote_literal


def evaluate_against_truth(run_dir: Path, bank_dir: Path) -> dict[str, Any]:
    """Compare `run_dir/customers_scored.parquet` with `bank_dir/truth/` and `labels.parquet`."""
    try:
        from sklearn.metrics import adjusted_rand_score, average_precision_score, roc_auc_score
    except ImportError:
        raise OptionalDependencyError("scikit-learn", "models") from None
    scored = quote_literal(str(RunLayout(run_dir).scored_parquet))
    truth = quote_literal(str(bank_dir / "truth" / "customers.parquet"))
    labels = quote_literal(str(bank_dir / "truth" / "labels.parquet"))
    con = duckdb.connect()
    has_risk = bool(
        con.execute(
            f"SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet({scored})) "
            "WHERE column_name = 'risk_score'"
        ).fetchall()[0][0]
    )
    rows = con.execute(
        "SELECT s.segment_id, s.segment_name, t.persona, t.is_anomalous, s.anomaly_score, "
        f"s.is_anomaly, l.defaulted, {'s.risk_score' if has_risk else 'NULL'}, "
        "coalesce(t.anomaly_kind, '') "
        f"FROM read_parquet({scored}) s JOIN read_parquet({truth}) t USING (customer_id) "
        f"JOIN read_parquet({labels}) l USING (customer_id) ORDER BY customer_id"
    ).fetchall()
    segment, name, persona, planted, score, flagged, defaulted, risk, kind = map(
        list, zip(*rows, strict=True)
    )
    names_by_persona = {
        p: Counter(n for n, q in zip(name, persona, strict=True) if q == p).most_common(1)[0][0]
        for p in sorted(set(persona))
    }
    hits = sum(1 for f, p in zip(flagged, planted, strict=True) if f and p)
    kinds = sorted({k for k in kind if k})
    recall_by_kind = {
        k: round(sum(f for f, q in zip(flagged, kind, strict=True) if q == k) / kind.count(k), 4)
        for k in kinds
    }
    # the same at the planted rate: the planted count of top-scored customers, for banks that
    # plant more anomalous customers than the expected rate flags
    top = sorted(range(len(score)), key=lambda i: (-score[i], i))[: sum(planted)]
    in_top = [False] * len(score)
    for i in top:
        in_top[i] = True
    recall_at_planted_rate = {
        k: round(sum(t for t, q in zip(in_top, kind, strict=True) if q == k) / kind.count(k), 4)
        for k in kinds
    }
    return {
        "customers": len(rows),
        "segments": {
            "adjusted_rand_index": round(float(adjusted_rand_score(persona, segment)), 4),
            "planted_personas": len(set(persona)),
            "segments_found": len(set(segment)),
            "name_by_planted_persona": names_by_persona,
        },
        "anomalies": {
            "planted": int(sum(planted)),
            "flagged": int(sum(flagged)),
            "planted_among_flagged": hits,
            "pr_auc": round(float(average_precision_score(planted, score)), 4),
            "roc_auc": round(float(roc_auc_score(planted, score)), 4),
            "recall_by_kind": recall_by_kind,
            "recall_by_kind_at_planted_rate": recall_at_planted_rate,
        },
        "risk": {
            "default_rate": round(sum(defaulted) / len(defaulted), 4),
            "roc_auc": round(float(roc_auc_score(defaulted, risk)), 4) if has_risk else None,
        },
        "transaction_alerts": _alerts_against_truth(run_dir, bank_dir),
    }


def _alerts_against_truth(run_dir: Path, bank_dir: Path) -> dict[str, Any]:
    """Planted transactions among the alerts: how many, per kind, and the alerts' precision."""
    alerts = quote_literal(str(RunLayout(run_dir).alerts_csv))
    truth = quote_literal(str(bank_dir / "truth" / "transactions.parquet"))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE alerted AS SELECT transaction_id FROM "
        f"read_csv({alerts}, header = true, all_varchar = true)"
    )
    n_alerts = int(con.execute("SELECT count(*) FROM alerted").fetchall()[0][0])
    rows = con.execute(
        "SELECT t.anomaly_kind, count(*), count(a.transaction_id) "
        f"FROM read_parquet({truth}) t LEFT JOIN alerted a USING (transaction_id) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    planted = sum(int(r[1]) for r in rows)
    caught = sum(int(r[2]) for r in rows)
    return {
        "planted": planted,
        "alerts": n_alerts,
        "planted_among_alerts": caught,
        "precision": round(caught / n_alerts, 4) if n_alerts else None,
        "recall_by_kind": {str(k): round(int(c) / int(n), 4) for k, n, c in rows},
    }


def anomaly_members_against_truth(run_dir: Path, bank_dir: Path) -> dict[str, float]:
    """PR-AUC of each detector of the run's customer anomaly model alone (its percentile on
    the run's feature table), against the planted anomalous customers, by detector name.

    The run's `anomaly_score` (`evaluate_against_truth`) should not be far below the best of
    these: docs/anomalies.md, "How the combination is chosen".
    """
    try:
        from sklearn.metrics import average_precision_score

        from finintel.models.anomaly import CustomerAnomalyDetector
    except ImportError:
        raise OptionalDependencyError("scikit-learn", "models") from None
    layout = RunLayout(run_dir)
    detector = CustomerAnomalyDetector.from_files(load_bundle(layout.model_dir).parts["anomaly"])
    con = duckdb.connect()
    features = quote_literal(str(layout.features_parquet))
    con.execute(f"CREATE TABLE features AS SELECT * FROM read_parquet({features})")
    frame = load_frame(con, "features", detector.features_)
    truth = quote_literal(str(bank_dir / "truth" / "customers.parquet"))
    planted = dict(
        con.execute(f"SELECT customer_id, is_anomalous FROM read_parquet({truth})").fetchall()
    )
    y = [bool(planted[i]) for i in frame.ids]
    scores = detector.detector_scores(frame)
    return {
        d.name: round(float(average_precision_score(y, scores[d.name])), 4)
        for d in detector.detectors_
    }
