"""Paginated daily candles from a ccxt `fetch_ohlcv`, as a replay-format frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from agent.ports import DataError

PAGE = 1000
"""Candles per request: the most Binance and Bybit return."""
FIELDS = ("ts", "open", "high", "low", "close", "volume")

FetchPage = Callable[[int, int], list[list[Any]]]
"""(since in ms, limit) -> ccxt OHLCV rows [ms, open, high, low, close, volume]."""


def daily_candles(fetch: FetchPage, since_ms: int, stop_ms: int | None = None) -> pd.DataFrame:
    """Every candle from `since_ms` up to (not including) `stop_ms`, page by page, as served.

    Exact repeats (same time and values) are dropped. Nothing else is mended: two different
    candles for one day, candles out of order, missing (NaN) or impossible prices are kept for
    the caller to refuse (`checks.check_bars`). A row without six fields is a `DataError`."""
    rows: list[list[Any]] = []
    cursor = since_ms
    while stop_ms is None or cursor < stop_ms:
        page = fetch(cursor, PAGE)
        for row in page:
            if len(row) < len(FIELDS):
                raise DataError(f"a candle has {len(row)} fields, expected {len(FIELDS)}: {row}")
        rows.extend(row[: len(FIELDS)] for row in page if stop_ms is None or row[0] < stop_ms)
        if len(page) < PAGE:
            break
        last = max(int(row[0]) for row in page)
        if last < cursor:
            break  # nothing at or after the cursor: asking again would loop
        cursor = last + 1
    frame = pd.DataFrame(rows, columns=list(FIELDS)).drop_duplicates()
    dates = pd.to_datetime(frame.pop("ts"), unit="ms").dt.normalize()
    frame.index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    return frame.astype(float)
