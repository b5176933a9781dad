"""Assembling a run from its config: the data source, the paper venue, the primed signal, and the
run folder's files. Shared by `backtest` and `run`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from agent.config import Config
from agent.marketdata.replay import ReplayData
from agent.marketdata.sample import write_sample
from agent.ports import Market
from agent.signal import BreakoutSignal, SignalInputs
from agent.store import Store
from agent.venue.paper import PaperVenue

SAMPLE_MANIFEST = "sample.json"
OUTPUTS = (
    "decisions.jsonl",
    "equity.csv",
    "summary.json",
    "state.sqlite",
    "state.sqlite-wal",
    "state.sqlite-shm",
)


@dataclass(frozen=True)
class RunFiles:
    """A run folder: the journal beside the run's other outputs."""

    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "decisions.jsonl"

    def open_store(self, run_id: str, config_hash: str, mode: str, started_at: datetime) -> Store:
        """The run's state store (`state.sqlite`), begun for this run."""
        store = Store.open(self.root)
        store.begin_run(run_id, config_hash, mode, started_at)
        return store

    @classmethod
    def create(cls, root: Path, *, keep_previous: bool = False) -> RunFiles:
        """Make the folder for a new run. Outputs of an earlier run written there are removed,
        or with `keep_previous` moved into `previous/<time of their journal>/`."""
        root.mkdir(parents=True, exist_ok=True)
        files = cls(root)
        outputs = [root / name for name in OUTPUTS if (root / name).exists()]
        if keep_previous and files.journal.exists():
            stamp = datetime.fromtimestamp(files.journal.stat().st_mtime, UTC)
            archive = root / "previous" / f"{stamp:%Y%m%dT%H%M%S}"
            archive.mkdir(parents=True, exist_ok=True)
            for path in outputs:
                path.rename(archive / path.name)
        for path in outputs:
            path.unlink(missing_ok=True)
        return files


def open_market_data(config: Config) -> ReplayData:
    """Replayed CSV files, each read and checked up front (a bad bar stops the run before it
    starts); for `source = "sample"` generated first when absent or seeded anew."""
    folder = config.data.dir
    if config.data.source == "sample":
        ensure_sample(folder, config.data.seed)
    data = ReplayData(folder)
    settings = config.data
    symbols = [settings.index, settings.index_price, settings.benchmark]
    symbols += [settings.crypto_symbol.format(asset=asset) for asset in config.staging.assets]
    for symbol in dict.fromkeys(s for s in symbols if s):
        data.full_history(symbol)  # every file read and checked before the first tick
    return data


def ensure_sample(folder: Path, seed: int) -> bool:
    """Write the sample data unless `folder` already holds it for `seed`; True when written."""
    manifest = folder / SAMPLE_MANIFEST
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("seed") == seed:
                return False
        except (OSError, ValueError):
            pass
    write_sample(folder, seed)
    return True


def venue_markets(config: Config) -> dict[str, Market]:
    """The paper venue's markets, one per asset of the schedule, from `[venue]`."""
    venue = config.venue
    markets = {}
    for asset in config.staging.assets:
        rules = venue.market(asset)
        symbol = f"{asset}/{venue.quote}"
        markets[symbol] = Market(
            symbol=symbol,
            base=asset,
            quote=venue.quote,
            amount_step=rules.amount_step,
            min_amount=rules.min_amount,
            min_cost=rules.min_cost,
            fee_rate=venue.fee_bps / 10_000,
        )
    return markets


def paper_venue(config: Config, data: ReplayData) -> PaperVenue:
    """The paper venue filling at the replayed bars of each market's base asset."""
    markets = venue_markets(config)

    def bars(symbol: str) -> pd.DataFrame:
        base = markets[symbol].base
        return data.full_history(config.data.crypto_symbol.format(asset=base))

    return PaperVenue(
        markets,
        bars,
        quote=config.venue.quote,
        initial_cash=config.venue.initial_cash,
        slippage_bps=config.venue.slippage_bps,
    )


def prime_signal(config: Config, data: ReplayData) -> BreakoutSignal:
    """A signal primed on the whole replayed history; each tick still reads only its past."""
    settings = config.data
    index = data.full_history(settings.index)
    highs = data.full_history(settings.index_price) if settings.index_price else index
    benchmark = data.full_history(settings.benchmark)
    signal = BreakoutSignal(config.signal)
    signal.prime(SignalInputs(highs["close"], index["volume"], benchmark["close"]))
    return signal
