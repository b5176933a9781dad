import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.ports import (
    InsufficientFunds,
    InvalidOrder,
    Market,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentVenueError,
)
from agent.venue.paper import PaperVenue
from risk.verdict import Side

BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT
FEE = 0.001
SLIP = 0.001
"""10 bps."""


def day(d: int, hour: int = 0) -> datetime:
    """2021-01-<d> at `hour` UTC."""
    return datetime(2021, 1, d, hour, tzinfo=UTC)


def ladder() -> pd.DataFrame:
    """Ten days from 2021-01-01, each opening 10 above the last: the 2021-01-d bar opens at
    90 + 10d, trades 5 either side of its open and closes at the next day's open."""
    opens = 100.0 + 10.0 * np.arange(10)
    index = pd.date_range("2021-01-01", periods=10, name="date")
    return pd.DataFrame(
        {"open": opens, "high": opens + 5, "low": opens - 5, "close": opens + 10, "volume": 1.0},
        index=index,
    )


def btc(**changes: float | None) -> Market:
    fields = {"amount_step": 0.001, "min_amount": 0.001, "min_cost": 10.0, "fee_rate": FEE}
    fields |= changes
    return Market(symbol="BTC/USDT", base="BTC", quote="USDT", **fields)  # type: ignore[arg-type]


def venue(cash: float = 10_000.0, market: Market | None = None, slippage_bps: float = 10.0):
    market = market or btc()
    frames = {"BTC/USDT": ladder()}
    return PaperVenue({market.symbol: market}, frames.__getitem__, "USDT", cash, slippage_bps)


def order(cid: str, side: Side, amount: float, price: float | None = None) -> OrderRequest:
    kind = MARKET if price is None else LIMIT
    return OrderRequest(cid, "BTC/USDT", side, kind, amount, price)


def test_market_buy_placed_at_a_bar_start_fills_at_that_open_plus_slippage_with_the_fee():
    v = venue()
    placed = v.place_order(order("a", BUY, 2.0), day(4))
    assert placed.status is OrderStatus.CLOSED
    assert placed.filled == 2.0
    assert placed.venue_order_id == "paper-o-1"
    [trade] = v.trades(None, day(4))
    assert trade.trade_id == "paper-1"
    assert trade.price == pytest.approx(130 * 1.001)
    assert trade.fee == pytest.approx(2 * 130 * 1.001 * FEE)
    assert trade.ts == day(4)
    balances = v.balances(day(4))
    assert balances["USDT"] == pytest.approx(10_000 - 2 * 130.13 * 1.001)
    assert balances["BTC"] == 2.0


def test_market_buy_placed_before_a_bar_fills_at_the_next_bar_open_once_now_reaches_it():
    v = venue()
    placed = v.place_order(order("a", BUY, 1.0), day(3, 23))
    assert placed.status is OrderStatus.OPEN
    assert v.trades(None, day(4) - timedelta(microseconds=1)) == []
    assert v.balances(day(4) - timedelta(microseconds=1))["BTC"] == 0.0
    assert v.fetch_order("a", day(4)).status is OrderStatus.CLOSED
    [trade] = v.trades(None, day(9))
    assert (trade.price, trade.ts) == (pytest.approx(130.13), day(4))


def test_an_order_placed_mid_day_fills_at_the_next_days_open_not_the_current_bar():
    v = venue()
    v.place_order(order("a", BUY, 1.0), day(4, 12))
    assert v.fetch_order("a", day(4, 23)).status is OrderStatus.OPEN
    [trade] = v.trades(None, day(5, 1))
    assert trade.price == pytest.approx(140 * 1.001)
    assert trade.ts == day(5)


def test_market_sell_fills_at_the_next_open_minus_slippage_net_of_the_fee():
    v = venue()
    v.place_order(order("buy", BUY, 2.0), day(4))
    cash = v.balances(day(4))["USDT"]
    v.place_order(order("sell", SELL, 1.5), day(5, 6))
    assert v.balances(day(5, 23))["BTC"] == 2.0
    sold = v.trades(day(4), day(6))
    assert [t.client_order_id for t in sold] == ["sell"]
    proceeds = 1.5 * 150 * (1 - SLIP)
    assert sold[0].price == pytest.approx(150 * 0.999)
    assert sold[0].fee == pytest.approx(proceeds * FEE)
    balances = v.balances(day(6))
    assert balances["USDT"] == pytest.approx(cash + proceeds * (1 - FEE))
    assert balances["BTC"] == pytest.approx(0.5)


def test_the_same_client_order_id_twice_is_one_order_and_one_trade():
    v = venue()
    first = v.place_order(order("same", BUY, 1.0), day(3, 12))
    again = v.place_order(order("same", BUY, 5.0), day(3, 13))
    assert again == first
    later = v.place_order(order("same", SELL, 3.0, price=1.0), day(6))
    assert later.status is OrderStatus.CLOSED
    assert (later.side, later.amount, later.venue_order_id) == (BUY, 1.0, first.venue_order_id)
    assert len(v.trades(None, day(9))) == 1
    assert v.balances(day(9))["BTC"] == 1.0
    assert v.fetch_order("other", day(9)) is None


def test_limit_buy_fills_at_the_limit_only_once_a_bar_low_crosses_it_stamped_at_the_bar_end():
    v = venue()
    placed = v.place_order(order("a", BUY, 1.0, price=127.0), day(4))
    assert placed.status is OrderStatus.OPEN  # opened at 130; the low is unknown until day 5
    assert v.fetch_order("a", day(4, 23)).status is OrderStatus.OPEN
    [trade] = v.trades(None, day(5))
    assert (trade.price, trade.ts) == (127.0, day(5))
    assert trade.fee == pytest.approx(127 * FEE)
    assert v.balances(day(5))["USDT"] == pytest.approx(10_000 - 127 * (1 + FEE))


def test_limit_buy_below_every_low_never_fills():
    v = venue()
    v.place_order(order("a", BUY, 1.0, price=124.0), day(4))
    assert v.trades(None, day(20)) == []
    assert v.fetch_order("a", day(20)).status is OrderStatus.OPEN


def test_limit_buy_above_the_open_fills_at_the_open_as_soon_as_the_bar_starts():
    v = venue()
    placed = v.place_order(order("a", BUY, 1.0, price=132.0), day(4))
    assert placed.status is OrderStatus.CLOSED
    [trade] = v.trades(None, day(4))
    assert (trade.price, trade.ts) == (130.0, day(4))


def test_a_limit_sell_stays_open_and_fills_on_a_later_bar_whose_high_crosses():
    v = venue()
    v.place_order(order("buy", BUY, 1.0), day(4))
    v.place_order(order("sell", SELL, 1.0, price=153.0), day(4, 1))
    for now in (day(5), day(6), day(6, 23)):
        assert v.fetch_order("sell", now).status is OrderStatus.OPEN
    assert v.trades(day(4), day(6, 23)) == []
    sold = v.trades(day(4), day(7))
    assert [(t.price, t.ts) for t in sold] == [(153.0, day(7))]  # day 6: open 150, high 155
    assert v.balances(day(7))["BTC"] == 0.0


def test_a_limit_sell_below_the_open_fills_at_the_open():
    v = venue()
    v.place_order(order("buy", BUY, 1.0), day(4))
    v.place_order(order("sell", SELL, 1.0, price=120.0), day(4, 12))
    [_, sold] = v.trades(None, day(5))
    assert (sold.price, sold.ts) == (140.0, day(5))


def test_a_buy_beyond_the_cash_raises_and_records_nothing():
    v = venue(cash=1_000.0)
    with pytest.raises(InsufficientFunds, match="BTC/USDT"):
        v.place_order(order("big", BUY, 8.0), day(4))
    assert v.fetch_order("big", day(9)) is None
    assert v.open_orders(day(9)) == []
    assert v.trades(None, day(9)) == []
    assert v.balances(day(9)) == {"USDT": 1_000.0, "BTC": 0.0}


def test_cash_reserved_by_an_open_buy_is_not_free_for_another():
    v = venue(cash=1_000.0)
    v.place_order(order("first", BUY, 4.0, price=125.0), day(4))
    with pytest.raises(InsufficientFunds, match="free"):
        v.place_order(order("second", BUY, 4.0, price=125.0), day(4, 1))
    assert [o.client_order_id for o in v.open_orders(day(4, 1))] == ["first"]


def test_selling_more_than_is_held_or_free_raises_and_records_nothing():
    v = venue()
    with pytest.raises(InsufficientFunds, match="selling 1 BTC"):
        v.place_order(order("naked", SELL, 1.0), day(4))
    v.place_order(order("buy", BUY, 1.0), day(4))
    v.place_order(order("half", SELL, 0.6, price=500.0), day(4))
    with pytest.raises(InsufficientFunds, match="in open sells"):
        v.place_order(order("rest", SELL, 0.5), day(4))
    assert v.fetch_order("naked", day(5)) is None
    assert v.fetch_order("rest", day(5)) is None
    assert [t.client_order_id for t in v.trades(None, day(9))] == ["buy"]
    assert v.balances(day(9))["BTC"] == 1.0


@pytest.mark.parametrize(
    ("market", "amount", "price", "reason"),
    [
        (btc(), 0.0015, None, "amount 0.0015 is not a multiple of the step 0.001"),
        (btc(min_amount=0.01), 0.005, None, "amount 0.005 is below the minimum amount 0.01"),
        (btc(), 0.07, None, "notional 9.10 USDT is below the minimum cost 10.00"),
        (btc(), 0.07, 130.0, "notional 9.10 USDT is below the minimum cost 10.00"),
        (btc(), 0.0, None, "amount must be a positive number, got 0.0"),
        (btc(), -1.0, None, "amount must be a positive number, got -1.0"),
        (btc(), math.nan, None, "amount must be a positive number, got nan"),
        (btc(), 1.0, -5.0, "a limit order needs a positive price, got -5.0"),
    ],
)
def test_orders_breaking_the_market_rules_raise_invalid_order_with_a_one_line_reason(
    market, amount, price, reason
):
    v = venue(market=market)
    with pytest.raises(InvalidOrder) as raised:
        v.place_order(order("x", BUY, amount, price), day(4))
    message = str(raised.value)
    assert message == f"order 'x' on BTC/USDT: {reason}"
    assert v.fetch_order("x", day(9)) is None


def test_a_limit_without_a_price_or_a_market_order_with_one_is_invalid():
    v = venue()
    with pytest.raises(InvalidOrder, match="a limit order needs a positive price, got None"):
        v.place_order(OrderRequest("x", "BTC/USDT", BUY, LIMIT, 1.0), day(4))
    with pytest.raises(InvalidOrder, match="a market order takes no price, got 130"):
        v.place_order(OrderRequest("y", "BTC/USDT", BUY, MARKET, 1.0, 130.0), day(4))
    assert v.open_orders(day(9)) == []
    assert v.trades(None, day(9)) == []


def test_an_amount_off_the_step_by_float_noise_is_on_the_step():
    v = venue()
    v.place_order(order("a", BUY, 0.1 + 0.2), day(4))
    assert v.balances(day(4))["BTC"] == pytest.approx(0.3)


def test_a_market_order_before_any_bar_is_invalid():
    with pytest.raises(InvalidOrder, match="no price yet"):
        venue().place_order(order("early", BUY, 1.0), datetime(2020, 12, 31, tzinfo=UTC))


def test_an_unknown_symbol_raises_invalid_order_naming_it():
    v = venue()
    request = OrderRequest("x", "XRP/USDT", BUY, MARKET, 1.0)
    with pytest.raises(InvalidOrder, match=r"unknown symbol 'XRP/USDT' \(markets: BTC/USDT\)"):
        v.place_order(request, day(4))
    assert v.fetch_order("x", day(4)) is None


def test_trades_since_returns_only_later_fills_oldest_first():
    v = venue()
    v.place_order(order("a", BUY, 1.0), day(3, 12))
    v.place_order(order("b", BUY, 1.0), day(5, 12))
    every = v.trades(None, day(9))
    assert [(t.trade_id, t.ts) for t in every] == [("paper-1", day(4)), ("paper-2", day(6))]
    assert v.trades(day(4), day(9)) == every[1:]
    assert v.trades(day(4) - timedelta(microseconds=1), day(9)) == every
    assert v.trades(day(6), day(9)) == []
    assert v.trades(None, day(5)) == every[:1]


def test_fills_settled_in_one_call_are_numbered_in_the_order_they_happened():
    v = venue()
    v.place_order(order("buy", BUY, 1.0), day(4))
    v.place_order(order("limit", SELL, 1.0, price=153.0), day(4, 1))  # fills on day 6's bar
    v.place_order(order("market", BUY, 1.0), day(5, 12))  # fills at day 6's open
    trades = v.trades(day(4), day(9))
    assert [(t.client_order_id, t.trade_id, t.ts) for t in trades] == [
        ("market", "paper-2", day(6)),
        ("limit", "paper-3", day(7)),
    ]


def test_balances_conserve_value_across_a_sequence_of_fills():
    v = venue()
    v.place_order(order("1", BUY, 3.0), day(2))
    v.place_order(order("2", SELL, 1.0), day(3, 5))
    v.place_order(order("3", BUY, 0.5, price=158.0), day(6))
    v.place_order(order("4", SELL, 2.5, price=171.0), day(7, 3))
    trades = v.trades(None, day(11))
    assert len(trades) == 4
    balances = v.balances(day(11))
    signed = {BUY: 1.0, SELL: -1.0}
    spent = sum(signed[t.side] * t.amount * t.price for t in trades)
    fees = sum(t.fee for t in trades)
    assert balances["USDT"] == pytest.approx(10_000 - spent - fees)
    assert balances["BTC"] == pytest.approx(sum(signed[t.side] * t.amount for t in trades))
    # By hand: 3 @ 110.11, 1 @ 129.87, 0.5 @ 150 (limit above the open), 2.5 @ 171 (intrabar).
    cash = 10_000 - 330.33 * 1.001 + 129.87 * 0.999 - 75 * 1.001 + 427.5 * 0.999
    assert balances == {"USDT": pytest.approx(cash), "BTC": 0.0}


def test_a_buy_the_open_gapped_past_fills_for_what_the_cash_allows_on_the_step():
    v = venue(cash=1_000.0)
    # Placed mid-day 4: reserved at day 4's open (130), filled at day 5's (140).
    amount = 7.6
    assert amount * 130.13 * 1.001 <= 1_000
    v.place_order(order("gap", BUY, amount), day(4, 12))
    filled = v.fetch_order("gap", day(5))
    assert filled.status is OrderStatus.CLOSED
    assert filled.filled == 7.128  # floor(1000 / (140.14 x 1.001)) at step 0.001
    [trade] = v.trades(None, day(5))
    assert trade.amount == filled.filled
    cash = v.balances(day(5))["USDT"]
    assert 0 <= cash < 0.001 * 140.14 * 1.001


def test_a_gapped_buy_that_would_fall_below_the_minimums_is_rejected_without_a_trade():
    v = venue(cash=1_000.0, market=btc(min_amount=7.5, amount_step=0.1))
    v.place_order(order("gap", BUY, 7.6), day(4, 12))
    assert v.fetch_order("gap", day(5)).status is OrderStatus.REJECTED
    assert v.fetch_order("gap", day(5)).filled == 0.0
    assert v.trades(None, day(9)) == []
    assert v.balances(day(9)) == {"USDT": 1_000.0, "BTC": 0.0}
    assert v.open_orders(day(9)) == []


def test_a_gapped_buy_cannot_spend_cash_reserved_by_another_open_buy():
    v = venue(cash=1_000.0)
    v.place_order(order("limit", BUY, 4.0, price=100.0), day(4))  # reserves 400.40
    v.place_order(order("gap", BUY, 4.6), day(4, 12))  # reserves 4.6 x 130.13 x 1.001 = 599.19
    gapped = v.fetch_order("gap", day(5))
    assert gapped.filled == 4.274  # floor(599.60 / (140.14 x 1.001)) at step 0.001
    assert v.fetch_order("limit", day(5)).status is OrderStatus.OPEN
    assert v.balances(day(5))["USDT"] >= 4 * 100 * 1.001


def test_cancel_closes_an_open_order_releases_its_reservation_and_it_never_fills():
    v = venue(cash=1_000.0)
    v.place_order(order("a", BUY, 7.0, price=126.0), day(4))
    canceled = v.cancel_order("a", day(4, 6))
    assert (canceled.status, canceled.filled) == (OrderStatus.CANCELED, 0.0)
    assert v.open_orders(day(4, 6)) == []
    v.place_order(order("b", BUY, 7.0, price=124.0), day(4, 7))  # the cash is free again
    assert v.trades(None, day(9)) == []
    assert v.fetch_order("a", day(9)).status is OrderStatus.CANCELED
    assert v.cancel_order("a", day(9)) == canceled


def test_cancel_of_a_filled_order_returns_it_unchanged_and_of_an_unknown_id_raises():
    v = venue()
    v.place_order(order("a", BUY, 1.0), day(4))
    assert v.cancel_order("a", day(5)).status is OrderStatus.CLOSED
    with pytest.raises(InvalidOrder, match="'nope'"):
        v.cancel_order("nope", day(5))


def test_naive_datetimes_are_rejected():
    v = venue()
    with pytest.raises(ValueError, match="timezone-aware"):
        v.balances(datetime(2021, 1, 4))
    with pytest.raises(ValueError, match="timezone-aware"):
        v.trades(datetime(2021, 1, 4), day(4))


def test_bars_are_read_once_per_symbol_in_a_backtest():
    calls = []

    def bars(symbol: str) -> pd.DataFrame:
        calls.append(symbol)
        return ladder()

    v = PaperVenue({"BTC/USDT": btc()}, bars, "USDT", 10_000.0, 10.0)
    for d in range(1, 10):
        v.place_order(order(f"o{d}", BUY, 0.2), day(d, 12))
        v.balances(day(d, 18))
    assert calls == ["BTC/USDT"]


def test_bars_ending_before_now_are_fetched_again_at_most_once_a_day():
    published = {"through": 4}
    calls = []

    def bars(symbol: str) -> pd.DataFrame:
        calls.append(published["through"])
        return ladder().iloc[published["through"] - 3 : published["through"]]  # a 3-day window

    v = PaperVenue({"BTC/USDT": btc()}, bars, "USDT", 10_000.0, 10.0)
    v.place_order(order("buy", BUY, 1.0), day(4))
    v.place_order(order("sell", SELL, 1.0, price=153.0), day(4, 1))
    v.balances(day(5))
    v.balances(day(5, 12))
    published["through"] = 6
    assert v.fetch_order("sell", day(5, 13)).status is OrderStatus.OPEN
    assert v.fetch_order("sell", day(6, 1)).status is OrderStatus.OPEN
    published["through"] = 7
    [sold] = v.trades(day(4), day(7))
    assert (sold.price, sold.ts) == (153.0, day(7))
    assert calls == [4, 4, 6, 7]


# -- property -----------------------------------------------------------------------------------

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def walk(seed: int, start: float) -> pd.DataFrame:
    """A month of volatile bars whose opens gap away from the previous close."""
    rng = np.random.default_rng(seed)
    n = 30
    close = start * np.exp(np.cumsum(rng.normal(0, 0.06, n)))
    opens = np.r_[start, close[:-1]] * np.exp(rng.normal(0, 0.04, n))
    high = np.maximum(opens, close) * np.exp(np.abs(rng.normal(0, 0.03, n)))
    low = np.minimum(opens, close) * np.exp(-np.abs(rng.normal(0, 0.03, n)))
    index = pd.date_range("2021-01-01", periods=n, name="date")
    frame = {"open": opens, "high": high, "low": low, "close": close, "volume": np.nan}
    return pd.DataFrame(frame, index=index)


WALKS = {"BTC/USDT": walk(1, 100.0), "ETH/USDT": walk(2, 10.0)}
PROPERTY_MARKETS = {
    "BTC/USDT": Market("BTC/USDT", "BTC", "USDT", 0.001, 0.001, 1.0, 0.001),
    "ETH/USDT": Market("ETH/USDT", "ETH", "USDT", None, 0.0, 0.5, 0.0025),
}

actions = st.lists(
    st.tuples(
        st.integers(0, 40),  # hours to wait
        st.sampled_from(SYMBOLS),
        st.sampled_from([BUY, SELL]),
        st.sampled_from([MARKET, LIMIT, "cancel"]),
        st.one_of(st.just(1.0), st.just(0.0015), st.floats(0.001, 1.0)),  # share of the balance
        st.floats(0.85, 1.15),  # limit / reference
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions)
def test_random_orders_keep_balances_non_negative_and_fees_account_for_the_cash(steps):
    v = PaperVenue(PROPERTY_MARKETS, WALKS.__getitem__, "USDT", 1_000.0, 25.0)
    now = datetime(2021, 1, 1, tzinfo=UTC)
    v.place_order(OrderRequest("seed-btc", "BTC/USDT", BUY, MARKET, 3.0), now)
    v.place_order(OrderRequest("seed-eth", "ETH/USDT", BUY, MARKET, 30.0), now)
    placed = ["seed-btc", "seed-eth"]
    for n, (hours, symbol, side, kind, share, ratio) in enumerate(steps):
        now += timedelta(hours=hours)
        market = PROPERTY_MARKETS[symbol]
        if kind == "cancel":
            if placed:
                v.cancel_order(placed[n % len(placed)], now)
            continue
        frame = WALKS[symbol]
        price = float(frame["open"].asof(pd.Timestamp(now.date())))
        limit = price * ratio if kind is LIMIT else None
        balances = v.balances(now)
        if side is BUY:
            pay = price * (1 + 25e-4) if limit is None else limit
            amount = share * balances["USDT"] / (pay * (1 + market.fee_rate))
        else:
            amount = share * balances[market.base]
        if market.amount_step is not None:
            amount = math.floor(amount / market.amount_step) * market.amount_step
        if amount <= 0:
            continue
        request = OrderRequest(f"c{n}", symbol, side, kind, amount, limit)
        try:
            v.place_order(request, now)
        except PermanentVenueError:
            continue
        placed.append(request.client_order_id)
        after = v.balances(now)
        assert all(value >= 0 for value in after.values()), after
    end = datetime(2021, 3, 1, tzinfo=UTC)
    balances = v.balances(end)
    assert all(value >= 0 for value in balances.values()), balances
    trades = v.trades(None, end)
    signed = {BUY: 1.0, SELL: -1.0}
    spent = sum(signed[t.side] * t.amount * t.price for t in trades)
    fees = sum(t.fee for t in trades)
    assert balances["USDT"] == pytest.approx(1_000.0 - spent - fees, abs=1e-9)
    for symbol, market in PROPERTY_MARKETS.items():
        held = sum(signed[t.side] * t.amount for t in trades if t.symbol == symbol)
        assert balances[market.base] == pytest.approx(held, abs=1e-12)
    for cid in placed:
        o = v.fetch_order(cid, end)
        assert o.filled == sum(t.amount for t in trades if t.client_order_id == cid)
        assert o.filled <= o.amount
        assert (o.status is OrderStatus.CLOSED) == (o.filled > 0)
    assert len({t.trade_id for t in trades}) == len(trades)
