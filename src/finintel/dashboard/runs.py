"""Which run the dashboard shows: `--run-dir RUN` after `--`, or `FININTEL_RUN_DIR`.

Free of Streamlit, so the launcher and the command line can check a run before starting a
server.

Example:
    >>> run_dir_from(["--run-dir", "out/run"], {})  # doctest: +SKIP
    PosixPath('/home/me/out/run')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from finintel.errors import ConfigError

RUN_DIR_ENV = "FININTEL_RUN_DIR"
RUN_DIR_ARG = "--run-dir"
SCORED_FILE = "customers_scored.parquet"
SCORED_CSV = "customers_scored.csv"


def run_dir_from(argv: Sequence[str], environ: Mapping[str, str]) -> Path:
    """The run directory named by `--run-dir RUN` (or `--run-dir=RUN`), else `FININTEL_RUN_DIR`.

    Raises:
        ConfigError: neither names a run, or the directory holds no scored customers.
    """
    named: str | None = None
    for index, arg in enumerate(argv):
        if arg == RUN_DIR_ARG and index + 1 < len(argv):
            named = argv[index + 1]
        elif arg.startswith(RUN_DIR_ARG + "="):
            named = arg.split("=", 1)[1]
    if named is None:
        named = environ.get(RUN_DIR_ENV) or None
    if named is None:
        raise ConfigError(f"no run to show: pass {RUN_DIR_ARG} RUN after '--' or set {RUN_DIR_ENV}")
    return check_run_dir(Path(named))


def check_run_dir(run_dir: Path) -> Path:
    """`run_dir` as an absolute path when it holds a finished run's scored customers.

    Raises:
        ConfigError: the directory is missing or holds no customers_scored file.
    """
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} does not exist")
    if not (run_dir / SCORED_FILE).is_file() and not (run_dir / SCORED_CSV).is_file():
        raise ConfigError(
            f"{str(run_dir)!r} is not a finished run: it has no {SCORED_FILE} "
            "(make one with `finintel run ... --out RUN` or `finintel demo`)"
        )
    return run_dir.resolve()
