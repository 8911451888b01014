"""`finintel run`, `score` and `demo` end to end: files, determinism, exact rescoring, refusals."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from finintel.cli import app
from finintel.config import config_for_files, load_config
from finintel.errors import BundleError, RunDirError
from finintel.pipeline import load_model, run_all, score_batch
from finintel.run_layout import (
    ALERTS_CSV,
    ALERTS_CSV_COLUMNS,
    ANOMALY_OUTPUT_COLUMNS,
    EVALUATION_JSON,
    MANIFEST_JSON,
    METRICS_JSON,
    MODEL_DIR,
    PROBABILITY_COLUMN,
    PROFILE_PREFIX,
    REJECTS_CSV,
    REPORT_HTML,
    RISK_OUTPUT_COLUMNS,
    RUN_JSON,
    SCORED_CSV,
    SCORED_PARQUET,
    SEGMENT_OUTPUT_COLUMNS,
    SEGMENTS_CSV,
    SEGMENTS_CSV_COLUMNS,
    SUMMARY_JSON,
    VALIDATION_JSON,
    RunLayout,
    require_finished_run,
    scored_output_columns,
)
from finintel.sql import connect, quote_literal
from finintel.synthetic import generate_bank
from finintel.validate import validate

runner = CliRunner()
TODAY = "2026-11-21"
RUN_FILES = (
    SCORED_PARQUET,
    SCORED_CSV,
    SEGMENTS_CSV,
    ALERTS_CSV,
    REJECTS_CSV,
    VALIDATION_JSON,
    METRICS_JSON,
    RUN_JSON,
    f"{MODEL_DIR}/{MANIFEST_JSON}",
)


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


@pytest.mark.slow
def test_run_writes_every_result_file_with_consistent_counts(first_run: Path) -> None:
    layout = RunLayout(first_run)
    for name in RUN_FILES:
        assert (first_run / name).is_file(), name
    scored = read_csv(layout.scored_csv)
    validation = json.loads(layout.validation_json.read_text())
    assert len(scored) == validation["tables"]["customers"]["clean"]
    header = list(scored[0])
    assert header[0] == "customer_id"
    outputs = list(scored_output_columns(supervised=False))
    assert header[-len(outputs) :] == outputs
    alerts_header = layout.alerts_csv.read_text(encoding="utf-8").splitlines()[0]
    assert alerts_header.split(",") == list(ALERTS_CSV_COLUMNS)
    segments_header = layout.segments_csv.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert segments_header[: len(SEGMENTS_CSV_COLUMNS)] == list(SEGMENTS_CSV_COLUMNS)
    profile = segments_header[len(SEGMENTS_CSV_COLUMNS) :]
    assert profile and all(name.startswith(PROFILE_PREFIX) for name in profile)
    assert all(0 <= float(r["risk_score"]) <= 100 for r in scored)
    assert {r["risk_band"] for r in scored} <= {"Low", "Medium", "High", "Critical"}
    flagged = [r for r in scored if r["is_anomaly"] == "true"]
    assert flagged and all(r["anomaly_reasons"] for r in flagged)
    segments = read_csv(layout.segments_csv)
    sizes = {int(s["segment_id"]): int(s["size"]) for s in segments}
    assert sum(sizes.values()) == len(scored)
    assert len({s["segment_name"] for s in segments}) == len(segments)
    for s in segments:
        members = [r for r in scored if int(r["segment_id"]) == int(s["segment_id"])]
        assert len(members) == sizes[int(s["segment_id"])]
        assert {r["segment_name"] for r in members} == {s["segment_name"]}
    run = json.loads(layout.run_json.read_text())
    assert run["seed"] == 5
    assert {i["path"].rsplit("/", 1)[-1] for i in run["inputs"]} == {
        "customers.parquet",
        "transactions.parquet",
        "loans.parquet",
    }
    assert run["counts"]["customers_scored"] == len(scored)
    assert {s["segment_id"]: s["size"] for s in run["counts"]["segments"]} == sizes
    assert run["counts"]["anomalies"] == len(flagged)
    metrics = json.loads(layout.metrics_json.read_text())
    assert {"risk", "anomalies", "segments", "transaction_alerts"} <= set(metrics)


@pytest.mark.slow
def test_the_seed_option_is_the_seed_of_every_record(first_run: Path) -> None:
    """`--seed 5` is applied to the config once: every record, and the saved config, say 5."""
    layout = RunLayout(first_run)
    run = json.loads(layout.run_json.read_text())
    manifest = json.loads((layout.model_dir / MANIFEST_JSON).read_text())
    metrics = json.loads(layout.metrics_json.read_text())
    seeds = {
        "run.json": run["seed"],
        "run.json config": run["config"]["seed"],
        "manifest.json": manifest["seed"],
        "manifest.json config": manifest["config"]["seed"],
        "metrics.json": metrics["seed"],
    }
    assert seeds == dict.fromkeys(seeds, 5)


@pytest.mark.slow
def test_same_seed_gives_identical_scored_customers(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["run", *files_args(bank), "--out", str(tmp_path), "--seed", "5", "--today", TODAY]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    for name in (SCORED_CSV, SEGMENTS_CSV, ALERTS_CSV):
        assert (tmp_path / name).read_bytes() == (first_run / name).read_bytes(), name


@pytest.mark.slow
def test_scoring_the_training_data_reproduces_the_run_exactly(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["score", "--model", str(first_run / MODEL_DIR), *files_args(bank)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--today", TODAY])
    assert result.exit_code == 0, result.output
    for name in (SCORED_CSV, ALERTS_CSV):
        assert (tmp_path / name).read_bytes() == (first_run / name).read_bytes(), name
    assert json.loads((tmp_path / RUN_JSON).read_text())["command"] == "score"


@pytest.mark.slow
def test_score_batch_scores_without_writing_a_file(
    bank: Path, first_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    today = date.fromisoformat(TODAY)
    cfg = config_for_files(
        str(bank / "customers.parquet"),
        str(bank / "transactions.parquet"),
        str(bank / "loans.parquet"),
        None,
    )
    con = connect()
    validated = validate(con, cfg, Path.cwd(), today=today)
    scored = score_batch(con, validated, load_model(first_run / MODEL_DIR), cfg, today=today)
    assert list(tmp_path.iterdir()) == []
    with duckdb.connect() as db:
        expected = db.execute(
            f"SELECT customer_id, risk_score, segment_id FROM "
            f"read_parquet({quote_literal(str(first_run / SCORED_PARQUET))}) ORDER BY customer_id"
        ).fetchall()
    got = scored.table.select(["customer_id", "risk_score", "segment_id"]).to_pylist()
    assert [tuple(row.values()) for row in got] == expected


def small_batch(bank: Path, first_run: Path, out: Path, n: int) -> list[str]:
    """The first `n` trained customers with a loan, with their transactions and loans only."""
    scored = quote_literal(str(first_run / SCORED_PARQUET))
    loans = quote_literal(str(bank / "loans.parquet"))
    out.mkdir()
    with duckdb.connect() as con:
        ids = [
            row[0]
            for row in con.execute(
                f"SELECT customer_id FROM read_parquet({scored}) WHERE customer_id IN "
                f"(SELECT customer_id FROM read_parquet({loans})) ORDER BY customer_id LIMIT {n}"
            ).fetchall()
        ]
        chosen = ", ".join(quote_literal(i) for i in ids)
        for table in ("customers", "transactions", "loans"):
            source = quote_literal(str(bank / f"{table}.parquet"))
            target = quote_literal(str(out / f"{table}.parquet"))
            con.execute(
                f"COPY (SELECT * FROM read_parquet({source}) WHERE customer_id IN ({chosen})) "
                f"TO {target} (FORMAT parquet)"
            )
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2])
def test_scoring_a_batch_of_one_or_two_customers(
    bank: Path, first_run: Path, tmp_path: Path, n: int
) -> None:
    """A customer's row does not depend on who else is in the batch, even when alone."""
    ids = small_batch(bank, first_run, tmp_path / "batch", n)
    out = RunLayout(tmp_path / "scored")
    args = ["score", "--model", str(first_run / MODEL_DIR), *files_args(tmp_path / "batch")]
    result = runner.invoke(app, [*args, "--out", str(out.root), "--today", TODAY])
    assert result.exit_code == 0, result.output
    scored = read_csv(out.scored_csv)
    assert [r["customer_id"] for r in scored] == ids
    trained = {r["customer_id"]: r for r in read_csv(first_run / SCORED_CSV)}
    scores = ("risk_score", "anomaly_score")  # equal up to float rounding (vectorised sums)
    for row, expected in zip(scored, (trained[i] for i in ids), strict=True):
        assert {k: v for k, v in row.items() if k not in scores} == {
            k: v for k, v in expected.items() if k not in scores
        }
        for name in scores:
            assert float(row[name]) == pytest.approx(float(expected[name]), rel=1e-12)
    assert require_finished_run(out.root) == out.root.resolve()
    run = json.loads(out.run_json.read_text())
    batch = [(s["size"], s["share"]) for s in run["counts"]["segments"] if s["size"]]
    assert sum(size for size, _ in batch) == n and sum(share for _, share in batch) == 1
    report = run["report"]
    assert report["status"] in {"built", "failed", "skipped"}
    if report["status"] == "failed":
        assert report["reason"] and not out.report_html.exists()
        assert "warning: the report was not built" in " ".join(result.output.split())


@pytest.mark.slow
def test_a_report_that_cannot_be_built_leaves_a_finished_run(
    bank: Path, first_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    import finintel.report

    def broken(run_dir: Path, progress: object = None) -> Path:
        raise ValueError("the plot cannot be drawn\nsecond line")

    monkeypatch.setattr(finintel.report, "build_report", broken)
    out = RunLayout(tmp_path)
    out.report_html.write_text("an older run's report", encoding="utf-8")
    out.summary_json.write_text("{}", encoding="utf-8")
    args = ["score", "--model", str(first_run / MODEL_DIR), *files_args(bank)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "--today", TODAY, "--quiet"])
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    assert "warning: the report was not built: ValueError: the plot cannot be drawn." in message
    assert "Traceback" not in result.output and "second line" not in result.output
    assert read_csv(out.scored_csv) == read_csv(first_run / SCORED_CSV)
    run = json.loads(out.run_json.read_text())
    assert run["report"] == {
        "status": "failed",
        "path": None,
        "reason": "ValueError: the plot cannot be drawn",
    }
    assert "report" in run["timings_seconds"]
    assert not out.report_html.exists() and not out.summary_json.exists()
    assert require_finished_run(tmp_path) == tmp_path.resolve()
    # once the report can be built, `finintel report` builds it and run.json says so
    monkeypatch.undo()
    rebuilt = runner.invoke(app, ["report", str(tmp_path), "--quiet"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert out.report_html.is_file() and out.summary_json.is_file()
    assert json.loads(out.run_json.read_text())["report"]["status"] == "built"


@pytest.mark.slow
def test_a_built_report_is_recorded_in_run_json(first_run: Path) -> None:
    pytest.importorskip("matplotlib")
    run = json.loads(RunLayout(first_run).run_json.read_text())
    assert run["report"] == {
        "status": "built",
        "path": str(first_run / REPORT_HTML),
        "reason": None,
    }
    assert (first_run / REPORT_HTML).is_file() and (first_run / SUMMARY_JSON).is_file()


@pytest.mark.slow
def test_a_finished_run_needs_scored_customers_and_run_json(
    first_run: Path, tmp_path: Path
) -> None:
    assert require_finished_run(first_run) == first_run.resolve()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / SCORED_PARQUET).write_bytes((first_run / SCORED_PARQUET).read_bytes())
    with pytest.raises(RunDirError) as refused:
        require_finished_run(partial)
    message = str(refused.value)
    assert str(partial) in message and "is not a finished run: run.json is missing" in message
    assert "finintel run" in message
    with pytest.raises(RunDirError, match=r"customers_scored\.parquet is missing"):
        require_finished_run(tmp_path)
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 2
    assert "run.json is missing" in " ".join(result.output.split())


@pytest.mark.slow
def test_scoring_a_new_batch_uses_training_statistics(first_run: Path, tmp_path: Path) -> None:
    other = generate_bank(tmp_path / "other", 300, seed=99)
    args = ["score", "--model", str(first_run / MODEL_DIR), *files_args(other.customers.parent)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "scored"), "--today", TODAY])
    assert result.exit_code == 0, result.output
    scored = read_csv(tmp_path / "scored" / SCORED_CSV)
    assert len(scored) == 300
    trained = {s["segment_name"] for s in read_csv(first_run / SEGMENTS_CSV)}
    assert {r["segment_name"] for r in scored} <= trained


@pytest.mark.slow
def test_a_tampered_bundle_is_refused(bank: Path, first_run: Path, tmp_path: Path) -> None:
    model = tmp_path / MODEL_DIR
    model.mkdir()
    for file in (first_run / MODEL_DIR).rglob("*"):
        if file.is_file():
            target = model / file.relative_to(first_run / MODEL_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    victim = sorted(p for p in model.rglob("*.json") if p.name != MANIFEST_JSON)[0]
    victim.write_bytes(victim.read_bytes().replace(b"0", b"1", 1))
    args = ["score", "--model", str(model), *files_args(bank), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "has been changed since the model was saved" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o" / SCORED_CSV).exists()


@pytest.mark.slow
def test_data_that_cannot_provide_the_model_features_is_refused(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    args = ["score", "--model", str(first_run / MODEL_DIR), *files_args(bank, loans=False)]
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
    scored = read_csv(tmp_path / "o" / SCORED_CSV)
    assert len(scored) == 400
    assert read_csv(tmp_path / "o" / ALERTS_CSV) == []


@pytest.mark.slow
def test_demo_generates_runs_and_compares_with_truth(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--customers", "1200", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Against the planted truth" in result.output
    # every file on a line of its own, the path whole however long it is
    lines = result.output.splitlines()
    for label, name in (
        ("Transaction alerts", ALERTS_CSV),
        ("Report", REPORT_HTML),
    ):
        assert f"{label}: {tmp_path / 'run' / name}" in lines, (label, result.output)
    evaluation = json.loads((tmp_path / "run" / EVALUATION_JSON).read_text())
    assert evaluation["customers"] == 1200
    assert (tmp_path / "run" / MODEL_DIR / MANIFEST_JSON).is_file()
    alerts = evaluation["transaction_alerts"]
    with (tmp_path / "run" / ALERTS_CSV).open(encoding="utf-8") as fh:
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
    assert not (tmp_path / "o" / SCORED_CSV).exists()
    assert not (tmp_path / "o" / MODEL_DIR).exists()


def test_dashboard_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert str(tmp_path) in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_a_bundle_with_a_foreign_object_type_is_refused_without_loading_it(
    bank: Path, first_run: Path, tmp_path: Path
) -> None:
    """Even with the manifest checksums rewritten to match, skops refuses untrusted types."""
    import hashlib

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = tmp_path / MODEL_DIR
    for file in (first_run / MODEL_DIR).rglob("*"):
        if file.is_file():
            target = model / file.relative_to(first_run / MODEL_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    [forest] = model.rglob("*.skops")  # the Isolation Forest, whatever its file is called
    forest.write_bytes(sio.dumps(LogisticRegression()))
    manifest = json.loads((model / MANIFEST_JSON).read_text())
    entry = manifest["files"][forest.relative_to(model).as_posix()]
    entry["sha256"] = hashlib.sha256(forest.read_bytes()).hexdigest()
    entry["bytes"] = forest.stat().st_size
    (model / MANIFEST_JSON).write_text(json.dumps(manifest))
    args = ["score", "--model", str(model), *files_args(bank), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "fitted state cannot be loaded" in result.output
    assert "holds a LogisticRegression, not an IsolationForest" in result.output
    assert not (tmp_path / "o" / SCORED_CSV).exists()


class Intruder:
    """A type no bundle may contain: skops must refuse to build it."""

    def __init__(self) -> None:
        self.payload = "echo pwned"


def test_skops_refuses_a_type_outside_the_trusted_list() -> None:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    from finintel.models.detectors import TRUSTED_FOREST_TYPES

    data = sio.dumps(Intruder())
    with pytest.raises(UntrustedTypesFoundException, match="Intruder"):
        sio.loads(data, trusted=TRUSTED_FOREST_TYPES)


# ---------------------------------------------------------------------- runs without a risk score

ANONYMISED_SEED = 4242
ANONYMISED_CUSTOMERS = 600
COMPONENTS = tuple(f"v{i}" for i in range(1, 13))
PLANTED = (17, 101, 222, 350, 480, 599)  # rows far from everyone else in every component
RISK_COLUMNS = {*RISK_OUTPUT_COLUMNS, PROBABILITY_COLUMN}
SKIPPED = (
    "warning: risk scoring was skipped: no risk factor can be computed from this feature table:"
)
SILENCE = "set [risk] enabled = false in the config to run without it and without this warning."


def write_anonymised_cards(folder: Path) -> dict[str, Path]:
    """Customers only, with anonymised card components v1..v12 and an amount (no column means
    anything to a risk factor), six planted outliers, and two configs reading the file: one
    leaving risk scoring on (`auto`), one with `[risk] enabled = false` (`off`)."""
    rng = np.random.default_rng(ANONYMISED_SEED)
    values = rng.standard_normal((ANONYMISED_CUSTOMERS, len(COMPONENTS)))
    amount = rng.lognormal(3.0, 1.0, ANONYMISED_CUSTOMERS)
    signs = rng.choice([-1.0, 1.0], size=(len(PLANTED), len(COMPONENTS)))
    values[list(PLANTED)] += 8.0 * signs
    amount[list(PLANTED)] *= 40.0
    folder.mkdir(parents=True, exist_ok=True)
    lines = [",".join(("customer_id", *COMPONENTS, "amount"))]
    for i in range(ANONYMISED_CUSTOMERS):
        numbers = ",".join(f"{v:.5f}" for v in values[i])
        lines.append(f"K{i:04d},{numbers},{amount[i]:.2f}")
    (folder / "cards.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    extras = "".join(f'{c} = "{c}"\n' for c in (*COMPONENTS, "amount"))
    mapping = f'[customers]\npath = "cards.csv"\n[customers.extra_columns]\n{extras}'
    configs = {"auto": folder / "auto.toml", "off": folder / "off.toml"}
    configs["auto"].write_text(mapping, encoding="utf-8")
    configs["off"].write_text(mapping + "[risk]\nenabled = false\n", encoding="utf-8")
    return configs


@dataclass(frozen=True)
class RiskOffRun:
    """A finished `finintel run` on the anonymised cards and what it printed."""

    out: Path
    output: str  # stdout and stderr, whitespace collapsed


def run_cli(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def anonymised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_anonymised_cards(tmp_path_factory.mktemp("anonymised"))


@pytest.fixture(scope="module")
def risk_skipped(
    anonymised: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> RiskOffRun:
    """Risk scoring on (the default), but no risk factor applies: skipped with a warning."""
    out = tmp_path_factory.mktemp("risk_skipped")
    return RiskOffRun(out, run_cli(["run", "--config", str(anonymised["auto"]), "--out", str(out)]))


@pytest.fixture(scope="module")
def risk_disabled(
    anonymised: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> RiskOffRun:
    """`[risk] enabled = false`: no risk score, no warning."""
    out = tmp_path_factory.mktemp("risk_disabled")
    return RiskOffRun(out, run_cli(["run", "--config", str(anonymised["off"]), "--out", str(out)]))


def test_run_all_without_a_risk_factor_records_why(
    anonymised: dict[str, Path], tmp_path: Path
) -> None:
    cfg, base = load_config(anonymised["auto"])
    run = run_all(cfg, base, tmp_path)
    assert run.fitted.risk is None and run.fitted.risk_off is not None
    assert run.fitted.risk_off.automatic
    assert not RISK_COLUMNS & set(run.scored.table.column_names)
    assert run.summary["risk_off"] == run.metrics["risk"] == run.fitted.risk_off.to_dict()
    assert run.summary["risk_bands"] == {} and run.summary["customers_scored"] == 600
    assert "risk" not in run.fitted.to_parts()


@pytest.mark.slow
def test_without_a_risk_factor_the_run_goes_on_without_risk(risk_skipped: RiskOffRun) -> None:
    layout = RunLayout(risk_skipped.out)
    for name in RUN_FILES:
        assert (risk_skipped.out / name).is_file(), name
    scored = read_csv(layout.scored_csv)
    assert len(scored) == ANONYMISED_CUSTOMERS
    header = list(scored[0])
    outputs = [*ANOMALY_OUTPUT_COLUMNS, *SEGMENT_OUTPUT_COLUMNS]
    assert header == ["customer_id", *COMPONENTS, "amount", *outputs]
    assert header[-len(outputs) :] == list(scored_output_columns(supervised=False, risk=False))
    assert not RISK_COLUMNS & set(header)
    flagged = {r["customer_id"] for r in scored if r["is_anomaly"] == "true"}
    assert {f"K{i:04d}" for i in PLANTED} <= flagged
    assert all(r["segment_name"] for r in scored)
    # the warning names why (every factor with its reason) and how to silence it
    said = risk_skipped.output
    assert said.count(SKIPPED) == 1 and SILENCE in said
    reason = json.loads(RunLayout(risk_skipped.out).metrics_json.read_text())["risk"]["reason"]
    assert f"warning: risk scoring was skipped: {' '.join(reason.split())}. " in said
    assert "debt_to_income: " in reason and "spend_to_income: " in reason
    assert "Risk scoring is off: no risk factor can be computed from this data" in said
    assert "Risk bands" not in said
    # recorded in metrics.json, run.json and the bundle, which has no risk part
    metrics = json.loads(layout.metrics_json.read_text())
    assert metrics["risk"]["enabled"] is False and metrics["risk"]["source"] == "no_risk_factor"
    assert metrics["risk"]["reason"].startswith("no risk factor can be computed")
    assert {"anomalies", "segments", "transaction_alerts"} <= set(metrics)
    counts = json.loads(layout.run_json.read_text())["counts"]
    assert counts["risk_bands"] == {} and counts["risk_off"] == metrics["risk"]
    manifest = json.loads((layout.model_dir / MANIFEST_JSON).read_text())
    assert manifest["parts"] == ["anomaly", "segments", "transaction_alerts"]
    assert manifest["risk_off"] == metrics["risk"]
    assert not (layout.model_dir / "risk").exists()


@pytest.mark.slow
def test_risk_switched_off_in_the_config_says_so_without_a_warning(
    risk_disabled: RiskOffRun, risk_skipped: RiskOffRun
) -> None:
    said = risk_disabled.output
    assert "warning" not in said
    assert "Risk scoring is off: [risk] enabled = false" in said
    layout = RunLayout(risk_disabled.out)
    metrics = json.loads(layout.metrics_json.read_text())
    assert metrics["risk"] == {
        "enabled": False,
        "source": "config",
        "reason": "[risk] enabled = false",
        "note": "risk scoring is off: [risk] enabled = false",
    }
    # the other models are the same whichever way risk is off
    for name in (SCORED_CSV, SEGMENTS_CSV, ALERTS_CSV):
        assert (layout.root / name).read_bytes() == (risk_skipped.out / name).read_bytes(), name


@pytest.mark.slow
def test_a_report_of_a_run_without_risk_says_why(
    risk_skipped: RiskOffRun, risk_disabled: RiskOffRun
) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    skipped = RunLayout(risk_skipped.out).report_html.read_text(encoding="utf-8")
    assert "Risk scoring is off: no risk factor can be computed from this feature table" in skipped
    assert "set [risk] enabled = false" in skipped
    disabled = RunLayout(risk_disabled.out).report_html.read_text(encoding="utf-8")
    assert "Risk scoring is off: [risk] enabled = false." in disabled
    for html in (skipped, disabled):
        assert 'id="risk"' not in html and "Highest-risk customers" not in html
    for run in (risk_skipped, risk_disabled):
        assert json.loads(RunLayout(run.out).run_json.read_text())["report"]["status"] == "built"


@pytest.mark.slow
def test_scoring_with_a_bundle_without_risk(
    risk_skipped: RiskOffRun, anonymised: dict[str, Path], tmp_path: Path
) -> None:
    model = risk_skipped.out / MODEL_DIR
    args = ["score", "--model", str(model), "--config", str(anonymised["auto"])]
    said = run_cli([*args, "--out", str(tmp_path)])
    assert "Risk scoring is off: no risk factor can be computed from this data" in said
    assert "warning" not in said  # the warning belongs to fitting; the bundle says why
    for name in (SCORED_CSV, ALERTS_CSV):
        assert (tmp_path / name).read_bytes() == (risk_skipped.out / name).read_bytes(), name
    metrics = json.loads(RunLayout(tmp_path).metrics_json.read_text())
    assert metrics["risk"]["source"] == "no_risk_factor"
    assert load_model(model).fitted.risk is None


@pytest.mark.slow
def test_a_bundle_whose_manifest_hides_the_missing_risk_part_is_refused(
    risk_disabled: RiskOffRun, tmp_path: Path
) -> None:
    model = tmp_path / MODEL_DIR
    for file in (risk_disabled.out / MODEL_DIR).rglob("*"):
        if file.is_file():
            target = model / file.relative_to(risk_disabled.out / MODEL_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
    manifest = json.loads((model / MANIFEST_JSON).read_text())
    manifest["risk_off"] = None
    (model / MANIFEST_JSON).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="the bundle has no model part"):
        load_model(model)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('[risk]\nmode = "supervised"\n', "risk mode 'supervised' needs labels"),
        (
            '[risk]\nenabled = false\n[segments]\nfeatures = ["v1", "risk_score"]\n',
            "segments.features names risk_score, but risk scoring is off: [risk] enabled = false",
        ),
    ],
)
def test_other_risk_errors_still_stop_the_run(
    anonymised: dict[str, Path], tmp_path: Path, setting: str, message: str
) -> None:
    config = tmp_path / "cfg.toml"
    text = anonymised["auto"].read_text(encoding="utf-8")
    config.write_text(
        text.replace('"cards.csv"', f'"{anonymised["auto"].parent / "cards.csv"}"') + setting
    )
    result = runner.invoke(app, ["run", "--config", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "o" / SCORED_CSV).exists()


@pytest.mark.slow
def test_with_labels_the_risk_score_is_the_scorecard_as_before(
    anonymised: dict[str, Path], tmp_path: Path
) -> None:
    """Labels give a supervised model: the automatic skip never applies to it."""
    rng = np.random.default_rng(ANONYMISED_SEED + 1)
    cards = read_csv(anonymised["auto"].parent / "cards.csv")
    lines = ["customer_id,defaulted"]
    for row in cards:
        odds = float(row["v1"]) + 0.5 * rng.standard_normal()
        lines.append(f"{row['customer_id']},{int(odds > 1.0)}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "labelled.toml"
    mapping = anonymised["auto"].read_text(encoding="utf-8")
    config.write_text(
        mapping.replace('"cards.csv"', f'"{anonymised["auto"].parent / "cards.csv"}"')
        + '[labels]\npath = "labels.csv"\n[risk]\ncv_repeats = 1\n',
        encoding="utf-8",
    )
    said = run_cli(["run", "--config", str(config), "--out", str(tmp_path / "o"), "--quiet"])
    assert "warning" not in said
    header = list(read_csv(tmp_path / "o" / SCORED_CSV)[0])
    assert set(header) >= RISK_COLUMNS
    metrics = json.loads((tmp_path / "o" / METRICS_JSON).read_text())
    assert metrics["risk"]["mode"] == "supervised" and "enabled" not in metrics["risk"]


def test_labels_that_all_fail_validation_stop_the_run(
    anonymised: dict[str, Path], tmp_path: Path
) -> None:
    """A labels table that loses every row is an error, not a quiet run without labels."""
    cards = read_csv(anonymised["auto"].parent / "cards.csv")
    lines = ["customer_id,defaulted", *(f"X{row['customer_id']},1" for row in cards[:40])]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "labelled.toml"
    mapping = anonymised["auto"].read_text(encoding="utf-8")
    config.write_text(
        mapping.replace('"cards.csv"', f'"{anonymised["auto"].parent / "cards.csv"}"')
        + '[labels]\npath = "labels.csv"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["run", "--config", str(config), "--out", str(tmp_path / "o")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "labels.csv: no row passed validation: 40 of 40 labels rejected (100%)" in said
    assert "unknown_customer: 40" in said and "rejects.csv" in said and "Traceback" not in said
    assert not (tmp_path / "o" / SCORED_CSV).exists()


# ------------------------------------------------------------------------------ reject share


def write_small_bank(folder: Path, timestamp: str = "%Y-%m-%d %H:%M:%S", bad: int = 0) -> None:
    """120 customers with 4 transactions each; the first `bad` transactions have a broken date."""
    customers = ["customer_id,annual_income,account_balance,age"]
    transactions = ["customer_id,timestamp,amount,direction"]
    for i in range(120):
        customers.append(f"C{i:03d},{20000 + 311 * i},{(i * 7919) % 4000 - 300},{20 + i % 50}")
        for k in range(4):
            when = date(2024, 1 + k * 3, 1 + i % 28).strftime(timestamp)
            if len(transactions) - 1 < bad:
                when = "2024-99-01"
            amount = f"{(i * 37 + k * 101) % 900 + 10}.{k}5"
            transactions.append(f"C{i:03d},{when},{amount},{'credit' if k == 0 else 'debit'}")
    (folder / "customers.csv").write_text("\n".join(customers) + "\n", encoding="utf-8")
    (folder / "transactions.csv").write_text("\n".join(transactions) + "\n", encoding="utf-8")


def small_bank_args(folder: Path) -> list[str]:
    return [
        "--customers",
        str(folder / "customers.csv"),
        "--transactions",
        str(folder / "transactions.csv"),
        "--today",
        TODAY,
    ]


def test_a_wrong_date_format_stops_the_run_before_any_model(tmp_path: Path) -> None:
    write_small_bank(tmp_path, timestamp="%m/%d/%Y %H:%M")
    out = tmp_path / "o"
    result = runner.invoke(app, ["run", *small_bank_args(tmp_path), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert (
        f"{tmp_path / 'transactions.csv'}: no row passed validation: "
        "480 of 480 transactions rejected (100%), more than "
        "[validation] max_reject_share = 0.5 allows. Most rows break unparseable_date: 480; "
        "e.g. row 1: timestamp '01/01/2024 00:00' does not match an ISO date"
    ) in said
    assert "Hint: set the column's `formats`" in said and "Traceback" not in said
    layout = RunLayout(out)
    assert not layout.model_dir.exists() and not layout.scored_csv.exists()
    assert not layout.features_parquet.exists() and not layout.run_json.exists()
    assert not layout.report_html.exists()
    # The files that show why are written.
    assert len(read_csv(layout.rejects_csv)) == 480
    validation = json.loads(layout.validation_json.read_text())
    assert validation["max_reject_share"] == 0.5
    assert validation["tables"]["transactions"]["reject_share"] == 1.0
    assert validation["tables"]["customers"]["clean"] == 120


def test_validate_over_the_reject_share_writes_its_files_and_exits_2(tmp_path: Path) -> None:
    write_small_bank(tmp_path, timestamp="%m/%d/%Y %H:%M")
    out = tmp_path / "o"
    result = runner.invoke(app, ["validate", *small_bank_args(tmp_path), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "480 of 480 transactions rejected (100%)" in said
    layout = RunLayout(out)
    assert layout.clean_table("customers").is_file()
    assert layout.clean_table("transactions").is_file()
    assert layout.nulled_csv.is_file()
    assert read_csv(layout.rejects_csv)[0]["rule"] == "unparseable_date"
    assert list(read_csv(layout.rejects_csv)[0]) == [
        "table",
        "source",
        "row",
        "rule",
        "column",
        "reason",
        "raw",
    ]


def test_decimal_commas_without_the_decimal_setting_stop_the_run(tmp_path: Path) -> None:
    write_small_bank(tmp_path)
    path = tmp_path / "transactions.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(ln.replace(",", ";").replace(".", ",") for ln in lines) + "\n")
    out = tmp_path / "o"
    result = runner.invoke(app, ["run", *small_bank_args(tmp_path), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "480 of 480 transactions rejected (100%)" in said
    assert "Most rows break unparseable_number: 480; e.g. row 1: amount '10,05'" in said
    assert "set the column's `decimal`" in said
    assert not RunLayout(out).model_dir.exists() and not RunLayout(out).scored_csv.exists()


@pytest.mark.slow
def test_a_mapping_with_40_percent_rejects_still_runs(tmp_path: Path) -> None:
    write_small_bank(tmp_path, bad=192)  # 192 of 480 transactions: 40%
    out = tmp_path / "o"
    result = runner.invoke(app, ["run", *small_bank_args(tmp_path), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    validation = json.loads(RunLayout(out).validation_json.read_text())
    tx = validation["tables"]["transactions"]
    assert (tx["rows_in"], tx["clean"], tx["quarantined"]) == (480, 288, 192)
    assert tx["by_rule"] == {"unparseable_date": 192} and tx["reject_share"] == 0.4
    assert len(read_csv(RunLayout(out).scored_csv)) == 120
