"""Time `spillover sweep`: a 1,000-point grid over 2015-2026 daily data with 2 worker processes.

    python bench/sweep.py [--data-dir ../shared/data] [--jobs 2] [--grid-size 1000]

Runs the command a user runs, as a subprocess: `spillover sweep --config config/history.toml
--data-dir DIR --grid GRID --jobs 2 --start 2015-01-01 --end 2026-06-23 --no-sensitivity` into
a scratch folder, then the same command again (every point is already in results.csv, so it runs
none). Every point is `agent.backtest.run_backtest` without a journal: the live `Agent.tick`, its
risk gate, staging and signal, on the worker's market data (read once per worker).

Printed: configs/s over the whole command (start-up, data checks and worker start included)
against the target of 50, the per-point seconds the workers recorded (median, p95; a worker's
first point also reads the market data), the re-run's time, and the single-backtest in-process
time with and without the journal. It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def grid_toml(size: int) -> str:
    """The grid as TOML, with values dropped from the first keys on until it has at most `size`
    points (a quick run), or the whole grid."""
    keys, values = list(GRID), [list(v) for v in GRID.values()]
    for vals in values:
        while len(vals) > 1 and _count(values) > size:
            vals.pop()
    return "".join(f"{key} = {json.dumps(vals)}\n" for key, vals in zip(keys, values, strict=True))


def _count(values: list[list[Any]]) -> int:
    return len(list(itertools.product(*values)))


def sweep(grid: Path, out: Path, data_dir: Path, jobs: int) -> tuple[float, str]:
    """(wall seconds, the command's last output line)."""
    command = [
        sys.executable,
        "-m",
        "agent",
        "sweep",
        "--config",
        str(HISTORY),
        "--data-dir",
        str(data_dir),
        "--grid",
        str(grid),
        "--jobs",
        str(jobs),
        "--out",
        str(out),
        "--start",
        START,
        "--end",
        END,
        "--no-sensitivity",
    ]
    env = os.environ | {"COLUMNS": "200", "TERM": "dumb"}
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"spillover sweep failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return wall, lines[-1] if lines else ""


def point_seconds(results: Path) -> list[float]:
    with results.open(newline="") as handle:
        return sorted(float(row["seconds"]) for row in csv.DictReader(handle))


def single(data_dir: Path, journal: bool, runs: int) -> list[float]:
    """In-process backtests of the base config, as `spillover backtest` runs them (fresh data
    each)."""
    import pandas as pd

    from agent.backtest import run_backtest
    from agent.config import load_config

    config = load_config(HISTORY)
    config = config.model_copy(update={"data": config.data.model_copy(update={"dir": data_dir})})
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
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--grid-size", type=int, default=1000, help="points (a cut of the grid)")
    parser.add_argument("--single-runs", type=int, default=3, help="in-process backtests timed")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    if not data_dir.is_dir():
        sys.exit(f"--data-dir {data_dir}: no such folder")

    with tempfile.TemporaryDirectory(prefix="spillover-bench-sweep-") as tmp:
        grid, out = Path(tmp) / "grid.toml", Path(tmp) / "out"
        grid.write_text(grid_toml(args.grid_size), encoding="utf-8")
        print(f"data      {data_dir}")
        print(f"config    config/history.toml, {START} to {END}, python {sys.version.split()[0]}")
        print("grid      " + grid.read_text(encoding="utf-8").strip().replace("\n", "\n          "))
        print(f"command   spillover sweep --jobs {args.jobs} --no-sensitivity (subprocess)")
        print(f"load      {os.getloadavg()[0]:.1f} before (1-min average, {os.cpu_count()} cores)")
        print()

        wall, last = sweep(grid, out, data_dir, args.jobs)
        seconds = point_seconds(out / "results.csv")
        points = len(seconds)
        rate = points / wall
        verdict = "ok" if rate >= TARGET else f"{TARGET / rate:.1f}x short"
        p95 = seconds[min(points - 1, int(0.95 * points))]
        busy = sum(seconds)
        print(f"sweep     {points} points in {wall:.2f} s wall")
        print(f"          {rate:8.2f} configs/s   target >= {TARGET:.0f}   {verdict}")
        print(
            f"          per point {statistics.median(seconds) * 1000:.0f} ms median, "
            f"{p95 * 1000:.0f} ms p95, {seconds[0] * 1000:.0f} ms min, "
            f"{seconds[-1] * 1000:.0f} ms max (as the workers timed them)"
        )
        print(
            f"          {busy:.1f} s inside points over {args.jobs} workers: "
            f"{points / busy * args.jobs:.2f} configs/s if start-up and hand-off cost nothing"
        )
        print(f"          the command said: {last.strip()}")
        print(f"load      {os.getloadavg()[0]:.1f} after")
        rerun, rerun_last = sweep(grid, out, data_dir, args.jobs)
        print(f"re-run    {rerun:.2f} s: {rerun_last.strip()}")

    single_on = single(data_dir, True, args.single_runs)
    single_off = single(data_dir, False, args.single_runs)
    print()
    print("single backtest in-process (base config, fresh data each run, warm process):")
    print(f"          journal on  {statistics.median(single_on) * 1000:8.1f} ms median")
    print(f"          journal off {statistics.median(single_off) * 1000:8.1f} ms median")
    print()
    print(
        json.dumps(
            {
                "points": points,
                "jobs": args.jobs,
                "configs_per_s": round(rate, 3),
                "wall_s": round(wall, 2),
                "busy_s": round(busy, 1),
                "point_ms_median": round(statistics.median(seconds) * 1000, 1),
                "point_ms_p95": round(p95 * 1000, 1),
                "rerun_s": round(rerun, 2),
                "single_journal_on_ms": round(statistics.median(single_on) * 1000, 1),
                "single_journal_off_ms": round(statistics.median(single_off) * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
