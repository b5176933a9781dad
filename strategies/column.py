"""A prefix of one daily column as numpy arrays: what a tick reads without building pandas objects.

`DailyColumn` is the array-backed twin of `daily_bars(symbol, end)[column]`: its values and dates
(tz-naive, nanoseconds since the epoch) are views of the whole history cut at `end`, so taking one
costs a binary search instead of a Series slice. It offers the few Series operations the tick and
the stage schedule use (`len`, `empty`, `to_numpy`), the last date and value, and `to_series()`
for the rare paths that need pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd

T = TypeVar("T")


class DailyColumn:
    __slots__ = ("_memo", "dates", "name", "values")

    def __init__(self, values: np.ndarray, dates: np.ndarray, name: str | None = None) -> None:
        self.values = values
        """The column's values, oldest first."""
        self.dates = dates
        """Each value's date as int64 nanoseconds since the epoch (tz-naive), increasing."""
        self.name = name
        self._memo: dict[object, object] | None = None

    @classmethod
    def of(cls, series: pd.Series) -> DailyColumn:
        """The column of a Series indexed by a tz-naive DatetimeIndex."""
        index = pd.DatetimeIndex(series.index)
        return cls(series.to_numpy(), index.as_unit("ns").asi8, series.name)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def empty(self) -> bool:
        return len(self.values) == 0

    def to_numpy(self, dtype: object = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype, copy=False)

    @property
    def last_ns(self) -> int:
        return int(self.dates[-1])

    @property
    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.last_ns)

    @property
    def last_value(self) -> object:
        return self.values[-1]

    def memo(self, key: object, compute: Callable[[], T]) -> T:
        """`compute()`, kept with this column under `key`: the values never change, so what is
        derived from them (a trend gate) is computed once however many runs read the column."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        if key in memo:
            return memo[key]  # type: ignore[return-value]
        value = memo[key] = compute()
        return value

    def head(self, n: int) -> DailyColumn:
        """The first `n` values."""
        return DailyColumn(self.values[:n], self.dates[:n], self.name)

    def to_series(self) -> pd.Series:
        index = pd.DatetimeIndex(self.dates.view("datetime64[ns]"), name="date")
        return pd.Series(self.values, index=index, name=self.name)
