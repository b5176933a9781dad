"""What the risk gate returns: the approved orders and every cut, each with its rule and numbers.

`Verdict.to_dict()` is the journal's form: plain JSON types, enums as their value, NaN and
infinities as null.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Rule(enum.StrEnum):
    """The name of every rule that can cut, drop or refuse an order."""

    ASSET_CAP = "asset_cap"
    STAGE_CAP = "stage_cap"
    TOTAL_CAP = "total_cap"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MIN_ORDER_NOTIONAL = "min_order_notional"
    VENUE_MIN_AMOUNT = "venue_min_amount"
    VENUE_MIN_COST = "venue_min_cost"
    PRECISION = "precision"
    DAILY_TURNOVER = "daily_turnover"
    CASH = "cash"
    STALE_PRICE = "stale_price"
    PRICE_JUMP = "price_jump"
    DRAWDOWN = "drawdown"
    ERROR_BUDGET = "error_budget"
    MISSING_INPUT = "missing_input"


@dataclass(frozen=True)
class OrderIntent:
    """An approved order, not yet placed."""

    asset: str
    side: Side
    amount: float
    """Base units, already rounded down to the market's step."""
    price: float
    """The reference price the order was sized with."""
    notional: float
    """amount x price, in the quote currency."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "side": self.side.value,
            "amount": _number(self.amount),
            "price": _number(self.price),
            "notional": _number(self.notional),
        }


@dataclass(frozen=True)
class Clamp:
    """One cut, drop or refusal.

    `wanted` is what the request asked for and `allowed` the limit the rule enforces (a cap, the
    budget left, or for a minimum the smallest accepted value). `unit` is "weight" (fraction of
    equity), "quote" (quote currency), "base" (base units) or "" when the numbers are in the
    rule's own terms: drawdown as fractions of the peak, stale quotes in hours, the error budget
    in errors. Refusals for a missing or unusable input carry no numbers.
    """

    rule: Rule
    asset: str | None
    """None when the rule concerns the whole portfolio."""
    wanted: float | None
    allowed: float | None
    unit: str
    reason: str
    """One readable line with the numbers, e.g. "ETH target 0.35 above its cap 0.3"."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.value,
            "asset": self.asset,
            "wanted": _number(self.wanted),
            "allowed": _number(self.allowed),
            "unit": self.unit,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Verdict:
    orders: tuple[OrderIntent, ...]
    """Sells first, then buys; each group in asset order."""
    clamps: tuple[Clamp, ...]
    buying_allowed: bool
    """False while any halt or missing input stops buying; sells may still be approved."""
    equity: float | None
    """Cash plus every position at its price; None when it cannot be computed."""
    drawdown: float | None
    """Fraction of equity below its peak; None when it cannot be computed."""

    @property
    def halted(self) -> bool:
        """No order of any kind is allowed (the error budget is spent)."""
        return any(clamp.rule == Rule.ERROR_BUDGET for clamp in self.clamps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": [order.to_dict() for order in self.orders],
            "clamps": [clamp.to_dict() for clamp in self.clamps],
            "buying_allowed": self.buying_allowed,
            "halted": self.halted,
            "equity": _number(self.equity),
            "drawdown": _number(self.drawdown),
        }


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)
