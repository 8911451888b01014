"""Start the dashboard for a run in its own Streamlit server process, wait for it, stop it.

`launch` returns at once with the server process; `wait_until_ready` polls Streamlit's health
endpoint until the app answers; `serve` does both and blocks until the server ends (what
`finintel dashboard RUN` runs). The server is started as
`python -m streamlit run app.py --server.headless true --browser.gatherUsageStats false
--server.port PORT -- --run-dir RUN`, with `FININTEL_RUN_DIR` set as well.

Example:
    >>> process = launch(Path("out/run"), port=8765)  # doctest: +SKIP
    >>> wait_until_ready(process, 8765)  # doctest: +SKIP
    'http://localhost:8765'
    >>> stop(process)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from finintel.dashboard.runs import RUN_DIR_ARG, RUN_DIR_ENV
from finintel.errors import DashboardStartError, OptionalDependencyError
from finintel.run_layout import require_finished_run

APP_SCRIPT = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501
HEALTH_PATH = "/_stcore/health"


def dashboard_command(
    run_dir: Path, port: int = DEFAULT_PORT, headless: bool = True, address: str | None = None
) -> list[str]:
    """The command line that serves the dashboard of `run_dir` on `port`."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    if address is not None:
        command += ["--server.address", address]
    return [*command, "--", RUN_DIR_ARG, str(run_dir)]


def launch(
    run_dir: Path,
    port: int = DEFAULT_PORT,
    headless: bool = True,
    *,
    address: str | None = None,
    output: IO[bytes] | int | None = None,
) -> subprocess.Popen[bytes]:
    """Start the dashboard server for `run_dir` and return its process without waiting.

    Args:
        run_dir: A finished run directory (see `finintel.run_layout.require_finished_run`).
        port: TCP port to serve on.
        headless: Do not open a browser window.
        address: Interface to listen on (Streamlit's default, all interfaces, when None).
        output: Where the server's stdout and stderr go (inherited when None).

    Raises:
        OptionalDependencyError: Streamlit is not installed.
        RunDirError: `run_dir` is not a finished run.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise OptionalDependencyError("streamlit", "dashboard")
    run_dir = require_finished_run(run_dir)
    env = {**os.environ, RUN_DIR_ENV: str(run_dir)}
    return subprocess.Popen(
        dashboard_command(run_dir, port, headless, address),
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )


def wait_until_ready(
    process: subprocess.Popen[bytes],
    port: int,
    timeout: float = 30.0,
    host: str = "localhost",
) -> str:
    """Poll the server's health endpoint until it answers "ok"; return the app's URL.

    Raises:
        DashboardStartError: the process ended, or `timeout` seconds passed first.
    """
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise DashboardStartError(f"the dashboard server ended with exit code {code}")
        try:
            with urllib.request.urlopen(url + HEALTH_PATH, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise DashboardStartError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """End the server process (terminate, then kill after `timeout` s); return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return int(process.returncode)


def serve(
    run_dir: Path, port: int = DEFAULT_PORT, headless: bool = True, address: str | None = None
) -> int:
    """Serve the dashboard of `run_dir` until the server ends or Ctrl-C; return its exit code."""
    process = launch(run_dir, port, headless, address=address)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return stop(process)
    finally:
        stop(process)
