"""The breakout state as of a session, from the configured equity series.

`detect` only ever looks back (tests/test_breakout.py appends future bars and checks the past
does not move), so its row for day t is the same whether it ran on bars up to t or on a longer
history. `BreakoutSignal` uses that: after `prime()` with the whole replayed history, a day whose
inputs are a prefix of the primed ones is read from the primed frame instead of detected again.
Without priming (live), each new set of bars is detected once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategies.breakout import BreakoutDay, BreakoutParams, detect
from strategies.column import DailyColumn


@dataclass(frozen=True)
class SignalInputs:
    """Closes defining highs, the index volume and the benchmark closes, up to one session: pandas
    Series or their array form (`DailyColumn`, what a tick reads)."""

    close: pd.Series | DailyColumn
    volume: pd.Series | DailyColumn
    benchmark: pd.Series | DailyColumn

    @property
    def last_date(self) -> pd.Timestamp:
        close = self.close
        return close.last_date if isinstance(close, DailyColumn) else close.index[-1]


class BreakoutSignal:
    def __init__(self, params: BreakoutParams) -> None:
        self.params = params
        self._inputs: tuple[DailyColumn, DailyColumn, DailyColumn] | None = None
        self._frame: pd.DataFrame | None = None
        self._columns: dict[str, np.ndarray] = {}
        self._index: np.ndarray = np.array([], dtype="datetime64[ns]")
        self._days: dict[int, BreakoutDay] = {}
        self._seen: dict[int, tuple[SignalInputs, BreakoutDay]] = {}
        """Inputs already answered from the primed frame (the same objects, when a sweep's runs
        share their replayed reads), held so that their ids stay theirs."""

    def prime(self, inputs: SignalInputs) -> pd.DataFrame:
        """Detect over `inputs` once; later days covered by them are read, not recomputed."""
        close, volume, benchmark = (
            _series(x) for x in (inputs.close, inputs.volume, inputs.benchmark)
        )
        if volume.index is not close.index and not volume.index.equals(close.index):
            volume = volume.reindex(close.index)
        self._frame = detect(close, volume, benchmark, self.params)
        self._inputs = (DailyColumn.of(close), DailyColumn.of(volume), DailyColumn.of(benchmark))
        self._columns = {name: self._frame[name].to_numpy() for name in self._frame.columns}
        self._index = self._frame.index.to_numpy()
        self._days = {}
        self._seen = {}
        return self._frame

    @property
    def frame(self) -> pd.DataFrame | None:
        """The last detected frame: every session's state and evidence."""
        return self._frame

    def day(self, inputs: SignalInputs) -> BreakoutDay:
        """The state on the last session of `inputs` (weekend ticks reuse Friday's)."""
        seen = self._seen.get(id(inputs))
        if seen is not None and seen[0] is inputs:  # these very inputs were checked and read
            return seen[1]
        given = _args(inputs)
        if not self._covers(given):
            self.prime(inputs)
        assert self._frame is not None
        close = given[0]
        key = close.last_ns
        day = self._days.get(key)
        if day is None:
            # the frame's index is the primed closes' dates, of which `close` is a prefix
            i = len(close) - 1
            day = self._days[key] = BreakoutDay.from_columns(self._index, self._columns, i)
        if len(self._seen) < _SEEN_LIMIT:
            self._seen[id(inputs)] = (inputs, day)
        return day

    def _covers(self, given: tuple[DailyColumn, DailyColumn, DailyColumn]) -> bool:
        """True when `given` are the primed inputs cut at their last date."""
        if self._inputs is None:
            return False
        return all(
            _same_prefix(mine, theirs) for mine, theirs in zip(self._inputs, given, strict=True)
        )


_SEEN_LIMIT = 1 << 15


def _args(inputs: SignalInputs) -> tuple[DailyColumn, DailyColumn, DailyColumn]:
    """The inputs as arrays, the volume aligned to the closes' dates."""
    close, volume, benchmark = (_column(x) for x in (inputs.close, inputs.volume, inputs.benchmark))
    if not _same_dates(volume.dates, close.dates):
        volume = DailyColumn.of(_series(volume).reindex(_series(close).index))
    return close, volume, benchmark


def _column(x: pd.Series | DailyColumn) -> DailyColumn:
    return x if isinstance(x, DailyColumn) else DailyColumn.of(x)


def _series(x: pd.Series | DailyColumn) -> pd.Series:
    return x.to_series() if isinstance(x, DailyColumn) else x


def _same_dates(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if len(a) != len(b):
        return False
    if len(a) == 0 or (a.base is not None and a.base is b.base and a.ctypes.data == b.ctypes.data):
        return True
    return bool(np.array_equal(a, b))


def _same_prefix(primed: DailyColumn, given: DailyColumn) -> bool:
    """`given` equals `primed` up to its end: same last date, length and last value.

    Bars only ever grow at the end and are validated on load, so comparing the tail is enough to
    tell a replayed prefix from a revised history (which is detected afresh)."""
    n = len(given)
    if n == 0 or n > len(primed) or primed.dates[n - 1] != given.dates[-1]:
        return n == 0 and len(primed) == 0
    last_primed, last_given = primed.values[n - 1], given.values[-1]
    return bool(np.isnan(last_primed) and np.isnan(last_given)) or last_primed == last_given
