"""Crafted daily series for the detector's tests: a flat base, then whatever a test appends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BASE_VOLUME = 1_000_000.0


@dataclass
class Tape:
    """Index closes, index volumes and benchmark closes, built session by session."""

    close: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)
    bench: list[float] = field(default_factory=list)

    def add(self, close: float, volume: float = BASE_VOLUME, bench: float = 400.0) -> Tape:
        self.close.append(close)
        self.volume.append(volume)
        self.bench.append(bench)
        return self

    def repeat(
        self, n: int, close: float, volume: float = BASE_VOLUME, bench: float = 400.0
    ) -> Tape:
        for _ in range(n):
            self.add(close, volume, bench)
        return self

    def series(self, start: str = "2020-01-02") -> tuple[pd.Series, pd.Series, pd.Series]:
        dates = pd.bdate_range(start, periods=len(self.close))
        return (
            pd.Series(self.close, index=dates, dtype=float),
            pd.Series(self.volume, index=dates, dtype=float),
            pd.Series(self.bench, index=dates, dtype=float),
        )


def base(sessions: int = 80) -> Tape:
    """A high of 100 on the first session, then a range just under it: the level to break is 100."""
    tape = Tape().add(100.0)
    for i in range(sessions):
        tape.add(95.0 + 2.0 * np.sin(i / 3.0))
    return tape


def random_walk(seed: int, sessions: int = 900) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Trending, noisy series that produce every state; for properties, not for exact values."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-04", periods=sessions)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0006, 0.012, sessions)))
    bench = 300 * np.exp(np.cumsum(rng.normal(0.0004, 0.009, sessions)))
    volume = rng.lognormal(np.log(BASE_VOLUME), 0.35, sessions)
    return (
        pd.Series(close, index=dates),
        pd.Series(volume, index=dates),
        pd.Series(bench, index=dates),
    )
