"""What a report shows, read from a run folder: the journal, and the equity of `equity.csv` (a
backtest or `spillover run`) or of the state store (a testnet or live run). No market data: the
small-cap proxy's closes and level come from the decisions' breakout evidence, and buy-and-hold
from the prices each decision was made at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from agent.metrics import performance
from risk.journal import read_journal

JOURNAL = "decisions.jsonl"
EQUITY_CSV = "equity.csv"
SUMMARY = "summary.json"
STATE = "state.sqlite"
_ONE_DAY = pd.Timedelta(days=1)


class ReportError(Exception):
    """A folder with nothing to report, or files that cannot be read: one line for the user."""


@dataclass
class RunData:
    folder: Path
    source: str
    """Where the equity came from: `equity.csv` or `state.sqlite`."""
    assets: list[str]
    equity: pd.DataFrame
    """By day: `equity`, and `{asset}_value` for each asset."""
    ticks: pd.DataFrame
    """By day, from the decisions: `state`, `stage`, `target_exposure`, `action`, `lead` (the
    first asset's price)."""
    index: pd.DataFrame
    """By equity session, from the breakout evidence: `close`, `level`."""
    decisions: list[dict[str, Any]]
    followed: dict[str, list[dict[str, Any]]]
    """By decision id: the order and fill records journalled under it, in journal order (a fill
    may come ticks later)."""
    metrics: dict[str, Any]
    benchmark: dict[str, Any]
    lead: str
    """The buy-and-hold asset (BTC)."""
    skipped: list[str] = field(default_factory=list)
    """Journal lines that could not be read, as `line N: reason`."""


def load_run(folder: Path) -> RunData:
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: not a folder")
    journal = folder / JOURNAL
    if not journal.is_file():
        raise ReportError(f"{folder}: no {JOURNAL}: nothing to report")
    skipped: list[str] = []
    records = _records(journal, skipped)
    decisions = [r for r in records if r.get("event") == "decision"]
    if not decisions:
        raise ReportError(f"{journal}: no decision records: nothing to report")
    ticks, lead = _ticks(decisions)
    if (folder / EQUITY_CSV).is_file():
        source, equity = EQUITY_CSV, _equity_csv(folder / EQUITY_CSV)
    elif (folder / STATE).is_file():
        source, equity = STATE, _equity_store(folder)
    else:
        source, equity = JOURNAL, _equity_journal(decisions)
    equity = equity.dropna(subset=["equity"])
    if equity.empty:
        raise ReportError(f"{folder}: no equity recorded: nothing to report")
    assets = [c.removesuffix("_value") for c in equity.columns if c.endswith("_value")]
    metrics, benchmark = _metrics(folder / SUMMARY, equity["equity"], ticks["lead"], records)
    return RunData(
        folder=folder,
        source=source,
        assets=assets,
        equity=equity,
        ticks=ticks,
        index=_index(decisions),
        decisions=decisions,
        followed=_followed(records),
        metrics=metrics,
        benchmark=benchmark | {"asset": benchmark.get("asset", lead)},
        lead=lead,
        skipped=skipped,
    )


def buy_and_hold(ticks: pd.DataFrame, equity: pd.Series) -> pd.Series:
    """The starting equity held in the lead asset, by day, over the equity's days."""
    prices = ticks["lead"].reindex(equity.index).ffill().dropna()
    if prices.empty:
        return prices
    return prices / prices.iloc[0] * float(equity.loc[prices.index[0]])


def _records(journal: Path, skipped: list[str]) -> list[dict[str, Any]]:
    def note(number: int, reason: str) -> None:
        skipped.append(f"line {number}: {reason}")

    try:
        return list(read_journal(journal, on_invalid=note))
    except OSError as exc:
        raise ReportError(f"{journal}: cannot read: {exc.strerror or exc}") from exc


def _followed(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    followed: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("event") in ("order", "fill") and record.get("decision_id"):
            followed.setdefault(str(record["decision_id"]), []).append(record)
    return followed


def _day(ts: Any) -> pd.Timestamp:
    """The day a tick closed: a tick at midnight UTC decides on the bars of the day before."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return (stamp - _ONE_DAY).normalize()


def _ticks(decisions: list[dict[str, Any]]) -> tuple[pd.DataFrame, str]:
    lead = next((a for d in decisions for a in (d.get("prices") or {})), "BTC")
    rows = []
    for d in decisions:
        targets = d.get("targets") or {}
        breakout = d.get("breakout") or {}
        rows.append(
            {
                "date": _day(d["ts"]),
                "state": breakout.get("state") or "unknown",
                "stage": targets.get("stage") or 0,
                "target_exposure": targets.get("budget") or 0.0,
                "action": d.get("action", ""),
                "lead": (d.get("prices") or {}).get(lead),
            }
        )
    frame = pd.DataFrame(rows).drop_duplicates("date", keep="last").set_index("date")
    frame["lead"] = pd.to_numeric(frame["lead"], errors="coerce")
    return frame.sort_index(), lead


def _index(decisions: list[dict[str, Any]]) -> pd.DataFrame:
    rows = {
        b["date"]: (b.get("close"), b.get("level"))
        for d in decisions
        if (b := d.get("breakout")) and b.get("date")
    }
    frame = pd.DataFrame(
        [(pd.Timestamp(day), close, level) for day, (close, level) in rows.items()],
        columns=["date", "close", "level"],
    ).set_index("date")
    return frame.sort_index().astype(float)


def _equity_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, parse_dates=["date"]).set_index("date")
    except (OSError, ValueError, KeyError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from exc
    values = [c for c in frame.columns if c.endswith("_value")]
    return frame[["equity", *values]].astype(float)


def _equity_store(folder: Path) -> pd.DataFrame:
    from agent.store import Store, StoreError

    try:
        with Store.open(folder) as store:
            history = store.equity_history()
    except StoreError as exc:
        raise ReportError(str(exc)) from exc
    rows = []
    for snap in history:
        prices = {a: p for a, p in (snap.prices or {}).items() if p is not None}
        holdings = snap.holdings or {}
        values = {f"{a}_value": (holdings.get(a) or 0.0) * p for a, p in prices.items()}
        # Valued after the tick's fills, as equity.csv is (the stored equity is the one the
        # decision saw, before its orders).
        equity = snap.equity if snap.cash is None else snap.cash + sum(values.values())
        row = {"date": _day(snap.tick_at), "equity": equity} | values
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["equity"])
    frame = pd.DataFrame(rows).drop_duplicates("date", keep="last").set_index("date")
    return frame.fillna(0.0).astype(float) if len(frame) else frame


def _equity_journal(decisions: list[dict[str, Any]]) -> pd.DataFrame:
    """Equity alone, as each decision recorded it: no holdings, so no exposure by asset."""
    rows = [{"date": _day(d["ts"]), "equity": d.get("equity")} for d in decisions]
    frame = pd.DataFrame(rows).drop_duplicates("date", keep="last").set_index("date")
    return frame.astype(float)


def _metrics(
    summary: Path, curve: pd.Series, lead: pd.Series, records: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """summary.json's metrics and benchmark; without one, the same numbers from the curves."""
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
            return dict(data["metrics"]), dict(data["benchmark"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{summary}: cannot read: {exc}") from exc
    frame = pd.DataFrame({"lead": lead})
    held = buy_and_hold(frame, curve)
    counts = {
        "orders": sum(r.get("event") == "order" for r in records),
        "fees": sum(float(r.get("fee") or 0.0) for r in records if r.get("event") == "fill"),
        "risk_clamps": sum(r.get("event") == "risk" for r in records),
    }
    return performance(curve) | counts, performance(held)
