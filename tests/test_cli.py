"""The command line end to end: generate -> validate -> features, clean failures, and the
line saying when segments are not a stable structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from finintel.cli import _print_segment_note, app
from finintel.run_layout import (
    FEATURES_CSV,
    FEATURES_JSON,
    NULLED_CSV,
    REJECTS_CSV,
    VALIDATION_JSON,
    RunLayout,
)
from finintel.sql import connect

runner = CliRunner()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    result = runner.invoke(
        app, ["generate", "--customers", "300", "--seed", "3", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_features_from_generated_bank(bank: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "features",
            "--customers",
            str(bank / "customers.parquet"),
            "--transactions",
            str(bank / "transactions.parquet"),
            "--loans",
            str(bank / "loans.parquet"),
            "--out",
            str(tmp_path),
            "--today",
            "2026-11-21",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Features: " in result.output
    report = json.loads((tmp_path / VALIDATION_JSON).read_text())
    for table in report["tables"].values():
        assert table["rows_in"] == table["clean"] + table["quarantined"]
    # the generator plants dirty rows; they must show up in the rejects
    assert report["tables"]["transactions"]["quarantined"] > 0
    assert report["tables"]["customers"]["by_rule"].get("duplicate_id", 0) >= 1
    manifest = json.loads((tmp_path / FEATURES_JSON).read_text())
    header = (tmp_path / FEATURES_CSV).read_text().splitlines()[0].split(",")
    assert header[0] == "customer_id" and header[1:] == [c["name"] for c in manifest["columns"]]
    lines = (tmp_path / FEATURES_CSV).read_text().splitlines()
    assert len(lines) - 1 == report["tables"]["customers"]["clean"] == manifest["customers"]
    layout = RunLayout(tmp_path)
    for path in (
        layout.rejects_csv,
        layout.rejects_parquet,
        layout.nulled_csv,
        layout.features_parquet,
        layout.clean_table("transactions"),
    ):
        assert path.stat().st_size > 0, path
    assert not list(tmp_path.glob(".tmp-*"))


def test_same_input_same_output(bank: Path, tmp_path: Path) -> None:
    args = [
        "features",
        "--customers",
        str(bank / "customers.parquet"),
        "--transactions",
        str(bank / "transactions.parquet"),
        "--today",
        "2026-11-21",
        "--quiet",
        "--out",
    ]
    assert runner.invoke(app, [*args, str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, str(tmp_path / "b")]).exit_code == 0
    for name in (FEATURES_CSV, REJECTS_CSV, NULLED_CSV):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "missing.csv"], "missing.csv: file not found"),
        ([], "give --config CFG, or --customers and/or --transactions files"),
        (["--config", "nope.toml"], "nope.toml: config file not found"),
    ],
)
def test_bad_input_exits_2_without_traceback(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", *args, "--out", "out"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[transactions]\npath = "t.csv"\n[transactions.columns]\nwhen = "ts"\n')
    result = runner.invoke(app, ["validate", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "unknown column(s) ['when']" in " ".join(result.output.split())


def test_help_on_every_command() -> None:
    for command in ("generate", "validate", "features"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--out" in result.output


def test_engine_progress_bar_stays_off() -> None:
    # the engine would draw its own bar on stderr during long queries, even under --quiet
    setting = connect().execute("SELECT current_setting('enable_progress_bar')").fetchone()
    assert setting == (False,)


@pytest.mark.slow
@pytest.mark.parametrize("section", ["anomaly", "segments"])
def test_an_unknown_model_feature_is_the_same_mistake_everywhere(
    bank: Path, tmp_path: Path, section: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        f'[customers]\npath = "{bank / "customers.parquet"}"\n'
        f'[transactions]\npath = "{bank / "transactions.parquet"}"\n'
        f'[{section}]\nfeatures = ["tx_count", "nope"]\n'
    )
    result = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"{section}.features names unknown column(s) ['nope']" in said
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------- segments without structure

NO_STRUCTURE_SEED = 2718
UNSTABLE_LINE = "Segments not stable:"


def write_uniform_customers(
    folder: Path, customers: int = 400, seed: int = NO_STRUCTURE_SEED
) -> Path:
    """Customers only, four independent uniform columns (no group to find), and a config
    reading them without a risk score."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 100.0, (customers, 4))
    columns = [f"u{j}" for j in range(1, 5)]
    lines = [",".join(("customer_id", *columns))]
    lines += [f"U{i:04d}," + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(values)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "uniform.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    extras = "".join(f'{c} = "{c}"\n' for c in columns)
    config = folder / "uniform.toml"
    config.write_text(
        f'[customers]\npath = "uniform.csv"\n[customers.extra_columns]\n{extras}'
        "[risk]\nenabled = false\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_run_and_score_say_when_segments_are_not_a_stable_structure(tmp_path: Path) -> None:
    config = write_uniform_customers(tmp_path / "data")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--config", str(config), "--out", str(out), "--seed", "7"])
    assert result.exit_code == 0, result.output
    segments = json.loads((out / "metrics.json").read_text())["segments"]
    assert segments["stable"] is False and segments["k_selection"]["stable"] is False
    note = segments["note"]
    assert note.startswith("No k from 2 to 10 was stable")
    said = " ".join(result.output.split())
    assert f"{UNSTABLE_LINE} {note}" in said
    # under the segments table, before the risk line and the file list
    assert said.index("Segments ┏") < said.index(UNSTABLE_LINE) < said.index("Risk scoring is off")
    assert said.count(UNSTABLE_LINE) == 1
    scored = runner.invoke(
        app,
        [
            "score",
            "--model",
            str(out / "model"),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert f"{UNSTABLE_LINE} {note}" in " ".join(scored.output.split())


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (
            {"stable": False, "note": "No k from 2 to 10 was stable."},
            f"{UNSTABLE_LINE} No k from 2 to 10 was stable.",
        ),
        (
            {"stable": True, "note": "The 5 segments are stable: [found] again."},
            "The 5 segments are stable: [found] again.",
        ),
        ({"stability": 0.5}, ""),  # a bundle fitted before the segmenter gave a verdict
    ],
)
def test_segment_note_is_printed_as_the_segmenter_gave_it(
    metrics: dict[str, object], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _print_segment_note(metrics)
    assert " ".join(capsys.readouterr().out.split()) == expected


def test_generate_a_scenario_bank_or_refuse_an_unknown_one(tmp_path: Path) -> None:
    out = tmp_path / "gig"
    args = ["generate", "--customers", "300", "--seed", "5", "--out", str(out), "--quiet"]
    result = runner.invoke(app, [*args, "--scenario", "digital_gig"])
    assert result.exit_code == 0, result.output
    con = connect()
    described = con.execute(f"DESCRIBE SELECT * FROM '{out / 'transactions.parquet'}'")
    assert "balance_after" not in {row[0] for row in described.fetchall()}  # as designed
    personas = con.execute(
        f"SELECT DISTINCT persona FROM '{out / 'truth' / 'customers.parquet'}'"
    ).fetchall()
    assert {"gig_worker"} <= {row[0] for row in personas}
    refused = runner.invoke(app, [*args, "--scenario", "nowhere"])
    assert refused.exit_code != 0
    assert "--scenario must be default or one of digital_gig, high_street" in refused.output


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else 0


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_score_reports_the_batch_segment_sizes_and_rounded_csv_numbers(
    bank: Path, tmp_path: Path
) -> None:
    files = [
        "--customers",
        str(bank / "customers.parquet"),
        "--transactions",
        str(bank / "transactions.parquet"),
        "--loans",
        str(bank / "loans.parquet"),
    ]
    run_out = tmp_path / "run"
    fitted = runner.invoke(app, ["run", *files, "--out", str(run_out), "--seed", "1001"])
    assert fitted.exit_code == 0, fitted.output
    said = " ".join(fitted.output.split())
    assert "each band holds a fixed share of that population" in said
    assert "fitted share" not in said  # a run's batch is its fitted population
    batch = tmp_path / "batch"
    made = runner.invoke(
        app, ["generate", "--customers", "120", "--seed", "1002", "--out", str(batch), "--quiet"]
    )
    assert made.exit_code == 0, made.output
    batch_files = [f.replace(str(bank), str(batch)) for f in files]
    score_out = tmp_path / "score"
    args = ["score", "--model", str(run_out / "model"), *batch_files, "--out", str(score_out)]
    scored = runner.invoke(app, args)
    assert scored.exit_code == 0, scored.output
    assert "fitted share" in scored.output

    trained_rows = _csv_rows(RunLayout(run_out).segments_csv)
    assert "training_size" not in trained_rows[0]  # a run's batch is its fitted population
    trained = {r["segment_id"]: r for r in trained_rows}
    customers = _csv_rows(RunLayout(score_out).scored_csv)
    segments = _csv_rows(RunLayout(score_out).segments_csv)
    members: dict[str, int] = {}
    for row in customers:
        members[row["segment_id"]] = members.get(row["segment_id"], 0) + 1
    assert sum(int(s["size"]) for s in segments) == len(customers) < 300
    for s in segments:
        assert int(s["size"]) == members.get(s["segment_id"], 0)
        assert abs(float(s["share"]) - int(s["size"]) / len(customers)) < 1e-6
        assert s["training_size"] == trained[s["segment_id"]]["size"]
        assert s["training_share"] == trained[s["segment_id"]]["share"]
    for segment in segments:
        table_row = f"│ {int(segment['size']):>9,} │"
        assert table_row in scored.output.replace(f"│ {segment['segment_name']}", "")

    for out in (run_out, score_out):
        layout = RunLayout(out)
        rows = _csv_rows(layout.scored_csv)
        for column in ("risk_score", "anomaly_score"):
            assert max(_decimals(r[column]) for r in rows) <= 2, column
        assert any(_decimals(r["risk_score"]) == 2 for r in rows)  # rounded, not truncated
        alerts = _csv_rows(layout.alerts_csv)
        assert alerts and max(_decimals(r["alert_score"]) for r in alerts) <= 2
    full = connect().execute(
        f"SELECT risk_score FROM read_parquet('{RunLayout(run_out).scored_parquet}') "
        "ORDER BY customer_id"
    )
    precise = [r[0] for r in full.fetchall()]
    shown = [float(r["risk_score"]) for r in _csv_rows(RunLayout(run_out).scored_csv)]
    assert all(abs(a - round(b, 2)) < 1e-9 for a, b in zip(shown, precise, strict=True))
