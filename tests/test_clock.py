"""When a daily bar becomes usable: after its session's close, per the exchange calendar."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from agent.clock import EquitySessions, last_crypto_day

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
