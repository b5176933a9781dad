"""What the commands print: progress, a metrics table, one line per decision, a run summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from agent.metrics import SUMMARY_METRICS

if TYPE_CHECKING:
    from pathlib import Path

    from agent.backtest import BacktestResult, OnTick
    from agent.loop import TickResult
    from agent.reconcile import Reconciliation
    from agent.runtime import OpenedRun

console = Console()

_PERCENT = ("total_return", "cagr", "max_drawdown")


def stderr_progress(*columns: ProgressColumn) -> Progress:
    """A transient progress display on stderr, off where it would draw nothing: on a console
    that is not interactive (a pipe, a file) rich ends it with an empty line, after an error
    line too."""
    stderr = Console(stderr=True)
    return Progress(*columns, console=stderr, transient=True, disable=not stderr.is_interactive)


@contextmanager
def backtest_progress() -> Iterator[OnTick]:
    """A progress bar with an ETA, advanced by the backtest's tick callback."""
    columns = (
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeRemainingColumn(),
    )
    with stderr_progress(*columns) as progress:
        task = progress.add_task("backtest", total=None)

        def on_tick(_result: TickResult, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield on_tick


def print_metrics(summary: dict[str, Any]) -> None:
    data = summary["data"]
    benchmark = summary["benchmark"]
    table = Table(title=f"spillover {data['start']} to {data['end']}")
    table.add_column("metric")
    table.add_column("strategy", justify="right")
    table.add_column(f"buy and hold {benchmark['asset']}", justify="right")
    for key in SUMMARY_METRICS:
        table.add_row(key, _format(key, summary["metrics"][key]), _format(key, benchmark[key]))
    console.print(table)
    confirmed = [b for b in summary["breakouts"] if b["confirmed"]]
    for b in confirmed:
        end = f"failed {b['failed']}" if b["failed"] else f"expired {b['expired']}"
        if not b["failed"] and not b["expired"]:
            end = "live"
        console.print(f"breakout confirmed {b['confirmed']} at level {b['level']:.2f}: {end}")


def decision_line(result: TickResult) -> str:
    """One readable line: date, state, stage, targets, orders, clamps."""
    day = (result.now - timedelta(days=1)).date().isoformat()
    if result.targets is None or result.verdict is None:
        return f"{day}  {result.action:<8} {result.reason}"
    state = result.breakout.state.value if result.breakout else "?"
    weights = " ".join(
        f"{asset} {weight:.0%}" for asset, weight in result.targets.weights.items() if weight
    )
    orders = ", ".join(f"{o.side.value} {o.amount:.6g} {o.asset}" for o in result.verdict.orders)
    clamps = ",".join(sorted({c.rule.value for c in result.verdict.clamps}))
    parts = [
        f"{day}  {state:<9} stage {result.targets.stage}",
        f"targets {weights or '-'}",
        f"orders {orders or '-'}",
    ]
    if clamps:
        parts.append(f"clamps {clamps}")
    return "  ".join(parts)


def start_line(folder: Path, opened: OpenedRun, reconciled: Reconciliation | None) -> str:
    """How a run began: new, or resumed (its session, and what reconciling with the venue found)."""
    if opened.resumed is None:
        return f"new run {opened.run_id} in {folder}"
    last = opened.resumed.last_tick_at
    line = (
        f"resumed run {opened.run_id} in {folder} (session {opened.session}; "
        f"last tick {'none' if last is None else f'{last:%Y-%m-%d %H:%M}'})"
    )
    if opened.config_change is not None:
        old, new = opened.config_change
        line += f"; config changed {old[:12]} -> {new[:12]}"
    if reconciled is not None:
        line += (
            f"; reconciled: {reconciled.orders_checked} pending order(s) checked, "
            f"{reconciled.fills_adopted} fill(s) adopted, {reconciled.unknown_orders} unknown "
            f"order(s), {reconciled.balance_differences} balance difference(s)"
        )
    return line


def print_run_summary(result: BacktestResult, signal_name: str | None) -> None:
    if result.equity.empty:
        console.print(f"stopped by {signal_name} before the first tick")
        return
    metrics = result.summary["metrics"]
    last = result.equity.iloc[-1]
    how = f"stopped by {signal_name}" if signal_name else "replayed data ended"
    console.print(
        f"{how} on {result.equity.index[-1]}: equity {last['equity']:,.2f}, "
        f"return {_format('total_return', metrics['total_return'])}, "
        f"{metrics['orders']} orders, {metrics['risk_clamps']} clamps; "
        f"journal {result.files.journal}"
    )


def _format(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in _PERCENT:
        return f"{value:.2%}"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.2f}"


def print_status(state: dict[str, Any]) -> None:
    breakout = state["breakout"] or {"state": "-", "stage": 0, "target_exposure": 0.0}
    beat = state["heartbeat"]
    alive = (
        "no heartbeat" if beat is None else f"heartbeat {beat['age_s']:.0f} s ago ({beat['state']})"
    )
    console.print(
        f"run {state['run_id']} ({state['mode']}, session {state['session']}), last tick "
        f"{state['last_tick_at']}, {alive}\n"
        f"breakout {breakout['state']}, stage {breakout['stage']}, "
        f"target exposure {breakout['target_exposure']:.0%}; equity {state['equity']:,.2f}"
    )
    table = Table("asset", "amount", "value", "weight")
    for asset, held in state["positions"].items():
        weight = "-" if held["weight"] is None else f"{held['weight']:.1%}"
        table.add_row(asset, f"{held['amount']:.6g}", f"{held['value']:,.2f}", weight)
    console.print(table)
    orders = state["open_orders"]
    console.print(f"open orders: {len(orders)}")
    for o in orders:
        console.print(f"  {o['client_order_id']} {o['side']} {o['amount']:.6g} {o['symbol']}")
    decision = state["last_decision"]
    if decision:
        console.print(f"last decision {decision['decision_id']}: {decision['reason']}")
    halts = ", ".join(state["halts"]) or "none"
    console.print(f"halts: {halts}; consecutive venue errors: {state['consecutive_errors']}")
