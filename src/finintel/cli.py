"""The `finintel` command line: a thin shell that parses options, calls the pipeline, presents.

Errors a user can cause end with a one-paragraph message and exit code 2, never a traceback
(`--debug` shows one for bug reports).

Example:
    $ finintel generate --customers 2000 --out data/ --seed 7
    $ finintel features --customers data/customers.parquet \\
        --transactions data/transactions.parquet --out out/
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from finintel import __version__
from finintel.config import FinintelConfig, config_for_files, load_config
from finintel.errors import ConfigError, FinintelError, OptionalDependencyError
from finintel.pipeline import (
    ModelRun,
    ReportBuilder,
    ReportOutcome,
    add_report,
    run_all,
    run_features,
    run_score,
    run_validation,
)
from finintel.run_layout import PROBABILITY_COLUMN, RunLayout, require_finished_run
from finintel.sql import first_line
from finintel.validate import ValidationResult

app = typer.Typer(
    name="finintel",
    help="Customer and transaction intelligence: validated data, features, risk, anomalies, "
    "segments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
errors = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML mapping config.")]
CustomersOpt = Annotated[
    Path | None, typer.Option(help="Customers file in the canonical layout (CSV/Parquet/JSON).")
]
TransactionsOpt = Annotated[Path | None, typer.Option(help="Transactions file, canonical layout.")]
LoansOpt = Annotated[Path | None, typer.Option(help="Loans file, canonical layout.")]
LabelsOpt = Annotated[Path | None, typer.Option(help="Labels file (customer_id, defaulted).")]
ExtraOpt = Annotated[
    list[str] | None,
    typer.Option("--extra", help="Extra numeric customer column to keep as a feature (repeat)."),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary output.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")]
TodayOpt = Annotated[
    str | None,
    typer.Option("--today", help="Date that counts as today for future-date checks (YYYY-MM-DD)."),
]


def main() -> None:
    """Entry point of the `finintel` script."""
    app()


@contextmanager
def _friendly_errors(debug: bool) -> Iterator[None]:
    try:
        yield
    except FinintelError as exc:
        # messages quote config sections ("[risk] enabled"): text, never console markup
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except duckdb.Error as exc:
        if debug:
            raise
        errors.print(
            f"[bold red]error:[/] the data engine failed: {escape(first_line(exc))} "
            "(run again with --debug for details)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if debug:
            raise
        errors.print(
            f"[bold red]error:[/] {type(exc).__name__}: {escape(first_line(exc))} "
            "(run again with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


@contextmanager
def _steps(quiet: bool) -> Iterator[Callable[[str], None]]:
    if quiet:
        yield lambda _msg: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda msg: progress.update(task, description=msg)


def _load(
    config: Path | None,
    customers: Path | None,
    transactions: Path | None,
    loans: Path | None,
    labels: Path | None,
    extra: list[str] | None,
) -> tuple[FinintelConfig, Path]:
    files = [customers, transactions, loans, labels]
    if config is not None:
        if any(f is not None for f in files) or extra:
            raise ConfigError("give either --config or the data files, not both")
        return load_config(config)
    if customers is None and transactions is None:
        raise ConfigError("give --config CFG, or --customers and/or --transactions files")
    paths = [str(f) if f else None for f in files]
    cfg = config_for_files(paths[0], paths[1], paths[2], paths[3], extra_columns=extra)
    return cfg, Path.cwd()


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date in YYYY-MM-DD form") from None


def _print_validation(result: ValidationResult, out: Path) -> None:
    counts = Table(title="Validation: rows in = clean + quarantined", title_justify="left")
    counts.add_column("table")
    counts.add_column("source")
    for col in ("rows in", "clean", "quarantined", "nulled"):
        counts.add_column(col, justify="right")
    rules = Table(title="Quarantined rows by rule", title_justify="left")
    rules.add_column("table")
    rules.add_column("rule")
    rules.add_column("rows", justify="right")
    for report in result.reports.values():
        counts.add_row(
            report.table,
            report.source if report.derived else Path(report.source).name,
            "-" if report.derived else f"{report.rows_in:,}",
            f"{report.clean:,}",
            f"{report.quarantined:,}",
            f"{sum(report.nulled.values()):,}",
        )
        for rule, n in sorted(report.by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            rules.add_row(report.table, rule, f"{n:,}")
    console.print(counts)
    if rules.row_count:
        console.print(rules)
    console.print(f"Rejected rows with reasons: {RunLayout(out).rejects_csv}")


@app.command()
def validate(
    out: OutOpt,
    config: ConfigOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    loans: LoansOpt = None,
    labels: LabelsOpt = None,
    extra: ExtraOpt = None,
    today: TodayOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Validate input data: clean tables, quarantined rows with reasons, validation.json."""
    with _friendly_errors(debug):
        cfg, base = _load(config, customers, transactions, loans, labels, extra)
        with _steps(quiet) as step:
            run = run_validation(cfg, base, out, _parse_date(today, "--today"), step)
        if not quiet:
            _print_validation(run.result, out)


@app.command()
def features(
    out: OutOpt,
    config: ConfigOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    loans: LoansOpt = None,
    labels: LabelsOpt = None,
    extra: ExtraOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reference date (default: last transaction).")
    ] = None,
    today: TodayOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Validate, then build one feature row per customer (features.parquet and features.csv)."""
    with _friendly_errors(debug):
        cfg, base = _load(config, customers, transactions, loans, labels, extra)
        as_of_date = _parse_date(as_of, "--as-of")
        if as_of_date is not None:
            cfg = cfg.model_copy(
                update={"features": cfg.features.model_copy(update={"as_of": as_of_date})}
            )
        with _steps(quiet) as step:
            run = run_features(cfg, base, out, _parse_date(today, "--today"), step)
        if not quiet:
            _print_validation(run.validation.result, out)
            console.print(
                f"Features: {run.n_customers:,} customers x {len(run.plan.features)} base "
                f"features as of {run.plan.as_of} -> {run.features_path}"
            )
            if run.plan.omitted:
                console.print(
                    f"Not computed (data lacks what they need): "
                    f"{', '.join(sorted(run.plan.omitted))}",
                    style="dim",
                )


@app.command()
def generate(
    out: OutOpt,
    n_customers: Annotated[
        int, typer.Option("--customers", "-n", min=1, help="Customers.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    tx_per_customer: Annotated[
        float, typer.Option("--tx-per-customer", min=0.1, help="Average transactions.")
    ] = 20.0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    clean: Annotated[bool, typer.Option("--clean", help="Plant no dirty rows.")] = False,
    scenario: Annotated[
        str,
        typer.Option(help="Bank design: default, or a scenario of docs/quality.md."),
    ] = "default",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Generate a synthetic bank: customers, transactions, loans, and ground truth under truth/."""
    from finintel.scenarios import SCENARIOS
    from finintel.synthetic import DEFAULT_DESIGN, generate_bank

    with _friendly_errors(debug):
        if fmt not in ("parquet", "csv"):
            raise ConfigError(f"--format must be parquet or csv, not {fmt!r}")
        if scenario != "default" and scenario not in SCENARIOS:
            raise ConfigError(
                f"--scenario must be default or one of {', '.join(sorted(SCENARIOS))}, "
                f"not {scenario!r}"
            )
        file_format: Literal["parquet", "csv"] = "parquet" if fmt == "parquet" else "csv"
        kwargs: dict[str, Any] = {
            "tx_per_customer": tx_per_customer,
            "fmt": file_format,
            "dirty_rows": not clean,
            "design": SCENARIOS.get(scenario, DEFAULT_DESIGN),
        }
        if quiet:
            bank = generate_bank(out, n_customers, seed, **kwargs)
        else:
            with Progress(
                TextColumn("generating"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} customers"),
                TimeElapsedColumn(),
                console=errors,
                transient=True,
            ) as progress:
                task = progress.add_task("generate", total=n_customers)
                bank = generate_bank(
                    out,
                    n_customers,
                    seed,
                    progress=lambda done: progress.update(task, completed=done),
                    **kwargs,
                )
            console.print(
                f"Wrote {bank.n_customers:,} customers, {bank.n_transactions:,} transactions and "
                f"{bank.n_loans:,} loans to {out} (ground truth in {out / 'truth'})"
            )


SeedOpt = Annotated[int | None, typer.Option(help="Random seed (default: the config's, 42).")]


def _with_seed(cfg: FinintelConfig, seed: int | None) -> FinintelConfig:
    """The config with `--seed` applied: the one seed the run records everywhere."""
    return cfg if seed is None else cfg.model_copy(update={"seed": seed})


def _print_run(run: ModelRun) -> None:
    summary = run.summary
    risk_off = run.fitted.risk_off
    console.print(_segments_table(run))
    _print_segment_note(run.metrics.get("segments") or {})
    if risk_off is not None:
        console.print(_sentence(risk_off.headline), markup=False, highlight=False, soft_wrap=True)
    else:
        _print_model_choice(run.metrics.get("risk") or {})
        console.print(_bands_table(run))
        note = BANDS_NOTE
        if PROBABILITY_COLUMN in run.scored.table.column_names:
            note += " " + PD_NOTE
        console.print(note, style="dim", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"Anomalous customers: {summary['anomalies']:,} of {summary['customers_scored']:,}; "
        f"transaction alerts: {summary['transaction_alerts']:,}"
    )
    layout = RunLayout(run.out_dir)
    files = {
        "Scored customers": layout.scored_csv,
        "Segments": layout.segments_csv,
        "Transaction alerts": layout.alerts_csv,
        "Rejected rows": layout.rejects_csv,
        "Run record": layout.run_json,
        "Metrics": layout.metrics_json,
        "Model bundle": layout.model_dir,
    }
    for label, path in files.items():
        if path.exists():
            # one file a line, never wrapped inside a path, so it can be copied whole
            console.print(f"{label}: {path}", soft_wrap=True, highlight=False)


BANDS_NOTE = (
    "The risk score is a customer's percentile in the population the model was fitted on, so "
    'each band holds a fixed share of that population ("of fitted"; Critical with the default '
    "bands = the top 10% by risk score): the cut points are percentiles, not values of the "
    "model's raw risk."
)
PD_NOTE = '"PD ≥" is the lowest probability of default among the band\'s customers.'


def _segments_table(run: ModelRun) -> Table:
    """Segment sizes of this batch; the fitted population's sizes beside them when they differ
    (`finintel score` on other customers than the model was fitted on)."""
    segments = run.summary["segments"]
    training = {int(p.id): (int(p.size), float(p.share)) for p in run.scored.segments}
    differs = any(
        training.get(int(seg["segment_id"]), (None,))[0] != seg["size"] for seg in segments
    )
    table = Table(title="Segments", title_justify="left")
    for col, justify in (("id", "right"), ("persona", "left"), ("customers", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("share", justify="right")
    if differs:
        table.add_column("fitted on", justify="right")
        table.add_column("fitted share", justify="right")
    for seg in segments:
        cells = [
            str(seg["segment_id"]),
            seg["segment_name"],
            f"{seg['size']:,}",
            f"{seg['share']:.1%}",
        ]
        if differs:
            size, share = training.get(int(seg["segment_id"]), (0, 0.0))
            cells += [f"{size:,}", f"{share:.1%}"]
        table.add_row(*cells)
    return table


def _bands_table(run: ModelRun) -> Table:
    """Customers per band, with each band's score cut point (a percentile of the fitted
    population), the fixed share of that population it holds and, for a supervised model, the
    lowest probability of default among the band's customers."""
    assert run.fitted.risk is not None
    configured = run.fitted.risk.settings.bands
    counts = run.summary["risk_bands"]
    total = sum(counts.values())
    table_data = run.scored.table
    lowest_pd: dict[str, float] = {}
    if PROBABILITY_COLUMN in table_data.column_names:
        bands = table_data.column("risk_band").to_pylist()
        for band, pd in zip(bands, table_data.column(PROBABILITY_COLUMN).to_pylist(), strict=True):
            if pd is not None and math.isfinite(pd):
                lowest_pd[band] = min(pd, lowest_pd.get(band, pd))
    table = Table(
        title="Risk bands (score: percentile in the fitted population)", title_justify="left"
    )
    table.add_column("band")
    table.add_column("score ≥", justify="right")
    table.add_column("of fitted", justify="right")
    if lowest_pd:
        table.add_column("PD ≥", justify="right")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    table.add_column("action")
    edges = [b.min_score for b in configured] + [100.0]
    for band, upper in zip(configured, edges[1:], strict=True):
        n = counts.get(band.name, 0)
        cells = [
            band.name,
            f"{band.min_score:g}",
            f"{(upper - band.min_score) / 100:.0%}",
        ]
        if lowest_pd:
            pd = lowest_pd.get(band.name)
            cells.append("-" if pd is None else f"{pd:.2%}")
        cells += [f"{n:,}", f"{n / total:.1%}" if total else "-", band.action]
        table.add_row(*cells)
    return table


def _print_model_choice(risk: dict[str, Any]) -> None:
    """The supervised candidates' cross-validated ROC-AUC and which one was delivered, why."""
    selection = risk.get("model_selection") or (risk.get("supervised_fallback") or {}).get(
        "model_selection"
    )
    if not selection:
        return
    table = Table(title="Supervised risk models (cross-validated)", title_justify="left")
    for col, justify in (("model", "left"), ("ROC-AUC", "right"), ("spread", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("verdict")
    for row in selection["candidates"]:
        verdict = "delivered" if row["delivered"] else row["gate"]
        table.add_row(row["model"], f"{row['roc_auc']:.3f}", f"{row['roc_auc_std']:.3f}", verdict)
    console.print(table)
    if selection.get("delivered"):
        console.print(
            _sentence(selection["reason"]) + ".", markup=False, highlight=False, soft_wrap=True
        )


def _warn_supervised_fallback(run: ModelRun) -> None:
    """Labels were given but no supervised model passed the gate: a warning, also under --quiet."""
    fallback = (run.metrics.get("risk") or {}).get("supervised_fallback")
    if not fallback:
        return
    errors.print(
        f"[bold yellow]warning:[/] {escape(fallback['reason'])}.",
        highlight=False,
        soft_wrap=True,
    )


UNSTABLE_SEGMENTS = "Segments not stable:"


def _print_segment_note(metrics: dict[str, Any]) -> None:
    """The segmenter's sentence on how far its segments can be trusted, under the table.

    Segments that are not a stable structure get a highlighted line; stable ones their
    sentence, dimmed; a bundle fitted before the segmenter gave a verdict, nothing.
    """
    note = metrics.get("note")
    stable = metrics.get("stable")
    if stable is False:
        text = note or "No number of segments was stable: the segments are a partition only."
        console.print(
            f"[bold yellow]{UNSTABLE_SEGMENTS}[/] {escape(text)}",
            highlight=False,
            soft_wrap=True,
        )
    elif stable is True and note:
        console.print(note, style="dim", markup=False, highlight=False, soft_wrap=True)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _warn_risk_off(run: ModelRun) -> None:
    """Risk scoring skipped because no risk factor applies: a warning, also under --quiet.

    Switched off in the config (`[risk] enabled = false`), it is no warning: the summary says so.
    """
    risk_off = run.fitted.risk_off
    if risk_off is None or not risk_off.automatic:
        return
    errors.print(
        f"[bold yellow]warning:[/] {escape(risk_off.warning)}", highlight=False, soft_wrap=True
    )


def _report_builder(required: bool = False) -> ReportBuilder | None:
    """`finintel.report.build_report`, or None without the report extra (an error if required)."""
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        if required:
            raise OptionalDependencyError(exc.name or "matplotlib", "report") from None
        return None
    from finintel.report import build_report

    return build_report


def _print_report(report: ReportOutcome) -> None:
    if report.built:
        console.print(f"Report: {report.path}", soft_wrap=True, highlight=False)
    elif report.status == "skipped":
        console.print(f"Report not built: {report.reason}", style="dim")


def _warn_report(report: ReportOutcome, run_dir: Path, debug: bool) -> None:
    """A report that failed is a warning (the results are complete), also under --quiet."""
    if report.status != "failed":
        return
    if debug and report.error is not None:
        errors.print("".join(traceback.format_exception(report.error)), highlight=False)
    errors.print(
        f"[bold yellow]warning:[/] the report was not built: {escape(report.reason or '')}. "
        "The result files are complete; run.json records why (try again with "
        f"`finintel report {run_dir}`)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def run(
    out: OutOpt,
    config: ConfigOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    loans: LoansOpt = None,
    labels: LabelsOpt = None,
    extra: ExtraOpt = None,
    seed: SeedOpt = None,
    today: TodayOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run everything: validate, features, risk, anomalies, segments, results and model bundle."""
    with _friendly_errors(debug):
        cfg, base = _load(config, customers, transactions, loans, labels, extra)
        cfg = _with_seed(cfg, seed)
        with _steps(quiet) as step:
            result = run_all(cfg, base, out, today=_parse_date(today, "--today"), progress=step)
            report = add_report(out, _report_builder(), step)
        _warn_risk_off(result)
        _warn_supervised_fallback(result)
        if not quiet:
            _print_validation(result.features.validation.result, out)
            _print_run(result)
            _print_report(report)
        _warn_report(report, out, debug)


@app.command()
def score(
    model: Annotated[Path, typer.Option("--model", "-m", help="The model/ directory of a run.")],
    out: OutOpt,
    config: ConfigOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    loans: LoansOpt = None,
    today: TodayOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Apply a saved model bundle to new data (no refitting), writing the same result files."""
    with _friendly_errors(debug):
        from finintel.bundle import load_bundle

        extras = list(load_bundle(model).manifest["feature_plan"]["extra_columns"])
        if config is not None:
            cfg, base = _load(config, customers, transactions, loans, None, None)
        else:
            cfg, base = _load(config, customers, transactions, loans, None, extras or None)
        with _steps(quiet) as step:
            result = run_score(
                model, cfg, base, out, today=_parse_date(today, "--today"), progress=step
            )
            report = add_report(out, _report_builder(), step)
        if not quiet:
            _print_validation(result.features.validation.result, out)
            _print_run(result)
            _print_report(report)
        _warn_report(report, out, debug)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "demo-output"
    ),
    n_customers: Annotated[
        int, typer.Option("--customers", "-n", min=200, help="Synthetic customers.")
    ] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed for data and models.")] = 42,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Generate a synthetic bank, run everything on it, and compare with the planted truth."""
    from finintel.evaluation import evaluate_against_truth
    from finintel.synthetic import generate_bank
    from finintel.writers import write_json

    with _friendly_errors(debug):
        with _steps(quiet) as step:
            step(f"generating a synthetic bank of {n_customers:,} customers")
            bank = generate_bank(out / "bank", n_customers, seed)
            cfg = config_for_files(
                str(bank.customers),
                str(bank.transactions),
                str(bank.loans),
                None,
                domain="retail_bank",  # a synthetic retail bank
            )
            result = run_all(_with_seed(cfg, seed), Path.cwd(), out / "run", progress=step)
            step("comparing with the planted truth")
            truth = evaluate_against_truth(out / "run", out / "bank")
            write_json(RunLayout(out / "run").evaluation_json, truth)
            report = add_report(out / "run", _report_builder(), step)
        if not quiet:
            console.print(
                f"Synthetic bank: {bank.n_customers:,} customers, {bank.n_transactions:,} "
                f"transactions, {bank.n_loans:,} loans in {out / 'bank'}"
            )
            _print_run(result)
            seg, anom, risk = truth["segments"], truth["anomalies"], truth["risk"]
            console.print(
                "Against the planted truth: segments ARI "
                f"{seg['adjusted_rand_index']:.2f} ({seg['segments_found']} found, "
                f"{seg['planted_personas']} planted); anomalies PR-AUC {anom['pr_auc']:.2f} "
                f"({anom['planted_among_flagged']} of {anom['planted']} planted among "
                f"{anom['flagged']} flagged); risk ROC-AUC {risk['roc_auc']:.2f} without labels"
            )
            tx = truth["transaction_alerts"]
            recall = ", ".join(
                f"{kind.replace('_', ' ')} {share:.0%}"
                for kind, share in tx["recall_by_kind"].items()
            )
            console.print(
                f"Transaction alerts: {tx['planted_among_alerts']} of {tx['planted']} planted "
                f"transactions among {tx['alerts']:,} alerts (caught: {recall})"
            )
            _print_report(report)
        _warn_report(report, out / "run", debug)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (finintel run --out).")],
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Rebuild report.html, its plots and summary.json from a run's files."""
    with _friendly_errors(debug):
        require_finished_run(run_dir)
        build = _report_builder(required=True)
        with _steps(quiet) as step:
            outcome = add_report(run_dir, build, step)
        if outcome.error is not None:
            raise outcome.error
        if not quiet:
            console.print(f"Report: {outcome.path}")


@app.command()
def dashboard(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (finintel run --out).")],
    port: Annotated[int, typer.Option(help="TCP port to serve on.")] = 8501,
    headless: Annotated[
        bool, typer.Option("--headless/--no-headless", help="Do not open a browser window.")
    ] = True,
    debug: DebugOpt = False,
) -> None:
    """Start the interactive dashboard over a run (needs the dashboard extra)."""
    with _friendly_errors(debug):
        from finintel.dashboard import serve

        run = require_finished_run(run_dir)
        console.print(f"Dashboard for {run} at http://localhost:{port} (Ctrl-C to stop)")
        code = serve(run, port, headless)
        if code not in (0, -2, 130):
            raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


if __name__ == "__main__":  # pragma: no cover
    main()
