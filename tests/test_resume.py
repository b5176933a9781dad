"""Resuming a testnet run folder: state restored from the store, reconciled with the venue (the
loopback exchange emulator) before any trade, every discrepancy journalled with both sides'
numbers; a changed config or another mode refused; no trading when reconciliation fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agent import live
from agent.clock import SimClock
from agent.config import Config, RunConfig
from agent.loop import TickResult
from agent.marketdata.sample import generate
from agent.reconcile import ReconcileError
from agent.runtime import RunFolderError
from agent.secrets import ALPACA_KEY_NAMES, exchange_key_names
from agent.store import Store
from risk.journal import read_journal
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.common import LoopbackEmulator
from tests.fault_run import SAMPLE_SEED, USDT, _exchange, _Market, make_config

FIRST_DAY = date(2016, 11, 6)
"""The 26 days from here hold the 2016 planted breakout: buys, trims and sells of BTC."""


@dataclass
class Scene:
    """One exchange emulator and one Alpaca emulator that outlive the agent processes run
    against them, on a simulated clock the `sleep` of the loop moves a day at a time."""

    exchange: LoopbackEmulator
    alpaca: AlpacaEmulator
    market: _Market
    clock: SimClock
    config: Config
    env: dict[str, str]
    ticks: list[TickResult] = field(default_factory=list)

    def run(self, folder: Path, days: int, **options: object) -> str:
        """Run the agent for `days` more ticks in `folder` (a new run, or a resumed one)."""
        target = len(self.ticks) + days

        def should_stop() -> str | None:
            return "enough days" if len(self.ticks) >= target else None

        def sleep(_seconds: float) -> None:
            self.clock.current = live.next_tick(self.clock.current, self.config.run.tick_at)
            self.market.move_to(self.clock.current)

        return live.run_live(
            options.pop("config", self.config),  # type: ignore[arg-type]
            folder,
            self.env,
            should_stop=should_stop,
            on_tick=self.ticks.append,
            clock=self.clock,
            sleep=sleep,
            **options,  # type: ignore[arg-type]
        )

    def positions(self) -> dict[str, Decimal]:
        with self.exchange.lock:
            return {
                asset: self.exchange.free.get(asset, Decimal(0))
                + self.exchange.locked.get(asset, Decimal(0))
                for asset in sorted(set(self.exchange.free) | set(self.exchange.locked))
            }


@contextmanager
def new_scene() -> Iterator[Scene]:
    bars, _ = generate(seed=SAMPLE_SEED)
    crypto = {symbol: frame for symbol, frame in bars.items() if symbol.endswith("-USD")}
    clock = SimClock(datetime.combine(FIRST_DAY, datetime.min.time(), UTC))
    exchange = _exchange("binance")
    alpaca = AlpacaEmulator(now=clock.now)
    for symbol in ("IWM", "SPY"):
        alpaca.set_bars(symbol, bars[symbol])
    exchange.set_balance("USDT", USDT)
    market = _Market(exchange, crypto)
    with exchange, alpaca:
        config = make_config("binance", exchange.url, alpaca.url)
        key, secret = exchange_key_names("binance")
        env = {
            ALPACA_KEY_NAMES[0]: alpaca.api_key,
            ALPACA_KEY_NAMES[1]: alpaca.secret_key,
            key: exchange.api_key,
            secret: exchange.secret,
        }
        clock.current = datetime.combine(FIRST_DAY, config.run.tick_at, UTC)
        market.move_to(clock.current)
        yield Scene(exchange, alpaca, market, clock, config, env)


@pytest.fixture
def scene() -> Iterator[Scene]:
    with new_scene() as made:
        yield made


def events(folder: Path, name: str) -> list[dict]:
    return [r for r in read_journal(folder / "decisions.jsonl") if r["event"] == name]


def test_a_stopped_run_resumes_where_it_stood_and_ends_as_an_uninterrupted_run_would(
    scene: Scene, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 12)
    scene.run(folder, 14)
    resumed_positions = scene.positions()
    starts = events(folder, "start")
    assert [s["session"] for s in starts] == [1, 2]
    (reconciled,) = events(folder, "reconcile")
    assert reconciled["ok"] is True
    assert reconciled["orders_checked"] == 0  # nothing was pending: the stop was clean
    decisions = events(folder, "decision")
    tick_times = [d["ts"] for d in decisions]
    assert len(tick_times) == len(set(tick_times)) == 26  # no tick repeated, none missing
    assert all(d["decision_id"].endswith("-2") for d in decisions[12:])
    assert scene.exchange.duplicate_client_ids() == []
    with Store.open(folder) as store:
        assert store.session() == 2
        assert store.last_tick_at() == scene.ticks[-1].now
    assert resumed_positions["BTC"] > 0
    assert len(events(folder, "order")) >= 4


def test_a_run_stopped_and_resumed_holds_what_an_uninterrupted_run_holds(tmp_path: Path) -> None:
    held = []
    for runs in ((12, 14), (26,)):
        with new_scene() as scene:
            folder = tmp_path / "-".join(map(str, runs))
            for days in runs:
                scene.run(folder, days)
            held.append(scene.positions())
    resumed, uninterrupted = held
    assert resumed == uninterrupted


def test_an_intent_the_venue_never_saw_is_recorded_unsent(scene: Scene, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 2)
    from agent.ports import OrderRequest, OrderType
    from risk.verdict import Side

    lost = OrderRequest("tn-lost-0", "BTC/USDT", Side.BUY, OrderType.MARKET, 0.01)
    with Store.open(folder) as store:
        store.record_intents(scene.clock.now(), "tn-lost", [lost])
    scene.run(folder, 1)
    (found,) = [d for d in events(folder, "discrepancy") if d["key"] == "tn-lost-0"]
    assert found["kind"] == "order"
    assert found["store"]["status"] == "intent"
    assert found["venue"] is None
    assert found["action"] == "recorded unsent"
    with Store.open(folder) as store:
        assert [o.status for o in store.orders() if o.client_order_id == "tn-lost-0"] == ["unsent"]
    assert scene.exchange.orders_by_client_id("tn-lost-0") == []  # never sent on resume either


def test_an_order_sent_before_the_crash_is_adopted_with_its_fill(
    scene: Scene, tmp_path: Path
) -> None:
    """The process died between the send and the answer: the store holds an intent, the venue a
    filled order. The resume records the fill once, under the decision that placed it."""
    folder = tmp_path / "run"
    scene.run(folder, 2)
    from agent.ports import OrderRequest, OrderType
    from risk.verdict import Side

    sent = OrderRequest("tn-sent-0", "ETH/USDT", Side.BUY, OrderType.MARKET, 10.0)
    with Store.open(folder) as store:
        store.record_intents(scene.clock.now(), "tn-sent", [sent])
        before = store.positions()
    with scene.exchange.lock:
        scene.exchange.place_order(
            symbol="ETHUSDT", side="BUY", type="MARKET", client_id="tn-sent-0", qty=Decimal(10)
        )
    scene.run(folder, 1)
    records = events(folder, "discrepancy")
    (order,) = [d for d in records if d["key"] == "tn-sent-0"]
    assert (order["store"]["status"], order["venue"]["status"]) == ("intent", "closed")
    assert order["venue"]["filled"] == pytest.approx(10.0)
    (fill,) = [f for f in events(folder, "fill") if f["client_order_id"] == "tn-sent-0"]
    assert fill["decision_id"] == "tn-sent"
    (eth,) = [d for d in records if d["kind"] == "balance" and d["key"] == "ETH"]
    assert eth["store"] == pytest.approx(before.get("ETH", 0.0))
    assert eth["venue"] == pytest.approx(before.get("ETH", 0.0) + 10.0)
    assert "unexplained" not in eth["action"]
    assert scene.exchange.duplicate_client_ids() == []
    with Store.open(folder) as store:
        (record,) = [o for o in store.orders() if o.client_order_id == "tn-sent-0"]
        assert (record.status, record.filled) == ("closed", pytest.approx(10.0))


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_an_open_order_the_run_never_placed_is_cancelled_or_adopted(
    scene: Scene, tmp_path: Path, policy: str
) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 2)
    with scene.exchange.lock:
        price = scene.exchange.prices["BTCUSDT"]
        scene.exchange.place_order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            client_id="someone-else-1",
            qty=Decimal("0.05"),
            price=(price / 2).quantize(Decimal("0.01")),
            time_in_force="GTC",
        )
    config = scene.config.model_copy(
        update={"run": RunConfig(unknown_orders=policy)}  # type: ignore[arg-type]
    )
    scene.run(folder, 1, config=config, accept_config_change=True)
    (found,) = [d for d in events(folder, "discrepancy") if d["kind"] == "unknown_order"]
    assert found["key"] == "someone-else-1"
    (order,) = scene.exchange.orders_by_client_id("someone-else-1")
    with Store.open(folder) as store:
        known = {o.client_order_id: o.status for o in store.orders()}
    if policy == "cancel":
        assert found["action"].startswith("cancelled")
        assert order.status == "CANCELED"
        assert "someone-else-1" not in known
    else:
        assert found["action"] == "adopted"
        assert order.is_open
        assert known["someone-else-1"] == "open"


def test_a_changed_config_is_refused_unless_accepted_and_the_journal_keeps_both_hashes(
    scene: Scene, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 1)
    changed = scene.config.model_copy(
        update={"risk": replace(scene.config.risk, max_order_notional=20_000.0)}
    )
    with pytest.raises(RunFolderError, match="--accept-config-change"):
        scene.run(folder, 1, config=changed)
    assert len(scene.ticks) == 1
    scene.run(folder, 1, config=changed, accept_config_change=True)
    (change,) = events(folder, "config_change")
    assert change["old_hash"] == scene.config.hash()
    assert change["new_hash"] == changed.hash()
    with Store.open(folder) as store:
        assert [c.config_hash for c in store.config_history()] == [
            scene.config.hash(),
            changed.hash(),
        ]


def test_no_trade_when_the_venue_cannot_be_reconciled(scene: Scene, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 1)
    orders_before = len(scene.exchange.create_requests)
    scene.exchange.fail_next("503", "/api/v3/myTrades", times=100)
    with pytest.raises(ReconcileError, match="cannot reconcile"):
        scene.run(folder, 5)
    assert len(scene.ticks) == 1
    assert len(scene.exchange.create_requests) == orders_before
    last = events(folder, "reconcile")[-1]
    assert last["ok"] is False
    assert events(folder, "stop")[-1]["reason"].startswith("ReconcileError")


def test_fresh_sets_the_old_run_aside_and_starts_a_new_one(scene: Scene, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    scene.run(folder, 1)
    scene.run(folder, 1, fresh=True)
    assert [s["session"] for s in events(folder, "start")] == [1]
    (archived,) = (folder / "previous").iterdir()
    assert (archived / "state.sqlite").exists()
    assert (archived / "decisions.jsonl").exists()


def test_a_send_that_failed_is_followed_to_unsent_by_the_next_tick(
    scene: Scene, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    attempts = scene.config.venue.read_attempts
    scene.exchange.fail_next("503", "/api/v3/order", times=attempts, method="POST")
    scene.run(folder, 12)
    (failed,) = [o for o in events(folder, "order") if o["status"] == "error"]
    assert scene.exchange.orders_by_client_id(failed["client_order_id"]) == []
    with Store.open(folder) as store:
        statuses = {o.client_order_id: o.status for o in store.orders()}
        assert store.pending_orders() == []
    assert statuses[failed["client_order_id"]] == "unsent"
    assert set(statuses.values()) == {"unsent", "closed"}


def test_a_folder_of_another_mode_is_refused(scene: Scene, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with Store.open(folder) as store:
        store.begin_run("ru-1", scene.config.hash(), "run", scene.clock.now())
    with pytest.raises(RunFolderError, match="holds a replayed-data run, which a testnet config"):
        scene.run(folder, 1)
    assert scene.ticks == []
    assert scene.exchange.create_requests == []


class Died(BaseException):
    """The process dying where it stood (nothing after this point runs)."""


def test_a_restart_later_the_same_day_completes_the_interrupted_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with new_scene() as scene:
        scene.run(tmp_path / "whole", 26)
        uninterrupted = scene.positions()
    real = Store.record_intents
    died: list[tuple[str, list[str]]] = []

    def record_then_die(self, now, decision_id, requests):  # type: ignore[no-untyped-def]
        requests = list(requests)
        real(self, now, decision_id, requests)
        if not died:
            died.append((decision_id, [r.client_order_id for r in requests]))
            raise Died

    monkeypatch.setattr(Store, "record_intents", record_then_die)
    with new_scene() as scene:
        folder = tmp_path / "killed"
        with pytest.raises(Died):
            scene.run(folder, 26)
        [(decision_id, client_ids)] = died
        assert scene.exchange.create_requests == []  # the batch was recorded, nothing sent
        scene.clock.current += timedelta(hours=3)  # restarted later that day
        scene.run(folder, 26 - len(scene.ticks))
        redone = [d for d in events(folder, "decision") if d.get("redone")]
        assert [d["decision_id"] for d in redone] == [decision_id]
        assert [o["client_order_id"] for o in redone[0]["orders"]] == client_ids
        for cid in client_ids:
            assert len(scene.exchange.orders_by_client_id(cid)) == 1
        assert scene.exchange.duplicate_client_ids() == []
        assert scene.positions() == uninterrupted
