"""Running a sweep: points evaluated on trading windows (skipping those `results.csv` already
holds), grid / random / optuna search, walk-forward and leave-one-episode-out folds, and the
sensitivity of the chosen point."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agent.config import Config
from agent.tuning.executors import Executor
from agent.tuning.grid import (
    Grid,
    GridError,
    Params,
    PointError,
    describe,
    point_config,
    point_id,
    random_points,
    search_space,
)
from agent.tuning.results import Results, write_table
from agent.tuning.select import (
    METRICS,
    chained_metrics,
    choose,
    rank,
    score,
    sensitivity_points,
    sensitivity_rows,
)
from agent.tuning.windows import Fold, Window
from agent.tuning.worker import Task

OPTUNA_BATCH = 8
"""Trials asked of optuna at a time: a fixed batch, so a seed gives the same trials whatever
`--jobs` is (up to this many jobs)."""

OnProgress = Callable[[str, int, int], None]
"""(what is running, points done, points in all)."""


class SweepError(Exception):
    """Points that failed (their rows are not written, so a re-run retries them)."""


@dataclass
class Stats:
    ran: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


@dataclass
class Sweeper:
    """Evaluates points of one base config and grid on trading windows, through `executor`,
    appending each finished point to `out/results.csv`."""

    base: Config
    grid: Grid
    out: Path
    executor: Executor
    on_progress: OnProgress = lambda _label, _done, _total: None
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self.base_hash = self.base.hash()[:12]
        self.results = Results(self.out / "results.csv", self.grid.axes)
        self._seen: set[tuple[str, str, str, str]] = set()

    def evaluate(
        self, points: Sequence[Params], window: Window, *, label: str = "sweep", curve: bool = False
    ) -> list[dict[str, Any]]:
        """Each point's row (params, point_id, metrics; `curve` when asked) on `window`, in the
        order given; finished points are read from results.csv, not run again."""
        unique = list({point_id(p): p for p in points}.values())
        start, end = str(window.start.date()), str(window.end.date())
        rows: dict[str, dict[str, Any]] = {}
        todo: list[tuple[Params, Task]] = []
        for params in unique:
            pid = point_id(params)
            done = self.results.get((pid, self.base_hash, start, end))
            if done is not None and (not curve or self._curve_path(pid, start, end).exists()):
                rows[pid] = {**done, **params, "params": params}
                if curve:
                    rows[pid]["curve"] = _read_curve(self._curve_path(pid, start, end))
                key = (pid, self.base_hash, start, end)
                if key in self.results.loaded and key not in self._seen:
                    self.stats.skipped += 1  # finished by an earlier run
                self._seen.add(key)
            else:
                config = point_config(self.base, params)
                todo.append((params, Task(config.model_dump_json(), start, end, curve)))
        began = time.perf_counter()
        self.on_progress(label, 0, len(todo))
        failed: list[str] = []
        for n, (i, outcome) in enumerate(self.executor.run([t for _, t in todo]), 1):
            params = todo[i][0]
            pid = point_id(params)
            if isinstance(outcome, BaseException):
                failed.append(f"{describe(params) or 'base config'}: {_one_line(outcome)}")
            else:
                row = {
                    "point_id": pid,
                    "base_hash": self.base_hash,
                    "start": start,
                    "end": end,
                    **params,
                    **outcome["metrics"],
                    "seconds": round(outcome["seconds"], 3),
                }
                self.results.append(row)
                rows[pid] = {**row, "params": params, "breakouts": outcome["breakouts"]}
                if curve:
                    rows[pid]["curve"] = _curve_series(outcome["curve"])
                    _write_curve(self._curve_path(pid, start, end), rows[pid]["curve"])
            self.on_progress(label, n, len(todo))
        self.stats.ran += len(todo) - len(failed)
        self.stats.seconds += time.perf_counter() - began
        if failed:
            self.stats.failed += failed
            raise SweepError(f"{len(failed)} point(s) failed; the first: {failed[0]}")
        return [rows[point_id(p)] for p in points]

    def _curve_path(self, pid: str, start: str, end: str) -> Path:
        return self.out / "curves" / f"{pid}-{self.base_hash}-{start}-{end}.csv"


def _curve_series(pairs: Sequence[tuple[str, float]]) -> pd.Series:
    return pd.Series([v for _, v in pairs], index=pd.DatetimeIndex([d for d, _ in pairs]))


def _write_curve(path: Path, curve: pd.Series) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    curve.rename("equity").to_csv(path, index_label="date", float_format="%.10g")


def _read_curve(path: Path) -> pd.Series:
    frame = pd.read_csv(path, index_col="date", parse_dates=["date"])
    return frame["equity"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


# --- searches ---------------------------------------------------------------------------------


def search(
    sweeper: Sweeper,
    how: str,
    points: Sequence[Params],
    window: Window,
    *,
    trials: int,
    seed: int,
    objective: str,
    label: str = "sweep",
    curve: bool = False,
) -> list[dict[str, Any]]:
    """Rows of the searched points on `window`: `points` for grid and random search, an optuna
    study's trials for `optuna`."""
    if how == "optuna":
        return optuna_search(sweeper, window, trials, seed, objective, label=label)
    return sweeper.evaluate(points, window, label=label, curve=curve)


def optuna_search(
    sweeper: Sweeper,
    window: Window,
    trials: int,
    seed: int,
    objective: str,
    *,
    label: str = "optuna",
) -> list[dict[str, Any]]:
    """A TPE study (seeded) over the grid's ranges, maximising `objective`, asked in batches of
    OPTUNA_BATCH trials that run in parallel. A sampled config that does not validate is a
    failed trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(sweeper.grid)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows: list[dict[str, Any]] = []
    asked = 0
    while asked < trials:
        batch = [study.ask() for _ in range(min(OPTUNA_BATCH, trials - asked))]
        asked += len(batch)
        sampled = [_suggest(trial, space) for trial in batch]
        valid = []
        for trial, params in zip(batch, sampled, strict=True):
            try:
                point_config(sweeper.base, params)
                valid.append((trial, params))
            except PointError:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        done = sweeper.evaluate([p for _, p in valid], window, label=f"{label} {asked}/{trials}")
        for (trial, _params), row in zip(valid, done, strict=True):
            value = score(row, objective)
            if math.isfinite(value):
                study.tell(trial, value)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            rows.append(row)
    return rows


def _suggest(trial: Any, space: dict[str, Any]) -> Params:
    params: Params = {}
    for key, dim in space.items():
        if dim.kind == "int":
            params[key] = trial.suggest_int(key, int(dim.low), int(dim.high))
        elif dim.kind == "float":
            params[key] = trial.suggest_float(key, float(dim.low), float(dim.high))
        else:
            params[key] = trial.suggest_categorical(key, list(dim.choices))
    return params


def check_search(grid: Grid, how: str, trials: int | None) -> None:
    """Search options that cannot work, as one line, before any work."""
    if how in ("random", "optuna") and (trials is None or trials < 1):
        raise GridError(f"--search {how} needs --trials N (N >= 1)")
    if how == "optuna":
        search_space(grid)


def search_points(grid: Grid, how: str, trials: int | None, seed: int) -> list[Params]:
    """The points a grid or random search runs (optuna picks its own as it goes)."""
    from agent.tuning.grid import cartesian

    if how == "random":
        return random_points(grid, trials or 0, seed)
    if how == "grid":
        return cartesian(grid)
    return []


# --- walk-forward and leave-one-out ------------------------------------------------------------

FOLD_COLUMNS = ("fold", "train", "test_start", "test_end", "point_id", "params", *METRICS)


def run_folds(
    sweeper: Sweeper,
    folds: Sequence[Fold],
    how: str,
    points: Sequence[Params],
    *,
    trials: int,
    seed: int,
    objective: str,
    name: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """For each fold: search on its train window(s), choose the best by `objective` (the mean
    over several train windows), and score it on the test window. Returns the per-fold
    out-of-sample rows and the chained out-of-sample row; writes `out/NAME.csv`."""
    fold_rows, curves = [], []
    tested = {fold.test for fold in folds}  # leave-one-out: a train window is another's test
    for fold in folds:
        per_window = [
            search(
                sweeper,
                how,
                points,
                window,
                trials=trials,
                seed=seed,
                objective=objective,
                label=f"fold {fold.label} train {window}",
                curve=window in tested,
            )
            for window in fold.train
        ]
        candidates = _candidates(per_window)
        best = candidates[choose(candidates, objective)][0]
        (held,) = sweeper.evaluate(
            [best], fold.test, label=f"fold {fold.label} test {fold.test}", curve=True
        )
        curves.append(held["curve"])
        fold_rows.append(
            {
                "fold": fold.label,
                "train": " ".join(str(w) for w in fold.train),
                "test_start": str(fold.test.start.date()),
                "test_end": str(fold.test.end.date()),
                "point_id": point_id(best),
                "params": describe(best),
                **{m: held.get(m) for m in METRICS},
            }
        )
    chained = chained_metrics(curves, fold_rows, sweeper.base.venue.initial_cash)
    overall = {
        "fold": "all (chained)",
        "train": "",
        "test_start": fold_rows[0]["test_start"],
        "test_end": fold_rows[-1]["test_end"],
        "point_id": "",
        "params": "",
        **chained,
    }
    write_table(sweeper.out / f"{name}.csv", [*fold_rows, overall], list(FOLD_COLUMNS))
    return fold_rows, overall


def _candidates(per_window: Sequence[Sequence[dict[str, Any]]]) -> list[tuple[Params, list[Any]]]:
    """(params, its rows on every train window) for points evaluated on all of them."""
    found: dict[str, tuple[Params, list[Any]]] = {}
    for rows in per_window:
        for row in rows:
            found.setdefault(point_id(row["params"]), (row["params"], []))[1].append(row)
    return [c for c in found.values() if len(c[1]) == len(per_window)]


def episode_days(config: Config) -> int:
    """An episode's window length: the lag window plus the taper after it."""
    taper = config.staging.taper_days if config.staging.after_window == "taper" else 0
    return config.signal.window_days + taper


# --- sensitivity -------------------------------------------------------------------------------

SENSITIVITY_COLUMNS = ("parameter", "step", "value", "point_id", *METRICS)


def sensitivity(
    sweeper: Sweeper, best: Params, window: Window, objective: str
) -> list[dict[str, Any]]:
    """Every metric of the chosen point and of it moved one grid step down and up per key;
    writes `out/sensitivity.csv`."""
    moved = sensitivity_points(sweeper.grid, best)
    rows = sweeper.evaluate([best, *(p for _, _, p in moved)], window, label="sensitivity")
    best_row, moved_rows = rows[0], rows[1:]
    table = sensitivity_rows(
        best,
        best_row,
        [(k, s, p, r) for (k, s, p), r in zip(moved, moved_rows, strict=True)],
        objective,
    )
    columns = [*SENSITIVITY_COLUMNS, f"{objective}_change"]
    write_table(sweeper.out / "sensitivity.csv", table, columns)
    return table


def ranked(rows: Sequence[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    return list(rank(rows, objective))  # type: ignore[arg-type]
