"""Live market data for a testnet run: equity bars from Alpaca, crypto bars from the exchange.

Crypto symbols are the venue's (`BTC/USDT`, with `data.crypto_symbol = "{asset}/USDT"`): the
agent trades on the testnet's prices, so its trend gates and quotes read the same market.

Equity bars are checked by their adapter (`AlpacaData`, over their whole history: the breakout
detector reads all of it). Crypto bars are checked here, every closed day fetched, before any is
kept (`checks.check_bars`: `BTC/USDT 2024-03-02: close is missing`); the first fetch reaches
`crypto_days` back, enough for the trend gate (`staging.trend_window` closes) and the exit rule's
look-back, so a bad candle older than that is never read, and one inside it holds the tick. The
day in progress is neither kept nor checked (nothing reads it). A closed day the exchange sends
again must come back unchanged (the re-sent last cached day, at each extension); a different
candle for it is refused and the symbol's cache dropped, so the next read fetches the whole
window again. Nothing bad is cached: a later good fetch is used.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from agent.marketdata.checks import check_bars
from agent.ports import BAR_COLUMNS, DataError, MarketData, VenueError

CryptoBars = Callable[[str, datetime], pd.DataFrame]
"""(venue symbol, since) -> daily bars from `since`, in the replay frame format."""


class LiveData:
    def __init__(self, equities: MarketData, crypto: CryptoBars, *, crypto_days: int = 400) -> None:
        self.equities = equities
        self.crypto = crypto
        self.crypto_days = crypto_days
        self._crypto: dict[str, pd.DataFrame] = {}

    def daily_bars(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        if "/" not in symbol:
            return self.equities.daily_bars(symbol, end)
        bars = self._crypto_bars(symbol, end)
        return bars.iloc[: bars.index.searchsorted(end, side="right")]

    def daily_column(self, symbol: str, column: str, end: pd.Timestamp) -> pd.Series:
        if "/" not in symbol:
            return self.equities.daily_column(symbol, column, end)
        return self.daily_bars(symbol, end)[column]

    def _crypto_bars(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        """Fetched once, then only the days from the last cached bar when `end` passes it.

        Only bars up to `end` (the last closed day) are kept: the exchange also returns the day
        in progress, whose close would otherwise be cached as final."""
        cached = self._crypto.get(symbol)
        if cached is not None and cached.index[-1] >= end:
            return cached
        since = end - pd.Timedelta(days=self.crypto_days) if cached is None else cached.index[-1]
        fresh = self._fetch(symbol, since)
        closed = fresh[~(fresh.index > end)]  # a bar without a date is kept, to be refused
        check_bars(symbol, closed)
        if closed.empty:  # even the last cached day, asked for again, is missing
            raise DataError(f"{symbol}: no daily candles from {since.date()} to {end.date()}")
        if cached is None:
            merged = closed
        else:
            self._same_days(symbol, cached, closed)
            merged = pd.concat([cached, closed[closed.index > cached.index[-1]]])
        self._crypto[symbol] = merged
        return merged

    def _fetch(self, symbol: str, since: pd.Timestamp) -> pd.DataFrame:
        """The exchange's bars from `since`; its errors keep their class, with the symbol named."""
        start = datetime.combine(since.date(), datetime.min.time(), UTC)
        try:
            return self.crypto(symbol, start)
        except (DataError, VenueError) as exc:
            if symbol not in str(exc):
                exc.args = (f"{symbol}: {exc}", *exc.args[1:])
            raise

    def _same_days(self, symbol: str, cached: pd.DataFrame, closed: pd.DataFrame) -> None:
        """Closed days sent again must be unchanged; else the symbol's cache is dropped."""
        days = cached.index.intersection(closed.index)
        old = cached.loc[days, list(BAR_COLUMNS)].to_numpy(dtype=float)
        new = closed.loc[days, list(BAR_COLUMNS)].to_numpy(dtype=float)
        same = np.isclose(old, new, rtol=1e-9, atol=0, equal_nan=True).all(axis=1)
        if same.all():
            return
        row = int(np.argmin(same))
        del self._crypto[symbol]
        changed = ", ".join(
            f"{column} {old[row, k]:g} then {new[row, k]:g}"
            for k, column in enumerate(BAR_COLUMNS)
            if not np.isclose(old[row, k], new[row, k], rtol=1e-9, atol=0, equal_nan=True)
        )
        raise DataError(
            f"{symbol} {days[row]:%Y-%m-%d}: two different candles for this closed day "
            f"({changed}); the history is fetched again at the next read"
        )
