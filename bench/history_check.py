"""Run the breakout detector over real daily history and print every state change.

    python bench/history_check.py [--data-dir ../shared/data] [--config config/sim.toml]

Two price series are checked, because they disagree about what an all-time high is:
- price highs: the Russell 2000 index level (RUT.csv, to 2026-03) with IWM volume;
- IWM closes as the file gives them (dividend-adjusted, so highs are total-return highs).
Both use IWM volume (RUT.csv has none) and SPY as the benchmark. The defaults were chosen on data
up to 2024-12-31; rows after that are marked out-of-sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from agent.config import Config, load_config
from strategies.breakout import BreakoutParams, detect

IN_SAMPLE_END = pd.Timestamp("2024-12-31")
EVENTS = {
    "candidate": "candidate_date",
    "confirmed": "confirmed_date",
    "failed": "failed_date",
    "expired": "expired_date",
}


def read_bars(data_dir: Path, symbol: str) -> pd.DataFrame:
    path = data_dir / f"{symbol.replace('/', '-')}.csv"
    return pd.read_csv(path, parse_dates=["date"], index_col="date").sort_index()


def events(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate start, confirmation, failure and expiry, in date order."""
    rows = []
    for event, column in EVENTS.items():
        for date in frame[column].dropna().unique():
            first = frame.loc[frame[column] == date].iloc[0]
            level = first["candidate_level"] if event == "candidate" else first["episode_level"]
            rows.append(
                {
                    "date": pd.Timestamp(date),
                    "event": event,
                    "level": level,
                    "close": frame.loc[date, "close"],
                    "rel_volume": frame.loc[date, "rel_volume"],
                    "rs_lead": frame.loc[date, "rs"] / frame.loc[date, "rs_mean"] - 1,
                }
            )
    order = {name: n for n, name in enumerate(EVENTS)}
    table = pd.DataFrame(rows)
    table["rank"] = table["event"].map(order)
    return table.sort_values(["date", "rank"]).drop(columns="rank").reset_index(drop=True)


def report(title: str, frame: pd.DataFrame) -> None:
    table = events(frame)
    print(f"\n== {title}: {frame.index[0].date()} to {frame.index[-1].date()} ==")
    print(f"{'date':<12}{'event':<11}{'level':>10}{'close':>10}{'rel vol':>9}{'rs lead':>9}")
    marked = False
    for row in table.itertuples():
        if not marked and row.date > IN_SAMPLE_END:
            print("-- out of sample (defaults chosen on data up to 2024-12-31) --")
            marked = True
        print(
            f"{row.date.date()!s:<12}{row.event:<11}{row.level:>10.2f}{row.close:>10.2f}"
            f"{row.rel_volume:>9.2f}{row.rs_lead:>+9.2%}"
        )
    counts = table.groupby([table["date"] > IN_SAMPLE_END, "event"]).size()
    for (out_of_sample, event), n in counts.items():
        print(f"  {'2025-' if out_of_sample else '-2024'} {event}: {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--config", type=Path, help="TOML config (default: built-in defaults)")
    args = parser.parse_args()

    config = load_config(args.config) if args.config else Config()
    params: BreakoutParams = config.signal
    index = read_bars(args.data_dir, config.data.index)
    benchmark = read_bars(args.data_dir, config.data.benchmark)["close"]
    volume = index["volume"]
    print(f"signal parameters: {params}")

    rut = read_bars(args.data_dir, "RUT")["close"].loc[index.index[0] :]
    report("price highs: RUT closes, IWM volume, SPY", detect(rut, volume, benchmark, params))
    report(
        f"{config.data.index} closes as given (dividend-adjusted), {config.data.benchmark}",
        detect(index["close"], volume, benchmark, params),
    )


if __name__ == "__main__":
    main()
