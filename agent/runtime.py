"""Assembling a run from its config: the data source, the paper venue, the primed signal, and the
run folder's files. Shared by `backtest` and `run`."""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from agent import __version__
from agent.config import Config
from agent.marketdata.replay import ReplayData
from agent.marketdata.sample import write_sample
from agent.ports import Market
from agent.signal import BreakoutSignal, SignalInputs
from agent.store import STATE_FILE, RunRecord, Store
from agent.venue.paper import PaperVenue
from risk.journal import Journal

SAMPLE_MANIFEST = "sample.json"
HEARTBEAT_FILE = "heartbeat.json"
OUTPUTS = (
    HEARTBEAT_FILE,
    "decisions.jsonl",
    "equity.csv",
    "summary.json",
    "state.sqlite",
    "state.sqlite-wal",
    "state.sqlite-shm",
)


_MODE_NAMES = {"run": "replayed-data", "testnet": "testnet"}
_FRAMES: weakref.WeakKeyDictionary[ReplayData, dict[str, pd.DataFrame]]
_FRAMES = weakref.WeakKeyDictionary()
"""Per replayed data: the full history of each symbol a paper venue has asked for."""


class RunFolderError(Exception):
    """A run folder that cannot be resumed as asked; the message is one line saying why."""


@dataclass(frozen=True)
class OpenedRun:
    """A run folder's state store, begun for a new run or resumed for another session."""

    store: Store
    run_id: str
    session: int
    """1 for a new run; each resume adds one."""
    resumed: RunRecord | None
    """The run as the store held it before this session; None for a new run."""
    config_change: tuple[str, str] | None
    """(old hash, new hash) when the run resumes with a changed config."""

    def journal_start(
        self, journal: Journal, now: datetime, config: Config, mode: str, last: datetime | None
    ) -> None:
        """This session's `start` record (`last`: the tick the run had committed before it),
        then `config_change` when it resumes with a changed config."""
        journal.write(
            "start",
            now,
            config_hash=config.hash(),
            mode=mode,
            version=__version__,
            session=self.session,
            resumed_after=last,
        )
        if self.config_change is not None:
            old, new = self.config_change
            journal.write("config_change", now, old_hash=old, new_hash=new)


@dataclass(frozen=True)
class RunFiles:
    """A run folder: the journal beside the run's other outputs."""

    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "decisions.jsonl"

    @property
    def heartbeat(self) -> Path:
        return self.root / HEARTBEAT_FILE

    def has_run(self) -> bool:
        return (self.root / STATE_FILE).exists()

    def open_run(
        self,
        config: Config,
        mode: str,
        now: datetime,
        *,
        run_id: str,
        accept_config_change: bool = False,
    ) -> OpenedRun:
        """Begin a new run in the folder's state store, or resume the one it holds: the same
        mode, and the same config unless `accept_config_change` (the change is recorded)."""
        store = Store.open(self.root)
        try:
            return self._open_run(store, config, mode, now, run_id, accept_config_change)
        except BaseException:
            store.close()
            raise

    def _open_run(
        self,
        store: Store,
        config: Config,
        mode: str,
        now: datetime,
        run_id: str,
        accept_config_change: bool,
    ) -> OpenedRun:
        run, new_hash = store.run(), config.hash()
        if run is None:
            store.begin_run(run_id, new_hash, mode, now, __version__)
            return OpenedRun(store, run_id, 1, None, None)
        if run.mode != mode:
            held, asked = _MODE_NAMES.get(run.mode, run.mode), _MODE_NAMES.get(mode, mode)
            raise RunFolderError(
                f"{self.root} holds a {held} run, which a {asked} config cannot resume; "
                "use another --run-dir, or --fresh to set it aside and start anew"
            )
        change = None
        if run.config_hash != new_hash:
            if not accept_config_change:
                raise RunFolderError(
                    f"{self.root}: the run was started with config {run.config_hash[:12]}, this "
                    f"config is {new_hash[:12]}; pass --accept-config-change to resume with it, "
                    "or --fresh to set the run aside and start anew"
                )
            store.set_config_hash(new_hash, now)
            change = (run.config_hash, new_hash)
        session = store.begin_session(now, new_hash, __version__)
        return OpenedRun(store, run.run_id, session, run, change)

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
    """The paper venue filling at the replayed bars of each market's base asset. Every venue on
    the same data gets the same frame per symbol, which the venue converts once (a sweep builds
    one venue per point)."""
    markets = venue_markets(config)
    frames = _FRAMES.setdefault(data, {})

    def bars(symbol: str) -> pd.DataFrame:
        name = config.data.crypto_symbol.format(asset=markets[symbol].base)
        frame = frames.get(name)
        if frame is None:
            frame = frames[name] = data.full_history(name)
        return frame

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
