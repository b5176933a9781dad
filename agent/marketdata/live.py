"""Live market data for a testnet run: equity bars from Alpaca, crypto bars from the exchange.

Crypto symbols are the venue's (`BTC/USDT`, with `data.crypto_symbol = "{asset}/USDT"`): the
agent trades on the testnet's prices, so its trend gates and quotes read the same market.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

from agent.ports import MarketData

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
        """Fetched once, then only the days after the last cached bar when `end` passes it.

        Only bars up to `end` (the last closed day) are kept: the exchange also returns the day
        in progress, whose close would otherwise be cached as final."""
        cached = self._crypto.get(symbol)
        if cached is not None and not cached.empty and cached.index[-1] >= end:
            return cached
        if cached is None or cached.empty:
            since = end - pd.Timedelta(days=self.crypto_days)
        else:
            since = cached.index[-1]
        fresh = self.crypto(symbol, datetime.combine(since.date(), datetime.min.time(), UTC))
        merged = fresh if cached is None else pd.concat([cached, fresh])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index().loc[:end]
        self._crypto[symbol] = merged
        return merged
