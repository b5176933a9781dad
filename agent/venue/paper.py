"""The in-process paper venue: orders fill against daily bars, with fees and slippage.

The venue has no clock: every public call first settles what is due by the caller's `now`, so a
backtest drives it with the simulated clock and a live run with the wall clock.

When an order fills (the bar for date D spans D 00:00 to D+1 00:00 UTC):
- Market: at the open of the first bar starting at or after the order's `ts`, once `now` reaches
  that bar's start; buys pay `open x (1 + slippage)`, sells get `open x (1 - slippage)`.
- Limit: on the first bar starting at or after the order's `ts` whose prices cross the limit, at
  `min(open, limit)` for a buy and `max(open, limit)` for a sell, without slippage. A bar's open
  is known from its start, its high and low only from its end. So a limit the open already
  crosses fills at the open, stamped with the bar's start; one crossed inside the bar fills at the
  limit, stamped with the bar's end, the first moment the venue can know it. Either way a trade is
  visible exactly when `now >= trade.ts`, so a `since` cursor never skips a fill.

Open buys reserve quote cash (market: amount x reference price x (1 + slippage), limit: amount x
limit, each plus the fee) and open sells reserve base, so two open orders never spend the same
money. A buy whose fill costs more than its reservation (the open gapped up) fills for what the
cash not reserved by other open buys allows, rounded down to the step, and the order closes with
`filled < amount`; if that is below the market's minimums the order is rejected, with no trade.
"""

from __future__ import annotations

import bisect
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import pandas as pd

from agent.ports import (
    DataError,
    InsufficientFunds,
    InvalidOrder,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Trade,
)
from risk.verdict import Side

_DAY_NS = 86_400 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_STEP_TOLERANCE = 1e-9
"""An amount is on the step when it is within this fraction of itself of a multiple of it."""
_PRICES = ("open", "high", "low", "close")


def _ns(what: str, ts: datetime) -> int:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {ts!r}")
    return (ts - _EPOCH) // _MICROSECOND * 1000


def _datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


@dataclass(frozen=True)
class _Bars:
    """One market's bars as arrays: starts and ends in UTC nanoseconds, then prices."""

    start: np.ndarray
    end: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    fetched_day: int
    """The UTC day (days since the epoch) of the `now` they were fetched at."""

    @classmethod
    def load(cls, symbol: str, frame: pd.DataFrame, now_ns: int) -> _Bars:
        missing = [c for c in _PRICES if c not in frame.columns]
        if missing:
            raise DataError(f"paper venue: bars of {symbol} lack columns {missing}")
        index = pd.DatetimeIndex(frame.index)
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        frame = frame.set_axis(index.normalize())
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        prices = frame[list(_PRICES)].to_numpy(dtype=float)
        usable = np.isfinite(prices).all(axis=1)
        prices = prices[usable]
        start = frame.index.to_numpy(dtype="datetime64[ns]")[usable].astype(np.int64)
        columns = [np.ascontiguousarray(prices[:, k]) for k in range(len(_PRICES))]
        return cls(start, start + _DAY_NS, *columns, fetched_day=now_ns // _DAY_NS)


def _load(symbol: str, frame: pd.DataFrame, now_ns: int) -> _Bars:
    """`_Bars.load`, converted once per frame object: replayed bars are the same frame for every
    venue of a sweep's points, which need only their own `fetched_day`."""
    key = (id(frame), symbol)
    loaded = _LOADED.get(key)
    if loaded is None:
        loaded = _LOADED[key] = _Bars.load(symbol, frame, now_ns)
        weakref.finalize(frame, _LOADED.pop, key, None)
    return replace(loaded, fetched_day=now_ns // _DAY_NS)


_LOADED: dict[tuple[int, str], _Bars] = {}
"""Bars by (id of the frame, symbol), each entry dropped when its frame is."""


@dataclass
class _Entry:
    """An order as the venue keeps it; `Order` is its public, frozen view."""

    seq: int
    request: OrderRequest
    ts_ns: int
    reserve: float
    """Quote cash held back while an open buy; 0 otherwise."""
    status: OrderStatus = OrderStatus.OPEN
    filled: float = 0.0
    check_from_ns: int = 0
    """Limit orders: the bars starting before this ended without crossing (a time, not an
    index, so that it survives a refetch of the bars)."""

    def __post_init__(self) -> None:
        self.check_from_ns = max(self.check_from_ns, self.ts_ns)

    def order(self) -> Order:
        r = self.request
        return Order(
            client_order_id=r.client_order_id,
            venue_order_id=f"paper-o-{self.seq}",
            symbol=r.symbol,
            side=r.side,
            type=r.type,
            amount=r.amount,
            price=r.price,
            status=self.status,
            filled=self.filled,
            ts=_datetime(self.ts_ns),
        )


def _buy_total(amount: float, price: float, fee_rate: float) -> float:
    """Quote cash a buy takes, fee included; reservations and fills both use it, so they agree."""
    cost = amount * price
    return cost + cost * fee_rate


def _on_step(amount: float, step: float | None) -> bool:
    if step is None:
        return True
    return abs(amount - round(amount / step) * step) <= _STEP_TOLERANCE * amount


class PaperVenue:
    """A `Venue` that fills against daily bars; see the module docstring for the fill rules.

    `bars(symbol)` returns the daily bars of a market's base asset. It is called once per symbol
    and cached, and called again at most once per UTC day while the cache ends before `now`, so a
    live run sees new bars and a backtest with the full history calls it once.
    """

    def __init__(
        self,
        markets: Mapping[str, Market],
        bars: Callable[[str], pd.DataFrame],
        quote: str,
        initial_cash: float,
        slippage_bps: float,
    ) -> None:
        for symbol, market in markets.items():
            if symbol != market.symbol:
                raise ValueError(f"market keyed {symbol!r} is {market.symbol!r}")
            if market.quote != quote:
                raise ValueError(f"{symbol}: quote {market.quote!r}, the venue's is {quote!r}")
            if market.amount_step is not None and not market.amount_step > 0:
                raise ValueError(f"{symbol}: amount_step must be positive or None")
            if not market.fee_rate >= 0:
                raise ValueError(f"{symbol}: fee_rate must be >= 0")
        if not (math.isfinite(initial_cash) and initial_cash >= 0):
            raise ValueError(f"initial_cash must be a finite number >= 0, got {initial_cash}")
        if not (math.isfinite(slippage_bps) and slippage_bps >= 0):
            raise ValueError(f"slippage_bps must be a finite number >= 0, got {slippage_bps}")
        self._markets: Mapping[str, Market] = MappingProxyType(dict(markets))
        self._source = bars
        self._quote = quote
        self._slippage = slippage_bps / 10_000
        self._cash = float(initial_cash)
        self._positions: dict[str, Decimal] = {m.base: Decimal(0) for m in markets.values()}
        self._held: dict[str, float] | None = None
        """`balances()` as last computed; None once cash or a position changes."""
        self._bars: dict[str, _Bars] = {}
        self._orders: dict[str, _Entry] = {}
        self._open: list[_Entry] = []
        self._trades: list[Trade] = []
        self._ids_before = (0, 0)
        """Orders and trades a resumed run recorded before this venue existed (`restore`)."""
        self._trade_ns: list[int] = []
        """Each trade's ts in nanoseconds, parallel to `_trades`, both sorted by it."""

    def restore(
        self, balances: Mapping[str, float], *, orders_before: int = 0, trades_before: int = 0
    ) -> None:
        """Hold `balances` (as a resumed run's store recorded them), with no orders or trades: the
        paper venue's book lives in memory, so what a killed process did after its last
        committed tick is gone with it, as if that tick never ran. Order and trade ids go on
        after the `orders_before` and `trades_before` the run already recorded, so a new fill
        never takes the id of one already counted."""
        if self._orders:
            raise ValueError("restore() is for a venue that has not traded yet")
        for name, amount in balances.items():
            if not (math.isfinite(amount) and amount >= 0):
                raise ValueError(f"restore: {name} balance must be a finite number >= 0")
            if name != self._quote and name not in self._positions:
                raise ValueError(f"restore: {name} is not traded here")
        if orders_before < 0 or trades_before < 0:
            raise ValueError("restore: orders_before and trades_before must be >= 0")
        self._ids_before = (orders_before, trades_before)
        self._held = None
        self._cash = float(balances.get(self._quote, 0.0))
        self._positions = {
            base: Decimal(str(float(balances.get(base, 0.0)))) for base in self._positions
        }

    # -- the Venue protocol --------------------------------------------------------------------

    def markets(self) -> Mapping[str, Market]:
        return self._markets

    def balances(self, now: datetime) -> dict[str, float]:
        self._settle(_ns("now", now))
        held = self._held
        if held is None:  # kept until a fill or a restore changes the balances
            held = {self._quote: self._cash} | {b: float(a) for b, a in self._positions.items()}
            self._held = held
        return dict(held)

    def place_order(self, request: OrderRequest, now: datetime) -> Order:
        now_ns = _ns("now", now)
        self._settle(now_ns)
        known = self._orders.get(request.client_order_id)
        if known is not None:
            return known.order()
        reserve = self._check(request, now_ns)
        seq = self._ids_before[0] + len(self._orders) + 1
        entry = _Entry(seq=seq, request=request, ts_ns=now_ns, reserve=reserve)
        self._orders[request.client_order_id] = entry
        self._open.append(entry)
        self._settle(now_ns)
        return entry.order()

    def fetch_order(self, client_order_id: str, now: datetime) -> Order | None:
        self._settle(_ns("now", now))
        entry = self._orders.get(client_order_id)
        return None if entry is None else entry.order()

    def open_orders(self, now: datetime) -> list[Order]:
        self._settle(_ns("now", now))
        return [entry.order() for entry in self._open]

    def trades(self, since: datetime | None, now: datetime) -> list[Trade]:
        now_ns = _ns("now", now)
        since_ns = None if since is None else _ns("since", since)
        self._settle(now_ns)
        low = 0 if since_ns is None else bisect.bisect_right(self._trade_ns, since_ns)
        return self._trades[low : bisect.bisect_right(self._trade_ns, now_ns)]

    def cancel_order(self, client_order_id: str, now: datetime) -> Order:
        """Cancel an open order; an order already closed, canceled or rejected is returned as is."""
        self._settle(_ns("now", now))
        entry = self._orders.get(client_order_id)
        if entry is None:
            raise InvalidOrder(f"cancel: no order with client order id {client_order_id!r}")
        if entry.status is OrderStatus.OPEN:
            entry.status = OrderStatus.CANCELED
            entry.reserve = 0.0
            self._open.remove(entry)
        return entry.order()

    # -- placement -----------------------------------------------------------------------------

    def _check(self, request: OrderRequest, now_ns: int) -> float:
        """Raise when the order cannot be accepted; else the quote cash it reserves."""
        market = self._markets.get(request.symbol)
        if market is None:
            known = ", ".join(sorted(self._markets)) or "none"
            raise InvalidOrder(f"unknown symbol {request.symbol!r} (markets: {known})")
        where = f"order {request.client_order_id!r} on {market.symbol}"
        if not request.client_order_id:
            raise InvalidOrder(f"{where}: empty client order id")
        if request.side not in (Side.BUY, Side.SELL):
            raise InvalidOrder(f"{where}: unknown side {request.side!r}")
        amount = request.amount
        if not (math.isfinite(amount) and amount > 0):
            raise InvalidOrder(f"{where}: amount must be a positive number, got {amount}")
        buy = request.side == Side.BUY
        if request.type == OrderType.LIMIT:
            price = request.price
            if price is None or not (math.isfinite(price) and price > 0):
                raise InvalidOrder(f"{where}: a limit order needs a positive price, got {price}")
            fill_price = price
        elif request.type == OrderType.MARKET:
            if request.price is not None:
                raise InvalidOrder(f"{where}: a market order takes no price, got {request.price}")
            price = self._reference(market.symbol, now_ns)
            if price is None:
                raise InvalidOrder(f"{where}: no price yet at {_datetime(now_ns).isoformat()}")
            fill_price = price * (1 + self._slippage if buy else 1 - self._slippage)
        else:
            raise InvalidOrder(f"{where}: unknown order type {request.type!r}")
        if not _on_step(amount, market.amount_step):
            raise InvalidOrder(
                f"{where}: amount {amount:.12g} is not a multiple of the step"
                f" {market.amount_step:g}"
            )
        if amount < market.min_amount:
            raise InvalidOrder(
                f"{where}: amount {amount:.12g} is below the minimum amount {market.min_amount:g}"
            )
        if amount * price < market.min_cost:
            raise InvalidOrder(
                f"{where}: notional {amount * price:,.2f} {self._quote} is below the minimum"
                f" cost {market.min_cost:,.2f}"
            )
        if buy:
            cost = _buy_total(amount, fill_price, market.fee_rate)
            free = self._cash - self._reserved_cash()
            if cost > free:
                raise InsufficientFunds(
                    f"{where}: buying {amount:.12g} {market.base} needs {cost:,.2f} {self._quote}"
                    f" with the fee, {free:,.2f} free"
                )
            return cost
        want = Decimal(str(amount))
        held = self._positions[market.base]
        reserved = self._reserved_base(market.base)
        if want > held - reserved:
            raise InsufficientFunds(
                f"{where}: selling {amount:.12g} {market.base}, {held - reserved} free"
                f" ({held} held, {reserved} in open sells)"
            )
        return 0.0

    def _reference(self, symbol: str, now_ns: int) -> float | None:
        """The last price known at `now`: the open of the bar in progress, else the last close."""
        bars = self._series(symbol, now_ns)
        i = int(np.searchsorted(bars.start, now_ns, side="right")) - 1
        if i < 0:
            return None
        return float(bars.close[i] if bars.end[i] <= now_ns else bars.open[i])

    def _reserved_cash(self) -> float:
        return sum(entry.reserve for entry in self._open if entry.status is OrderStatus.OPEN)

    def _reserved_base(self, base: str) -> Decimal:
        return sum(
            (
                Decimal(str(entry.request.amount))
                for entry in self._open
                if entry.request.side == Side.SELL
                and self._markets[entry.request.symbol].base == base
            ),
            Decimal(0),
        )

    def _series(self, symbol: str, now_ns: int) -> _Bars:
        cached = self._bars.get(symbol)
        day = now_ns // _DAY_NS
        stale = cached is not None and (
            cached.fetched_day < day and (len(cached.end) == 0 or cached.end[-1] <= now_ns)
        )
        if cached is None or stale:
            cached = _load(symbol, self._source(symbol), now_ns)
            self._bars[symbol] = cached
        return cached

    # -- settling ------------------------------------------------------------------------------

    def _settle(self, now_ns: int) -> None:
        """Fill every open order due by `now`, in the order the fills happened."""
        if not self._open:
            return
        due = []
        for entry in self._open:
            fill = self._due(entry, now_ns)
            if fill is not None:
                due.append((fill[0], entry.seq, fill[1], entry))
        if not due:
            return
        due.sort(key=lambda item: (item[0], item[1]))
        for ts_ns, _, price, entry in due:
            self._fill(entry, price, ts_ns)
        self._open = [entry for entry in self._open if entry.status is OrderStatus.OPEN]

    def _due(self, entry: _Entry, now_ns: int) -> tuple[int, float] | None:
        """When and at what price `entry` fills by `now`, or None while it stays open."""
        request = entry.request
        bars = self._series(request.symbol, now_ns)
        first = int(np.searchsorted(bars.start, entry.check_from_ns, side="left"))
        started = int(np.searchsorted(bars.start, now_ns, side="right"))
        if first >= started:
            return None
        buy = request.side == Side.BUY
        if request.type == OrderType.MARKET:
            factor = 1 + self._slippage if buy else 1 - self._slippage
            return int(bars.start[first]), float(bars.open[first]) * factor
        limit = float(request.price)  # type: ignore[arg-type]  # checked at placement
        ended = int(np.searchsorted(bars.end, now_ns, side="right"))
        if first < ended:
            window = slice(first, ended)
            if buy:
                crossed = (bars.low[window] <= limit) | (bars.open[window] <= limit)
            else:
                crossed = (bars.high[window] >= limit) | (bars.open[window] >= limit)
            hit = int(np.argmax(crossed))
            if crossed[hit]:
                j = first + hit
                at_open = bars.open[j] <= limit if buy else bars.open[j] >= limit
                if at_open:
                    return int(bars.start[j]), float(bars.open[j])
                return int(bars.end[j]), limit
            entry.check_from_ns = int(bars.start[ended - 1]) + 1
            first = ended
        for j in range(first, started):  # started, not ended: only the open is known
            if (bars.open[j] <= limit) if buy else (bars.open[j] >= limit):
                return int(bars.start[j]), float(bars.open[j])
        return None

    def _fill(self, entry: _Entry, price: float, ts_ns: int) -> None:
        request = entry.request
        market = self._markets[request.symbol]
        amount = request.amount
        self._held = None
        if request.side == Side.BUY:
            free = self._cash - (self._reserved_cash() - entry.reserve)
            affordable = self._affordable(market, amount, price, free)
            if affordable is None:
                entry.status = OrderStatus.REJECTED
                entry.reserve = 0.0
                return
            amount = affordable
            cost = amount * price
            fee = cost * market.fee_rate
            self._cash -= _buy_total(amount, price, market.fee_rate)
            self._positions[market.base] += Decimal(str(amount))
        else:
            cost = amount * price
            fee = cost * market.fee_rate
            self._cash += cost - fee
            self._positions[market.base] -= Decimal(str(amount))
        entry.status = OrderStatus.CLOSED
        entry.filled = amount
        entry.reserve = 0.0
        trade = Trade(
            trade_id=f"paper-{self._ids_before[1] + len(self._trades) + 1}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            amount=amount,
            price=price,
            fee=fee,
            ts=_datetime(ts_ns),
        )
        at = bisect.bisect_right(self._trade_ns, ts_ns)
        self._trade_ns.insert(at, ts_ns)
        self._trades.insert(at, trade)

    def _affordable(self, market: Market, amount: float, price: float, free: float) -> float | None:
        """`amount`, or after a gap up the most `free` cash buys on the step; None if too small."""
        fee_rate = market.fee_rate
        if _buy_total(amount, price, fee_rate) <= free:
            return amount
        most = min(amount, max(free, 0.0) / (price * (1 + fee_rate)))
        if market.amount_step is None:
            fit = most
            while fit > 0 and _buy_total(fit, price, fee_rate) > free:
                fit *= 1 - 1e-12
        else:
            step = Decimal(str(market.amount_step))
            units = int(Decimal(str(most)) / step)
            while units > 0 and _buy_total(float(units * step), price, fee_rate) > free:
                units -= 1
            fit = float(units * step)
        if fit <= 0 or fit < market.min_amount or fit * price < market.min_cost:
            return None
        return fit
