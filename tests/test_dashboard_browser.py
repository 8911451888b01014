"""End to end: serve the dashboard with `launch`, render it in headless Chromium, read the page.

Streamlit draws the page in the browser from a websocket, so a plain `--dump-dom` returns the
empty shell. The test drives Chromium over its DevTools protocol instead (the `websockets`
client ships with Streamlit): it polls the rendered text until the run's numbers appear and
saves screenshots to `test-artifacts/`.

Needs the Debian package `chromium` (`/usr/bin/chromium`). Without it the test skips, except on
CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'dashboard' extra (streamlit)")
pytest.importorskip(
    "finintel.report.summary", reason="the dashboard reads the run summary of finintel.report"
)

from websockets.sync.client import ClientConnection, connect

from finintel.config import config_for_files
from finintel.dashboard import launch, stop, wait_until_ready
from finintel.pipeline import run_all
from finintel.run_layout import RunLayout
from finintel.synthetic import generate_bank

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
SEED = 47
RENDER_TIMEOUT = 30.0
CHART_DRAWN = "document.querySelector('.vega-embed canvas, .vega-embed svg') !== null"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = (1400, 1000)
NARROW = 700  # a small laptop window or a tablet: no table may be wider than the page
# How far the page or any table's box reaches past the window's right edge (0: nothing does).
# A table wider than its box scrolls inside it, which is fine; the box itself must fit.
OVERFLOW = """(() => {
  const width = document.documentElement.clientWidth;
  let worst = document.documentElement.scrollWidth - width;
  for (const table of document.querySelectorAll('table, [data-testid="stDataFrame"]')) {
    let box = table;
    while (box.parentElement && getComputedStyle(box).overflowX === 'visible') {
      box = box.parentElement;
    }
    worst = Math.max(worst, Math.ceil(box.getBoundingClientRect().right) - width);
  }
  return worst;
})()"""


def chromium_path() -> str:
    """The Chromium binary; skip without it, but fail on CI, where it must be installed."""
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found is None:
        message = f"headless Chromium is not installed ({CHROMIUM}); apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}. CI=true, so the browser test must run.")
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevTools:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=RENDER_TIMEOUT))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body.innerText")
        return str(result["result"].get("value", ""))

    def wait_for_text(self, expected: list[str]) -> str:
        deadline = time.monotonic() + RENDER_TIMEOUT
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(item in text for item in expected):
                return text
            time.sleep(0.25)
        missing = [item for item in expected if item not in text]
        raise AssertionError(f"the page never showed {missing}; it shows:\n{text[:2000]}")

    def wait_for(self, expression: str) -> None:
        """Wait until the JavaScript `expression` is true on the page."""
        deadline = time.monotonic() + RENDER_TIMEOUT
        while time.monotonic() < deadline:
            result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            if result["result"].get("value") is True:
                return
            time.sleep(0.25)
        raise AssertionError(f"the page never satisfied {expression}")

    def overflow(self) -> int:
        """Pixels by which the page or a table's box reaches past the window (see OVERFLOW)."""
        result = self.call("Runtime.evaluate", expression=OVERFLOW, returnByValue=True)
        return int(result["result"]["value"])

    def screenshot(self, target: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(shot["data"]))
        return target


@contextmanager
def headless_chromium(url: str, profile: Path, size: tuple[int, int] = WIDE) -> Iterator[DevTools]:
    """Chromium showing `url` in a window of `size`, driven over DevTools; the browser ends
    when the block ends."""
    browser = subprocess.Popen(
        [
            chromium_path(),
            *CHROMIUM_FLAGS,
            f"--window-size={size[0]},{size[1]}",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + RENDER_TIMEOUT
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            assert browser.poll() is None, f"chromium ended with exit code {browser.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.load(reply)
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            yield DevTools(socket)
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(10)
        # the browser's helper processes share its session; end any that outlived it
        with suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)


@pytest.mark.slow
def test_dashboard_renders_the_runs_numbers_in_chromium(tmp_path: Path) -> None:
    chromium_path()
    bank = generate_bank(tmp_path / "bank", 1000, seed=SEED)
    run_dir = tmp_path / "run"
    run_all(config_for_files(str(bank.customers), str(bank.transactions)), Path.cwd(), run_dir)
    with RunLayout(run_dir).scored_csv.open(newline="", encoding="utf-8") as handle:
        scored = list(csv.DictReader(handle))
    with RunLayout(run_dir).segments_csv.open(newline="", encoding="utf-8") as handle:
        segments = list(csv.DictReader(handle))

    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = launch(run_dir, port=port, address="127.0.0.1", output=log)
        try:
            url = wait_until_ready(server, port, host="127.0.0.1")
            with headless_chromium(url, tmp_path / "profile") as browser:
                overview = browser.wait_for_text(
                    [
                        "Customers",
                        f"{len(scored):,}",
                        *(segment["segment_name"] for segment in segments),
                        *(f"{int(segment['size']):,}" for segment in segments),
                    ]
                )
                assert "Traceback" not in overview
                shot = browser.screenshot(ARTIFACTS / "dashboard.png")
                print(f"dashboard screenshot: {shot}")

                browser.call("Page.navigate", url=f"{url}/risk")
                risk = browser.wait_for_text(["Bands", "Distribution", "Factors"])
                browser.wait_for(CHART_DRAWN)
                assert "Traceback" not in risk
                print(f"risk page screenshot: {browser.screenshot(ARTIFACTS / 'risk.png')}")
        finally:
            stop(server)
    assert server.returncode is not None
    assert "Traceback" not in log_path.read_text(errors="replace")


@pytest.mark.slow
def test_report_and_dashboard_tables_fit_a_700_pixel_window(tmp_path: Path) -> None:
    chromium_path()
    from finintel.report import build_report

    bank = generate_bank(tmp_path / "bank", 600, seed=SEED)
    run_dir = tmp_path / "run"
    cfg = config_for_files(str(bank.customers), str(bank.transactions), str(bank.loans))
    run_all(cfg, Path.cwd(), run_dir)
    report = build_report(run_dir)
    with RunLayout(run_dir).segments_csv.open(newline="", encoding="utf-8") as handle:
        names = [row["segment_name"] for row in csv.DictReader(handle)]
    with headless_chromium(report.as_uri(), tmp_path / "report-profile", (NARROW, 900)) as page:
        page.wait_for_text(["Customer intelligence report", "Bands and actions"])
        assert page.overflow() <= 0
        # the collapsed tables too: the widest (profiles, columns offered) are in <details>
        page.call(
            "Runtime.evaluate",
            expression="document.querySelectorAll('details').forEach(d => d.open = true)",
        )
        assert page.overflow() <= 0
        print(f"report at 700 px: {page.screenshot(ARTIFACTS / 'report-700.png')}")

    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        server = launch(run_dir, port=port, address="127.0.0.1", output=log)
        try:
            url = wait_until_ready(server, port, host="127.0.0.1")
            size = (NARROW, 900)
            with headless_chromium(url, tmp_path / "dashboard-profile", size) as page:
                text = page.wait_for_text(["Customers", *names])  # the segments table drawn
                assert str(tmp_path) not in text  # the run is named by its folder only
                assert page.overflow() <= 0
                print(f"dashboard at 700 px: {page.screenshot(ARTIFACTS / 'dashboard-700.png')}")
        finally:
            stop(server)
