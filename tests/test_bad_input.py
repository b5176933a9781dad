"""Bad input at runtime: a NaN, zero, negative or stale bar, a price jump, an empty payload or one
missing fields refuses what it touches with a journalled reason naming the problem (a bad crypto
candle: that asset's orders, the others still trade; bad equity bars, or no crypto market read at
all: the whole tick), nothing it touches reaches the venue, and the next tick with good data
trades.

The agent reads no ticker and no order book: its prices are daily bars, equity bars from Alpaca
and crypto candles from the exchange (`fetch_ohlcv`). So the empty payloads shown are an exchange
with no candles and Alpaca bars missing a field.

Where the input comes from the network, the real adapters (`AlpacaData`, `TestnetVenue`,
`LiveData`) talk to the loopback emulators; the window is the 2016 planted breakout of the
sample data (`tests/fault_run.py`): a first good tick on 2016-11-11 sets the peak equity, the
agent buys BTC at confirmation on 2016-11-12, and that day's first tick is fed the bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent import ports
from agent.clock import EquitySessions, SimClock
from agent.live import live_data, open_testnet_venue, read_keys
from agent.loop import Agent, TickResult
from agent.marketdata.live import LiveData
from agent.marketdata.sample import generate
from agent.ports import DataError, TransientVenueError, VenueError
from agent.secrets import ALPACA_KEY_NAMES, exchange_key_names
from risk.journal import Journal, read_journal
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.binance import BinanceEmulator
from tests.fault_run import MARKETS, SAMPLE_SEED, USDT, make_config

FIRST = datetime(2016, 11, 11, 0, 5, tzinfo=UTC)
"""A good tick: the peak equity is known from here on (the very first tick never buys)."""
BAD = datetime(2016, 11, 12, 0, 5, tzinfo=UTC)
"""The breakout is confirmed: with good data this tick buys BTC. Its newest closed day (crypto
and equity alike) is 2016-11-11."""
AFTER = BAD + timedelta(hours=1)
"""The next tick, on the same day's data: with good data it buys BTC."""
NEWEST = pd.Timestamp("2016-11-11")
READ_ATTEMPTS = 2
KLINES = "/api/v3/klines"


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return generate(seed=SAMPLE_SEED)[0]


@dataclass
class Run:
    """The agent against the emulators on a simulated clock."""

    exchange: BinanceEmulator
    alpaca: AlpacaEmulator
    clock: SimClock
    agent: Agent
    journal: Path
    sample: dict[str, pd.DataFrame]
    candles: dict[str, list[tuple]]
    """Every candle of the sample per exchange symbol (`BTCUSDT`), as the emulator holds them."""
    frozen_after: pd.Timestamp | None = None
    """The exchange serves no candle after this day (its feed stopped)."""

    def serve(self, at: datetime) -> None:
        """The market at `at`: the closed candles, the day in progress as an open-only candle
        (as an exchange serves it minutes into the day) and the price at its open."""
        self.clock.current = at
        today = pd.Timestamp(at.date())
        with self.exchange.lock:
            for symbol, rows in self.candles.items():
                dates = pd.to_datetime([row[0] for row in rows], unit="ms")
                position = int(dates.searchsorted(today))
                ms, open_, *_ = rows[position]
                served = [*rows[:position], (ms, open_, open_, open_, open_, Decimal(0))]
                if self.frozen_after is not None:
                    last = self.frozen_after.tz_localize(UTC).timestamp() * 1000
                    served = [row for row in served if row[0] <= last]
                self.exchange.klines[(symbol, "1d")] = served
                self.exchange.set_price(symbol, open_)

    def candle(self, symbol: str, day: pd.Timestamp) -> int:
        """Where the candle of `day` is in the served klines of `symbol`."""
        served = self.exchange.klines[(symbol, "1d")]
        ms = int(day.tz_localize(UTC).timestamp() * 1000)
        return next(i for i, row in enumerate(served) if row[0] == ms)

    def change(self, symbol: str, day: pd.Timestamp, **values: Decimal) -> None:
        """Serve the candle of `symbol` for `day` with some of its values replaced."""
        served = self.exchange.klines[(symbol, "1d")]
        i = self.candle(symbol, day)
        fields = dict(zip(("ms", "open", "high", "low", "close", "volume"), served[i], strict=True))
        served[i] = tuple((fields | values).values())

    def tick(self, at: datetime | None = None) -> TickResult:
        if at is not None:
            self.serve(at)
        return self.agent.tick(self.clock.current)

    def records(self, event: str, decision_id: str | None = None) -> list[dict]:
        return [
            r
            for r in read_journal(self.journal)
            if r["event"] == event and decision_id in (None, r.get("decision_id"))
        ]

    @property
    def orders_sent(self) -> int:
        return len(self.exchange.create_requests)


@pytest.fixture
def run(sample: dict[str, pd.DataFrame], tmp_path: Path) -> Iterator[Run]:
    clock = SimClock(FIRST)
    exchange = BinanceEmulator(markets=MARKETS)
    alpaca = AlpacaEmulator(now=clock.now)
    for symbol in ("IWM", "SPY"):
        alpaca.set_bars(symbol, sample[symbol])
    exchange.set_balance("USDT", USDT)
    candles = {}
    for name, frame in sample.items():
        if name.endswith("-USD"):
            symbol = name.replace("-USD", "USDT")
            exchange.set_klines(symbol, frame)
            candles[symbol] = list(exchange.klines[(symbol, "1d")])
    with exchange, alpaca:
        config = make_config("binance", exchange.url, alpaca.url, READ_ATTEMPTS)
        key, secret = exchange_key_names("binance")
        env = {
            ALPACA_KEY_NAMES[0]: alpaca.api_key,
            ALPACA_KEY_NAMES[1]: alpaca.secret_key,
            key: exchange.api_key,
            secret: exchange.secret,
        }
        venue = open_testnet_venue(config, read_keys(config, env))
        path = tmp_path / "decisions.jsonl"
        with Journal(path, "bad-input") as journal:
            data = live_data(config, env, venue, None, clock)
            agent = Agent(config, data, venue, journal, EquitySessions())
            yield Run(exchange, alpaca, clock, agent, path, sample, candles)


def held(run: Run, result: TickResult, problem: str) -> None:
    """The tick refused, its journalled decision names `problem`, and no order left."""
    assert result.action == "refused", result.reason
    assert problem in result.reason
    [decision] = run.records("decision", result.decision_id)
    assert decision["action"] == "refused"
    assert problem in decision["reason"]
    assert decision["orders"] == []
    assert run.records("order", result.decision_id) == []
    assert run.orders_sent == 0


def trades_next(run: Run, at: datetime = AFTER) -> TickResult:
    """The next tick, with good data, places its orders."""
    result = run.tick(at)
    assert result.action == "trade", result.reason
    orders = run.records("order", result.decision_id)
    assert orders
    assert all(o["status"] in ("open", "closed") for o in orders)
    assert run.orders_sent == len(orders)
    return result


def first_tick(run: Run) -> None:
    result = run.tick(FIRST)
    assert result.action != "trade"
    assert run.orders_sent == 0


def test_with_good_data_the_bad_tick_would_buy_btc(run: Run) -> None:
    first_tick(run)
    run.serve(BAD)
    result = trades_next(run, BAD)
    assert [o["asset"] for o in run.records("order", result.decision_id)] == ["BTC"]


# -- crypto candles from the exchange ------------------------------------------------------


def _nan_close(run: Run) -> None:
    run.change("BTCUSDT", NEWEST, close=Decimal("NaN"))


def _zero_close(run: Run) -> None:
    run.change("BTCUSDT", NEWEST, close=Decimal(0))


def _negative_close(run: Run) -> None:
    run.change("ETHUSDT", NEWEST, close=Decimal(-5))


def _high_below_low(run: Run) -> None:
    run.change("BTCUSDT", NEWEST, high=Decimal(600), low=Decimal(700))


def _second_candle_for_a_closed_day(run: Run) -> None:
    served = run.exchange.klines[("BTCUSDT", "1d")]
    i = run.candle("BTCUSDT", NEWEST)
    ms, open_, high, low, close, volume = served[i]
    served.insert(i + 1, (ms, open_, high, low, (low + close) / 2, volume))


def _no_candles(run: Run) -> None:
    run.exchange.klines[("BTCUSDT", "1d")] = []


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_nan_close, "BTC/USDT 2016-11-11: close is missing"),
        (_zero_close, "BTC/USDT 2016-11-11: close is 0: prices must be > 0 and finite"),
        (_high_below_low, "BTC/USDT 2016-11-11: high 600 is below low 700"),
        (_second_candle_for_a_closed_day, "BTC/USDT 2016-11-11: a second bar for this day"),
        (_no_candles, "BTC/USDT: no daily candles from 2016-11-10 to 2016-11-11"),
    ],
    ids=["nan-close", "zero-close", "high-below-low", "second-candle", "empty"],
)
def test_a_bad_candle_holds_the_tick_and_the_next_good_fetch_trades(
    run: Run, spoil: Callable[[Run], None], problem: str
) -> None:
    first_tick(run)
    run.serve(BAD)
    spoil(run)
    result = run.tick()
    held(run, result, f"market data unavailable: {problem}")
    [error] = run.records("error")
    assert error["error"] == "DataError"
    assert error["message"] == problem
    trades_next(run)  # served afresh: the bad candle was not cached


def test_a_bad_candle_of_one_asset_refuses_only_that_asset(run: Run) -> None:
    """ETH's newest candle is bad while the schedule buys BTC: BTC is bought, ETH gets no price
    this tick, and the decision and an error record name ETH's problem."""
    first_tick(run)
    run.serve(BAD)
    _negative_close(run)
    result = run.tick()
    problem = "ETH/USDT 2016-11-11: close is -5: prices must be > 0 and finite"
    assert result.action == "trade"
    assert f"market data unavailable: {problem}" in result.reason
    assert "ETH" not in result.prices
    assert [o["asset"] for o in run.records("order", result.decision_id)] == ["BTC"]
    [error] = run.records("error")
    assert (error["error"], error["message"], error["asset"]) == ("DataError", problem, "ETH")


def test_a_closed_day_sent_again_with_other_values_holds_once_then_the_history_is_refetched(
    run: Run,
) -> None:
    run.tick(FIRST - timedelta(days=1))
    first_tick(run)  # BTC cached up to 2016-11-10, which each later fetch sends again
    day = NEWEST - pd.Timedelta(days=1)
    run.serve(BAD)
    i = run.candle("BTCUSDT", day)
    ms, open_, high, low, close, volume = run.candles["BTCUSDT"][i]
    run.candles["BTCUSDT"][i] = (ms, open_, high, low, (low + close) / 2, volume)
    result = run.tick(BAD)
    held(run, result, "BTC/USDT 2016-11-10: two different candles for this closed day (close ")
    trades_next(run)  # the whole window fetched again: the new candle is the one kept
    closes = run.agent.market_data.daily_column("BTC/USDT", "close", NEWEST)
    assert closes.loc[day] == float((low + close) / 2)


def test_a_bad_candle_of_the_day_in_progress_is_not_read(run: Run) -> None:
    first_tick(run)
    run.serve(BAD)
    run.change("BTCUSDT", pd.Timestamp(BAD.date()), close=Decimal("NaN"), high=Decimal(-1))
    trades_next(run, BAD)


def test_a_stale_candle_refuses_the_assets_orders_until_the_exchange_serves_again(
    run: Run,
) -> None:
    first_tick(run)
    trades_next(run, BAD)  # buys BTC
    bought = run.orders_sent
    run.frozen_after = NEWEST  # the feed stops: no candle after 2016-11-11
    stale_at = datetime(2016, 11, 15, 0, 5, tzinfo=UTC)
    result = run.tick(stale_at)
    assert result.action == "refused"
    assert "stale_price" in result.reason
    [clamp] = [r for r in run.records("risk", result.decision_id) if r["asset"] == "BTC"]
    assert clamp["rule"] == "stale_price"
    assert clamp["reason"] == "BTC quote is 72.1 h old, limit 36.0 h"
    assert run.records("order", result.decision_id) == []
    assert run.orders_sent == bought
    run.frozen_after = None
    result = run.tick(stale_at + timedelta(hours=1))
    assert result.action == "trade", result.reason
    assert run.orders_sent > bought


def test_a_price_jump_beyond_the_max_deviation_is_refused_and_traded_once_it_lasts(
    run: Run,
) -> None:
    first_tick(run)
    run.serve(BAD)
    served = run.exchange.klines[("BTCUSDT", "1d")]
    _, *values, _ = served[run.candle("BTCUSDT", NEWEST)]
    prices = ("open", "high", "low", "close")
    run.change("BTCUSDT", NEWEST, **{p: v * 3 / 2 for p, v in zip(prices, values, strict=True)})
    result = run.tick()
    assert result.action == "refused"
    [clamp] = run.records("risk", result.decision_id)
    assert clamp["rule"] == "price_jump"
    assert "limit 25.0%" in clamp["reason"]
    assert run.orders_sent == 0
    run.clock.current = AFTER
    result = run.tick()  # the same candle an hour later: the move lasts
    assert result.action == "trade", result.reason
    assert run.orders_sent == 1


def test_a_malformed_candle_response_holds_the_tick_after_its_retries(run: Run) -> None:
    first_tick(run)
    run.serve(BAD)
    run.exchange.fail_next("malformed", path=KLINES, times=READ_ATTEMPTS)
    result = run.tick()
    held(run, result, "market data unavailable: BTC/USDT: binance: ")
    [error] = run.records("error")
    assert issubclass(getattr(ports, error["error"]), VenueError)
    assert error["consecutive_errors"] == 1
    trades_next(run)


def test_kline_rows_missing_columns_hold_the_tick(run: Run) -> None:
    first_tick(run)
    run.serve(BAD)
    klines = run.exchange._public[("GET", "klines")]
    run.exchange._public[("GET", "klines")] = lambda params: [row[:4] for row in klines(params)]
    result = run.tick()
    held(run, result, "market data unavailable: BTC/USDT: binance: malformed fetch_ohlcv response")
    run.exchange._public[("GET", "klines")] = klines
    trades_next(run)


# -- equity bars from Alpaca ---------------------------------------------------------------


def _iwm(run: Run) -> pd.DataFrame:
    return run.sample["IWM"].loc[: NEWEST + pd.Timedelta(days=10)].copy()


def _equity_nan_close(run: Run) -> pd.DataFrame:
    bars = _iwm(run)
    bars.loc[NEWEST, "close"] = np.nan
    return bars


def _equity_second_bar(run: Run) -> pd.DataFrame:
    bars = _iwm(run)
    second = bars.loc[[NEWEST]].assign(close=bars.loc[NEWEST, "low"])
    return pd.concat([bars.loc[:NEWEST], second, bars.loc[NEWEST:].iloc[1:]])


def _equity_out_of_order(run: Run) -> pd.DataFrame:
    bars = _iwm(run)
    i = bars.index.get_loc(NEWEST)
    order = [*range(i - 1), i, i - 1, *range(i + 1, len(bars))]
    return bars.iloc[order]


def _equity_stale(run: Run) -> pd.DataFrame:
    return _iwm(run).loc[: NEWEST - pd.Timedelta(days=1)]


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_equity_nan_close, "market data unavailable: alpaca IWM: 2016-11-11: close is missing"),
        (
            _equity_second_bar,
            "market data unavailable: alpaca IWM: two bars for session 2016-11-11",
        ),
        (
            _equity_out_of_order,
            "market data unavailable: alpaca IWM: session 2016-11-10 comes after 2016-11-11: "
            "bars out of order",
        ),
        (_equity_stale, "IWM has no bar for the session of 2016-11-11 (last 2016-11-10)"),
    ],
    ids=["nan-close", "second-bar", "out-of-order", "stale"],
)
def test_a_bad_equity_bar_holds_the_tick_and_the_next_good_fetch_trades(
    run: Run, spoil: Callable[[Run], pd.DataFrame], problem: str
) -> None:
    first_tick(run)
    run.alpaca.set_bars("IWM", spoil(run))
    result = run.tick(BAD)
    held(run, result, problem)
    run.alpaca.set_bars("IWM", run.sample["IWM"])
    trades_next(run)


def test_equity_bars_missing_a_field_hold_the_tick(run: Run) -> None:
    first_tick(run)
    with run.alpaca._lock:
        bars = run.alpaca._bars["IWM"]
        day = next(i for i, bar in enumerate(bars) if bar["t"].startswith("2016-11-11"))
        bars[day] = {k: v for k, v in bars[day].items() if k != "c"}
    result = run.tick(BAD)
    held(run, result, "market data unavailable: alpaca IWM: unexpected bar data: 'c'")
    run.alpaca.set_bars("IWM", run.sample["IWM"])
    trades_next(run)


# -- LiveData on its own: what it checks, keeps and fetches --------------------------------


def _bars(days: pd.DatetimeIndex, close: float = 100.0) -> pd.DataFrame:
    closes = close + np.arange(len(days), dtype=float)
    return pd.DataFrame(
        {"open": closes, "high": closes + 1, "low": closes - 1, "close": closes, "volume": 10.0},
        index=pd.DatetimeIndex(days, name="date").as_unit("ns"),
    )


class FakeExchange:
    """Serves `bars` from the `since` asked; counts the calls."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = bars
        self.since: list[datetime] = []

    def __call__(self, symbol: str, since: datetime) -> pd.DataFrame:
        self.since.append(since)
        start = pd.Timestamp(since).tz_localize(None)
        return self.bars[~(self.bars.index < start)]


END = pd.Timestamp("2024-03-03")
DAYS = pd.date_range("2023-01-01", END + pd.Timedelta(days=1))
"""Up to the day in progress after END."""


def test_dates_out_of_order_from_the_exchange_are_refused_and_not_kept() -> None:
    good = _bars(DAYS)
    swapped = good.iloc[[*range(len(good) - 3), len(good) - 2, len(good) - 3, len(good) - 1]]
    exchange = FakeExchange(swapped)
    data = LiveData(None, exchange)
    with pytest.raises(DataError) as error:
        data.daily_column("BTC/USDT", "close", END)
    assert str(error.value) == "BTC/USDT 2024-03-02: comes after 2024-03-03: dates out of order"
    exchange.bars = good
    closes = data.daily_column("BTC/USDT", "close", END)
    assert closes.index[-1] == END
    assert exchange.since[1] == exchange.since[0]  # nothing was kept: fetched in full again


def test_a_bad_candle_older_than_the_fetched_window_is_never_read() -> None:
    bars = _bars(DAYS)
    bars.loc["2023-02-01", "close"] = np.nan
    data = LiveData(None, FakeExchange(bars), crypto_days=60)
    assert len(data.daily_column("BTC/USDT", "close", END)) == 61
    with pytest.raises(DataError, match="BTC/USDT 2023-02-01: close is missing"):
        LiveData(None, FakeExchange(bars)).daily_column("BTC/USDT", "close", END)


def test_exchange_errors_keep_their_class_and_name_the_symbol() -> None:
    def failing(symbol: str, since: datetime) -> pd.DataFrame:
        raise TransientVenueError("binance: RequestTimeout: timed out")

    with pytest.raises(TransientVenueError, match=r"^ETH/USDT: binance: RequestTimeout"):
        LiveData(None, failing).daily_bars("ETH/USDT", END)
