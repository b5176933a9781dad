"""AlpacaData with the real alpaca-py client against the loopback Alpaca emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.clock import SimClock, exchange_calendar
from agent.config import DataConfig
from agent.marketdata.alpaca import AlpacaData, load_env
from agent.ports import DataError
from agent.secrets import MissingSecret
from tests.emulators.alpaca import FAULTS, AlpacaEmulator

ROOT = Path(__file__).resolve().parents[1]
FRIDAY_CLOSED = datetime(2024, 3, 15, 21, tzinfo=UTC)
"""17:00 New York: the session of Friday 2024-03-15 has closed."""
FRIDAY_OPEN = datetime(2024, 3, 15, 18, tzinfo=UTC)
"""14:00 New York: that session is still open, its daily bar partial."""


def sessions(first: str = "2024-01-02", last: str = "2024-03-15") -> pd.DatetimeIndex:
    return exchange_calendar().sessions_in_range(first, last)


def make_bars(days: pd.DatetimeIndex, base: float = 100.0) -> pd.DataFrame:
    close = base + np.arange(len(days), dtype=float)
    frame = pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1_000_000.0 + 1000.0 * np.arange(len(days)),
        },
        index=pd.DatetimeIndex(days, name="date").as_unit("ns"),
    )
    return frame


BARS = make_bars(sessions())


@pytest.fixture
def emu():
    with AlpacaEmulator() as server:
        server.set_bars("IWM", BARS)
        server.set_bars("SPY", make_bars(sessions(), base=400.0))
        yield server


def make(emu: AlpacaEmulator, now: datetime | SimClock = FRIDAY_CLOSED, **options) -> AlpacaData:
    clock = now if isinstance(now, SimClock) else SimClock(now)
    api_key = options.pop("api_key", emu.api_key)
    secret_key = options.pop("secret_key", emu.secret_key)
    settings = {
        "url_override": emu.url,
        "clock_now": clock.now,
        "wait_initial": 0.001,
        "wait_max": 0.004,
        "timeout_s": 0.3,
        **options,
    }
    return AlpacaData(api_key, secret_key, **settings)


def assert_one_line(error: pytest.ExceptionInfo[DataError], *secrets: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
    return message


def test_bars_round_trip_into_the_frame_format_on_session_dates(emu):
    bars = make(emu).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    pd.testing.assert_frame_equal(bars, BARS, check_freq=False)
    assert bars.index.name == "date"
    assert bars.index.tz is None
    assert bars.index.dtype == "datetime64[ns]"
    assert all(dtype == "float64" for dtype in bars.dtypes)


def test_daily_bars_are_stamped_at_midnight_new_york_in_utc(emu):
    query = "symbols=IWM&timeframe=1Day&start=2024-03-07T00:00:00Z&end=2024-03-12T00:00:00Z"
    request = urllib.request.Request(
        f"{emu.url}/v2/stocks/bars?{query}",
        headers={"APCA-API-KEY-ID": emu.api_key, "APCA-API-SECRET-KEY": emu.secret_key},
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        body = json.load(response)
    stamps = [bar["t"] for bar in body["bars"]["IWM"]]
    # New York moved to daylight time on Sunday 2024-03-10
    assert stamps == ["2024-03-07T05:00:00Z", "2024-03-08T05:00:00Z", "2024-03-11T04:00:00Z"]
    assert body["next_page_token"] is None
    assert set(body["bars"]["IWM"][0]) == {"t", "o", "h", "l", "c", "v", "n", "vw"}


def test_pagination_across_several_pages(emu):
    emu.page_size = 10
    bars = make(emu).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    pd.testing.assert_frame_equal(bars, BARS, check_freq=False)
    requests = emu.bar_requests()
    assert len(requests) == -(-len(BARS) // 10)
    assert "page_token" not in requests[0].params
    assert all("page_token" in r.params for r in requests[1:])


def test_one_request_per_symbol_with_the_configured_feed_and_adjustment(emu):
    data = make(emu, feed="sip", adjustment="all")
    data.daily_bars("IWM", pd.Timestamp("2024-03-15"))
    data.daily_bars("SPY", pd.Timestamp("2024-03-15"))
    requests = emu.bar_requests()
    assert [r.params["symbols"] for r in requests] == ["IWM", "SPY"]
    for request in requests:
        assert request.params["feed"] == "sip"
        assert request.params["adjustment"] == "all"
        assert request.params["timeframe"] == "1Day"
        assert request.params["start"] == "2000-01-01T05:00:00+00:00"
        assert request.params["end"] == "2024-03-15T16:00:00+00:00"  # noon New York


def test_from_config_reads_keys_from_the_environment_and_the_rest_from_config(emu):
    config = DataConfig(source="alpaca", feed="sip", adjustment="raw", alpaca_url=emu.url)
    environ = {"ALPACA_API_KEY": emu.api_key, "ALPACA_SECRET_KEY": emu.secret_key}
    data = AlpacaData.from_config(config, environ, clock_now=lambda: FRIDAY_CLOSED)
    assert data.daily_bars("IWM", pd.Timestamp("2024-03-15")).index[-1] == pd.Timestamp(
        "2024-03-15"
    )
    assert {(r.params["feed"], r.params["adjustment"]) for r in emu.bar_requests()} == {
        ("sip", "raw")
    }
    assert emu.api_key not in repr(data)
    assert emu.secret_key not in repr(data)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "ALPACA_API_KEY, ALPACA_SECRET_KEY"),
        ({"ALPACA_API_KEY": "  ", "ALPACA_SECRET_KEY": "s3cr3t-value"}, "ALPACA_API_KEY"),
        ({"ALPACA_API_KEY": "k3y-value"}, "ALPACA_SECRET_KEY"),
        ({"ALPACA_API_KEY": "k3y-value", "ALPACA_SECRET_KEY": ""}, "ALPACA_SECRET_KEY"),
    ],
)
def test_missing_keys_are_one_line_naming_the_variable(environ, variable):
    with pytest.raises(MissingSecret) as error:
        AlpacaData.from_config(DataConfig(), environ)
    message = assert_one_line(error, "k3y-value", "s3cr3t-value")
    assert message == f"{variable} not set (environment or .env)"


def test_load_env_merges_the_environment_over_the_dotenv_file(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("ALPACA_API_KEY=from-file\nALPACA_SECRET_KEY=file-secret\n")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "env-secret")
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    environ = load_env(path)
    assert environ["ALPACA_API_KEY"] == "from-file"
    assert environ["ALPACA_SECRET_KEY"] == "env-secret"
    assert "ALPACA_API_KEY" not in load_env(tmp_path / "missing.env")


def test_wrong_keys_are_one_line_without_the_keys_and_not_retried(emu):
    retries = []
    data = make(
        emu,
        api_key="wrong-key-id",
        secret_key="wrong-secret",
        on_retry=lambda *a: retries.append(a),
    )
    with pytest.raises(DataError) as error:
        data.daily_bars("IWM", pd.Timestamp("2024-03-15"))
    message = assert_one_line(error, "wrong-key-id", "wrong-secret")
    assert message.startswith("alpaca IWM: HTTP 401: request is not authorized")
    assert "ALPACA_API_KEY" in message
    assert len(emu.bar_requests()) == 1
    assert retries == []


def test_a_feed_the_account_may_not_use_is_403_and_not_retried(emu):
    emu.allowed_feeds = frozenset({"iex"})
    with pytest.raises(DataError, match=r"alpaca IWM: HTTP 403: .*sip"):
        make(emu, feed="sip").daily_bars("IWM", pd.Timestamp("2024-03-15"))
    assert len(emu.bar_requests()) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_each_transient_fault_is_retried_and_the_result_is_right(emu, fault):
    emu.timeout_delay = 2.0
    retries = []
    data = make(emu, on_retry=lambda *a: retries.append(a))
    emu.fail_next(fault)
    bars = data.daily_bars("IWM", pd.Timestamp("2024-03-15"))
    pd.testing.assert_frame_equal(bars, BARS, check_freq=False)
    assert [r.fault for r in emu.bar_requests()] == [fault, None]
    assert [(symbol, attempt) for symbol, attempt, _ in retries] == [("IWM", 1)]
    assert isinstance(retries[0][2], Exception)


def test_gives_up_after_the_configured_attempts_with_one_line(emu):
    emu.fail_next("503", "500", "429")
    with pytest.raises(DataError) as error:
        make(emu, attempts=3).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    message = assert_one_line(error, emu.api_key, emu.secret_key)
    assert message == ("alpaca IWM: gave up after 3 attempts: HTTP 429: rate limit exceeded")
    assert len(emu.bar_requests()) == 3


@pytest.mark.parametrize("fault", ["429", "504"])
def test_alpaca_py_does_not_retry_on_its_own(emu, fault):
    emu.fail_next(fault)
    began = time.monotonic()
    with pytest.raises(DataError, match=f"HTTP {fault}"):
        make(emu, attempts=1).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    assert time.monotonic() - began < 2.0  # alpaca-py alone would sleep 3 s and ask again
    assert len(emu.bar_requests()) == 1


def test_a_422_is_not_retried(emu):
    retries = []
    with pytest.raises(DataError) as error:
        make(emu, on_retry=lambda *a: retries.append(a)).daily_bars(
            "IW$M", pd.Timestamp("2024-03-15")
        )
    assert assert_one_line(error) == "alpaca IW$M: HTTP 422: invalid symbol: IW$M"
    assert len(emu.bar_requests()) == 1
    assert retries == []


def test_an_unknown_symbol_has_no_bars(emu):
    with pytest.raises(DataError, match=r"alpaca QQQ: no bars from 2000-01-01 to 2024-03-15"):
        make(emu).daily_bars("QQQ", pd.Timestamp("2024-03-15"))


def test_daily_column_and_daily_bars_cut_at_end(emu):
    data = make(emu)
    sunday = pd.Timestamp("2024-03-10")
    closes = data.daily_column("IWM", "close", sunday)
    pd.testing.assert_series_equal(closes, BARS["close"].loc[:"2024-03-08"], check_freq=False)
    assert data.daily_bars("IWM", pd.Timestamp("2024-03-08")).index[-1] == pd.Timestamp(
        "2024-03-08"
    )
    assert data.daily_column("IWM", "volume", pd.Timestamp("2023-12-29")).empty
    assert len(emu.bar_requests()) == 1
    with pytest.raises(ValueError, match="tz-naive"):
        data.daily_bars("IWM", pd.Timestamp("2024-03-08", tz="UTC"))


def test_an_open_session_is_not_kept_and_the_tail_is_fetched_once_it_closes(emu):
    partial = BARS.copy()
    partial.loc["2024-03-15", ["high", "close"]] = [500.0, 499.0]
    emu.set_bars("IWM", partial)
    clock = SimClock(FRIDAY_OPEN)
    data = make(emu, clock)
    friday = pd.Timestamp("2024-03-15")
    assert data.daily_bars("IWM", friday).index[-1] == pd.Timestamp("2024-03-14")
    assert data.daily_bars("IWM", friday).index[-1] == pd.Timestamp("2024-03-14")
    assert emu.bar_requests()[0].params["end"] == "2024-03-14T16:00:00+00:00"
    assert len(emu.bar_requests()) == 1  # nothing new has closed: no second request

    emu.set_bars("IWM", BARS)
    clock.current = FRIDAY_CLOSED
    pd.testing.assert_frame_equal(data.daily_bars("IWM", friday), BARS, check_freq=False)
    tail = emu.bar_requests()[1]
    assert tail.params["start"] == "2024-03-14T04:00:00+00:00"  # from the last cached bar
    assert len(emu.bar_requests()) == 2


def test_no_request_while_end_is_within_the_cache(emu):
    clock = SimClock(FRIDAY_CLOSED)
    data = make(emu, clock)
    data.daily_bars("IWM", pd.Timestamp("2024-03-15"))
    clock.current = datetime(2024, 3, 19, 21, tzinfo=UTC)
    data.daily_bars("IWM", pd.Timestamp("2024-03-14"))
    data.daily_column("IWM", "close", pd.Timestamp("2024-03-15"))
    assert len(emu.bar_requests()) == 1


def test_a_readjusted_history_is_fetched_again_in_full(emu):
    clock = SimClock(datetime(2024, 3, 14, 21, tzinfo=UTC))
    data = make(emu, clock)
    data.daily_bars("IWM", pd.Timestamp("2024-03-14"))
    split = BARS.copy()
    split[["open", "high", "low", "close"]] /= 2
    split["volume"] *= 2
    emu.set_bars("IWM", split)
    clock.current = FRIDAY_CLOSED
    bars = data.daily_bars("IWM", pd.Timestamp("2024-03-15"))
    pd.testing.assert_frame_equal(bars, split, check_freq=False)
    starts = [r.params["start"][:10] for r in emu.bar_requests()]
    assert starts == ["2000-01-01", "2024-03-14", "2000-01-01"]


def _high_below_low(frame: pd.DataFrame) -> None:
    frame.loc["2024-03-05", "high"] = 1.0


def _missing_close(frame: pd.DataFrame) -> None:
    frame.loc["2024-03-05", "close"] = np.nan


def _negative_open(frame: pd.DataFrame) -> None:
    frame.loc["2024-03-05", "open"] = -3.0


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_high_below_low, "alpaca IWM: 2024-03-05: high 1 is below low"),
        (_missing_close, "alpaca IWM: 2024-03-05: close is missing"),
        (_negative_open, "alpaca IWM: 2024-03-05: open is -3: prices must be > 0 and finite"),
    ],
)
def test_bad_bars_are_one_line_naming_symbol_and_session(emu, spoil, problem):
    frame = BARS.copy()
    spoil(frame)
    emu.set_bars("IWM", frame)
    with pytest.raises(DataError) as error:
        make(emu).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    assert assert_one_line(error).startswith(problem)


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        ([0, 1, 1, 2], "alpaca IWM: two bars for session 2024-01-03"),
        ([0, 2, 1, 3], "alpaca IWM: session 2024-01-03 comes after 2024-01-04: bars out of order"),
    ],
)
def test_duplicate_and_unordered_sessions_are_refused(emu, order, problem):
    emu.set_bars("IWM", BARS.iloc[order])
    with pytest.raises(DataError) as error:
        make(emu).daily_bars("IWM", pd.Timestamp("2024-03-15"))
    assert assert_one_line(error) == problem


def test_seeded_random_faults_are_survived(emu):
    emu.fault_rate = 0.25
    emu.seed = 2
    emu.page_size = 20  # a failed page restarts the symbol's fetch: alpaca-py pages itself
    data = make(emu, attempts=10)
    for symbol, base in (("IWM", 100.0), ("SPY", 400.0)):
        bars = data.daily_bars(symbol, pd.Timestamp("2024-03-15"))
        expected = make_bars(sessions(), base=base)
        pd.testing.assert_frame_equal(bars, expected, check_freq=False)
    assert sum(r.fault is not None for r in emu.bar_requests()) >= 3


def test_importing_the_adapter_does_not_import_alpaca():
    code = (
        "import sys, agent.marketdata.alpaca; "
        "print([m for m in ('alpaca', 'tenacity', 'requests') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
