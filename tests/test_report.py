"""The run summary, the plots and the self-contained HTML report, on three small runs.

One synthetic bank (1,500 customers) is run three ways: with transactions and loans (an
unsupervised risk score), with default labels as well (a supervised model chosen among three:
ROC and calibration plots) and with customers only (no transactions, no alerts). Its bundle
then scores batches of one and two customers. The same bank with its labels shuffled across
customers (outcomes no model can predict) falls back to the unsupervised score. Anonymised card
components (no risk factor applies) are run without a risk score, switched off in the config
and skipped automatically.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markupsafe import escape

from finintel.config import FinintelConfig, config_for_files, load_config
from finintel.errors import RunDirError
from finintel.pipeline import run_all, run_score
from finintel.report import build_report, load_summary, summarize, write_summary
from finintel.report.html import render_report
from finintel.report.plot_data import PCA_POINTS, is_flat
from finintel.report.plots import draw_plots, stability_band
from finintel.report.shapes import KRow, SegmentMetrics, Segments, Summary
from finintel.report.summary import (
    PLOT_NAMES,
    SUMMARY_FILE,
    feature_selection,
    unstable_segments_note,
)
from finintel.synthetic import GeneratedBank, generate_bank
from test_run import write_anonymised_cards

SEED = 5150
MIN_PNG_BYTES = 5_000


@dataclass
class Run:
    out: Path
    report: Path


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> GeneratedBank:
    return generate_bank(tmp_path_factory.mktemp("bank"), 1500, seed=SEED)


def _make_run(base: Path, cfg: FinintelConfig) -> Run:
    out = base / "run"
    run_all(cfg.model_copy(update={"seed": SEED}), Path.cwd(), out)
    return Run(out, build_report(out))


@pytest.fixture(scope="module")
def full_run(bank: GeneratedBank, tmp_path_factory: pytest.TempPathFactory) -> Run:
    cfg = config_for_files(str(bank.customers), str(bank.transactions), str(bank.loans))
    return _make_run(tmp_path_factory.mktemp("full"), cfg)


@pytest.fixture(scope="module")
def labelled_run(bank: GeneratedBank, tmp_path_factory: pytest.TempPathFactory) -> Run:
    cfg = config_for_files(
        str(bank.customers), str(bank.transactions), str(bank.loans), str(bank.labels)
    )
    # fewer cross-validation fits keep the test fast; the report only shows what was measured
    cfg = cfg.model_copy(
        update={"risk": cfg.risk.model_copy(update={"cv_repeats": 1, "cv_folds": 3})}
    )
    return _make_run(tmp_path_factory.mktemp("labelled"), cfg)


def write_shuffled_labels(bank: GeneratedBank, target: Path, seed: int = SEED) -> Path:
    """The bank's default labels shuffled across its customers: the same default rate, but
    outcomes that no variable predicts, so no supervised model passes the gate."""
    labels = pq.read_table(bank.labels)
    shuffled = np.random.default_rng(seed).permutation(labels["defaulted"].to_numpy())
    column = labels.schema.get_field_index("defaulted")
    pq.write_table(labels.set_column(column, "defaulted", pa.array(shuffled)), target)
    return target


@pytest.fixture(scope="module")
def fallback_run(bank: GeneratedBank, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Default labels that no model can predict: the run falls back to the composite."""
    base = tmp_path_factory.mktemp("fallback")
    labels = write_shuffled_labels(bank, base / "shuffled_labels.parquet")
    cfg = config_for_files(
        str(bank.customers), str(bank.transactions), str(bank.loans), str(labels)
    )
    cfg = cfg.model_copy(
        update={"risk": cfg.risk.model_copy(update={"cv_repeats": 1, "cv_folds": 3})}
    )
    return _make_run(base, cfg)


@pytest.fixture(scope="module")
def customer_run(bank: GeneratedBank, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _make_run(
        tmp_path_factory.mktemp("customers"), config_for_files(str(bank.customers), None)
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _html(run: Run) -> str:
    return run.report.read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=[1, 2], ids=["one_customer", "two_customers"])
def small_batch(
    request: pytest.FixtureRequest,
    bank: GeneratedBank,
    full_run: Run,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[int, Run]:
    """`finintel score` with the full run's bundle on a batch of one or two customers."""
    size: int = request.param
    folder = tmp_path_factory.mktemp(f"batch{size}")
    with duckdb.connect() as con:
        ids = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM read_parquet(?) INTERSECT "
                "SELECT customer_id FROM read_parquet(?) ORDER BY 1 LIMIT ?",
                [str(bank.loans), str(bank.transactions), size],
            ).fetchall()
        ]
        con.execute("CREATE TABLE ids AS SELECT unnest(?::VARCHAR[]) AS customer_id", [ids])
        for table in ("customers", "transactions", "loans"):
            source = str(getattr(bank, table)).replace("'", "''")
            target = str(folder / f"{table}.parquet").replace("'", "''")
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{source}') WHERE customer_id IN "
                f"(SELECT customer_id FROM ids)) TO '{target}' (FORMAT parquet)"
            )
    cfg = config_for_files(
        *(str(folder / f"{table}.parquet") for table in ("customers", "transactions", "loans"))
    )
    out = folder / "scored"
    run_score(full_run.out / "model", cfg, Path.cwd(), out)
    return size, Run(out, build_report(out))


def _scored(run: Run, *columns: str) -> dict[str, np.ndarray]:
    """Columns of customers_scored, ordered by customer id."""
    path = str(run.out / "customers_scored.parquet")
    with duckdb.connect() as con:
        got = con.execute(
            f"SELECT {', '.join(columns)} FROM read_parquet(?) ORDER BY customer_id", [path]
        ).fetchnumpy()
    return {c: np.asarray(got[c]) for c in columns}


ALL_RUNS = ["full_run", "labelled_run", "customer_run"]

# ---------------------------------------------------------------------- a credit table by roles

CARD_MONTHS = 3
CARD_ROLES = {
    "limit_bal": "limit",
    "pay_0": "arrears_status",
    **{f"bill_amt{m}": "bill" for m in range(1, CARD_MONTHS + 1)},
    **{f"pay_amt{m}": "payment" for m in range(1, CARD_MONTHS + 1)},
}


def write_card_statements(folder: Path, customers: int = 600, seed: int = SEED) -> dict[str, Path]:
    """Card statements (a limit, monthly bills and payments, a repayment status) with default
    outcomes, and two configs declaring the columns by role: one without labels (`roles`, an
    unsupervised score) and one with them (`labelled`, a scorecard)."""
    rng = np.random.default_rng(seed)
    limit = np.round(rng.lognormal(np.log(5000), 0.7, customers), -2)
    use = rng.beta(2.0, 3.0, customers)
    paid = rng.beta(2.0, 2.0, customers)
    shape = (customers, CARD_MONTHS)
    bills = limit[:, None] * np.clip(use[:, None] + rng.normal(0, 0.05, shape), 0, None)
    payments = bills * np.clip(paid[:, None] + rng.normal(0, 0.05, shape), 0, None)
    status = rng.poisson(0.4 + 1.5 * use)
    logit = -1.5 + 5.0 * (use - 0.4) - 2.5 * (paid - 0.5) + 0.4 * status
    defaulted = rng.random(customers) < 1 / (1 + np.exp(-logit))
    folder.mkdir(parents=True, exist_ok=True)
    columns = [*CARD_ROLES]
    lines = [",".join(("customer_id", *columns, "defaulted"))]
    for i in range(customers):
        values = [limit[i], status[i], *bills[i], *payments[i]]
        numbers = ",".join(f"{v:.2f}" for v in values)
        lines.append(f"S{i:04d},{numbers},{int(defaulted[i])}")
    (folder / "cards.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    extras = "".join(f'{c} = "{c}"\n' for c in columns)
    roles = "".join(f'{c} = "{r}"\n' for c, r in CARD_ROLES.items())
    mapping = (
        f'[customers]\npath = "cards.csv"\n[customers.extra_columns]\n{extras}'
        f"[risk]\ncv_repeats = 1\ncv_folds = 3\n[risk.roles]\n{roles}"
    )
    labels = '[labels]\npath = "cards.csv"\n[labels.columns]\ndefaulted = "defaulted"\n'
    configs = {"roles": folder / "roles.toml", "labelled": folder / "labelled.toml"}
    configs["roles"].write_text(mapping, encoding="utf-8")
    configs["labelled"].write_text(mapping + labels, encoding="utf-8")
    return configs


@pytest.fixture(scope="module")
def card_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_card_statements(tmp_path_factory.mktemp("cards"))


def _config_run(base: Path, config: Path) -> Run:
    cfg, folder = load_config(config)
    out = base / "run"
    run_all(cfg.model_copy(update={"seed": SEED}), folder, out)
    return Run(out, build_report(out))


@pytest.fixture(scope="module")
def roles_run(card_configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Card statements declared by role, without labels: the composite reads the roles."""
    return _config_run(tmp_path_factory.mktemp("roles"), card_configs["roles"])


@pytest.fixture(scope="module")
def roles_labelled_run(
    card_configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """The same statements with default outcomes: the scorecard gets the role ratios."""
    return _config_run(tmp_path_factory.mktemp("roles_labelled"), card_configs["labelled"])


@pytest.fixture(scope="module")
def scorecard_run(card_configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The labelled statements with `[risk] model = "scorecard"`: the scorecard delivered."""
    cfg, folder = load_config(card_configs["labelled"])
    cfg = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"model": "scorecard"})})
    out = tmp_path_factory.mktemp("scorecard") / "run"
    run_all(cfg.model_copy(update={"seed": SEED}), folder, out)
    return Run(out, build_report(out))


@pytest.fixture(params=ALL_RUNS)
def any_run(request: pytest.FixtureRequest) -> Run:
    run: Run = request.getfixturevalue(request.param)
    return run


# ---------------------------------------------------------------------- plots


# Without labels there is no outcome to compare with, and the percentile score of the fitted
# population is flat by construction: no histogram of it is drawn.
UNLABELLED_SKIPS = {"risk_roc", "risk_calibration", "risk_distribution"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("full_run", [n for n in PLOT_NAMES if n not in UNLABELLED_SKIPS]),
        ("labelled_run", list(PLOT_NAMES)),
        ("customer_run", [n for n in PLOT_NAMES if n not in UNLABELLED_SKIPS]),
    ],
)
def test_every_expected_plot_is_drawn(
    fixture: str, expected: list[str], request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(fixture)
    summary = load_summary(run.out)
    assert sorted(summary["plots"]) == sorted(expected)
    for name in expected:
        png = run.out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > MIN_PNG_BYTES, name
        assert summary["plots"][name] == f"plots/{name}.png"


@pytest.mark.slow
def test_skipped_plots_say_why(full_run: Run) -> None:
    skipped = load_summary(full_run.out)["plots_skipped"]
    assert set(skipped) == UNLABELLED_SKIPS
    assert "no default labels" in skipped["risk_roc"]
    assert "flat by construction" in skipped["risk_distribution"]
    assert "raw composite value" in skipped["risk_distribution"]
    assert not (full_run.out / "plots" / "risk_roc.png").exists()
    assert "risk roc: no default labels" in _html(full_run)


@pytest.mark.slow
def test_plots_are_drawn_from_the_summary_alone(full_run: Run, tmp_path: Path) -> None:
    summary = load_summary(full_run.out)  # as read back from summary.json
    drawn, skipped = draw_plots(tmp_path, summary)  # a directory with no run files at all
    assert skipped == {}
    assert drawn == summary["plots"]
    for path in drawn.values():
        assert (tmp_path / path).read_bytes() == (full_run.out / path).read_bytes(), path


@pytest.mark.slow
def test_drawing_needs_no_scikit_learn(labelled_run: Run, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "from pathlib import Path\n"
        "from finintel.report import load_summary\n"
        "from finintel.report.plots import draw_plots\n"
        f"summary = load_summary(Path({str(labelled_run.out)!r}))\n"
        f"drawn, skipped = draw_plots(Path({str(tmp_path)!r}), summary)\n"
        "print(len(drawn), len(skipped))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(PLOT_NAMES)), "0"]


@pytest.mark.slow
def test_a_summary_without_plot_data_leaves_those_plots_out(full_run: Run, tmp_path: Path) -> None:
    summary = load_summary(full_run.out)
    older = cast(Summary, {k: v for k, v in summary.items() if k != "plot_data"})
    drawn, skipped = draw_plots(tmp_path, older)
    assert set(skipped) == {
        "segments_pca",
        "risk_by_segment",
        "anomaly_distribution",
    }
    assert all("rebuild it with finintel report" in why for why in skipped.values())
    assert set(drawn) == set(summary["plots"]) - set(skipped)


# ---------------------------------------------------------------------- the plot data


@pytest.mark.slow
def test_plot_data_counts_the_scored_customers(full_run: Run) -> None:
    summary = load_summary(full_run.out)
    data = summary["plot_data"]
    got = _scored(full_run, "risk_score", "anomaly_score", "segment_id")
    risk, anomaly, segment = got["risk_score"], got["anomaly_score"], got["segment_id"]
    assert "risk_distribution" not in data  # flat by construction (see test_skipped_plots_say_why)
    assert len(risk) == 1500
    anomalies = data["anomaly_distribution"]
    threshold = summary["anomalies"]["threshold"]
    assert anomalies["threshold"] == threshold is not None
    assert sum(anomalies["at_or_above"]) == int((anomaly >= threshold).sum()) > 0
    assert sum(anomalies["below"]) + sum(anomalies["at_or_above"]) == len(anomaly)
    sizes = {item["segment_id"]: item["size"] for item in summary["segments"]["items"]}
    boxes = data["risk_by_segment"]
    assert [b["segment_id"] for b in boxes] == sorted(sizes)
    for box in boxes:
        group = risk[segment == box["segment_id"]]
        assert box["customers"] == sizes[box["segment_id"]] == group.size
        assert box["mean"] == pytest.approx(group.mean())
        assert [box["q1"], box["med"], box["q3"]] == pytest.approx(
            np.percentile(group, [25, 50, 75]).tolist()
        )
        assert group.min() <= box["whislo"] <= box["q1"] <= box["q3"] <= box["whishi"]
        assert box["whishi"] <= group.max()


@pytest.mark.slow
def test_pca_view_holds_every_customer_of_a_small_run(full_run: Run) -> None:
    summary = load_summary(full_run.out)
    pca = summary["plot_data"]["segments_pca"]
    assert pca["customers"] == pca["fitted_on"] == pca["shown"] == 1500 < PCA_POINTS
    sizes = {item["segment_id"]: item["size"] for item in summary["segments"]["items"]}
    assert {g["segment_id"]: len(g["x"]) for g in pca["segments"]} == sizes
    assert all(len(g["x"]) == len(g["y"]) for g in pca["segments"])
    assert [c["segment_id"] for c in pca["centroids"]] == sorted(sizes)
    first, second = pca["explained_variance_ratio"]
    assert 0 < second <= first and first + second <= 1


@pytest.mark.slow
def test_roc_and_calibration_are_scikit_learns(labelled_run: Run) -> None:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_auc_score, roc_curve

    with duckdb.connect() as con:
        got = con.execute(
            "SELECT l.defaulted::DOUBLE AS y, s.probability_of_default AS p "
            "FROM read_parquet(?) s JOIN read_parquet(?) l USING (customer_id) "
            "WHERE l.defaulted IS NOT NULL ORDER BY customer_id",
            [
                str(labelled_run.out / "customers_scored.parquet"),
                str(labelled_run.out / "clean" / "labels.parquet"),
            ],
        ).fetchnumpy()
    y, p = np.asarray(got["y"], dtype=float), np.asarray(got["p"], dtype=float)
    data = load_summary(labelled_run.out)["plot_data"]
    roc = data["risk_roc"]
    fpr, tpr, _ = roc_curve(y, p)
    assert roc["fpr"] == fpr.tolist() and roc["tpr"] == tpr.tolist()
    assert roc["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert (roc["labelled"], roc["defaults"]) == (y.size, int(y.sum()))
    calibration = data["risk_calibration"]
    observed, predicted = calibration_curve(y, p, n_bins=calibration["bins"], strategy="quantile")
    assert calibration["observed"] == pytest.approx(observed.tolist(), abs=1e-12)
    assert calibration["predicted"] == pytest.approx(predicted.tolist(), abs=1e-12)
    assert calibration["bins"] == 10 and calibration["labelled"] == y.size


@pytest.mark.slow
def test_one_and_two_customer_batches_are_reported(small_batch: tuple[int, Run]) -> None:
    size, run = small_batch
    summary = load_summary(run.out)
    assert run.report.is_file()
    assert summary["overview"]["customers"] == size
    data = summary["plot_data"]
    assert sum(data["risk_distribution"]["counts"]) == size
    assert sum(b["customers"] for b in data["risk_by_segment"]) == size
    anomalies = data["anomaly_distribution"]
    assert sum(anomalies["below"]) + sum(anomalies["at_or_above"]) == size
    risk = _scored(run, "risk_score")["risk_score"]
    if size == 1:
        box = data["risk_by_segment"][0]
        assert box["q1"] == box["med"] == box["q3"] == box["whislo"] == box["whishi"] == risk[0]
    expected = {
        "k_selection",
        "segment_profile",
        "segment_sizes",
        "risk_distribution",
        "risk_by_segment",
        "anomaly_distribution",
        "data_quality_files",
    }
    assert expected <= set(summary["plots"])
    for name in summary["plots"]:
        assert (run.out / "plots" / f"{name}.png").stat().st_size > MIN_PNG_BYTES, name
    if size == 1:
        assert summary["plots_skipped"]["segments_pca"] == (
            "a two-dimensional view needs at least 2 customers; this run has 1"
        )
        assert "segments_pca" not in data
        assert not (run.out / "plots" / "segments_pca.png").exists()
        assert "segments pca: a two-dimensional view needs at least 2 customers" in _html(run)
    else:
        pca = data["segments_pca"]
        assert pca["customers"] == pca["shown"] == sum(len(g["x"]) for g in pca["segments"]) == 2
        assert "segments_pca" in summary["plots"]


# ---------------------------------------------------------------------- the HTML file


@pytest.mark.slow
def test_report_is_one_self_contained_file(any_run: Run) -> None:
    html = _html(any_run)
    for external in ("http://", "https://", 'src="//', 'href="//', "@import", "url("):
        assert external not in html
    summary = load_summary(any_run.out)
    for path in summary["plots"].values():
        encoded = base64.b64encode((any_run.out / path).read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in html
    assert html.count('src="data:image/png;base64,') == len(summary["plots"])
    assert "Content-Security-Policy" in html


@pytest.mark.slow
def test_report_numbers_agree_with_the_result_files(any_run: Run) -> None:
    html = _html(any_run)
    scored = _rows(any_run.out / "customers_scored.csv")
    summary = load_summary(any_run.out)
    # segments: names and sizes as in segments.csv and customers_scored.csv
    sizes = Counter(row["segment_name"] for row in scored)
    segment_rows = _rows(any_run.out / "segments.csv")
    assert [i["segment_name"] for i in summary["segments"]["items"]] == [
        r["segment_name"] for r in segment_rows
    ]
    for row, item in zip(segment_rows, summary["segments"]["items"], strict=True):
        assert item["size"] == int(row["size"]) == sizes[row["segment_name"]]
        assert item["share"] == round(int(row["size"]) / len(scored), 4)
        assert item["description"] == row["description"]
        assert "; ".join(item["actions"]) == row["actions"]
        assert f"{item['segment_id']}. {row['segment_name']}</h3>" in html
        share = f"{int(row['size']) / len(scored):.1%}"
        assert f"{int(row['size']):,} customers ({share})" in html
    # risk bands
    bands = Counter(row["risk_band"] for row in scored)
    assert {b["name"]: b["customers"] for b in summary["risk"]["bands"]} == dict(bands)
    for band in summary["risk"]["bands"]:
        pattern = (
            rf">{re.escape(band['name'])}</span></td><td class=\"n\">[0-9.]+</td>"
            r"<td class=\"n\">[0-9]+%</td>(?:<td class=\"n\">[0-9.]+%</td>)?"
            rf"<td>{re.escape(band['action'])}</td><td class=\"n\">{bands[band['name']]:,}</td>"
        )
        assert re.search(pattern, html), band
    # anomalies and overview
    flagged = sum(row["is_anomaly"] == "true" for row in scored)
    assert summary["anomalies"]["flagged"] == summary["overview"]["anomalies"] == flagged
    assert f"<p>{flagged:,} customers are flagged as unusual" in html
    assert summary["overview"]["customers"] == len(scored)
    alerts = _rows(any_run.out / "transaction_alerts.csv")
    assert summary["anomalies"]["transaction_alerts"]["count"] == len(alerts)
    queue = [r for r in scored if r["is_anomaly"] == "true"]
    queue.sort(key=lambda r: (-float(r["anomaly_score"]), r["customer_id"]))
    assert [c["customer_id"] for c in summary["anomalies"]["review_queue"]] == [
        r["customer_id"] for r in queue[:50]
    ]
    top = min(scored, key=lambda r: (-float(r["risk_score"]), r["customer_id"]))
    assert summary["risk"]["top_customers"][0]["customer_id"] == top["customer_id"]
    assert summary["risk"]["top_customers"][0]["risk_score"] == round(float(top["risk_score"]), 2)


@pytest.mark.slow
def test_data_quality_counts_come_from_validation(full_run: Run) -> None:
    validation = json.loads((full_run.out / "validation.json").read_text())
    dq = load_summary(full_run.out)["data_quality"]
    assert dq["rows_in"] == validation["rows_in"] == dq["clean"] + dq["quarantined"]
    assert sum(r["rows"] for r in dq["by_rule"]) == dq["quarantined"] > 0
    for table in dq["tables"]:
        assert table["rows_in"] == table["clean"] + table["quarantined"]


@pytest.mark.slow
def test_unsupervised_and_supervised_risk_sections(full_run: Run, labelled_run: Run) -> None:
    unsupervised = load_summary(full_run.out)["risk"]
    assert unsupervised["mode"] == "unsupervised" and unsupervised["cv"] is None
    assert unsupervised["factors"] and all(f["weight"] > 0 for f in unsupervised["factors"])
    assert "Risk factors and weights" in _html(full_run)
    supervised = load_summary(labelled_run.out)["risk"]
    metrics = json.loads((labelled_run.out / "metrics.json").read_text())["risk"]
    assert supervised["mode"] == "supervised"
    assert supervised["model"] == metrics["model"] in ("scorecard", "logistic", "boosting")
    cv = supervised["cv"]
    assert cv is not None and cv["roc_auc"] is not None and 0.5 < cv["roc_auc"] <= 1.0
    assert "baseline" not in cv
    # the points table only when the scorecard was delivered
    assert ("scorecard" in supervised) == (supervised["model"] == "scorecard")
    html = _html(labelled_run)
    assert "Cross-validated performance" in html
    assert f"<td>{supervised['model']} (refitted inside every fold)</td>" in html
    assert f"{cv['roc_auc']:.3f}" in html
    assert ("<h3>Scorecard</h3>" in html) == (supervised["model"] == "scorecard")


def _table_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells (tags removed) of every row of the HTML table with that id, header first."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


@pytest.mark.slow
def test_risk_factors_show_their_role_source_and_columns(roles_run: Run) -> None:
    metrics = json.loads((roles_run.out / "metrics.json").read_text())["risk"]
    risk = load_summary(roles_run.out)["risk"]
    assert risk["mode"] == "unsupervised"
    by_name = {f["name"]: f for f in risk["factors"]}
    assert {name: (f["source"], f["role"], f["columns"]) for name, f in by_name.items()} == {
        f["name"]: (f["source"], f["role"], f["columns"]) for f in metrics["factors"]
    }
    bills = [f"bill_amt{m}" for m in range(1, CARD_MONTHS + 1)]
    payments = [f"pay_amt{m}" for m in range(1, CARD_MONTHS + 1)]
    assert (by_name["utilisation"]["source"], by_name["utilisation"]["role"]) == (
        "role",
        "bill / limit",
    )
    assert by_name["utilisation"]["columns"] == sorted([*bills, "limit_bal"])
    assert by_name["payment_ratio"]["columns"] == sorted([*bills, *payments])
    assert by_name["arrears_status"]["columns"] == ["pay_0"]
    assert risk["unavailable_factors"] == metrics["unavailable_factors"]
    assert risk["unavailable_factors"]["payment_to_minimum_due"] == (
        "payment_to_minimum_due needs a minimum_due column: declare one with [risk.roles] "
        '<column> = "minimum_due"'
    )
    assert [(r["role"], r["columns"], r["declared"]) for r in risk["roles"]] == [
        ("arrears_status", ["pay_0"], True),
        ("limit", ["limit_bal"], True),
        ("bill", bills, True),
        ("payment", payments, True),
    ]
    html = _html(roles_run)
    factors = _table_rows(html, "risk-factors")
    assert factors[0][:4] == ["factor", "role", "source", "reads"]
    shown = {row[0]: row[1:4] for row in factors[1:]}
    assert shown["credit utilisation (utilisation)"] == [
        "bill / limit",
        "role",
        ", ".join(sorted([*bills, "limit_bal"])),
    ]
    assert len(factors) == len(risk["factors"]) + 1
    roles = _table_rows(html, "risk-roles")
    assert roles[1][0] == "arrears_status" and roles[1][2:] == ["pay_0", "declared"]
    assert 'id="risk-unavailable"' in html
    for name, why in risk["unavailable_factors"].items():
        assert f'<td>{escape(name)}</td><td class="reason">{escape(why)}</td>' in html


@pytest.mark.slow
def test_scorecard_candidates_from_roles_are_reported(roles_labelled_run: Run) -> None:
    metrics = json.loads((roles_labelled_run.out / "metrics.json").read_text())["risk"]
    risk = load_summary(roles_labelled_run.out)["risk"]
    assert risk["mode"] == "supervised" and "factors" not in risk
    derived = {d["name"]: d for d in risk["derived_variables"]}
    assert derived["utilisation"]["role"] == "bill / limit"
    assert derived["utilisation"]["source"] == "role"
    assert derived["utilisation"]["used"] is True
    assert "utilisation" in {row["variable"] for row in risk["model_variables"]["rows"]}
    assert [d["used"] for d in risk["derived_variables"]] == [
        d["used"] for d in metrics["derived_variables"]
    ]
    assert risk["unavailable_factors"] == metrics["unavailable_factors"]
    assert {r["role"] for r in risk["roles"]} == {"arrears_status", "limit", "bill", "payment"}
    html = _html(roles_labelled_run)
    rows = _table_rows(html, "risk-derived")
    assert rows[0] == ["variable", "role", "source", "reads", "in the model"]
    assert rows[1][:3] == ["credit utilisation (utilisation)", "bill / limit", "role"]
    assert rows[1][4] == "yes"
    assert 'id="risk-roles"' in html and 'id="risk-unavailable"' in html
    assert 'id="risk-factors"' not in html


@pytest.mark.slow
def test_a_bank_without_declared_roles_lists_no_role_table(full_run: Run) -> None:
    risk = load_summary(full_run.out)["risk"]
    # the canonical parts (annual income, ...) are known, but no role was declared
    assert risk["roles"] == []
    assert all(f["source"] == "built-in" and f["role"] is None for f in risk["factors"])
    assert all(f["columns"] for f in risk["factors"])
    html = _html(full_run)
    assert 'id="risk-roles"' not in html and 'id="risk-unavailable"' in html
    assert _table_rows(html, "risk-factors")[1][1:3] == ["-", "built-in"]


@pytest.mark.slow
def test_an_older_summary_without_roles_still_renders(full_run: Run, labelled_run: Run) -> None:
    for run in (full_run, labelled_run):
        summary = json.loads((run.out / SUMMARY_FILE).read_text())
        risk = summary["risk"]
        for key in (
            "roles",
            "unavailable_factors",
            "derived_variables",
            "model",
            "model_description",
            "model_choice",
            "model_variables",
            "fallback",
            "protected",
        ):
            risk.pop(key, None)
        for factor in risk.get("factors", []):
            for key in ("role", "source", "columns"):
                factor.pop(key)
        html = render_report(cast(Summary, summary), run.out)
        assert 'id="risk"' in html and 'id="risk-roles"' not in html
        assert 'id="risk-candidates"' not in html and "Protected groups" not in html


@pytest.mark.slow
def test_customer_only_run_still_reports(customer_run: Run) -> None:
    summary = load_summary(customer_run.out)
    assert summary["overview"]["transactions"] == 0
    assert summary["overview"]["transaction_alerts"] == 0
    assert any("no transactions" in note for note in summary["model_card"]["limitations"])
    assert "No transaction alerts: no transactions in the training data" in _html(customer_run)


@pytest.mark.slow
def test_k_selection_evidence_is_reported(full_run: Run) -> None:
    metrics = json.loads((full_run.out / "metrics.json").read_text())["segments"]
    segments = load_summary(full_run.out)["segments"]
    assert segments["chosen_k"] == metrics["k_selection"]["chosen_k"] == len(segments["items"])
    assert segments["k_table"] == metrics["k_selection"]["table"]
    assert segments["reason"] in _html(full_run)
    assert segments["elbow_k"] in [row["k"] for row in segments["k_table"]]


# ---------------------------------------------------------------------- model choice, protected

KINDS = ["scorecard", "logistic", "boosting"]
CANDIDATE_COLUMNS = [
    "model",
    "description",
    "ROC-AUC (cross-validated)",
    "calibration slope",
    "variables",
    "gate",
    "delivered",
]
AGE_BAND_NAMES = np.array(["under 25", "25-34", "35-49", "50-64", "65 and over"], dtype=object)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@pytest.mark.slow
def test_the_model_choice_lists_three_candidates_and_marks_the_delivered_one(
    labelled_run: Run,
) -> None:
    metrics = json.loads((labelled_run.out / "metrics.json").read_text())["risk"]
    selection = metrics["model_selection"]
    risk = load_summary(labelled_run.out)["risk"]
    choice = risk["model_choice"]
    assert choice is not None and risk["fallback"] is None
    assert [c["model"] for c in choice["candidates"]] == KINDS
    delivered = [c["model"] for c in choice["candidates"] if c["delivered"]]
    assert delivered == [choice["delivered"]] == [metrics["model"]] == [risk["model"]]
    for shown, measured in zip(choice["candidates"], selection["candidates"], strict=True):
        assert (shown["roc_auc"], shown["roc_auc_std"]) == (
            measured["roc_auc"],
            measured["roc_auc_std"],
        )
        assert shown["variables"] == measured["mean_variables"]
        assert shown["gate"] == measured["gate"]
        assert shown["passed_gate"] is (measured["gate"] == "passed")
    assert next(c for c in choice["candidates"] if c["delivered"])["passed_gate"] is True
    assert choice["reason"] == _sentence(selection["reason"])
    assert (choice["folds"], choice["repeats"]) == (3, 1)
    html = _html(labelled_run)
    rows = _table_rows(html, "risk-candidates")
    assert rows[0] == CANDIDATE_COLUMNS
    assert [r[0] for r in rows[1:]] == KINDS
    assert [r[6] for r in rows[1:]] == [
        "delivered" if k == metrics["model"] else "-" for k in KINDS
    ]
    for row, candidate in zip(rows[1:], choice["candidates"], strict=True):
        assert row[2] == f"{candidate['roc_auc']:.3f} ± {candidate['roc_auc_std']:.3f}"
        assert row[5] == candidate["gate"]
    assert f'<tr class="chosen"><td>{metrics["model"]}</td>' in html
    assert str(escape(choice["reason"])) in html


@pytest.mark.slow
def test_the_delivered_models_variables_are_listed_strongest_first(labelled_run: Run) -> None:
    learner = json.loads((labelled_run.out / "metrics.json").read_text())["risk"]["learner"]
    risk = load_summary(labelled_run.out)["risk"]
    variables = risk["model_variables"]
    assert sorted(r["variable"] for r in variables["rows"]) == sorted(learner["variables_used"])
    values = [r["value"] for r in variables["rows"] if r["value"] is not None]
    assert len(values) == len(variables["rows"]) and min(values) >= 0
    assert values == sorted(values, reverse=True)
    html = _html(labelled_run)
    if risk["model"] == "scorecard":
        assert variables["measure"] == "information value"
        assert 'id="risk-variables"' not in html and "<h3>Scorecard</h3>" in html
    else:
        rows = _table_rows(html, "risk-variables")
        assert rows[0][1] == variables["measure"]
        assert len(rows) == len(learner["variables_used"]) + 1
        assert [r[0] for r in rows[1:]] == [
            str(escape(f"{r['label']} ({r['variable']})")) for r in variables["rows"]
        ]


@pytest.mark.slow
def test_a_delivered_scorecard_shows_its_points_and_the_variables_it_dropped(
    scorecard_run: Run,
) -> None:
    metrics = json.loads((scorecard_run.out / "metrics.json").read_text())["risk"]
    risk = load_summary(scorecard_run.out)["risk"]
    assert risk["model"] == metrics["model"] == "scorecard"
    choice = risk["model_choice"]
    assert choice is not None and choice["requested"] == "scorecard"
    assert [(c["model"], c["delivered"]) for c in choice["candidates"]] == [("scorecard", True)]
    assert len(risk["scorecard"]) == len(metrics["scorecard"]) > 0
    assert {r["variable"] for r in risk["scorecard"]} == set(metrics["learner"]["variables_used"])
    dropped = metrics["learner"]["dropped"]
    assert dropped
    assert {d["variable"]: d["why"] for d in risk["model_variables"]["dropped"]} == dropped
    html = _html(scorecard_run)
    assert "<h3>Scorecard</h3>" in html and 'id="risk-variables"' not in html
    assert "is the only candidate" in html
    found = re.search(r'<details id="risk-dropped">(.*?)</details>', html, re.S)
    assert found and f"dropped ({len(dropped)}) and why" in found.group(1)
    for why in dropped.values():
        assert str(escape(why)) in found.group(1)


@pytest.mark.slow
def test_a_fallback_run_says_no_supervised_model_passed(fallback_run: Run, full_run: Run) -> None:
    metrics = json.loads((fallback_run.out / "metrics.json").read_text())["risk"]
    record = metrics["supervised_fallback"]
    summary = load_summary(fallback_run.out)
    risk = summary["risk"]
    assert risk["mode"] == metrics["mode"] == "unsupervised" and risk["factors"]
    fallback = risk["fallback"]
    assert fallback is not None
    assert fallback["reason"] == _sentence(record["reason"])
    assert (fallback["labelled"], fallback["bads"], fallback["goods"]) == (
        record["labelled"],
        record["bads"],
        record["goods"],
    )
    choice = risk["model_choice"]
    assert choice is not None and choice["delivered"] is None
    assert [c["model"] for c in choice["candidates"]] == KINDS
    assert not any(c["delivered"] or c["passed_gate"] for c in choice["candidates"])
    assert all(c["gate"] != "passed" for c in choice["candidates"])
    assert "no supervised model passed the gate" in summary["plots_skipped"]["risk_roc"]
    assert summary["model_card"]["limitations"][0].startswith(
        "Default outcomes were given, but no supervised model"
    )
    html = _html(fallback_run)
    notice = re.search(r'<div class="warning" id="risk-fallback">(.*?)</div>', html, re.S)
    assert notice, "no fallback notice"
    assert "no supervised model passed the gate" in notice.group(1)
    assert str(escape(fallback["reason"])) in notice.group(1)
    assert f"{fallback['labelled']:,} labelled customers" in notice.group(1)
    assert "No default outcomes were given" not in html
    rows = _table_rows(html, "risk-candidates")
    assert [r[0] for r in rows[1:]] == KINDS
    assert [r[5] for r in rows[1:]] == [c["gate"] for c in choice["candidates"]]
    assert [r[6] for r in rows[1:]] == ["-"] * len(KINDS)
    # without labels there is neither a choice nor a fallback
    plain = load_summary(full_run.out)["risk"]
    assert plain["model_choice"] is None and plain["fallback"] is None
    assert 'id="risk-fallback"' not in _html(full_run)
    assert 'id="risk-candidates"' not in _html(full_run)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["full_run", "labelled_run"])
def test_protected_groups_count_every_customer_once(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(fixture)
    summary = load_summary(run.out)
    risk = summary["risk"]
    protected = risk["protected"]
    assert protected is not None
    shown = {a["attribute"]: a for a in protected["columns"]}
    # the bank has a gender and a birth date (age is a feature computed from it)
    assert [(a, shown[a]["source"], shown[a]["grouping"]) for a in shown] == [
        ("age", "features", "age bands"),
        ("gender", "customers", "values"),
    ]
    customers = summary["overview"]["customers"]
    bands = [b["name"] for b in risk["bands"]]
    for attribute in shown.values():
        assert sum(g["customers"] for g in attribute["groups"]) == customers
        assert sum(g["share"] for g in attribute["groups"]) == pytest.approx(1.0, abs=1e-3)
        for group in attribute["groups"]:
            assert [b["name"] for b in group["bands"]] == bands
            assert sum(b["customers"] for b in group["bands"]) == group["customers"]
    scored = str(run.out / "customers_scored.parquet")
    clean = str(run.out / "clean" / "customers.parquet")
    with duckdb.connect() as con:
        age, score = (
            con.execute(
                "SELECT coalesce(age, 'NaN'::DOUBLE), risk_score FROM read_parquet(?)", [scored]
            )
            .fetchnumpy()
            .values()
        )
        genders = con.execute(
            "SELECT coalesce(c.gender, 'missing'), count(*), avg(s.risk_score), "
            "median(s.risk_score) FROM read_parquet(?) s LEFT JOIN read_parquet(?) c "
            "USING (customer_id) GROUP BY 1 ORDER BY 1",
            [scored, clean],
        ).fetchall()
    age, score = np.asarray(age, dtype=float), np.asarray(score, dtype=float)
    named = AGE_BAND_NAMES[np.digitize(age, [25, 35, 50, 65])]
    age_band = np.where(np.isnan(age), "missing", named)
    by_age = {g["group"]: g for g in shown["age"]["groups"]}
    assert {k: g["customers"] for k, g in by_age.items()} == dict(Counter(age_band.tolist()))
    for name, g in by_age.items():
        assert g["mean_score"] == pytest.approx(score[age_band == name].mean(), abs=0.006)
        assert g["median_score"] == pytest.approx(np.median(score[age_band == name]), abs=0.006)
    assert [(g["group"], g["customers"], g["mean_score"]) for g in shown["gender"]["groups"]] == [
        (name, count, round(mean, 2)) for name, count, mean, _ in genders
    ]
    metrics = json.loads((run.out / "metrics.json").read_text())["risk"]
    if risk["mode"] == "supervised":
        assert protected["left_out"] == metrics["protected"]["left_out"] == ["age"]
        assert protected["note"].startswith("The model left out the protected column age")
    else:
        assert protected["left_out"] == []
        assert protected["note"].startswith("The unsupervised score reads only its declared")
    assert protected["note"].endswith("shown so disparities can be checked.")
    html = _html(run)
    assert str(escape(protected["note"])) in html
    rows = _table_rows(html, "risk-protected-age")
    assert rows[0][:5] == ["group", "customers", "share", "mean score", "median score"]
    assert rows[0][5:] == [*bands, "flagged anomalous"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        (g["group"], f"{g['customers']:,}") for g in shown["age"]["groups"]
    ]


@pytest.mark.slow
def test_no_protected_column_means_no_protected_groups(roles_run: Run) -> None:
    """The card statements have no age, gender or other protected column."""
    risk = load_summary(roles_run.out)["risk"]
    assert risk["protected"] is None
    assert "Protected groups" not in _html(roles_run)


# ---------------------------------------------------------------------- the summary contract


@pytest.mark.slow
def test_summary_json_equals_summarize(any_run: Run) -> None:
    written = json.loads((any_run.out / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert written == summarize(any_run.out)


@pytest.mark.slow
def test_summary_json_is_small_with_plot_data_on_one_line(full_run: Run) -> None:
    text = (full_run.out / SUMMARY_FILE).read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 200_000
    assert re.search(r'"below": \[\d+(, \d+){49}\]', text)
    assert set(json.loads(text)["plot_data"]) == {
        "segments_pca",
        "risk_by_segment",
        "anomaly_distribution",
    }


@pytest.mark.slow
def test_summarize_is_deterministic(full_run: Run) -> None:
    first = json.dumps(summarize(full_run.out), sort_keys=True)
    assert first == json.dumps(summarize(full_run.out), sort_keys=True)


@pytest.mark.slow
def test_summary_has_the_contract_keys(full_run: Run) -> None:
    s = summarize(full_run.out)
    assert {
        "overview",
        "data_quality",
        "segments",
        "risk",
        "anomalies",
        "model_card",
        "plots",
    } <= set(s)
    assert {
        "customers",
        "transactions",
        "anomalies",
        "transaction_alerts",
        "segments",
        "risk_mode",
        "as_of",
        "seed",
        "finintel_version",
        "created_from",
    } <= set(s["overview"])
    assert {
        "segment_id",
        "segment_name",
        "size",
        "share",
        "description",
        "actions",
        "profile",
        "mean_risk_score",
        "anomalies",
    } <= set(s["segments"]["items"][0])
    profile = s["segments"]["items"][0]["profile"]
    assert set(profile) == set(s["segments"]["columns"])
    assert all(set(v) == {"value", "z"} and v["z"] is not None for v in profile.values())
    assert {
        "name",
        "min_score",
        "action",
        "customers",
        "share",
        "fitted_share",
        "top_share",
        "min_probability",
    } == set(s["risk"]["bands"][0])
    assert {"count", "top"} <= set(s["anomalies"]["transaction_alerts"])
    assert len(s["risk"]["top_customers"]) == 20
    assert {"versions", "parameters", "k_selection_evidence", "stability", "limitations"} <= set(
        s["model_card"]
    )
    json.dumps(s, allow_nan=False)


@pytest.mark.slow
def test_load_summary_builds_it_when_missing(full_run: Run, tmp_path: Path) -> None:
    target = full_run.out / SUMMARY_FILE
    saved = target.read_bytes()
    try:
        target.unlink()
        assert load_summary(full_run.out) == summarize(full_run.out)
        assert target.is_file()
        assert write_summary(full_run.out) == target
    finally:
        target.write_bytes(saved)


def test_summarize_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"customers_scored\.parquet is missing"):
        summarize(tmp_path)


@pytest.mark.slow
def test_summary_module_needs_no_plotting_libraries(full_run: Run) -> None:
    code = (
        "import sys\n"
        "for name in ('matplotlib', 'jinja2', 'sklearn'):\n"
        "    sys.modules[name] = None\n"
        "from pathlib import Path\n"
        "from finintel.report import summarize\n"
        f"summary = summarize(Path({str(full_run.out)!r}))\n"
        "print(summary['overview']['customers'])\n"
        "print(summary['plots_skipped']['segments_pca'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    customers, pca = done.stdout.strip().splitlines()
    assert customers == "1500"
    assert pca.startswith("reading the segmenter needs the models extra (finintel[models])")


# ---------------------------------------------------------------------- rendering hygiene


@pytest.mark.slow
def test_report_escapes_data(full_run: Run) -> None:
    summary = load_summary(full_run.out)
    summary["risk"]["top_customers"][0]["risk_reasons"] = "<script>alert(1)</script>"
    html = render_report(summary, full_run.out)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.slow
def test_building_leaves_no_global_matplotlib_state(full_run: Run) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    params = matplotlib.rcParams.copy()
    build_report(full_run.out)
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == dict(params)


# ---------------------------------------------------------------------- runs without a risk score

RISK_PLOTS = ["risk_distribution", "risk_by_segment", "risk_roc", "risk_calibration"]


@pytest.fixture(scope="module", params=["off", "auto"], ids=["switched_off", "skipped"])
def no_risk_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Anonymised card components without a risk score: `[risk] enabled = false`, or risk
    scoring on and skipped because no risk factor applies."""
    folder = tmp_path_factory.mktemp(f"no_risk_{request.param}")
    cfg, base = load_config(write_anonymised_cards(folder / "data")[request.param])
    out = folder / "run"
    run_all(cfg.model_copy(update={"seed": SEED}), base, out)
    return Run(out, build_report(out))


@pytest.mark.slow
def test_a_run_without_risk_has_no_risk_section_and_says_why(no_risk_run: Run) -> None:
    summary = load_summary(no_risk_run.out)
    risk = summary["risk"]
    metrics = json.loads((no_risk_run.out / "metrics.json").read_text())["risk"]
    assert summary["overview"]["risk_mode"] == risk["mode"] == "off"
    assert risk["bands"] == [] and risk["top_customers"] == [] and risk["mean_score"] is None
    note = risk["off_note"]
    assert note.startswith("Risk scoring is off: ") and note.endswith(".")
    if metrics["source"] == "config":
        assert note == "Risk scoring is off: [risk] enabled = false."
        assert risk["off_hint"] is None
    else:
        assert note.startswith("Risk scoring is off: no risk factor can be computed")
        assert "set [risk] enabled = false" in str(risk["off_hint"])
    html = _html(no_risk_run)
    assert f'<p class="note" id="risk-off">{escape(note)}' in html
    assert 'id="risk"' not in html and 'href="#risk"' not in html
    assert "Highest-risk customers" not in html and "mean risk score" not in html
    assert summary["model_card"]["limitations"][0].startswith(note)


@pytest.mark.slow
def test_a_run_without_risk_draws_every_other_plot(no_risk_run: Run) -> None:
    summary = load_summary(no_risk_run.out)
    assert {name: summary["plots_skipped"][name] for name in RISK_PLOTS} == dict.fromkeys(
        RISK_PLOTS, "risk scoring is off"
    )
    assert set(summary["plot_data"]) == {"segments_pca", "anomaly_distribution"}
    drawn = [n for n in PLOT_NAMES if n not in {*RISK_PLOTS, "data_quality_rules"}]
    assert sorted(summary["plots"]) == sorted(drawn)
    for path in summary["plots"].values():
        assert (no_risk_run.out / path).stat().st_size > MIN_PNG_BYTES


@pytest.mark.slow
def test_a_run_without_risk_reports_anomalies_and_segments(no_risk_run: Run) -> None:
    summary = load_summary(no_risk_run.out)
    scored = _rows(no_risk_run.out / "customers_scored.csv")
    assert "risk_score" not in scored[0]
    sizes = Counter(row["segment_name"] for row in scored)
    items = summary["segments"]["items"]
    assert {i["segment_name"]: i["size"] for i in items} == dict(sizes)
    assert all(i["mean_risk_score"] is None for i in items)
    # the CSV rounds the score to 2 decimals; the queue orders by the full-precision score
    precise = _scored(no_risk_run, "customer_id", "anomaly_score")
    full = dict(
        zip(precise["customer_id"].tolist(), precise["anomaly_score"].tolist(), strict=True)
    )
    flagged = sorted(
        (r for r in scored if r["is_anomaly"] == "true"),
        key=lambda r: (-full[r["customer_id"]], r["customer_id"]),
    )
    queue = summary["anomalies"]["review_queue"]
    assert [c["customer_id"] for c in queue] == [r["customer_id"] for r in flagged[:50]]
    assert all(c["risk_band"] is None for c in queue)
    html = _html(no_risk_run)
    assert f"<p>{len(flagged):,} customers are flagged as unusual" in html
    assert "<th>risk band</th>" not in html
    assert json.loads((no_risk_run.out / SUMMARY_FILE).read_text()) == summarize(no_risk_run.out)


# ---------------------------------------------------------------------- segment stability, columns

UNSTABLE_NOTE = (
    "No k from 2 to 10 was stable (bootstrap agreement below 0.9): the 3 segments shown are a "
    "partition of the customers, not a structure found in the data; read their names as "
    "descriptions, not as groups."
)

COLUMN_METRICS: SegmentMetrics = {
    "feature_selection": {
        "mode": "default",
        "rule": "Default columns, planned from the data.",
        "candidates": [
            "monthly_spend_avg",
            "debit_total",
            "channel_share_other",
            "channel_share_online",
            "channel_share_atm",
        ],
        "kept": ["monthly_spend_avg", "channel_share_online", "channel_share_atm"],
        "dropped": [
            {
                "column": "debit_total",
                "reason": "redundant",
                "detail": "|Spearman| 0.97 with monthly_spend_avg, kept earlier",
                "with": "monthly_spend_avg",
                "spearman": 0.9712,
            },
            {
                "column": "channel_share_other",
                "reason": "near-constant",
                "detail": "99.1% of customers share one value",
            },
        ],
        "weights": {
            "monthly_spend_avg": 1.0,
            "debit_total": 0.0,
            "channel_share_other": 0.0,
            "channel_share_online": 1.414,
            "channel_share_atm": 1.414,
        },
        "blocks": [
            {
                "name": "channel mix",
                "columns": ["channel_share_online", "channel_share_atm"],
                "counts_as": 4.0,
                "column_weight": 1.414,
            }
        ],
    }
}


def test_feature_selection_lists_every_offered_column_kept_or_dropped_and_why() -> None:
    view = feature_selection(COLUMN_METRICS)
    assert view is not None
    assert (view["mode"], view["kept"], view["dropped"]) == ("default", 3, 2)
    rows = {row["column"]: row for row in view["columns"]}
    assert list(rows) == COLUMN_METRICS["feature_selection"]["candidates"]
    redundant = rows["debit_total"]
    assert (redundant["kept"], redundant["reason"], redundant["weight"]) == (
        False,
        "redundant",
        0.0,
    )
    assert redundant["correlated_with"] == "monthly_spend_avg"
    assert redundant["spearman"] == pytest.approx(0.9712)
    assert redundant["detail"] == "|Spearman| 0.97 with monthly_spend_avg, kept earlier"
    flat = rows["channel_share_other"]
    assert (flat["reason"], flat["correlated_with"], flat["spearman"]) == (
        "near-constant",
        None,
        None,
    )
    kept = rows["monthly_spend_avg"]
    assert (kept["kept"], kept["reason"], kept["detail"], kept["weight"]) == (
        True,
        "kept",
        None,
        1.0,
    )
    assert rows["channel_share_atm"]["detail"] == (
        "one of 2 channel mix columns; together they weigh as 4 columns"
    )
    assert all(row["label"] for row in rows.values())


def test_feature_selection_of_older_metrics_is_none() -> None:
    assert feature_selection({}) is None
    assert feature_selection({"columns": ["a"], "constant_columns": []}) is None


def test_the_segmenters_verdict_decides_whether_segments_are_called_unstable() -> None:
    unstable = cast(Segments, {"stable": False, "note": UNSTABLE_NOTE, "stability": 0.99})
    assert unstable_segments_note(unstable) == UNSTABLE_NOTE
    # a stable verdict wins over a low mean (a borderline k the mean decided)
    stable = cast(
        Segments, {"stable": True, "note": "The 4 segments are stable.", "stability": 0.5}
    )
    assert unstable_segments_note(stable) is None
    no_note = cast(Segments, {"stable": False, "chosen_k": 3})
    assert unstable_segments_note(no_note) == (
        "The 3 segments are not stable: they are a partition of the customers, not a structure "
        "found in the data."
    )
    # runs from before the verdict: the mean against the old bar
    old = unstable_segments_note(cast(Segments, {"stability": 0.51}))
    assert old is not None and "bootstrap agreement 0.51, below 0.9" in old
    assert unstable_segments_note(cast(Segments, {"stability": 0.95})) is None


def test_the_stability_band_is_the_confidence_band_when_the_bounds_exist() -> None:
    table: list[KRow] = [
        {
            "k": 2,
            "stability": 0.6,
            "stability_sd": 0.3,
            "stability_low": 0.5,
            "stability_high": 0.7,
        },
        {
            "k": 3,
            "stability": 0.9,
            "stability_sd": 0.2,
            "stability_low": 0.85,
            "stability_high": 0.95,
        },
    ]
    low, high, label = stability_band(table)
    assert (low.tolist(), high.tolist()) == ([0.5, 0.85], [0.7, 0.95])
    assert label == "confidence band of the mean stability"
    older: list[KRow] = [{"k": 2, "stability": 0.6, "stability_sd": 0.3}]
    low, high, label = stability_band(older)
    assert low.tolist() == pytest.approx([0.3]) and high.tolist() == pytest.approx([0.9])
    assert label == "stability ± one standard deviation"


def _copy_run(run: Run, target: Path) -> Path:
    shutil.copytree(run.out, target)
    return target


def _edit_segment_metrics(run_dir: Path, edit: dict[str, object], drop: tuple[str, ...]) -> None:
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    segments = metrics["segments"]
    segments.update(edit)
    for key in drop:
        segments.pop(key, None)
    path.write_text(json.dumps(metrics), encoding="utf-8")


@pytest.mark.slow
def test_an_unstable_run_says_so_in_the_report(no_risk_run: Run) -> None:
    metrics = json.loads((no_risk_run.out / "metrics.json").read_text())["segments"]
    segments = load_summary(no_risk_run.out)["segments"]
    assert metrics["stable"] is False and segments.get("stable") is False
    assert segments.get("note") == metrics["note"]
    assert segments.get("attempts") == metrics["k_selection"]["attempts"]
    html = _html(no_risk_run)
    warning = re.search(r'<p class="warning" id="segments-unstable">(.*?)</p>', html, re.S)
    assert warning and str(escape(metrics["note"])) in warning.group(1)
    assert "not a stable structure" in warning.group(1)
    # the warning opens the segments section, before the segment cards
    assert html.index('id="segments-unstable"') < html.index('<div class="segments">')
    assert f"Shown k = {metrics['k']}, not stable." in html
    assert "chosen from the evidence" not in html
    limitations = load_summary(no_risk_run.out)["model_card"]["limitations"]
    assert metrics["note"] in limitations
    assert not any("not fully stable" in note for note in limitations)
    columns = _table_rows(html, "segment-columns")
    offered = metrics["feature_selection"]["candidates"]
    assert [row[0] for row in columns[1:]] == offered  # anonymised columns: label = name
    assert columns[0] == ["column", "used", "weight", "why", "with", "Spearman"]


@pytest.mark.slow
def test_the_report_lists_the_columns_segmentation_kept_and_dropped(full_run: Run) -> None:
    metrics = json.loads((full_run.out / "metrics.json").read_text())["segments"]
    selection = metrics["feature_selection"]
    segments = load_summary(full_run.out)["segments"]
    view = segments.get("feature_selection")
    assert view is not None and segments.get("stable") is metrics["stable"]
    assert [c["column"] for c in view["columns"]] == selection["candidates"]
    assert [c["column"] for c in view["columns"] if c["kept"]] == selection["kept"]
    assert view["dropped"] == len(selection["dropped"]) > 0
    rows = _table_rows(_html(full_run), "segment-columns")[1:]
    assert len(rows) == len(selection["candidates"])
    by_name = {re.sub(r".*\((\w+)\)$", r"\1", row[0]): row for row in rows}
    for dropped in selection["dropped"]:
        row = by_name[dropped["column"]]
        assert row[1] == f"dropped: {dropped['reason']}" and row[2] == "0.00"
        assert row[3] == str(escape(dropped["detail"]))
        if dropped["reason"] == "redundant":
            assert row[4] == dropped["with"]
            assert row[5] == f"{dropped['spearman']:.2f}"
    for name in selection["kept"]:
        assert by_name[name][1] == "kept"
        assert by_name[name][2] == f"{selection['weights'][name]:.2f}"


@pytest.mark.slow
def test_unstable_metrics_are_reported_as_the_segmenter_said(full_run: Run, tmp_path: Path) -> None:
    run_dir = _copy_run(full_run, tmp_path / "run")
    _edit_segment_metrics(run_dir, {"stable": False, "note": UNSTABLE_NOTE}, ())
    summary = summarize(run_dir)
    segments = summary["segments"]
    assert (segments.get("stable"), segments.get("note")) == (False, UNSTABLE_NOTE)
    assert UNSTABLE_NOTE in summary["model_card"]["limitations"]
    html = render_report(summary, run_dir)
    assert 'id="segments-unstable"' in html and str(escape(UNSTABLE_NOTE)) in html
    # and a stable verdict shows its sentence quietly, with no warning
    _edit_segment_metrics(run_dir, {"stable": True, "note": "The 5 segments are stable."}, ())
    summary = summarize(run_dir)
    html = render_report(summary, run_dir)
    assert 'id="segments-unstable"' not in html
    assert '<p class="sub" id="segments-stability">The 5 segments are stable.</p>' in html
    assert not any("stable" in note for note in summary["model_card"]["limitations"])


@pytest.mark.slow
def test_a_run_from_before_the_verdict_and_column_plan_still_reports(
    full_run: Run, tmp_path: Path
) -> None:
    run_dir = _copy_run(full_run, tmp_path / "run")
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    segments = metrics["segments"]
    for key in ("stable", "note", "feature_selection", "stability_low"):
        segments.pop(key)
    selection = segments["k_selection"]
    for key in ("stable", "attempts"):
        selection.pop(key)
    for row in selection["table"]:
        for key in ("stability_low", "stability_high", "rounds", "restarts", "verdict"):
            row.pop(key)
    segments["stability"] = 0.51
    path.write_text(json.dumps(metrics), encoding="utf-8")
    summary = summarize(run_dir)
    seg = summary["segments"]
    assert (seg.get("stable"), seg.get("note"), seg.get("feature_selection")) == (None, None, None)
    assert any(
        "bootstrap agreement 0.51, below 0.9" in n for n in summary["model_card"]["limitations"]
    )
    drawn, skipped = draw_plots(run_dir, summary)
    assert "k_selection" in drawn and "k_selection" not in skipped
    html = render_report(summary, run_dir)
    assert 'id="segment-columns"' not in html and 'id="segments-unstable"' not in html
    assert "± " in html  # the evidence table falls back to mean ± sd
    # a summary.json written before these keys existed renders too
    old = json.loads((full_run.out / SUMMARY_FILE).read_text())
    for key in ("stable", "note", "attempts", "feature_selection"):
        old["segments"].pop(key)
    for key in ("stable", "attempts"):
        old["model_card"]["k_selection_evidence"].pop(key)
    for key in ("stability_low", "stability_high"):
        old["model_card"]["stability"].pop(key)
    html = render_report(cast(Summary, old), full_run.out)
    assert 'id="segments"' in html and 'id="segment-columns"' not in html


# ---------------------------------------------------------------------- bands, paths


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ALL_RUNS)
def test_report_and_summary_name_no_folder_of_the_machine(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(fixture)
    # the bank and the run lie in sibling temporary folders under pytest's base folder
    folders = {str(run.out), str(run.out.parent), str(run.out.parent.parent), str(Path.cwd())}
    summary = load_summary(run.out)
    for text in (_html(run), (run.out / SUMMARY_FILE).read_text(encoding="utf-8")):
        for folder in folders:
            assert folder not in text
    inputs = [f["path"] for f in summary["overview"]["created_from"]]
    sources = [t["source"] for t in summary["data_quality"]["tables"] if not t.get("derived")]
    assert inputs and all(p.startswith("../") and p.endswith(".parquet") for p in inputs)
    assert all(s in inputs for s in sources if s)
    for path in inputs:
        assert (run.out / path).resolve().is_file(), path


@pytest.mark.slow
def test_bands_say_they_are_fixed_shares_of_the_fitted_population(
    full_run: Run, labelled_run: Run
) -> None:
    for run in (full_run, labelled_run):
        bands = {b["name"]: b for b in load_summary(run.out)["risk"]["bands"]}
        assert [bands[n]["fitted_share"] for n in ("Low", "Medium", "High", "Critical")] == [
            0.5,
            0.25,
            0.15,
            0.1,
        ]
        assert bands["Critical"]["top_share"] == 0.1 and bands["High"]["top_share"] == 0.25
        html = _html(run)
        assert "top 10% by risk score" in html and "top 25% by risk score" in html
        assert "The cut points below are percentiles" in html
    assert all(b["min_probability"] is None for b in load_summary(full_run.out)["risk"]["bands"])
    assert "raw composite value" in _html(full_run)
    # supervised: the cut points on the probability scale are the bands' lowest PD
    got = _scored(labelled_run, "risk_band", "probability_of_default")
    bands = load_summary(labelled_run.out)["risk"]["bands"]
    for band in bands:
        members = got["probability_of_default"][got["risk_band"] == band["name"]]
        assert band["min_probability"] == pytest.approx(members.min(), abs=1e-6)
    lows = [b["min_probability"] for b in bands]
    assert lows == sorted(lows)
    assert "probability of default from" in _html(labelled_run)


@pytest.mark.slow
def test_supervised_risk_histogram_counts_the_probability_of_default(labelled_run: Run) -> None:
    histogram = load_summary(labelled_run.out)["plot_data"]["risk_distribution"]
    assert histogram["scale"] == "probability_of_default"
    pd = _scored(labelled_run, "probability_of_default")["probability_of_default"]
    assert histogram["edges"][0] == 0.0 and histogram["edges"][-1] >= pd.max()
    counts = np.histogram(pd, bins=histogram["edges"])[0].tolist()
    assert histogram["counts"] == counts and sum(counts) == 1500
    assert not is_flat(histogram["counts"])


def test_flat_counts_are_told_from_sampled_ones() -> None:
    rng = np.random.default_rng(1234)
    sampled = np.histogram(rng.uniform(0, 100, 1500), bins=50)[0].tolist()
    assert is_flat([30] * 50) and is_flat([29, 31] * 25)
    assert not is_flat(sampled)  # a random batch is uneven enough to be drawn
    assert not is_flat([0] * 50)
