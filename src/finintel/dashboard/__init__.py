"""The Streamlit dashboard over a finished run (`finintel dashboard RUN`).

Needs the `dashboard` extra (`pip install 'finintel[dashboard]'`). Importing this package does
not import Streamlit; `launch` starts the app in its own process.

Example:
    >>> from finintel.dashboard import launch, stop  # doctest: +SKIP
    >>> process = launch(Path("out/run"), port=8501)  # doctest: +SKIP
    >>> stop(process)  # doctest: +SKIP
"""

from finintel.dashboard.launch import (
    APP_SCRIPT,
    dashboard_command,
    launch,
    serve,
    stop,
    wait_until_ready,
)
from finintel.dashboard.runs import RUN_DIR_ENV, run_dir_from
from finintel.errors import DashboardStartError

__all__ = [
    "APP_SCRIPT",
    "RUN_DIR_ENV",
    "DashboardStartError",
    "dashboard_command",
    "launch",
    "run_dir_from",
    "serve",
    "stop",
    "wait_until_ready",
]
