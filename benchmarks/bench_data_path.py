"""Benchmark the data path: generate -> validate -> features, against a plain group-by baseline.

Each step runs in its own child process so its peak memory (max RSS) is its own. The feature
step and the baseline (one `GROUP BY customer_id` with 12 aggregates over the same clean
transactions Parquet) are each run `--repeats` times, interleaved, and compared as a ratio of
medians measured in the same run. Target: feature step / baseline <= 2.

Usage:
    python benchmarks/bench_data_path.py --customers 500000 --tx-per-customer 20 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from finintel.run_layout import RunLayout

STEPS = {
    "generate": """
from pathlib import Path
from finintel.synthetic import generate_bank
generate_bank(Path({out!r}) / "bank", {customers}, seed=7, tx_per_customer={tx})
""",
    "validate": """
from datetime import date
from pathlib import Path
from finintel.config import config_for_files
from finintel.pipeline import run_validation
bank = Path({out!r}) / "bank"
cfg = config_for_files(str(bank / "customers.parquet"), str(bank / "transactions.parquet"),
                       str(bank / "loans.parquet"))
run_validation(cfg, Path("."), Path({out!r}) / "validated", today=date(2026, 11, 21))
""",
    "features": """
from pathlib import Path
from finintel.config import FeatureSettings
from finintel.features import build_features, plan_features
from finintel.run_layout import RunLayout
from finintel.sql import connect
validated = RunLayout(Path({out!r}) / "validated")
con = connect()
for name in ("customers", "transactions", "loans"):
    path = validated.clean_table(name)
    con.execute(f"CREATE VIEW clean_{{name}} AS SELECT * FROM read_parquet('{{path}}')")
plan = plan_features(con, FeatureSettings())
build_features(con, plan)
assert con.execute("SELECT count(*) FROM features").fetchall()[0][0] > 0
""",
    "baseline": """
from pathlib import Path
from finintel.run_layout import RunLayout
from finintel.sql import connect
transactions = RunLayout(Path({out!r}) / "validated").clean_table("transactions")
con = connect()
con.execute(
    "CREATE TABLE agg AS SELECT customer_id, count(*), sum(amount), avg(amount), min(amount), "
    "max(amount), stddev_pop(amount::DOUBLE), min(timestamp), max(timestamp), "
    "count(*) FILTER (direction = 'debit'), sum(amount) FILTER (direction = 'debit'), "
    "count(DISTINCT channel), max(balance_after) "
    f"FROM read_parquet('{{transactions}}') GROUP BY customer_id"
)
""",
}


def run_step(name: str, out: Path, customers: int, tx: float) -> tuple[float, float]:
    """Run one step in a child process; return (seconds of its work, peak RSS in MiB).

    The child imports first and times only the step itself, so interpreter start-up and
    imports count for neither side of a comparison.
    """
    body = STEPS[name].format(out=str(out), customers=customers, tx=tx).strip("\n")
    imports = [line for line in body.splitlines() if line.startswith(("from ", "import "))]
    work = [line for line in body.splitlines() if not line.startswith(("from ", "import "))]
    code = "\n".join(
        [
            *imports,
            "import time",
            "_t0 = time.perf_counter()",
            *work,
            "print('ELAPSED', time.perf_counter() - _t0, flush=True)",
        ]
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step {name} failed")
    seconds = float(output.split("ELAPSED")[-1])
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--tx-per-customer", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-output"))
    parser.add_argument("--reuse", action="store_true", help="keep generated/validated data")
    args = parser.parse_args()
    out: Path = args.out
    results: dict[str, dict[str, float]] = {}
    once = ["generate", "validate"]
    if args.reuse and RunLayout(out / "validated").clean_table("transactions").exists():
        once = []
    for step in once:
        seconds, rss = run_step(step, out, args.customers, args.tx_per_customer)
        results[step] = {"seconds": round(seconds, 2), "peak_rss_mib": round(rss)}
        print(f"{step:>9}: {seconds:7.2f} s  peak {rss:7.0f} MiB", flush=True)
    timings: dict[str, list[float]] = {"features": [], "baseline": []}
    peaks: dict[str, list[float]] = {"features": [], "baseline": []}
    for _ in range(args.repeats):
        for step in ("baseline", "features"):
            seconds, rss = run_step(step, out, args.customers, args.tx_per_customer)
            timings[step].append(seconds)
            peaks[step].append(rss)
    for step in ("baseline", "features"):
        median = statistics.median(timings[step])
        results[step] = {
            "median_seconds": round(median, 3),
            "runs": [round(t, 3) for t in timings[step]],
            "peak_rss_mib": round(max(peaks[step])),
        }
        print(
            f"{step:>9}: median {median:6.2f} s over {args.repeats} runs "
            f"(runs {', '.join(f'{t:.2f}' for t in timings[step])})  "
            f"peak {max(peaks[step]):.0f} MiB"
        )
    ratio = results["features"]["median_seconds"] / results["baseline"]["median_seconds"]
    results["features_over_baseline"] = {"ratio": round(ratio, 2), "target": 2.0}
    print(f"feature step / baseline group-by: {ratio:.2f}x (target <= 2.0x)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_data_path.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
