"""`finintel run`, `score` and `demo` end to end: files, determinism, exact rescoring, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from finintel.cli import app
from finintel.synthetic import generate_bank

runner = CliRunner()
TODAY = "2026-11-21"
RUN_FILES = (
    "customers_scored.parquet",
    "customers_scored.csv",
    "segments.csv",
    "transaction_alerts.csv",
    "rejects.csv",
    "validation.json",
    "metrics.json",
    "run.json",
    "model/manifest.json",
)
OUTPUT_COLUMNS = [
    "risk_score",
    "risk_band",
    "risk_action",
    "risk_reasons",
    "anomaly_score",
    "is_anomaly",
    "anomaly_reasons",
    "segment_id",
    "segment_name",
]


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    generate_bank(out, 1500, seed=11)
    return out


def files_args(bank: Path, loans: bool = True) -> list[str]:
    args = ["--customers", str(bank / "customers.parquet")]
    args += ["--transactions", str(bank / "transactions.parquet")]
    if loans:
        args += ["--loans", str(bank / "loans.parquet")]
    return args


@pytest.fixture(scope="module")
def first_run(bank: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run1")
    args = ["run", *files_args(bank), "--out", str(out), "--seed", "5", "--today", TODAY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Segments" in result.output and "Risk bands" in result.output
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_run_writes_every_result_file_with_consistent_counts(first_run: Path) -> None:
    for name in RUN_FILES:
        assert (first_run / name).is_file(), name
    scored = read_csv(first_run / "customers_scored.csv")
    validation = json.loads((first_run / "validation.json").read_text())
    assert len(scored) == validation["tables"]["customers"]["clean"]
    header = list(scored[0])
    assert header[0] == "customer_id"
    assert header[-len(OUTPUT_COLUMNS) :] == OUTPUT_COLUMNS
    assert all(0 <= float(r["risk_score"]) <= 100 for r in scored)
    assert {r["risk_band"] for r in scored} <= {"Low", "Medium", "High", "Critical"}
    flagged = [r for r in scored if r["is_anomaly"] == "true"]
    assert flagged and all(r["anomaly_reasons"] for r in flagged)
    segments = read_csv(first_run / "segments.csv")
    sizes = {int(s["segment_id"]): int(s["size"]) for s in segments}
    assert sum(sizes.values()) == len(scored)
    assert len({s["segment_name"] for s in segments}) == len(segments)
    for s in segments:
        members = [r for r in scored if int(r["segment_id"]) == int(s["segment_id"])]
        assert len(members) == sizes[int(s["segment_id"])]
        assert {r["segment_name"] for r in members} == {s["segment_name"]}
    run = json.loads((first_run / "run.json").read_text())
    assert run["seed"] == 5
    assert {i["path"].rsplit("/", 1)[-1] for i in run["inputs"]} == {
        "customers.parquet",
        "transactions.parquet",
        "loans.parquet",
    }
    assert run["counts"]["customers_scored"] == len(scored)
    assert run["counts"]["anomalies"] == len(flagged)
    metrics = json.loads((first_run / "metrics.json").read_text())
    assert {"risk", "anomalies", "segments", "transaction_alerts"} <= set(metrics)


def test_same_seed_gives_identical_scored_customers(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["run", *files_args(bank), "--out", str(tmp_path), "--seed", "5", "--today", TODAY]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    for name in ("customers_scored.csv", "segments.csv", "transaction_alerts.csv"):
        assert (tmp_path / name).read_bytes() == (first_run / name).read_bytes(), name


def test_scoring_the_training_data_reproduces_the_run_exactly(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["score", "--model", str(first_run / "model"), *files_args(bank)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--today", TODAY])
    assert result.exit_code == 0, result.output
    for name in ("customers_scored.csv", "transaction_alerts.csv"):
        assert (tmp_path / name).read_bytes() == (first_run / name).read_bytes(), name
    assert json.loads((tmp_path / "run.json").read_text())["command"] == "score"


def test_scoring_a_new_batch_uses_training_statistics(first_run: Path, tmp_path: Path) -> None:
    other = generate_bank(tmp_path / "other", 300, seed=99)
    args = ["score", "--model", str(first_run / "model"), *files_args(other.customers.parent)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "scored"), "--today", TODAY])
    assert result.exit_code == 0, result.output
    scored = read_csv(tmp_path / "scored" / "customers_scored.csv")
    assert len(scored) == 300
    trained = {s["segment_name"] for s in read_csv(first_run / "segments.csv")}
    assert {r["segment_name"] for r in scored} <= trained


def test_a_tampered_bundle_is_refused(bank: Path, first_run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for file in (first_run / "model").rglob("*"):
        if file.is_file():
            target = model / file.relative_to(first_run / "model")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    victim = sorted(p for p in model.rglob("*.json") if p.name != "manifest.json")[0]
    victim.write_bytes(victim.read_bytes().replace(b"0", b"1", 1))
    args = ["score", "--model", str(model), *files_args(bank), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "has been changed since the model was saved" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o" / "customers_scored.csv").exists()


def test_data_that_cannot_provide_the_model_features_is_refused(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["score", "--model", str(first_run / "model"), *files_args(bank, loans=False)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--today", TODAY])
    assert result.exit_code == 2, result.output
    assert "feature mismatch" in result.output and "loan_count" in result.output


def test_run_without_transactions_on_a_customer_table(tmp_path: Path) -> None:
    lines = ["customer_id,annual_income,account_balance,credit_limit,age"]
    for i in range(400):
        lines.append(
            f"C{i:04d},{20000 + 137 * i},{(i * 7919) % 5000 - 500},{1000 + i * 5},{20 + i % 50}"
        )
    (tmp_path / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["run", "--customers", str(tmp_path / "customers.csv"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    scored = read_csv(tmp_path / "o" / "customers_scored.csv")
    assert len(scored) == 400
    assert read_csv(tmp_path / "o" / "transaction_alerts.csv") == []


def test_demo_generates_runs_and_compares_with_truth(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--customers", "1200", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Against the planted truth" in result.output
    # every file on a line of its own, the path whole however long it is
    lines = result.output.splitlines()
    for label, name in (
        ("Transaction alerts", "transaction_alerts.csv"),
        ("Report", "report.html"),
    ):
        assert f"{label}: {tmp_path / 'run' / name}" in lines, (label, result.output)
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["customers"] == 1200
    assert (tmp_path / "run" / "model" / "manifest.json").is_file()
    alerts = evaluation["transaction_alerts"]
    with (tmp_path / "run" / "transaction_alerts.csv").open(encoding="utf-8") as fh:
        alerted = {row["transaction_id"] for row in csv.DictReader(fh)}
    with duckdb.connect() as con:
        truth = con.execute(
            f"SELECT transaction_id, anomaly_kind FROM '{tmp_path}/bank/truth/transactions.parquet'"
        ).fetchall()
    assert alerts["alerts"] == len(alerted) > 0
    assert alerts["planted"] == len(truth)
    assert alerts["planted_among_alerts"] == sum(t in alerted for t, _ in truth) > 0
    assert set(alerts["recall_by_kind"]) == {"large_amount", "odd_hour", "new_channel_burst"}
    assert "planted transactions among" in result.output.replace("\n", " ")


def test_too_few_customers_is_a_clear_error(tmp_path: Path) -> None:
    rows = "\n".join(f"C{i},{1000 * (i + 1)},{20 + i}" for i in range(5))
    (tmp_path / "c.csv").write_text(f"customer_id,annual_income,age\n{rows}\n", encoding="utf-8")
    args = ["run", "--customers", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "needs at least 50 customers" in result.output and "has 5" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o" / "customers_scored.csv").exists()
    assert not (tmp_path / "o" / "model").exists()


def test_dashboard_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert str(tmp_path) in result.output and "Traceback" not in result.output


def test_a_bundle_with_a_foreign_object_type_is_refused_without_loading_it(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    """Even with the manifest checksums rewritten to match, skops refuses untrusted types."""
    import hashlib

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = tmp_path / "model"
    for file in (first_run / "model").rglob("*"):
        if file.is_file():
            target = model / file.relative_to(first_run / "model")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    forest = model / "anomaly" / "anomaly_isolation_forest.skops"
    forest.write_bytes(sio.dumps(LogisticRegression()))
    manifest = json.loads((model / "manifest.json").read_text())
    entry = manifest["files"]["anomaly/anomaly_isolation_forest.skops"]
    entry["sha256"] = hashlib.sha256(forest.read_bytes()).hexdigest()
    entry["bytes"] = forest.stat().st_size
    (model / "manifest.json").write_text(json.dumps(manifest))
    args = ["score", "--model", str(model), *files_args(bank), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "fitted state cannot be loaded" in result.output
    assert "holds a LogisticRegression, not an IsolationForest" in result.output
    assert not (tmp_path / "o" / "customers_scored.csv").exists()


class Intruder:
    """A type no bundle may contain: skops must refuse to build it."""

    def __init__(self) -> None:
        self.payload = "echo pwned"


def test_skops_refuses_a_type_outside_the_trusted_list() -> None:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    from finintel.models.anomaly import TRUSTED_FOREST_TYPES

    data = sio.dumps(Intruder())
    with pytest.raises(UntrustedTypesFoundException, match="Intruder"):
        sio.loads(data, trusted=TRUSTED_FOREST_TYPES)
