"""A testnet run: Alpaca equity bars, the exchange's crypto bars and testnet orders, ticking once
a day on the wall clock (first at start, then daily at `run.tick_at` UTC) until stopped."""

from __future__ import annotations

import time as wall
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from agent import __version__
from agent.clock import Clock, EquitySessions, SystemClock
from agent.config import Config
from agent.loop import Agent, TickResult
from agent.marketdata.live import LiveData
from agent.runtime import RunFiles
from agent.secrets import ALPACA_KEY_NAMES, exchange_key_names, require
from agent.venue.testnet import OnRetry, TestnetVenue
from risk.journal import Journal


@dataclass(frozen=True)
class Keys:
    alpaca: tuple[str, str]
    exchange: tuple[str, str]

    @property
    def values(self) -> tuple[str, ...]:
        return (*self.alpaca, *self.exchange)


def read_keys(config: Config, env: Mapping[str, str]) -> Keys:
    """The keys a testnet run needs; `MissingSecret` names every absent variable."""
    names = (*ALPACA_KEY_NAMES, *exchange_key_names(config.venue.exchange))
    values = require(env, *names)
    return Keys(alpaca=(values[0], values[1]), exchange=(values[2], values[3]))


def open_testnet_venue(config: Config, keys: Keys, on_retry: OnRetry | None = None) -> TestnetVenue:
    venue = config.venue
    return TestnetVenue(
        venue.exchange,
        *keys.exchange,
        quote=venue.quote,
        assets=config.staging.assets,
        api_url=venue.api_url,
        timeout_s=venue.timeout_s,
        read_attempts=venue.read_attempts,
        on_retry=on_retry,
        first_wait_s=venue.retry_wait_s,
        max_wait_s=venue.retry_max_wait_s,
        rate_limit=venue.rate_limit,
    )


def live_data(
    config: Config,
    env: Mapping[str, str],
    venue: TestnetVenue,
    on_retry: OnRetry | None,
    clock: Clock,
) -> LiveData:
    from agent.marketdata.alpaca import AlpacaData

    equities = AlpacaData.from_config(
        config.data,
        env,
        attempts=config.venue.read_attempts,
        on_retry=on_retry,
        clock_now=clock.now,
        timeout_s=config.venue.timeout_s,
        wait_initial=config.venue.retry_wait_s,
        wait_max=config.venue.retry_max_wait_s,
    )
    return LiveData(equities, venue.daily_ohlcv)


def next_tick(now: datetime, at: time) -> datetime:
    """The first daily tick time strictly after `now`."""
    today = datetime.combine(now.date(), at, UTC)
    return today if today > now else today + timedelta(days=1)


def run_live(
    config: Config,
    run_dir: Path,
    env: Mapping[str, str],
    *,
    should_stop: Callable[[], str | None],
    on_tick: Callable[[TickResult], None],
    clock: Clock | None = None,
    sleep: Callable[[float], None] = wall.sleep,
) -> str:
    """Tick until `should_stop` gives a reason; return it."""
    clock = clock or SystemClock()
    keys = read_keys(config, env)
    files = RunFiles.create(run_dir, keep_previous=True)
    run_id = f"tn-{config.hash()[:8]}"
    journal = Journal(files.journal, run_id, secrets=keys.values, fsync=config.run.fsync)

    def on_retry(call: str, attempt: int, exc: BaseException) -> None:
        journal.error(clock.now(), exc, call=call, attempt=attempt, retrying=True)

    with journal, files.open_store(run_id, config.hash(), "testnet", clock.now()) as store:
        venue = open_testnet_venue(config, keys, on_retry)
        agent = Agent(
            config,
            live_data(config, env, venue, on_retry, clock),
            venue,
            journal,
            EquitySessions(),
            store=store,
        )
        journal.write(
            "start", clock.now(), config_hash=config.hash(), mode="testnet", version=__version__
        )
        due = clock.now()
        reason = None
        try:
            while reason is None:
                now = clock.now()
                if now >= due:
                    on_tick(agent.tick(now))
                    due = next_tick(now, config.run.tick_at)
                reason = should_stop()
                if reason is None:
                    sleep(max(0.0, min(1.0, (due - clock.now()).total_seconds())))
        except Exception as exc:
            journal.error(clock.now(), exc)
            journal.write("stop", clock.now(), reason=f"{type(exc).__name__}: {exc}")
            raise
        journal.write("stop", clock.now(), reason=reason)
    return reason
