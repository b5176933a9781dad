"""What `spillover sweep` prints: a progress bar with an ETA, the ranked table, the walk-forward
and leave-one-out tables (out-of-sample only) and the sensitivity table."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from agent.output import stderr_progress
from agent.tuning.grid import describe
from agent.tuning.sweep import OnProgress

console = Console()
if not console.is_terminal:  # piped or captured: wide enough that the tables are not cut
    console = Console(width=180)

_PERCENT = ("total_return", "cagr", "max_drawdown")
_HEADERS = {
    "total_return": "return",
    "max_drawdown": "max dd",
    "exposure_days": "days in",
}
SHOWN = ("total_return", "cagr", "max_drawdown", "sharpe", "sortino", "calmar", "orders")
"""Metrics in the printed tables (every metric is in the CSV files)."""
TOP = 10


@contextmanager
def sweep_progress() -> Iterator[OnProgress]:
    """A progress bar with an ETA per batch of points (a grid, a train window, ...)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("points"),
        TimeRemainingColumn(),
    )
    with stderr_progress(*columns) as progress:
        task = progress.add_task("sweep", total=None)

        def on_progress(label: str, done: int, total: int) -> None:
            if done == 0:
                progress.reset(task, total=total, description=label)
            progress.update(task, completed=done, total=total, description=label)

        yield on_progress


def fmt(key: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if key in _PERCENT:
        return f"{value:.1%}"
    if isinstance(value, bool | str | int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}" if key in SHOWN else f"{value:.4g}"
    return str(value)


def _metric_columns(table: Table, objective: str) -> None:
    for metric in SHOWN:
        style = "bold" if metric == objective else None
        table.add_column(_HEADERS.get(metric, metric), justify="right", style=style)


def print_ranked(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], objective: str) -> None:
    table = Table(title=f"top {min(TOP, len(rows))} of {len(rows)} points by {objective}")
    table.add_column("#", justify="right")
    table.add_column("point")
    for key in keys:
        table.add_column(key.split(".")[-1], justify="right")
    _metric_columns(table, objective)
    for n, row in enumerate(rows[:TOP], 1):  # params by their last key part, values in full
        params = row["params"]
        table.add_row(
            str(n),
            str(row["point_id"])[:8],
            *(fmt("", params.get(k)) for k in keys),
            *(fmt(m, row.get(m)) for m in SHOWN),
        )
    console.print(table)


def print_folds(
    title: str, rows: Sequence[Mapping[str, Any]], overall: Mapping[str, Any], objective: str
) -> None:
    table = Table(title=f"{title}: out-of-sample only (chosen on train by {objective})")
    for column in ("fold", "test", "chosen"):
        table.add_column(column)
    _metric_columns(table, objective)
    for row in [*rows, overall]:
        table.add_row(
            str(row["fold"]),
            f"{row['test_start']}..{row['test_end']}",
            str(row["params"]) or "-",
            *(fmt(m, row.get(m)) for m in SHOWN),
        )
    console.print(table)


def print_sensitivity(rows: Sequence[Mapping[str, Any]], objective: str) -> None:
    change = f"{objective}_change"
    table = Table(title="sensitivity of the chosen point: one grid step down (-1) and up (+1)")
    for column in ("parameter", "step", "value"):
        table.add_column(column)
    _metric_columns(table, objective)
    table.add_column("change", justify="right")
    for row in rows:
        table.add_row(
            row["parameter"],
            f"{row['step']:+d}" if row["step"] else "0",
            fmt("", row["value"]),
            *(fmt(m, row.get(m)) for m in SHOWN),
            "-" if row["step"] == 0 else fmt(objective, row.get(change)),
        )
    console.print(table)


def print_best(params: Mapping[str, Any], objective: str, value: Any) -> None:
    console.print(f"best by {objective} ({fmt(objective, value)}): {describe(params)}")
