"""Which run the dashboard shows: `--run-dir RUN` after `--`, or `FININTEL_RUN_DIR`.

Free of Streamlit, so the launcher and the command line can check a run before starting a
server. What counts as a finished run is `finintel.run_layout.require_finished_run`.

Example:
    >>> run_dir_from(["--run-dir", "out/run"], {})  # doctest: +SKIP
    PosixPath('/home/me/out/run')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from finintel.errors import ConfigError
from finintel.run_layout import require_finished_run

RUN_DIR_ENV = "FININTEL_RUN_DIR"
RUN_DIR_ARG = "--run-dir"


def run_dir_from(argv: Sequence[str], environ: Mapping[str, str]) -> Path:
    """The run directory named by `--run-dir RUN` (or `--run-dir=RUN`), else `FININTEL_RUN_DIR`.

    Raises:
        ConfigError: neither names a run.
        RunDirError: the directory named is not a finished run.
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
    return require_finished_run(Path(named))
