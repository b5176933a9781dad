"""Risk limits: the numbers the gate enforces between stage targets and orders.

Weights are fractions of equity; notionals are in the quote currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from strategies.params import (
    ParamError,
    require_fraction,
    require_non_negative,
    require_positive,
)


@dataclass(frozen=True)
class RiskParams:
    """Caps on exposure and orders, price sanity checks and the halts."""

    max_total_exposure: float = 0.6
    """Cap on crypto exposure in total, fraction of equity, in (0, 1]."""
    max_asset_exposure: float = 0.3
    """Cap on one asset unless `asset_caps` names it; fraction of equity, in (0, 1]."""
    asset_caps: dict[str, float] = field(default_factory=dict)
    """Per-asset caps that replace `max_asset_exposure`, each in [0, 1]."""
    max_order_notional: float = 50_000.0
    """Biggest single buy, in the quote currency."""
    min_order_notional: float = 10.0
    """Orders smaller than this (quote currency) are dropped."""
    rebalance_band: float = 0.01
    """An asset within this fraction of equity of its target is not traded (no daily churn);
    exits to a zero target always trade."""
    max_daily_turnover: float = 1.0
    """Buys per UTC day, as a fraction of equity."""
    stale_after: timedelta = timedelta(hours=36)
    """A price older than this refuses any order for its asset."""
    max_price_deviation: float = 0.25
    """A price more than this fraction away from the last good price refuses the order."""
    max_drawdown: float = 0.2
    """Equity this fraction below its peak halts buying; in (0, 1)."""
    flatten_on_drawdown: bool = False
    """On a drawdown halt, also sell everything that can be sold."""
    error_budget: int = 5
    """This many consecutive venue errors halt trading."""

    def __post_init__(self) -> None:
        require_fraction("max_total_exposure", self.max_total_exposure, allow_zero=False)
        require_fraction("max_asset_exposure", self.max_asset_exposure, allow_zero=False)
        if self.max_asset_exposure > self.max_total_exposure:
            raise ParamError(
                "max_asset_exposure",
                f"cannot exceed max_total_exposure ({self.max_total_exposure}), "
                f"got {self.max_asset_exposure}",
            )
        self._check_asset_caps()
        require_positive("max_order_notional", self.max_order_notional)
        require_non_negative("min_order_notional", self.min_order_notional)
        if self.min_order_notional >= self.max_order_notional:
            raise ParamError(
                "min_order_notional",
                f"must be below max_order_notional ({self.max_order_notional}), "
                f"got {self.min_order_notional}",
            )
        require_fraction("rebalance_band", self.rebalance_band)
        require_positive("max_daily_turnover", self.max_daily_turnover)
        if not isinstance(self.stale_after, timedelta) or self.stale_after <= timedelta(0):
            raise ParamError("stale_after", f"must be a duration > 0, got {self.stale_after!r}")
        require_positive("max_price_deviation", self.max_price_deviation)
        require_fraction("max_drawdown", self.max_drawdown, allow_zero=False)
        if self.max_drawdown == 1:
            raise ParamError("max_drawdown", "must be in (0, 1), got 1")
        if not isinstance(self.flatten_on_drawdown, bool):
            raise ParamError(
                "flatten_on_drawdown", f"must be true or false, got {self.flatten_on_drawdown!r}"
            )
        if isinstance(self.error_budget, bool) or not isinstance(self.error_budget, int):
            raise ParamError("error_budget", f"must be a whole number, got {self.error_budget!r}")
        if self.error_budget < 1:
            raise ParamError("error_budget", f"must be >= 1, got {self.error_budget}")

    def _check_asset_caps(self) -> None:
        for asset, cap in self.asset_caps.items():
            if not isinstance(asset, str) or not asset:
                raise ParamError("asset_caps", f"asset names must be non-empty text, got {asset!r}")
            key = f"asset_caps.{asset}"
            require_fraction(key, cap)
            if cap > self.max_total_exposure:
                raise ParamError(
                    key,
                    f"cannot exceed max_total_exposure ({self.max_total_exposure}), got {cap}",
                )

    def cap_for(self, asset: str) -> float:
        """The most of equity `asset` may hold: its own cap, else `max_asset_exposure`."""
        return self.asset_caps.get(asset, self.max_asset_exposure)
