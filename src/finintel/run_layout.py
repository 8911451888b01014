"""Where every file of a run lives, the columns of its result files, and what a finished run is.

A run directory (`finintel run --out RUN`, `finintel score --out RUN`) holds the validation
files, the features, the results, the metrics, the run record, the model bundle (`model/`)
and the report. Every module that writes or reads a run takes the file names and the result
columns from here, so a file or a column is renamed in one place.

A run is finished when `customers_scored.parquet` and `run.json` are there: the pipeline
writes `run.json` after every result file and before the report, which is best effort
(`require_finished_run`).

Example:
    >>> from pathlib import Path
    >>> RunLayout(Path("out")).scored_parquet
    PosixPath('out/customers_scored.parquet')
    >>> RunLayout(Path("out")).clean_table("labels")
    PosixPath('out/clean/labels.parquet')
    >>> scored_output_columns(supervised=False)[:2]
    ('risk_score', 'risk_band')
    >>> scored_output_columns(supervised=False, risk=False)[0]
    'anomaly_score'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finintel.errors import RunDirError

CLEAN_DIR = "clean"
REJECTS_CSV = "rejects.csv"
REJECTS_PARQUET = "rejects.parquet"
NULLED_CSV = "nulled_values.csv"
VALIDATION_JSON = "validation.json"
FEATURES_PARQUET = "features.parquet"
FEATURES_CSV = "features.csv"
FEATURES_JSON = "features.json"
SCORED_PARQUET = "customers_scored.parquet"
SCORED_CSV = "customers_scored.csv"
SEGMENTS_CSV = "segments.csv"
ALERTS_CSV = "transaction_alerts.csv"
METRICS_JSON = "metrics.json"
RUN_JSON = "run.json"
EVALUATION_JSON = "evaluation.json"
MODEL_DIR = "model"
MANIFEST_JSON = "manifest.json"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"

# The files whose presence marks a finished run, in the order they are checked.
FINISHED_RUN_FILES = (SCORED_PARQUET, RUN_JSON)

# customers_scored: `customer_id`, the feature columns, then the model outputs in this order.
# A run without a risk score (`[risk] enabled = false`, or no risk factor applies) has no risk
# columns at all, rather than empty ones: a blank score could be read as "no risk".
CUSTOMER_ID = "customer_id"
RISK_OUTPUT_COLUMNS = ("risk_score", "risk_band", "risk_action", "risk_reasons")
PROBABILITY_COLUMN = "probability_of_default"  # only when the risk score is supervised
ANOMALY_OUTPUT_COLUMNS = ("anomaly_score", "is_anomaly", "anomaly_reasons")
SEGMENT_OUTPUT_COLUMNS = ("segment_id", "segment_name")
# every model output column a run can have, in file order
SCORED_OUTPUT_COLUMNS = (
    *RISK_OUTPUT_COLUMNS,
    PROBABILITY_COLUMN,
    *ANOMALY_OUTPUT_COLUMNS,
    *SEGMENT_OUTPUT_COLUMNS,
)

# segments.csv: these columns, then one `profile_<feature>` per segmentation feature.
SEGMENTS_CSV_COLUMNS = ("segment_id", "segment_name", "size", "share", "description", "actions")
PROFILE_PREFIX = "profile_"

# transaction_alerts.csv, one row per flagged transaction, highest alert_score first.
ALERTS_CSV_COLUMNS = (
    "transaction_id",
    "customer_id",
    "timestamp",
    "amount",
    "direction",
    "channel",
    "category",
    "segment_id",
    "alert_score",
    "reasons",
)


def scored_output_columns(supervised: bool, risk: bool = True) -> tuple[str, ...]:
    """The model output columns of customers_scored, in file order, after the features.

    `risk=False` (a run without a risk score) leaves out every risk column.

    Example:
        >>> scored_output_columns(supervised=True)[4]
        'probability_of_default'
        >>> PROBABILITY_COLUMN in scored_output_columns(supervised=False)
        False
        >>> scored_output_columns(supervised=False, risk=False)
        ('anomaly_score', 'is_anomaly', 'anomaly_reasons', 'segment_id', 'segment_name')
    """
    if not risk:
        risk_columns = {*RISK_OUTPUT_COLUMNS, PROBABILITY_COLUMN}
        return tuple(c for c in SCORED_OUTPUT_COLUMNS if c not in risk_columns)
    if supervised:
        return SCORED_OUTPUT_COLUMNS
    return tuple(c for c in SCORED_OUTPUT_COLUMNS if c != PROBABILITY_COLUMN)


def require_finished_run(path: Path | str) -> Path:
    """`path` as an absolute path when it is a finished run directory.

    Raises:
        RunDirError: the directory does not exist, or lacks `customers_scored.parquet` or
            `run.json`; the message names the directory, the file and how to make a run.

    Example:
        >>> require_finished_run("no/such/run")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        finintel.errors.RunDirError: 'no/such/run' is not a finished run: the directory does ...
    """
    run_dir = Path(path)
    how = "(make one with `finintel run ... --out RUN` or `finintel demo`)"
    if not run_dir.is_dir():
        raise RunDirError(
            f"{str(run_dir)!r} is not a finished run: the directory does not exist {how}"
        )
    for name in FINISHED_RUN_FILES:
        if not (run_dir / name).is_file():
            raise RunDirError(f"{str(run_dir)!r} is not a finished run: {name} is missing {how}")
    return run_dir.resolve()


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory's files."""

    root: Path

    def clean_table(self, table: str) -> Path:
        """The clean Parquet file of a canonical table (customers, transactions, ...)."""
        return self.root / CLEAN_DIR / f"{table}.parquet"

    @property
    def rejects_csv(self) -> Path:
        return self.root / REJECTS_CSV

    @property
    def rejects_parquet(self) -> Path:
        return self.root / REJECTS_PARQUET

    @property
    def nulled_csv(self) -> Path:
        return self.root / NULLED_CSV

    @property
    def validation_json(self) -> Path:
        return self.root / VALIDATION_JSON

    @property
    def features_parquet(self) -> Path:
        return self.root / FEATURES_PARQUET

    @property
    def features_csv(self) -> Path:
        return self.root / FEATURES_CSV

    @property
    def features_json(self) -> Path:
        return self.root / FEATURES_JSON

    @property
    def scored_parquet(self) -> Path:
        return self.root / SCORED_PARQUET

    @property
    def scored_csv(self) -> Path:
        return self.root / SCORED_CSV

    @property
    def segments_csv(self) -> Path:
        return self.root / SEGMENTS_CSV

    @property
    def alerts_csv(self) -> Path:
        return self.root / ALERTS_CSV

    @property
    def metrics_json(self) -> Path:
        return self.root / METRICS_JSON

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def evaluation_json(self) -> Path:
        return self.root / EVALUATION_JSON

    @property
    def model_dir(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def summary_json(self) -> Path:
        return self.root / SUMMARY_JSON

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def plots_dir(self) -> Path:
        return self.root / PLOTS_DIR
