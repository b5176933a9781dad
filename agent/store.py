"""The run's durable state: one SQLite file per run folder (`state.sqlite`), so a process killed at
any instant restarts where it stood, reconciles with the venue and never places an order twice.

Every public write is one transaction (`BEGIN IMMEDIATE` ... `COMMIT` on a connection in
autocommit mode, so the sqlite3 module never opens or commits one behind our back), in WAL mode
with `synchronous=FULL`: a committed transaction survives a crash, an uncommitted one leaves
nothing. Two kinds of write:

- `with store.tick(now) as t:` collects the tick's records and writes them all in one
  transaction when the block ends; an exception inside the block writes none of them. Nothing is
  held open while the block runs (venue calls can take seconds), and reads inside the block see
  what was committed before it.
- `record_intents()`, `set_consecutive_errors()`, `set_config_hash()` and `begin_run()` commit at
  once. Intents must: the order intent is on disk before the request leaves, so after a crash the
  loop finds it among `pending_orders()` and looks it up at the venue instead of sending again.

Timestamps are stored as fixed-width UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, the journal's form)
so text order is time order; dates as `YYYY-MM-DD`; enums as their value; NaN as NULL.

The schema version is `PRAGMA user_version`: the number of `MIGRATIONS` applied, each in its own
transaction. A file written by a newer spillover is refused rather than guessed at.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from agent.ports import Order, OrderRequest, OrderStatus, OrderType, SafetyStop, Trade
from risk.verdict import Side

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "ORDER_STATUSES",
    "PENDING_STATUSES",
    "STATE_FILE",
    "BreakoutRecord",
    "ConfigChange",
    "DecisionRecord",
    "EquityRecord",
    "FillRecord",
    "OrderRecord",
    "RunRecord",
    "Store",
    "StoreError",
    "Tick",
]

STATE_FILE = "state.sqlite"
APPLICATION_ID = 0x53504C56
"""`PRAGMA application_id` of a spillover state file ("SPLV"), so another program's SQLite file
is refused instead of migrated."""
ORDER_STATUSES = frozenset({"intent", "unsent", *(status.value for status in OrderStatus)})
"""`intent`: recorded, maybe never sent; `unsent`: an intent the venue never saw (found so when a
restart reconciled it); the rest are the venue's `OrderStatus` values."""
PENDING_STATUSES = ("intent", "open")
_BUSY_TIMEOUT_S = 5.0


class StoreError(SafetyStop):
    """The state file cannot be used; the message is one line naming the file. A run stops on it:
    without its state it could place an order twice."""


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    config_hash: str
    mode: str
    started_at: datetime
    last_tick_at: datetime | None
    """The `now` of the last committed tick."""


@dataclass(frozen=True)
class ConfigChange:
    config_hash: str
    changed_at: datetime


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: str
    tick_at: datetime
    asof: date | None
    """The equity session the decision read; None when no session was usable."""
    action: str
    reason: str


@dataclass(frozen=True)
class BreakoutRecord:
    tick_at: datetime
    state: str
    stage: int
    target_exposure: float


@dataclass(frozen=True)
class OrderRecord:
    client_order_id: str
    decision_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float | None
    status: str
    """One of ORDER_STATUSES."""
    venue_order_id: str | None
    filled: float
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FillRecord(Trade):
    """A fill as stored: the venue's trade and the tick that recorded it."""

    tick_at: datetime


@dataclass(frozen=True)
class EquityRecord:
    tick_at: datetime
    equity: float | None
    cash: float | None
    drawdown: float | None
    holdings: dict[str, float | None] | None = None
    prices: dict[str, float | None] | None = None


# -- schema -------------------------------------------------------------------------------------


def _initial_schema(conn: sqlite3.Connection) -> None:
    """Version 1. Orders do not reference decisions: an intent is committed before its tick's
    decision row. Fills do not reference orders: the venue may report a trade the store never
    placed, and it must still be counted once."""
    statements = [
        """CREATE TABLE run (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            run_id TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            mode TEXT NOT NULL,
            started_at TEXT NOT NULL,
            last_tick_at TEXT,
            peak_equity REAL,
            consecutive_errors INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_errors >= 0),
            turnover_day TEXT,
            turnover_today REAL NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE config_history (
            seq INTEGER PRIMARY KEY,
            config_hash TEXT NOT NULL,
            changed_at TEXT NOT NULL
        )""",
        "CREATE TABLE ticks (at TEXT PRIMARY KEY)",
        """CREATE TABLE decisions (
            decision_id TEXT PRIMARY KEY,
            tick_at TEXT NOT NULL REFERENCES ticks (at),
            asof TEXT,
            action TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        "CREATE INDEX decisions_by_tick ON decisions (tick_at)",
        """CREATE TABLE breakout (
            tick_at TEXT PRIMARY KEY REFERENCES ticks (at),
            state TEXT NOT NULL,
            stage INTEGER NOT NULL,
            target_exposure REAL NOT NULL
        )""",
        """CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY,
            decision_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            type TEXT NOT NULL,
            amount REAL NOT NULL,
            price REAL,
            status TEXT NOT NULL,
            venue_order_id TEXT,
            filled REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX orders_by_status ON orders (status)",
        """CREATE TABLE fills (
            trade_id TEXT PRIMARY KEY,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            amount REAL NOT NULL,
            price REAL NOT NULL,
            fee REAL NOT NULL,
            ts TEXT NOT NULL,
            tick_at TEXT NOT NULL REFERENCES ticks (at)
        )""",
        "CREATE INDEX fills_by_ts ON fills (ts)",
        "CREATE TABLE positions (asset TEXT PRIMARY KEY, amount REAL NOT NULL)",
        "CREATE TABLE last_good_prices (asset TEXT PRIMARY KEY, price REAL NOT NULL)",
        """CREATE TABLE equity (
            tick_at TEXT PRIMARY KEY REFERENCES ticks (at),
            equity REAL,
            cash REAL,
            drawdown REAL
        )""",
        "CREATE TABLE halts (rule TEXT PRIMARY KEY)",
    ]
    for statement in statements:
        conn.execute(statement)


def _sessions(conn: sqlite3.Connection) -> None:
    """Version 2: one row per process that ran the run (the first, then each resume), so a
    restarted session can name its decisions apart from an interrupted one's."""
    conn.execute(
        """CREATE TABLE sessions (
            n INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            version TEXT NOT NULL
        )"""
    )
    conn.execute(
        "INSERT INTO sessions (n, started_at, config_hash, version) "
        "SELECT 1, started_at, config_hash, '' FROM run"
    )


def _equity_holdings(conn: sqlite3.Connection) -> None:
    """Version 3: each equity snapshot keeps the holdings and prices it was valued at, so a
    resumed replay run rebuilds its equity curve from the ticks before the restart."""
    conn.execute("ALTER TABLE equity ADD COLUMN holdings TEXT")
    conn.execute("ALTER TABLE equity ADD COLUMN prices TEXT")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _initial_schema,
    _sessions,
    _equity_holdings,
]
"""Migration n takes the schema from version n to n + 1; append, never edit or reorder. Each runs
inside its own transaction with foreign keys on, so use `conn.execute` (never `executescript`,
which commits first); a table rebuild needs `PRAGMA defer_foreign_keys = ON` first."""


# -- the store ----------------------------------------------------------------------------------


class Store:
    """The state file of one run folder. Open with `Store.open(folder)`; close, or use as a
    context manager. One process, one thread writes; any number may read."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._tick: Tick | None = None

    @classmethod
    def open(cls, folder: Path) -> Store:
        """Open `folder/state.sqlite`, creating the folder, the file and its schema when absent and
        migrating an older schema. StoreError when the file is not a state file or is newer."""
        path = Path(folder) / STATE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create its folder: {exc}") from exc
        conn = None
        try:
            conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot use WAL mode (journal mode stays {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn, path)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{path}: not a usable SQLite state file: {_line(exc)}") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        """Close the file; a tick still open is discarded. Closing twice is harmless."""
        self._tick = None
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- run metadata -----------------------------------------------------------------------

    def begin_run(
        self, run_id: str, config_hash: str, mode: str, started_at: datetime, version: str = ""
    ) -> None:
        """Record the run this file belongs to, as session 1; StoreError if it already holds
        one."""
        with self._transaction() as conn:
            existing = conn.execute("SELECT run_id FROM run").fetchone()
            if existing is not None:
                raise StoreError(f"{self.path}: already holds run {existing['run_id']!r}")
            stamp = _stamp(started_at)
            conn.execute(
                "INSERT INTO run (id, run_id, config_hash, mode, started_at) "
                "VALUES (1, ?, ?, ?, ?)",
                (run_id, config_hash, mode, stamp),
            )
            conn.execute(
                "INSERT INTO config_history (config_hash, changed_at) VALUES (?, ?)",
                (config_hash, stamp),
            )
            conn.execute(
                "INSERT INTO sessions (n, started_at, config_hash, version) VALUES (1, ?, ?, ?)",
                (stamp, config_hash, version),
            )

    def begin_session(self, started_at: datetime, config_hash: str, version: str = "") -> int:
        """Record a process resuming the run; its session number (2 for the first resume)."""
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM run").fetchone() is None:
                raise StoreError(f"{self.path}: no run begun; call begin_run() first")
            n = conn.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM sessions").fetchone()[0]
            conn.execute(
                "INSERT INTO sessions (n, started_at, config_hash, version) VALUES (?, ?, ?, ?)",
                (n, _stamp(started_at), config_hash, version),
            )
        return n

    def session(self) -> int:
        """The number of the latest session (0 before `begin_run`)."""
        row = self._one("SELECT COALESCE(MAX(n), 0) AS n FROM sessions")
        return 0 if row is None else row["n"]

    def run(self) -> RunRecord | None:
        row = self._one("SELECT * FROM run")
        if row is None:
            return None
        return RunRecord(
            row["run_id"],
            row["config_hash"],
            row["mode"],
            _parse(row["started_at"]),
            _parse_or_none(row["last_tick_at"]),
        )

    def set_config_hash(self, config_hash: str, at: datetime) -> None:
        """Accept a changed config for this run; the earlier hashes stay in `config_history()`."""
        with self._transaction() as conn:
            self._update_run(conn, "config_hash = ?", (config_hash,))
            conn.execute(
                "INSERT INTO config_history (config_hash, changed_at) VALUES (?, ?)",
                (config_hash, _stamp(at)),
            )

    def config_history(self) -> list[ConfigChange]:
        rows = self._all("SELECT config_hash, changed_at FROM config_history ORDER BY seq")
        return [ConfigChange(row["config_hash"], _parse(row["changed_at"])) for row in rows]

    # -- writes outside a tick ----------------------------------------------------------------

    def record_intents(
        self, now: datetime, decision_id: str, requests: Iterable[OrderRequest]
    ) -> None:
        """Commit orders about to be sent, status `intent`, before any of them leaves.

        Recording an intent again with the same fields is a no-op (a redone tick names the same
        orders), except that one found `unsent` is an intent again: it is about to leave. The same
        client order id with other fields is a StoreError."""
        rows = [_intent_row(decision_id, request) for request in requests]
        stamp = _stamp(now)
        with self._transaction() as conn:
            for row in rows:
                conflict = _intent_conflict(conn, row)
                if conflict:
                    raise StoreError(f"{self.path}: {conflict}")
                conn.execute(_INSERT_INTENT, (*row, stamp, stamp))
                conn.execute(
                    "UPDATE orders SET status = 'intent', updated_at = ? "
                    "WHERE client_order_id = ? AND status = 'unsent'",
                    (stamp, row[0]),
                )

    def set_consecutive_errors(self, n: int) -> None:
        """The error budget's count, committed at once so it survives a restart."""
        if n < 0:
            raise ValueError(f"consecutive errors must be >= 0, got {n}")
        with self._transaction() as conn:
            self._update_run(conn, "consecutive_errors = ?", (n,))

    # -- the tick -----------------------------------------------------------------------------

    @contextmanager
    def tick(self, now: datetime, *, advance: bool = True) -> Iterator[Tick]:
        """Collect one tick's records; write them in one transaction when the block ends without
        an exception, and the tick's `now` as `last_tick_at` with them.

        `advance=False` writes the records without moving `last_tick_at`: what a restart's
        reconciliation learnt from the venue before the next tick."""
        if self._tick is not None:
            raise StoreError(f"{self.path}: a tick is already open")
        if self.run() is None:
            raise StoreError(f"{self.path}: no run begun; call begin_run() first")
        handle = Tick(self, now, advance=advance)
        self._tick = handle
        try:
            yield handle
            statements = handle._statements()
            with self._transaction() as conn:
                for sql, params in statements:
                    conn.execute(sql, params)
        finally:
            handle._closed = True
            self._tick = None

    # -- reads --------------------------------------------------------------------------------

    def last_tick_at(self) -> datetime | None:
        row = self._one("SELECT last_tick_at FROM run")
        return None if row is None else _parse_or_none(row["last_tick_at"])

    def peak_equity(self) -> float | None:
        row = self._one("SELECT peak_equity FROM run")
        return None if row is None else row["peak_equity"]

    def consecutive_errors(self) -> int:
        row = self._one("SELECT consecutive_errors FROM run")
        return 0 if row is None else row["consecutive_errors"]

    def turnover(self) -> tuple[date, float] | None:
        """The day the turnover counter belongs to and the quote notional bought that day."""
        row = self._one("SELECT turnover_day, turnover_today FROM run")
        if row is None or row["turnover_day"] is None:
            return None
        return date.fromisoformat(row["turnover_day"]), row["turnover_today"]

    def last_decision(self) -> DecisionRecord | None:
        row = self._one("SELECT * FROM decisions ORDER BY tick_at DESC, rowid DESC LIMIT 1")
        return None if row is None else _decision_record(row)

    def breakout(self) -> BreakoutRecord | None:
        """The breakout state and stage of the last tick that recorded one."""
        row = self._one("SELECT * FROM breakout ORDER BY tick_at DESC LIMIT 1")
        if row is None:
            return None
        return BreakoutRecord(
            _parse(row["tick_at"]), row["state"], row["stage"], row["target_exposure"]
        )

    def orders(self, status: Iterable[str] | None = None) -> list[OrderRecord]:
        """Orders in the order they were recorded; only those with a status in `status` if given."""
        sql = "SELECT * FROM orders"
        params: tuple[str, ...] = ()
        if status is not None:
            params = tuple(_status(s) for s in status)
            sql += f" WHERE status IN ({', '.join('?' * len(params))})"
        rows = self._all(sql + " ORDER BY created_at, rowid", params)
        return [_order_record(row) for row in rows]

    def pending_orders(self) -> list[OrderRecord]:
        """Orders the venue has not finished: intents (maybe never sent) and open orders."""
        return self.orders(PENDING_STATUSES)

    def interrupted_decision(self) -> tuple[str, datetime] | None:
        """The decision whose orders were recorded after the last committed tick while its tick
        never committed (the process died mid-tick), and that tick's time; None if there is none.
        Orders a reconciliation adopted (decision ids ending `-reconcile`) are not decisions."""
        row = self._one(
            "SELECT decision_id, created_at FROM orders "
            "WHERE decision_id NOT IN (SELECT decision_id FROM decisions) "
            "AND decision_id NOT LIKE '%-reconcile' "
            "AND created_at > COALESCE((SELECT last_tick_at FROM run), '') "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )
        return None if row is None else (row["decision_id"], _parse(row["created_at"]))

    def order_decisions(self) -> dict[str, str]:
        """Client order id -> the decision that placed it, to tag fills."""
        rows = self._all("SELECT client_order_id, decision_id FROM orders")
        return {row["client_order_id"]: row["decision_id"] for row in rows}

    def fills_since(self, since: datetime | None) -> list[FillRecord]:
        """Fills with `ts` after `since` (all when None), oldest first."""
        if since is None:
            rows = self._all("SELECT * FROM fills ORDER BY ts, trade_id")
        else:
            rows = self._all(
                "SELECT * FROM fills WHERE ts > ? ORDER BY ts, trade_id", (_stamp(since),)
            )
        return [_fill_record(row) for row in rows]

    def last_fill_ts(self) -> datetime | None:
        row = self._one("SELECT MAX(ts) AS ts FROM fills")
        return _parse_or_none(row["ts"])

    def seen_trade_ids(self) -> set[str]:
        return {row["trade_id"] for row in self._all("SELECT trade_id FROM fills")}

    def positions(self) -> dict[str, float]:
        """Holdings per currency as of the last tick that recorded them."""
        rows = self._all("SELECT asset, amount FROM positions ORDER BY asset")
        return {row["asset"]: row["amount"] for row in rows}

    def last_good_prices(self) -> dict[str, float]:
        rows = self._all("SELECT asset, price FROM last_good_prices ORDER BY asset")
        return {row["asset"]: row["price"] for row in rows}

    def halts(self) -> frozenset[str]:
        """The halt rules in force at the last tick (a halt is journalled when it begins)."""
        return frozenset(row["rule"] for row in self._all("SELECT rule FROM halts"))

    def equity_history(self) -> list[EquityRecord]:
        rows = self._all("SELECT * FROM equity ORDER BY tick_at")
        return [
            EquityRecord(
                _parse(row["tick_at"]),
                row["equity"],
                row["cash"],
                row["drawdown"],
                _amounts(row["holdings"]),
                _amounts(row["prices"]),
            )
            for row in rows
        ]

    def breakout_history(self) -> list[BreakoutRecord]:
        rows = self._all("SELECT * FROM breakout ORDER BY tick_at")
        return [
            BreakoutRecord(_parse(r["tick_at"]), r["state"], r["stage"], r["target_exposure"])
            for r in rows
        ]

    def decisions(self) -> list[DecisionRecord]:
        """Every decision the store committed, oldest first."""
        rows = self._all("SELECT * FROM decisions ORDER BY tick_at, rowid")
        return [_decision_record(row) for row in rows]

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {_line(exc)}") from exc

    def _update_run(self, conn: sqlite3.Connection, assignments: str, params: tuple) -> None:
        if conn.execute(f"UPDATE run SET {assignments}", params).rowcount != 1:
            raise StoreError(f"{self.path}: no run begun; call begin_run() first")

    def _one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        return self._read(sql, params).fetchone()

    def _all(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._read(sql, params).fetchall()

    def _read(self, sql: str, params: tuple) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {_line(exc)}") from exc


class Tick:
    """One tick's records, written together when the `with store.tick(now)` block ends.

    Each method checks its arguments at once (a bad value fails the call, not the commit). The
    handle is dead after the block."""

    def __init__(self, store: Store, now: datetime, *, advance: bool = True) -> None:
        self._store = store
        self.now = now
        self._advance = advance
        self._now = _stamp(now)
        self._pending: list[tuple[str, tuple]] = [
            ("INSERT OR IGNORE INTO ticks (at) VALUES (?)", (self._now,)),
        ]
        self._intents: dict[str, tuple] = {}
        self._trade_ids: set[str] = set()
        self._closed = False

    def decision(self, decision_id: str, asof: date | None, action: str, reason: str) -> None:
        self._add(
            "INSERT OR REPLACE INTO decisions (decision_id, tick_at, asof, action, reason) "
            "VALUES (?, ?, ?, ?, ?)",
            (decision_id, self._now, _day_or_none(asof), _text(action), reason),
        )

    def breakout(self, state: str, stage: int, target_exposure: float) -> None:
        self._add(
            "INSERT OR REPLACE INTO breakout (tick_at, state, stage, target_exposure) "
            "VALUES (?, ?, ?, ?)",
            (self._now, _text(state), int(stage), float(target_exposure)),
        )

    def intent(self, decision_id: str, request: OrderRequest) -> None:
        """An order recorded with the tick rather than before it leaves (see `record_intents`)."""
        row = _intent_row(decision_id, request)
        earlier = self._intents.get(row[0])
        if earlier is None:
            conflict = _intent_conflict(self._store._conn, row)
        elif earlier != row:
            conflict = f"order {row[0]!r} was given twice in this tick with other fields"
        else:
            conflict = None
        if conflict:
            raise StoreError(f"{self._store.path}: {conflict}")
        self._intents[row[0]] = row
        self._add(_INSERT_INTENT, (*row, self._now, self._now))

    def adopt(self, decision_id: str, order: Order) -> None:
        """Record an order the venue holds but the store never did, as the venue reports it."""
        request = OrderRequest(
            order.client_order_id, order.symbol, order.side, order.type, order.amount, order.price
        )
        self.intent(decision_id, request)
        self.order_update(
            order.client_order_id, order.status.value, order.venue_order_id, order.filled
        )

    def order_update(
        self,
        client_order_id: str,
        status: str,
        venue_order_id: str | None = None,
        filled: float | None = None,
    ) -> None:
        """What the venue said of an order; None keeps the venue id or filled amount recorded."""
        known = client_order_id in self._intents or self._store._one(
            "SELECT 1 FROM orders WHERE client_order_id = ?", (client_order_id,)
        )
        if not known:
            raise StoreError(f"{self._store.path}: no order {client_order_id!r} was recorded")
        self._add(
            "UPDATE orders SET status = ?, venue_order_id = COALESCE(?, venue_order_id), "
            "filled = COALESCE(?, filled), updated_at = ? WHERE client_order_id = ?",
            (
                _status(status),
                venue_order_id,
                None if filled is None else float(filled),
                self._now,
                client_order_id,
            ),
        )

    def fill(self, trade: Trade) -> bool:
        """Record a fill once per trade id; True when it was not recorded before."""
        seen = trade.trade_id in self._trade_ids or self._store._one(
            "SELECT 1 FROM fills WHERE trade_id = ?", (trade.trade_id,)
        )
        if seen:
            return False
        self._trade_ids.add(trade.trade_id)
        self._add(
            "INSERT OR IGNORE INTO fills (trade_id, client_order_id, symbol, side, amount, price, "
            "fee, ts, tick_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trade.trade_id,
                trade.client_order_id,
                trade.symbol,
                _text(trade.side),
                float(trade.amount),
                float(trade.price),
                float(trade.fee),
                _stamp(trade.ts),
                self._now,
            ),
        )
        return True

    def positions(self, balances: Mapping[str, float]) -> None:
        """Holdings per currency, replacing the ones recorded before."""
        self._replace("positions", "asset, amount", balances)

    def last_good_prices(self, prices: Mapping[str, float]) -> None:
        """Each asset's reference price for the next tick's jump check, replacing the earlier."""
        self._replace("last_good_prices", "asset, price", prices)

    def equity(
        self,
        equity: float | None,
        cash: float | None,
        drawdown: float | None,
        holdings: Mapping[str, float] | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> None:
        """The tick's valuation; `holdings` and `prices` are what it was valued at."""
        self._add(
            "INSERT OR REPLACE INTO equity (tick_at, equity, cash, drawdown, holdings, prices) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._now,
                _real(equity),
                _real(cash),
                _real(drawdown),
                _amounts_json(holdings),
                _amounts_json(prices),
            ),
        )

    def peak_equity(self, value: float | None) -> None:
        """None or NaN: no peak yet."""
        self._add("UPDATE run SET peak_equity = ?", (_real(value),))

    def turnover(self, day: date, amount: float) -> None:
        """The daily turnover counter, so a restart mid-day does not reset the limit."""
        self._add(
            "UPDATE run SET turnover_day = ?, turnover_today = ?",
            (_day(day), float(amount)),
        )

    def halts(self, rules: Iterable[str]) -> None:
        """The halt rules in force after this tick, replacing the earlier set."""
        self._add("DELETE FROM halts", ())
        for rule in sorted({_text(r) for r in rules}):
            self._add("INSERT INTO halts (rule) VALUES (?)", (rule,))

    def _replace(self, table: str, columns: str, values: Mapping[str, float]) -> None:
        self._add(f"DELETE FROM {table}", ())
        for key, value in values.items():
            self._add(f"INSERT INTO {table} ({columns}) VALUES (?, ?)", (key, float(value)))

    def _add(self, sql: str, params: tuple) -> None:
        if self._closed:
            raise StoreError(f"{self._store.path}: this tick is over; open a new one")
        self._pending.append((sql, params))

    def _statements(self) -> list[tuple[str, tuple]]:
        if not self._advance:
            return list(self._pending)
        return [*self._pending, ("UPDATE run SET last_tick_at = ?", (self._now,))]


# -- helpers ------------------------------------------------------------------------------------

_INTENT_COLUMNS = ("client_order_id", "decision_id", "symbol", "side", "type", "amount", "price")
_INSERT_INTENT = (
    f"INSERT INTO orders ({', '.join(_INTENT_COLUMNS)}, status, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?) ON CONFLICT (client_order_id) DO NOTHING"
)


def _intent_row(decision_id: str, request: OrderRequest) -> tuple:
    return (
        request.client_order_id,
        decision_id,
        request.symbol,
        _text(request.side),
        _text(request.type),
        float(request.amount),
        None if request.price is None else float(request.price),
    )


def _intent_conflict(conn: sqlite3.Connection, row: tuple) -> str | None:
    """Why `row` cannot be recorded: its client order id names a different order already."""
    existing = conn.execute(
        f"SELECT {', '.join(_INTENT_COLUMNS)} FROM orders WHERE client_order_id = ?", (row[0],)
    ).fetchone()
    if existing is None or tuple(existing) == row:
        return None
    return f"order {row[0]!r} was recorded with other fields: {tuple(existing)} != {row}"


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = _check_file(conn, path)
    while version < len(MIGRATIONS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current == version:
                if version == 0:
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(
                    f"{path}: migration to schema version {version + 1} failed: {_line(exc)}"
                ) from exc
            raise
        version = _check_file(conn, path)


def _check_file(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; StoreError unless it is ours and not newer than the code."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app != APPLICATION_ID and (app != 0 or version != 0 or tables):
        raise StoreError(f"{path}: an SQLite file, but not a spillover state file")
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path}: schema version {version} is newer than this spillover knows "
            f"({len(MIGRATIONS)}); use a newer spillover or another run folder"
        )
    return version


def _stamp(ts: datetime) -> str:
    if not isinstance(ts, datetime):
        raise TypeError(f"timestamp must be a datetime, got {type(ts).__name__}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {ts.isoformat()}")
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parse_or_none(text: str | None) -> datetime | None:
    return None if text is None else _parse(text)


def _day(day: date) -> str:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day.isoformat()


def _day_or_none(day: date | None) -> str | None:
    return None if day is None else _day(day)


def _text(value: Any) -> str:
    """An enum as its value; anything else must already be text."""
    if isinstance(value, enum.Enum):
        value = value.value
    if not isinstance(value, str):
        raise TypeError(f"expected text or a text enum, got {value!r}")
    return str(value)


def _status(status: str) -> str:
    status = _text(status)
    if status not in ORDER_STATUSES:
        raise ValueError(f"order status must be one of {sorted(ORDER_STATUSES)}, got {status!r}")
    return status


def _real(value: float | None) -> float | None:
    """NaN (an unknown number) is stored as NULL and read back as None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _order_record(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        client_order_id=row["client_order_id"],
        decision_id=row["decision_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        amount=row["amount"],
        price=row["price"],
        status=row["status"],
        venue_order_id=row["venue_order_id"],
        filled=row["filled"],
        created_at=_parse(row["created_at"]),
        updated_at=_parse(row["updated_at"]),
    )


def _decision_record(row: sqlite3.Row) -> DecisionRecord:
    asof = row["asof"]
    return DecisionRecord(
        row["decision_id"],
        _parse(row["tick_at"]),
        None if asof is None else date.fromisoformat(asof),
        row["action"],
        row["reason"],
    )


def _amounts_json(values: Mapping[str, float] | None) -> str | None:
    if values is None:
        return None
    return json.dumps({str(k): _real(v) for k, v in values.items()}, sort_keys=True)


def _amounts(text: str | None) -> dict[str, float | None] | None:
    return None if text is None else json.loads(text)


def _fill_record(row: sqlite3.Row) -> FillRecord:
    return FillRecord(
        trade_id=row["trade_id"],
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        amount=row["amount"],
        price=row["price"],
        fee=row["fee"],
        ts=_parse(row["ts"]),
        tick_at=_parse(row["tick_at"]),
    )


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
