"""The checks every daily bar passes, whatever its source: replayed files, Alpaca, exchange candles.

Prices (open, high, low, close) must be finite and > 0 with low <= open, close <= high (1e-9
relative tolerance); volume is >= 0 or NaN (unknown). Dates are strictly increasing: one bar per
day, oldest first. The checks are vectorised masks; the earliest bad row wins, and on one row
the first check in the list. Each source words its date problems itself (a file names lines, an
adapter names sessions or days), so `replay.first_problem`, Alpaca and `check_bars` (live bars)
share the masks and the price wording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from agent.ports import BAR_COLUMNS, DataError

PRICES = ("open", "high", "low", "close")
TOLERANCE = 1e-9

Describe = Callable[[int], str]
"""Row number -> what is wrong with that row."""
Check = tuple[np.ndarray, Describe]
"""A mask of bad rows and how to describe one."""

_NAT = np.iinfo(np.int64).min
"""NaT as int64 nanoseconds."""


def value_checks(values: Mapping[str, np.ndarray]) -> list[Check]:
    """Prices and volume of each row: `values` maps every bar column to a float array."""
    low, high = values["low"], values["high"]
    slack = TOLERANCE * np.abs(high)
    checks: list[Check] = []
    for column in PRICES:
        price = values[column]
        checks.append((np.isnan(price), lambda i, c=column: f"{c} is missing"))
        checks.append(
            (
                ~np.isnan(price) & ~(np.isfinite(price) & (price > 0)),
                lambda i, c=column: f"{c} is {values[c][i]:g}: prices must be > 0 and finite",
            )
        )
    volume = values["volume"]
    checks += [
        (
            ~np.isnan(volume) & ~(np.isfinite(volume) & (volume >= 0)),
            lambda i: f"volume is {volume[i]:g}: must be >= 0 (or empty when unknown)",
        ),
        (high < low, lambda i: f"high {high[i]:g} is below low {low[i]:g}"),
    ]
    for column in ("open", "close"):
        price = values[column]
        checks.append(
            (
                price > high + slack,
                lambda i, c=column: f"{c} {values[c][i]:g} is above high {high[i]:g}",
            )
        )
        checks.append(
            (
                price < low - TOLERANCE * np.abs(low),
                lambda i, c=column: f"{c} {values[c][i]:g} is below low {low[i]:g}",
            )
        )
    return checks


def order_checks(ns: np.ndarray, duplicate: Describe, backwards: Describe) -> list[Check]:
    """Dates (int64 nanoseconds, NaT allowed and skipped) repeated, or before the row above."""
    previous = np.concatenate(([_NAT], ns[:-1]))
    dated = ns != _NAT
    return [
        (dated & (ns == previous), duplicate),
        (dated & (ns < previous), backwards),
    ]


def earliest(checks: Iterable[Check]) -> tuple[int, str] | None:
    """The first bad row and what is wrong with it, or None."""
    first: tuple[int, str] | None = None
    for mask, describe in checks:
        if not mask.any():
            continue
        row = int(np.argmax(mask))
        if first is None or row < first[0]:
            first = (row, describe(row))
    return first


def bar_values(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    return {column: bars[column].to_numpy(dtype=float) for column in BAR_COLUMNS}


def check_bars(source: str, bars: pd.DataFrame) -> None:
    """Raise `DataError` `SOURCE DAY: problem` for the first bad bar of a date-indexed frame
    (`BTC/USDT 2024-03-02: close is missing`)."""
    index = pd.DatetimeIndex(bars.index)
    days = index.strftime("%Y-%m-%d")
    checks = [
        (np.asarray(index.isna()), lambda i: "date is missing"),
        *value_checks(bar_values(bars)),
        *order_checks(
            index.as_unit("ns").asi8,
            lambda i: "a second bar for this day",
            lambda i: f"comes after {days[i - 1]}: dates out of order",
        ),
    ]
    found = earliest(checks)
    if found is not None:
        row, problem = found
        day = "(no date)" if index[row] is pd.NaT else days[row]
        raise DataError(f"{source} {day}: {problem}")
