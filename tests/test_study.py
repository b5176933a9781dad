"""The event study on a tiny synthetic history with one planted breakout whose crypto forward
returns are known by construction; the statistics checked against brute-force loops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Config, load_config
from agent.marketdata.replay import write_bars
from agent.study import (
    Episode,
    baseline_returns,
    bootstrap_mean,
    event_study,
    forward_return,
    percentile_rank,
    run_study,
)
from tests.bars import BASE_VOLUME, base

runner = CliRunner()

HEAVY = 2.0 * BASE_VOLUME
START = "2020-01-02"
CRYPTO_DAYS = 400
WINDOW = 91  # signal.window_days, the default
PLANTED = {0: 100.0, 30: 110.0, 60: 125.0, 90: 150.0}
"""BTC closes on the confirmation day and 30, 60, 90 days later: +10%, +25%, +50%."""


def index_tape():
    """A high of 100, a range under it, then 102 on heavy volume, 103, 104: confirmed on the
    third close above 100 (session 83, 2020-04-28), then a flat 103.5 that neither fails nor
    re-arms."""
    return base().add(102, HEAVY).add(103).add(104).repeat(200, 103.5)


SESSIONS = pd.bdate_range(START, periods=len(index_tape().close))
CONFIRMED = SESSIONS[83]
DAYS = pd.date_range(START, periods=CRYPTO_DAYS, freq="D")


def btc_closes() -> pd.Series:
    k = np.arange(CRYPTO_DAYS)
    closes = pd.Series(100 + 10 * np.sin(k / 7.0) + 0.05 * k, index=DAYS)
    for offset, price in PLANTED.items():
        closes[CONFIRMED + pd.Timedelta(days=offset)] = price
    return closes


def bars(closes: pd.Series, volume: float | pd.Series = BASE_VOLUME) -> pd.DataFrame:
    return pd.DataFrame(
        {"open": closes, "high": closes, "low": closes, "close": closes, "volume": volume},
        index=closes.index,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study-data")
    close, volume, bench = index_tape().series(START)
    write_bars(folder, "IWM", bars(close, volume))
    write_bars(folder, "SPY", bars(bench))
    btc = btc_closes()
    write_bars(folder, "BTC-USD", bars(btc))
    late = CONFIRMED + pd.Timedelta(days=10)
    write_bars(folder, "ETH-USD", bars(btc.loc[late:] / 50))  # listed after the breakout
    write_bars(folder, "SOL-USD", bars(btc.loc[: CONFIRMED + pd.Timedelta(days=45)] / 4))
    write_bars(folder, "XRP-USD", bars(btc.iloc[::-1].set_axis(btc.index) / 200))
    return folder


@pytest.fixture(scope="module")
def config_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("study-config") / "tiny.toml"
    path.write_text(f'[data]\nsource = "replay"\ndir = "{data_dir}"\n')
    return path


@pytest.fixture(scope="module")
def config(config_file: Path) -> Config:
    return load_config(config_file)


@pytest.fixture(scope="module")
def result(config: Config) -> dict:
    return run_study(config, samples=500, seed=3)


def brute_baseline(closes: pd.Series, horizon: int, windows: list[tuple]) -> list[float]:
    """Every day with a close exactly `horizon` days later (the series has no gaps), outside
    the windows."""
    prices = closes.to_dict()
    out = []
    for day, price in prices.items():
        if any(start <= day < end for start, end in windows):
            continue
        later = day + pd.Timedelta(days=horizon)
        if later in prices:
            out.append(prices[later] / price - 1)
    return out


def test_the_planted_breakout_is_the_only_episode(result):
    [episode] = result["episodes"]
    assert episode["confirmed"] == CONFIRMED.date().isoformat() == "2020-04-28"
    assert episode["window_end"] == "2020-07-28"
    assert episode["failed"] is None
    assert [e["asset"] for e in result["events"]] == ["BTC", "ETH", "SOL", "XRP"]


def test_btc_forward_returns_are_the_planted_ones(result):
    btc = result["events"][0]["horizons"]
    assert [btc[h]["return"] for h in ("30", "60", "90")] == pytest.approx([0.10, 0.25, 0.50])
    assert btc["60"]["start"] == "2020-04-28"
    assert btc["60"]["end"] == "2020-06-27"
    assert (btc["60"]["start_close"], btc["60"]["end_close"]) == (100.0, 125.0)


def test_percentile_and_excess_equal_a_brute_force_count(result):
    closes = btc_closes()
    window = [(CONFIRMED, CONFIRMED + pd.Timedelta(days=WINDOW))]
    for h in (30, 60, 90):
        others = brute_baseline(closes, h, window)
        # 400 days, the last h without an end close, the 91 of the lag window left out
        assert len(others) == CRYPTO_DAYS - h - WINDOW
        event = PLANTED[h] / PLANTED[0] - 1
        below = sum(r < event for r in others) + 0.5 * sum(r == event for r in others)
        cell = result["events"][0]["horizons"][str(h)]
        assert cell["percentile"] == pytest.approx(100 * below / len(others))
        assert cell["excess_over_median"] == pytest.approx(event - float(np.median(others)))
        summary = result["assets"]["BTC"][str(h)]
        assert summary["baseline_days"] == len(others)
        assert summary["unconditional_mean"] == pytest.approx(np.mean(others))
        assert summary["event_mean"] == pytest.approx(event)
        assert summary["excess_mean"] == pytest.approx(event - np.mean(others))
    assert result["events"][0]["horizons"]["90"]["percentile"] == 100.0  # above every other day


def test_an_asset_without_data_at_the_event_is_reported_missing_never_filled(result):
    eth = result["events"][1]["horizons"]
    for h in ("30", "60", "90"):
        assert eth[h]["return"] is None
        assert "percentile" not in eth[h]
    assert eth["30"]["missing"] == (
        "no close from 2020-04-28 to 2020-05-01: before its data starts (2020-05-08)"
    )
    sol = result["events"][2]["horizons"]
    assert sol["30"]["return"] == pytest.approx(0.10)
    assert sol["60"]["return"] is None
    assert "after its data ends (2020-06-12)" in sol["60"]["missing"]
    assert result["assets"]["ETH"]["30"]["events"] == 0
    assert result["assets"]["ETH"]["30"]["ci_low"] is None
    assert result["assets"]["SOL"]["30"]["events"] == 1
    assert result["assets"]["SOL"]["60"]["events"] == 0


def test_forward_return_takes_the_first_close_at_or_after_the_day_within_the_gap():
    closes = pd.Series(
        [10.0, 20.0, 40.0], index=pd.to_datetime(["2021-01-01", "2021-01-03", "2021-01-10"])
    )
    got = forward_return(closes, pd.Timestamp("2021-01-02"), 5, max_gap_days=3)
    assert got["return"] == pytest.approx(1.0)  # 20 on 01-03 to 40 on 01-10
    assert (got["start"], got["end"]) == ("2021-01-03", "2021-01-10")
    gap = forward_return(closes, pd.Timestamp("2021-01-02"), 2, max_gap_days=3)
    assert gap["return"] is None
    assert gap["missing"] == "no close from 2021-01-04 to 2021-01-07: a gap in its data"


def test_baseline_leaves_out_days_inside_every_window():
    days = pd.date_range("2021-01-01", periods=10, freq="D")
    closes = pd.Series(np.arange(1.0, 11.0), index=days)
    windows = [(days[2], days[4]), (days[6], days[7])]
    got = baseline_returns(closes, 2, windows)
    assert [d.day for d in got.index] == [1, 2, 5, 6, 8]
    assert got.to_list() == pytest.approx([2.0, 1.0, 7 / 5 - 1, 8 / 6 - 1, 10 / 8 - 1])


def test_percentile_ranks_at_the_extremes():
    values = np.array([-0.2, 0.0, 0.1, 0.3])
    assert percentile_rank(-1.0, values) == 0.0
    assert percentile_rank(5.0, values) == 100.0
    assert percentile_rank(-0.2, values) == 12.5  # ties with the lowest: half of one of four
    assert percentile_rank(0.3, values) == 87.5
    assert percentile_rank(0.7, np.full(5, 0.7)) == 50.0
    assert percentile_rank(0.1, np.array([])) is None


def two_events() -> tuple[list[Episode], dict[str, pd.Series]]:
    """Two episodes a year apart on a noisy series, so the events' mean has some spread."""
    rng = np.random.default_rng(11)
    days = pd.date_range("2019-01-01", periods=900, freq="D")
    closes = pd.Series(100 * np.exp(np.cumsum(rng.normal(0.001, 0.03, 900))), index=days)
    found = [
        Episode(confirmed=d, level=1.0, window_end=d + pd.Timedelta(days=WINDOW))
        for d in (pd.Timestamp("2019-06-03"), pd.Timestamp("2020-06-01"))
    ]
    return found, {"BTC": closes}


def test_bootstrap_is_reproducible_for_a_seed_and_its_interval_holds_the_mean():
    found, closes = two_events()
    first = event_study(found, closes, samples=2_000, seed=5)
    again = event_study(found, closes, samples=2_000, seed=5)
    other = event_study(found, closes, samples=2_000, seed=6)
    assert first == again
    assert (
        first["assets"]["BTC"]["60"]["p_random_days"]
        != (other["assets"]["BTC"]["60"]["p_random_days"])
    )
    for h in ("30", "60", "90"):
        s = first["assets"]["BTC"][h]
        assert s["events"] == 2
        assert s["ci_low"] < s["event_mean"] < s["ci_high"]
        assert 0 < s["p_random_days"] <= 1


def test_bootstrap_interval_of_the_mean():
    rng = np.random.default_rng(0)
    values = rng.normal(0.05, 0.1, 400)
    low, high = bootstrap_mean(values, 4_000, np.random.default_rng(1))
    assert low < values.mean() < high
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))  # the normal interval, roughly
    assert high - low == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_mean(np.array([0.2, 0.2]), 100, np.random.default_rng(1)) == (0.2, 0.2)


def test_an_asset_is_studied_the_same_whatever_the_others():
    found, closes = two_events()
    alone = event_study(found, closes, samples=500, seed=2)
    paired = event_study(found, closes | {"ETH": closes["BTC"] * 2}, samples=500, seed=2)
    assert paired["assets"]["BTC"] == alone["assets"]["BTC"]


def test_study_command_prints_the_tables_and_writes_the_json(config_file, data_dir, tmp_path):
    out = tmp_path / "study.json"
    args = ["study", "--config", str(config_file), "--data-dir", str(data_dir)]
    result = runner.invoke(app, [*args, "--out", str(out), "--samples", "300", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "2020-04-28" in result.stdout
    assert "+50%" in result.stdout  # BTC at +90 days
    assert f"wrote {out}" in result.stdout
    written = json.loads(out.read_text())
    assert written["samples"] == 300
    assert written["events"][0]["horizons"]["90"]["return"] == pytest.approx(0.5)
    assert written["assets"]["ETH"]["90"]["event_mean"] is None


def test_study_command_horizons_option(config_file, data_dir, tmp_path):
    out = tmp_path / "study.json"
    args = ["study", "--config", str(config_file), "--data-dir", str(data_dir), "--out", str(out)]
    result = runner.invoke(app, [*args, "--horizons", "60", "--samples", "50"])
    assert result.exit_code == 0, result.output
    assert list(json.loads(out.read_text())["events"][0]["horizons"]) == ["60"]
    bad = runner.invoke(app, [*args, "--horizons", "30,x"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --horizons: expected days like 30,60,90, got '30,x'"
    ]


def test_study_on_a_missing_data_dir_is_one_line_and_exit_2(config_file, tmp_path):
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["study", "--config", str(config_file), "--data-dir", str(missing)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [f"error: {missing}: no such data folder"]


def test_study_on_a_missing_symbol_file_is_one_line_and_exit_2(config_file, data_dir, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for path in data_dir.glob("*.csv"):
        if path.name != "XRP-USD.csv":
            (folder / path.name).write_text(path.read_text())
    result = runner.invoke(app, ["study", "--config", str(config_file), "--data-dir", str(folder)])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line == f"error: {folder / 'XRP-USD.csv'}: no such file"
