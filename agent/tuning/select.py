"""Scoring points: the metrics a sweep keeps, objectives, choosing the best, ranking,
sensitivity to one grid step, and out-of-sample windows chained into one curve."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from agent.metrics import performance
from agent.tuning.grid import Grid, Params, neighbours, point_id

METRICS = (
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "calmar",
    "exposure_days",
    "orders",
    "fees",
)
OBJECTIVES = ("sharpe", "cagr", "calmar", "sortino")
Metrics = dict[str, Any]


def sweep_metrics(summary_metrics: Mapping[str, Any]) -> Metrics:
    """The metrics a sweep keeps from a backtest summary, with calmar = cagr / max_drawdown."""
    out = {key: summary_metrics.get(key) for key in METRICS if key != "calmar"}
    out["calmar"] = calmar(out["cagr"], out["max_drawdown"])
    return {key: out[key] for key in METRICS}


def calmar(cagr: float | None, max_drawdown: float | None) -> float | None:
    if cagr is None or not max_drawdown:
        return None
    return cagr / max_drawdown


def score(metrics: Mapping[str, Any], objective: str) -> float:
    """The objective as a number to maximise. Undefined on a curve that never moved (no trade:
    no return, no drawdown) counts as 0; undefined otherwise is the worst score."""
    value = metrics.get(objective)
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    if not metrics.get("total_return") and not metrics.get("max_drawdown"):
        return 0.0
    return -math.inf


def mean_score(runs: Sequence[Mapping[str, Any]], objective: str) -> float:
    """A point's score over several windows: the mean of its per-window scores."""
    scores = [score(m, objective) for m in runs]
    return sum(scores) / len(scores) if scores else -math.inf


def choose(candidates: Sequence[tuple[Params, Sequence[Mapping[str, Any]]]], objective: str) -> int:
    """Index of the best candidate (its params, its metrics on each train window); ties go to
    the smaller point id, so the choice does not depend on the order points finished."""
    if not candidates:
        raise ValueError("nothing to choose from")
    return max(
        range(len(candidates)),
        key=lambda i: (mean_score(candidates[i][1], objective), _neg_id(candidates[i][0])),
    )


def _neg_id(params: Params) -> tuple[int, ...]:
    return tuple(-ord(c) for c in point_id(params))


def rank(rows: Sequence[Mapping[str, Any]], objective: str) -> list[Mapping[str, Any]]:
    """Rows (each holding `point_id` and the metrics) best first."""
    return sorted(rows, key=lambda r: (-score(r, objective), str(r.get("point_id"))))


def sensitivity_points(grid: Grid, best: Params) -> list[tuple[str, int, Params]]:
    """For each key, the chosen point moved one grid step down (-1) and up (+1), where the grid
    has such a step: (key, step, that point's params)."""
    out = []
    for key in grid.axes:
        if key not in best:
            continue
        down, up = neighbours(grid, key, best[key])
        for step, value in ((-1, down), (1, up)):
            if value is not None:
                out.append((key, step, {**best, key: value}))
    return out


def sensitivity_rows(
    best: Params,
    best_metrics: Mapping[str, Any],
    moved: Sequence[tuple[str, int, Params, Mapping[str, Any]]],
    objective: str,
) -> list[dict[str, Any]]:
    """One row per key and step (-1, 0 for the chosen value, +1): the value, every metric and
    the objective's change from the chosen config."""
    base = score(best_metrics, objective)
    rows = []
    keys = list(dict.fromkeys(key for key, *_ in moved))
    for key in keys:
        entries = [(key, 0, best, best_metrics), *(m for m in moved if m[0] == key)]
        for _key, step, params, metrics in sorted(entries, key=lambda e: e[1]):
            change = score(metrics, objective) - base
            rows.append(
                {
                    "parameter": key,
                    "step": step,
                    "value": params[key],
                    "point_id": point_id(params),
                    **{m: metrics.get(m) for m in METRICS},
                    f"{objective}_change": None if math.isnan(change) else change,
                }
            )
    return rows


def chain(curves: Sequence[pd.Series], initial_cash: float) -> pd.Series:
    """Out-of-sample windows as one curve: each window's equity (which starts from
    `initial_cash`) rescaled to start where the previous one ended, preceded by the day before
    the first window at `initial_cash`."""
    if not curves:
        return pd.Series(dtype=float)
    level = initial_cash
    first = pd.Timestamp(curves[0].index[0]) - pd.Timedelta(days=1)
    parts = [pd.Series([initial_cash], index=pd.DatetimeIndex([first]))]
    for curve in curves:
        scaled = curve.astype(float) / initial_cash * level
        parts.append(scaled)
        level = float(scaled.iloc[-1])
    return pd.concat(parts)


def chained_metrics(
    curves: Sequence[pd.Series], windows: Sequence[Mapping[str, Any]], initial_cash: float
) -> Metrics:
    """Metrics of the chained out-of-sample curve, its days laid end to end (windows with gaps
    between them, as episodes have, are annualised over the days inside them); counts
    (exposure days, orders, fees) summed over the windows."""
    chained = chain(curves, initial_cash)
    chained.index = pd.date_range(chained.index[0], periods=len(chained), freq="D")
    metrics: dict[str, Any] = dict(performance(chained))
    for key in ("exposure_days", "orders", "fees"):
        metrics[key] = sum(w.get(key) or 0 for w in windows)
    metrics["calmar"] = calmar(metrics["cagr"], metrics["max_drawdown"])
    return {key: metrics[key] for key in METRICS}
