"""Seeded sample bars with planted breakout scenarios, for demos, backtests and tests.

Ten years (2016-01-04 to 2025-12-31): IWM and SPY on NYSE sessions, five crypto assets on every
calendar day. Prices follow Brownian bridges between anchor points, so the story is fixed and the
seed only changes the noise, the exact breakout days and the sizes of the moves:

1. `clean` (Nov 2016): IWM clears the high it set on the first session, on heavy volume while
   leading SPY, and holds through the 91-day window; BTC rallies from about day 30, ETH from
   day 45, the altcoins from day 60.
2. `fails` (Aug/Sep 2018): a new high confirms, then IWM falls more than 5% under the level
   20-38 sessions later.
3. `clean` (Nov/Dec 2020): as 1, larger; crypto rallies again in the same order.
4. `crypto_falls` (Sep 2025): IWM confirms and holds; crypto peaks ~3 weeks later, then BTC
   falls about 35% (ETH and altcoins 40-50%) within three months.

How the detector is kept to exactly these episodes (default `BreakoutParams`): outside a
breakout, IWM closes are folded under the running all-time high (and, after an episode that did
not fail, above 96% of its level, so it is not failed after expiry); each episode's peak is one
anchored close inside its lag window, so it becomes the next level (re-arming needs a higher
one); the breakout day has 1.8-2.6x the median volume of the 50 sessions before it and the
IWM/SPY ratio is ramped up over the 30 sessions before it. NYSE early closes are thin sessions
(low volume) and are kept out of every confirmation sequence.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from agent.clock import exchange_calendar
from agent.marketdata.replay import symbol_file
from agent.ports import BAR_COLUMNS

VERSION = 1
START = pd.Timestamp("2016-01-04")
END = pd.Timestamp("2025-12-31")
INDEX, BENCHMARK = "IWM", "SPY"
CRYPTO = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD")
SYMBOLS = (INDEX, BENCHMARK, *CRYPTO)
MANIFEST = "sample.json"

_CAP = 0.003
"""Closes that must not make a new high stay this far (relative) under it."""
_FLOOR = 0.96
"""After an episode that should not fail, closes stay above this x its level (fail line 0.95)."""


@dataclass(frozen=True)
class PlantedScenario:
    kind: str
    """`clean`, `fails` or `crypto_falls`."""
    level: float
    """The prior all-time close the breakout clears (the detector's level)."""
    breakout: date
    """First close above the level (heavy volume, small caps leading)."""
    confirm_start: date
    confirm_end: date
    """The detector confirms on a session in [confirm_start, confirm_end]."""
    fail_start: date | None = None
    fail_end: date | None = None
    """`fails` only: the first close under level x 0.95 falls in [fail_start, fail_end]."""


@dataclass(frozen=True)
class SampleManifest:
    seed: int
    version: int
    start: date
    end: date
    symbols: tuple[str, ...]
    """Data symbols; the file of each is `symbol_file(symbol)`."""
    scenarios: tuple[PlantedScenario, ...]

    def to_json(self) -> str:
        def encode(value: object) -> object:
            return value.isoformat() if isinstance(value, date) else value

        data = asdict(self)
        data["scenarios"] = [{k: encode(v) for k, v in s.items()} for s in data["scenarios"]]
        data = {k: encode(v) for k, v in data.items()}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SampleManifest:
        data = json.loads(text)

        def day(value: str | None) -> date | None:
            return None if value is None else date.fromisoformat(value)

        scenarios = tuple(
            PlantedScenario(
                kind=s["kind"],
                level=s["level"],
                breakout=date.fromisoformat(s["breakout"]),
                confirm_start=date.fromisoformat(s["confirm_start"]),
                confirm_end=date.fromisoformat(s["confirm_end"]),
                fail_start=day(s["fail_start"]),
                fail_end=day(s["fail_end"]),
            )
            for s in data["scenarios"]
        )
        return cls(
            seed=data["seed"],
            version=data["version"],
            start=date.fromisoformat(data["start"]),
            end=date.fromisoformat(data["end"]),
            symbols=tuple(data["symbols"]),
            scenarios=scenarios,
        )


@dataclass(frozen=True)
class _Spec:
    kind: str
    nominal: str
    """Earliest breakout day; the seed adds 0-5 sessions."""
    rise: tuple[float, float]
    """Peak close in the lag window, as a multiple of the level (uniform range)."""
    peak_after: tuple[int, int]
    """Sessions from confirmation to that peak."""
    btc_pivot: float | None = None
    """BTC close on the confirmation day; None: crypto just follows its macro path."""
    crypto_days: tuple[tuple[int, ...], ...] = ()
    """Anchor days (calendar days from confirmation) for BTC, ETH and the altcoins ..."""
    crypto: tuple[tuple[float, ...], ...] = ()
    """... and the closes on those days, as multiples of each asset's pivot."""


_RALLY_DAYS = (
    (-45, -20, 0, 15, 30, 40, 50, 60, 75, 90, 100),  # BTC: up from day ~30
    (-45, -20, 0, 15, 30, 45, 55, 65, 80, 95, 110),  # ETH: from day ~45
    (-45, -20, 0, 15, 30, 45, 60, 70, 80, 95, 110, 125),  # altcoins: from day ~60
)
_FALL_DAYS = ((-45, -20, 0, 10, 22, 35, 45, 55, 70, 85, 100),) * 3
_SPECS = (
    _Spec(
        "clean",
        "2016-11-09",
        rise=(0.12, 0.16),
        peak_after=(25, 40),
        btc_pivot=710.0,
        crypto_days=_RALLY_DAYS,
        crypto=(
            (0.9, 0.95, 1.0, 1.02, 1.06, 1.18, 1.32, 1.42, 1.5, 1.58, 1.62),
            (0.95, 0.98, 1.0, 0.99, 1.0, 1.04, 1.15, 1.35, 1.6, 1.85, 2.1),
            (1.0, 0.98, 1.0, 0.98, 0.97, 0.97, 1.0, 1.1, 1.3, 1.6, 2.0, 2.3),
        ),
    ),
    _Spec("fails", "2018-08-27", rise=(0.045, 0.06), peak_after=(5, 10)),
    _Spec(
        "clean",
        "2020-11-30",
        rise=(0.25, 0.32),
        peak_after=(40, 52),
        btc_pivot=18500.0,
        crypto_days=_RALLY_DAYS,
        crypto=(
            (0.72, 0.85, 1.0, 1.03, 1.08, 1.25, 1.55, 1.8, 1.95, 2.2, 2.3),
            (0.8, 0.9, 1.0, 1.0, 1.02, 1.06, 1.25, 1.6, 2.0, 2.4, 2.8),
            (0.85, 0.92, 1.0, 0.98, 0.98, 0.99, 1.03, 1.2, 1.5, 2.0, 2.6, 3.2),
        ),
    ),
    _Spec(
        "crypto_falls",
        "2025-09-10",
        rise=(0.05, 0.08),
        peak_after=(20, 35),
        btc_pivot=115000.0,
        crypto_days=_FALL_DAYS,
        crypto=(
            (0.97, 0.98, 1.0, 1.04, 1.07, 0.94, 0.88, 0.84, 0.71, 0.66, 0.72),
            (0.85, 0.95, 1.0, 1.03, 1.02, 0.88, 0.8, 0.74, 0.62, 0.57, 0.62),
            (0.9, 0.97, 1.0, 1.02, 1.0, 0.82, 0.74, 0.68, 0.56, 0.5, 0.55),
        ),
    ),
)

# IWM between breakouts: (date, multiple, of what): "H" is the all-time high so far, "L" the level
# of the last episode. Every value sits inside the band the fold keeps the path in.
_IWM_MACRO = (
    ("2016-02-11", 0.80, "H"),
    ("2016-04-20", 0.92, "H"),
    ("2016-06-27", 0.86, "H"),
    ("2016-08-15", 0.95, "H"),
    ("2017-04-13", 0.93, "H"),
    ("2017-08-18", 0.91, "H"),
    ("2017-12-29", 0.97, "H"),
    ("2018-02-08", 0.90, "H"),
    ("2018-05-01", 0.95, "H"),
    ("2018-12-24", 0.76, "H"),
    ("2019-04-30", 0.93, "H"),
    ("2019-08-23", 0.84, "H"),
    ("2019-12-27", 0.95, "H"),
    ("2020-02-20", 0.96, "H"),
    ("2020-03-18", 0.58, "H"),
    ("2020-06-08", 0.86, "H"),
    ("2020-08-10", 0.90, "H"),
    ("2021-05-12", 0.90, "H"),
    ("2021-11-08", 0.975, "H"),
    ("2022-06-16", 1.02, "L"),
    ("2022-08-16", 0.90, "H"),
    ("2022-10-13", 1.01, "L"),
    ("2023-02-02", 0.88, "H"),
    ("2023-05-04", 1.03, "L"),
    ("2023-07-31", 0.88, "H"),
    ("2023-10-27", 1.005, "L"),
    ("2023-12-27", 0.93, "H"),
    ("2024-04-18", 0.88, "H"),
    ("2024-07-16", 0.955, "H"),
    ("2024-08-05", 0.89, "H"),
    ("2024-11-25", 0.975, "H"),
    ("2025-01-10", 0.89, "H"),
    ("2025-04-08", 1.01, "L"),
    ("2025-06-30", 0.93, "H"),
    ("2025-11-20", 0.945, "H"),
    ("2025-12-31", 0.97, "H"),
)
_IWM_VOL = (  # (from, to, daily sigma of log closes); 0.011 elsewhere
    ("2016-01-04", "2016-03-01", 0.016),
    ("2018-10-01", "2018-12-31", 0.017),
    ("2020-02-24", "2020-05-01", 0.035),
    ("2022-01-01", "2022-12-31", 0.016),
    ("2025-04-01", "2025-04-30", 0.025),
)
_BTC_MACRO = (
    ("2016-01-04", 430),
    ("2016-03-01", 420),
    ("2016-06-17", 750),
    ("2016-08-02", 540),
    ("2017-06-11", 2900),
    ("2017-09-01", 4900),
    ("2017-09-15", 3200),
    ("2017-12-17", 19000),
    ("2018-02-06", 6900),
    ("2018-03-05", 11500),
    ("2018-04-06", 6600),
    ("2018-05-05", 9800),
    ("2018-06-29", 5900),
    ("2018-07-25", 8200),
    ("2018-09-10", 6300),
    ("2018-11-25", 3900),
    ("2018-12-15", 3250),
    ("2019-04-02", 4900),
    ("2019-06-26", 12900),
    ("2019-09-25", 8400),
    ("2019-12-17", 6650),
    ("2020-02-12", 10300),
    ("2020-03-12", 4900),
    ("2020-05-08", 9900),
    ("2020-07-27", 11000),
    ("2020-09-08", 10100),
    ("2021-05-19", 37000),
    ("2021-07-20", 29800),
    ("2021-11-08", 67500),
    ("2022-01-24", 36600),
    ("2022-03-29", 47400),
    ("2022-06-18", 19000),
    ("2022-11-21", 15800),
    ("2023-04-13", 30400),
    ("2023-06-15", 25100),
    ("2023-09-11", 25100),
    ("2024-03-13", 73000),
    ("2024-08-05", 54000),
    ("2024-09-06", 53900),
    ("2024-12-17", 106000),
    ("2025-04-08", 76300),
    ("2025-05-22", 111600),
    ("2025-06-22", 101000),
    ("2025-07-14", 120000),
    ("2025-12-31", 87000),
)


@dataclass(frozen=True)
class _Coin:
    start_price: float
    beta: float
    """Macro path: start_price x (BTC / BTC's start) ** beta."""
    sigma: float
    rho: float
    """Correlation of daily shocks with BTC's."""
    volume: float
    """USD volume at the start price."""
    group: int
    """Which scenario template: 0 BTC, 1 ETH, 2 altcoins."""


_COINS = {
    "BTC-USD": _Coin(430.0, 1.0, 0.032, 1.0, 80e6, 0),
    "ETH-USD": _Coin(0.95, 1.51, 0.042, 0.8, 1.5e6, 1),
    "SOL-USD": _Coin(0.4, 1.15, 0.055, 0.65, 4e5, 2),
    "XRP-USD": _Coin(0.0065, 1.1, 0.05, 0.6, 6e5, 2),
    "ADA-USD": _Coin(0.03, 0.6, 0.052, 0.65, 3e5, 2),
}


def generate(seed: int) -> tuple[dict[str, pd.DataFrame], SampleManifest]:
    """The bars of every symbol, as `load_bars` reads them back, and the manifest."""
    sessions, early = _nyse_sessions()
    equities, scenarios, confirmed = _equities(sessions, early, _rng(seed, "equities"))
    bars = {**equities, **_crypto(confirmed, _rng(seed, "crypto"))}
    manifest = SampleManifest(
        seed=seed,
        version=VERSION,
        start=START.date(),
        end=END.date(),
        symbols=SYMBOLS,
        scenarios=tuple(scenarios),
    )
    return {symbol: _rounded(bars[symbol]) for symbol in SYMBOLS}, manifest


def write_sample(out: Path, seed: int) -> SampleManifest:
    """Write `SYMBOL.csv` for every symbol and `sample.json` into `out`; same seed, same bytes."""
    bars, manifest = generate(seed)
    out.mkdir(parents=True, exist_ok=True)
    for symbol, frame in bars.items():
        text = frame.assign(volume=frame["volume"].astype("int64")).to_csv(
            float_format=f"%.{_decimals(frame)}f", date_format="%Y-%m-%d", lineterminator="\n"
        )
        (out / symbol_file(symbol)).write_text(text, encoding="utf-8")
    (out / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def load_manifest(folder: Path) -> SampleManifest:
    return SampleManifest.from_json((folder / MANIFEST).read_text(encoding="utf-8"))


def _rng(seed: int, stream: str) -> np.random.Generator:
    """Independent streams, so changing one series never reshuffles another."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _nyse_sessions() -> tuple[pd.DatetimeIndex, np.ndarray]:
    calendar = exchange_calendar()
    sessions = calendar.sessions_in_range(START, END)
    early = sessions.isin(calendar.early_closes)
    return pd.DatetimeIndex(sessions.to_numpy(), name="date").as_unit("ns"), early


@dataclass
class _Plan:
    """What the IWM and IWM/SPY paths must pass through, session by session."""

    anchors: dict[int, float]
    """IWM closes the path passes through exactly."""
    lo: np.ndarray
    hi: np.ndarray
    """Bands the other closes are folded into (0 and inf: none)."""
    ratio: dict[int, float]
    """IWM/SPY ratios the benchmark path passes through."""
    volume: dict[int, float]
    """IWM volume on breakout days, as a multiple of the median of the 50 sessions before."""


def _equities(
    sessions: pd.DatetimeIndex, early: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, pd.DataFrame], list[PlantedScenario], list[pd.Timestamp]]:
    n = len(sessions)
    plan, scenarios, confirmed = _plan(sessions, early, rng)
    sigma = np.full(n, 0.011)
    for first, last, value in _IWM_VOL:
        sigma[(sessions >= first) & (sessions <= last)] = value
    sigma[early] *= 0.4
    shocks = sigma * rng.standard_normal(n)
    with np.errstate(divide="ignore"):
        log_close = _fold(_bridge(plan.anchors, shocks), np.log(plan.lo), np.log(plan.hi))
    log_ratio = _bridge(plan.ratio, 0.35 * shocks + 0.0035 * rng.standard_normal(n))

    iwm = _ohlcv(sessions, np.exp(log_close), sigma, 28e6, early, rng)
    spy = _ohlcv(sessions, np.exp(log_close - log_ratio), 0.7 * sigma, 75e6, early, rng)
    volume = iwm["volume"].to_numpy().copy()
    for i, multiple in sorted(plan.volume.items()):
        volume[i] = np.round(np.median(volume[i - 50 : i]) * multiple)
    iwm["volume"] = volume
    scenarios = [replace(s, level=float(np.round(s.level, _decimals(iwm)))) for s in scenarios]
    return {INDEX: iwm, BENCHMARK: spy}, scenarios, confirmed


def _plan(
    sessions: pd.DatetimeIndex, early: np.ndarray, rng: np.random.Generator
) -> tuple[_Plan, list[PlantedScenario], list[pd.Timestamp]]:
    n = len(sessions)
    trend = 0.5 * 0.5 ** (np.arange(n) / n)  # IWM/SPY drifts from 0.5 to 0.25
    plan = _Plan(
        anchors={0: 100.0 * float(np.exp(rng.normal(0.0, 0.03)))},
        lo=np.zeros(n),
        hi=np.full(n, np.inf),
        ratio={0: trend[0], n - 1: trend[-1]},
        volume={},
    )
    scenarios: list[PlantedScenario] = []
    confirmed: list[pd.Timestamp] = []
    high = level = plan.anchors[0]  # the all-time high so far; the last episode's level
    floor = 0.0
    start = 1  # first session whose band is not set yet
    macro = [(_at(sessions, d), m, ref) for d, m, ref in _IWM_MACRO]
    for spec in _SPECS:
        b = _breakout_session(sessions, early, spec.nominal, rng)
        plan.lo[start:b], plan.hi[start:b] = floor, high * (1 - _CAP)
        _macro(plan.anchors, macro, start, b - 45, high, level)
        plan.anchors[b - 40] = high * rng.uniform(0.945, 0.96)
        plan.anchors[b - 20] = high * rng.uniform(0.96, 0.975)
        plan.anchors[b - 1] = high * (1 - rng.uniform(0.006, 0.015))
        level = high
        pattern = _confirmation_pattern(rng)
        plan.anchors.update({b + k: level * multiple for k, multiple in enumerate(pattern)})
        c = b + len(pattern) - 1
        plan.volume.update({b: rng.uniform(1.8, 2.6), b + 1: rng.uniform(1.2, 1.7)})
        plan.volume.update({b + 2: rng.uniform(1.0, 1.4), b + 3: rng.uniform(0.9, 1.3)})
        # small caps lead into the breakout: the ratio climbs 3.5% in 30 sessions, then 1.2%
        plan.ratio.update({b - 30: trend[b - 30], b - 1: trend[b - 1] * 1.035})
        plan.ratio.update({b: trend[b] * 1.047, c + 20: trend[c + 20] * 1.05})

        peak = c + int(rng.integers(*spec.peak_after, endpoint=True))
        high = plan.anchors[peak] = level * (1 + rng.uniform(*spec.rise))
        floor = level * (0.955 if spec.kind == "fails" else _FLOOR)
        plan.lo[c + 1 : peak], plan.hi[c + 1 : peak] = floor, high * (1 - _CAP)
        scenario = PlantedScenario(
            kind=spec.kind,
            level=level,
            breakout=sessions[b].date(),
            confirm_start=sessions[b].date(),
            confirm_end=sessions[b + 4].date(),
        )
        start = peak + 1
        if spec.kind == "fails":
            fail_start, fail_end = c + 20, c + 38
            plan.lo[start:fail_start], plan.hi[start:fail_end] = floor, high * (1 - _CAP)
            plan.anchors[fail_end] = level * rng.uniform(0.9, 0.92)
            scenario = replace(
                scenario,
                fail_start=sessions[fail_start].date(),
                fail_end=sessions[fail_end].date(),
            )
            floor, start = 0.0, fail_end + 1
        scenarios.append(scenario)
        confirmed.append(sessions[c])
    plan.lo[start:], plan.hi[start:] = floor, high * (1 - _CAP)
    _macro(plan.anchors, macro, start, n, high, level)
    plan.anchors.setdefault(n - 1, high * 0.97)
    return plan, scenarios, confirmed


def _at(sessions: pd.DatetimeIndex, day: str) -> int:
    return int(sessions.searchsorted(pd.Timestamp(day)))


def _breakout_session(
    sessions: pd.DatetimeIndex, early: np.ndarray, nominal: str, rng: np.random.Generator
) -> int:
    """The nominal session plus 0-5, moved on until no early close is near the confirmation."""
    b = _at(sessions, nominal) + int(rng.integers(0, 6))
    while early[b - 1 : b + 6].any():
        b += 1
    return b


def _confirmation_pattern(rng: np.random.Generator) -> list[float]:
    """Closes from the breakout day to confirmation, as multiples of the level."""
    if rng.random() < 0.5:  # three closes in a row above the level
        return [1 + rng.uniform(0.012, 0.022), 1 + rng.uniform(0.015, 0.03), 1.035]
    # a retest: one close back under the level (far above the fail line), then two above
    return [
        1 + rng.uniform(0.012, 0.02),
        1 - rng.uniform(0.003, 0.012),
        1 + rng.uniform(0.008, 0.02),
        1.03,
    ]


def _macro(
    anchors: dict[int, float],
    bounds: list[tuple[int, float, str]],
    start: int,
    stop: int,
    high: float,
    level: float,
) -> None:
    for i, multiple, ref in bounds:
        if start + 5 <= i < stop - 5:
            anchors[i] = multiple * (high if ref == "H" else level)


def _bridge(anchors: dict[int, float], shocks: np.ndarray) -> np.ndarray:
    """Log path through log(anchors) whose steps are `shocks` plus a straight drift."""
    index = np.array(sorted(anchors))
    values = np.log(np.array([anchors[i] for i in index]))
    t = np.arange(len(shocks))
    walk = np.cumsum(shocks)
    return np.interp(t, index, values) + walk - np.interp(t, index, walk[index])


def _fold(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect `x` into [lo, hi] (either may be infinite); continuous, identity inside."""
    one_sided = np.where(x > hi, 2 * hi - x, x)
    one_sided = np.where(one_sided < lo, 2 * lo - one_sided, one_sided)
    both = np.isfinite(lo) & np.isfinite(hi)
    width = np.where(both, hi - lo, 1.0)
    y = np.mod(x - np.where(both, lo, 0.0), 2 * width)
    return np.where(both, lo + np.where(y > width, 2 * width - y, y), one_sided)


def _ohlcv(
    dates: pd.DatetimeIndex,
    close: np.ndarray,
    sigma: np.ndarray,
    base_volume: float,
    early: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(close)
    previous = np.concatenate(([close[0]], close[:-1]))
    open_ = previous * np.exp(rng.normal(0.0, 0.25, n) * sigma)
    wick = np.abs(rng.normal(0.0, 0.5, (2, n))) * sigma
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    move = np.abs(np.log(close / previous))
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.02, n)) * 0.5)
    drift /= np.exp(np.mean(np.log(drift)))
    volume = base_volume * drift * np.exp(rng.normal(0.0, 0.25, n)) * (1 + 12 * move)
    volume[early] = base_volume * rng.uniform(0.25, 0.45, int(early.sum()))
    return _frame(dates, open_, high, low, close, volume)


def _crypto(confirmed: list[pd.Timestamp], rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    days = pd.DatetimeIndex(pd.date_range(START, END, unit="ns").to_numpy(), name="date")
    n = len(days)
    common = rng.standard_normal(n)
    btc0 = _BTC_MACRO[0][1]
    out = {}
    for symbol, coin in _COINS.items():
        anchors: dict[int, float] = {}
        for day, btc in _BTC_MACRO:
            anchors[_day(days, day)] = coin.start_price * (btc / btc0) ** coin.beta
        for spec, confirm in zip(_SPECS, confirmed, strict=True):
            if spec.btc_pivot is None:
                continue
            offsets = spec.crypto_days[coin.group]
            c = _day(days, confirm)
            first, last = c + offsets[0], c + offsets[-1]
            anchors = {i: v for i, v in anchors.items() if not first - 10 <= i <= last + 10}
            pivot = coin.start_price * (spec.btc_pivot / btc0) ** coin.beta
            pivot *= float(np.exp(rng.normal(0.0, 0.05)))
            for offset, multiple in zip(offsets, spec.crypto[coin.group], strict=True):
                if 0 <= c + offset < n:
                    anchors[c + offset] = pivot * multiple
        anchors.setdefault(n - 1, coin.start_price * (_BTC_MACRO[-1][1] / btc0) ** coin.beta)
        own = rng.standard_normal(n)
        shocks = coin.sigma * (coin.rho * common + np.sqrt(1 - coin.rho**2) * own)
        close = np.exp(_bridge(anchors, shocks))
        previous = np.concatenate(([close[0] * np.exp(rng.normal(0.0, coin.sigma))], close[:-1]))
        wick = np.abs(rng.normal(0.0, 0.6, (2, n))) * coin.sigma
        high = np.maximum(previous, close) * np.exp(wick[0])
        low = np.minimum(previous, close) * np.exp(-wick[1])
        move = np.abs(np.log(close / previous))
        volume = (
            coin.volume
            * (close / coin.start_price) ** 1.1
            * np.exp(rng.normal(0.0, 0.35, n))
            * (1 + 4 * move)
        )
        out[symbol] = _frame(days, previous, high, low, close, volume)
    return out


def _day(days: pd.DatetimeIndex, day: str | pd.Timestamp) -> int:
    return int(days.searchsorted(pd.Timestamp(day)))


def _frame(
    dates: pd.DatetimeIndex,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> pd.DataFrame:
    columns = (open_, high, low, close, np.maximum(np.round(volume), 1.0))
    return pd.DataFrame(dict(zip(BAR_COLUMNS, columns, strict=True)), index=dates)


def _decimals(frame: pd.DataFrame) -> int:
    """Enough decimals for six significant digits on the lowest price of the file."""
    return max(2, 5 - int(np.floor(np.log10(frame["low"].min()))))


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    decimals = _decimals(frame)
    prices = list(BAR_COLUMNS[:4])
    return frame.assign(**{c: np.round(frame[c].to_numpy(), decimals) for c in prices})
