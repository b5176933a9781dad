"""A full testnet run of the real agent against the loopback emulators, with or without faults.

    outcome = run_against_emulators("binance", fault_seed=3, days=40)

Shared by `tests/test_fault_proof.py` (a few seeds) and `bench/fault_proof.py` (many seeds).

What runs is `agent.live.run_live`, the testnet loop itself, on a simulated clock:

- Data: `agent.marketdata.sample.generate(seed=7)`. IWM and SPY are served by the Alpaca
  emulator (its whole history: AlpacaData asks only up to the last closed session, so nothing
  later is ever served); the five crypto series are the exchange emulator's daily klines
  (`BTCUSDT`, ...). The window starts a few weeks before the first planted clean breakout
  (confirmed about 2016-11-11), so the agent buys BTC at confirmation, adds ETH from day 30
  and the altcoins from day 60 of the lag window.
- Time: one tick per day at `run.tick_at` (00:05 UTC). The loop's `sleep` jumps the clock to
  the next tick (nothing happens in between) and moves the market there: the klines then end
  with the day in progress, a candle opened at midnight whose high, low and close are still its
  open (volume 0), as an exchange serves it five minutes into the day; every earlier candle is
  final. The agent must drop that candle itself (LiveData keeps bars up to the last closed day).
  The exchange's price, at which market orders fill, is the day's open.
- Faults: with `fault_seed`, the exchange emulator fails 20% of all requests with every kind it
  supports (`FaultPlan`), and the Alpaca emulator 20% of its requests with every kind it has,
  `timeout` included; both seeded from `fault_seed`.
- Retry waits: the config's `venue.retry_wait_s`/`retry_max_wait_s` are milliseconds
  (`WAIT_S`, `MAX_WAIT_S`) and `venue.rate_limit` is off (ccxt's spacing by the exchange's
  weights, about a second per Binance `myTrades`, buys nothing against an emulator).
- Outcome: an exception out of `run_live` is a result (`RunOutcome.crash`), not an error here.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from agent import live
from agent.clock import SimClock
from agent.config import Config, DataConfig, VenueConfig
from agent.loop import TickResult
from agent.marketdata.sample import generate
from agent.secrets import ALPACA_KEY_NAMES, exchange_key_names
from tests.emulators import alpaca as alpaca_emulator
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.binance import BinanceEmulator
from tests.emulators.bybit import BybitEmulator
from tests.emulators.common import FaultPlan, LoopbackEmulator, Market

EXCHANGES: tuple[str, ...] = ("binance", "bybit")
SAMPLE_SEED = 7
FIRST_DAY = date(2016, 10, 15)
"""First simulated day: a few weeks before the 2016 clean breakout (candidate 2016-11-09)."""
FULL_DAYS = 124
"""FIRST_DAY to 2017-02-15: the breakout, its 91-day lag window and the start of the taper."""
FAULT_RATE = 0.2
USDT = Decimal(100_000)
TIMEOUT_S = 0.25
"""Client timeout (exchange and Alpaca); the emulators hold a timeout fault a little longer."""
FAULT_SLEEP_S = 0.3
READ_ATTEMPTS = 8
"""At a 20% fault rate a read gives up with probability 0.2**8 (about 3 in a million)."""
WAIT_S = 0.002
MAX_WAIT_S = 0.02

_Q = "USDT"
_MAX = Decimal(10) ** 12


def _market(base: str, tick: str, step: str) -> Market:
    return Market(
        f"{base}{_Q}", base, _Q, Decimal(tick), Decimal(step), Decimal(step), Decimal(5), _MAX, _MAX
    )


MARKETS: tuple[Market, ...] = (
    _market("BTC", "0.01", "0.00001"),
    _market("ETH", "0.0001", "0.0001"),
    _market("SOL", "0.0001", "0.001"),
    _market("XRP", "0.00001", "0.1"),
    _market("ADA", "0.00001", "0.1"),
)
"""Every crypto asset of the sample. Tick sizes fit the sample's decimals; quantity limits are
lifted (the 2016 sample prices of ETH, SOL and XRP are a few dollars or cents)."""
AMOUNT_STEPS: dict[str, Decimal] = {m.base: m.step_size for m in MARKETS} | {_Q: Decimal("0.01")}
"""How far two final positions may differ and still count as the same (a cent for the quote)."""


@dataclass(frozen=True)
class JournalCheck:
    lines: int
    parses: bool
    """Every line is a strict JSON object (no NaN or infinity)."""
    problems: tuple[str, ...]
    """Unparsable lines, and order or fill records whose decision_id cites no earlier decision."""
    events: Mapping[str, int]
    actions: Mapping[str, int]
    """Decisions by action: trade, hold, refused."""
    order_statuses: Mapping[str, int]
    order_sides: Mapping[str, int]
    venue_errors: int
    """Error records of calls that finally failed (retries excluded)."""
    retries: int
    """Error records of retried calls (`retrying: true`)."""


@dataclass(frozen=True)
class RunOutcome:
    exchange_id: str
    fault_seed: int | None
    days: int
    ticks: int
    stop_reason: str | None
    """run_live's return value; None when it raised (see `crash`)."""
    crash: str | None
    """The exception that ended run_live early, as `Type: message`; None when it ran through."""
    positions: dict[str, Decimal]
    """Free plus locked balance of every asset, from the exchange emulator's own books."""
    faults: Counter[str]
    """Faults the exchange emulator injected, by kind."""
    create_faults: Counter[str]
    """Of those, the faults on order-creation requests, by kind."""
    alpaca_faults: Counter[str]
    """Faults the Alpaca emulator injected, by kind."""
    duplicate_client_ids: list[str]
    create_requests: int
    orders: int
    trades: int
    journal: Path
    journal_check: JournalCheck
    seconds: float
    fault_kinds: tuple[str, ...] = field(default=())
    """Every kind the exchange emulator could inject in this run (empty without faults)."""

    @property
    def journal_parses(self) -> bool:
        return self.journal_check.parses

    @property
    def injected(self) -> int:
        return sum(self.faults.values()) + sum(self.alpaca_faults.values())


def position_differences(
    a: Mapping[str, Decimal], b: Mapping[str, Decimal]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Assets whose positions differ by more than their amount step: {asset: (a, b)}."""
    out = {}
    for asset in sorted(set(a) | set(b)):
        x, y = a.get(asset, Decimal(0)), b.get(asset, Decimal(0))
        if abs(x - y) > AMOUNT_STEPS.get(asset, Decimal(0)):
            out[asset] = (x, y)
    return out


def check_journal(path: Path) -> JournalCheck:
    """Read a journal line by line: strict JSON, and every order and fill cites a decision."""
    problems: list[str] = []
    decisions: set[str] = set()
    events: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    sides: Counter[str] = Counter()
    venue_errors = retries = 0
    lines = 0
    if not path.exists():
        return JournalCheck(0, False, (f"no journal at {path}",), {}, {}, {}, {}, 0, 0)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            lines = number
            try:
                record = json.loads(line, parse_constant=_reject_constant)
            except ValueError as exc:
                problems.append(f"line {number}: invalid JSON: {exc}")
                continue
            if not isinstance(record, dict):
                problems.append(f"line {number}: not a JSON object")
                continue
            event = str(record.get("event"))
            events[event] += 1
            if event == "decision":
                decisions.add(record["decision_id"])
                actions[record["action"]] += 1
            elif event in ("order", "fill"):
                if record.get("decision_id") not in decisions:
                    problems.append(
                        f"line {number}: {event} {record.get('client_order_id')!r} cites "
                        f"decision {record.get('decision_id')!r}, which is not in the journal"
                    )
                if event == "order":
                    statuses[str(record.get("status"))] += 1
                    sides[str(record.get("side"))] += 1
            elif event == "error":
                if record.get("retrying"):
                    retries += 1
                else:
                    venue_errors += 1
    parses = not any("invalid JSON" in p or "not a JSON object" in p for p in problems)
    return JournalCheck(
        lines,
        parses,
        tuple(problems),
        dict(events),
        dict(actions),
        dict(statuses),
        dict(sides),
        venue_errors,
        retries,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


# -- the simulated market ------------------------------------------------------------------


def _kline_symbol(data_symbol: str) -> str:
    return data_symbol.replace("-USD", _Q)  # BTC-USD -> BTCUSDT


class _Market:
    """Moves the exchange emulator to a simulated moment: closed candles up to the day before,
    the day in progress as an open-only candle, and the price at the day's open."""

    def __init__(self, emulator: LoopbackEmulator, crypto: Mapping[str, pd.DataFrame]) -> None:
        self.emulator = emulator
        self.rows: dict[str, list[tuple]] = {}
        self.days: dict[str, pd.DatetimeIndex] = {}
        for data_symbol, frame in crypto.items():
            symbol = _kline_symbol(data_symbol)
            emulator.set_klines(symbol, frame)  # converts every candle once
            self.rows[symbol] = list(emulator.klines[(symbol, "1d")])
            self.days[symbol] = pd.DatetimeIndex(frame.index)

    def move_to(self, now: datetime) -> None:
        today = pd.Timestamp(now.date())
        with self.emulator.lock:
            for symbol, rows in self.rows.items():
                position = int(self.days[symbol].searchsorted(today))
                if position >= len(rows) or self.days[symbol][position] != today:
                    raise ValueError(f"the sample has no {symbol} candle for {today.date()}")
                ms, open_, *_ = rows[position]
                in_progress = (ms, open_, open_, open_, open_, Decimal(0))
                self.emulator.klines[(symbol, "1d")] = [*rows[:position], in_progress]
                self.emulator.set_price(symbol, open_)


# -- one run -------------------------------------------------------------------------------


def make_config(
    exchange_id: str, exchange_url: str, alpaca_url: str, read_attempts: int = READ_ATTEMPTS
) -> Config:
    return Config(
        data=DataConfig(source="alpaca", alpaca_url=alpaca_url, crypto_symbol="{asset}/USDT"),
        venue=VenueConfig(
            kind="testnet",
            exchange=exchange_id,
            api_url=exchange_url,
            timeout_s=TIMEOUT_S,
            read_attempts=read_attempts,
            retry_wait_s=WAIT_S,
            retry_max_wait_s=MAX_WAIT_S,
            rate_limit=False,  # the emulator has no limit; ccxt's spacing would only slow runs
            quote=_Q,
        ),
    )


def _exchange(exchange_id: str) -> LoopbackEmulator:
    if exchange_id == "binance":
        return BinanceEmulator(markets=MARKETS, timeout_sleep=FAULT_SLEEP_S)
    if exchange_id == "bybit":
        return BybitEmulator(markets=MARKETS, timeout_sleep=FAULT_SLEEP_S)
    raise ValueError(f"no emulator for {exchange_id!r}; known: {', '.join(EXCHANGES)}")


# -- pieces for other harnesses (tests/crash_run.py) ---------------------------------------


def new_exchange(exchange_id: str) -> LoopbackEmulator:
    """A fresh exchange emulator holding MARKETS, as `run_against_emulators` uses."""
    return _exchange(exchange_id)


def crypto_frames(bars: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The crypto series of the sample (`BTC-USD`, ...), which the exchange emulator serves."""
    return {symbol: frame for symbol, frame in bars.items() if symbol.endswith("-USD")}


def emulator_env(
    exchange_id: str, exchange: LoopbackEmulator, alpaca: AlpacaEmulator
) -> dict[str, str]:
    """The environment variables a run needs for the emulators' keys."""
    key_name, secret_name = exchange_key_names(exchange_id)
    return {
        ALPACA_KEY_NAMES[0]: alpaca.api_key,
        ALPACA_KEY_NAMES[1]: alpaca.secret_key,
        key_name: exchange.api_key,
        secret_name: exchange.secret,
    }


def exchange_positions(exchange: LoopbackEmulator) -> dict[str, Decimal]:
    """Free plus locked balance of every asset, from the emulator's own books."""
    with exchange.lock:
        assets = sorted(set(exchange.free) | set(exchange.locked))
        return {
            a: exchange.free.get(a, Decimal(0)) + exchange.locked.get(a, Decimal(0)) for a in assets
        }


def run_against_emulators(
    exchange_id: str,
    fault_seed: int | None,
    days: int = FULL_DAYS,
    *,
    run_dir: Path | None = None,
    first_day: date = FIRST_DAY,
    fault_rate: float = FAULT_RATE,
    alpaca_faults: bool = True,
    read_attempts: int = READ_ATTEMPTS,
) -> RunOutcome:
    """Run the agent for `days` daily ticks from `first_day` against fresh emulators; with
    `fault_seed`, inject seeded faults of every kind on `fault_rate` of the requests."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    started = time.perf_counter()
    bars, _ = generate(seed=SAMPLE_SEED)
    crypto = {symbol: frame for symbol, frame in bars.items() if symbol.endswith("-USD")}
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"fault-proof-{exchange_id}-"))
    exchange = _exchange(exchange_id)
    clock = SimClock(datetime.combine(first_day, datetime.min.time(), UTC))
    alpaca = AlpacaEmulator(timeout_delay=FAULT_SLEEP_S, now=clock.now)
    for symbol in ("IWM", "SPY"):
        alpaca.set_bars(symbol, bars[symbol])
    exchange.set_balance(_Q, USDT)
    market = _Market(exchange, crypto)
    kinds: tuple[str, ...] = ()
    if fault_seed is not None:
        kinds = tuple(type(exchange).fault_kinds)
        exchange.faults = FaultPlan(rate=fault_rate, kinds=kinds, seed=fault_seed)
        if alpaca_faults:
            alpaca.random_faults = alpaca_emulator.FAULTS
            alpaca.fault_rate = fault_rate
            alpaca.seed = fault_seed

    with exchange, alpaca:
        config = make_config(exchange_id, exchange.url, alpaca.url, read_attempts)
        key_name, secret_name = exchange_key_names(exchange_id)
        env = {
            ALPACA_KEY_NAMES[0]: alpaca.api_key,
            ALPACA_KEY_NAMES[1]: alpaca.secret_key,
            key_name: exchange.api_key,
            secret_name: exchange.secret,
        }
        tick_at = config.run.tick_at
        clock.current = datetime.combine(first_day, tick_at, UTC)
        market.move_to(clock.current)
        ticks: list[TickResult] = []

        def should_stop() -> str | None:
            return f"{days} simulated days" if len(ticks) >= days else None

        def sleep(_seconds: float) -> None:
            clock.current = live.next_tick(clock.current, tick_at)
            market.move_to(clock.current)

        reason: str | None = None
        crash: str | None = None
        try:
            reason = live.run_live(
                config,
                run_dir,
                env,
                should_stop=should_stop,
                on_tick=ticks.append,
                clock=clock,
                sleep=sleep,
            )
        except Exception as exc:  # a result to report, not a harness failure
            crash = f"{type(exc).__name__}: {exc}"
        with exchange.lock:
            assets = sorted(set(exchange.free) | set(exchange.locked))
            positions = {
                a: exchange.free.get(a, Decimal(0)) + exchange.locked.get(a, Decimal(0))
                for a in assets
            }
            faults = Counter(kind for _, _, kind in exchange.injected_faults)
            create_faults = Counter(r.fault for r in exchange.create_requests if r.fault)
            outcome_counts = (
                len(exchange.create_requests),
                len(exchange.orders),
                len(exchange.trades),
            )
        duplicates = exchange.duplicate_client_ids()
        alpaca_counts = Counter(r.fault for r in list(alpaca.requests) if r.fault is not None)

    journal = run_dir / "decisions.jsonl"
    return RunOutcome(
        exchange_id=exchange_id,
        fault_seed=fault_seed,
        days=days,
        ticks=len(ticks),
        stop_reason=reason,
        crash=crash,
        positions=positions,
        faults=faults,
        create_faults=create_faults,
        alpaca_faults=alpaca_counts,
        duplicate_client_ids=duplicates,
        create_requests=outcome_counts[0],
        orders=outcome_counts[1],
        trades=outcome_counts[2],
        journal=journal,
        journal_check=check_journal(journal),
        seconds=time.perf_counter() - started,
        fault_kinds=kinds,
    )
