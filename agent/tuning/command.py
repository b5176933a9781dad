"""`spillover sweep`: everything is checked (grid keys and values, search options, windows, the
data range) before the first backtest; then the points run and the tables are printed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agent.config import Config
from agent.tuning import report
from agent.tuning.executors import DaskExecutor, Executor, InlineExecutor, ProcessExecutor
from agent.tuning.grid import GridError, parse_grid, validate
from agent.tuning.select import OBJECTIVES
from agent.tuning.sweep import (
    Sweeper,
    check_search,
    episode_days,
    ranked,
    run_folds,
    search,
    search_points,
    sensitivity,
)
from agent.tuning.windows import (
    Window,
    episode_windows,
    leave_one_out_folds,
    parse_walk_forward,
    walk_forward_folds,
)

SEARCHES = ("grid", "random", "optuna")
EXECUTORS = ("processes", "dask")


@dataclass(frozen=True)
class SweepOptions:
    grid: Path
    out: Path
    jobs: int | None = None
    search: str = "grid"
    trials: int | None = None
    seed: int = 0
    objective: str = "sharpe"
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    walk_forward: str | None = None
    leave_one_out: bool = False
    sensitivity: bool = True
    executor: str = "processes"
    scheduler: str | None = None
    dask_processes: bool = True


def run_sweep(base: Config, options: SweepOptions) -> None:
    """Check everything, then sweep; GridError / WindowError / DataError / SweepError carry one
    line for the caller to print."""
    if options.search not in SEARCHES:
        raise GridError(f"--search {options.search!r}: one of {', '.join(SEARCHES)}")
    if options.objective not in OBJECTIVES:
        raise GridError(f"--objective {options.objective!r}: one of {', '.join(OBJECTIVES)}")
    if options.executor not in EXECUTORS:
        raise GridError(f"--executor {options.executor!r}: one of {', '.join(EXECUTORS)}")
    if options.jobs is not None and options.jobs < 1:
        raise GridError(f"--jobs {options.jobs}: must be >= 1")
    if options.walk_forward and options.leave_one_out:
        raise GridError("--walk-forward and --leave-one-out: choose one")
    if options.leave_one_out and options.search == "optuna":
        raise GridError("--leave-one-out chooses among fixed points: use --search grid or random")
    grid = parse_grid(options.grid)
    check_search(grid, options.search, options.trials)
    points = search_points(grid, options.search, options.trials, options.seed)
    validate(grid, base, points)
    window = data_window(base, options.start, options.end)
    folds = None
    if options.walk_forward:
        spans = parse_walk_forward(options.walk_forward)
        folds = walk_forward_folds(window.start, window.end, **spans)

    jobs = options.jobs or os.cpu_count() or 1
    executor = make_executor(options, jobs)
    try:
        with report.sweep_progress() as on_progress:
            sweeper = Sweeper(base, grid, options.out, executor, on_progress)
            kwargs = {
                "trials": options.trials or 0,
                "seed": options.seed,
                "objective": options.objective,
            }
            if folds is not None:
                rows, overall = run_folds(
                    sweeper, folds, options.search, points, name="walk_forward", **kwargs
                )
                tables = [("walk-forward", rows, overall)]
            elif options.leave_one_out:
                (base_run,) = sweeper.evaluate([{}], window, label="episodes (base config)")
                episodes = episode_windows(base_run["breakouts"], episode_days(base), window)
                loo = leave_one_out_folds(episodes)
                rows, overall = run_folds(
                    sweeper, loo, options.search, points, name="leave_one_out", **kwargs
                )
                tables = [("leave one episode out", rows, overall)]
            else:
                found = search(sweeper, options.search, points, window, **kwargs)
                best_rows = ranked(found, options.objective)
                tables = []
                sens = None
                if options.sensitivity and best_rows:
                    sens = sensitivity(sweeper, best_rows[0]["params"], window, options.objective)
    finally:
        executor.close()

    stats = sweeper.stats
    for title, rows, overall in tables:
        report.print_folds(title, rows, overall, options.objective)
    if folds is None and not options.leave_one_out:
        report.print_ranked(best_rows, list(grid.axes), options.objective)
        if best_rows:  # an optuna study whose every trial failed has none
            best = best_rows[0]
            report.print_best(best["params"], options.objective, best.get(options.objective))
        if sens:
            report.print_sensitivity(sens, options.objective)
    rate = stats.ran / stats.seconds if stats.seconds > 0 else 0.0
    report.console.print(
        f"{stats.ran} point{'' if stats.ran == 1 else 's'} run, {stats.skipped} already in "
        f"{options.out / 'results.csv'}; "
        f"{rate:.2f} points/s on {executor.where}; window {window}"
    )


def default_out(grid: Path) -> Path:
    """`runs/sweep-GRIDNAME`, or `runs/GRIDNAME` when that name already starts with `sweep`
    (`config/sweep-example.toml` sweeps into `runs/sweep-example`, not `runs/sweep-sweep-...`)."""
    name = grid.stem if grid.stem.lower().startswith("sweep") else f"sweep-{grid.stem}"
    return Path("runs") / name


def data_window(base: Config, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Window:
    """The trading range every point of a plain sweep runs on, as `run_backtest` would choose
    it (the data is read and checked here, once, before any work)."""
    from agent.backtest import data_range
    from agent.ports import DataError
    from agent.runtime import open_market_data

    earliest, first, last = data_range(base, open_market_data(base))
    start = first if start is None else max(start, earliest)
    end = last if end is None else min(end, last)
    if start > end:
        raise DataError(f"range is empty: start {start.date()} is after end {end.date()}")
    return Window(start, end)


def make_executor(options: SweepOptions, jobs: int) -> Executor:
    if options.executor == "dask":
        return DaskExecutor(jobs, options.scheduler, processes=options.dask_processes)
    if jobs == 1:
        return InlineExecutor()
    return ProcessExecutor(jobs)
