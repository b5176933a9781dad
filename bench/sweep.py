"""Time a 1,000-point sweep of the real backtest over 2015-2026 daily data with 2 worker processes.

    python bench/sweep.py [--data-dir ../shared/data] [--points 1000] [--workers 2] [--journal]

Every point is `agent.backtest.run_backtest` (the live `Agent.tick`, its risk gate, staging and
signal) on config/history.toml with signal and staging keys moved over a grid. Each worker reads
the market data once (its initializer) and passes it to every point (`run_backtest(data=...)`),
so points sharing signal settings also share the primed signal; points run with
`outputs=False` (no journal, equity.csv or summary.json written; the result carries the equity
and summary), or with the journal written to a scratch folder with `--journal`.

Printed: configs/s (whole sweep, worker start-up included), per-point milliseconds (median,
p95) as the workers timed them, start-up cost per worker, and the single-backtest in-process
time (journal on and off). It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "config" / "history.toml"
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
START, END = "2015-01-01", "2026-06-23"
TARGET = 50.0
"""configs/s"""

GRID: dict[str, list[Any]] = {
    "signal.volume_multiple": [1.1, 1.2, 1.5, 2.0],
    "signal.fail_pct": [0.03, 0.05, 0.08, 0.12, 0.15],
    "staging.trend_window": [20, 30, 50, 100, 200],
    "staging.crypto_budget": [0.3, 0.4, 0.5, 0.6, 0.8],
    "staging.exit_steps": [1, 2],
}
"""4 x 5 signal settings (20 primed signals) x 5 x 5 x 2 staging settings: 1,000 points."""

_WORKER: dict[str, Any] = {}


def grid_points(limit: int) -> list[dict[str, Any]]:
    """The grid's points, signal settings outermost (neighbours share a primed signal), cycled
    when more are asked for than the grid holds."""
    keys = list(GRID)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]
    return [points[n % len(points)] for n in range(limit)]


def base_toml(data_dir: Path) -> dict[str, Any]:
    data = tomllib.loads(HISTORY.read_text(encoding="utf-8"))
    data["data"]["dir"] = str(data_dir)
    return data


def config_json(base: dict[str, Any], point: dict[str, Any]) -> str:
    """The validated config of one point, as JSON (what a worker receives)."""
    from agent.config import Config

    data = json.loads(json.dumps(base))
    for dotted, value in point.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    return Config.model_validate_json(json.dumps(data)).model_dump_json()


def init_worker(base_json: str, began: float) -> None:
    """Load the market data once per worker; record how long the worker took to be ready."""
    from agent.backtest import open_market_data
    from agent.clock import EquitySessions
    from agent.config import Config

    config = Config.model_validate_json(base_json)
    _WORKER["data"] = open_market_data(config)
    EquitySessions()  # the exchange calendar, built once per process
    _WORKER["ready"] = time.time() - began
    _WORKER["pid"] = os.getpid()
    _WORKER["scratch"] = Path(tempfile.mkdtemp(prefix="spillover-sweep-"))


def run_point(job: tuple[int, str, bool]) -> tuple[int, float, float | None, int, float, float]:
    """(point, seconds, total return, worker pid, worker start-up seconds, CPU seconds) of one
    backtest."""
    from agent.backtest import run_backtest
    from agent.config import Config

    n, text, journal = job
    config = Config.model_validate_json(text)
    began, cpu = time.perf_counter(), time.process_time()
    result = run_backtest(
        config,
        _WORKER["scratch"] / f"p{n}",
        start=pd.Timestamp(START),
        end=pd.Timestamp(END),
        data=_WORKER["data"],
        outputs=journal,
    )
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    shutil.rmtree(_WORKER["scratch"] / f"p{n}", ignore_errors=True)
    total = result.summary["metrics"]["total_return"]
    return n, seconds, total, _WORKER["pid"], _WORKER["ready"], cpu


def single(config_text: str, data_dir: Path, journal: bool, runs: int) -> list[float]:
    """In-process backtests of the base config (fresh data each, as `spillover backtest`)."""
    from agent.backtest import run_backtest
    from agent.config import Config

    config = Config.model_validate_json(config_text)
    times = []
    with tempfile.TemporaryDirectory(prefix="spillover-single-") as tmp:
        for n in range(runs + 1):  # the first run warms the process up
            began = time.perf_counter()
            run_backtest(
                config,
                Path(tmp) / f"r{n}",
                start=pd.Timestamp(START),
                end=pd.Timestamp(END),
                journal=journal,
            )
            if n:
                times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=10)
    parser.add_argument(
        "--journal", action="store_true", help="points write their journal and outputs"
    )
    parser.add_argument("--single-runs", type=int, default=3, help="in-process backtests timed")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()

    began = time.perf_counter()
    from agent.config import Config  # noqa: F401 - the import cost is reported below

    imports = time.perf_counter() - began
    base = base_toml(data_dir)
    base_json = config_json(base, {})
    points = grid_points(args.points)
    jobs = [(n, config_json(base, point), args.journal) for n, point in enumerate(points)]
    distinct = len({json.dumps(p, sort_keys=True) for p in points})
    signals = len({(p["signal.volume_multiple"], p["signal.fail_pct"]) for p in points})
    print(f"data      {data_dir}")
    print(f"config    config/history.toml, {START} to {END}, python {sys.version.split()[0]}")
    print(
        f"grid      {len(points)} points ({distinct} distinct, {signals} signal settings): "
        + ", ".join(f"{k} x{len(v)}" for k, v in GRID.items())
    )
    mode = "journal and outputs written" if args.journal else "outputs=False (nothing written)"
    print(f"workers   {args.workers} processes, chunks of {args.chunksize}, points {mode}")
    print()

    started = time.time()
    wall = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers, initializer=init_worker, initargs=(base_json, started)
    ) as pool:
        results = list(pool.map(run_point, jobs, chunksize=args.chunksize))
    wall = time.perf_counter() - wall

    per_point = sorted(r[1] * 1000 for r in results)
    startup = {r[3]: r[4] for r in results}
    cpu = sorted(r[5] * 1000 for r in results)
    p95 = per_point[min(len(per_point) - 1, int(0.95 * len(per_point)))]
    rate = len(results) / wall
    busy = sum(per_point) / 1000
    print(f"sweep     {len(results)} points in {wall:.2f} s wall")
    verdict = "ok" if rate >= TARGET else f"{TARGET / rate:.1f}x short"
    print(f"          {rate:8.2f} configs/s   target >= {TARGET:.0f}   {verdict}")
    print(
        f"          per point {statistics.median(per_point):.1f} ms median, {p95:.1f} ms p95, "
        f"{per_point[0]:.1f} ms min, {per_point[-1]:.1f} ms max (in the worker)"
    )
    print(
        f"          per point CPU {statistics.median(cpu):.1f} ms median, "
        f"{cpu[min(len(cpu) - 1, int(0.95 * len(cpu)))]:.1f} ms p95 (what a busy machine does not"
        f" inflate): {args.workers * 1000 / statistics.median(cpu):.1f} configs/s on "
        f"{args.workers} idle cores"
    )
    print(
        f"          {busy:.1f} s of backtests over {args.workers} workers: "
        f"{len(results) / busy * args.workers:.2f} configs/s without start-up and hand-off"
    )
    ready = ", ".join(f"{s:.2f} s" for s in sorted(startup.values()))
    print(f"start-up  per worker (spawn to data loaded, calendar built): {ready}")
    print(f"          parent imports {imports:.2f} s (forked workers inherit them)")
    print(f"load      {os.getloadavg()[0]:.1f} (1-min load average on {os.cpu_count()} cores)")
    returns = [r[2] for r in results if r[2] is not None]
    print(f"returns   total return from {min(returns):.1%} to {max(returns):.1%} across points")

    single_on = single(base_json, data_dir, True, args.single_runs)
    single_off = single(base_json, data_dir, False, args.single_runs)
    print()
    print("single backtest in-process (base config, fresh data each run, warm process):")
    print(f"          journal on  {statistics.median(single_on) * 1000:8.1f} ms median")
    print(f"          journal off {statistics.median(single_off) * 1000:8.1f} ms median")
    print()
    print(
        json.dumps(
            {
                "points": len(results),
                "workers": args.workers,
                "configs_per_s": round(rate, 3),
                "point_ms_median": round(statistics.median(per_point), 2),
                "point_ms_p95": round(p95, 2),
                "point_cpu_ms_median": round(statistics.median(cpu), 2),
                "worker_startup_s": [round(s, 3) for s in sorted(startup.values())],
                "single_journal_on_ms": round(statistics.median(single_on) * 1000, 1),
                "single_journal_off_ms": round(statistics.median(single_off) * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
