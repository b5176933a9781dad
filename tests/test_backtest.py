"""End to end on the sample data: the live tick on a simulated clock, as `spillover backtest`."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.backtest import BacktestResult, run_backtest
from agent.cli import app
from agent.config import Config, DataConfig
from agent.marketdata.sample import load_manifest, write_sample
from risk.journal import read_journal

runner = CliRunner()
SEED = 7
METRICS = (
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "exposure_days",
    "turnover",
    "fees",
    "orders",
    "risk_clamps",
)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, SEED)
    return folder


def sample_config(folder: Path) -> Config:
    return Config(data=DataConfig(source="replay", dir=folder))


@pytest.fixture(scope="session")
def sample_run(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    return run_backtest(sample_config(sample_dir), tmp_path_factory.mktemp("run"))


def test_backtest_finds_every_planted_breakout_and_nothing_else(sample_run, sample_dir):
    scenarios = load_manifest(sample_dir).scenarios
    confirmed = [b for b in sample_run.summary["breakouts"] if b["confirmed"]]
    assert len(confirmed) == len(scenarios)
    for found, planted in zip(confirmed, scenarios, strict=True):
        assert str(planted.confirm_start) <= found["confirmed"] <= str(planted.confirm_end)
        assert found["level"] == pytest.approx(planted.level, rel=1e-6)
        if planted.kind == "fails":
            assert str(planted.fail_start) <= found["failed"] <= str(planted.fail_end)
        else:
            assert found["failed"] is None
            assert found["expired"] is not None


def test_stages_walk_up_the_schedule_after_a_clean_breakout(sample_run, sample_dir):
    clean = next(s for s in load_manifest(sample_dir).scenarios if s.kind == "clean")
    confirmed = next(
        b["confirmed"]
        for b in sample_run.summary["breakouts"]
        if b["confirmed"] and b["confirmed"] >= str(clean.confirm_start)
    )
    after = [s for s in sample_run.summary["stages"] if s["date"] >= confirmed]
    walked = [(s["stage"], s["target_exposure"]) for s in after[:4]]
    assert walked == [(1, 0.125), (2, 0.25), (3, 0.375), (4, 0.5)]
    days = [pd.Timestamp(s["date"]) - pd.Timestamp(confirmed) for s in after[:4]]
    assert [d.days for d in days] == [0, 30, 60, 90]


def test_agent_buys_after_a_clean_breakout_and_stands_aside_when_crypto_falls(
    sample_run, sample_dir
):
    equity = sample_run.equity
    equity.index = pd.DatetimeIndex(equity.index)
    for scenario in load_manifest(sample_dir).scenarios:
        window = equity.loc[str(scenario.confirm_start) :].iloc[:100]
        held = window["exposure"].max()
        if scenario.kind == "clean":
            assert held > 0.3
            assert window["equity"].iloc[-1] > window["equity"].iloc[0]
        if scenario.kind == "crypto_falls":
            loss = 1 - window["equity"].min() / window["equity"].iloc[0]
            assert loss < 0.05


def test_every_order_fill_and_clamp_cites_a_decision_written_before_it(sample_run):
    decided: set[str] = set()
    cited = 0
    for record in read_journal(sample_run.files.journal):
        if record["event"] == "decision":
            decided.add(record["decision_id"])
        elif record["event"] in ("order", "fill", "risk"):
            assert record["decision_id"] in decided, record
            cited += 1
    assert cited > 0


def test_no_day_of_the_equity_curve_breaks_a_cap(sample_run):
    config = sample_config(Path("unused"))
    equity = sample_run.equity
    for asset in config.staging.assets:
        assert (equity[f"{asset}_weight"] <= config.risk.cap_for(asset) + 1e-9).all(), asset
    assert (equity["exposure"] <= config.risk.max_total_exposure + 1e-9).all()
    assert (equity["cash"] >= 0).all()


def test_weekends_and_holidays_neither_stale_the_signal_nor_halt(sample_run):
    records = list(read_journal(sample_run.files.journal))
    decisions = [r for r in records if r["event"] == "decision"]
    assert len(decisions) == len(sample_run.equity)
    assert not [r for r in decisions if r["action"] == "refused" and r["breakout"] is None]
    assert not [r for r in records if r["event"] == "halt"]
    saturday = next(r for r in decisions if pd.Timestamp(r["crypto_asof"]).day_of_week == 5)
    assert pd.Timestamp(saturday["asof"]).day_of_week == 4


def test_summary_has_the_metrics_the_benchmark_and_the_breakouts(sample_run, sample_dir):
    summary = json.loads((sample_run.files.root / "summary.json").read_text())
    assert summary["config_hash"] == sample_config(sample_dir).hash()
    assert set(METRICS) <= set(summary["metrics"])
    assert set(METRICS) <= set(summary["benchmark"])
    assert summary["metrics"]["orders"] > 0
    for breakout in summary["breakouts"]:
        assert set(breakout) == {"candidate", "confirmed", "failed", "expired", "level"}
    written = pd.read_csv(sample_run.files.root / "equity.csv")
    for column in ("equity", "cash", "BTC_value", "BTC_weight", "stage", "state"):
        assert column in written.columns


def test_priming_the_signal_changes_no_decision(sample_dir, tmp_path):
    config = sample_config(sample_dir)
    start, end = pd.Timestamp("2016-10-20"), pd.Timestamp("2017-01-10")
    primed = run_backtest(config, tmp_path / "primed", start=start, end=end)
    each_day = run_backtest(config, tmp_path / "each", start=start, end=end, prime=False)

    def decisions(result: BacktestResult) -> list[tuple]:
        return [
            (r["asof"], r["action"], r["reason"], json.dumps(r["orders"]), r["breakout"]["state"])
            for r in read_journal(result.files.journal)
            if r["event"] == "decision"
        ]

    assert decisions(primed) == decisions(each_day)
    assert any(d[1] == "trade" for d in decisions(primed))


def test_backtest_command_writes_its_files_and_prints_metrics(sample_dir, tmp_path):
    config = tmp_path / "bt.toml"
    config.write_text(f'[data]\nsource = "replay"\ndir = "{sample_dir}"\n')
    out = tmp_path / "out"
    args = ["backtest", "--config", str(config), "--start", "2016-09-01", "--end", "2017-03-01"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "total_return" in result.stdout
    assert "breakout confirmed 2016-11-11" in result.stdout
    for name in ("decisions.jsonl", "equity.csv", "summary.json"):
        assert (out / name).exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"] == {"start": "2016-09-01", "end": "2017-03-01"}


def test_backtest_on_a_bad_bar_file_is_one_line_and_exit_2(sample_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    path = data / "ETH-USD.csv"
    lines = path.read_text().splitlines()
    fields = lines[40].split(",")
    fields[4] = "nan"
    lines[40] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["backtest", "--data-dir", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert str(path) in line
    assert "line 41" in line


def test_client_order_ids_are_recorded_in_the_decision_and_valid_on_every_exchange(sample_run):
    import re

    decided: dict[str, list[str]] = {}
    for record in read_journal(sample_run.files.journal):
        if record["event"] == "decision":
            decided[record["decision_id"]] = [o["client_order_id"] for o in record["orders"]]
        elif record["event"] == "order":
            assert record["client_order_id"] in decided[record["decision_id"]]
            assert re.fullmatch(r"[A-Za-z0-9-]{1,36}", record["client_order_id"])


def test_a_run_keeps_its_state_in_the_store_tick_by_tick(sample_dir, tmp_path):
    from agent.store import Store

    config = sample_config(sample_dir)
    start, end = pd.Timestamp("2016-11-01"), pd.Timestamp("2017-01-20")
    result = run_backtest(config, tmp_path / "run", start=start, end=end, mode="run")
    records = list(read_journal(result.files.journal))
    with Store.open(tmp_path / "run") as store:
        run = store.run()
        assert run is not None
        assert run.config_hash == config.hash()
        assert store.last_tick_at() == pd.Timestamp("2017-01-21", tz="UTC").to_pydatetime()
        decision = store.last_decision()
        assert decision is not None
        last = [r for r in records if r["event"] == "decision"][-1]
        assert decision.decision_id == last["decision_id"]
        orders = store.orders()
        journal_orders = {r["client_order_id"] for r in records if r["event"] == "order"}
        assert {o.client_order_id for o in orders} == journal_orders
        assert all(o.status == "closed" for o in orders)
        journal_fills = {r["trade_id"] for r in records if r["event"] == "fill"}
        assert store.seen_trade_ids() == journal_fills
        held = result.equity.iloc[-1]
        positions = store.positions()
        btc_value = positions.get("BTC", 0.0) * last["prices"]["BTC"]
        assert btc_value == pytest.approx(held["BTC_value"])
        assert held["BTC_value"] > 0
        assert positions["USDT"] == pytest.approx(held["cash"])
        assert store.peak_equity() == pytest.approx(result.equity["equity"].max(), rel=1e-9)


def test_status_reads_where_a_run_stands_from_its_store(sample_dir, tmp_path):
    run = run_backtest(
        sample_config(sample_dir),
        tmp_path / "run",
        start=pd.Timestamp("2016-11-01"),
        end=pd.Timestamp("2016-12-20"),
        mode="run",
    )
    result = runner.invoke(app, ["status", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["last_tick_at"] == "2016-12-21T00:00:00+00:00"
    assert state["heartbeat"]["state"] == "stopped"
    assert 0 <= state["heartbeat"]["age_s"] < 600
    assert state["session"] == 1
    assert state["breakout"] == {"state": "confirmed", "stage": 2, "target_exposure": 0.25}
    last = run.equity.iloc[-1]
    assert state["positions"]["BTC"]["weight"] == pytest.approx(last["BTC_weight"])
    assert state["equity"] == pytest.approx(last["equity"])
    assert state["open_orders"] == []
    assert state["last_decision"]["asof"] == "2016-12-20"
    readable = runner.invoke(app, ["status", str(tmp_path / "run")])
    assert "breakout confirmed, stage 2" in readable.stdout
    healthy = runner.invoke(app, ["status", str(tmp_path / "run"), "--max-age", "600"])
    assert healthy.exit_code == 0
    (tmp_path / "run" / "heartbeat.json").unlink()
    dead = runner.invoke(app, ["status", str(tmp_path / "run"), "--max-age", "600"])
    assert dead.exit_code == 1
    assert "unhealthy: heartbeat none" in dead.stderr


def test_status_of_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "not a run folder" in line


def test_a_replayed_run_stopped_and_resumed_journals_and_stores_every_fill_once(
    sample_dir, tmp_path
):
    from agent.store import Store

    config = sample_config(sample_dir)
    span = {"start": pd.Timestamp("2016-11-01"), "end": pd.Timestamp("2017-03-31")}
    whole = run_backtest(config, tmp_path / "whole", mode="run", **span)
    ticks = iter(range(60))
    stop_after_60 = lambda: "stop" if next(ticks, 60) >= 59 else None  # noqa: E731
    run_backtest(config, tmp_path / "parts", mode="run", should_stop=stop_after_60, **span)
    resumed = run_backtest(config, tmp_path / "parts", mode="run", **span)

    def fills(folder: Path) -> list[dict]:
        journal = read_journal(folder / "decisions.jsonl")
        return [r for r in journal if r["event"] == "fill"]

    assert resumed.summary["metrics"] == whole.summary["metrics"]
    parts, uninterrupted = fills(tmp_path / "parts"), fills(tmp_path / "whole")
    assert [(f["ts"], f["amount"]) for f in parts] == [
        (f["ts"], f["amount"]) for f in uninterrupted
    ]
    assert len(parts) > 4
    trade_ids = [f["trade_id"] for f in parts]
    assert len(trade_ids) == len(set(trade_ids))
    with Store.open(tmp_path / "parts") as store:
        assert store.seen_trade_ids() == set(trade_ids)
