"""`spillover status RUN_DIR`: where a run stands, read from its state store (never the venue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.heartbeat import read_heartbeat
from agent.runtime import HEARTBEAT_FILE
from agent.store import STATE_FILE, Store, StoreError


def run_status(run_dir: Path) -> dict[str, Any]:
    """The run's state as plain JSON types: breakout, stage, positions and weights, pending
    orders, last decision, halts, the last committed tick and the heartbeat file (the wall-clock
    time of the loop's last sign of life, with its age in seconds; None when there is none).

        Holdings with a last good price are crypto positions; the rest (the quote currency) is cash.
    """
    if not (run_dir / STATE_FILE).exists():
        raise StoreError(f"{run_dir}: no {STATE_FILE}: not a run folder (or no tick yet)")
    with Store.open(run_dir) as store:
        run = store.run()
        if run is None:
            raise StoreError(f"{run_dir / STATE_FILE}: holds no run")
        positions = store.positions()
        prices = store.last_good_prices()
        values = {
            asset: amount * prices[asset]
            for asset, amount in positions.items()
            if asset in prices and amount
        }
        cash = sum(amount for asset, amount in positions.items() if asset not in prices)
        equity = cash + sum(values.values())
        breakout = store.breakout()
        decision = store.last_decision()
        return {
            "run_id": run.run_id,
            "mode": run.mode,
            "config_hash": run.config_hash,
            "started_at": _iso(run.started_at),
            "last_tick_at": _iso(store.last_tick_at()),
            "heartbeat": read_heartbeat(run_dir / HEARTBEAT_FILE),
            "session": store.session(),
            "breakout": None
            if breakout is None
            else {
                "state": breakout.state,
                "stage": breakout.stage,
                "target_exposure": breakout.target_exposure,
            },
            "equity": equity,
            "peak_equity": store.peak_equity(),
            "positions": {
                asset: {
                    "amount": positions[asset],
                    "value": value,
                    "weight": value / equity if equity > 0 else None,
                }
                for asset, value in sorted(values.items())
            },
            "open_orders": [
                {
                    "client_order_id": order.client_order_id,
                    "symbol": order.symbol,
                    "side": order.side.value,
                    "amount": order.amount,
                    "status": order.status,
                }
                for order in store.pending_orders()
            ],
            "last_decision": None
            if decision is None
            else {
                "decision_id": decision.decision_id,
                "asof": None if decision.asof is None else decision.asof.isoformat(),
                "action": decision.action,
                "reason": decision.reason,
            },
            "halts": sorted(store.halts()),
            "consecutive_errors": store.consecutive_errors(),
        }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
