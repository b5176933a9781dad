"""A testnet run: Alpaca equity bars, the exchange's crypto bars and testnet orders, ticking once
a day on the wall clock (first at start, then daily at `run.tick_at` UTC) until stopped."""

from __future__ import annotations

import time as wall
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from agent.clock import Clock, EquitySessions, SystemClock
from agent.config import Config
from agent.heartbeat import beat
from agent.loop import Agent, TickResult
from agent.marketdata.live import LiveData
from agent.reconcile import ReconcileError, Reconciliation, resume
from agent.runtime import OpenedRun, RunFiles
from agent.secrets import ALPACA_KEY_NAMES, exchange_key_names, require
from agent.store import Store
from agent.venue.testnet import OnRetry, TestnetVenue
from risk.journal import Journal

HEARTBEAT_EVERY_S = 30.0
"""While waiting for the next daily tick, the heartbeat file is rewritten this often."""


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
    accept_config_change: bool = False,
    fresh: bool = False,
    on_start: Callable[[OpenedRun, Reconciliation | None], None] | None = None,
) -> str:
    """Tick until `should_stop` gives a reason; return it.

    A run folder that holds a testnet run is resumed (unless `fresh`): the state is restored from
    its store and reconciled with the venue before the first tick; `ReconcileError` when that
    fails, and nothing is traded. `on_start` hears how the run opened."""
    clock = clock or SystemClock()
    keys = read_keys(config, env)
    files = RunFiles(run_dir)
    if fresh or not files.has_run():
        files = RunFiles.create(run_dir, keep_previous=True)
    opened = files.open_run(
        config,
        "testnet",
        clock.now(),
        run_id=f"tn-{config.hash()[:8]}",
        accept_config_change=accept_config_change,
    )
    run_id, store = opened.run_id, opened.store
    try:
        journal = Journal(files.journal, run_id, secrets=keys.values, fsync=config.run.fsync)
    except BaseException:
        store.close()
        raise

    def on_retry(call: str, attempt: int, exc: BaseException) -> None:
        journal.error(clock.now(), exc, call=call, attempt=attempt, retrying=True)

    def alive(state: str, due: datetime | None = None) -> None:
        last = store.last_tick_at()
        beat(
            files.heartbeat,
            run_id=run_id,
            state=state,
            session=opened.session,
            last_tick_at=None if last is None else last.isoformat(),
            next_tick_at=None if due is None else due.isoformat(),
        )

    with journal, store:
        venue = open_testnet_venue(config, keys, on_retry)
        agent = Agent(
            config,
            live_data(config, env, venue, on_retry, clock),
            venue,
            journal,
            EquitySessions(),
            store=store,
            session=opened.session,
            contain_errors=True,
        )
        now = clock.now()
        reconciled = None
        try:
            last = None if opened.resumed is None else opened.resumed.last_tick_at
            opened.journal_start(journal, now, config, "testnet", last)
            if opened.resumed is not None:
                reconciled = resume(agent, store, now)
            if on_start is not None:
                on_start(opened, reconciled)
            reason = _tick_until_stopped(
                agent, config, store, clock, sleep, should_stop, on_tick, alive
            )
        except BaseException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, ReconcileError):
                journal.error(clock.now(), exc)
            journal.write("stop", clock.now(), reason=reason)
            alive("stopped")
            raise
        journal.write("stop", clock.now(), reason=reason)
        alive("stopped")
    return reason


def _tick_until_stopped(
    agent: Agent,
    config: Config,
    store: Store,
    clock: Clock,
    sleep: Callable[[float], None],
    should_stop: Callable[[], str | None],
    on_tick: Callable[[TickResult], None],
    alive: Callable[[str, datetime | None], None],
) -> str:
    """The first tick at once, unless the store's last tick is later than the one before it was
    due (a restart right after a tick waits for the next); then daily at `run.tick_at`."""
    last = store.last_tick_at()
    due = clock.now() if last is None else max(clock.now(), next_tick(last, config.run.tick_at))
    beaten = wall.monotonic() - HEARTBEAT_EVERY_S
    reason = should_stop()  # a stop asked for while starting up trades nothing
    while reason is None:
        now = clock.now()
        if now >= due:
            alive("ticking", now)
            on_tick(agent.tick(now))
            due = next_tick(now, config.run.tick_at)
            beaten = wall.monotonic() - HEARTBEAT_EVERY_S
        reason = should_stop()
        if reason is None:
            if wall.monotonic() - beaten >= HEARTBEAT_EVERY_S:
                alive("waiting", due)
                beaten = wall.monotonic()
            sleep(max(0.0, min(1.0, (due - clock.now()).total_seconds())))
    return reason
