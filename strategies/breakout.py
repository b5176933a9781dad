"""Small-cap breakout detector: a deterministic state machine over daily bars.

It watches the small-cap proxy (default IWM) against a benchmark (default SPY) and reports, for
every session, one of five states with the numbers behind it:

- ``neutral``: no breakout has been confirmed yet and none is under way;
- ``candidate``: a close went above the prior high (the *level*); within the ``confirm_window``
  sessions that start there, ``confirm_closes`` closes must hold above that level, with at least
  one *counted* day (a new high on heavy volume while small caps lead the benchmark), or the
  candidate lapses and a new one needs a new high;
- ``confirmed``: the lag window is open; it lasts ``window_days`` calendar days;
- ``failed``: after confirmation, a close fell below level x (1 - ``fail_pct``);
- ``expired``: the lag window ended without a failure.

An episode is the span from a confirmation to its failure or expiry. Its dates and level stay on
every later row until the next confirmation replaces them, so the stage schedule can keep
stepping down (after a failure) or tapering (after expiry) while a new candidate is examined.
Re-arming is explicit: after a failure or an expiry, a new candidate needs a close above a level
higher than the last episode's. An expired episode is still watched: a collapse below its fail
line turns it into ``failed``.

Thin sessions (volume below ``thin_volume_ratio`` x the median, like holiday half days) never
start a candidate and never count as a hold or a counted day; they still trip failure.

Every feature is causal: the level and the median volume use only earlier sessions, the
relative-strength mean ends at the day itself, so appending future bars never changes the past.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strategies.params import (
    ParamError,
    require_fraction,
    require_non_negative,
    require_positive,
)


class State(enum.StrEnum):
    NEUTRAL = "neutral"
    CANDIDATE = "candidate"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class BreakoutParams:
    """Rules of the detector. Windows count sessions, except `window_days` (calendar days)."""

    lookback: int = 0
    """Sessions of history that define the level; 0 means all history (a true all-time high)."""
    buffer: float = 0.0
    """A close must exceed level x (1 + buffer) to start a candidate or to count."""
    volume_multiple: float = 1.2
    """A counted day has volume >= volume_multiple x the median of the previous sessions."""
    volume_window: int = 50
    """Sessions in the volume median (the day itself excluded)."""
    thin_volume_ratio: float = 0.6
    """Volume below this x the median marks a thin session, which never counts."""
    rs_window: int = 50
    """Sessions in the mean of the index/benchmark close ratio."""
    confirm_closes: int = 3
    """Closes above the level needed among the last `confirm_window` to confirm."""
    confirm_window: int = 5
    """Sessions over which `confirm_closes` must hold."""
    fail_pct: float = 0.05
    """After confirmation, a close below level x (1 - fail_pct) fails the breakout."""
    window_days: int = 91
    """Calendar days of the lag window, counted from confirmation."""

    def __post_init__(self) -> None:
        require_non_negative("lookback", self.lookback)
        require_non_negative("buffer", self.buffer)
        for key in ("volume_multiple", "volume_window", "rs_window", "confirm_closes"):
            require_positive(key, getattr(self, key))
        for key in ("confirm_window", "window_days"):
            require_positive(key, getattr(self, key))
        require_fraction("thin_volume_ratio", self.thin_volume_ratio)
        require_fraction("fail_pct", self.fail_pct, allow_zero=False)
        if self.thin_volume_ratio >= self.volume_multiple:
            raise ParamError(
                "thin_volume_ratio",
                f"must be below volume_multiple ({self.volume_multiple}), "
                f"got {self.thin_volume_ratio}",
            )
        if self.confirm_closes > self.confirm_window:
            raise ParamError(
                "confirm_closes",
                f"cannot exceed confirm_window ({self.confirm_window}), got {self.confirm_closes}",
            )


COLUMNS: tuple[str, ...] = (
    "state",
    "close",
    "level",
    "volume",
    "median_volume",
    "rel_volume",
    "rs",
    "rs_mean",
    "thin",
    "counted",
    "candidate_date",
    "candidate_level",
    "holds",
    "counted_in_window",
    "episode_level",
    "confirmed_date",
    "failed_date",
    "prefail_date",
    "expired_date",
    "window_day",
)
"""The evidence `detect` returns for each session, in order."""
_DATE_COLUMNS = ("candidate_date", "confirmed_date", "failed_date", "prefail_date", "expired_date")


def detect(
    close: pd.Series,
    volume: pd.Series,
    benchmark_close: pd.Series,
    params: BreakoutParams,
) -> pd.DataFrame:
    """The state and its evidence for every session of `close`.

    `close` is the price series that defines highs (with dividend-adjusted bars a high is a
    total-return high); `volume` and `benchmark_close` are aligned to its dates, a missing value
    meaning unknown: unknown volume never counts, an unknown benchmark never shows leadership.
    """
    _check_series(close)
    features = _features(close, volume.reindex(close.index), benchmark_close, params)
    walk = _walk(features, params)
    frame = pd.concat([features, walk], axis=1)
    return frame.loc[:, list(COLUMNS)]


def _check_series(close: pd.Series) -> None:
    if not isinstance(close.index, pd.DatetimeIndex):
        raise ValueError("close: index must be a DatetimeIndex of session dates")
    if not close.index.is_monotonic_increasing or close.index.has_duplicates:
        raise ValueError("close: dates must be strictly increasing")
    values = close.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        bad = close.index[~(np.isfinite(values) & (values > 0))][0]
        raise ValueError(f"close: non-positive or missing price on {bad.date()}")


def _features(
    close: pd.Series, volume: pd.Series, benchmark: pd.Series, params: BreakoutParams
) -> pd.DataFrame:
    prior = close.shift(1)
    if params.lookback:
        level = prior.rolling(params.lookback, min_periods=1).max()
    else:
        level = prior.cummax()
    median_volume = (
        volume.shift(1).rolling(params.volume_window, min_periods=params.volume_window).median()
    )
    rel_volume = volume / median_volume.where(median_volume > 0)
    rs = close / benchmark.reindex(close.index)
    rs_mean = rs.rolling(params.rs_window, min_periods=params.rs_window).mean()

    above = close > level * (1 + params.buffer)
    thin = rel_volume < params.thin_volume_ratio
    counted = above & ~thin & (rel_volume >= params.volume_multiple) & (rs > rs_mean)
    return pd.DataFrame(
        {
            "close": close.astype(float),
            "level": level,
            "volume": volume.astype(float),
            "median_volume": median_volume,
            "rel_volume": rel_volume,
            "rs": rs,
            "rs_mean": rs_mean,
            "above": above,
            "thin": thin,
            "counted": counted,
        },
        index=close.index,
    )


@dataclass
class _Episode:
    level: float
    confirmed: pd.Timestamp
    failed: pd.Timestamp | None = None
    prefail: pd.Timestamp | None = None
    expired: pd.Timestamp | None = None

    @property
    def live(self) -> bool:
        return self.failed is None and self.expired is None


@dataclass
class _Candidate:
    start: int
    date: pd.Timestamp
    level: float


def _walk(features: pd.DataFrame, params: BreakoutParams) -> pd.DataFrame:
    """Run the state machine session by session; only the past is ever consulted."""
    dates = features.index
    close = features["close"].to_numpy()
    level = features["level"].to_numpy()
    above = features["above"].to_numpy()
    thin = features["thin"].to_numpy()
    counted = features["counted"].to_numpy()

    rows: list[dict[str, Any]] = []
    episode: _Episode | None = None
    candidate: _Candidate | None = None
    for i, today in enumerate(dates):
        holds = counted_in_window = 0
        if episode is not None and episode.failed is None:
            if close[i] < episode.level * (1 - params.fail_pct):
                episode.failed = today
                episode.prefail = dates[i - 1]
            elif episode.live and (today - episode.confirmed).days >= params.window_days:
                episode.expired = today

        can_arm = episode is None or (not episode.live and level[i] > episode.level)
        if candidate is None and can_arm and above[i] and not thin[i]:
            candidate = _Candidate(start=i, date=today, level=float(level[i]))

        state, shown = _episode_state(episode), candidate
        if candidate is not None:
            window = slice(candidate.start, i + 1)
            holds = int(np.sum((close[window] > candidate.level) & ~thin[window]))
            counted_in_window = int(np.sum(counted[window]))
            seen = i - candidate.start + 1
            if holds >= params.confirm_closes and counted_in_window >= 1:
                episode = _Episode(level=candidate.level, confirmed=today)
                state, candidate = State.CONFIRMED, None
            elif seen >= params.confirm_window or seen - holds > (
                params.confirm_window - params.confirm_closes
            ):
                candidate = None
            else:
                state = State.CANDIDATE
        rows.append(_row(state, shown, holds, counted_in_window, episode, today))
    frame = pd.DataFrame(rows, index=dates)
    for column in _DATE_COLUMNS:
        frame[column] = frame[column].astype(dates.dtype)
    return frame


def _episode_state(episode: _Episode | None) -> State:
    if episode is None:
        return State.NEUTRAL
    if episode.failed is not None:
        return State.FAILED
    if episode.expired is not None:
        return State.EXPIRED
    return State.CONFIRMED


def _row(
    state: State,
    candidate: _Candidate | None,
    holds: int,
    counted_in_window: int,
    episode: _Episode | None,
    today: pd.Timestamp,
) -> dict[str, Any]:
    return {
        "state": state.value,
        "candidate_date": candidate.date if candidate else pd.NaT,
        "candidate_level": candidate.level if candidate else math.nan,
        "holds": holds,
        "counted_in_window": counted_in_window,
        "episode_level": episode.level if episode else math.nan,
        "confirmed_date": episode.confirmed if episode else pd.NaT,
        "failed_date": (episode.failed or pd.NaT) if episode else pd.NaT,
        "prefail_date": (episode.prefail or pd.NaT) if episode else pd.NaT,
        "expired_date": (episode.expired or pd.NaT) if episode else pd.NaT,
        "window_day": (today - episode.confirmed).days if episode else math.nan,
    }


@dataclass(frozen=True)
class BreakoutDay:
    """One session's state with the evidence a decision cites."""

    date: pd.Timestamp
    state: State
    close: float
    level: float
    rel_volume: float
    rs: float
    rs_mean: float
    thin: bool
    counted: bool
    holds: int
    counted_in_window: int
    candidate_date: pd.Timestamp | None
    candidate_level: float
    episode_level: float
    confirmed_date: pd.Timestamp | None
    failed_date: pd.Timestamp | None
    prefail_date: pd.Timestamp | None
    expired_date: pd.Timestamp | None
    window_day: int | None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, date: pd.Timestamp | None = None) -> BreakoutDay:
        """The row for `date` (default: the last row) of a `detect` frame."""
        i = len(frame) - 1 if date is None else frame.index.get_loc(date)
        columns = {name: frame[name].to_numpy() for name in COLUMNS}
        return cls.from_columns(frame.index.to_numpy(), columns, i)

    @classmethod
    def from_columns(cls, index: np.ndarray, columns: dict[str, Any], i: int) -> BreakoutDay:
        """Row `i` of a `detect` frame given as its index and `{column: numpy array}` (numpy
        arrays: callers reading many rows convert the index and columns once)."""

        def c(name: str) -> Any:
            return columns[name][i]

        window_day = c("window_day")
        return cls(
            date=pd.Timestamp(index[i]),
            state=State(c("state")),
            close=float(c("close")),
            level=float(c("level")),
            rel_volume=float(c("rel_volume")),
            rs=float(c("rs")),
            rs_mean=float(c("rs_mean")),
            thin=bool(c("thin")),
            counted=bool(c("counted")),
            holds=int(c("holds")),
            counted_in_window=int(c("counted_in_window")),
            candidate_date=_date_or_none(c("candidate_date")),
            candidate_level=float(c("candidate_level")),
            episode_level=float(c("episode_level")),
            confirmed_date=_date_or_none(c("confirmed_date")),
            failed_date=_date_or_none(c("failed_date")),
            prefail_date=_date_or_none(c("prefail_date")),
            expired_date=_date_or_none(c("expired_date")),
            window_day=None if pd.isna(window_day) else int(window_day),
        )

    @property
    def episode(self) -> tuple[pd.Timestamp | None, ...]:
        """The dates the staging schedule reads: confirmed, failed, pre-failure and expired."""
        return (self.confirmed_date, self.failed_date, self.prefail_date, self.expired_date)

    def evidence(self) -> dict[str, Any]:
        """JSON-ready numbers for the journal: NaN becomes None, dates become ISO strings."""
        memo = self.__dict__.get(_EVIDENCE)
        if memo is not None:  # a day is read by every run on the same data: computed once
            return dict(memo)
        out: dict[str, Any] = {}
        values = self.__dict__
        for key in _DAY_FIELDS:
            value = values[key]
            if isinstance(value, pd.Timestamp):
                out[key] = value.date().isoformat()
            elif isinstance(value, float) and not math.isfinite(value):
                out[key] = None
            elif isinstance(value, State):
                out[key] = value.value
            else:
                out[key] = value
        object.__setattr__(self, _EVIDENCE, out)
        return dict(out)


_DAY_FIELDS = tuple(f.name for f in dataclasses.fields(BreakoutDay))
_EVIDENCE = "_evidence"
"""Where a day keeps its evidence once computed (outside its fields: not compared, not shown)."""


def _date_or_none(value: Any) -> pd.Timestamp | None:
    return None if pd.isna(value) else pd.Timestamp(value)
