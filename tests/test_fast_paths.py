"""The backtest's fast paths give what the pandas paths give: array-backed columns, the signal
read from them, and (further down) the options a sweep uses."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.marketdata.replay import ReplayData, write_bars
from agent.marketdata.sample import write_sample
from agent.signal import BreakoutSignal, SignalInputs
from strategies.breakout import BreakoutParams
from strategies.column import DailyColumn


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
