"""Stage schedule: target crypto weights for one day of a breakout episode.

The schedule walks down the risk curve: each stage, counted in calendar days from confirmation,
raises the share of the crypto budget in use and may add assets (BTC first, then ETH, then
altcoins). Within a stage every active asset gets its configured share of the stage's budget,
never more than its own share of the full budget. Every asset also passes its own trend gate
(close above its `trend_window`-day mean): the lag thesis has failed in real history, and when
crypto does not follow, the schedule stands aside instead of averaging down.

After the lag window the episode holds, tapers or exits (`after_window`). After a failure the
weights step down to zero in `exit_steps` steps, `exit_step_days` apart, and never rise again in
that episode: an asset whose gate fails on the last session before the failure, or on any day
since, stays at zero.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from strategies.breakout import BreakoutDay
from strategies.column import DailyColumn
from strategies.params import ParamError, require_fraction, require_positive


class AfterWindow(enum.StrEnum):
    HOLD = "hold"
    TAPER = "taper"
    EXIT = "exit"


class Phase(enum.StrEnum):
    FLAT = "flat"
    BUILDING = "building"
    AFTER_WINDOW = "after_window"
    EXITING = "exiting"


@dataclass(frozen=True)
class Stage:
    day: int
    """Calendar days after confirmation from which this stage applies."""
    budget: float
    """Fraction of the crypto budget in use from this stage on."""
    add: tuple[str, ...] = ()
    """Assets that join the schedule at this stage."""


DEFAULT_SHARES: dict[str, float] = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.1, "XRP": 0.1}
DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage(day=0, budget=0.25, add=("BTC",)),
    Stage(day=30, budget=0.50, add=("ETH",)),
    Stage(day=60, budget=0.75, add=("SOL", "XRP")),
    Stage(day=90, budget=1.00),
)


@dataclass(frozen=True)
class StagingParams:
    crypto_budget: float = 0.5
    """Fraction of equity the full schedule puts into crypto."""
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    """Each asset's share of the crypto budget; an asset never holds more than its share."""
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    """The schedule, in order of `day`."""
    trend_window: int = 50
    """An asset trades only while its close is above its mean over this many days."""
    after_window: AfterWindow = AfterWindow.TAPER
    """At the end of the lag window: hold the last stage, taper to zero, or exit at once."""
    taper_days: int = 30
    """Calendar days over which `taper` reaches zero."""
    exit_steps: int = 2
    """Steps from the pre-failure weights down to zero after a failure (1 = exit at once)."""
    exit_step_days: int = 3
    """Calendar days between those steps."""

    def __post_init__(self) -> None:
        require_fraction("crypto_budget", self.crypto_budget, allow_zero=False)
        for key in ("trend_window", "taper_days", "exit_steps", "exit_step_days"):
            require_positive(key, getattr(self, key))
        for asset, share in self.shares.items():
            require_fraction(f"shares.{asset}", share, allow_zero=False)
        if sum(self.shares.values()) > 1 + 1e-9:
            raise ParamError("shares", f"must sum to at most 1, got {sum(self.shares.values()):g}")
        self._check_stages()

    def _check_stages(self) -> None:
        if not self.stages:
            raise ParamError("stages", "at least one stage is needed")
        added: set[str] = set()
        for n, (before, stage) in enumerate(zip((None, *self.stages), self.stages, strict=False)):
            key = f"stages[{n}]"
            require_fraction(f"{key}.budget", stage.budget, allow_zero=False)
            if stage.day < 0:
                raise ParamError(f"{key}.day", f"must be >= 0, got {stage.day}")
            if before is not None and stage.day <= before.day:
                raise ParamError(f"{key}.day", f"must come after the day {before.day} before it")
            if before is not None and stage.budget < before.budget:
                raise ParamError(
                    f"{key}.budget",
                    f"stage budgets must not decrease ({stage.budget} after {before.budget})",
                )
            for asset in stage.add:
                if asset not in self.shares:
                    raise ParamError(f"{key}.add", f"{asset} has no entry in shares")
                if asset in added:
                    raise ParamError(f"{key}.add", f"{asset} is already added by an earlier stage")
                added.add(asset)
        unused = sorted(set(self.shares) - added)
        if unused:
            raise ParamError("shares", f"no stage adds {', '.join(unused)}")

    @cached_property
    def assets(self) -> tuple[str, ...]:
        """Every asset of the schedule, in the order the stages add them."""
        return tuple(asset for stage in self.stages for asset in stage.add)


@dataclass(frozen=True)
class TrendGate:
    close: float
    mean: float
    passed: bool


@dataclass(frozen=True)
class Targets:
    """What the schedule wants today, with the numbers behind it."""

    weights: dict[str, float]
    """Fraction of equity per asset; every asset of the schedule is present."""
    stage: int
    """1, 2, ... for the stage in force; 0 when none is: before the first stage, and once an exit
    or the end of a lag window has brought the budget to zero."""
    budget: float
    """Fraction of equity the schedule allows in crypto today (the per-stage cap)."""
    phase: Phase
    gates: dict[str, TrendGate]
    reason: str

    @property
    def settled(self) -> bool:
        """True when the schedule wants nothing today and will want nothing on any later day of
        the same breakout episode (the same confirmed, failed, pre-failure and expiry dates),
        whatever the closes: there is no confirmed breakout, or an exit or an ended lag window has
        brought the budget to zero. The stage is then fixed and the multiplier can only fall, so
        the weights stay zero and the stage and budget stay as they are."""
        if self.phase is Phase.FLAT:
            return True
        return self.budget == 0 and self.phase in (Phase.EXITING, Phase.AFTER_WINDOW)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "stage": self.stage,
            "budget": self.budget,
            "phase": self.phase.value,
            "gates": {a: g.__dict__ for a, g in self.gates.items()},
            "reason": self.reason,
        }


def targets(
    day: BreakoutDay,
    closes: Mapping[str, pd.Series | DailyColumn],
    params: StagingParams,
    today: pd.Timestamp | None = None,
) -> Targets:
    """Target weights for `today`, from the breakout evidence and each asset's daily closes.

    `closes` holds, per asset, completed daily closes up to the decision (the caller cuts off
    anything later); a missing or too short series fails that asset's gate. `today` is the day
    decided for (default: the session of `day`); crypto trades on days equities do not, and the
    schedule counts calendar days.
    """
    today = day.date if today is None else today
    gates = {asset: _gate(closes.get(asset), params.trend_window) for asset in params.assets}
    if day.confirmed_date is None:
        return _flat(params, gates, "no confirmed breakout")

    if day.failed_date is not None:
        assert day.prefail_date is not None
        stage = _stage_on(day, day.prefail_date, params)
        before = _phase_multiplier(day, day.prefail_date, params)
        steps_taken = (today - day.failed_date).days // params.exit_step_days + 1
        multiplier = before * max(0.0, 1 - steps_taken / params.exit_steps)
        held = dict.fromkeys(params.assets, False)
        if stage > 0 and multiplier > 0:
            held = {a: _held_since(closes.get(a), day.prefail_date, params) for a in params.assets}
        step = min(steps_taken, params.exit_steps)
        reason = (
            f"breakout failed on {day.failed_date.date()}: "
            f"step {step} of {params.exit_steps} down to zero"
        )
        return _build(params, stage, multiplier, held, gates, Phase.EXITING, reason)

    if day.expired_date is not None:
        stage = _stage_on(day, today, params)
        multiplier = _phase_multiplier(day, today, params)
        passed = {asset: gate.passed for asset, gate in gates.items()}
        reason = f"lag window ended on {day.expired_date.date()}: {params.after_window.value}"
        return _build(params, stage, multiplier, passed, gates, Phase.AFTER_WINDOW, reason)

    window_day = (today - day.confirmed_date).days
    stage = _stage_index(params, window_day)
    passed = {asset: gate.passed for asset, gate in gates.items()}
    reason = f"day {window_day} of the lag window since {day.confirmed_date.date()}"
    return _build(params, stage, 1.0, passed, gates, Phase.BUILDING, reason)


def _phase_multiplier(day: BreakoutDay, on: pd.Timestamp, params: StagingParams) -> float:
    """Share of the stage budget in use on `on`: 1 in the window, then per `after_window`."""
    if day.expired_date is None or on < day.expired_date:
        return 1.0
    if params.after_window is AfterWindow.HOLD:
        return 1.0
    if params.after_window is AfterWindow.EXIT:
        return 0.0
    return max(0.0, 1 - ((on - day.expired_date).days + 1) / params.taper_days)


def _stage_on(day: BreakoutDay, on: pd.Timestamp, params: StagingParams) -> int:
    """The stage in force on `on`: stages stop advancing on the last day of the lag window."""
    assert day.confirmed_date is not None
    last = on
    if day.expired_date is not None and on >= day.expired_date:
        last = day.expired_date - pd.Timedelta(days=1)
    return _stage_index(params, (last - day.confirmed_date).days)


def _stage_index(params: StagingParams, window_day: int) -> int:
    """1-based index of the last stage whose day has come; 0 before the first."""
    return sum(1 for stage in params.stages if stage.day <= window_day)


def _build(
    params: StagingParams,
    stage: int,
    multiplier: float,
    allowed: Mapping[str, bool],
    gates: dict[str, TrendGate],
    phase: Phase,
    reason: str,
) -> Targets:
    if stage == 0 or multiplier <= 0:  # no stage in force: an exit or a window's end is done
        return Targets(_zeros(params), 0, 0.0, phase, gates, reason)
    active = [a for s in params.stages[:stage] for a in s.add]
    stage_budget = params.stages[stage - 1].budget
    active_share = sum(params.shares[a] for a in active)
    weights = _zeros(params)
    for asset in active:
        if allowed[asset]:
            share = min(stage_budget * params.shares[asset] / active_share, params.shares[asset])
            weights[asset] = params.crypto_budget * share * multiplier
    budget = params.crypto_budget * stage_budget * multiplier
    stood_aside = sorted(a for a in active if not allowed[a])
    if stood_aside:
        reason += f"; trend gate holds back {', '.join(stood_aside)}"
    return Targets(weights, stage, budget, phase, gates, f"stage {stage}: {reason}")


def _flat(params: StagingParams, gates: dict[str, TrendGate], reason: str) -> Targets:
    return Targets(_zeros(params), 0, 0.0, Phase.FLAT, gates, reason)


def _zeros(params: StagingParams) -> dict[str, float]:
    return dict.fromkeys(params.assets, 0.0)


def _gate(series: pd.Series | DailyColumn | None, window: int) -> TrendGate:
    if series is None or len(series) < window:
        return TrendGate(close=math.nan, mean=math.nan, passed=False)
    if isinstance(series, DailyColumn):
        return series.memo(("trend_gate", window), lambda: _trend_gate(series, window))
    return _trend_gate(series, window)


def _trend_gate(series: pd.Series | DailyColumn, window: int) -> TrendGate:
    tail = series.to_numpy(dtype=float)[-window:]
    close, mean = float(tail[-1]), float(np.mean(tail))
    return TrendGate(close=close, mean=mean, passed=bool(close > mean))


def _held_since(
    series: pd.Series | DailyColumn | None, prefail: pd.Timestamp, params: StagingParams
) -> bool:
    """Whether the gate passed every day from the eve of the last session before the failure.

    Starting a day early covers the close the pre-failure decision saw, whether or not that
    session's own crypto day had completed then; checking more days only ever removes assets.
    """
    if series is None or len(series) < params.trend_window:
        return False
    if isinstance(series, DailyColumn):
        column = series
        key = ("held_since", prefail, params.trend_window)
        return column.memo(key, lambda: _held_since(column.to_series(), prefail, params))
    mean = series.rolling(params.trend_window, min_periods=params.trend_window).mean()
    checked = (series > mean).loc[prefail - pd.Timedelta(days=1) :]
    return bool(len(checked) > 0 and checked.all())
