"""Where every file of a run lives: one name per file, and the one "is this a finished run?" check.

A run directory (`finintel run --out RUN`, `finintel score --out RUN`) holds the validation
files, the features, the results, the metrics, the run record, the model bundle (`model/`)
and the report. Every module that writes or reads a run takes the names from here, so a file
is renamed in one place.

Example:
    >>> from pathlib import Path
    >>> RunLayout(Path("out")).scored_parquet
    PosixPath('out/customers_scored.parquet')
    >>> RunLayout(Path("out")).clean_table("labels")
    PosixPath('out/clean/labels.parquet')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
