"""Paginated daily candles from a ccxt `fetch_ohlcv`, as a replay-format frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

PAGE = 1000
"""Candles per request: the most Binance and Bybit return."""

FetchPage = Callable[[int, int], list[list[Any]]]
"""(since in ms, limit) -> ccxt OHLCV rows [ms, open, high, low, close, volume]."""


def daily_candles(fetch: FetchPage, since_ms: int, stop_ms: int | None = None) -> pd.DataFrame:
    """Every candle from `since_ms` up to (not including) `stop_ms`, page by page."""
    rows: list[list[Any]] = []
    cursor = since_ms
    while stop_ms is None or cursor < stop_ms:
        page = fetch(cursor, PAGE)
        rows.extend(row for row in page if stop_ms is None or row[0] < stop_ms)
        if len(page) < PAGE:
            break
        cursor = int(page[-1][0]) + 1
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    frame = frame.drop_duplicates("ts").sort_values("ts")
    dates = pd.to_datetime(frame.pop("ts"), unit="ms").dt.normalize()
    frame.index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    return frame.astype(float)
