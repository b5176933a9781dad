"""The two edges of a tick: market data in, orders out. Each adapter is a class satisfying one.

Daily bars are pandas DataFrames indexed by a tz-naive `DatetimeIndex` named `date` (the exchange
session date for equities, the UTC calendar day for crypto) with float columns
`open, high, low, close, volume` (volume NaN when unknown). When a bar becomes usable is the
clock's business (`agent.clock`), not the adapter's: adapters may return bars the loop cuts off.

Venue calls take the caller's `now` where time matters, so a paper venue needs no clock of its
own, and raise `VenueError` subclasses whose class is the retry policy: `TransientVenueError`
may be retried, `PermanentVenueError` never.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pandas as pd

from risk.verdict import Side

BAR_COLUMNS = ("open", "high", "low", "close", "volume")


class MarketData(Protocol):
    def daily_bars(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        """Every bar of `symbol` dated on or before `end` (tz-naive date), oldest first.

        Raises `DataError` when the symbol has no data or its bars are unusable."""
        ...

    def daily_column(self, symbol: str, column: str, end: pd.Timestamp) -> pd.Series:
        """`daily_bars(symbol, end)[column]`; the tick reads only closes and volumes, every day
        for every symbol, so adapters serve them without slicing whole frames."""
        ...


class SafetyStop(Exception):
    """Nothing may trade past this (a live endpoint, a state file that cannot be written): the
    loop never contains it as a failed tick; the run stops."""


class DataError(Exception):
    """Bars that cannot be used; the message is one line naming the source, row and problem."""


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Market:
    """One spot market as the venue trades it."""

    symbol: str
    """Venue symbol, e.g. `BTC/USDT`."""
    base: str
    """The asset, e.g. `BTC`."""
    quote: str
    amount_step: float | None
    """Amounts are multiples of this (base units); None means any amount."""
    min_amount: float
    min_cost: float
    """Smallest notional, quote currency."""
    fee_rate: float
    """Taker fee as a fraction of notional."""


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    """Base units, already rounded to the market's step."""
    price: float | None = None
    """Limit price; None for market orders."""


@dataclass(frozen=True)
class Order:
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float | None
    status: OrderStatus
    filled: float
    """Base units filled so far: the sum of the order's trades."""
    ts: datetime
    """When the venue accepted the order (UTC)."""


@dataclass(frozen=True)
class Trade:
    """One fill; `trade_id` is unique per venue, so fills are counted once."""

    trade_id: str
    client_order_id: str
    symbol: str
    side: Side
    amount: float
    price: float
    fee: float
    """In the quote currency."""
    ts: datetime


class Venue(Protocol):
    def markets(self) -> Mapping[str, Market]:
        """Markets by symbol."""
        ...

    def balances(self, now: datetime) -> dict[str, float]:
        """Total holdings per currency (quote and bases), after settling everything due by `now`."""
        ...

    def place_order(self, request: OrderRequest, now: datetime) -> Order:
        """Submit; the same client order id twice returns the first order, never a second one."""
        ...

    def fetch_order(self, client_order_id: str, now: datetime) -> Order | None:
        """The order with that client id, or None when the venue has never seen it."""
        ...

    def cancel_order(self, client_order_id: str, now: datetime) -> Order:
        """Cancel an open order; an order already done is returned as it is."""
        ...

    def open_orders(self, now: datetime) -> list[Order]: ...

    def trades(self, since: datetime | None, now: datetime) -> list[Trade]:
        """Fills with `ts` after `since` (all when None), oldest first."""
        ...


class VenueError(Exception):
    """A venue call failed; subclasses say whether retrying can help."""


class TransientVenueError(VenueError):
    """Timeouts, rate limits, 5xx: the call may succeed if retried (reads only)."""


class PermanentVenueError(VenueError):
    """Authentication, bad symbol, invalid order, insufficient funds: never retried."""


class InsufficientFunds(PermanentVenueError):
    pass


class InvalidOrder(PermanentVenueError):
    pass
