"""`spillover report`: one self-contained HTML file per run folder, checked as text and in a real
headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.backtest import run_backtest
from agent.cli import app
from agent.config import Config, DataConfig
from agent.marketdata.sample import write_sample
from agent.report import ReportError, load_run, write_report

runner = CliRunner()
# A window of the sample data with a confirmed breakout, its stages and its expiry.
START, END = pd.Timestamp("2016-09-01"), pd.Timestamp("2017-03-31")
CHARTS = ("chart-equity", "chart-index", "chart-exposure", "chart-drawdown")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Config:
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, 7)
    return Config(data=DataConfig(source="replay", dir=folder))


@pytest.fixture(scope="module")
def backtest_dir(sample: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backtest")
    run_backtest(sample, out, start=START, end=END)
    return out


@pytest.fixture(scope="module")
def report_file(backtest_dir: Path) -> Path:
    result = runner.invoke(app, ["report", str(backtest_dir)])
    assert result.exit_code == 0, result.output
    path = backtest_dir / "report.html"
    assert result.output.strip() == f"wrote {path}"
    return path


class _Links(HTMLParser):
    """Every src and href of the page's elements (script bodies are not elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def test_report_of_a_backtest_has_every_section_and_no_external_link(report_file, backtest_dir):
    text = report_file.read_text()
    page = _Links()
    page.feed(text)
    assert set(CHARTS) | {"metrics-table", "decisions", "decision-search"} <= page.ids
    assert [link for link in page.links if not link.startswith("#")] == []
    assert "cdn.plot.ly" not in text.split("</head>")[1]  # only the bundle itself may name it
    assert "Plotly.newPlot" in text
    assert len(text) > 3_000_000  # the plotly.js bundle is inlined
    summary = json.loads((backtest_dir / "summary.json").read_text())
    rows = text.split('id="metrics-table"')[1].split("</table>")[0]
    assert f"{summary['metrics']['total_return']:.1%}" in rows
    assert f"{summary['benchmark']['total_return']:.1%}" in rows
    decisions = [
        json.loads(line)
        for line in (backtest_dir / "decisions.jsonl").read_text().splitlines()
        if '"event": "decision"' in line
    ]
    table = text.split('id="decisions"')[1]
    assert table.count("<tr class=") == len(decisions)
    clamped = next(d for d in decisions if d["clamps"])
    assert clamped["clamps"][0]["rule"] in table


def test_each_decision_row_shows_the_orders_and_fills_that_followed(backtest_dir, report_file):
    records = [json.loads(line) for line in (backtest_dir / "decisions.jsonl").open()]
    rows = report_file.read_text().split('id="decisions"')[1].split("<tr class=")[1:]
    by_id = {row.split("<td>")[-1].split("</td>")[0]: row for row in rows}
    orders = [r for r in records if r["event"] == "order"]
    fills = [r for r in records if r["event"] == "fill"]
    assert orders
    assert fills
    for order in orders:
        row = by_id[order["decision_id"]]
        assert order["client_order_id"] in row
        assert f"{order['side']} {order['amount']:.6g} {order['asset']}: {order['status']}" in row
    for fill in fills:
        row = by_id[fill["decision_id"]]
        assert f"fill {fill['trade_id']}: {fill['amount']:.6g} @ {fill['price']:.6g}" in row
        assert f"fee {fill['fee']:.6g}" in row
    quiet = next(r for r in records if r["event"] == "decision" and not r["orders"])
    assert '<div class="order">' not in by_id[quiet["decision_id"]]


def test_report_reads_the_index_closes_and_states_from_the_decisions(backtest_dir):
    run = load_run(backtest_dir)
    equity = pd.read_csv(backtest_dir / "equity.csv", parse_dates=["date"]).set_index("date")
    assert run.source == "equity.csv"
    assert run.assets == ["BTC", "ETH", "SOL", "XRP"]
    pd.testing.assert_series_equal(run.equity["equity"], equity["equity"], check_names=False)
    assert (run.ticks["state"].reindex(equity.index) == equity["state"]).all()
    assert (run.ticks["stage"].reindex(equity.index) == equity["stage"]).all()
    assert run.index["close"].notna().all()
    assert run.index.index.is_monotonic_increasing
    assert {"candidate", "confirmed", "expired"} <= set(run.ticks["state"])


def test_report_of_a_testnet_style_folder_uses_the_store_and_skips_torn_lines(sample, tmp_path):
    folder = tmp_path / "testnet"
    run_backtest(sample, folder, start=START, end=END, mode="run")
    expected = pd.read_csv(folder / "equity.csv", parse_dates=["date"]).set_index("date")
    (folder / "equity.csv").unlink()
    (folder / "summary.json").unlink()
    with (folder / "decisions.jsonl").open("a") as journal:
        journal.write('{"ts": "2017-04-0')  # torn by a crash
    run = load_run(folder)
    assert run.source == "state.sqlite"
    assert len(run.skipped) == 1
    assert run.skipped[0].startswith("line ")
    pd.testing.assert_series_equal(
        run.equity["equity"], expected["equity"], check_names=False, rtol=1e-9
    )
    pd.testing.assert_series_equal(
        run.equity["BTC_value"], expected["BTC_value"], check_names=False, rtol=1e-9
    )
    assert run.metrics["total_return"] == pytest.approx(
        expected["equity"].iloc[-1] / expected["equity"].iloc[0] - 1
    )
    assert run.metrics["orders"] > 0
    out = tmp_path / "elsewhere" / "r.html"
    result = runner.invoke(app, ["report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Skipped 1 unreadable journal line" in out.read_text()


@pytest.mark.parametrize("files", [[], ["heartbeat.json"], ["decisions.jsonl"]])
def test_a_folder_with_nothing_to_report_is_one_line_and_exit_2(tmp_path, files):
    for name in files:
        (tmp_path / name).write_text("")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ")
    assert "nothing to report" in result.output
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(ReportError):
        write_report(tmp_path / "missing")


# -- in a real browser ------------------------------------------------------------------------

_CHECK = """(() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  const box = document.getElementById('decision-search');
  const count = document.getElementById('decision-count');
  const before = count.textContent;
  function search(words) {
    box.value = words;
    box.dispatchEvent(new Event('input'));
    const shown = Array.from(document.querySelectorAll('#decisions tbody tr'))
      .filter(r => !r.hidden);
    return {count: count.textContent, text: shown.map(r => r.textContent)};
  }
  const after = search('confirmed stage 1').count;
  const order = search(SEARCH);
  search('');
  const drawdown = document.getElementById('chart-drawdown');
  const layout = drawdown._fullLayout || {};
  const lowest = t => Math.min.apply(null, Array.from(t.y || []).filter(v => v !== null));
  return {
    plots: plots.map(p => ({
      id: p.id,
      traces: (p.data || []).length,
      points: (p.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0),
      svgs: p.querySelectorAll('svg.main-svg').length,
      lines: Array.from(p.querySelectorAll('.scatterlayer path.js-line'))
        .filter(e => (e.getAttribute('d') || '').length > 20).length,
      width: p.getBoundingClientRect().width,
    })),
    rows: document.querySelectorAll('#decisions tbody tr').length,
    fills: document.querySelectorAll('#decisions .fill').length,
    before: before,
    after: after,
    order: order,
    drawdown: (drawdown._fullData || []).map(t => ({
      axis: t.yaxis, lowest: lowest(t),
      range: (layout[(t.yaxis || 'y').replace('y', 'yaxis')] || {}).range,
    })),
    height: document.documentElement.scrollHeight,
  };
})()"""


class _DevTools:
    """The few DevTools-protocol calls the check needs, over one websocket to one page."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self.next_id = 0

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(
                json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            )

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and any request that is not
        to a local file (the report must need no network)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "blob:", "about:")):
                    found.append(f"network request: {url}")
        return found


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


def _start_chromium(binary: str, profile: Path) -> tuple[subprocess.Popen, str]:
    """Chromium headless with a fresh profile and nothing that calls home; DevTools on a free
    loopback port, which Chromium writes to `DevToolsActivePort` in the profile."""
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-quic",
            "--disable-sync",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            err = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
            pytest.fail(f"chromium did not start its DevTools endpoint: {err}")
        time.sleep(0.1)
    port = port_file.read_text().splitlines()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
        targets = json.load(answer)
    page = next(t for t in targets if t["type"] == "page")
    return process, page["webSocketDebuggerUrl"]


def _artifacts() -> Path:
    default = Path(tempfile.gettempdir()) / "spillover-artifacts"
    folder = Path(os.environ.get("SPILLOVER_ARTIFACTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_in_chromium(report: Path, screenshot: Path, search: str = "") -> dict[str, Any]:
    """Open `report` in headless Chromium and return what the page drew; save a full-page PNG.

    How: Chromium is started with `--remote-debugging-port=0` and driven over the DevTools
    protocol with the `websockets` client (already installed with alpaca-py; a dev dependency
    too), no browser-automation framework. Runtime, Log and Network events are recorded from
    before the navigation, so console errors, uncaught exceptions and any non-file request are
    seen; after the load event the check polls a script that reads each `.js-plotly-plot` div's
    `data` (the traces plotly.js was given) and the SVG it drew, the drawdown chart's axes, and
    exercises the search box (with `search`, and with other words).
    """
    from websockets.sync.client import connect

    binary = _chromium()
    profile = Path(tempfile.mkdtemp(prefix="spillover-chromium-"))
    process, url = _start_chromium(binary, profile)
    try:
        with connect(url, max_size=None, open_timeout=10) as socket:
            return _check(_DevTools(socket), report, screenshot, search)
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _check(tools: _DevTools, report: Path, screenshot: Path, search: str) -> dict[str, Any]:
    check = _CHECK.replace("SEARCH", json.dumps(search))
    for domain in ("Runtime", "Log", "Network", "Page"):
        tools.call(f"{domain}.enable")
    tools.call("Page.navigate", url=report.resolve().as_uri())
    tools.wait_for("Page.loadEventFired", timeout=60)
    deadline = time.monotonic() + 30
    state = tools.evaluate(check)
    while time.monotonic() < deadline and not all(p["lines"] for p in state["plots"]):
        time.sleep(0.25)
        state = tools.evaluate(check)
    # The screenshot shows trades in the table: their orders and fills.
    tools.evaluate(
        "const box = document.getElementById('decision-search');"
        "box.value = 'trade'; box.dispatchEvent(new Event('input'));"
    )
    height = min(int(state["height"]), 6000)
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        width=1400,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    time.sleep(0.5)  # plotly's responsive relayout
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    state["problems"] = tools.problems()
    return state


def test_report_renders_every_chart_in_headless_chromium_without_console_errors(
    report_file, backtest_dir
):
    records = [json.loads(line) for line in (backtest_dir / "decisions.jsonl").open()]
    fill = next(r for r in records if r["event"] == "fill")
    screenshot = _artifacts() / "report-backtest.png"
    state = check_in_chromium(report_file, screenshot, search=fill["client_order_id"])
    print(f"screenshot: {screenshot}")
    assert state["problems"] == []
    assert [p["id"] for p in state["plots"]] == list(CHARTS)
    for plot in state["plots"]:
        assert plot["traces"] > 0, plot
        assert plot["points"] > 100, plot
        assert plot["svgs"] > 0, plot
        assert plot["lines"] > 0, plot
        assert plot["width"] > 600, plot
    assert state["rows"] > 100
    shown, total = (int(n) for n in state["after"].split(" decisions")[0].split(" of "))
    assert total == state["rows"]
    assert 0 < shown < total
    assert state["before"] == f"{total} of {total} decisions"
    # a client id finds the one decision that placed the order, its fill beside it
    assert state["order"]["count"] == f"1 of {total} decisions"
    (row,) = state["order"]["text"]
    assert fill["decision_id"] in row
    assert f"fill {fill['trade_id']}:" in row
    assert state["fills"] == sum(r["event"] == "fill" for r in records)
    # drawdown: the strategy on its own axis, scaled to its own fall; buy-and-hold on another
    strategy, held = state["drawdown"]
    assert strategy["axis"] != held["axis"]
    assert strategy["range"][0] <= strategy["lowest"] < 0
    assert strategy["range"][0] > held["lowest"]  # not stretched down to buy-and-hold's fall
    assert held["range"][0] <= held["lowest"]
    assert screenshot.stat().st_size > 50_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_examples_of_the_report_work_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """In a project folder beside ../shared/data, as tests/test_readme.py sets one up (which
    runs each README command alone: no run folder to report on); a testnet run's folder is
    stood in for by the history backtest's, the /tmp output by one in the test's folder."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("\n## Reviewing a run: the report\n", 1)[1].split("```", 2)[1]
    examples = [line.split("  #")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert [e.split()[1] for e in examples] == ["backtest", "report", "report"]
    shared = Path(__file__).resolve().parents[2] / "shared"
    if not (shared / "data").exists():
        pytest.skip("../shared/data is not beside this checkout")
    project = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config", project / "config")
    (tmp_path / "shared").symlink_to(shared)
    out = tmp_path / "testnet.html"
    for example in examples:
        argv = example.replace("runs/testnet-binance", "runs/history")
        argv = argv.replace("/tmp/testnet.html", str(out)).split()
        monkeypatch.chdir(project)
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, (example, result.output)
    for page in (project / "runs" / "history" / "report.html", out):
        text = page.read_text()
        assert 'id="chart-drawdown"' in text
        assert '<div class="fill">' in text
