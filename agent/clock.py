"""Time: the injected clock, and when a daily bar becomes usable.

An equity bar is usable once its session has closed (16:00 America/New_York, earlier on half
days), per the exchange's calendar from `exchange_calendars`. A crypto bar for UTC day D is usable
from D+1 00:00 UTC. Nothing else in the agent decides what "today's data" is.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

EQUITY_CALENDAR = "XNYS"
CALENDAR_START = "1990-01-01"
_ONE_DAY = timedelta(days=1)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class SimClock:
    """A clock the caller moves: backtests and replays."""

    current: datetime

    def now(self) -> datetime:
        return self.current


class Pacer:
    """Holds a replay to at most one tick per `interval` wall seconds (`run --speed`).

    Each wait is what is left of the interval after the tick's own work, so a replay keeps its
    speed whatever a tick costs, up to the point where ticks take longer than the interval. A
    tick that overran starts the next interval at once: a slow stretch is not made up by a burst.
    """

    def __init__(
        self,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._monotonic, self._sleep = monotonic, sleep
        self._next = monotonic() + interval

    def wait(self) -> None:
        """Wait for the end of the current interval, then start the next."""
        now = self._monotonic()
        if now < self._next:
            self._sleep(self._next - now)
            self._next += self.interval
        else:
            self._next = now + self.interval


@dataclass
class EquitySessions:
    """The sessions of an exchange and their close times, read once from its calendar."""

    name: str = EQUITY_CALENDAR
    _sessions: pd.DatetimeIndex = field(init=False, repr=False)
    _closes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        calendar = exchange_calendar(self.name)
        self._sessions = calendar.sessions
        self._closes = calendar.closes.to_numpy(dtype="datetime64[ns]")

    def last_closed(self, now: datetime) -> pd.Timestamp | None:
        """The latest session that had closed at `now` (tz-naive date), None before the first."""
        position = np.searchsorted(self._closes, _utc64(now), side="right")
        return None if position == 0 else self._sessions[position - 1]

    def close_time(self, session: pd.Timestamp) -> datetime:
        position = self._sessions.get_loc(session)
        return pd.Timestamp(self._closes[position]).tz_localize(UTC).to_pydatetime()


@functools.cache
def exchange_calendar(name: str = EQUITY_CALENDAR) -> ExchangeCalendar:
    """The exchange's calendar from `exchange_calendars` (sessions, closes, half days), built once
    per process from CALENDAR_START to a year ahead."""
    import exchange_calendars

    with warnings.catch_warnings():  # exchange_calendars 4.13 on pandas 3.1: a deprecation
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        return exchange_calendars.get_calendar(name, start=CALENDAR_START)


def last_crypto_day(now: datetime) -> pd.Timestamp:
    """The latest UTC day whose daily bar has closed at `now`."""
    return pd.Timestamp(_require_utc(now).date()) - pd.Timedelta(days=1)


def crypto_bar_end(day: pd.Timestamp) -> datetime:
    """When the bar of UTC day `day` closes: the next midnight UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + _ONE_DAY


def day_start(day: pd.Timestamp | datetime) -> datetime:
    """Midnight UTC opening a (tz-naive) day."""
    return pd.Timestamp(day).normalize().tz_localize(None).tz_localize(UTC).to_pydatetime()


def daily_ticks(first: pd.Timestamp, last: pd.Timestamp) -> list[datetime]:
    """One tick per day from `first` to `last` (inclusive), at the midnight that closes the day."""
    return list(_daily_ticks(first, last))


@functools.lru_cache(maxsize=64)
def _daily_ticks(first: pd.Timestamp, last: pd.Timestamp) -> tuple[datetime, ...]:
    """Kept per range: a sweep's points tick over the same days."""
    days = pd.date_range(first, last, freq="D")
    return tuple(crypto_bar_end(day) for day in days)


def _require_utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware, got {now!r}")
    return now.astimezone(UTC)


def _utc64(now: datetime) -> np.datetime64:
    return np.datetime64(_require_utc(now).replace(tzinfo=None), "ns")
