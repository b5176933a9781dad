"""Crash proof: `spillover run` in a subprocess against the loopback emulators, SIGKILLed at seeded
moments and restarted each time, compared with an uninterrupted run of the same command.

    reference = run_child("binance", folder / "clean", days=26, first_day=date(2016, 11, 6))
    plans = plan_kills(seed=1, count=5, reference=reference)
    crashed = run_child("binance", folder / "killed", days=26, first_day=..., kills=plans)
    check = compare(reference, crashed)  # check.ok, check.problems()

Shared by `tests/test_crash_proof.py` (a few kills) and `bench/crash_proof.py` (many).

The world is tests/fault_run.py's (sample data, markets, emulators, config), without faults; what
differs is that the agent is a child process (tests/crash_child.py) running the real CLI command
`spillover run --config CONFIG --run-dir RUN`, which can be killed:

- Simulated time lives here, in the parent, so it survives the child: the exchange emulator
  serves `GET /_control/now` and `POST /_control/advance` (to the next daily tick, moving the
  emulated market there; `done` when that would pass the last day, and the child then stops
  itself with SIGTERM and exits 0). A restarted child resumes at the same simulated moment.
- The config file is written once (`Config.to_toml()`); every life of the child runs the same
  command, with the emulators' keys in its environment.
- Kills (`KillPlan`), one per life of the child, the next planned one armed at each start:
  (a) `intent`: right after the order intents are committed to the store, before any is sent
  (child side); (b) `create`: after the exchange emulator has processed the k-th order creation,
  before it answers (parent side: the emulator's `on_create` hook SIGKILLs the child and drops the
  answer); (c) `journal`, `torn` (the same, the last line then cut in half), `tick` (after a
  tick's store commit) and `read` (just before a venue read, mid-tick); (d) `wall`: after a
  wall-clock delay from the child's start. Each timed kind fires at its k-th event at or after a
  simulated time `at`. After a kill the same command starts again, until a life exits 0 at the
  last day. A life that exits otherwise (a traceback, exit code 1 or 2) ends the run: `failure`.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from agent import live
from agent.clock import SimClock
from agent.config import RunConfig
from agent.marketdata.sample import generate
from tests.crash_child import CHILD_KINDS, CONTROL_ENV, KILL_ENV
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.common import CreateRequest, LoopbackEmulator, Reply, Request
from tests.fault_run import (
    FAULT_SLEEP_S,
    SAMPLE_SEED,
    USDT,
    JournalCheck,
    _Market,
    check_journal,
    crypto_frames,
    emulator_env,
    exchange_positions,
    make_config,
    new_exchange,
    position_differences,
)

ROOT = Path(__file__).resolve().parent.parent
CONTROL = "/_control"
KINDS: tuple[str, ...] = ("intent", "create", "journal", "torn", "tick", "read", "wall")
GROUPS: Mapping[str, str] = {
    "intent": "a",
    "create": "b",
    "journal": "c",
    "torn": "c",
    "tick": "c",
    "read": "c",
    "wall": "d",
}
"""The brief's kinds of moment: (a) intent committed, not sent; (b) sent, processed, unanswered;
(c) other points inside the child; (d) a random wall-clock moment."""
WEIGHTS: Mapping[str, float] = {
    "intent": 3,
    "create": 3,
    "journal": 2,
    "torn": 1,
    "tick": 1.5,
    "read": 1.5,
    "wall": 1.5,
}
"""How often each kind is drawn beyond the first one of each."""
WALL_DELAY_S = (0.0, 1.0)
"""A wall kill's delay from the child's first question to the control endpoint (its imports
done): anywhere from opening the run folder, through the reconciliation, to a few ticks on."""
LIFE_TIMEOUT_S = 120.0
"""Beyond this one life of the child counts as hung (a failure), not as a kill."""
KILLED = -signal.SIGKILL


@dataclass(frozen=True)
class KillPlan:
    kind: str
    at: datetime | None = None
    """Fire at the k-th event at or after this simulated time (None for `wall`)."""
    k: int = 1
    delay_s: float | None = None
    """`wall` only: seconds after the child first asks the time (when its imports are done)."""

    def env(self) -> str:
        return json.dumps({"kind": self.kind, "at": self.at and self.at.isoformat(), "k": self.k})

    def describe(self) -> str:
        if self.kind == "wall":
            return f"wall after {self.delay_s:.2f} s"
        assert self.at is not None
        return f"{self.kind} #{self.k} from {self.at:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Kill:
    """A kill that happened."""

    life: int
    plan: KillPlan
    sim_time: datetime
    """The parent's simulated time when the child died."""
    detail: Mapping[str, Any]
    """What the child said before it died (or, for `create`, the request the emulator saw)."""

    @property
    def group(self) -> str:
        return GROUPS[self.plan.kind]

    def describe(self) -> str:
        shown = ", ".join(
            f"{key} {value}"
            for key, value in self.detail.items()
            if key not in ("kind", "k", "at", "pid", "sim") and value is not None
        )
        return (
            f"life {self.life:>2}: {self.plan.kind:<7} ({self.group}) {self.plan.describe()}; "
            f"died at {self.sim_time:%Y-%m-%d %H:%M}" + (f"; {shown}" if shown else "")
        )


@dataclass(frozen=True)
class Life:
    number: int
    plan: KillPlan | None
    returncode: int
    seconds: float
    started_at: datetime
    ended_at: datetime
    """Simulated times at the child's start and end."""
    log: Path


@dataclass(frozen=True)
class CrashRun:
    exchange_id: str
    first_day: date
    days: int
    folder: Path
    planned: tuple[KillPlan, ...]
    kills: tuple[Kill, ...]
    lives: tuple[Life, ...]
    failure: str | None
    """Why the run did not end as it should (a life that crashed or hung, a stop before the last
    day); None when the last life exited 0 at the last day."""
    positions: dict[str, Decimal]
    duplicate_client_ids: list[str]
    create_requests: int
    resent_client_ids: list[str]
    """Client ids in more than one order-creation request (an id sent again after a kill; the
    exchange may refuse the second, so this is not a duplicate order by itself)."""
    orders: int
    trades: int
    journal: Path
    journal_check: JournalCheck
    decision_times: Counter[str]
    """Decision records per tick time (`ts`): a tick rerun after a kill has more than one."""
    order_ticks: tuple[tuple[str, int], ...]
    """(ts, orders) of every decision that placed orders, in journal order."""
    created: tuple[tuple[str, str, str, str, str], ...]
    """(simulated time, symbol, side, amount, client id) of every order the exchange created."""
    decided_client_ids: frozenset[str]
    """Client order ids named by the orders of decision records in the journal."""
    torn_files: int
    torn_bytes: int
    """Files the journal set aside as torn tails (`decisions.jsonl.torn-*`): not journal lines."""
    seconds: float

    @property
    def restarts(self) -> int:
        return len(self.lives) - 1

    @property
    def kills_by_kind(self) -> Counter[str]:
        return Counter(kill.plan.kind for kill in self.kills)

    @property
    def kills_by_group(self) -> Counter[str]:
        return Counter(kill.group for kill in self.kills)

    @property
    def unfired(self) -> tuple[KillPlan, ...]:
        return self.planned[len(self.kills) :]

    @property
    def undecided_orders(self) -> list[str]:
        """Client ids of orders the exchange created that no decision record names."""
        return [row[4] for row in self.created if row[4] not in self.decided_client_ids]

    @property
    def reruns(self) -> int:
        """Tick times with more than one decision record (ticks run again after a kill)."""
        return sum(1 for n in self.decision_times.values() if n > 1)


@dataclass(frozen=True)
class CrashCheck:
    position_differences: dict[str, tuple[Decimal, Decimal]]
    duplicate_client_ids: list[str]
    journal_parses: bool
    journal_problems: tuple[str, ...]
    missing_decisions: tuple[str, ...]
    """Tick times of the uninterrupted run with no decision record in the killed run."""
    undecided_orders: tuple[str, ...]
    """Client ids of orders the exchange created that no decision record in the journal names."""
    unfired: int
    failures: tuple[str, ...]
    kills: int = field(default=0)
    first_divergence: str | None = None
    """The first tick at which the exchange created other orders than in the uninterrupted run."""

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        out = list(self.failures)
        if self.position_differences:
            shown = ", ".join(f"{a} {x} vs {y}" for a, (x, y) in self.position_differences.items())
            out.append(f"positions differ (uninterrupted vs killed): {shown}")
            if self.first_divergence:
                out.append(f"first divergence: {self.first_divergence}")
        if self.duplicate_client_ids:
            out.append(f"client ids placed twice: {', '.join(self.duplicate_client_ids)}")
        if not self.journal_parses:
            out.append("the journal has lines that are not strict JSON objects")
        out += [f"journal: {p}" for p in self.journal_problems[:5]]
        if self.missing_decisions:
            out.append(f"decisions missing at {', '.join(self.missing_decisions[:5])}")
        if self.undecided_orders:
            out.append(f"orders no decision names: {', '.join(self.undecided_orders[:5])}")
        if self.unfired:
            out.append(f"{self.unfired} planned kill(s) never fired")
        return out


def compare(reference: CrashRun, crashed: CrashRun) -> CrashCheck:
    failures = tuple(
        f"{name} run: {run.failure}"
        for name, run in (("uninterrupted", reference), ("killed", crashed))
        if run.failure
    )
    missing = sorted(set(reference.decision_times) - set(crashed.decision_times))
    return CrashCheck(
        position_differences=position_differences(reference.positions, crashed.positions),
        duplicate_client_ids=crashed.duplicate_client_ids,
        journal_parses=crashed.journal_check.parses,
        journal_problems=crashed.journal_check.problems,
        missing_decisions=tuple(missing),
        undecided_orders=tuple(crashed.undecided_orders),
        unfired=len(crashed.unfired),
        failures=failures,
        kills=len(crashed.kills),
        first_divergence=first_divergence(reference, crashed),
    )


def first_divergence(reference: CrashRun, crashed: CrashRun) -> str | None:
    """The first simulated tick at which the exchange created other orders (symbol, side,
    amount) in the killed run than in the uninterrupted one, both shown; None if none does."""

    def by_tick(run: CrashRun) -> dict[str, list[str]]:
        ticks: dict[str, list[str]] = {}
        for when, symbol, side, amount, _ in run.created:
            ticks.setdefault(when, []).append(f"{side.lower()} {amount} {symbol}")
        return {when: sorted(orders) for when, orders in ticks.items()}

    a, b = by_tick(reference), by_tick(crashed)
    for when in sorted(set(a) | set(b)):
        if a.get(when) != b.get(when):
            shown = ", ".join(a.get(when, [])) or "none"
            killed = ", ".join(b.get(when, [])) or "none"
            return f"{when[:16]}: uninterrupted {shown}; killed {killed}"
    return None


# -- the schedule ----------------------------------------------------------------------------------


def plan_kills(seed: int, count: int, reference: CrashRun) -> list[KillPlan]:
    """`count` kills, the same for a seed and a reference run: every kind once (intent and create
    first) when count allows, the rest drawn by WEIGHTS. Intent and create kills aim at ticks
    where the reference run placed orders (create at one of that tick's orders); the others at
    any tick but the last two. Sorted by simulated time; wall kills at random places but last."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    order_ticks = [(_parse(ts), n) for ts, n in reference.order_ticks]
    ticks = sorted(_parse(ts) for ts in reference.decision_times)
    if not order_ticks or len(ticks) < 3:
        raise ValueError("the reference run placed no orders or is too short to plan kills in")
    first = ["intent", "create", *rng.sample(KINDS[2:], len(KINDS) - 2)]
    kinds = first[:count]
    pool, weights = list(WEIGHTS), list(WEIGHTS.values())
    kinds += rng.choices(pool, weights, k=max(0, count - len(first)))
    timed: list[KillPlan] = []
    walls: list[KillPlan] = []
    early = ticks[:-2]
    for kind in kinds:
        if kind == "wall":
            walls.append(KillPlan("wall", delay_s=round(rng.uniform(*WALL_DELAY_S), 3)))
        elif kind == "intent":
            timed.append(KillPlan(kind, rng.choice(order_ticks)[0]))
        elif kind == "create":
            at, n = rng.choice(order_ticks)
            timed.append(KillPlan(kind, at, rng.randint(1, n)))
        elif kind in ("journal", "torn"):
            timed.append(KillPlan(kind, rng.choice(early), rng.randint(1, 4)))
        elif kind == "read":
            timed.append(KillPlan(kind, rng.choice(early), rng.randint(1, 6)))
        else:
            timed.append(KillPlan(kind, rng.choice(early)))
    timed.sort(key=lambda p: (p.at, KINDS.index(p.kind), p.k))
    for wall in walls:  # never last: the run's final stretch may be shorter than the delay
        timed.insert(rng.randint(0, max(0, len(timed) - 1)), wall)
    return timed


# -- the world in the parent -----------------------------------------------------------------------


@functools.cache
def _sample() -> dict[str, pd.DataFrame]:
    bars, _ = generate(seed=SAMPLE_SEED)
    return bars


class _World:
    """The emulators, the simulated clock and market, and the control endpoint the child uses."""

    def __init__(self, exchange_id: str, first_day: date, days: int) -> None:
        bars = _sample()
        self.exchange: LoopbackEmulator = new_exchange(exchange_id)
        self.tick_at = RunConfig().tick_at
        self.first = datetime.combine(first_day, self.tick_at, UTC)
        self.last = self.first + timedelta(days=days - 1)
        self.clock = SimClock(self.first)
        self.alpaca = AlpacaEmulator(timeout_delay=FAULT_SLEEP_S, now=self.clock.now)
        for symbol in ("IWM", "SPY"):
            self.alpaca.set_bars(symbol, bars[symbol])
        self.exchange.set_balance("USDT", USDT)
        self.market = _Market(self.exchange, crypto_frames(bars))
        self.market.move_to(self.first)
        self.done = False
        self.lock = threading.Lock()
        self.notes: list[dict[str, Any]] = []
        self.child_pid: int | None = None
        self.create_plan: KillPlan | None = None
        self.creates_seen = 0
        self.created: list[tuple[str, str, str, str, str]] = []
        """(simulated time, symbol, side, amount, client id) of every order created."""
        self.contact = threading.Event()
        """Set by the first control request of the child's life."""
        routes = {
            ("GET", f"{CONTROL}/now"): self._now,
            ("POST", f"{CONTROL}/advance"): self._advance,
            ("POST", f"{CONTROL}/note"): self._note,
        }
        self.exchange.control_routes.update(routes)
        self.exchange.on_create = self._on_create

    def control_url(self) -> str:
        return f"{self.exchange.url}{CONTROL}"

    def _now(self, _request: Request) -> Reply:
        self.contact.set()
        with self.lock:
            return Reply.json({"now": self.clock.current.isoformat()})

    def _advance(self, request: Request) -> Reply:
        seen = json.loads(request.body or "{}").get("from")
        with self.lock:
            current = self.clock.current
            following = live.next_tick(current, self.tick_at)
            if following > self.last:
                self.done = True
            elif seen == current.isoformat():  # a stale request (a dead child's) moves nothing
                self.clock.current = following
                self.market.move_to(following)
            return Reply.json({"now": self.clock.current.isoformat(), "done": self.done})

    def _note(self, request: Request) -> Reply:
        note = json.loads(request.body or "{}")
        with self.lock:
            self.notes.append(note | {"sim": self.clock.current.isoformat()})
        return Reply.json({})

    def _on_create(self, record: CreateRequest) -> bool:
        order = None
        if record.order_id is not None:
            with self.exchange.lock:
                order = self.exchange.find_order(None, order_id=record.order_id)
        with self.lock:
            if order is not None:
                when = self.clock.current.isoformat()
                row = (when, order.symbol, order.side, str(order.qty), order.client_id)
                self.created.append(row)
            plan, pid = self.create_plan, self.child_pid
            if plan is None or pid is None or plan.at is None or self.clock.current < plan.at:
                return False
            self.creates_seen += 1
            if self.creates_seen != plan.k:
                return False
            self.create_plan = None
            self.notes.append(
                {
                    "kind": "create",
                    "client_order_id": record.client_id,
                    "order_id": record.order_id,
                    "sim": self.clock.current.isoformat(),
                }
            )
        os.kill(pid, signal.SIGKILL)
        _wait_dead(pid)
        return True  # the answer is dropped; nobody is left to read it anyway

    def arm(self, plan: KillPlan | None, pid: int) -> None:
        with self.lock:
            self.child_pid = pid
            self.create_plan = plan if plan is not None and plan.kind == "create" else None
            self.creates_seen = 0
            self.contact.clear()

    def disarm(self) -> list[dict[str, Any]]:
        """Forget the child; the notes it (or the create hook) left."""
        with self.lock:
            self.child_pid = None
            self.create_plan = None
            notes, self.notes = self.notes, []
        return notes


def _quiet_killed_connections(emulator: object) -> None:
    """A child killed mid-request resets its connection; the emulator's server would print a
    traceback for that on stderr. Keep quiet about those (only), here where they are expected."""
    server = getattr(emulator, "_server", None)
    if server is None:
        return
    loud = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            loud(request, client_address)

    server.handle_error = handle_error


def _wait_contact(
    contact: threading.Event, child: subprocess.Popen[bytes], timeout_s: float
) -> None:
    """Until the child first asks the control endpoint, ends, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not contact.wait(0.01) and child.poll() is None and time.monotonic() < deadline:
        pass


def _wait_dead(pid: int, timeout_s: float = 5.0) -> None:
    """Until the process is gone or a zombie (Linux /proc; elsewhere a short pause)."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return
        except OSError:
            time.sleep(0.05)
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.002)


# -- one run ---------------------------------------------------------------------------------------


def run_child(
    exchange_id: str,
    folder: Path,
    *,
    days: int,
    first_day: date,
    kills: Sequence[KillPlan] = (),
    life_timeout_s: float = LIFE_TIMEOUT_S,
    on_kill: Any = None,
) -> CrashRun:
    """Run `spillover run` in a child process for `days` daily ticks from `first_day`, killing it
    as `kills` plan (one per life) and restarting it until a life exits 0 at the last day.
    `folder` receives `config.toml`, the run folder `run/` and each life's output in `logs/`
    (any earlier `run/` and `logs/` there are deleted first).
    `on_kill(kill)` hears each kill as it happens."""
    if days < 3:
        raise ValueError(f"days must be >= 3, got {days}")
    started = time.perf_counter()
    run_dir, logs = folder / "run", folder / "logs"
    for old in (run_dir, logs):  # a run starts afresh: a leftover store would be resumed
        shutil.rmtree(old, ignore_errors=True)
    logs.mkdir(parents=True)
    world = _World(exchange_id, first_day, days)
    exchange = world.exchange
    fired: list[Kill] = []
    lives: list[Life] = []
    failure: str | None = None
    with exchange, world.alpaca:
        for emulator in (exchange, world.alpaca):
            _quiet_killed_connections(emulator)
        config = make_config(exchange_id, exchange.url, world.alpaca.url)
        config_file = folder / "config.toml"
        config_file.write_text(config.to_toml())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPILLOVER", "ALPACA_"))}
        env |= emulator_env(exchange_id, exchange, world.alpaca)
        env |= {CONTROL_ENV: world.control_url(), "PYTHONUNBUFFERED": "1"}
        env.pop(KILL_ENV, None)
        command = [
            sys.executable,
            "-m",
            "tests.crash_child",
            "run",
            "--config",
            str(config_file),
            "--run-dir",
            str(run_dir),
        ]
        number = 0
        while True:
            number += 1
            plan = kills[number - 1] if number <= len(kills) else None
            life_env = dict(env)
            if plan is not None and plan.kind in CHILD_KINDS:
                life_env[KILL_ENV] = plan.env()
            log = logs / f"life-{number:02}.log"
            at_start, life_started = world.clock.current, time.perf_counter()
            with open(log, "wb") as output:
                child = subprocess.Popen(
                    command, cwd=ROOT, env=life_env, stdout=output, stderr=subprocess.STDOUT
                )
                world.arm(plan, child.pid)
                delay = plan.delay_s if plan is not None and plan.kind == "wall" else None
                wall, wall_killed = delay is not None, False
                if delay is not None:
                    _wait_contact(world.contact, child, life_timeout_s)
                try:
                    code = child.wait(life_timeout_s if delay is None else delay)
                except subprocess.TimeoutExpired:
                    child.kill()
                    code = child.wait()
                    wall_killed = wall
                    if not wall:
                        failure = f"life {number} did not end within {life_timeout_s:.0f} s"
            notes = world.disarm()
            lives.append(
                Life(
                    number,
                    plan,
                    code,
                    time.perf_counter() - life_started,
                    at_start,
                    world.clock.current,
                    log,
                )
            )
            if failure is not None:
                break
            if code == KILLED and plan is not None and (not wall or wall_killed):
                note = next((n for n in notes if n.get("kind") == plan.kind), {})
                kill = Kill(number, plan, world.clock.current, note)
                fired.append(kill)
                if on_kill is not None:
                    on_kill(kill)
                time.sleep(0.05)  # let the server finish whatever the dead child had sent
                continue
            if code == 0:
                if not world.done:
                    failure = (
                        f"life {number} exited 0 at {world.clock.current:%Y-%m-%d %H:%M}, "
                        f"before the last day {world.last:%Y-%m-%d}"
                    )
                break
            failure = f"life {number} ended with exit code {code}: {_tail(log)}"
            break
        positions = exchange_positions(exchange)
        duplicates = exchange.duplicate_client_ids()
        with exchange.lock:
            counts = len(exchange.create_requests), len(exchange.orders), len(exchange.trades)
            sent = Counter(r.client_id for r in exchange.create_requests if r.client_id)
    journal = run_dir / "decisions.jsonl"
    decisions, order_ticks, decided = _decisions(journal)
    torn = sorted(run_dir.glob("decisions.jsonl.torn*"))
    return CrashRun(
        exchange_id=exchange_id,
        first_day=first_day,
        days=days,
        folder=folder,
        planned=tuple(kills),
        kills=tuple(fired),
        lives=tuple(lives),
        failure=failure,
        positions=positions,
        duplicate_client_ids=duplicates,
        create_requests=counts[0],
        resent_client_ids=sorted(cid for cid, n in sent.items() if n > 1),
        orders=counts[1],
        trades=counts[2],
        journal=journal,
        journal_check=check_journal(journal),
        decision_times=decisions,
        order_ticks=tuple(order_ticks),
        created=tuple(world.created),
        decided_client_ids=frozenset(decided),
        torn_files=len(torn),
        torn_bytes=sum(path.stat().st_size for path in torn),
        seconds=time.perf_counter() - started,
    )


def _decisions(journal: Path) -> tuple[Counter[str], list[tuple[str, int]], set[str]]:
    times: Counter[str] = Counter()
    order_ticks: list[tuple[str, int]] = []
    client_ids: set[str] = set()
    if not journal.exists():
        return times, order_ticks, client_ids
    with open(journal, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # check_journal reports it
            if isinstance(record, dict) and record.get("event") == "decision":
                times[record["ts"]] += 1
                if record.get("orders"):
                    order_ticks.append((record["ts"], len(record["orders"])))
                    client_ids.update(o.get("client_order_id") for o in record["orders"])
    return times, order_ticks, client_ids


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _tail(log: Path, lines: int = 6) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no output at {log})"
    return " | ".join(text[-lines:]) + f" (full output: {log})"
