"""One point of a sweep: the real backtest (`agent.backtest.run_backtest`, the live tick) of one
config over one trading range, with no journal and no files written.

Market data is read once per worker process: a per-process cache of the replayed files (keyed by
the folder and each file's size and modification time, so a changed file is read again), passed
to `run_backtest` as its `data`. The bars are read-only; every point still gets its own venue and
agent.
"""

from __future__ import annotations

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
_NOWHERE = Path("spillover-sweep-point")


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
    began = time.perf_counter()
    config = Config.model_validate_json(task.config_json)
    result = agent.backtest.run_backtest(
        config,
        _NOWHERE,  # outputs=False leaves it untouched
        start=pd.Timestamp(task.start),
        end=pd.Timestamp(task.end),
        journal=False,
        outputs=False,
        data=cached_market_data(config),
    )
    out: dict[str, Any] = {
        "metrics": sweep_metrics(result.summary["metrics"]),
        "breakouts": result.summary["breakouts"],
        "seconds": time.perf_counter() - began,
    }
    if task.curve:
        equity = result.equity["equity"]
        out["curve"] = [(str(day), float(value)) for day, value in equity.items()]
    return out


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
