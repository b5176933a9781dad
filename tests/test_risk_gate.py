import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.gate import Account, MarketLimits, Quote, RiskRequest, evaluate
from risk.limits import RiskParams
from risk.verdict import Clamp, OrderIntent, Rule, Side, Verdict
from strategies.params import ParamError

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
PRICES = {"BTC": 50_000.0, "ETH": 2_000.0, "SOL": 200.0}
LOOSE = RiskParams(
    max_total_exposure=1.0,
    max_asset_exposure=1.0,
    max_order_notional=1e9,
    min_order_notional=0.0,
    max_daily_turnover=10.0,
    rebalance_band=0.0,
)
"""Limits that never bind, so that each test tightens only the rule it is about."""


def request(
    targets: dict[str, float],
    *,
    cash: float = 100_000.0,
    positions: dict[str, float] | None = None,
    prices: dict[str, float] | None = None,
    quotes: dict[str, Quote] | None = None,
    limits: dict[str, MarketLimits] | None = None,
    stage_cap: float = 1.0,
    last_good: dict[str, float] | None = None,
    peak: float = 100_000.0,
    turnover_today: float = 0.0,
    errors: int = 0,
) -> RiskRequest:
    prices = PRICES if prices is None else prices
    fresh = {asset: Quote(price, NOW - timedelta(hours=1)) for asset, price in prices.items()}
    return RiskRequest(
        now=NOW,
        targets=targets,
        stage_cap=stage_cap,
        account=Account(cash, positions or {}),
        quotes=fresh | (quotes or {}),
        last_good_prices=last_good or {},
        limits={asset: MarketLimits() for asset in prices} if limits is None else limits,
        peak_equity=peak,
        turnover_today=turnover_today,
        consecutive_errors=errors,
    )


def only(verdict: Verdict, rule: Rule) -> Clamp:
    [clamp] = [clamp for clamp in verdict.clamps if clamp.rule == rule]
    return clamp


def order(verdict: Verdict, asset: str) -> OrderIntent:
    [found] = [o for o in verdict.orders if o.asset == asset]
    return found


def buys(verdict: Verdict) -> list[OrderIntent]:
    return [o for o in verdict.orders if o.side == Side.BUY]


# --- buying within the limits, and the caps ----------------------------------------------------


def test_buy_within_every_limit_is_approved_at_the_target_weight():
    verdict = evaluate(request({"BTC": 0.2}), LOOSE)
    assert verdict.orders == (OrderIntent("BTC", Side.BUY, 0.4, 50_000.0, 20_000.0),)
    assert verdict.clamps == ()
    assert verdict.buying_allowed
    assert not verdict.halted
    assert verdict.equity == 100_000.0
    assert verdict.drawdown == 0.0


def test_buy_above_its_asset_cap_then_cut_to_the_cap_with_asset_cap_clamp():
    verdict = evaluate(request({"ETH": 0.35}), replace(LOOSE, max_asset_exposure=0.3))
    clamp = only(verdict, Rule.ASSET_CAP)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == ("ETH", 0.35, 0.3, "weight")
    assert "0.35" in clamp.reason
    assert "0.3" in clamp.reason
    assert order(verdict, "ETH").notional == pytest.approx(30_000.0)


def test_asset_caps_override_the_default_cap_for_their_asset_only():
    params = replace(LOOSE, max_asset_exposure=0.3, asset_caps={"BTC": 0.1})
    verdict = evaluate(request({"BTC": 0.2, "ETH": 0.2}), params)
    assert only(verdict, Rule.ASSET_CAP).asset == "BTC"
    assert order(verdict, "BTC").notional == pytest.approx(10_000.0)
    assert order(verdict, "ETH").notional == pytest.approx(20_000.0)
    assert params.cap_for("BTC") == 0.1
    assert params.cap_for("ETH") == 0.3


def test_target_within_float_noise_of_its_cap_then_no_clamp_is_reported():
    verdict = evaluate(request({"BTC": 0.1 * 3}), replace(LOOSE, max_asset_exposure=0.3))
    assert verdict.clamps == ()
    assert order(verdict, "BTC").notional == pytest.approx(30_000.0)


def test_position_above_its_cap_then_sold_down_to_the_cap():
    positions = {"BTC": 0.8}
    verdict = evaluate(
        request({"BTC": 0.5}, cash=60_000.0, positions=positions),
        replace(LOOSE, max_asset_exposure=0.3),
    )
    assert order(verdict, "BTC").side == Side.SELL
    assert order(verdict, "BTC").amount == pytest.approx(0.2)


def test_buys_over_the_stage_cap_then_scaled_down_proportionally_with_stage_cap_clamp():
    verdict = evaluate(request({"BTC": 0.3, "ETH": 0.1}, stage_cap=0.2), LOOSE)
    clamp = only(verdict, Rule.STAGE_CAP)
    assert clamp.asset is None
    assert clamp.unit == "weight"
    assert (clamp.wanted, clamp.allowed) == (pytest.approx(0.4), 0.2)
    assert order(verdict, "BTC").notional == pytest.approx(15_000.0)
    assert order(verdict, "ETH").notional == pytest.approx(5_000.0)


def test_buys_over_the_total_cap_then_scaled_down_with_total_cap_clamp():
    params = replace(LOOSE, max_total_exposure=0.3, max_asset_exposure=0.3)
    verdict = evaluate(request({"BTC": 0.3, "ETH": 0.3}), params)
    clamp = only(verdict, Rule.TOTAL_CAP)
    assert (clamp.asset, clamp.wanted, clamp.allowed) == (None, pytest.approx(0.6), 0.3)
    assert order(verdict, "BTC").notional == pytest.approx(15_000.0)
    assert order(verdict, "ETH").notional == pytest.approx(15_000.0)


def test_sum_over_the_stage_cap_then_only_the_buying_side_is_scaled():
    positions = {"BTC": 0.4}
    verdict = evaluate(
        request({"BTC": 0.2, "ETH": 0.3}, cash=80_000.0, positions=positions, stage_cap=0.4),
        LOOSE,
    )
    assert [o.asset for o in verdict.orders] == ["ETH"]
    assert order(verdict, "ETH").notional == pytest.approx(20_000.0)
    assert only(verdict, Rule.STAGE_CAP).wanted == pytest.approx(0.5)


def test_exposure_in_an_asset_that_cannot_trade_then_counts_toward_the_cap_and_is_not_sold():
    limits = {"BTC": MarketLimits()}
    verdict = evaluate(
        request(
            {"BTC": 0.3}, cash=80_000.0, positions={"SOL": 100.0}, limits=limits, stage_cap=0.4
        ),
        LOOSE,
    )
    assert only(verdict, Rule.MISSING_INPUT).asset == "SOL"
    assert [o.asset for o in verdict.orders] == ["BTC"]
    assert order(verdict, "BTC").notional == pytest.approx(20_000.0)


# --- order size, turnover and cash -------------------------------------------------------------


def test_buy_above_max_order_notional_then_cut_with_max_order_notional_clamp():
    verdict = evaluate(request({"BTC": 0.2}), replace(LOOSE, max_order_notional=5_000.0))
    clamp = only(verdict, Rule.MAX_ORDER_NOTIONAL)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == (
        "BTC",
        pytest.approx(20_000.0),
        5_000.0,
        "quote",
    )
    assert order(verdict, "BTC").notional == pytest.approx(5_000.0)


def test_buys_beyond_the_daily_turnover_then_cut_to_what_is_left_with_daily_turnover_clamps():
    verdict = evaluate(
        request({"BTC": 0.2, "ETH": 0.2}, turnover_today=40_000.0),
        replace(LOOSE, max_daily_turnover=0.5),
    )
    clamps = [c for c in verdict.clamps if c.rule == Rule.DAILY_TURNOVER]
    assert [c.asset for c in clamps] == ["BTC", "ETH"]
    assert all(c.wanted == pytest.approx(20_000.0) for c in clamps)
    assert all(c.allowed == pytest.approx(5_000.0) for c in clamps)
    assert sum(o.notional for o in verdict.orders) == pytest.approx(10_000.0)


def test_daily_turnover_spent_then_no_buy():
    verdict = evaluate(
        request({"BTC": 0.2}, turnover_today=60_000.0), replace(LOOSE, max_daily_turnover=0.5)
    )
    assert verdict.orders == ()
    assert only(verdict, Rule.DAILY_TURNOVER).allowed == 0.0


def test_sell_is_never_cut_by_max_order_notional_or_daily_turnover():
    params = replace(LOOSE, max_order_notional=5_000.0, max_daily_turnover=0.1)
    verdict = evaluate(
        request({}, cash=0.0, positions={"BTC": 2.0}, turnover_today=1e9, peak=100_000.0), params
    )
    assert verdict.orders == (OrderIntent("BTC", Side.SELL, 2.0, 50_000.0, 100_000.0),)
    assert verdict.clamps == ()


def test_full_investment_with_fees_then_sized_so_cash_and_the_cap_hold_after_fees():
    limits = {"BTC": MarketLimits(fee_rate=0.01)}
    params = replace(LOOSE, max_asset_exposure=0.3)
    for target in (0.3, 1.0):
        verdict = evaluate(request({"BTC": target}, limits=limits), params)
        bought = order(verdict, "BTC")
        cash_after = 100_000.0 - bought.notional * 1.01
        assert cash_after >= 0
        assert bought.notional / (cash_after + bought.notional) <= min(target, 0.3) + 1e-12
        assert not [c for c in verdict.clamps if c.rule == Rule.CASH]


def test_sell_proceeds_then_fund_buys_in_the_same_verdict():
    verdict = evaluate(
        request({"ETH": 0.5}, cash=0.0, positions={"BTC": 2.0}),
        replace(LOOSE, min_order_notional=1),
    )
    assert [(o.asset, o.side) for o in verdict.orders] == [("BTC", Side.SELL), ("ETH", Side.BUY)]
    assert order(verdict, "ETH").notional == pytest.approx(50_000.0)


# --- prices ------------------------------------------------------------------------------------


def test_buy_when_price_is_stale_then_refused_with_stale_price_clamp():
    stale = {"BTC": Quote(50_000.0, NOW - timedelta(hours=37))}
    verdict = evaluate(request({"BTC": 0.2, "ETH": 0.2}, quotes=stale), LOOSE)
    clamp = only(verdict, Rule.STALE_PRICE)
    assert (clamp.asset, clamp.wanted, clamp.allowed) == ("BTC", pytest.approx(37.0), 36.0)
    assert [o.asset for o in verdict.orders] == ["ETH"]


def test_quote_stamped_after_now_then_refused_with_stale_price_clamp():
    future = {"BTC": Quote(50_000.0, NOW + timedelta(minutes=5))}
    verdict = evaluate(request({"BTC": 0.2}, quotes=future), LOOSE)
    assert only(verdict, Rule.STALE_PRICE).asset == "BTC"
    assert verdict.orders == ()


def test_price_far_from_the_last_good_price_then_refused_with_price_jump_clamp():
    verdict = evaluate(request({"BTC": 0.2}, last_good={"BTC": 38_000.0}), LOOSE)
    clamp = only(verdict, Rule.PRICE_JUMP)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == (
        "BTC",
        50_000.0,
        pytest.approx(47_500.0),
        "quote",
    )
    assert verdict.orders == ()


def test_price_within_the_allowed_deviation_then_accepted():
    verdict = evaluate(request({"BTC": 0.2}, last_good={"BTC": 45_000.0}), LOOSE)
    assert verdict.clamps == ()
    assert len(verdict.orders) == 1


@pytest.mark.parametrize("price", [math.nan, math.inf, 0.0, -1.0, None])
def test_buy_when_price_is_missing_or_unusable_then_refused_with_missing_input(price):
    prices = {"ETH": 2_000.0}
    quotes = {} if price is None else {"BTC": Quote(price, NOW)}
    verdict = evaluate(
        request({"BTC": 0.2, "ETH": 0.1}, prices=prices, quotes=quotes, limits={}), LOOSE
    )
    assert [c.asset for c in verdict.clamps if c.rule == Rule.MISSING_INPUT] == ["BTC", "ETH"]
    assert verdict.orders == ()


def test_sell_when_price_is_stale_then_refused_too():
    stale = {"BTC": Quote(50_000.0, NOW - timedelta(days=3))}
    verdict = evaluate(request({}, cash=50_000.0, positions={"BTC": 1.0}, quotes=stale), LOOSE)
    assert verdict.orders == ()
    assert {c.rule for c in verdict.clamps} == {Rule.STALE_PRICE, Rule.MISSING_INPUT}


# --- fail closed -------------------------------------------------------------------------------


def test_held_asset_without_a_usable_price_then_no_buys_but_full_exits_still_sold():
    quotes = {"ETH": Quote(math.nan, NOW)}
    verdict = evaluate(
        request(
            {"BTC": 0.0, "ETH": 0.1, "SOL": 0.1},
            cash=50_000.0,
            positions={"BTC": 1.0, "ETH": 10.0},
            quotes=quotes,
        ),
        LOOSE,
    )
    assert not verdict.buying_allowed
    assert verdict.equity is None
    assert verdict.orders == (OrderIntent("BTC", Side.SELL, 1.0, 50_000.0, 50_000.0),)
    unknown = [c for c in verdict.clamps if c.rule == Rule.MISSING_INPUT and c.asset is None]
    assert len(unknown) == 1
    assert "ETH" in unknown[0].reason


@pytest.mark.parametrize("cash", [math.nan, -1.0, math.inf])
def test_unusable_cash_then_equity_unknown_no_buys_and_no_partial_sells(cash):
    verdict = evaluate(
        request({"BTC": 0.1, "SOL": 0.2}, cash=cash, positions={"BTC": 1.0, "ETH": 10.0}), LOOSE
    )
    assert not verdict.buying_allowed
    assert verdict.equity is None
    assert verdict.drawdown is None
    assert verdict.orders == (OrderIntent("ETH", Side.SELL, 10.0, 2_000.0, 20_000.0),)
    assert "cash" in only(verdict, Rule.MISSING_INPUT).reason


def test_unknown_peak_equity_then_no_buys_but_sells_still_allowed():
    verdict = evaluate(
        request({"BTC": 0.2, "ETH": 0.2}, cash=50_000.0, positions={"BTC": 1.0}, peak=math.nan),
        LOOSE,
    )
    clamp = only(verdict, Rule.MISSING_INPUT)
    assert clamp.asset is None
    assert "drawdown" in clamp.reason
    assert not verdict.buying_allowed
    assert verdict.drawdown is None
    assert verdict.equity == 100_000.0
    assert verdict.orders == (OrderIntent("BTC", Side.SELL, 0.6, 50_000.0, 30_000.0),)


@pytest.mark.parametrize(("field", "value"), [("stage_cap", math.nan), ("turnover_today", -1.0)])
def test_unusable_stage_cap_or_turnover_then_no_buys(field, value):
    verdict = evaluate(replace(request({"BTC": 0.2}), **{field: value}), LOOSE)
    assert not verdict.buying_allowed
    assert verdict.orders == ()
    assert only(verdict, Rule.MISSING_INPUT).asset is None


@pytest.mark.parametrize("target", [math.nan, -0.1])
def test_unusable_target_then_no_order_for_that_asset(target):
    verdict = evaluate(request({"BTC": target, "ETH": 0.1}), LOOSE)
    assert only(verdict, Rule.MISSING_INPUT).asset == "BTC"
    assert [o.asset for o in verdict.orders] == ["ETH"]


@pytest.mark.parametrize(
    "limits",
    [
        None,
        MarketLimits(amount_step=0.0),
        MarketLimits(amount_step=math.nan),
        MarketLimits(min_amount=-1.0),
        MarketLimits(min_cost=math.inf),
        MarketLimits(fee_rate=1.0),
    ],
)
def test_missing_or_unusable_market_limits_then_no_order_with_missing_input(limits):
    markets = {"ETH": MarketLimits()} | ({} if limits is None else {"BTC": limits})
    verdict = evaluate(request({"BTC": 0.2, "ETH": 0.1}, limits=markets), LOOSE)
    assert only(verdict, Rule.MISSING_INPUT).asset == "BTC"
    assert [o.asset for o in verdict.orders] == ["ETH"]


def test_no_equity_at_all_then_no_buys():
    verdict = evaluate(request({"BTC": 0.2}, cash=0.0), LOOSE)
    assert not verdict.buying_allowed
    assert verdict.orders == ()
    assert verdict.equity == 0.0


# --- drawdown and the error budget -------------------------------------------------------------


def test_drawdown_beyond_the_limit_then_buys_halted_but_sells_allowed():
    verdict = evaluate(
        request({"BTC": 0.3, "ETH": 0.2}, cash=50_000.0, positions={"BTC": 1.0}, peak=200_000.0),
        LOOSE,
    )
    clamp = only(verdict, Rule.DRAWDOWN)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == (None, 0.5, 0.2, "")
    assert not verdict.buying_allowed
    assert verdict.drawdown == 0.5
    assert verdict.orders == (OrderIntent("BTC", Side.SELL, 0.4, 50_000.0, 20_000.0),)


def test_drawdown_within_the_limit_then_buys_allowed():
    verdict = evaluate(request({"BTC": 0.2}, peak=110_000.0), LOOSE)
    assert verdict.buying_allowed
    assert verdict.drawdown == pytest.approx(1 / 11)
    assert len(verdict.orders) == 1


def test_flatten_on_drawdown_then_every_position_is_sold():
    params = replace(LOOSE, flatten_on_drawdown=True)
    verdict = evaluate(
        request(
            {"BTC": 0.3, "ETH": 0.3}, cash=10_000.0, positions={"BTC": 1.0, "ETH": 10.0}, peak=1e6
        ),
        params,
    )
    assert "selling everything" in only(verdict, Rule.DRAWDOWN).reason
    assert verdict.orders == (
        OrderIntent("BTC", Side.SELL, 1.0, 50_000.0, 50_000.0),
        OrderIntent("ETH", Side.SELL, 10.0, 2_000.0, 20_000.0),
    )


def test_error_budget_spent_then_no_orders_at_all():
    verdict = evaluate(request({"BTC": 0.2}, positions={"ETH": 10.0}, errors=5), LOOSE)
    assert verdict.orders == ()
    assert verdict.halted
    assert not verdict.buying_allowed
    [clamp] = verdict.clamps
    assert (clamp.rule, clamp.asset, clamp.wanted, clamp.allowed) == (
        Rule.ERROR_BUDGET,
        None,
        5.0,
        5.0,
    )


def test_errors_below_the_budget_then_trading_goes_on():
    verdict = evaluate(request({"BTC": 0.2}, errors=4), LOOSE)
    assert not verdict.halted
    assert len(verdict.orders) == 1


# --- rounding and minimums ---------------------------------------------------------------------


def test_buy_amount_is_rounded_down_to_the_step():
    limits = {"BTC": MarketLimits(amount_step=0.001)}
    verdict = evaluate(request({"BTC": 0.1}, prices={"BTC": 30_000.0}, limits=limits), LOOSE)
    assert order(verdict, "BTC").amount == 0.333
    assert order(verdict, "BTC").notional == pytest.approx(9_990.0)


@pytest.mark.parametrize(
    ("position", "step", "sold"),
    [(0.3, 0.1, 0.3), (0.7, 0.1, 0.7), (1.0, 0.1, 1.0), (0.35, 0.1, 0.3)],
)
def test_full_exit_sells_the_whole_position_rounded_down_to_the_step(position, step, sold):
    limits = {"ETH": MarketLimits(amount_step=step)}
    verdict = evaluate(request({}, positions={"ETH": position}, limits=limits), LOOSE)
    assert order(verdict, "ETH").amount == sold


def test_order_that_rounds_to_zero_then_dropped_with_precision_clamp():
    limits = {"BTC": MarketLimits(amount_step=0.001)}
    verdict = evaluate(request({"BTC": 0.0001}, limits=limits), LOOSE)
    clamp = only(verdict, Rule.PRECISION)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == (
        "BTC",
        pytest.approx(0.0002),
        0.001,
        "base",
    )
    assert verdict.orders == ()


def test_order_below_min_order_notional_then_dropped_with_clamp():
    verdict = evaluate(request({"BTC": 0.00005}), replace(LOOSE, min_order_notional=10.0))
    clamp = only(verdict, Rule.MIN_ORDER_NOTIONAL)
    assert (clamp.asset, clamp.wanted, clamp.allowed) == ("BTC", pytest.approx(5.0), 10.0)
    assert verdict.orders == ()


def test_order_below_the_venue_minimum_amount_then_dropped_with_clamp():
    limits = {"ETH": MarketLimits(min_amount=1.0)}
    verdict = evaluate(request({"ETH": 0.01}, limits=limits), LOOSE)
    clamp = only(verdict, Rule.VENUE_MIN_AMOUNT)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == ("ETH", 0.5, 1.0, "base")
    assert verdict.orders == ()


def test_order_below_the_venue_minimum_cost_then_dropped_with_clamp():
    limits = {"ETH": MarketLimits(min_cost=2_000.0)}
    verdict = evaluate(request({"ETH": 0.01}, limits=limits), LOOSE)
    clamp = only(verdict, Rule.VENUE_MIN_COST)
    assert (clamp.asset, clamp.wanted, clamp.allowed, clamp.unit) == (
        "ETH",
        pytest.approx(1_000.0),
        2_000.0,
        "quote",
    )
    assert verdict.orders == ()


def test_sell_below_a_minimum_then_dropped_too():
    verdict = evaluate(
        request({}, positions={"BTC": 0.0001}), replace(LOOSE, min_order_notional=10.0)
    )
    clamp = only(verdict, Rule.MIN_ORDER_NOTIONAL)
    assert clamp.asset == "BTC"
    assert "sell" in clamp.reason
    assert verdict.orders == ()


# --- inputs and output -------------------------------------------------------------------------


def test_naive_times_and_negative_error_counts_are_programmer_errors():
    naive = datetime(2024, 3, 1, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        Quote(1.0, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(request({}), now=naive)
    with pytest.raises(ValueError, match="consecutive_errors"):
        request({}, errors=-1)


def test_verdict_to_dict_is_strict_json_with_enums_as_strings():
    verdict = evaluate(request({"BTC": 0.35}), replace(LOOSE, max_asset_exposure=0.3))
    record = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert record["orders"][0]["side"] == "buy"
    assert record["clamps"][0] == {
        "rule": "asset_cap",
        "asset": "BTC",
        "wanted": 0.35,
        "allowed": 0.3,
        "unit": "weight",
        "reason": "BTC target 0.35 above its cap 0.3",
    }
    assert record["buying_allowed"] is True
    assert record["halted"] is False
    odd = Verdict((), (Clamp(Rule.CASH, "BTC", math.nan, math.inf, "quote", "x"),), False, None, 0)
    assert odd.to_dict()["clamps"][0]["wanted"] is None
    assert odd.to_dict()["clamps"][0]["allowed"] is None


# --- parameters --------------------------------------------------------------------------------


def test_default_params_are_valid():
    params = RiskParams()
    assert params.cap_for("BTC") == 0.3
    assert params.stale_after == timedelta(hours=36)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"max_total_exposure": 0.0}, "max_total_exposure"),
        ({"max_total_exposure": 1.5}, "max_total_exposure"),
        ({"max_total_exposure": math.nan}, "max_total_exposure"),
        ({"max_asset_exposure": 0.0}, "max_asset_exposure"),
        ({"max_asset_exposure": 0.7}, "max_asset_exposure"),
        ({"asset_caps": {"BTC": 0.7}}, "asset_caps.BTC"),
        ({"asset_caps": {"ETH": -0.1}}, "asset_caps.ETH"),
        ({"asset_caps": {"": 0.1}}, "asset_caps"),
        ({"max_order_notional": 0.0}, "max_order_notional"),
        ({"min_order_notional": -1.0}, "min_order_notional"),
        ({"min_order_notional": 50_000.0}, "min_order_notional"),
        ({"max_daily_turnover": 0.0}, "max_daily_turnover"),
        ({"stale_after": timedelta(0)}, "stale_after"),
        ({"stale_after": 36}, "stale_after"),
        ({"max_price_deviation": 0.0}, "max_price_deviation"),
        ({"max_drawdown": 0.0}, "max_drawdown"),
        ({"max_drawdown": 1.0}, "max_drawdown"),
        ({"flatten_on_drawdown": "yes"}, "flatten_on_drawdown"),
        ({"error_budget": 0}, "error_budget"),
        ({"error_budget": 2.5}, "error_budget"),
        ({"error_budget": True}, "error_budget"),
    ],
)
def test_bad_risk_param_raises_param_error_naming_the_key(changes, key):
    with pytest.raises(ParamError) as raised:
        RiskParams(**changes)
    assert raised.value.key == key


# --- properties --------------------------------------------------------------------------------

ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE")
PROBLEMS = ("ok",) * 28 + ("missing", "stale", "jump", "no_limits")
MOSTLY = st.sampled_from([True] * 9 + [False])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RiskRequest, RiskParams, dict[str, str]]:
    """Mostly requests that can buy (usable inputs, no halt), with every trouble mixed in."""
    fraction = st.floats(0.0, 1.0)
    max_total = draw(st.floats(0.2, 1.0))
    names = ASSETS[: draw(st.integers(1, len(ASSETS)))]
    min_order = draw(st.sampled_from([0.0, 1.0, 10.0, 100.0]))
    params = RiskParams(
        max_total_exposure=max_total,
        max_asset_exposure=max_total * draw(st.floats(0.05, 1.0)),
        asset_caps={n: max_total * draw(fraction) for n in names if draw(st.booleans())},
        max_order_notional=draw(st.floats(min_order + 1.0, 1e6)),
        min_order_notional=min_order,
        max_daily_turnover=draw(st.floats(0.01, 3.0)),
        max_price_deviation=draw(st.floats(0.05, 0.6)),
        max_drawdown=draw(st.floats(0.05, 0.95)),
        flatten_on_drawdown=draw(st.booleans()),
    )
    cash = draw(st.floats(1e3, 1e6)) if draw(MOSTLY) else 0.0
    targets, positions, quotes, last_good, limits, problems = {}, {}, {}, {}, {}, {}
    equity = cash
    for name in names:
        price = draw(st.floats(0.001, 1e5))
        problem = problems[name] = draw(st.sampled_from(PROBLEMS))
        targets[name] = draw(fraction)
        held = draw(st.one_of(st.just(0.0), fraction)) * 0.15 * (cash or 1e4)
        positions[name] = held / price
        equity += positions[name] * price
        age = params.stale_after + timedelta(hours=1) if problem == "stale" else timedelta(0)
        if problem != "missing":
            quotes[name] = Quote(price, NOW - age)
        if problem == "jump":
            last_good[name] = price * 3
        elif draw(st.booleans()):
            last_good[name] = price * 1.01
        if problem != "no_limits":
            limits[name] = MarketLimits(
                amount_step=draw(st.sampled_from([None, 1e-8, 1e-4, 0.001, 0.01, 0.1, 1.0])),
                min_amount=draw(st.sampled_from([0.0, 0.001, 1.0])),
                min_cost=draw(st.sampled_from([0.0, 5.0, 50.0])),
                fee_rate=draw(st.sampled_from([0.0, 0.001, 0.0075])),
            )
    peak = equity * draw(st.floats(1.0, 1.5)) if draw(MOSTLY) else math.nan
    built = RiskRequest(
        now=NOW,
        targets=targets,
        stage_cap=draw(st.floats(0.2, 1.0)) if draw(MOSTLY) else 0.0,
        account=Account(cash, positions),
        quotes=quotes,
        last_good_prices=last_good,
        limits=limits,
        peak_equity=peak,
        turnover_today=equity * draw(st.floats(0.0, 1.0)),
        consecutive_errors=draw(st.sampled_from([0] * 8 + [1, 4, 5, 6])),
    )
    return built, params, problems


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_approved_orders_never_break_a_cap_a_position_the_cash_a_step_or_a_minimum(scenario):
    req, params, problems = scenario
    verdict = evaluate(req, params)
    positions, cash = dict(req.account.positions), req.account.cash
    for o in verdict.orders:
        market = req.limits[o.asset]
        assert problems[o.asset] == "ok"
        assert o.amount > 0
        assert o.notional == o.amount * o.price
        assert o.notional >= params.min_order_notional
        assert o.amount >= market.min_amount
        assert o.notional >= market.min_cost
        if market.amount_step is not None:
            assert Decimal(str(o.amount)) % Decimal(str(market.amount_step)) == 0
        if o.side == Side.SELL:
            assert o.amount <= req.account.positions[o.asset]
            positions[o.asset] -= o.amount
            cash += o.notional * (1 - market.fee_rate)
        else:
            positions[o.asset] += o.amount
            cash -= o.notional * (1 + market.fee_rate)
    scale = max(1.0, req.account.cash, verdict.equity or 0.0)
    assert cash >= -1e-9 * scale
    if verdict.halted:
        assert verdict.orders == ()
    if not buys(verdict):
        return
    assert verdict.buying_allowed
    assert verdict.equity is not None
    values = {a: n * req.quotes[a].price for a, n in positions.items() if n > 0}
    equity_after = cash + sum(values.values())
    for o in buys(verdict):
        assert values[o.asset] <= params.cap_for(o.asset) * equity_after + 1e-9 * scale
    cap = min(req.stage_cap, params.max_total_exposure)
    assert sum(values.values()) <= cap * equity_after + 1e-9 * scale


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_evaluate_is_deterministic(scenario):
    req, params, _ = scenario
    first, second = evaluate(req, params), evaluate(req, params)
    assert first == second
    assert json.dumps(first.to_dict(), allow_nan=False) == json.dumps(second.to_dict())


def test_asset_within_the_rebalance_band_is_not_traded_but_a_small_exit_is():
    band = replace(LOOSE, rebalance_band=0.02)
    # 100k equity: BTC is 10k (10%) against a target of 11%, ETH a 0.5% sliver to sell off
    held = {"BTC": 10_000 / PRICES["BTC"], "ETH": 500 / PRICES["ETH"]}
    cash = 100_000 - 10_500
    verdict = evaluate(request({"BTC": 0.11, "ETH": 0.0}, cash=cash, positions=held), band)
    assert [(o.asset, o.side) for o in verdict.orders] == [("ETH", Side.SELL)]
    verdict = evaluate(request({"BTC": 0.15, "ETH": 0.0}, cash=cash, positions=held), band)
    assert {(o.asset, o.side) for o in verdict.orders} == {("ETH", Side.SELL), ("BTC", Side.BUY)}


def test_a_position_drifted_above_its_cap_is_sold_back_even_inside_the_band():
    band = replace(LOOSE, max_asset_exposure=0.2, max_total_exposure=0.5, rebalance_band=0.02)
    held = {"BTC": 20_500 / PRICES["BTC"]}  # 20.5% of 100k against a 20% cap
    verdict = evaluate(request({"BTC": 0.2}, cash=79_500, positions=held), band)
    [sell] = verdict.orders
    assert sell.side == Side.SELL
    assert sell.notional == pytest.approx(500, rel=1e-3)
