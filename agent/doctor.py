"""`spillover doctor`: what a testnet run needs, checked one line at a time before it trades.

Keys are reported present or missing, never shown. Testnet markets are often stale or empty, so a
configured asset the testnet does not list, or whose last daily bar is old, is a warning.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from agent.clock import SimClock
from agent.config import Config
from agent.secrets import ALPACA_KEY_NAMES, MissingSecret, exchange_key_names

if TYPE_CHECKING:
    from agent.marketdata.live import LiveData
    from agent.ports import Market

STALE_AFTER = timedelta(days=3)


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    level: Level
    what: str

    def line(self) -> str:
        return f"{self.level.value:<4}  {self.what}"


def run_checks(
    config: Config, env: Mapping[str, str], now: Callable[[], datetime]
) -> Iterator[Check]:
    """Every check in order; later checks are skipped when one they need has failed."""
    if config.venue.kind != "testnet":
        yield Check(Level.OK, "paper venue and offline data: nothing to reach")
        return
    names = (*ALPACA_KEY_NAMES, *exchange_key_names(config.venue.exchange))
    missing = [name for name in names if not env.get(name)]
    for name in names:
        yield Check(Level.FAIL if name in missing else Level.OK, f"{name} {_set(name, missing)}")
    if missing:
        return
    from agent.live import live_data, open_testnet_venue, read_keys
    from agent.ports import DataError, VenueError
    from agent.venue.testnet import LiveEndpointRefused

    try:
        keys = read_keys(config, env)
        venue = open_testnet_venue(config, keys)
    except (MissingSecret, VenueError, LiveEndpointRefused) as exc:
        yield Check(Level.FAIL, str(exc))
        return
    hosts = ", ".join(venue.api_hosts())
    yield Check(Level.OK, f"{venue.exchange_id}: sandbox mode on, calls go to {hosts}")
    data = live_data(config, env, venue, None, SimClock(now()))
    session = pd.Timestamp(now().date())
    for symbol in dict.fromkeys((config.data.index, config.data.benchmark)):
        try:
            bars = data.daily_bars(symbol, session)
        except DataError as exc:
            yield Check(Level.FAIL, str(exc))
            continue
        last = bars.index[-1].date() if len(bars) else "none"
        yield Check(Level.OK, f"alpaca {symbol}: {len(bars)} daily bars, last {last}")
    try:
        markets = venue.markets()
        balances = venue.balances(now())
    except VenueError as exc:
        yield Check(Level.FAIL, f"{venue.exchange_id}: {exc}")
        return
    yield from _market_checks(config, data, markets, now())
    held = ", ".join(f"{name} {amount:g}" for name, amount in sorted(balances.items()) if amount)
    yield Check(Level.OK, f"{venue.exchange_id} balances: {held or 'all zero'}")
    if not balances.get(config.venue.quote):
        yield Check(Level.WARN, f"no {config.venue.quote} to buy with on the testnet")


def _market_checks(
    config: Config, data: LiveData, markets: Mapping[str, Market], now: datetime
) -> Iterator[Check]:
    from agent.ports import DataError, VenueError

    day = pd.Timestamp(now.date()) - pd.Timedelta(days=1)  # the last closed UTC day
    for asset in config.staging.assets:
        symbol = f"{asset}/{config.venue.quote}"
        if symbol not in markets:
            yield Check(Level.WARN, f"{symbol}: not listed on the testnet; it will not trade")
            continue
        try:
            bars = data.daily_bars(config.data.crypto_symbol.format(asset=asset), day)
        except (DataError, VenueError) as exc:
            yield Check(Level.WARN, f"{symbol}: no daily bars: {exc}")
            continue
        if bars.empty:
            yield Check(Level.WARN, f"{symbol}: listed but no daily bars")
            continue
        last = bars.index[-1].to_pydatetime().replace(tzinfo=UTC) + timedelta(days=1)
        if now - last > STALE_AFTER:
            yield Check(Level.WARN, f"{symbol}: last daily bar {bars.index[-1].date()} is stale")
        else:
            yield Check(Level.OK, f"{symbol}: listed, last daily bar {bars.index[-1].date()}")


def _set(name: str, missing: list[str]) -> str:
    return "not set (environment or .env)" if name in missing else "set"
