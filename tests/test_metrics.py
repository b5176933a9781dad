import math

import numpy as np
import pandas as pd
import pytest

from agent.metrics import performance


def curve(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2021-01-01", periods=len(values), freq="D"))


def test_doubling_over_a_year_is_a_cagr_of_100_percent():
    growth = 2 ** (1 / 365)
    result = performance(curve([100 * growth**n for n in range(366)]))
    assert result["total_return"] == pytest.approx(1.0)
    assert result["cagr"] == pytest.approx(1.0)
    assert result["max_drawdown"] == pytest.approx(0.0)


def test_max_drawdown_is_the_deepest_fall_from_a_peak():
    result = performance(curve([100, 120, 90, 110, 60, 130]))
    assert result["max_drawdown"] == pytest.approx(0.5)


def test_sharpe_and_sortino_are_annualised_over_365_days():
    returns = np.array([0.01, -0.005, 0.02, -0.01, 0.004])
    values = 100 * np.cumprod(np.concatenate([[1.0], 1 + returns]))
    result = performance(curve(list(values)))
    assert result["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert result["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(365))


def test_undefined_numbers_are_none_not_nan():
    flat = performance(curve([100, 100, 100]))
    assert flat["sharpe"] is None
    assert flat["sortino"] is None
    assert performance(curve([100]))["total_return"] is None
