"""Benchmark the supervised risk fit: seconds per fit, and every candidate's cross-validated AUC.

Cases:
- `generated`: a labelled table of 10,000 rows x 25 variables (skewed amounts, an interaction,
  18% defaults), one per seed;
- `german_credit`, `berka`: the shared labelled data sets through their example configs, when
  ../shared/data exists.

Each case's whole supervised fit (three learners on the same repeated folds, the choice, the
refit and calibration) runs `--repeats` times; the median is reported beside a baseline
measured in the same run on the same rows: a plain scikit-learn logistic regression
cross-validated on the same folds (`cross_val_score`, one process), since this machine is
noisy. The table printed at the end is the one in docs/risk.md.

Usage:
    python benchmarks/bench_supervised.py --seeds 101 --repeats 3
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

import numpy as np

from finintel.models.frame import FeatureFrame
from finintel.models.model_choice import cv_repeats
from finintel.models.risk import fit_risk
from finintel.settings.risk import RiskSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ROWS, COLUMNS = 10_000, 25


def generated(seed: int) -> tuple[FeatureFrame, np.ndarray, RiskSettings, int]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, COLUMNS))
    x[:, :5] = np.exp(x[:, :5])  # amounts: skewed
    logit = -2.0 + 0.8 * x[:, 5] - 0.6 * x[:, 6] + 0.4 * np.log(x[:, 0]) + 0.3 * x[:, 7] * x[:, 8]
    y = (rng.random(ROWS) < 1 / (1 + np.exp(-logit))).astype(float)
    ids = np.array([f"C{i:06d}" for i in range(ROWS)], dtype=object)
    frame = FeatureFrame(ids, tuple(f"v{j:02d}" for j in range(COLUMNS)), x)
    return frame, y, RiskSettings(), seed


def example(name: str, root: Path) -> tuple[FeatureFrame, np.ndarray, RiskSettings, int]:
    from finintel.config import load_config
    from finintel.models.frame import load_frame
    from finintel.pipeline import run_features
    from finintel.scoring import labels_for

    cfg, base = load_config(ROOT / "examples" / f"{name}.toml")
    run = run_features(cfg, base, root / name, today=date(2026, 11, 21))
    frame = load_frame(run.validation.con, "features")
    return frame, labels_for(run.validation.con, frame), cfg.risk, cfg.seed


def baseline_seconds(
    frame: FeatureFrame, labels: np.ndarray, settings: RiskSettings, seed: int
) -> float:
    """A plain logistic regression on standardised, median-imputed columns, same folds."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    known = np.isfinite(labels)
    x, y = frame.values[known], labels[known].astype(int)
    folds = RepeatedStratifiedKFold(
        n_splits=settings.cv_folds, n_repeats=cv_repeats(settings, len(y)), random_state=seed
    )
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    start = time.perf_counter()
    cross_val_score(model, x, y, cv=folds, scoring="roc_auc")
    return time.perf_counter() - start


def one_case(
    name: str, case: tuple[FeatureFrame, np.ndarray, RiskSettings, int], repeats: int
) -> dict[str, Any]:
    frame, labels, settings, seed = case
    fits, baselines = [], []
    metrics: dict[str, Any] = {}
    for _ in range(repeats):
        baselines.append(baseline_seconds(frame, labels, settings, seed))
        start = time.perf_counter()
        model = fit_risk(frame, labels, settings, seed)
        fits.append(time.perf_counter() - start)
        metrics = model.metrics_
    selection = metrics.get("model_selection") or metrics["supervised_fallback"]["model_selection"]
    fit, base = statistics.median(fits), statistics.median(baselines)
    return {
        "case": name,
        "seed": seed,
        "rows": int(np.isfinite(labels).sum()),
        "columns": len(frame.columns),
        "fit_seconds_median": round(fit, 2),
        "baseline_seconds_median": round(base, 2),
        "ratio_to_baseline": round(fit / base, 1),
        "delivered": selection["delivered"] or "unsupervised composite (fallback)",
        "reason": selection["reason"],
        "candidates": {
            r["model"]: {
                "roc_auc": r["roc_auc"],
                "roc_auc_std": r["roc_auc_std"],
                "gate": r["gate"],
            }
            for r in selection["candidates"]
        },
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| data | rows | scorecard | logistic | boosting | delivered | fit (s) |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        aucs = [
            f"{c['roc_auc']:.3f} ± {c['roc_auc_std']:.3f}"
            for c in (r["candidates"][k] for k in ("scorecard", "logistic", "boosting"))
        ]
        lines.append(
            f"| {r['case']} (seed {r['seed']}) | {r['rows']:,} | {' | '.join(aucs)} | "
            f"{r['delivered']} | {r['fit_seconds_median']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench_supervised.json"))
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        results.append(one_case("generated 10,000 x 25", generated(seed), args.repeats))
        print(json.dumps(results[-1]), flush=True)
    if DATA.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("german_credit", "berka"):
                results.append(one_case(name, example(name, Path(tmp)), args.repeats))
                print(json.dumps(results[-1]), flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
