"""Before a resumed run trades: the state store's account of orders, fills and balances against
the venue's, the venue taken as the truth.

- Orders the store holds as pending (`intent`: committed, maybe never sent; `open`) are looked up
  by client id. Found: the store takes the venue's status and fill. Not found: an intent was
  never sent (`unsent`); an open order the venue no longer knows is recorded `canceled`.
- Fills since the last one the store saw are recorded once per trade id and journalled as fills
  of the decisions that placed them. The buys among them made today are reported
  (`bought_today`): the interrupted tick never committed them to the day's turnover.
- Open orders at the venue that the run never placed are cancelled or adopted
  (`run.unknown_orders`).
- Balances: the store's positions, plus the fills just adopted, against the venue's totals. The
  stored positions stay those of the last committed tick (the next tick records the venue's).

Every difference is a `discrepancy` record with both sides' numbers; the outcome is one
`reconcile` record. A venue or store failure raises `ReconcileError`: the run must not trade.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.loop import Agent, Redo, RunState
from agent.ports import Order, OrderStatus, Trade, Venue, VenueError
from agent.store import OrderRecord, Store, StoreError, Tick
from risk.journal import Journal
from risk.verdict import Side

FILL_OVERLAP = timedelta(minutes=1)
"""Fills are asked for from this long before the last one seen (deduplicated by trade id), so a
venue's second trade in the same millisecond as the last is not missed."""
_BALANCE_TOLERANCE = 1e-9


class ReconcileError(Exception):
    """The run cannot be reconciled with its venue; the message is one line saying why."""


@dataclass(frozen=True)
class Reconciliation:
    orders_checked: int
    orders_changed: int
    fills_adopted: int
    unknown_orders: int
    balance_differences: int
    bought_today: float
    """Quote notional of today's buys among the adopted fills."""

    @property
    def discrepancies(self) -> int:
        return (
            self.orders_changed
            + self.fills_adopted
            + self.unknown_orders
            + self.balance_differences
        )


def resume(agent: Agent, store: Store, now: datetime) -> Reconciliation:
    """Make `agent` carry on a run from its store: reconciled with the venue, its state restored,
    and a tick the last process died in the middle of set up to be redone as it was decided
    (`agent.redo`; the tick runs again only if the clock is still at that tick)."""
    interrupted = store.interrupted_decision()
    balances, turnover = store.positions(), store.turnover()
    reconciled = reconcile(
        store,
        agent.venue,
        agent.journal,
        now,
        quote=agent.config.venue.quote,
        unknown_orders=agent.config.run.unknown_orders,
        decision_id=f"{agent.decision_id(now)}-reconcile",
    )
    state = agent.state = RunState.restore(store)
    if reconciled.bought_today:
        if state.turnover_day != now.date():
            state.turnover_day, state.turnover_today = now.date(), 0.0
        state.turnover_today += reconciled.bought_today
    if interrupted is not None:
        agent.redo = Redo(*interrupted, balances, turnover)
    return reconciled


def reconcile(
    store: Store,
    venue: Venue,
    journal: Journal,
    now: datetime,
    *,
    quote: str,
    unknown_orders: str,
    decision_id: str,
) -> Reconciliation:
    """Bring the store in line with the venue (one store transaction); `decision_id` names the
    reconciliation in the records it writes and owns the orders it adopts."""
    try:
        with store.tick(now, advance=False) as saved:
            run = _Run(store, venue, journal, now, saved, decision_id)
            checked, changed, adopted_buys = run.pending_orders()
            fills, bought = run.fills(adopted_buys)
            unknown = run.unknown_orders(unknown_orders)
            differences = run.balances(fills, quote)
    except (VenueError, StoreError) as exc:
        reason = f"cannot reconcile with the venue: {type(exc).__name__}: {exc}"
        journal.write("reconcile", now, ok=False, reason=reason, decision_id=decision_id)
        raise ReconcileError(reason) from exc
    outcome = Reconciliation(checked, changed, len(fills), unknown, differences, bought)
    journal.write(
        "reconcile",
        now,
        ok=True,
        reason=f"{outcome.discrepancies} discrepancies",
        decision_id=decision_id,
        orders_checked=outcome.orders_checked,
        orders_changed=outcome.orders_changed,
        fills_adopted=outcome.fills_adopted,
        unknown_orders=outcome.unknown_orders,
        balance_differences=outcome.balance_differences,
    )
    return outcome


@dataclass
class _Run:
    """One reconciliation: what it reads and where it writes."""

    store: Store
    venue: Venue
    journal: Journal
    now: datetime
    saved: Tick
    decision_id: str

    def __post_init__(self) -> None:
        self.decisions = self.store.order_decisions()

    def discrepancy(self, kind: str, key: str, store: object, venue: object, action: str) -> None:
        self.journal.write(
            "discrepancy",
            self.now,
            decision_id=self.decision_id,
            kind=kind,
            key=key,
            store=store,
            venue=venue,
            action=action,
        )

    def pending_orders(self) -> tuple[int, int, set[str]]:
        """(orders checked, orders whose record changed, client ids of buys found sent)."""
        pending = self.store.pending_orders()
        changed = 0
        sent_buys: set[str] = set()
        for record in pending:
            order = self.venue.fetch_order(record.client_order_id, self.now)
            if order is None:
                status = "unsent" if record.status == "intent" else OrderStatus.CANCELED.value
                self.saved.order_update(record.client_order_id, status)
                self.discrepancy(
                    "order", record.client_order_id, _stored(record), None, f"recorded {status}"
                )
                changed += 1
                continue
            if record.status == "intent" and order.side is Side.BUY:
                sent_buys.add(record.client_order_id)
            if record.status != order.status.value or record.filled != order.filled:
                self.saved.order_update(
                    record.client_order_id, order.status.value, order.venue_order_id, order.filled
                )
                self.discrepancy(
                    "order",
                    record.client_order_id,
                    _stored(record),
                    _held(order),
                    "recorded the venue's status",
                )
                changed += 1
        return len(pending), changed, sent_buys

    def fills(self, sent_buys: set[str]) -> tuple[list[Trade], float]:
        """The fills the store had not seen, and the notional of today's buys among them."""
        last = self.store.last_fill_ts()
        since = None if last is None else last - FILL_OVERLAP
        seen = self.store.seen_trade_ids()
        new = [t for t in self.venue.trades(since, self.now) if t.trade_id not in seen]
        day, bought = self.now.date(), 0.0
        for trade in new:
            self.saved.fill(trade)
            decision = self.decisions.get(trade.client_order_id)
            self.journal.write(
                "fill",
                self.now,
                decision_id=decision,
                client_order_id=trade.client_order_id,
                trade_id=trade.trade_id,
                asset=trade.symbol.split("/")[0],
                side=trade.side.value,
                amount=trade.amount,
                price=trade.price,
                fee=trade.fee,
                filled_at=trade.ts,
            )
            self.discrepancy(
                "fill",
                trade.trade_id,
                None,
                {
                    "client_order_id": trade.client_order_id,
                    "side": trade.side.value,
                    "amount": trade.amount,
                    "price": trade.price,
                    "fee": trade.fee,
                },
                "recorded" if decision else "recorded (an order this run never placed)",
            )
            if trade.client_order_id in sent_buys and trade.ts.date() == day:
                bought += trade.amount * trade.price
        return new, bought

    def unknown_orders(self, policy: str) -> int:
        unknown = [
            order
            for order in self.venue.open_orders(self.now)
            if order.client_order_id not in self.decisions
        ]
        for order in unknown:
            if policy == "adopt":
                self.saved.adopt(self.decision_id, order)
                action = "adopted"
            else:
                order = self.venue.cancel_order(order.client_order_id, self.now)
                action = f"cancelled ({order.status.value})"
            self.discrepancy("unknown_order", order.client_order_id, None, _held(order), action)
        return len(unknown)

    def balances(self, fills: list[Trade], quote: str) -> int:
        """Count (and journal) the assets whose venue balance is not the stored position plus the
        fills just adopted."""
        held = self.venue.balances(self.now)
        stored = self.store.positions()
        moved = _net(fills, quote)
        differences = 0
        for asset in sorted(set(stored) | set(held)):
            before, after = stored.get(asset, 0.0), held.get(asset, 0.0)
            expected = before + moved.get(asset, 0.0)
            if math.isclose(before, after, rel_tol=_BALANCE_TOLERANCE, abs_tol=1e-12):
                continue
            differences += 1
            explained = math.isclose(expected, after, rel_tol=1e-6, abs_tol=1e-9)
            self.discrepancy(
                "balance",
                asset,
                before,
                after,
                "used the venue's"
                + ("" if explained else f"; unexplained by fills: {after - expected:+.10g}"),
            )
        return differences


def _net(fills: list[Trade], quote: str) -> Mapping[str, float]:
    """What the fills moved, per currency (fees in the quote currency)."""
    moved: dict[str, float] = defaultdict(float)
    for trade in fills:
        base = trade.symbol.split("/")[0]
        sign = 1.0 if trade.side is Side.BUY else -1.0
        moved[base] += sign * trade.amount
        moved[quote] -= sign * trade.amount * trade.price + trade.fee
    return moved


def _stored(record: OrderRecord) -> dict[str, object]:
    return {"status": record.status, "amount": record.amount, "filled": record.filled}


def _held(order: Order) -> dict[str, object]:
    return {
        "status": order.status.value,
        "amount": order.amount,
        "filled": order.filled,
        "venue_order_id": order.venue_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
    }
