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


@dataclass(frozen=True)
class SignalInputs:
    """Closes defining highs, the index volume and the benchmark closes, up to one session."""

    close: pd.Series
    volume: pd.Series
    benchmark: pd.Series

    @property
    def last_date(self) -> pd.Timestamp:
        return self.close.index[-1]


class BreakoutSignal:
    def __init__(self, params: BreakoutParams) -> None:
        self.params = params
        self._inputs: tuple[pd.Series, pd.Series, pd.Series] | None = None
        self._frame: pd.DataFrame | None = None
        self._columns: dict[str, np.ndarray] = {}
        self._days: dict[pd.Timestamp, BreakoutDay] = {}

    def prime(self, inputs: SignalInputs) -> pd.DataFrame:
        """Detect over `inputs` once; later days covered by them are read, not recomputed."""
        self._inputs = _args(inputs)
        self._frame = detect(*self._inputs, self.params)
        self._columns = {name: self._frame[name].to_numpy() for name in self._frame.columns}
        self._days = {}
        return self._frame

    @property
    def frame(self) -> pd.DataFrame | None:
        """The last detected frame: every session's state and evidence."""
        return self._frame

    def day(self, inputs: SignalInputs) -> BreakoutDay:
        """The state on the last session of `inputs` (weekend ticks reuse Friday's)."""
        if not self._covers(inputs):
            self.prime(inputs)
        assert self._frame is not None
        date = inputs.last_date
        day = self._days.get(date)
        if day is None:
            i = self._frame.index.get_loc(date)
            day = self._days[date] = BreakoutDay.from_columns(self._frame.index, self._columns, i)
        return day

    def _covers(self, inputs: SignalInputs) -> bool:
        """True when `inputs` are the primed inputs cut at their last date."""
        if self._inputs is None:
            return False
        return all(
            _same_prefix(mine, theirs)
            for mine, theirs in zip(self._inputs, _args(inputs), strict=True)
        )


def _args(inputs: SignalInputs) -> tuple[pd.Series, pd.Series, pd.Series]:
    volume, index = inputs.volume, inputs.close.index
    if volume.index is not index and not volume.index.equals(index):
        volume = volume.reindex(index)
    return inputs.close, volume, inputs.benchmark


def _same_prefix(primed: pd.Series, given: pd.Series) -> bool:
    """`given` equals `primed` up to its end: same last date, length and last value.

    Bars only ever grow at the end and are validated on load, so comparing the tail is enough to
    tell a replayed prefix from a revised history (which is detected afresh)."""
    n = len(given)
    if n == 0 or n > len(primed) or primed.index[n - 1] != given.index[-1]:
        return n == 0 and len(primed) == 0
    last_primed, last_given = primed.iat[n - 1], given.iat[-1]
    return bool(np.isnan(last_primed) and np.isnan(last_given)) or last_primed == last_given
