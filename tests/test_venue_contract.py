"""The `Venue` contract: one suite, run against the paper venue and the ccxt testnet adapter.

Every contract test runs three times: against `PaperVenue`, and against `TestnetVenue` driving real
ccxt over HTTP to the loopback Binance and Bybit emulators. A `Driver` hides how a test moves the
market: `set_price` sets the price the next market order fills at (paper: the open of a new daily
bar starting at the driver's `now()`, since an order placed at a bar start fills at that open;
emulators: their market price) and `fill_price` is what a market order should then fill at. The
emulators list the markets of `MARKETS` and the paper venue is given the same step, minimums and
fee, so the same amounts are valid, too small or too dear on every venue.

Where the venues legitimately differ, the tests hold each to the common contract and the
difference is written down here rather than hidden:

- Buy fees: Bybit takes a buy's fee in the base coin (a buy of 0.01 BTC credits 0.00999 BTC and
  debits exactly the notional); Binance and the paper venue take it in the quote. `Trade.fee` is
  in the quote on every venue (the adapter values a base-coin fee at the fill price), and either
  way the fee is the only value a fill loses. Sells pay their fee in the quote everywhere.
- Amounts off the step: `PaperVenue` refuses them (`InvalidOrder`, nothing recorded);
  `TestnetVenue` rounds them down to the step with ccxt's `amount_to_precision` and the order
  carries the rounded amount. Either way no order is ever off the step.
- Slippage: the paper venue fills market orders `slippage_bps` worse than the bar's open; the
  emulators fill at their price. `Driver.fill_price` accounts for it.
- `Order.price` of a market order: None on the paper venue, the exchange's average fill price on
  the testnet; not part of the contract.
- Time: the paper venue stamps a fill with its bar's start (the caller's simulated `now`), the
  testnet with the exchange clock, in milliseconds. `trades(since)` is strictly after `since` on
  both, so on the testnet two fills are told apart only at distinct milliseconds (`Driver.later`).
- Re-placing a client id: the paper venue keeps its orders in the process, so "twice" means twice
  in one process. The testnet venue looks every client id up on the exchange before sending it,
  so a restarted process re-placing an id gets the order it already made (Binance would otherwise
  accept a filled order's id again, and Bybit refuse it with an error).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

import pandas as pd
import pytest

from agent.ports import (
    InsufficientFunds,
    InvalidOrder,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Trade,
    Venue,
)
from agent.venue import testnet as sandbox
from agent.venue.paper import PaperVenue
from risk.verdict import Side
from tests.emulators import common
from tests.emulators.binance import BinanceEmulator
from tests.emulators.bybit import BybitEmulator
from tests.emulators.common import LoopbackEmulator

QUOTE = "USDT"
CASH = 10_000.0
"""The emulators' starting USDT balance, and the paper venue's."""
FEE = 0.001
"""The emulators' fee rate, ccxt's taker fee for both exchanges, and the paper venue's."""
SLIPPAGE_BPS = 5.0
BTC, ETH = "BTC/USDT", "ETH/USDT"


@dataclass(frozen=True)
class Spec:
    """One market as every venue lists it."""

    symbol: str
    step: Decimal
    min_amount: Decimal
    min_cost: Decimal
    price: float
    """The starting price."""

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def exchange_symbol(self) -> str:
        return self.symbol.replace("/", "")

    def paper_market(self) -> Market:
        return Market(
            symbol=self.symbol,
            base=self.base,
            quote=QUOTE,
            amount_step=float(self.step),
            min_amount=float(self.min_amount),
            min_cost=float(self.min_cost),
            fee_rate=FEE,
        )

    def emulator_market(self) -> common.Market:
        return common.Market(
            self.exchange_symbol,
            self.base,
            QUOTE,
            tick_size=Decimal("0.01"),
            step_size=self.step,
            min_qty=self.min_amount,
            min_notional=self.min_cost,
        )


MARKETS = {
    BTC: Spec(BTC, Decimal("0.00001"), Decimal("0.0005"), Decimal(10), 50_000.0),
    ETH: Spec(ETH, Decimal("0.0001"), Decimal("0.001"), Decimal(10), 3_000.0),
}
"""The minimum amount sits above one step, so "below the minimum" and "off the step" differ."""


class Driver(Protocol):
    """A venue under test and the means to move its market."""

    name: str
    venue: Venue
    buy_fee_in: Literal["quote", "base"]
    off_step: Literal["reject", "round down"]

    def now(self) -> datetime:
        """The `now` to pass to the venue."""
        ...

    def set_price(self, symbol: str, price: float) -> None:
        """The next market order on `symbol` fills at `price` (plus slippage on paper)."""
        ...

    def fill_price(self, symbol: str, side: Side) -> float:
        """What a market order placed now fills at."""
        ...

    def later(self) -> None:
        """Let time pass: the next fill is stamped after every earlier one."""
        ...


class PaperDriver:
    """The paper venue over flat daily bars: each `set_price` or `later` starts a new day whose
    bar opens at the price, and `now()` is that day's start, where a market order fills at once."""

    buy_fee_in: Literal["quote", "base"] = "quote"
    off_step: Literal["reject", "round down"] = "reject"

    def __init__(self) -> None:
        self.name = "paper"
        self.day = datetime(2024, 1, 1, tzinfo=UTC)
        self.opens: dict[str, dict[datetime, float]] = {
            symbol: {self.day: spec.price} for symbol, spec in MARKETS.items()
        }
        markets = {symbol: spec.paper_market() for symbol, spec in MARKETS.items()}
        self.venue = PaperVenue(markets, self._bars, QUOTE, CASH, SLIPPAGE_BPS)

    def _bars(self, symbol: str) -> pd.DataFrame:
        """Every bar up to today's: the venue fetches again once a new day has started."""
        opens = pd.Series(self.opens[symbol])
        index = pd.DatetimeIndex(opens.index).tz_localize(None).rename("date")
        values = opens.to_numpy()
        columns = dict.fromkeys(("open", "high", "low", "close"), values)
        return pd.DataFrame({**columns, "volume": 1.0}, index=index)

    def now(self) -> datetime:
        return self.day

    def set_price(self, symbol: str, price: float) -> None:
        self.later()
        self.opens[symbol][self.day] = price

    def fill_price(self, symbol: str, side: Side) -> float:
        slip = SLIPPAGE_BPS / 10_000
        return self.opens[symbol][self.day] * (1 + slip if side is Side.BUY else 1 - slip)

    def later(self) -> None:
        self.day += timedelta(days=1)
        for opens in self.opens.values():
            opens[self.day] = opens[max(opens)]


class TestnetDriver:
    """`TestnetVenue` against an exchange emulator; prices are the emulator's."""

    __test__ = False  # not a test class, despite its name
    off_step: Literal["reject", "round down"] = "round down"

    def __init__(self, name: str, emulator: LoopbackEmulator) -> None:
        self.name = name
        self.emulator = emulator
        self.buy_fee_in: Literal["quote", "base"] = "base" if name == "bybit" else "quote"
        for spec in MARKETS.values():
            emulator.set_price(spec.exchange_symbol, spec.price)
        self.venue = self.open_venue()

    def open_venue(self) -> sandbox.TestnetVenue:
        """A venue as a (re)started process builds it."""
        venue = sandbox.TestnetVenue(
            self.name,
            self.emulator.api_key,
            self.emulator.secret,
            quote=QUOTE,
            assets=tuple(spec.base for spec in MARKETS.values()),
            api_url=self.emulator.url,
            timeout_s=2.0,
            read_attempts=2,
            first_wait_s=0.01,
            max_wait_s=0.05,
        )
        venue.client.enableRateLimit = False  # the emulator has no rate limit; only slows tests
        return venue

    def now(self) -> datetime:
        return datetime.now(UTC)

    def set_price(self, symbol: str, price: float) -> None:
        self.later()
        self.emulator.set_price(MARKETS[symbol].exchange_symbol, price)

    def fill_price(self, symbol: str, side: Side) -> float:
        price = self.emulator.price_of(MARKETS[symbol].exchange_symbol)
        assert price is not None
        return float(price)

    def later(self) -> None:
        time.sleep(0.005)  # the exchange stamps fills in milliseconds


def _emulator(name: str) -> LoopbackEmulator:
    emulators = {"binance": BinanceEmulator, "bybit": BybitEmulator}
    markets = tuple(spec.emulator_market() for spec in MARKETS.values())
    return emulators[name](markets=markets)


@pytest.fixture(params=["paper", "binance", "bybit"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    if request.param == "paper":
        yield PaperDriver()
        return
    with _emulator(request.param) as emulator:
        yield TestnetDriver(request.param, emulator)


@pytest.fixture(params=["binance", "bybit"])
def testnet(request: pytest.FixtureRequest) -> Iterator[TestnetDriver]:
    with _emulator(request.param) as emulator:
        yield TestnetDriver(request.param, emulator)


# -- helpers -------------------------------------------------------------------------------------


def market(cid: str, side: Side, amount: float, symbol: str = BTC) -> OrderRequest:
    return OrderRequest(cid, symbol, side, OrderType.MARKET, amount)


def place(driver: Driver, cid: str, side: Side, amount: float, symbol: str = BTC) -> Order:
    return driver.venue.place_order(market(cid, side, amount, symbol), driver.now())


def fills(driver: Driver, since: datetime | None = None) -> list[Trade]:
    return driver.venue.trades(since, driver.now())


def on_step(amount: float, symbol: str) -> bool:
    units = Decimal(str(amount)) / MARKETS[symbol].step
    return units == units.to_integral_value()


def floor_to_step(amount: float, symbol: str) -> float:
    step = MARKETS[symbol].step
    return float(Decimal(str(amount)) // step * step)


def assert_nothing_recorded(driver: Driver, cid: str, before: dict[str, float]) -> None:
    """A refused order left no order, no trade and no change in the balances behind."""
    now = driver.now()
    assert driver.venue.fetch_order(cid, now) is None
    assert driver.venue.trades(None, now) == []
    assert driver.venue.open_orders(now) == []
    assert driver.venue.balances(now) == pytest.approx(before)


# -- the contract --------------------------------------------------------------------------------


def test_markets_list_the_same_step_minimums_and_fee_on_every_venue(driver: Driver) -> None:
    markets = driver.venue.markets()
    assert set(markets) == set(MARKETS)
    for symbol, spec in MARKETS.items():
        listed = markets[symbol]
        assert (listed.symbol, listed.base, listed.quote) == (symbol, spec.base, QUOTE)
        assert listed.amount_step == pytest.approx(float(spec.step))
        assert listed.min_amount == pytest.approx(float(spec.min_amount))
        assert listed.min_cost == pytest.approx(float(spec.min_cost))
        assert listed.fee_rate == pytest.approx(FEE)


def test_balances_start_with_the_cash_in_the_quote_and_nothing_in_the_bases(
    driver: Driver,
) -> None:
    assert driver.venue.balances(driver.now()) == {QUOTE: CASH, "BTC": 0.0, "ETH": 0.0}


def test_a_market_buy_fills_in_full_at_the_market_price_as_one_trade_under_its_client_id(
    driver: Driver,
) -> None:
    driver.set_price(BTC, 40_000.0)
    price = driver.fill_price(BTC, Side.BUY)
    order = place(driver, "contract-buy-0", Side.BUY, 0.01)
    assert order.client_order_id == "contract-buy-0"
    assert (order.symbol, order.side, order.type) == (BTC, Side.BUY, OrderType.MARKET)
    assert order.status is OrderStatus.CLOSED
    assert order.amount == pytest.approx(0.01)
    assert order.filled == pytest.approx(0.01)
    assert order.venue_order_id
    [trade] = fills(driver)
    assert trade.client_order_id == "contract-buy-0"
    assert (trade.symbol, trade.side) == (BTC, Side.BUY)
    assert trade.amount == pytest.approx(0.01)
    assert trade.price == pytest.approx(price)
    assert trade.fee == pytest.approx(0.01 * price * FEE)
    assert trade.trade_id


def test_a_market_buy_moves_the_quote_and_the_base_by_the_notional_and_the_fee(
    driver: Driver,
) -> None:
    now = driver.now()
    before = driver.venue.balances(now)
    place(driver, "contract-buy-0", Side.BUY, 0.01)
    [trade] = fills(driver)
    after = driver.venue.balances(driver.now())
    spent = before[QUOTE] - after[QUOTE]
    received = after["BTC"] - before["BTC"]
    notional = trade.amount * trade.price
    if driver.buy_fee_in == "quote":
        assert spent == pytest.approx(notional + trade.fee)
        assert received == pytest.approx(trade.amount)
    else:  # bybit: the fee comes out of the coin bought
        assert spent == pytest.approx(notional)
        assert received == pytest.approx(trade.amount - trade.fee / trade.price)
    assert received * trade.price - spent == pytest.approx(-trade.fee)  # the fee is all it cost
    assert after["ETH"] == before["ETH"]


def test_fetch_order_by_client_id_returns_the_placed_order(driver: Driver) -> None:
    placed = place(driver, "contract-fetch-0", Side.BUY, 0.01)
    found = driver.venue.fetch_order("contract-fetch-0", driver.now())
    assert found is not None
    assert found.client_order_id == placed.client_order_id
    assert found.venue_order_id == placed.venue_order_id
    assert (found.symbol, found.side, found.type) == (placed.symbol, placed.side, placed.type)
    assert found.status is OrderStatus.CLOSED
    assert found.amount == pytest.approx(placed.amount)
    assert found.filled == pytest.approx(placed.filled)


def test_fetch_order_of_a_client_id_the_venue_never_saw_is_none(driver: Driver) -> None:
    place(driver, "contract-seen-0", Side.BUY, 0.01)
    assert driver.venue.fetch_order("contract-never-0", driver.now()) is None


def test_placing_the_same_client_id_twice_returns_the_first_order_and_trades_once(
    driver: Driver,
) -> None:
    first = place(driver, "contract-twice-0", Side.BUY, 0.01)
    balances = driver.venue.balances(driver.now())
    driver.later()
    again = place(driver, "contract-twice-0", Side.BUY, 0.02)  # even if the request differs
    assert again.venue_order_id == first.venue_order_id
    assert again.amount == pytest.approx(0.01)
    assert again.filled == pytest.approx(0.01)
    assert [t.client_order_id for t in fills(driver)] == ["contract-twice-0"]
    assert driver.venue.balances(driver.now()) == pytest.approx(balances)


def test_a_sell_after_a_buy_sells_the_holding_and_credits_the_notional_less_the_fee(
    driver: Driver,
) -> None:
    place(driver, "contract-rt-0", Side.BUY, 0.01)
    held = driver.venue.balances(driver.now())
    amount = floor_to_step(held["BTC"], BTC)  # bybit kept its buy fee in BTC: a little less
    driver.set_price(BTC, 52_000.0)
    price = driver.fill_price(BTC, Side.SELL)
    sold = place(driver, "contract-rt-1", Side.SELL, amount)
    assert sold.status is OrderStatus.CLOSED
    assert sold.side is Side.SELL
    assert sold.filled == pytest.approx(amount)
    buy, sell = fills(driver)
    assert buy.client_order_id == "contract-rt-0"
    assert (sell.client_order_id, sell.side) == ("contract-rt-1", Side.SELL)
    assert sell.price == pytest.approx(price)
    assert sell.fee == pytest.approx(amount * price * FEE)
    after = driver.venue.balances(driver.now())
    assert after[QUOTE] - held[QUOTE] == pytest.approx(amount * price - sell.fee)
    assert 0 <= after["BTC"] < float(MARKETS[BTC].step)
    assert driver.venue.open_orders(driver.now()) == []


def test_an_amount_below_the_minimum_amount_is_an_invalid_order_and_leaves_nothing(
    driver: Driver,
) -> None:
    amount = float(MARKETS[BTC].min_amount) - 3 * float(MARKETS[BTC].step)  # on the step
    assert on_step(amount, BTC)
    before = driver.venue.balances(driver.now())
    with pytest.raises(InvalidOrder):
        place(driver, "contract-small-0", Side.BUY, amount)
    assert_nothing_recorded(driver, "contract-small-0", before)


def test_a_notional_below_the_minimum_cost_is_an_invalid_order_and_leaves_nothing(
    driver: Driver,
) -> None:
    eth = MARKETS[ETH]
    amount = 0.003  # above the minimum amount, on the step; 9 USDT at 3,000
    assert amount >= float(eth.min_amount)
    assert amount * eth.price < float(eth.min_cost)
    before = driver.venue.balances(driver.now())
    with pytest.raises(InvalidOrder):
        place(driver, "contract-cheap-0", Side.BUY, amount, ETH)
    assert_nothing_recorded(driver, "contract-cheap-0", before)


def test_the_minimum_cost_is_checked_at_the_price_the_market_moved_to(driver: Driver) -> None:
    amount = 0.0009  # 45 USDT at 50,000, 9 USDT at 10,000
    driver.set_price(BTC, 10_000.0)
    before = driver.venue.balances(driver.now())
    with pytest.raises(InvalidOrder):
        place(driver, "contract-cheap-1", Side.BUY, amount)
    assert_nothing_recorded(driver, "contract-cheap-1", before)
    driver.set_price(BTC, 50_000.0)
    assert place(driver, "contract-cheap-2", Side.BUY, amount).filled == pytest.approx(amount)


def test_a_buy_costing_more_than_the_quote_held_is_insufficient_funds_and_leaves_nothing(
    driver: Driver,
) -> None:
    before = driver.venue.balances(driver.now())
    with pytest.raises(InsufficientFunds):
        place(driver, "contract-dear-0", Side.BUY, 0.25)  # 12,500 USDT with 10,000
    assert_nothing_recorded(driver, "contract-dear-0", before)


def test_a_sell_of_more_than_is_held_is_insufficient_funds(driver: Driver) -> None:
    place(driver, "contract-short-0", Side.BUY, 0.01)
    with pytest.raises(InsufficientFunds):
        place(driver, "contract-short-1", Side.SELL, 0.02)
    assert driver.venue.fetch_order("contract-short-1", driver.now()) is None
    assert [t.client_order_id for t in fills(driver)] == ["contract-short-0"]


@pytest.mark.parametrize(("amount", "symbol"), [(0.01234, BTC), (0.0123, ETH)])
def test_an_amount_on_the_step_is_kept_exactly_in_the_order_and_its_fill(
    driver: Driver, amount: float, symbol: str
) -> None:
    assert on_step(amount, symbol)
    order = place(driver, "contract-step-0", Side.BUY, amount, symbol)
    assert order.amount == pytest.approx(amount, rel=1e-12)
    assert order.filled == pytest.approx(amount, rel=1e-12)
    assert on_step(order.amount, symbol)
    [trade] = fills(driver)
    assert trade.amount == pytest.approx(amount, rel=1e-12)


def test_an_amount_off_the_step_is_refused_by_paper_and_rounded_down_by_the_testnet(
    driver: Driver,
) -> None:
    """Both keep every order on the step; they differ in how (see the module docstring)."""
    amount = 0.012345  # the step is 0.00001
    assert not on_step(amount, BTC)
    before = driver.venue.balances(driver.now())
    if driver.off_step == "reject":
        with pytest.raises(InvalidOrder):
            place(driver, "contract-off-0", Side.BUY, amount)
        assert_nothing_recorded(driver, "contract-off-0", before)
        return
    order = place(driver, "contract-off-0", Side.BUY, amount)
    assert order.amount == pytest.approx(0.01234, rel=1e-12)
    assert order.filled == pytest.approx(0.01234, rel=1e-12)
    assert on_step(order.amount, BTC)


def test_trades_since_a_cursor_are_only_the_fills_after_it(driver: Driver) -> None:
    place(driver, "contract-since-0", Side.BUY, 0.01)
    [first] = fills(driver)
    driver.set_price(BTC, 51_000.0)
    place(driver, "contract-since-1", Side.BUY, 0.01)
    driver.later()
    every = fills(driver)
    assert [t.client_order_id for t in every] == ["contract-since-0", "contract-since-1"]
    assert every[0].ts <= every[1].ts
    newer = fills(driver, since=first.ts)
    assert [t.client_order_id for t in newer] == ["contract-since-1"]
    assert newer[0].trade_id == every[1].trade_id
    assert fills(driver, since=every[1].ts) == []


def test_open_orders_are_empty_once_market_orders_have_filled(driver: Driver) -> None:
    assert driver.venue.open_orders(driver.now()) == []
    place(driver, "contract-open-0", Side.BUY, 0.01)
    place(driver, "contract-open-1", Side.BUY, 0.1, ETH)
    assert driver.venue.open_orders(driver.now()) == []
    assert len(fills(driver)) == 2


# -- the testnet adapter across restarts and below one step -------------------------------


def test_a_restarted_testnet_venue_returns_the_order_a_client_id_already_made(
    testnet: TestnetDriver,
) -> None:
    first = place(testnet, "contract-restart-0", Side.BUY, 0.01)
    testnet.venue = testnet.open_venue()  # a new process: nothing in memory
    again = place(testnet, "contract-restart-0", Side.BUY, 0.01)
    assert again.venue_order_id == first.venue_order_id
    assert len(testnet.emulator.orders_by_client_id("contract-restart-0")) == 1


def test_an_amount_under_one_step_is_an_invalid_order_of_the_ports_on_the_testnet(
    testnet: TestnetDriver,
) -> None:
    try:
        place(testnet, "contract-dust-0", Side.BUY, 0.000004)
    except InvalidOrder:
        return
    except Exception as exc:
        raise AssertionError(f"not a ports InvalidOrder: {type(exc).__module__}") from exc
    raise AssertionError("the order was accepted")


def test_an_amount_under_one_step_is_an_invalid_order_on_paper() -> None:
    paper = PaperDriver()
    before = paper.venue.balances(paper.now())
    with pytest.raises(InvalidOrder):
        place(paper, "contract-dust-0", Side.BUY, 0.000004)
    assert_nothing_recorded(paper, "contract-dust-0", before)
