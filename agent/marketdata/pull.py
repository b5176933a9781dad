"""`spillover data pull`: the daily bars a config needs, written in the replay format.

Equity bars come from Alpaca (keys from the environment or `.env`). Crypto bars come from the
configured exchange's public market-data API through a ccxt client that holds no keys, so it can
read candles and nothing else; `venue.api_url` points it at a loopback test server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from agent.config import Config
from agent.marketdata.candles import daily_candles
from agent.marketdata.checks import check_bars
from agent.marketdata.replay import write_bars
from agent.ports import DataError


def pull(
    config: Config,
    out: Path,
    env: Mapping[str, str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    now: Callable[[], datetime],
) -> list[Path]:
    """Write every equity and crypto symbol of `config` from `start` to `end` into `out`."""
    from agent.marketdata.alpaca import AlpacaData

    data = config.data
    alpaca = AlpacaData.from_config(
        data, env, attempts=config.venue.read_attempts, clock_now=now, start=start.date()
    )
    written = []
    for symbol in dict.fromkeys(s for s in (data.index, data.index_price, data.benchmark) if s):
        written.append(write_bars(out, symbol, alpaca.daily_bars(symbol, end).loc[start:]))
    candles = PublicCandles(config.venue.exchange or "binance", config.venue.api_url)
    for asset in config.staging.assets:
        symbol = f"{asset}/{config.venue.quote}"
        bars = candles.daily(symbol, start, end)
        if bars.empty:
            raise DataError(f"{candles.exchange_id} {symbol}: no daily candles in the range")
        check_bars(f"{candles.exchange_id} {symbol}", bars)  # a bad candle is never written
        written.append(write_bars(out, symbol, bars))
    return written


class PublicCandles:
    """Daily OHLCV from an exchange's public API: a ccxt client without keys."""

    def __init__(self, exchange_id: str, api_url: str = "", attempts: int = 4) -> None:
        import ccxt

        from agent.venue.testnet import OPTIONS, point_at

        self._ccxt = ccxt
        self.exchange_id = exchange_id
        self.client = getattr(ccxt, exchange_id)(
            {"enableRateLimit": True, "options": dict(OPTIONS.get(exchange_id, {}))}
        )
        self.client.options["maxRetriesOnFailure"] = 0
        if api_url:
            point_at(self.client, api_url)
        self.attempts = attempts

    def daily(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Daily candles of `symbol` from `start` to `end` (inclusive)."""
        since = int(start.tz_localize(UTC).timestamp() * 1000)
        stop = int((end + pd.Timedelta(days=1)).tz_localize(UTC).timestamp() * 1000)
        return daily_candles(lambda cursor, limit: self._fetch(symbol, cursor, limit), since, stop)

    def _fetch(self, symbol: str, since: int, limit: int) -> list[list[Any]]:
        ccxt = self._ccxt
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, ccxt.NetworkError | ccxt.BadResponse)),
            wait=wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        )
        try:
            return retrying(self.client.fetch_ohlcv, symbol, "1d", since, limit)
        except ccxt.BaseError as exc:
            raise DataError(f"{self.exchange_id} {symbol}: {type(exc).__name__}: {exc}") from exc
