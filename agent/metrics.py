"""Performance numbers of a daily equity curve. Crypto trades every day: 365 periods a year."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 365
SUMMARY_METRICS = (
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "exposure_days",
    "turnover",
    "fees",
    "orders",
    "risk_clamps",
)
"""The metrics of a run's `summary.json`, in the order tables show them."""


def performance(equity: pd.Series) -> dict[str, float | None]:
    """total_return, cagr, max_drawdown (a positive fraction), sharpe and sortino (annualised,
    risk-free rate 0) of a daily equity series; None where the number is undefined."""
    values = equity.to_numpy(dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)) or values[0] <= 0:
        return dict.fromkeys(("total_return", "cagr", "max_drawdown", "sharpe", "sortino"))
    total = values[-1] / values[0] - 1
    years = (equity.index[-1] - equity.index[0]).days / PERIODS_PER_YEAR
    cagr = (values[-1] / values[0]) ** (1 / years) - 1 if years > 0 and values[-1] > 0 else None
    peaks = np.maximum.accumulate(values)
    returns = values[1:] / values[:-1] - 1
    mean = returns.mean()
    deviation = returns.std(ddof=1) if len(returns) > 1 else 0.0
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    scale = math.sqrt(PERIODS_PER_YEAR)
    return {
        "total_return": float(total),
        "cagr": None if cagr is None else float(cagr),
        "max_drawdown": float(np.max(1 - values / peaks)),
        "sharpe": float(mean / deviation * scale) if deviation > 0 else None,
        "sortino": float(mean / downside * scale) if downside > 0 else None,
    }
