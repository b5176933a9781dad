import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import agent.store as store_module
from agent.ports import OrderRequest, OrderStatus, OrderType, Trade
from agent.store import (
    MIGRATIONS,
    STATE_FILE,
    BreakoutRecord,
    ConfigChange,
    DecisionRecord,
    EquityRecord,
    FillRecord,
    OrderRecord,
    RunRecord,
    Store,
    StoreError,
)
from risk.verdict import Side

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2021, 1, 4, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
DECISION = "run-1-20210104T0000"


def request(n: int = 0, amount: float = 0.25, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(f"{DECISION}-{n}", "BTC/USDT", side, OrderType.MARKET, amount)


def trade(trade_id: str = "t-1", ts: datetime = T0, n: int = 0) -> Trade:
    return Trade(trade_id, f"{DECISION}-{n}", "BTC/USDT", Side.BUY, 0.25, 33000.0, 8.25, ts)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path) as opened:
        opened.begin_run("run-1", "hash-a", "testnet", T0)
        yield opened


# -- opening ----------------------------------------------------------------------------------


def test_open_creates_the_state_file_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path):
    with Store.open(tmp_path / "run") as opened:
        assert opened.path == tmp_path / "run" / STATE_FILE
        conn = opened._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.isolation_level is None
    raw = sqlite3.connect(tmp_path / "run" / STATE_FILE)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    raw.close()


def test_reopening_keeps_everything_and_migrates_nothing(tmp_path, monkeypatch):
    with Store.open(tmp_path) as first:
        first.begin_run("run-1", "hash-a", "sim", T0)
    calls = []
    monkeypatch.setattr(
        store_module, "MIGRATIONS", [lambda conn: calls.append(1) for _ in MIGRATIONS]
    )
    with Store.open(tmp_path) as again:
        assert again.run().run_id == "run-1"
    assert calls == []


def test_a_garbage_file_is_a_one_line_store_error_naming_the_file(tmp_path):
    path = tmp_path / STATE_FILE
    path.write_bytes(b"this is not a database, just some bytes\n" * 100)
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_another_programs_sqlite_file_is_refused(tmp_path):
    raw = sqlite3.connect(tmp_path / STATE_FILE)
    raw.execute("CREATE TABLE notes (body TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="not a spillover state file"):
        Store.open(tmp_path)


def test_a_file_from_a_newer_spillover_is_a_one_line_store_error(tmp_path):
    Store.open(tmp_path).close()
    raw = sqlite3.connect(tmp_path / STATE_FILE)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    message = str(caught.value)
    assert f"schema version {len(MIGRATIONS) + 1} is newer" in message
    assert str(tmp_path / STATE_FILE) in message
    assert "\n" not in message


# -- migrations -------------------------------------------------------------------------------


def v1_file(folder: Path) -> Path:
    """A version-1 file made by hand: the initial schema and one run, as the first release wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STATE_FILE
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    MIGRATIONS[0](raw)
    raw.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO run (id, run_id, config_hash, mode, started_at) "
        "VALUES (1, 'run-1', 'hash-a', 'sim', '2021-01-04T00:00:00.000000Z')"
    )
    raw.execute("COMMIT")
    raw.close()
    return path


def test_a_migration_appended_later_is_applied_once_and_bumps_user_version(tmp_path, monkeypatch):
    path = v1_file(tmp_path)
    applied = []

    def add_note(conn: sqlite3.Connection) -> None:
        applied.append(conn.in_transaction)
        conn.execute("ALTER TABLE run ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated'")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, add_note])
    with Store.open(tmp_path) as opened:
        assert opened.run().run_id == "run-1"  # the data came through
    with Store.open(tmp_path):
        pass
    assert applied == [True]  # once, inside a transaction
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
    assert raw.execute("SELECT note FROM run").fetchone()[0] == "migrated"
    raw.close()


def test_a_failing_migration_leaves_the_file_at_its_previous_version(tmp_path, monkeypatch):
    path = v1_file(tmp_path)

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x INTEGER)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, half_done])
    failing = len(MIGRATIONS) + 1
    with pytest.raises(StoreError, match=f"migration to schema version {failing} failed"):
        Store.open(tmp_path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    raw.close()


def test_a_first_release_file_gains_sessions_with_its_run_as_session_one(tmp_path):
    v1_file(tmp_path)
    with Store.open(tmp_path) as opened:
        assert opened.session() == 1
        assert opened.begin_session(T0 + timedelta(days=3), "hash-a") == 2
        assert opened.run().run_id == "run-1"


# -- run metadata -----------------------------------------------------------------------------


def test_run_metadata_round_trips_and_config_changes_keep_their_history(store):
    assert store.run() == RunRecord("run-1", "hash-a", "testnet", T0, None)
    store.set_config_hash("hash-b", T1)
    assert store.run().config_hash == "hash-b"
    assert store.config_history() == [ConfigChange("hash-a", T0), ConfigChange("hash-b", T1)]


def test_a_second_begin_run_in_the_same_file_is_refused(store):
    with pytest.raises(StoreError, match="already holds run 'run-1'"):
        store.begin_run("run-2", "hash-b", "sim", T1)
    assert store.run().run_id == "run-1"


def test_an_empty_store_reads_as_nothing_yet(tmp_path):
    with Store.open(tmp_path) as empty:
        assert empty.run() is None
        assert empty.last_tick_at() is None
        assert empty.peak_equity() is None
        assert empty.consecutive_errors() == 0
        assert empty.turnover() is None
        assert empty.last_decision() is None
        assert empty.breakout() is None
        assert empty.orders() == []
        assert empty.fills_since(None) == []
        assert empty.last_fill_ts() is None
        assert empty.seen_trade_ids() == set()
        assert empty.positions() == {}
        assert empty.last_good_prices() == {}
        assert empty.halts() == frozenset()
        assert empty.equity_history() == []


def test_a_tick_before_begin_run_is_refused(tmp_path):
    with Store.open(tmp_path) as empty, pytest.raises(StoreError, match="no run begun"):
        empty.tick(T0).__enter__()


# -- one tick ---------------------------------------------------------------------------------


def test_every_record_of_a_tick_round_trips(store):
    store.record_intents(T0, DECISION, [request(0), request(1, 2.0, Side.SELL)])
    with store.tick(T0) as t:
        t.decision(DECISION, date(2021, 1, 3), "trade", "confirmed: stage 1")
        t.breakout("confirmed", 1, 0.25)
        t.order_update(f"{DECISION}-0", OrderStatus.CLOSED, "v-1", 0.25)
        t.order_update(f"{DECISION}-1", "rejected")
        assert t.fill(trade("t-1"))
        t.positions({"USDT": 1000.5, "BTC": 0.25})
        t.last_good_prices({"BTC": 33000.0, "ETH": 1000.0})
        t.equity(9250.0, 1000.5, 0.075)
        t.peak_equity(10_000.0)
        t.turnover(date(2021, 1, 4), 8250.0)
        t.halts(["drawdown"])

    assert store.last_tick_at() == T0
    assert store.run().last_tick_at == T0
    assert store.last_decision() == DecisionRecord(
        DECISION, T0, date(2021, 1, 3), "trade", "confirmed: stage 1"
    )
    assert store.breakout() == BreakoutRecord(T0, "confirmed", 1, 0.25)
    common = {"decision_id": DECISION, "symbol": "BTC/USDT", "type": OrderType.MARKET}
    common |= {"price": None, "created_at": T0, "updated_at": T0}
    assert store.orders() == [
        OrderRecord(
            client_order_id=f"{DECISION}-0",
            side=Side.BUY,
            amount=0.25,
            status="closed",
            venue_order_id="v-1",
            filled=0.25,
            **common,
        ),
        OrderRecord(
            client_order_id=f"{DECISION}-1",
            side=Side.SELL,
            amount=2.0,
            status="rejected",
            venue_order_id=None,
            filled=0.0,
            **common,
        ),
    ]
    assert store.order_decisions() == {f"{DECISION}-0": DECISION, f"{DECISION}-1": DECISION}
    assert store.fills_since(None) == [
        FillRecord("t-1", f"{DECISION}-0", "BTC/USDT", Side.BUY, 0.25, 33000.0, 8.25, T0, T0)
    ]
    assert store.last_fill_ts() == T0
    assert store.seen_trade_ids() == {"t-1"}
    assert store.positions() == {"BTC": 0.25, "USDT": 1000.5}
    assert store.last_good_prices() == {"BTC": 33000.0, "ETH": 1000.0}
    assert store.equity_history() == [EquityRecord(T0, 9250.0, 1000.5, 0.075)]
    assert store.peak_equity() == 10_000.0
    assert store.turnover() == (date(2021, 1, 4), 8250.0)
    assert store.halts() == frozenset({"drawdown"})


def test_a_later_tick_replaces_positions_prices_and_halts_and_appends_history(store):
    with store.tick(T0) as t:
        t.breakout("candidate", 0, 0.0)
        t.positions({"USDT": 10_000.0, "BTC": 0.0})
        t.last_good_prices({"BTC": 30000.0})
        t.equity(10_000.0, 10_000.0, 0.0)
        t.halts(["drawdown", "error_budget"])
    with store.tick(T1) as t:
        t.breakout("confirmed", 1, 0.25)
        t.positions({"USDT": 7_500.0, "BTC": 0.08})
        t.last_good_prices({"ETH": 1000.0})
        t.equity(None, 7_500.0, math.nan)
        t.halts([])
    assert store.breakout() == BreakoutRecord(T1, "confirmed", 1, 0.25)
    assert store.positions() == {"USDT": 7_500.0, "BTC": 0.08}
    assert store.last_good_prices() == {"ETH": 1000.0}
    assert store.halts() == frozenset()
    assert store.equity_history() == [
        EquityRecord(T0, 10_000.0, 10_000.0, 0.0),
        EquityRecord(T1, None, 7_500.0, None),  # unknown numbers read back as None
    ]
    assert store.last_tick_at() == T1


def test_an_exception_inside_a_tick_leaves_nothing_of_that_tick(store):
    store.record_intents(T0, DECISION, [request(0)])

    def tick_that_fails() -> None:
        with store.tick(T0) as t:
            t.decision(DECISION, date(2021, 1, 3), "trade", "stage 1")
            t.breakout("confirmed", 1, 0.25)
            t.order_update(f"{DECISION}-0", "open", "v-1")
            t.fill(trade("t-1"))
            t.positions({"BTC": 0.25})
            t.last_good_prices({"BTC": 1.0})
            t.equity(1.0, 1.0, 0.0)
            t.peak_equity(1.0)
            t.turnover(date(2021, 1, 4), 1.0)
            t.halts(["drawdown"])
            raise RuntimeError("venue down")

    with pytest.raises(RuntimeError, match="venue down"):
        tick_that_fails()
    assert store.last_tick_at() is None
    assert store.last_decision() is None
    assert store.breakout() is None
    assert [o.status for o in store.orders()] == ["intent"]
    assert store.seen_trade_ids() == set()
    assert store.positions() == {}
    assert store.last_good_prices() == {}
    assert store.equity_history() == []
    assert store.peak_equity() is None
    assert store.turnover() is None
    assert store.halts() == frozenset()


def test_a_failure_while_committing_a_tick_rolls_all_of_it_back(store):

    def tick_that_cannot_commit() -> None:
        with store.tick(T0) as t:
            t.decision(DECISION, None, "refused", "no session")
            t.equity(1.0, 1.0, 0.0)
            t._add("INSERT INTO no_such_table VALUES (1)", ())  # fails at commit, after the rest

    with pytest.raises(StoreError, match="no such table"):
        tick_that_cannot_commit()
    assert store.last_decision() is None
    assert store.equity_history() == []
    assert store.last_tick_at() is None


def test_the_tick_handle_is_dead_after_its_block_and_ticks_do_not_nest(store):
    with store.tick(T0) as t:
        nested = store.tick(T1)
        with pytest.raises(StoreError, match="already open"):
            nested.__enter__()
    with pytest.raises(StoreError, match="tick is over"):
        t.equity(1.0, 1.0, 0.0)


def test_reads_inside_a_tick_see_only_what_was_committed_before_it(store):
    with store.tick(T0) as t:
        t.peak_equity(5.0)
        assert store.peak_equity() is None
    assert store.peak_equity() == 5.0


def test_a_nan_peak_equity_is_stored_as_no_peak(store):
    with store.tick(T0) as t:
        t.peak_equity(math.nan)
    assert store.peak_equity() is None


# -- orders and intents ------------------------------------------------------------------------


def test_intents_are_committed_at_once_visible_to_another_connection_before_the_tick(
    store, tmp_path
):
    with store.tick(T0) as t:
        t.decision(DECISION, date(2021, 1, 3), "trade", "stage 1")
        store.record_intents(T0, DECISION, [request(0)])
        with Store.open(tmp_path) as other:
            assert [o.client_order_id for o in other.pending_orders()] == [f"{DECISION}-0"]
            assert other.last_decision() is None
            assert other.last_tick_at() is None
    with Store.open(tmp_path) as other:
        assert other.last_decision().decision_id == DECISION


def test_recording_the_same_intent_again_is_a_no_op_and_a_different_one_is_refused(store):
    store.record_intents(T0, DECISION, [request(0)])
    store.record_intents(T1, DECISION, [request(0)])  # a restarted tick names the same order
    assert [(o.client_order_id, o.created_at) for o in store.orders()] == [(f"{DECISION}-0", T0)]
    with pytest.raises(StoreError, match="recorded with other fields"):
        store.record_intents(T1, DECISION, [request(1), request(0, amount=0.5)])
    assert len(store.orders()) == 1  # the whole call was refused, request(1) included
    with store.tick(T1) as t, pytest.raises(StoreError, match="other fields"):
        t.intent(DECISION, request(0, amount=0.5))


def test_intents_recorded_with_the_tick_are_written_with_it(store):
    with store.tick(T0) as t:
        t.intent(DECISION, request(0))
        t.order_update(f"{DECISION}-0", "open", "v-1")
        assert store.orders() == []
    assert [(o.status, o.venue_order_id) for o in store.orders()] == [("open", "v-1")]


def test_pending_orders_are_intents_and_open_orders(store):
    store.record_intents(T0, DECISION, [request(n) for n in range(4)])
    with store.tick(T0) as t:
        t.order_update(f"{DECISION}-1", "open", "v-1")
        t.order_update(f"{DECISION}-2", "closed", "v-2", 0.25)
        t.order_update(f"{DECISION}-3", "canceled", "v-3", 0.0)
    pending = store.pending_orders()
    assert [(o.client_order_id, o.status) for o in pending] == [
        (f"{DECISION}-0", "intent"),
        (f"{DECISION}-1", "open"),
    ]
    assert [o.client_order_id for o in store.orders({"closed", "canceled"})] == [
        f"{DECISION}-2",
        f"{DECISION}-3",
    ]


def test_an_order_update_keeps_the_venue_id_and_fill_it_is_not_given(store):
    store.record_intents(T0, DECISION, [request(0)])
    with store.tick(T0) as t:
        t.order_update(f"{DECISION}-0", "open", "v-1", 0.1)
    with store.tick(T1) as t:
        t.order_update(f"{DECISION}-0", "closed")
    (order,) = store.orders()
    assert (order.status, order.venue_order_id, order.filled) == ("closed", "v-1", 0.1)
    assert (order.created_at, order.updated_at) == (T0, T1)


def test_an_update_of_an_order_never_recorded_or_an_unknown_status_is_refused(store):
    store.record_intents(T0, DECISION, [request(0)])
    with store.tick(T0) as t:
        with pytest.raises(StoreError, match="no order 'nope' was recorded"):
            t.order_update("nope", "open")
        with pytest.raises(ValueError, match="order status must be one of"):
            t.order_update(f"{DECISION}-0", "lost")


# -- fills ------------------------------------------------------------------------------------


def test_fills_are_recorded_once_per_trade_id(store):
    with store.tick(T0) as t:
        assert t.fill(trade("t-1")) is True
        assert t.fill(trade("t-1")) is False  # twice in one tick
        assert t.fill(trade("t-2", T0 + timedelta(seconds=1))) is True
    with store.tick(T1) as t:
        assert t.fill(trade("t-1")) is False  # again in a later tick
        assert t.fill(trade("t-3", T1)) is True
    assert [f.trade_id for f in store.fills_since(None)] == ["t-1", "t-2", "t-3"]
    assert store.seen_trade_ids() == {"t-1", "t-2", "t-3"}


def test_fills_since_returns_later_fills_oldest_first_and_counts_unknown_orders(store):
    with store.tick(T1) as t:
        t.fill(trade("t-3", T1, n=7))  # an order this store never recorded
        t.fill(trade("t-1", T0))
        t.fill(trade("t-2", T0 + timedelta(hours=1)))
    assert [f.trade_id for f in store.fills_since(T0)] == ["t-2", "t-3"]
    assert store.last_fill_ts() == T1
    assert store.fills_since(T1) == []


# -- counters and timestamps -------------------------------------------------------------------


def test_the_error_count_is_committed_at_once_and_survives_a_reopen(store, tmp_path):
    with store.tick(T0):
        store.set_consecutive_errors(3)  # not held back by the open tick
        with Store.open(tmp_path) as other:
            assert other.consecutive_errors() == 3
    with pytest.raises(ValueError, match=">= 0"):
        store.set_consecutive_errors(-1)
    store.close()
    with Store.open(tmp_path) as again:
        assert again.consecutive_errors() == 3


def test_timestamps_are_stored_as_utc_iso_text_and_must_be_aware(store):
    plus_two = timezone(timedelta(hours=2))
    with store.tick(datetime(2021, 1, 4, 2, 0, tzinfo=plus_two)) as t:
        t.fill(trade("t-1", datetime(2021, 1, 4, 1, 30, tzinfo=plus_two)))
    raw = store._conn
    assert raw.execute("SELECT at FROM ticks").fetchone()[0] == "2021-01-04T00:00:00.000000Z"
    assert raw.execute("SELECT ts FROM fills").fetchone()[0] == "2021-01-03T23:30:00.000000Z"
    assert store.last_tick_at() == T0
    assert store.last_tick_at().tzinfo is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        store.tick(datetime(2021, 1, 4)).__enter__()
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_intents(datetime(2021, 1, 4), DECISION, [request(0)])


# -- a real crash -------------------------------------------------------------------------------

_CRASH = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, date, datetime
    from pathlib import Path

    from agent.ports import OrderRequest, OrderType
    from agent.store import Store
    from risk.verdict import Side

    now = datetime(2021, 1, 4, tzinfo=UTC)
    store = Store.open(Path(sys.argv[1]))
    store.begin_run("run-1", "hash-a", "testnet", now)

    def hang():
        print("inside the tick transaction", flush=True)
        time.sleep(60)

    # Stops the tick's commit after its decision row is written but before COMMIT.
    store._conn.create_function("hang", 0, hang)
    store._conn.execute(
        "CREATE TEMP TRIGGER hang AFTER INSERT ON main.equity BEGIN SELECT hang(); END"
    )
    with store.tick(now) as t:
        t.decision("d-1", date(2021, 1, 3), "trade", "stage 1")
        store.record_intents(
            now, "d-1", [OrderRequest("d-1-0", "BTC/USDT", Side.BUY, OrderType.MARKET, 0.25)]
        )
        t.equity(10_000.0, 7_500.0, 0.0)
    """
)


def test_intents_survive_a_sigkill_in_the_middle_of_the_tick_transaction(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH, str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line == "inside the tick transaction\n", child.stderr.read()
        with Store.open(tmp_path) as during:  # a reader does not wait for the writer
            assert during.last_decision() is None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert (tmp_path / f"{STATE_FILE}-wal").exists()  # died without checkpointing

    with Store.open(tmp_path) as after:
        assert [(o.client_order_id, o.status) for o in after.pending_orders()] == [
            ("d-1-0", "intent")
        ]
        assert after.last_decision() is None
        assert after.equity_history() == []
        assert after.last_tick_at() is None
        assert after.run().run_id == "run-1"
        with after.tick(T0) as t:  # and the file takes the next write
            t.equity(1.0, 1.0, 0.0)
        assert after.last_tick_at() == T0


def test_an_unsent_order_recorded_again_is_an_intent_again(store):
    request = OrderRequest("cid-9", "BTC/USDT", Side.BUY, OrderType.MARKET, 0.5)
    store.record_intents(T0, "d-9", [request])
    with store.tick(T0, advance=False) as saved:
        saved.order_update("cid-9", "unsent")
    assert store.pending_orders() == []
    store.record_intents(T0, "d-9", [request])  # the interrupted tick, redone, sends it
    assert [o.status for o in store.pending_orders()] == ["intent"]
