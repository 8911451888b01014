"""Benchmark `finintel run` at scale: time per step and quality against the planted truth.

Generates a synthetic bank, runs everything (validation, features, risk, anomalies, segments,
transaction alerts, results and bundle) without labels, rescoring with the saved bundle, and
compares the scored customers with the planted personas, anomalies and defaults. Each seed is a
separate bank; quality numbers are reported per seed and as medians.

With `--scenarios`, it also runs every scenario bank of `finintel.scenarios` (banks unlike
the default one) and prints the quality table of docs/quality.md: segment ARI, anomaly PR-AUC
with its best single detector, recall per planted typology among the flagged customers, and
the unsupervised risk ROC-AUC.

Usage:
    python benchmarks/bench_models.py --customers 100000 --seeds 101 202 303
    python benchmarks/bench_models.py --customers 5000 --seeds 71 --scenarios
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from finintel.config import config_for_files
from finintel.evaluation import anomaly_members_against_truth, evaluate_against_truth
from finintel.pipeline import add_report, run_all, run_score
from finintel.report import build_report
from finintel.run_layout import RunLayout
from finintel.scenarios import SCENARIOS
from finintel.synthetic import DEFAULT_DESIGN, generate_bank


def one_seed(root: Path, customers: int, seed: int, scenario: str = "default") -> dict[str, Any]:
    design = SCENARIOS.get(scenario, DEFAULT_DESIGN)
    bank = generate_bank(root / "bank", customers, seed=seed, design=design)
    cfg = config_for_files(str(bank.customers), str(bank.transactions), str(bank.loans))
    # the bank's cash reporting threshold is a fact of its jurisdiction, stated in its config
    features = cfg.features.model_copy(update={"reporting_threshold": design.reporting_threshold})
    cfg = cfg.model_copy(update={"seed": seed, "features": features})
    run, scored = RunLayout(root / "run"), RunLayout(root / "score")
    start = time.perf_counter()  # as `finintel run`: the pipeline, then the report
    run_all(cfg, Path(), run.root, today=date(2026, 11, 21))
    add_report(run.root, build_report)
    run_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run_score(run.model_dir, cfg, Path(), scored.root, today=date(2026, 11, 21))
    add_report(scored.root, build_report)
    score_seconds = time.perf_counter() - start
    same = run.scored_csv.read_bytes() == scored.scored_csv.read_bytes()
    record = json.loads(run.run_json.read_text())
    metrics = json.loads(run.metrics_json.read_text())
    return {
        "scenario": scenario,
        "seed": seed,
        "customers": customers,
        "transactions": bank.n_transactions,
        "run_seconds": round(run_seconds, 2),
        "run_steps_seconds": record["timings_seconds"],
        "score_seconds": round(score_seconds, 2),
        "rescoring_identical": same,
        "chosen_k": metrics["segments"].get("k_selection", {}).get("chosen_k"),
        "truth": evaluate_against_truth(root / "run", root / "bank"),
        "anomaly_members_pr_auc": anomaly_members_against_truth(root / "run", root / "bank"),
        "anomaly_combination": metrics["anomalies"]["combination"]["rule"],
    }


def scenario_table(results: list[dict[str, Any]]) -> str:
    """The quality table of docs/quality.md, one row per scenario run, in Markdown."""
    rows = [
        "| scenario | seed | segment ARI (k) | anomaly PR-AUC (best detector) | recall per "
        "planted kind among the flagged | the same at the planted rate | risk ROC-AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        truth = r["truth"]
        recall = ", ".join(f"{k} {v:.2f}" for k, v in truth["anomalies"]["recall_by_kind"].items())
        at_rate = ", ".join(
            f"{k} {v:.2f}" for k, v in truth["anomalies"]["recall_by_kind_at_planted_rate"].items()
        )
        best = max(r["anomaly_members_pr_auc"].values())
        risk = truth["risk"]["roc_auc"]
        rows.append(
            f"| {r['scenario']} | {r['seed']} | {truth['segments']['adjusted_rand_index']:.2f} "
            f"({truth['segments']['segments_found']}) | {truth['anomalies']['pr_auc']:.2f} "
            f"({best:.2f}) | {recall} | {at_rate} | {'-' if risk is None else f'{risk:.2f}'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--out", type=Path, default=Path("bench_models.json"))
    parser.add_argument(
        "--scenarios", action="store_true", help="also run every scenario bank (docs/quality.md)"
    )
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            result = one_seed(Path(tmp), args.customers, seed)
        print(json.dumps(result), flush=True)
        results.append(result)
    scenario_runs = []
    if args.scenarios:
        for name in sorted(SCENARIOS):
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    scenario_runs.append(one_seed(Path(tmp), args.customers, seed, name))
        print(scenario_table(results + scenario_runs))

    def median(path: tuple[str, ...]) -> float:
        values = []
        for r in results:
            value: Any = r
            for key in path:
                value = value[key]
            values.append(float(value))
        return statistics.median(values)

    summary = {
        "customers": args.customers,
        "seeds": args.seeds,
        "median_run_seconds": median(("run_seconds",)),
        "median_score_seconds": median(("score_seconds",)),
        "median_segment_ari": median(("truth", "segments", "adjusted_rand_index")),
        "median_anomaly_pr_auc": median(("truth", "anomalies", "pr_auc")),
        "median_risk_roc_auc": median(("truth", "risk", "roc_auc")),
        "runs": results,
        "scenario_runs": scenario_runs,
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
