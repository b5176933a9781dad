"""Time the real-history backtest with 2 equities (IWM, SPY) and 8 crypto assets, and `--help`.

    python bench/backtest.py [--data-dir ../shared/data] [--runs 5] [--process-runs 3]

config/history.toml trades 5 crypto assets (BTC ETH SOL XRP BNB); this script adds ADA, DOGE and
LINK to the last stage (shares rescaled to sum to 1) and writes that 8-asset config to a temporary
TOML file, used both in-process and by the `spillover backtest` subprocess. ADA, DOGE and LINK
files end on 2026-01-05, so after that day those assets are stale (a real-data condition the
backtest handles; it only changes what is timed, not whether it runs).

Three numbers, each beside its target:
- in-process `run_backtest` (journal on, fresh temporary output folder per run): one cold first
  run, then the median of warm runs;
- the whole `spillover backtest` process (interpreter start, imports, config, run, report);
- `spillover --help`.
It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from agent.backtest import run_backtest
from agent.clock import EquitySessions
from agent.config import Config, load_config
from agent.runtime import open_market_data, prime_signal

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "config" / "history.toml"
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
START, END = "2015-01-01", "2026-06-23"

SHARES = {
    "BTC": 0.32,
    "ETH": 0.20,
    "SOL": 0.08,
    "XRP": 0.08,
    "BNB": 0.08,
    "ADA": 0.08,
    "DOGE": 0.08,
    "LINK": 0.08,
}
"""8 assets, summing to 1.0: BTC and ETH keep the lead, six altcoins share the rest."""
ADDED = ("ADA", "DOGE", "LINK")

TARGET_IN_PROCESS = 0.2
TARGET_PROCESS = 1.0
TARGET_HELP = 0.3


def eight_asset_toml(data_dir: Path) -> dict[str, Any]:
    """config/history.toml with ADA, DOGE and LINK added to the stage that adds the altcoins."""
    data = tomllib.loads(HISTORY.read_text(encoding="utf-8"))
    data["data"]["dir"] = str(data_dir)
    staging = data["staging"]
    staging["shares"] = dict(SHARES)
    altcoins = next(stage for stage in staging["stages"] if "SOL" in stage.get("add", []))
    altcoins["add"] = [*altcoins["add"], *ADDED]
    return data


def spillover_command() -> list[str]:
    """The console script next to this interpreter, else `python -m agent`."""
    script = Path(sys.executable).with_name("spillover")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def one_backtest(config: Config, scratch: Path, n: int) -> tuple[float, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"run{n}-", dir=scratch))
    start, end = pd.Timestamp(START), pd.Timestamp(END)
    return timed(lambda: run_backtest(config, out, start=start, end=end))


def process_time(command: list[str], cwd: Path) -> float:
    """Wall clock of one subprocess, interpreter start included (as /usr/bin/time reports)."""
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print(f"  ! exit code {done.returncode}: {' | '.join(tail)}")
    return elapsed


def line(label: str, seconds: float, target: float, detail: str = "") -> str:
    verdict = "ok" if seconds <= target else f"{seconds / target:.1f}x over"
    text = f"{label:<34} {seconds:8.3f} s   target <= {target:.1f} s   {verdict}"
    return f"{text}   ({detail})" if detail else text


def spread(samples: list[float]) -> str:
    return f"n={len(samples)}, min {min(samples):.3f}, max {max(samples):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=5, help="warm in-process runs")
    parser.add_argument("--process-runs", type=int, default=3, help="`spillover backtest` runs")
    parser.add_argument("--help-runs", type=int, default=5, help="`spillover --help` runs")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()

    with tempfile.TemporaryDirectory(prefix="spillover-bench-") as tmp:
        scratch = Path(tmp)
        config_file = scratch / "history8.toml"
        config_file.write_text(tomli_w.dumps(eight_asset_toml(data_dir)), encoding="utf-8")
        config = load_config(config_file)
        assets = config.staging.assets

        print(f"data      {data_dir}")
        print(f"config    config/history.toml + {', '.join(ADDED)}: {len(assets)} crypto assets")
        print(f"          {' '.join(f'{a}={config.staging.shares[a]:g}' for a in assets)}")
        print(f"range     {START} to {END}, journal on, python {sys.version.split()[0]}")
        print()

        cold, result = one_backtest(config, scratch, 0)
        warm = [one_backtest(config, scratch, n)[0] for n in range(1, args.runs + 1)]
        journal = result.files.journal
        records = sum(1 for _ in journal.open(encoding="utf-8"))
        metrics = result.summary["metrics"]
        print(
            f"run       {len(result.equity)} ticks, {records} journal records "
            f"({journal.stat().st_size / 1e6:.1f} MB), {metrics['orders']} orders, "
            f"total return {metrics['total_return']:.2%}"
        )

        # What a warm run repeats before its first tick: run_backtest reads the CSV files and
        # primes the detector again each time (new ReplayData); the exchange calendar is built
        # once per process (exchange_calendars caches it), so only the cold run pays for it.
        def load() -> Any:
            market = open_market_data(config)
            symbols = [config.data.index, config.data.benchmark, config.data.index_price]
            symbols += [config.data.crypto_symbol.format(asset=a) for a in assets]
            for symbol in filter(None, symbols):
                market.full_history(symbol)
            return market

        loads = [timed(load)[0] for _ in range(args.runs)]
        market = load()
        primes = [timed(lambda: prime_signal(config, market))[0] for _ in range(args.runs)]
        calendars = [timed(EquitySessions)[0] for _ in range(args.runs)]
        print()
        print("(a) in-process run_backtest(config, out, start, end)")
        print(
            line(
                "    cold: first run in process",
                cold,
                TARGET_IN_PROCESS,
                "imports done; CSV reads, exchange-calendar build, priming, first-call caches",
            )
        )
        print(
            line(
                "    warm: median of later runs",
                statistics.median(warm),
                TARGET_IN_PROCESS,
                f"{spread(warm)}; re-reads CSVs and re-primes, calendar cached",
            )
        )
        parts = (
            ("CSV load", loads),
            ("prime_signal()", primes),
            ("EquitySessions()", calendars),
        )
        for label, samples in parts:
            print(f"      of which {label:<21} {statistics.median(samples):8.3f} s   (warm median)")

        program = spillover_command()
        command = [
            *program,
            "backtest",
            "--config",
            str(config_file),
            "--data-dir",
            str(data_dir),
            "--start",
            START,
            "--end",
            END,
        ]
        process = [
            process_time([*command, "--out", str(scratch / f"cli{n}")], ROOT)
            for n in range(args.process_runs)
        ]
        print()
        name = " ".join(Path(part).name for part in program)
        print(f"(b) whole process: {name} backtest --config <8-asset toml> --data-dir DATA")
        print(f"    --start {START} --end {END} --out <fresh tmp>")
        print(
            line(
                "    median wall clock",
                statistics.median(process),
                TARGET_PROCESS,
                f"{spread(process)}; interpreter start, imports, config, run, report",
            )
        )

        helps = [process_time([*program, "--help"], ROOT) for _ in range(args.help_runs)]
        print()
        print("(c) spillover --help")
        print(
            line(
                "    median wall clock",
                statistics.median(helps),
                TARGET_HELP,
                f"{spread(helps)}; interpreter start included",
            )
        )
        print()
        print(
            json.dumps(
                {
                    "in_process_cold_s": round(cold, 4),
                    "in_process_warm_median_s": round(statistics.median(warm), 4),
                    "process_median_s": round(statistics.median(process), 4),
                    "help_median_s": round(statistics.median(helps), 4),
                }
            )
        )


if __name__ == "__main__":
    main()
