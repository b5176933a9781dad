"""The backtest's fast paths give what the pandas paths give: array-backed columns, the signal
read from them, and (further down) the options a sweep uses."""

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import agent.backtest
from agent.backtest import run_backtest
from agent.config import Config, DataConfig
from agent.loop import Agent, TickResult
from agent.marketdata.replay import ReplayData, write_bars
from agent.marketdata.sample import write_sample
from agent.signal import BreakoutSignal, SignalInputs
from risk.limits import RiskParams
from strategies.breakout import BreakoutParams
from strategies.column import DailyColumn
from strategies.staging import AfterWindow, StagingParams


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, 7)
    return folder


def test_daily_values_are_daily_column_as_arrays(sample: Path) -> None:
    data = ReplayData(sample)
    for end in ("2015-01-01", "2018-03-03", "2030-01-01", "1990-01-01"):
        for symbol, column in (("IWM", "volume"), ("BTC-USD", "close")):
            series = data.daily_column(symbol, column, pd.Timestamp(end))
            values = data.daily_values(symbol, column, pd.Timestamp(end))
            assert len(values) == len(series)
            assert values.empty == series.empty
            assert np.array_equal(values.to_numpy(), series.to_numpy(), equal_nan=True)
            assert values.to_series().equals(series)
            if not series.empty:
                assert values.last_date == series.index[-1]
    with pytest.raises(ValueError, match="tz-naive"):
        data.daily_values("IWM", "close", pd.Timestamp("2020-01-01", tz="UTC"))


def test_signal_days_from_columns_equal_those_from_series(sample: Path) -> None:
    data = ReplayData(sample)
    iwm, spy = data.full_history("IWM"), data.full_history("SPY")
    primed = BreakoutSignal(BreakoutParams())
    primed.prime(SignalInputs(iwm["close"], iwm["volume"], spy["close"]))
    fresh = BreakoutSignal(BreakoutParams())
    for session in iwm.index[300::97]:
        series = SignalInputs(
            data.daily_column("IWM", "close", session),
            data.daily_column("IWM", "volume", session),
            data.daily_column("SPY", "close", session),
        )
        columns = SignalInputs(
            *(DailyColumn.of(s) for s in (series.close, series.volume, series.benchmark))
        )
        evidence = primed.day(columns).evidence()
        assert evidence == primed.day(series).evidence() == fresh.day(series).evidence()


def test_a_revised_history_is_detected_afresh_from_columns(tmp_path: Path, sample: Path) -> None:
    data = ReplayData(sample)
    iwm, spy = data.full_history("IWM"), data.full_history("SPY")
    signal = BreakoutSignal(BreakoutParams())
    signal.prime(SignalInputs(iwm["close"], iwm["volume"], spy["close"]))
    revised = iwm.copy()
    revised.iloc[-1, revised.columns.get_loc("close")] *= 1.5
    revised.iloc[-1, revised.columns.get_loc("high")] *= 1.5
    write_bars(tmp_path, "IWM", revised)
    other = ReplayData(tmp_path)
    end = iwm.index[-1]
    inputs = SignalInputs(
        other.daily_values("IWM", "close", end),
        other.daily_values("IWM", "volume", end),
        data.daily_values("SPY", "close", end),
    )
    day = signal.day(inputs)
    assert day.close == other.full_history("IWM")["close"].iloc[-1] != iwm["close"].iloc[-1]


def _config(folder: Path, **signal: float) -> Config:
    return Config(data=DataConfig(source="replay", dir=folder), signal=BreakoutParams(**signal))


def test_a_backtest_without_a_journal_gives_the_same_equity_and_summary(
    sample: Path, tmp_path: Path
) -> None:
    config = _config(sample)
    full = run_backtest(config, tmp_path / "full")
    quiet = run_backtest(config, tmp_path / "quiet", journal=False)
    bare = run_backtest(config, tmp_path / "bare", outputs=False)
    assert full.summary["metrics"]["orders"] > 0
    assert full.summary["metrics"]["fees"] > 0
    for other in (quiet, bare):
        assert other.summary == full.summary
        pd.testing.assert_frame_equal(other.equity, full.equity)
    assert sorted(p.name for p in (tmp_path / "quiet").iterdir()) == ["equity.csv", "summary.json"]
    for name in ("equity.csv", "summary.json"):
        assert (tmp_path / "quiet" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()
    assert not (tmp_path / "bare").exists()
    with pytest.raises(ValueError, match="journal"):
        run_backtest(config, tmp_path / "run", mode="run", journal=False)


@pytest.mark.parametrize(
    ("staging", "risk"),
    [
        ({}, {}),
        ({"after_window": AfterWindow.EXIT, "exit_steps": 1}, {}),
        ({"after_window": AfterWindow.HOLD}, {"rebalance_band": 0.0}),
        ({"crypto_budget": 1.0}, {"max_drawdown": 0.03}),
        ({"crypto_budget": 1.0}, {"max_drawdown": 0.05, "flatten_on_drawdown": True}),
    ],
    ids=["default", "exit", "hold", "drawdown-halt", "drawdown-flatten"],
)
def test_a_replay_without_a_journal_repeats_quiet_ticks_and_changes_nothing(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staging: dict, risk: dict
) -> None:
    """Without a journal, a tick that would repeat a quiet one (nothing held, wanted or pending,
    the schedule settled for the episode) is not decided again: every number is the same as
    when every tick is decided and journalled, clamps counted included."""
    config = _config(sample).model_copy(
        update={
            "staging": replace(StagingParams(), **staging),
            "risk": replace(RiskParams(), max_total_exposure=1.0, max_asset_exposure=1.0, **risk),
        }
    )
    repeated = []
    real_repeat = Agent.repeat

    def counting(agent: Agent, now: datetime) -> TickResult | None:
        result = real_repeat(agent, now)
        repeated.append(result is not None)
        return result

    monkeypatch.setattr(Agent, "repeat", counting)
    full = run_backtest(config, tmp_path / "full")
    assert not any(repeated)
    bare = run_backtest(config, tmp_path / "bare", outputs=False)
    assert sum(repeated) > len(full.equity) / 4
    assert bare.summary == full.summary
    pd.testing.assert_frame_equal(bare.equity, full.equity)
    if "max_drawdown" in risk:
        assert full.summary["metrics"]["risk_clamps"] > 0
        assert (full.equity["action"] == "refused").any()


def test_points_sharing_market_data_give_what_separate_runs_give(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep worker reuses one ReplayData: the primed signal is shared per signal settings."""
    configs = [_config(sample), _config(sample, volume_multiple=2.0), _config(sample)]
    alone = [run_backtest(c, tmp_path / f"alone{n}", outputs=False) for n, c in enumerate(configs)]
    shared = ReplayData(sample)
    monkeypatch.setattr(agent.backtest, "open_market_data", lambda config: shared)
    together = [
        run_backtest(c, tmp_path / f"shared{n}", outputs=False) for n, c in enumerate(configs)
    ]
    assert alone[0].summary != alone[1].summary
    for one, other in zip(alone, together, strict=True):
        assert one.summary == other.summary
        pd.testing.assert_frame_equal(one.equity, other.equity)


def test_primed_signals_kept_per_data_are_bounded(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = ReplayData(sample)
    monkeypatch.setattr(agent.backtest, "open_market_data", lambda config: shared)
    monkeypatch.setattr(agent.backtest, "_PRIMED_PER_DATA", 2)
    start, end = pd.Timestamp("2018-01-01"), pd.Timestamp("2018-03-01")
    for fail_pct in (0.03, 0.05, 0.08, 0.05):
        run_backtest(_config(sample, fail_pct=fail_pct), tmp_path, start=start, end=end)
    kept = agent.backtest._PRIMED[shared]
    assert [key[0].fail_pct for key in kept] == [0.08, 0.05]
