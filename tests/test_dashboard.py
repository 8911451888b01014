"""The dashboard pages, driven by Streamlit's AppTest over real runs: supervised, a fallback to
the unsupervised score (labels no model can predict), declared roles, and without risk."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'dashboard' extra (streamlit)")
pytest.importorskip(
    "finintel.report.summary", reason="the dashboard reads the run summary of finintel.report"
)

from streamlit.testing.v1 import AppTest

from finintel.config import config_for_files, load_config
from finintel.dashboard import (
    APP_SCRIPT,
    RUN_DIR_ENV,
    dashboard_command,
    data,
    launch,
    run_dir_from,
)
from finintel.dashboard.data import MEMBERS_LIMIT
from finintel.errors import ConfigError, RunDirError
from finintel.pipeline import run_all
from finintel.run_layout import (
    ALERTS_CSV,
    METRICS_JSON,
    SCORED_CSV,
    SEGMENTS_CSV,
    RunLayout,
    require_finished_run,
)
from finintel.synthetic import generate_bank
from test_run import PLANTED, RISK_COLUMNS, write_anonymised_cards

SEED = 31
TIMEOUT = 60


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with default labels (supervised scorecard, so CV is shown)."""
    root = tmp_path_factory.mktemp("dashboard")
    bank = generate_bank(root / "bank", 1000, seed=SEED)
    cfg = config_for_files(
        str(bank.customers), str(bank.transactions), str(bank.loans), str(bank.labels)
    )
    run_all(cfg.model_copy(update={"seed": SEED}), Path.cwd(), root / "run")
    return root / "run"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scored(run_dir: Path) -> list[dict[str, str]]:
    return read_csv(run_dir / SCORED_CSV)


@pytest.fixture(scope="module")
def segments(run_dir: Path) -> list[dict[str, str]]:
    return read_csv(run_dir / SEGMENTS_CSV)


@pytest.fixture(scope="module")
def alerts(run_dir: Path) -> list[dict[str, str]]:
    return read_csv(run_dir / ALERTS_CSV)


@pytest.fixture
def app(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv(RUN_DIR_ENV, str(run_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    yield at


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def frames_with(at: AppTest, column: str) -> list[Any]:
    """The tables of the page (pandas frames) that have `column`, in page order."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.slow
def test_overview_shows_the_runs_counts(
    app: AppTest,
    scored: list[dict[str, str]],
    segments: list[dict[str, str]],
    alerts: list[dict[str, str]],
) -> None:
    assert not app.exception
    assert [t.value for t in app.title] == ["Overview"]
    shown = metrics(app)
    assert shown["Customers"] == f"{len(scored):,}"
    assert shown["Segments"] == str(len(segments))
    assert shown["Anomalous customers"] == str(sum(r["is_anomaly"] == "true" for r in scored))
    assert shown["Transaction alerts"] == f"{len(alerts):,}"
    assert shown["Risk score"] == "supervised"
    segment_table = app.table[0].value
    assert list(segment_table["segment"]) == [s["segment_name"] for s in segments]
    assert list(segment_table["customers"]) == [f"{int(s['size']):,}" for s in segments]
    bands = Counter(r["risk_band"] for r in scored)
    band_table = app.table[1].value
    assert dict(zip(band_table["band"], band_table["customers"], strict=True)) == {
        band: f"{count:,}" for band, count in bands.items()
    }


@pytest.mark.slow
def test_segment_explorer_shows_each_segment_and_its_members(
    app: AppTest, scored: list[dict[str, str]], segments: list[dict[str, str]]
) -> None:
    page(app, "segments")
    assert [t.value for t in app.title] == ["Segment explorer"]
    for segment in segments:
        label = f"{segment['segment_name']} (segment {segment['segment_id']})"
        app.selectbox(key="segment").set_value(label).run()
        assert not app.exception
        shown = metrics(app)
        assert shown["Customers"] == f"{int(segment['size']):,}"
        assert segment["description"] in [m.value for m in app.markdown]
        members = app.dataframe[1].value
        expected = [r for r in scored if r["segment_id"] == segment["segment_id"]]
        assert len(members) == min(len(expected), MEMBERS_LIMIT)
        assert set(members["customer_id"]) <= {r["customer_id"] for r in expected}
        top = max(expected, key=lambda r: float(r["risk_score"]))
        assert members["risk_score"].iloc[0] == pytest.approx(float(top["risk_score"]))


@pytest.mark.slow
def test_segment_explorer_shows_the_stability_and_the_columns_kept(
    app: AppTest, run_dir: Path
) -> None:
    seg_metrics = json.loads((run_dir / METRICS_JSON).read_text())["segments"]
    selection = seg_metrics["feature_selection"]
    page(app, "segments")
    if seg_metrics["stable"]:
        assert not app.warning
        assert seg_metrics["note"] in [c.value for c in app.caption]
    else:
        assert seg_metrics["note"] in app.warning[0].value
    kept, offered = len(selection["kept"]), len(selection["candidates"])
    labels = [e.label for e in app.expander]
    assert f"Columns used ({kept} of {offered} kept)" in labels
    columns = app.dataframe[3].value
    assert list(columns["name"]) == selection["candidates"]
    used = dict(zip(columns["name"], columns["used"], strict=True))
    assert [name for name, how in used.items() if how == "kept"] == selection["kept"]
    for dropped in selection["dropped"]:
        assert used[dropped["column"]] == f"dropped: {dropped['reason']}"
    redundant = [d for d in selection["dropped"] if d["reason"] == "redundant"]
    assert redundant, "the synthetic bank has columns that rank customers alike"
    rows = {
        row["name"]: row for row in data.segment_column_rows(data.run_summary(run_dir)["segments"])
    }
    for dropped in redundant:
        assert rows[dropped["column"]]["with"] == dropped["with"]
        assert rows[dropped["column"]]["Spearman"] == pytest.approx(dropped["spearman"])


def test_segment_column_rows_and_the_stability_warning() -> None:
    segments = {
        "stable": False,
        "note": "No k from 2 to 10 was stable.",
        "feature_selection": {
            "mode": "default",
            "rule": "the rule",
            "kept": 1,
            "dropped": 1,
            "columns": [
                {
                    "column": "channel_share_online",
                    "label": "share via online",
                    "kept": True,
                    "reason": "kept",
                    "detail": "one of 2 channel mix columns; together they weigh as 4 columns",
                    "correlated_with": None,
                    "spearman": None,
                    "weight": 1.414,
                },
                {
                    "column": "debit_total",
                    "label": "total spend",
                    "kept": False,
                    "reason": "redundant",
                    "detail": "|Spearman| 0.97 with monthly_spend_avg, kept earlier",
                    "correlated_with": "monthly_spend_avg",
                    "spearman": 0.9712,
                    "weight": 0.0,
                },
            ],
        },
    }
    assert data.segment_column_rows(segments) == [
        {
            "column": "share via online",
            "name": "channel_share_online",
            "used": "kept",
            "weight": 1.414,
            "why": "one of 2 channel mix columns; together they weigh as 4 columns",
            "with": "-",
            "Spearman": None,
        },
        {
            "column": "total spend",
            "name": "debit_total",
            "used": "dropped: redundant",
            "weight": 0.0,
            "why": "|Spearman| 0.97 with monthly_spend_avg, kept earlier",
            "with": "monthly_spend_avg",
            "Spearman": 0.9712,
        },
    ]
    assert data.segments_warning({"segments": segments}) == "No k from 2 to 10 was stable."
    stable = {"segments": {"stable": True, "note": "The 5 segments are stable."}}
    assert data.segments_warning(stable) is None
    # a summary from before the column decision and the verdict
    assert data.segment_column_rows({"stability": 0.95}) == []
    assert data.segments_warning({"segments": {"stability": 0.95}}) is None


@pytest.mark.slow
def test_customer_lookup_shows_every_score_and_reason(
    app: AppTest, scored: list[dict[str, str]], alerts: list[dict[str, str]]
) -> None:
    page(app, "customer")
    with_alerts = Counter(a["customer_id"] for a in alerts)
    # a customer with transaction alerts and risk reasons (a low score may have none)
    customer = next(r for r in scored if r["customer_id"] in with_alerts and r["risk_reasons"])
    app.text_input(key="customer_id").input(customer["customer_id"]).run()
    assert not app.exception
    shown = metrics(app)
    assert shown["Risk score"] == f"{float(customer['risk_score']):.2f}"
    assert shown["Risk band"] == customer["risk_band"]
    assert shown["Anomaly score"] == f"{float(customer['anomaly_score']):.2f}"
    assert shown["Segment"] == f"{customer['segment_name']} ({customer['segment_id']})"
    assert shown["Probability of default"] == f"{float(customer['probability_of_default']):.1%}"
    text = "\n".join(m.value for m in app.markdown)
    assert customer["risk_action"] in text
    for reason in customer["risk_reasons"].split("; "):
        assert f"- {reason}" in text
    table = app.dataframe[0].value
    assert len(table) == with_alerts[customer["customer_id"]]
    assert set(table["customer_id"]) == {customer["customer_id"]}


@pytest.mark.slow
def test_customer_lookup_of_an_unknown_id_warns(app: AppTest) -> None:
    page(app, "customer")
    app.text_input(key="customer_id").input("NOBODY-42").run()
    assert not app.exception
    assert [w.value for w in app.warning] == ["customer 'NOBODY-42' is not in this run"]
    assert not app.metric


@pytest.mark.slow
def test_anomaly_review_queue_and_alerts_of_a_customer(
    app: AppTest, scored: list[dict[str, str]], alerts: list[dict[str, str]]
) -> None:
    page(app, "anomalies")
    flagged = sorted(
        (r for r in scored if r["is_anomaly"] == "true"),
        key=lambda r: (-float(r["anomaly_score"]), r["customer_id"]),
    )
    shown = metrics(app)
    assert shown["Flagged customers"] == str(len(flagged))
    assert shown["Transaction alerts"] == f"{len(alerts):,}"
    queue = app.dataframe[0].value
    assert len(queue) == min(50, len(flagged))
    assert set(queue["customer_id"]) == {r["customer_id"] for r in flagged[:50]}
    with_alerts = Counter(a["customer_id"] for a in alerts)
    for customer_id in list(queue["customer_id"]):
        app.selectbox(key="review_customer").set_value(customer_id).run()
        assert not app.exception
        count = with_alerts[customer_id]
        customer_tables = [d.value for d in app.dataframe if "alert_score" in d.value.columns]
        if count:
            own = [t for t in customer_tables if set(t["customer_id"]) == {customer_id}]
            assert len(own) == 1 and len(own[0]) == count
            assert list(own[0]["alert_score"]) == sorted(own[0]["alert_score"], reverse=True)
            break
    else:
        pytest.fail("no queued customer has transaction alerts in this run")


@pytest.mark.slow
def test_risk_view_shows_bands_actions_scorecard_and_cv(
    app: AppTest, scored: list[dict[str, str]], run_dir: Path
) -> None:
    page(app, "risk")
    bands = app.dataframe[0].value
    counts = Counter(r["risk_band"] for r in scored)
    assert dict(zip(bands["band"], bands["customers"], strict=True)) == dict(counts)
    actions = {r["risk_band"]: r["risk_action"] for r in scored}
    assert dict(zip(bands["band"], bands["action"], strict=True)) == actions
    risk = data.run_summary(run_dir)["risk"]
    delivered = risk.get("model")
    model_section = "Scorecard" if delivered == "scorecard" else f"Variables of the {delivered}"
    assert [s.value for s in app.subheader][:6] == [
        "Bands",
        "Distribution",
        "Model choice",
        model_section,
        "Candidate variables computed from several columns",
        "Cross-validation",
    ]
    shown = metrics(app)
    assert float(shown["roc auc"]) > 0.6
    assert shown["folds"] == "5"
    # the bank's own ratios (no role declared): built-in, each with the columns it reads
    [derived] = frames_with(app, "in the model")
    assert list(derived["name"]) == [d["name"] for d in risk["derived_variables"]]
    assert set(derived["source"]) == {"built-in"} and set(derived["role"]) == {"-"}
    assert list(derived["reads"]) == [", ".join(d["columns"]) for d in risk["derived_variables"]]
    left_out = [e for e in app.expander if e.label.startswith("Factors left out")]
    assert left_out and f"({len(risk['unavailable_factors'])})" in left_out[0].label


KINDS = ["scorecard", "logistic", "boosting"]


@pytest.mark.slow
def test_risk_view_shows_the_model_choice_and_the_protected_groups(
    app: AppTest, scored: list[dict[str, str]], run_dir: Path
) -> None:
    page(app, "risk")
    risk_metrics = json.loads((run_dir / METRICS_JSON).read_text())["risk"]
    delivered = risk_metrics["model"]
    [candidates] = frames_with(app, "ROC-AUC (cross-validated)")
    assert list(candidates["model"]) == KINDS
    assert list(candidates["delivered"]) == ["delivered" if k == delivered else "-" for k in KINDS]
    measured = risk_metrics["model_selection"]["candidates"]
    assert list(candidates["ROC-AUC (cross-validated)"]) == [
        f"{c['roc_auc']:.3f} ± {c['roc_auc_std']:.3f}" for c in measured
    ]
    assert list(candidates["gate"]) == [c["gate"] for c in measured]
    captions = [c.value for c in app.caption]
    assert any(c.startswith(f"Delivered: {delivered}. ") for c in captions)
    assert not app.warning  # labels gave a model that passed: no fallback notice
    # the score per protected group: the bank's age (a feature) and gender
    subheaders = [s.value for s in app.subheader]
    assert subheaders.index("Protected groups") > subheaders.index("Cross-validation")
    protected = data.run_summary(run_dir)["risk"]["protected"]
    assert protected is not None and protected["left_out"] == ["age"]
    assert protected["note"] in captions
    labels = [m.value for m in app.markdown if m.value.startswith("**")]
    assert "**age** · features · age bands" in labels
    assert "**gender** · clean customers · values" in labels
    groups = frames_with(app, "flagged anomalous")
    assert len(groups) == 2
    bands = [b["name"] for b in data.run_summary(run_dir)["risk"]["bands"]]
    for frame in groups:
        assert sum(int(n.replace(",", "")) for n in frame["customers"]) == len(scored)
        assert list(frame.columns[5:]) == [*bands, "flagged anomalous"]
    by_gender = dict(zip(groups[1]["group"], groups[1]["customers"], strict=True))
    genders = pq.read_table(RunLayout(run_dir).clean_table("customers")).column("gender")
    expected = Counter((g or "").strip() or "missing" for g in genders.to_pylist())
    assert by_gender == {g: f"{n:,}" for g, n in sorted(expected.items())}


def test_model_choice_and_protected_rows_from_a_summary() -> None:
    risk = {
        "model_choice": {
            "delivered": None,
            "candidates": [
                {
                    "model": "boosting",
                    "description": "gradient boosting",
                    "roc_auc": 0.5087,
                    "roc_auc_std": 0.0673,
                    "calibration_slope": 0.0076,
                    "variables": 30.13,
                    "gate": "cross-validated ROC-AUC 0.509 is below the minimum 0.6",
                    "delivered": False,
                }
            ],
        },
        "fallback": {"reason": "No model passed.", "labelled": 682, "bads": 76, "goods": 606},
        "model_variables": {
            "measure": "information value",
            "rows": [{"variable": "dti", "label": "debt-to-income", "value": 0.31}],
            "dropped": [{"variable": "age_days", "label": "age days", "why": "IV 0.01 < 0.02"}],
        },
    }
    assert data.candidate_rows(risk) == [
        {
            "model": "boosting",
            "description": "gradient boosting",
            "ROC-AUC (cross-validated)": "0.509 ± 0.067",
            "calibration slope": 0.0076,
            "variables": 30.13,
            "gate": "cross-validated ROC-AUC 0.509 is below the minimum 0.6",
            "delivered": "-",
        }
    ]
    assert data.fallback_notice(risk) == (
        "Default labels were given, but no supervised model passed the gate: the risk score "
        "is the unsupervised composite of declared risk factors instead (682 labelled "
        "customers, 76 defaults). No model passed."
    )
    assert data.model_variable_rows(risk) == [
        {"variable": "debt-to-income", "name": "dti", "information value": 0.31}
    ]
    assert data.dropped_variable_rows(risk) == [
        {"variable": "age days", "name": "age_days", "why": "IV 0.01 < 0.02"}
    ]
    assert data.candidate_rows({}) == data.model_variable_rows({}) == []
    assert data.fallback_notice({}) is None and data.dropped_variable_rows({}) == []


def test_risk_factor_rows_show_role_source_and_columns() -> None:
    risk = {
        "factors": [
            {
                "name": "utilisation",
                "label": "credit utilisation",
                "source": "role",
                "role": "bill / limit",
                "columns": ["bill_1", "limit"],
                "direction": "higher_is_riskier",
                "weight": 1.0,
                "weight_share": 0.5,
                "median": 0.4,
                "p95": 0.9,
            },
            {"name": "old", "label": "from an older run", "direction": "lower_is_riskier"},
        ],
        "derived_variables": [
            {
                "name": "payment_ratio",
                "label": "payments",
                "source": "role",
                "role": "payment / bill",
                "columns": ["bill_1", "paid_1"],
                "used": False,
            }
        ],
        "roles": [
            {
                "role": "bill",
                "meaning": "statement (bill) amount",
                "columns": ["bill_1"],
                "declared": True,
            },
            {"role": "income", "meaning": None, "columns": ["annual_income"], "declared": False},
        ],
        "unavailable_factors": {"payment_ratio": 'declare [risk.roles] <column> = "payment"'},
    }
    rows = data.factor_rows(risk)
    assert rows[0] == {
        "factor": "credit utilisation",
        "name": "utilisation",
        "role": "bill / limit",
        "source": "role",
        "reads": "bill_1, limit",
        "riskier when": "higher",
        "weight": 1.0,
        "weight share": 0.5,
        "median": 0.4,
        "p95": 0.9,
    }
    assert (rows[1]["role"], rows[1]["source"], rows[1]["reads"]) == ("-", "-", "-")
    assert rows[1]["riskier when"] == "lower"
    assert data.derived_variable_rows(risk) == [
        {
            "variable": "payments",
            "name": "payment_ratio",
            "role": "payment / bill",
            "source": "role",
            "reads": "bill_1, paid_1",
            "in the model": "no",
        }
    ]
    assert [(r["role"], r["meaning"], r["from"]) for r in data.role_rows(risk)] == [
        ("bill", "statement (bill) amount", "declared"),
        ("income", "-", "canonical column"),
    ]
    assert data.unavailable_factor_rows(risk) == [
        {"factor": "payment_ratio", "why": 'declare [risk.roles] <column> = "payment"'}
    ]
    assert data.factor_rows({}) == data.role_rows({}) == data.unavailable_factor_rows({}) == []


def test_app_without_a_run_says_how_to_name_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.error) == 1
    assert f"set {RUN_DIR_ENV}" in at.error[0].value


@pytest.mark.slow
def test_run_dir_comes_from_arguments_then_environment(run_dir: Path, tmp_path: Path) -> None:
    assert run_dir_from(["--run-dir", str(run_dir)], {}) == run_dir.resolve()
    assert run_dir_from([f"--run-dir={run_dir}"], {RUN_DIR_ENV: str(tmp_path)}) == run_dir.resolve()
    assert run_dir_from(["-x"], {RUN_DIR_ENV: str(run_dir)}) == run_dir.resolve()
    with pytest.raises(ConfigError, match="no run to show"):
        run_dir_from([], {})
    with pytest.raises(RunDirError, match="is not a finished run"):
        require_finished_run(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        require_finished_run(tmp_path / "missing")
    with pytest.raises(RunDirError, match="is not a finished run"):
        launch(tmp_path, port=1)
    with pytest.raises(RunDirError, match="is not a finished run"):
        run_dir_from([], {RUN_DIR_ENV: str(tmp_path)})


@pytest.mark.slow
def test_dashboard_command_runs_streamlit_headless_on_the_port(run_dir: Path) -> None:
    command = dashboard_command(run_dir, port=8599)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)]
    flags = command[: command.index("--")]
    assert flags[flags.index("--server.headless") + 1] == "true"
    assert flags[flags.index("--browser.gatherUsageStats") + 1] == "false"
    assert flags[flags.index("--server.port") + 1] == "8599"
    assert command[command.index("--") + 1 :] == ["--run-dir", str(run_dir)]
    assert Path(command[0]).name.startswith("python")


@pytest.mark.slow
def test_a_run_without_its_report_is_a_finished_run(run_dir: Path) -> None:
    """`run_all` alone builds no report; run.json says so and the dashboard still shows it."""
    report = json.loads(RunLayout(run_dir).run_json.read_text())["report"]
    assert report["status"] == "pending" and "finintel report" in report["reason"]
    assert not RunLayout(run_dir).report_html.exists()
    assert require_finished_run(run_dir) == run_dir.resolve()


# ---------------------------------------------------------------------- a credit table by roles


@pytest.fixture(scope="module")
def roles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Card statements declared by role, without labels (an unsupervised score)."""
    from test_report import write_card_statements  # the report's own credit table by roles

    root = tmp_path_factory.mktemp("dashboard_roles")
    cfg, base = load_config(write_card_statements(root / "data", seed=SEED)["roles"])
    run_all(cfg.model_copy(update={"seed": SEED}), base, root / "run")
    return root / "run"


@pytest.mark.slow
def test_risk_view_shows_each_factors_role_source_and_columns(
    roles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(roles_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT).run()
    page(at, "risk")
    subheaders = [s.value for s in at.subheader]
    assert "Factors" in subheaders and "Columns by role" in subheaders
    assert "Scorecard" not in subheaders
    metrics_risk = json.loads((roles_dir / "metrics.json").read_text())["risk"]
    factors = at.dataframe[1].value
    assert list(factors.columns[:5]) == ["factor", "name", "role", "source", "reads"]
    shown = {row["name"]: row for row in factors.to_dict("records")}
    assert {name: (r["role"], r["source"], r["reads"]) for name, r in shown.items()} == {
        f["name"]: (f["role"], f["source"], ", ".join(f["columns"]))
        for f in metrics_risk["factors"]
    }
    assert shown["utilisation"]["role"] == "bill / limit"
    roles = at.dataframe[2].value
    assert list(roles["role"]) == ["arrears_status", "limit", "bill", "payment"]
    assert set(roles["from"]) == {"declared"}
    unavailable = metrics_risk["unavailable_factors"]
    expander = next(e for e in at.expander if e.label.startswith("Factors left out"))
    assert f"({len(unavailable)})" in expander.label
    table = at.dataframe[3].value
    assert dict(zip(table["factor"], table["why"], strict=True)) == unavailable


# ---------------------------------------------------------------------- a fallback run


@pytest.fixture(scope="module")
def fallback_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bank with its default labels shuffled: no supervised model passes the gate."""
    from test_report import write_shuffled_labels  # the report's own unpredictable labels

    root = tmp_path_factory.mktemp("dashboard_fallback")
    bank = generate_bank(root / "bank", 1000, seed=SEED)
    labels = write_shuffled_labels(bank, root / "shuffled_labels.parquet", seed=SEED)
    cfg = config_for_files(
        str(bank.customers), str(bank.transactions), str(bank.loans), str(labels)
    )
    cfg = cfg.model_copy(
        update={"risk": cfg.risk.model_copy(update={"cv_repeats": 1, "cv_folds": 3})}
    )
    run_all(cfg.model_copy(update={"seed": SEED}), Path.cwd(), root / "run")
    return root / "run"


@pytest.mark.slow
def test_a_fallback_run_shows_the_notice_and_every_candidates_verdict(
    fallback_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(fallback_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT).run()
    assert metrics(at)["Risk score"] == "unsupervised"
    page(at, "risk")
    record = json.loads((fallback_dir / METRICS_JSON).read_text())["risk"]["supervised_fallback"]
    [notice] = [w.value for w in at.warning]
    assert notice.startswith(
        "Default labels were given, but no supervised model passed the gate: the risk score is "
        f"the unsupervised composite of declared risk factors instead ({record['labelled']:,} "
        f"labelled customers, {record['bads']:,} defaults). No supervised model passed the gate"
    )
    subheaders = [s.value for s in at.subheader]
    assert {"Model choice", "Factors", "Protected groups"} <= set(subheaders)
    assert "Cross-validation" not in subheaders and "Scorecard" not in subheaders
    [candidates] = frames_with(at, "ROC-AUC (cross-validated)")
    assert list(candidates["model"]) == KINDS
    assert set(candidates["delivered"]) == {"-"}
    measured = record["model_selection"]["candidates"]
    assert list(candidates["gate"]) == [c["gate"] for c in measured]
    assert "passed" not in set(candidates["gate"])
    scored = read_csv(fallback_dir / SCORED_CSV)
    for frame in frames_with(at, "flagged anomalous"):
        assert sum(int(n.replace(",", "")) for n in frame["customers"]) == len(scored)


# ---------------------------------------------------------------------- a run without risk


@pytest.fixture(scope="module")
def no_risk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Anonymised card components: risk scoring on, skipped because no risk factor applies."""
    root = tmp_path_factory.mktemp("dashboard_no_risk")
    cfg, base = load_config(write_anonymised_cards(root / "data")["auto"])
    run_all(cfg.model_copy(update={"seed": SEED}), base, root / "run")
    return root / "run"


@pytest.fixture
def no_risk_app(no_risk_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv(RUN_DIR_ENV, str(no_risk_dir))
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    yield at


@pytest.mark.slow
def test_the_data_loader_reads_a_run_without_risk(no_risk_dir: Path) -> None:
    summary = data.run_summary(no_risk_dir)
    note = data.risk_off_note(summary)
    assert note and note.startswith("Risk scoring is off: no risk factor can be computed")
    assert "set [risk] enabled = false" in note
    columns = data.scored_columns(no_risk_dir)
    assert not RISK_COLUMNS & set(columns) and "anomaly_score" in columns
    assert data.risk_histogram(no_risk_dir) == {"risk score": [], "customers": []}
    scored = read_csv(no_risk_dir / SCORED_CSV)
    for segment in read_csv(no_risk_dir / SEGMENTS_CSV):
        members = data.segment_members(no_risk_dir, int(segment["segment_id"]))
        assert len(members) == int(segment["size"])
        assert set(members[0]) == {"customer_id", "anomaly_score", "is_anomaly"}
        expected = [r for r in scored if r["segment_id"] == segment["segment_id"]]
        assert {m["customer_id"] for m in members} == {r["customer_id"] for r in expected}
        # riskiest first by the full-precision score (the CSV rounds it to 2 decimals)
        order = [(-float(m["anomaly_score"]), m["customer_id"]) for m in members]
        assert order == sorted(order)
        shown = {r["customer_id"]: float(r["anomaly_score"]) for r in expected}
        assert all(
            abs(round(m["anomaly_score"], 2) - shown[m["customer_id"]]) < 1e-9 for m in members
        )
    planted = f"K{PLANTED[0]:04d}"
    record = data.customer_record(no_risk_dir, planted)
    assert record is not None and record["is_anomaly"] is True
    assert not RISK_COLUMNS & set(record)


@pytest.mark.slow
def test_pages_of_a_run_without_risk_hide_risk_and_say_why(
    no_risk_app: AppTest, no_risk_dir: Path
) -> None:
    at = no_risk_app
    assert not at.exception and not at.error
    assert metrics(at)["Risk score"] == "off"
    assert at.info[0].value.startswith("Risk scoring is off: no risk factor")
    assert "Risk bands" not in [s.value for s in at.subheader]
    assert "mean risk score" not in at.table[0].value.columns
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/risk.py")
    page(at, "segments")
    assert "Mean risk score" not in metrics(at)
    assert not RISK_COLUMNS & set(at.dataframe[1].value.columns)
    # twelve independent components have no segments to find: the page says so first
    note = json.loads((no_risk_dir / METRICS_JSON).read_text())["segments"]["note"]
    assert [w.value for w in at.warning] == [
        f"**These segments are not a stable structure.** {note}"
    ]
    page(at, "customer")
    at.text_input(key="customer_id").input(f"K{PLANTED[0]:04d}").run()
    assert not at.exception
    assert set(metrics(at)) == {"Anomaly score", "Segment"}
    assert any(c.value.startswith("Risk scoring is off") for c in at.caption)
    page(at, "anomalies")
    assert "risk_band" not in at.dataframe[0].value.columns
