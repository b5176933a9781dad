"""When a daily bar becomes usable: after its session's close, per the exchange calendar."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from agent.clock import EquitySessions, Pacer, last_crypto_day

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def sessions() -> EquitySessions:
    return EquitySessions()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("now", "session"),
    [
        ("2024-12-03 15:59", "2024-12-02"),  # before the close: yesterday's bar
        ("2024-12-03 16:00", "2024-12-03"),  # at the close: today's
        ("2024-07-06 12:00", "2024-07-05"),  # Saturday: Friday's
        ("2024-07-05 09:00", "2024-07-03"),  # after the July 4th holiday, before the open
        ("2024-11-29 13:00", "2024-11-29"),  # half day after Thanksgiving closes at 13:00
        ("2024-11-29 12:59", "2024-11-27"),
        ("2024-03-11 16:00", "2024-03-11"),  # first close after the switch to daylight time
    ],
)
def test_equity_bar_is_usable_only_after_its_session_closed(sessions, now, session):
    assert sessions.last_closed(at(now)) == pd.Timestamp(session)


def test_crypto_bar_is_usable_from_the_next_utc_midnight():
    assert last_crypto_day(datetime(2024, 1, 2, 0, 0, tzinfo=UTC)) == pd.Timestamp("2024-01-01")
    assert last_crypto_day(datetime(2024, 1, 1, 23, 59, tzinfo=UTC)) == pd.Timestamp("2023-12-31")


def test_naive_time_is_refused(sessions):
    with pytest.raises(ValueError, match="timezone-aware"):
        sessions.last_closed(datetime(2024, 1, 2))


class _WallClock:
    """A wall clock the test moves: ticks do work (`work`), the pacer sleeps (`sleep`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 9))
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_keeps_the_speed_whatever_a_tick_costs():
    wall = _WallClock()
    pacer = Pacer(0.010, monotonic=wall.monotonic, sleep=wall.sleep)
    for cost in (0.003, 0.007, 0.001):
        wall.work(cost)
        pacer.wait()
    assert wall.slept == [0.007, 0.003, 0.009]
    assert wall.now == pytest.approx(0.030)  # three ticks at 100 a second: 30 ms, not 41 ms


def test_pacer_does_not_burst_to_make_up_a_slow_tick():
    wall = _WallClock()
    pacer = Pacer(0.010, monotonic=wall.monotonic, sleep=wall.sleep)
    wall.work(0.025)  # overran: the next interval starts now
    pacer.wait()
    assert wall.slept == []
    wall.work(0.002)
    pacer.wait()
    assert wall.slept == [0.008]
