"""Event study of the thesis: what crypto did after each confirmed small-cap breakout.

For every episode the detector confirms (the config's `signal` rules over its `data` series, the
same primed frame a backtest reads), and for every crypto asset of the config, the forward
return from the confirmation day to +h calendar days (default 30, 60 and 90) is set against the
same-horizon forward returns from the asset's other start days:

- **forward return**: close to close. The start close is the first one at or after the day, the
  end close the first one at or after the day + h; a close more than `max_gap_days` later does
  not count (crypto trades every day, so a longer gap means the asset has no data then, e.g.
  before it was listed or after its file ends). Such a return is reported missing with the
  reason, never filled.
- **baseline**: the forward returns from every day of the asset's history outside the lag
  windows of all episodes (`baseline_days`).
- **percentile**: the share of baseline returns below the event's, ties counted half (0 when
  below all of them, 100 when above all).
- **excess over the median**: the event's return minus the baseline's median.
- per asset and horizon, over the events that have a return: their mean, a bootstrap
  confidence interval of that mean (the events resampled with replacement), the unconditional
  (baseline) mean, and `p_random_days`: the share of resamples in which the mean of as many days
  drawn at random from the baseline is at least the events' mean, i.e. how often chance alone
  does as well ((k + 1) / (samples + 1), never 0).

The computation (`event_study`) is pure: episodes and closes in, a JSON-ready dict out, the same
for the same seed. `run_study` reads the files first; `print_study` prints the tables.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agent.ports import DataError

if TYPE_CHECKING:
    from agent.config import Config

HORIZONS = (30, 60, 90)
SAMPLES = 10_000
CONFIDENCE = 0.95
MAX_GAP_DAYS = 3
"""A close at most this many calendar days after the wanted day stands for it."""


@dataclass(frozen=True)
class Episode:
    """A confirmed breakout and its lag window, [confirmed, window_end)."""

    confirmed: pd.Timestamp
    level: float
    window_end: pd.Timestamp
    failed: pd.Timestamp | None = None
    expired: pd.Timestamp | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirmed": _iso(self.confirmed),
            "level": self.level,
            "window_end": _iso(self.window_end),
            "failed": _iso(self.failed),
            "expired": _iso(self.expired),
        }


def episodes(frame: pd.DataFrame, window_days: int) -> list[Episode]:
    """Every confirmed episode in a detector frame, with how it ended as of the frame's end."""
    out = []
    for confirmed, rows in frame.dropna(subset=["confirmed_date"]).groupby("confirmed_date"):
        last = rows.iloc[-1]
        day = pd.Timestamp(confirmed)
        out.append(
            Episode(
                confirmed=day,
                level=float(last["episode_level"]),
                window_end=day + pd.Timedelta(days=window_days),
                failed=_timestamp(last["failed_date"]),
                expired=_timestamp(last["expired_date"]),
            )
        )
    return out


def forward_return(
    closes: pd.Series, day: pd.Timestamp, horizon: int, max_gap_days: int = MAX_GAP_DAYS
) -> dict[str, Any]:
    """Close to close from the first close at or after `day` to the first at or after
    `day + horizon` days: the dates, the closes and the return, or `missing` saying why."""
    start = _close_at(closes, day, max_gap_days)
    end_day = day + pd.Timedelta(days=horizon)
    end = _close_at(closes, end_day, max_gap_days)
    if start is None:
        return {"return": None, "missing": _no_close(closes, day, max_gap_days)}
    if end is None:
        return {"return": None, "missing": _no_close(closes, end_day, max_gap_days)}
    return {
        "return": end[1] / start[1] - 1,
        "start": _iso(start[0]),
        "start_close": start[1],
        "end": _iso(end[0]),
        "end_close": end[1],
    }


def baseline_returns(
    closes: pd.Series,
    horizon: int,
    windows: Iterable[tuple[pd.Timestamp, pd.Timestamp]],
    max_gap_days: int = MAX_GAP_DAYS,
) -> pd.Series:
    """The forward return from every day of `closes` whose end close exists, except days inside
    any [start, end) of `windows`, indexed by start day.

    Days inside an episode's lag window are left out because their forward paths are largely
    the event's own path: a start a week after confirmation shares about 80% of the event's
    +30-day move. Keeping them would put each event (nearly) into its own reference, pulling
    the baseline toward the events and hiding a difference if there is one. They are also the
    days the thesis makes a claim about, so they cannot stand for days it says nothing about.
    """
    dates = closes.index
    values = closes.to_numpy(dtype=float)
    ns = dates.asi8
    targets = (dates + pd.Timedelta(days=horizon)).asi8
    j = np.searchsorted(ns, targets, side="left")
    ok = j < len(ns)
    gap = pd.Timedelta(days=max_gap_days).value
    ok[ok] &= ns[j[ok]] - targets[ok] <= gap
    for start, end in windows:
        ok &= ~((dates >= start) & (dates < end))
    returns = values[j[ok]] / values[ok] - 1
    return pd.Series(returns, index=dates[ok], name=f"+{horizon}d")


def percentile_rank(value: float, distribution: np.ndarray) -> float | None:
    """Percent of `distribution` below `value`, ties counted half: 0 below all, 100 above all;
    None for an empty distribution."""
    if len(distribution) == 0:
        return None
    below = np.count_nonzero(distribution < value)
    equal = np.count_nonzero(distribution == value)
    return float(100.0 * (below + 0.5 * equal) / len(distribution))


def bootstrap_mean(
    values: np.ndarray,
    samples: int,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`, resampled with replacement."""
    n = len(values)
    means = values[rng.integers(0, n, size=(samples, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def random_days_p(
    event_mean: float,
    baseline: np.ndarray,
    n: int,
    samples: int,
    rng: np.random.Generator,
) -> float:
    """(k + 1) / (samples + 1), k the resamples in which the mean of `n` baseline days drawn at
    random (with replacement) is at least `event_mean`."""
    means = baseline[rng.integers(0, len(baseline), size=(samples, n))].mean(axis=1)
    return float((np.count_nonzero(means >= event_mean) + 1) / (samples + 1))


def asset_rng(seed: int, asset: str, horizon: int) -> np.random.Generator:
    """One stream per asset and horizon, so an asset's numbers do not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32(asset.encode()), horizon])


def event_study(
    found: Sequence[Episode],
    closes: Mapping[str, pd.Series],
    horizons: Sequence[int] = HORIZONS,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    max_gap_days: int = MAX_GAP_DAYS,
) -> dict[str, Any]:
    """The study over `found` episodes for each asset's daily `closes` (see the module's text):
    `events` (one per episode and asset, per horizon), `assets` (the summary per asset and
    horizon) and `episodes`. Strict-JSON ready: a missing number is None."""
    if not horizons or any(h <= 0 for h in horizons):
        raise ValueError(f"horizons must be positive days, got {list(horizons)}")
    if samples <= 0:
        raise ValueError(f"samples must be positive, got {samples}")
    windows = [(e.confirmed, e.window_end) for e in found]
    events: list[dict[str, Any]] = [
        {"confirmed": _iso(e.confirmed), "asset": asset, "horizons": {}}
        for e in found
        for asset in closes
    ]
    assets: dict[str, dict[str, Any]] = {asset: {} for asset in closes}
    for asset, series in closes.items():
        mine = [row for row in events if row["asset"] == asset]
        for h in horizons:
            baseline = baseline_returns(series, h, windows, max_gap_days).to_numpy()
            median = float(np.median(baseline)) if len(baseline) else None
            got = []
            for episode, row in zip(found, mine, strict=True):
                cell = forward_return(series, episode.confirmed, h, max_gap_days)
                if cell["return"] is not None:
                    got.append(cell["return"])
                    cell["percentile"] = percentile_rank(cell["return"], baseline)
                    cell["excess_over_median"] = None if median is None else cell["return"] - median
                row["horizons"][str(h)] = cell
            assets[asset][str(h)] = _summary(
                np.array(got), baseline, median, samples, asset_rng(seed, asset, h), confidence
            )
    return {
        "horizons": list(horizons),
        "samples": samples,
        "seed": seed,
        "confidence": confidence,
        "max_gap_days": max_gap_days,
        "baseline": "forward returns from every other day, outside all episodes' lag windows",
        "episodes": [e.as_dict() for e in found],
        "events": events,
        "assets": assets,
    }


def _summary(
    got: np.ndarray,
    baseline: np.ndarray,
    median: float | None,
    samples: int,
    rng: np.random.Generator,
    confidence: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "events": len(got),
        "event_mean": None,
        "ci_low": None,
        "ci_high": None,
        "baseline_days": len(baseline),
        "unconditional_mean": float(baseline.mean()) if len(baseline) else None,
        "unconditional_median": median,
        "excess_mean": None,
        "above_median": None,
        "p_random_days": None,
    }
    if len(got) == 0:
        return out
    mean = float(got.mean())
    low, high = bootstrap_mean(got, samples, rng, confidence)
    out |= {"event_mean": mean, "ci_low": low, "ci_high": high}
    if len(baseline):
        out |= {
            "excess_mean": mean - out["unconditional_mean"],
            "above_median": int(np.count_nonzero(got > median)),
            "p_random_days": random_days_p(mean, baseline, len(got), samples, rng),
        }
    return out


def load_inputs(config: Config) -> tuple[list[Episode], dict[str, pd.Series]]:
    """The confirmed episodes of the config's signal over its replayed files, and each asset's
    daily closes. A missing folder or file, or a bad bar, is a DataError (one line)."""
    from agent.runtime import open_market_data, prime_signal

    folder = Path(config.data.dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder")
    data = open_market_data(config)
    frame = prime_signal(config, data).frame
    assert frame is not None
    found = episodes(frame, config.signal.window_days)
    symbol = config.data.crypto_symbol
    closes = {
        asset: data.full_history(symbol.format(asset=asset))["close"]
        for asset in config.staging.assets
    }
    return found, closes


def run_study(
    config: Config,
    horizons: Sequence[int] = HORIZONS,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Load the config's replayed data and study it; the result also names its inputs."""
    found, closes = load_inputs(config)
    result = event_study(found, closes, horizons, samples=samples, seed=seed)
    first = {a: _iso(s.index[0]) for a, s in closes.items()}
    last = {a: _iso(s.index[-1]) for a, s in closes.items()}
    return {
        "config_hash": config.hash(),
        "data_dir": str(config.data.dir),
        "index": config.data.index_price or config.data.index,
        "benchmark": config.data.benchmark,
        "window_days": config.signal.window_days,
        "asset_data": {a: {"first": first[a], "last": last[a]} for a in closes},
    } | result


def print_study(result: Mapping[str, Any]) -> None:
    """One row per event and asset (return, percentile, excess over the median per horizon),
    then a summary per asset and horizon. Breakouts where no asset has a return are named on
    one line; a single missing return shows as `-` (the JSON says why)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    horizons = [str(h) for h in result["horizons"]]
    table = Table(
        title="crypto after each confirmed breakout",
        caption="pct: percentile among the other days' returns; vs med: minus their median, "
        "in points; -: no data",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )
    table.add_column("confirmed", no_wrap=True)
    table.add_column("asset", no_wrap=True)
    for h in horizons:
        table.add_column(f"+{h}d", justify="right", no_wrap=True)
        table.add_column("pct", justify="right", no_wrap=True)
        table.add_column("vs med", justify="right", no_wrap=True)
    empty = []
    for confirmed, rows in _by_event(result["events"]):
        if all(cell["return"] is None for row in rows for cell in row["horizons"].values()):
            empty.append(confirmed)
            continue
        for n, row in enumerate(rows):
            cells = []
            for h in horizons:
                cell = row["horizons"][h]
                if cell["return"] is None:
                    cells += ["-", "", ""]
                else:
                    cells += [
                        _pct(cell["return"]),
                        _num(cell["percentile"]),
                        _points(cell["excess_over_median"]),
                    ]
            last = n == len(rows) - 1
            table.add_row(confirmed if n == 0 else "", row["asset"], *cells, end_section=last)
    console.print(table)
    if empty:
        console.print(f"no crypto return after: {', '.join(empty)}")
    level = f"{result['confidence']:.0%}"
    summary = Table(
        title=f"per asset: the events' mean against all other days ({result['samples']} resamples)",
        caption="p: share of random draws of as many other days whose mean is at least the "
        "events' mean",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )
    for name in ("asset", "horizon", "events", "mean", f"{level} CI", "other days", "days"):
        summary.add_column(name, justify="left" if name == "asset" else "right", no_wrap=True)
    summary.add_column(">median", justify="right", no_wrap=True)
    summary.add_column("p", justify="right", no_wrap=True)
    for asset, by_horizon in result["assets"].items():
        for n, h in enumerate(horizons):
            s = by_horizon[h]
            ci = "" if s["ci_low"] is None else f"{_pct(s['ci_low'])}..{_pct(s['ci_high'])}"
            above = "" if s["above_median"] is None else f"{s['above_median']}/{s['events']}"
            summary.add_row(
                asset if n == 0 else "",
                f"+{h}d",
                str(s["events"]),
                _pct(s["event_mean"]),
                ci,
                _pct(s["unconditional_mean"]),
                str(s["baseline_days"]),
                above,
                "" if s["p_random_days"] is None else f"{s['p_random_days']:.3f}",
                end_section=n == len(horizons) - 1,
            )
    console.print(summary)


def _by_event(events: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in events:
        grouped.setdefault(row["confirmed"], []).append(row)
    return list(grouped.items())


def _close_at(
    closes: pd.Series, day: pd.Timestamp, max_gap_days: int
) -> tuple[pd.Timestamp, float] | None:
    i = closes.index.searchsorted(day, side="left")
    if i == len(closes) or (closes.index[i] - day).days > max_gap_days:
        return None
    return closes.index[i], float(closes.iat[i])


def _no_close(closes: pd.Series, day: pd.Timestamp, max_gap_days: int) -> str:
    first, last = closes.index[0], closes.index[-1]
    until = day + pd.Timedelta(days=max_gap_days)
    if until < first:
        why = f"before its data starts ({_iso(first)})"
    elif day > last:
        why = f"after its data ends ({_iso(last)})"
    else:
        why = "a gap in its data"
    return f"no close from {_iso(day)} to {_iso(until)}: {why}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.0%}"


def _points(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.0f}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def _timestamp(value: Any) -> pd.Timestamp | None:
    return None if pd.isna(value) else pd.Timestamp(value)


def _iso(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()
