"""A backtest: the live tick on a simulated clock, over replayed bars, into the paper venue.

The start date is when trading starts, not where history starts: the detector sees every earlier
bar as warm-up, as a live agent started that day would. One tick per day at the midnight UTC that
closes the day's crypto bar; orders fill at the next bar's open.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from agent import __version__
from agent.clock import EquitySessions, Pacer, SimClock, daily_ticks
from agent.config import Config
from agent.heartbeat import beat
from agent.loop import Agent, TickResult
from agent.marketdata.replay import ReplayData
from agent.metrics import performance
from agent.ports import DataError
from agent.reconcile import Reconciliation, resume
from agent.runtime import (
    OpenedRun,
    RunFiles,
    RunFolderError,
    open_market_data,
    paper_venue,
    prime_signal,
)
from agent.signal import BreakoutSignal
from agent.store import Store
from risk.journal import Journal

_ONE_DAY = timedelta(days=1)
OnTick = Callable[[TickResult, int, int], None]
Row = tuple[Any, ...]
"""One day of the equity frame: the values of `_columns`, in order."""
"""Called after each tick with (its result, ticks done, ticks in all)."""


@dataclass(frozen=True)
class BacktestResult:
    equity: pd.DataFrame
    summary: dict[str, Any]
    files: RunFiles
    stopped_early: bool


def run_backtest(
    config: Config,
    out: Path,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    on_tick: OnTick | None = None,
    mode: str = "backtest",
    pace: float = 0.0,
    should_stop: Callable[[], str | None] = lambda: None,
    prime: bool = True,
    accept_config_change: bool = False,
    fresh: bool = False,
    on_start: Callable[[OpenedRun, Reconciliation | None], None] | None = None,
    journal: bool = True,
    outputs: bool = True,
    data: ReplayData | None = None,
) -> BacktestResult:
    """Run `config` from `start` to `end` (UTC days, inclusive) and write the run's files to `out`.

    `pace` is the wall-clock seconds each tick takes at least (0: as fast as possible);
    `should_stop` is asked between ticks and returns why to stop, so a stop request ends the run
    after a whole tick. `prime=False` makes every tick detect the breakout on its own bars (slow;
    to check that priming changes nothing).

    `mode="run"` is `spillover run` on replayed data: the run keeps its state in the folder's
    store, and a folder that holds one is resumed after its last committed tick (unless `fresh`),
    the paper venue holding what the store recorded.

    For sweeps, which need only the result: `journal=False` writes no `decisions.jsonl` (the
    summary's order, clamp and fee counts are tallied as the records would have been written, so
    the equity and summary are the same); `outputs=False` also writes no `equity.csv` and
    `summary.json` and leaves `out` untouched. Both are for backtests only. `data` is market data
    already opened for `config` (a sweep worker's, read once): the signal primed on it is kept with
    it, one per signal settings, for the next point.
    """
    if mode == "run" and not (journal and outputs):
        raise ValueError("a run always writes its journal and outputs")
    journal = journal and outputs
    if data is None:
        data = open_market_data(config)
    earliest, first, last = data_range(config, data)
    start = first if start is None else max(start, earliest)
    end = last if end is None else min(end, last)
    if start > end:
        raise DataError(f"range is empty: start {start.date()} is after end {end.date()}")
    ticks = daily_ticks(start, end)
    run_id = f"{mode[:2]}-{config.hash()[:8]}"
    venue = paper_venue(config, data)
    opened = None
    if mode == "run":  # a backtest keeps no state: its files are the record
        files = RunFiles(out)
        if fresh or not files.has_run():
            files = RunFiles.create(out, keep_previous=True)
        opened = files.open_run(
            config, mode, ticks[0], run_id=run_id, accept_config_change=accept_config_change
        )
        run_id = opened.run_id
    elif outputs:
        files = RunFiles.create(out)
    else:
        files = RunFiles(out)
    store = None if opened is None else opened.store
    with store or nullcontext():
        agent = Agent(
            config,
            data,
            venue,
            Journal(files.journal, run_id, fsync=config.run.fsync) if journal else Tally(run_id),
            EquitySessions(),
            _primed(config, data) if prime else None,
            store,
            session=1 if opened is None else opened.session,
            contain_errors=mode == "run",
            repeat_quiet=not journal,
        )
        with agent.journal:
            rows, ticks, resumed_at = _resume(agent, opened, config, ticks, on_start)
            reason = _replay(
                agent,
                ticks,
                rows,
                config,
                mode,
                start,
                end,
                on_tick,
                pace,
                should_stop,
                resumed_at,
                files.heartbeat if mode == "run" else None,
            )
    if not rows:  # stopped before its first tick
        return BacktestResult(pd.DataFrame(), {}, files, True)
    columns = _columns(config.staging.assets)
    equity = pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))
    equity = equity.set_index("date")
    last_day = pd.Timestamp(equity.index[-1])
    counts = agent.journal.counts if isinstance(agent.journal, Tally) else _counts(files.journal)
    summary = _summary(config, agent, equity, counts, start, last_day)
    if outputs:
        equity.to_csv(files.root / "equity.csv", float_format="%.10g")
        (files.root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return BacktestResult(equity, summary, files, reason != "end of data range")


def _resume(
    agent: Agent,
    opened: OpenedRun | None,
    config: Config,
    ticks: list[datetime],
    on_start: Callable[[OpenedRun, Reconciliation | None], None] | None,
) -> tuple[list[Row], list[datetime], datetime | None]:
    """The equity rows of the ticks already run, the ticks left, and when a resumed run resumed
    (None for a new one); for a resumed run, the paper venue and the loop's state restored from
    the store and reconciled."""
    if opened is None:
        return [], ticks, None
    reconciled = None
    now = None
    if opened.resumed is not None:
        store = opened.store
        last = store.last_tick_at()
        if last is not None:
            ticks = [t for t in ticks if t > last]
        try:
            agent.venue.restore(  # type: ignore[attr-defined]
                store.positions(),
                orders_before=len(store.orders()),
                trades_before=len(store.seen_trade_ids()),
            )
        except ValueError as exc:
            raise RunFolderError(f"{store.path.parent}: cannot resume: {exc}") from exc
        now = ticks[0] if ticks else (last or opened.resumed.started_at)
        opened.journal_start(agent.journal, now, config, "run", last)
        reconciled = resume(agent, store, now)
    if on_start is not None:
        on_start(opened, reconciled)
    rows = _stored_rows(opened.store, config) if opened.resumed is not None else []
    return rows, ticks, now


def _replay(
    agent: Agent,
    ticks: list[datetime],
    rows: list[Row],
    config: Config,
    mode: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    on_tick: OnTick | None,
    pace: float,
    should_stop: Callable[[], str | None],
    resumed_at: datetime | None,
    heartbeat: Path | None,
) -> str:
    """Tick through `ticks`, appending each tick's equity row to `rows`; why it stopped."""
    journal = agent.journal
    done = len(rows)
    total = done + len(ticks)
    if resumed_at is None:
        journal.write(
            "start",
            ticks[0],
            config_hash=config.hash(),
            mode=mode,
            version=__version__,
            start=start.date(),
            end=end.date(),
        )
    clock = SimClock(ticks[0] if ticks else resumed_at or datetime.now(UTC))
    pacer = Pacer(pace) if pace else None
    reason = "end of data range"
    stop = should_stop()  # a stop asked for while starting up trades nothing
    if stop:
        reason, ticks = stop, []
    for n, now in enumerate(ticks, done + 1):
        clock.current = now
        if heartbeat is not None:
            beat(heartbeat, run_id=journal.run_id, state="ticking", tick_at=now.isoformat())
        result = agent.repeat(now) or agent.tick(clock.now())
        rows.append(_equity_row(result, config))
        if on_tick:
            on_tick(result, n, total)
        stop = should_stop()
        if stop:
            reason = stop
            break
        if pacer is not None:
            pacer.wait()
    journal.write("stop", clock.now(), reason=reason)
    if heartbeat is not None:
        beat(heartbeat, run_id=journal.run_id, state="stopped", reason=reason)
    return reason


def data_range(config: Config, data: Any) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """The earliest day trading can start (both the index and the lead crypto asset have bars),
    the default start (once the lead asset has `trend_window` days of closes for its trend gate)
    and the last day of the lead asset's bars."""
    lead = config.data.crypto_symbol.format(asset=config.staging.assets[0])
    bars = data.full_history(lead)
    earliest = max(bars.index[0], data.full_history(config.data.index).index[0])
    warm_up = pd.Timedelta(days=config.staging.trend_window)
    return earliest, earliest + warm_up, bars.index[-1]


def _equity_row(result: TickResult, config: Config) -> Row:
    targets, breakout = result.targets, result.breakout
    return _row(
        config,
        result.now,
        result.balances,
        result.prices,
        stage=targets.stage if targets else 0,
        target_exposure=targets.budget if targets else 0.0,
        state=breakout.state.value if breakout else "unknown",
        action=result.action,
    )


def _stored_rows(store: Store, config: Config) -> list[Row]:
    """The equity rows of the ticks a resumed run committed before, from its store."""
    breakouts = {b.tick_at: b for b in store.breakout_history()}
    actions = {d.tick_at: d.action for d in store.decisions()}
    rows = []
    for snapshot in store.equity_history():
        at = snapshot.tick_at
        breakout = breakouts.get(at)
        rows.append(
            _row(
                config,
                at,
                {k: v or 0.0 for k, v in (snapshot.holdings or {}).items()},
                {k: v for k, v in (snapshot.prices or {}).items() if v is not None},
                stage=breakout.stage if breakout else 0,
                target_exposure=breakout.target_exposure if breakout else 0.0,
                state=breakout.state if breakout else "unknown",
                action=actions.get(at, "refused"),
            )
        )
    return rows


def _row(
    config: Config,
    now: datetime,
    balances: Mapping[str, float],
    prices: Mapping[str, float],
    *,
    stage: int,
    target_exposure: float,
    state: str,
    action: str,
) -> Row:
    """A day's values in the order of `_columns(config.staging.assets)`."""
    cash = balances.get(config.venue.quote, 0.0)
    values = [balances.get(a, 0.0) * prices.get(a, 0.0) for a in config.staging.assets]
    held = sum(values)
    equity = cash + held
    per_asset: list[float] = []
    for value in values:
        per_asset += (value, value / equity if equity > 0 else 0.0)
    exposure = held / equity if equity > 0 else 0.0
    date = (now - _ONE_DAY).date()
    return (date, equity, cash, *per_asset, exposure, stage, target_exposure, state, action)


def _counts(journal: Path) -> dict[str, Any]:
    """The orders, risk clamps, fees and traded notional a journal records."""
    from risk.journal import read_journal

    tally = Tally("")
    for record in read_journal(journal):
        tally.count(record["event"], record)
    return tally.counts


class Tally:
    """Stands in for the journal of a backtest run without one (`journal=False`): writes nothing,
    counts what the summary reads from a journal, from the same values in the same order."""

    writes_decisions = False

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.counts: dict[str, Any] = {"orders": 0, "risk_clamps": 0, "fees": 0.0, "traded": 0.0}

    def write(self, event: str, ts: datetime, **fields: Any) -> dict[str, Any]:
        self.count(event, fields)
        return fields

    def error(self, ts: datetime, exc: BaseException, **fields: Any) -> dict[str, Any]:
        return fields

    def count(self, event: str, record: Mapping[str, Any]) -> None:
        counts = self.counts
        if event == "order" and record["status"] != "error":
            counts["orders"] += 1
        elif event == "risk":
            counts["risk_clamps"] += 1
        elif event == "fill":
            counts["fees"] += record["fee"]
            counts["traded"] += record["amount"] * record["price"]

    def close(self) -> None:
        pass

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _primed(config: Config, data: Any) -> BreakoutSignal:
    """The signal primed on `data`'s history, primed once per data object and signal settings:
    sweep points sharing their market data share it (a primed signal only reads its frame)."""
    settings = config.data
    key = (config.signal, settings.index, settings.index_price, settings.benchmark)
    try:
        primed = _PRIMED.setdefault(data, {})
    except TypeError:  # data that cannot be weakly referenced: prime every time
        return prime_signal(config, data)
    signal = primed.pop(key, None)
    if signal is None:
        signal = prime_signal(config, data)
        while len(primed) >= _PRIMED_PER_DATA:  # a sweep over many signal settings: keep the
            del primed[next(iter(primed))]  # most recently used ones
    primed[key] = signal
    return signal


_PRIMED_PER_DATA = 16
_PRIMED: weakref.WeakKeyDictionary[Any, dict[Any, BreakoutSignal]] = weakref.WeakKeyDictionary()


def _summary(
    config: Config,
    agent: Agent,
    equity: pd.DataFrame,
    counts: dict[str, Any],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> dict[str, Any]:
    curve = equity["equity"]
    curve.index = pd.DatetimeIndex(curve.index)
    metrics = performance(curve) | {
        "exposure_days": int((equity["exposure"] > 0.001).sum()),
        "turnover": counts["traded"] / float(curve.mean()),
        "fees": counts["fees"],
        "orders": counts["orders"],
        "risk_clamps": counts["risk_clamps"],
    }
    return {
        "config_hash": config.hash(),
        "version": __version__,
        "data": {"start": start.date().isoformat(), "end": end.date().isoformat()},
        "metrics": metrics,
        "benchmark": _buy_and_hold(config, agent, curve),
        "breakouts": _breakouts(agent, start, end),
        "stages": _stages(equity),
    }


def _buy_and_hold(config: Config, agent: Agent, curve: pd.Series) -> dict[str, Any]:
    """The same metrics for the whole starting cash in the first asset (BTC), bought on day one."""
    asset = config.staging.assets[0]
    closes = agent.market_data.daily_bars(agent.data_symbols[asset], curve.index[-1])["close"]
    closes = closes.reindex(curve.index).ffill()
    fee = config.venue.fee_bps / 10_000 + config.venue.slippage_bps / 10_000
    units = config.venue.initial_cash * (1 - fee) / closes.iloc[0]
    held = closes * units
    return (
        {"asset": asset}
        | performance(held)
        | {
            "exposure_days": int(held.notna().sum()),
            "turnover": config.venue.initial_cash / float(held.mean()),
            "fees": config.venue.initial_cash * config.venue.fee_bps / 10_000,
            "orders": 1,
            "risk_clamps": 0,
        }
    )


def _breakouts(agent: Agent, start: pd.Timestamp, end: pd.Timestamp) -> list[dict[str, Any]]:
    """Every candidate that started, and every episode that was live, inside the range: read
    once per primed signal and range (a sweep's points share them)."""
    frame = agent.signal.frame
    if frame is None:
        return []
    known = _BREAKOUTS.setdefault(agent.signal, {})
    found = known.get((start, end))
    if found is None or found[0] is not frame:  # read anew when the signal primed again
        found = known[(start, end)] = (frame, _read_breakouts(frame, start, end))
    return [dict(breakout) for breakout in found[1]]


_BREAKOUTS: weakref.WeakKeyDictionary[
    BreakoutSignal, dict[tuple[pd.Timestamp, pd.Timestamp], tuple[pd.DataFrame, list[Any]]]
]
_BREAKOUTS = weakref.WeakKeyDictionary()


def _read_breakouts(
    frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> list[dict[str, Any]]:
    frame = frame.loc[:end]
    out: list[dict[str, Any]] = []
    for confirmed, rows in frame.dropna(subset=["confirmed_date"]).groupby("confirmed_date"):
        last = rows.iloc[-1]
        first = frame.loc[confirmed]
        if rows.index[-1] < start:
            continue
        out.append(
            {
                "candidate": _iso(first["candidate_date"]),
                "confirmed": _iso(confirmed),
                "failed": _iso(last["failed_date"]),
                "expired": _iso(last["expired_date"]),
                "level": float(last["episode_level"]),
            }
        )
    confirmed_candidates = {b["candidate"] for b in out}
    lapsed = frame.loc[start:, "candidate_date"].dropna().unique()
    for candidate in lapsed:
        if _iso(candidate) in confirmed_candidates:
            continue
        level = float(frame.loc[candidate, "candidate_level"])
        out.append(
            {
                "candidate": _iso(candidate),
                "confirmed": None,
                "failed": None,
                "expired": None,
                "level": level,
            }
        )
    return sorted(out, key=lambda b: b["candidate"] or b["confirmed"])


def _stages(equity: pd.DataFrame) -> list[dict[str, Any]]:
    """Each day the stage or the breakout state changed, with the exposure then allowed."""
    stages, states = equity["stage"].tolist(), equity["state"].tolist()
    exposures, days = equity["target_exposure"].tolist(), equity.index.tolist()
    return [
        {
            "date": str(days[n]),
            "stage": int(stages[n]),
            "state": states[n],
            "target_exposure": float(exposures[n]),
        }
        for n in range(len(days))
        if n == 0 or stages[n] != stages[n - 1] or states[n] != states[n - 1]
    ]


@functools.cache
def _columns(assets: tuple[str, ...]) -> tuple[str, ...]:
    """The equity frame's columns (`date` its index)."""
    per_asset = (key for asset in assets for key in (f"{asset}_value", f"{asset}_weight"))
    return (
        "date",
        "equity",
        "cash",
        *per_asset,
        "exposure",
        "stage",
        "target_exposure",
        "state",
        "action",
    )


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()
