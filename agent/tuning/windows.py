"""Evaluation windows: rolling walk-forward train/test windows, and breakout-episode windows.

A window is a trading range (UTC days, inclusive). The backtest still sees every earlier bar
as warm-up, so a window that starts mid-history is what a live agent started that day would do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

DAY = pd.Timedelta(days=1)
MIN_LAST_TEST_DAYS = 30
"""A final test window cut short by the end of the data is kept only if this long."""

_SPAN = re.compile(r"^(\d+)([ymwd])$")
_UNITS = {"y": "years", "m": "months", "w": "weeks", "d": "days"}


class WindowError(Exception):
    """A window spec or range that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Window:
    start: pd.Timestamp
    end: pd.Timestamp

    def __str__(self) -> str:
        return f"{self.start.date()}..{self.end.date()}"


@dataclass(frozen=True)
class Fold:
    """Choose on `train` (one window, or several whose scores are averaged), score on `test`."""

    train: tuple[Window, ...]
    test: Window
    label: str


def parse_span(text: str) -> pd.DateOffset:
    """`4y`, `18m`, `6w`, `90d` as a calendar offset."""
    match = _SPAN.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise WindowError(f"{text!r}: a span is a positive number and y, m, w or d (e.g. 4y)")
    return pd.DateOffset(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_walk_forward(spec: str) -> dict[str, pd.DateOffset]:
    """`train=4y,test=1y[,step=1y]`: the spans; step defaults to test."""
    parts: dict[str, str] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in ("train", "test", "step"):
            raise WindowError(f"--walk-forward {spec!r}: expected train=SPAN,test=SPAN[,step=SPAN]")
        parts[name] = value
    if "train" not in parts or "test" not in parts:
        raise WindowError(f"--walk-forward {spec!r}: needs both train= and test=")
    try:
        spans = {name: parse_span(value) for name, value in parts.items()}
    except WindowError as exc:
        raise WindowError(f"--walk-forward: {exc}") from None
    spans.setdefault("step", spans["test"])
    return spans


def walk_forward_folds(
    first: pd.Timestamp,
    last: pd.Timestamp,
    train: pd.DateOffset,
    test: pd.DateOffset,
    step: pd.DateOffset | None = None,
) -> list[Fold]:
    """Rolling folds over first..last: train [s, s+train), test [s+train, s+train+test), s
    moving by `step` (default `test`). The last test window may end early at `last` (kept when
    at least MIN_LAST_TEST_DAYS long)."""
    step = step or test
    folds: list[Fold] = []
    start = first
    while True:
        test_start = start + train
        test_end = min(test_start + test - DAY, last)
        if test_start > last:
            break
        if test_end - test_start + DAY < pd.Timedelta(days=MIN_LAST_TEST_DAYS) and (
            test_start + test - DAY > last
        ):
            break
        n = len(folds) + 1
        folds.append(Fold((Window(start, test_start - DAY),), Window(test_start, test_end), str(n)))
        if test_end >= last:
            break
        start = start + step
    if not folds:
        raise WindowError(
            f"data range {first.date()}..{last.date()} is too short for one train and one test "
            "window"
        )
    return folds


def episode_windows(
    breakouts: Sequence[Mapping[str, Any]], days: int, trading: Window
) -> list[Window]:
    """Each confirmed breakout's window: its confirmation day to `days` calendar days later
    (the lag window and the taper), cut to the `trading` range. A window left shorter than
    MIN_LAST_TEST_DAYS there (an episode before trading could start, or one the data's end cuts
    short) has too few days to score and is left out."""
    out = []
    least = pd.Timedelta(days=MIN_LAST_TEST_DAYS)
    for breakout in breakouts:
        if not breakout.get("confirmed"):
            continue
        confirmed = pd.Timestamp(breakout["confirmed"])
        start = max(confirmed, trading.start)
        end = min(confirmed + pd.Timedelta(days=days), trading.end)
        if end - start + DAY >= least:
            out.append(Window(start, end))
    return out


def leave_one_out_folds(episodes: Sequence[Window]) -> list[Fold]:
    """One fold per episode: choose on the others, score on it. Needs at least two episodes."""
    if len(episodes) < 2:
        raise WindowError(
            f"leave-one-out needs at least two confirmed breakouts; the detector found "
            f"{len(episodes)} in the range"
        )
    return [
        Fold(tuple(w for j, w in enumerate(episodes) if j != i), held, f"{held.start.date()}")
        for i, held in enumerate(episodes)
    ]
