"""One point of a sweep: the real backtest (`agent.backtest.run_backtest`, the live tick) of one
config over one trading range, writing no files (or, with a `run_backtest` that cannot skip them,
writing them to a temporary folder that is dropped).

Market data is read once per worker process: a per-process cache of the replayed files (keyed by
the folder and each file's size and modification time, so a changed file is read again), passed
to `run_backtest` as its `data`, or else put behind `agent.backtest.open_market_data` by
`use_data_cache`. The bars are read-only; every point still gets its own venue and agent.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import agent.backtest
from agent.config import Config
from agent.marketdata.replay import ReplayData
from agent.runtime import ensure_sample, open_market_data
from agent.tuning.select import sweep_metrics

_DATA: dict[tuple[Any, ...], ReplayData] = {}
_IN_MEMORY = {"journal", "outputs", "data"}
"""`run_backtest` options for a sweep: no journal or output files, market data passed in. Used
when `run_backtest` has them; otherwise the point writes its files to a temporary folder."""


@dataclass(frozen=True)
class Task:
    """What a worker needs to run one point; plain values, so it pickles for any executor."""

    config_json: str
    start: str
    end: str
    curve: bool = False
    """Also return the daily equity curve (for chaining out-of-sample windows)."""


def run_task(task: Task) -> dict[str, Any]:
    """Backtest one point: {"metrics", "seconds", "breakouts", "curve" (when asked)}."""
    use_data_cache()
    began = time.perf_counter()
    config = Config.model_validate_json(task.config_json)
    start, end = pd.Timestamp(task.start), pd.Timestamp(task.end)
    with tempfile.TemporaryDirectory(prefix="spillover-point-") as folder:
        if set(inspect.signature(agent.backtest.run_backtest).parameters) >= _IN_MEMORY:
            result = agent.backtest.run_backtest(  # no files, the worker's data
                config,
                Path(folder),
                start=start,
                end=end,
                journal=False,
                outputs=False,
                data=cached_market_data(config),
            )
        else:
            result = agent.backtest.run_backtest(config, Path(folder), start=start, end=end)
    out: dict[str, Any] = {
        "metrics": sweep_metrics(result.summary["metrics"]),
        "breakouts": result.summary["breakouts"],
        "seconds": time.perf_counter() - began,
    }
    if task.curve:
        equity = result.equity["equity"]
        out["curve"] = [(str(day), float(value)) for day, value in equity.items()]
    return out


def use_data_cache() -> None:
    """Point `run_backtest` at this process's data cache (idempotent)."""
    agent.backtest.open_market_data = cached_market_data  # type: ignore[attr-defined]


def cached_market_data(config: Config) -> ReplayData:
    """`open_market_data`, read once per process for a folder whose files have not changed."""
    if config.data.source == "sample":
        ensure_sample(config.data.dir, config.data.seed)
    folder = Path(config.data.dir).resolve()
    stats = tuple(
        sorted((p.name, s.st_size, s.st_mtime_ns) for p in folder.glob("*.csv") for s in [p.stat()])
    )
    key = (str(folder), stats)
    data = _DATA.get(key)
    if data is None:
        data = open_market_data(config)
        _DATA.clear()
        _DATA[key] = data
    return data
