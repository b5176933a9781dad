"""The risk gate: from stage targets to orders that break no limit, with a clamp for every cut.

`evaluate` is a pure function of a `RiskRequest` and `RiskParams`. In order: the error budget
(too many venue errors in a row and nothing trades); screening (an asset whose quote is missing,
stale or jumped, or whose position, target or market limits are unusable, gets no order, but its
exposure still counts); equity (unknown equity stops buying, and without it only full exits can
be sized); drawdown (too far below the peak stops buying, and may sell everything); targets cut
to each asset's cap; sells; then buys, scaled to fit the stage and total caps given what is left
after the sells and cut by the largest order, the day's turnover and the cash; last, amounts are
rounded down to the market's step and orders under a minimum dropped. An asset within
`rebalance_band` of its target is not traded, unless it is to be sold off or is above its cap.

Selling only reduces risk, so sells pass every limit but the price checks, the step and the
minimums. Buys are sized against `(equity - sell fees) / (1 + highest buy fee rate)`, a lower
bound of the equity left after every order and its fee, so the caps hold after fees too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Context, Decimal

from risk.limits import RiskParams
from risk.verdict import Clamp, OrderIntent, Rule, Side, Verdict

_NEGLIGIBLE = 1e-9
"""Float noise: a trade below this fraction of equity is not made, a cut this small not told."""


@dataclass(frozen=True)
class Quote:
    price: float
    """Last price, in the quote currency."""
    ts: datetime
    """When the price was observed; timezone-aware."""

    def __post_init__(self) -> None:
        _require_aware("Quote.ts", self.ts)


@dataclass(frozen=True)
class MarketLimits:
    """A market's rules as the venue reports them; unusable values refuse the asset's orders."""

    amount_step: float | None = None
    """Amounts must be multiples of this (base units); None means any amount."""
    min_amount: float = 0.0
    """Smallest order, base units."""
    min_cost: float = 0.0
    """Smallest order notional, quote currency."""
    fee_rate: float = 0.0
    """Fee per fill as a fraction of notional; adding expected slippage keeps a margin of cash."""


@dataclass(frozen=True)
class Account:
    cash: float
    """Free quote currency."""
    positions: Mapping[str, float]
    """Base units held per asset."""


@dataclass(frozen=True)
class RiskRequest:
    now: datetime
    """The caller's clock (timezone-aware): the gate never reads one."""
    targets: Mapping[str, float]
    """Weight per asset; an asset held but absent has target 0."""
    stage_cap: float
    """Fraction of equity the current stage allows in crypto in total."""
    account: Account
    quotes: Mapping[str, Quote]
    last_good_prices: Mapping[str, float]
    """The last price each asset traded on; a quote too far from it is refused."""
    limits: Mapping[str, MarketLimits]
    peak_equity: float
    """Highest equity seen before now; NaN when unknown, which stops buying."""
    turnover_today: float
    """Buy notional already traded this UTC day."""
    consecutive_errors: int
    """Venue errors in a row, up to now."""

    def __post_init__(self) -> None:
        _require_aware("RiskRequest.now", self.now)
        errors = self.consecutive_errors
        if isinstance(errors, bool) or not isinstance(errors, int) or errors < 0:
            raise ValueError(f"RiskRequest.consecutive_errors must be an int >= 0, got {errors!r}")


@dataclass(frozen=True)
class _Tradable:
    """An asset that passed screening: every number an order needs is usable."""

    name: str
    position: float
    price: float
    value: float
    target: float
    market: MarketLimits


def evaluate(request: RiskRequest, params: RiskParams) -> Verdict:
    """The orders that take the account toward `request.targets` within `params`, and every cut."""
    if request.consecutive_errors >= params.error_budget:
        errors, budget = request.consecutive_errors, params.error_budget
        reason = f"{errors} consecutive venue errors reach the budget of {budget}: trading halted"
        halt = Clamp(Rule.ERROR_BUDGET, None, float(errors), float(budget), "", reason)
        return Verdict((), (halt,), False, None, None)
    clamps: list[Clamp] = []
    values: dict[str, float | None] = {}
    tradables: list[_Tradable] = []
    for name in _assets(request):
        values[name], tradable = _screen(request, params, name, clamps)
        if tradable is not None:
            tradables.append(tradable)
    equity = _equity(request.account.cash, values, clamps)
    drawdown, halts = _buy_halts(request, params, equity)
    clamps.extend(halts)
    flatten = params.flatten_on_drawdown and any(c.rule == Rule.DRAWDOWN for c in halts)
    tradables = _cap_targets(tradables, params, flatten, clamps)
    sells = _sells(tradables, equity, params, clamps)
    if equity is None or halts:
        return Verdict(tuple(sells), tuple(clamps), False, equity, drawdown)
    buys = _buys(request, params, tradables, sells, equity, clamps)
    return Verdict(tuple(sells + buys), tuple(clamps), True, equity, drawdown)


def _assets(request: RiskRequest) -> list[str]:
    """Every asset with something to do: held, or wanted (NaN counts, to be refused)."""
    targets, positions = request.targets, request.account.positions
    names = set(targets) | set(positions)
    return sorted(n for n in names if targets.get(n, 0.0) != 0 or positions.get(n, 0.0) != 0)


def _screen(
    request: RiskRequest, params: RiskParams, name: str, clamps: list[Clamp]
) -> tuple[float | None, _Tradable | None]:
    """The asset's value (None when unknown) and, when every input is usable, its tradable form."""
    position, target = request.account.positions.get(name, 0.0), request.targets.get(name, 0.0)
    market = request.limits.get(name)
    problem = _market_problem(market)
    if not (math.isfinite(position) and position >= 0):
        clamps.append(_missing(name, f"{name} position {position} is not an amount held"))
        return None, None
    price = _check_quote(request, params, name, clamps)
    if price is None:
        return (0.0 if position == 0 else None), None
    value = position * price
    if not (math.isfinite(target) and target >= 0):
        clamps.append(_missing(name, f"{name} target {target} is not a weight"))
    elif market is None or problem:
        clamps.append(_missing(name, f"{name} market limits unusable: {problem}"))
    else:
        return value, _Tradable(name, position, price, value, target, market)
    return value, None


def _check_quote(
    request: RiskRequest, params: RiskParams, name: str, clamps: list[Clamp]
) -> float | None:
    """The asset's price when its quote is usable; else None, and a clamp saying why."""
    quote = request.quotes.get(name)
    if quote is None or not (math.isfinite(quote.price) and quote.price > 0):
        got = "no quote" if quote is None else f"price {quote.price}"
        clamps.append(_missing(name, f"{name} has {got}: no usable price"))
        return None
    price, age = quote.price, request.now - quote.ts
    if age < timedelta(0) or age > params.stale_after:
        hours, limit = age / timedelta(hours=1), params.stale_after / timedelta(hours=1)
        reason = (
            f"{name} quote is {hours:.1f} h old, limit {limit:.1f} h"
            if age > params.stale_after
            else f"{name} quote time {quote.ts.isoformat()} is after now {request.now.isoformat()}"
        )
        clamps.append(Clamp(Rule.STALE_PRICE, name, hours, limit, "", reason))
        return None
    last = request.last_good_prices.get(name)
    if last is None or not (math.isfinite(last) and last > 0):
        return price
    deviation, most = abs(price / last - 1), params.max_price_deviation
    if deviation <= most:
        return price
    bound = last * (1 + most) if price > last else last * (1 - most)
    reason = (
        f"{name} price {price:.6g} is {deviation:.1%} from the last good {last:.6g}, "
        f"limit {most:.1%}"
    )
    clamps.append(Clamp(Rule.PRICE_JUMP, name, price, bound, "quote", reason))
    return None


def _market_problem(market: MarketLimits | None) -> str:
    """What makes `market` unusable, or "" when nothing does."""
    if market is None:
        return "none given"
    step = 1.0 if market.amount_step is None else market.amount_step
    fee, least, cost = market.fee_rate, market.min_amount, market.min_cost
    checks = (
        ("amount_step", step, step > 0),
        ("min_amount", least, least >= 0),
        ("min_cost", cost, cost >= 0),
        ("fee_rate", fee, 0 <= fee < 1),
    )
    for key, number, ok in checks:
        if not (math.isfinite(number) and ok):
            return f"{key} {number}"
    return ""


def _equity(cash: float, values: Mapping[str, float | None], clamps: list[Clamp]) -> float | None:
    problems = [] if math.isfinite(cash) and cash >= 0 else [f"cash {cash}"]
    unvalued = ", ".join(name for name, value in values.items() if value is None)
    problems += [f"no usable value for {unvalued}"] if unvalued else []
    if problems:
        reason = f"equity unknown ({'; '.join(problems)}): no buys, only full exits"
        clamps.append(_missing(None, reason))
        return None
    return cash + sum(value for value in values.values() if value is not None)


def _buy_halts(
    request: RiskRequest, params: RiskParams, equity: float | None
) -> tuple[float | None, list[Clamp]]:
    """The drawdown, and every clamp that stops buying (an unknown equity is already clamped)."""
    halts, drawdown, peak = [], None, request.peak_equity
    if equity is not None and equity <= 0:
        halts.append(_missing(None, f"equity {equity} is not positive: no buys"))
    elif equity is not None and not (math.isfinite(peak) and peak > 0):
        halts.append(_missing(None, f"peak equity {peak} unknown: no drawdown, no buys"))
    elif equity is not None:
        peak = max(peak, equity)
        drawdown, limit = 1 - equity / peak, params.max_drawdown
        if equity < peak * (1 - limit):
            action = "selling everything" if params.flatten_on_drawdown else "no buys"
            reason = (
                f"equity {equity:,.2f} is {drawdown:.1%} below its peak {peak:,.2f}, "
                f"limit {limit:.1%}: {action}"
            )
            halts.append(Clamp(Rule.DRAWDOWN, None, drawdown, limit, "", reason))
    if not (math.isfinite(request.stage_cap) and request.stage_cap >= 0):
        halts.append(_missing(None, f"stage cap {request.stage_cap} is not a weight: no buys"))
    if not (math.isfinite(request.turnover_today) and request.turnover_today >= 0):
        halts.append(_missing(None, f"turnover today {request.turnover_today} unknown: no buys"))
    return drawdown, halts


def _cap_targets(
    tradables: list[_Tradable], params: RiskParams, flatten: bool, clamps: list[Clamp]
) -> list[_Tradable]:
    """Each target cut to its asset's cap (every target 0 when flattening)."""
    capped = []
    for asset in tradables:
        target, cap = 0.0 if flatten else asset.target, params.cap_for(asset.name)
        if target > cap * (1 + _NEGLIGIBLE):
            reason = f"{asset.name} target {target:.4g} above its cap {cap:.4g}"
            clamps.append(Clamp(Rule.ASSET_CAP, asset.name, target, cap, "weight", reason))
        target = min(target, cap)
        capped.append(asset if target == asset.target else replace(asset, target=target))
    return capped


def _sells(
    tradables: list[_Tradable], equity: float | None, params: RiskParams, clamps: list[Clamp]
) -> list[OrderIntent]:
    """Sells toward the targets: a full exit needs no equity, a partial sell does."""
    orders = []
    for asset in tradables:
        if asset.position <= 0 or (equity is None and asset.target > 0):
            continue
        amount = asset.position
        if equity is not None and asset.target > 0:
            excess = asset.value - asset.target * equity
            over_cap = asset.value > params.cap_for(asset.name) * equity * (1 + _NEGLIGIBLE)
            band = _NEGLIGIBLE if over_cap else max(params.rebalance_band, _NEGLIGIBLE)
            if excess <= band * equity:
                continue
            amount = min(excess / asset.price, asset.position)
        orders.append(_fit(asset, Side.SELL, amount, params, clamps))
    return [order for order in orders if order is not None]


def _buys(
    request: RiskRequest,
    params: RiskParams,
    tradables: list[_Tradable],
    sells: list[OrderIntent],
    equity: float,
    clamps: list[Clamp],
) -> list[OrderIntent]:
    """Buys toward the targets, scaled and cut until no limit is broken after the sells."""
    sold = {order.asset: order.notional for order in sells}
    by_name = {asset.name: asset for asset in tradables}
    sell_fees = sum(notional * by_name[name].market.fee_rate for name, notional in sold.items())
    held = equity - request.account.cash - sum(sold.values())
    buyers = [a for a in tradables if a.name not in sold and a.target * equity > a.value]
    basis = (equity - sell_fees) / (1 + max((a.market.fee_rate for a in buyers), default=0.0))
    wants = {a.name: a.target * basis - a.value for a in buyers}
    band = max(params.rebalance_band, _NEGLIGIBLE) * equity
    wants = {name: want for name, want in wants.items() if want > band}
    wants = _fit_sum(wants, held, basis, request.stage_cap, Rule.STAGE_CAP, clamps)
    wants = _fit_sum(wants, held, basis, params.max_total_exposure, Rule.TOTAL_CAP, clamps)
    largest = params.max_order_notional
    for name, want in wants.items():
        if want > largest:
            reason = f"{name} buy {want:,.2f} above the largest order {largest:,.2f}"
            clamps.append(Clamp(Rule.MAX_ORDER_NOTIONAL, name, want, largest, "quote", reason))
            wants[name] = largest
    turnover_left = params.max_daily_turnover * equity - request.turnover_today
    wants = _share(wants, {}, turnover_left, Rule.DAILY_TURNOVER, clamps)
    fees = {name: by_name[name].market.fee_rate for name in wants}
    cash_left = request.account.cash + sum(sold.values()) - sell_fees
    wants = _share(wants, fees, cash_left, Rule.CASH, clamps)
    orders = [
        _fit(by_name[name], Side.BUY, want / by_name[name].price, params, clamps)
        for name, want in wants.items()
        if want > 0
    ]
    return [order for order in orders if order is not None]


def _fit_sum(
    wants: dict[str, float], held: float, basis: float, cap: float, rule: Rule, clamps: list[Clamp]
) -> dict[str, float]:
    """Scale the buys (quote) so that crypto after them is at most `cap` of `basis`."""
    total = sum(wants.values())
    if total <= 0 or held + total <= cap * basis:
        return wants
    scale = max(0.0, cap * basis - held) / total
    wanted = (held + total) / basis
    label = rule.value.replace("_", " ")
    reason = (
        f"crypto {wanted:.4g} of equity above the {label} {cap:.4g}: buys scaled by {scale:.3g}"
    )
    if scale < 1 - _NEGLIGIBLE:
        clamps.append(Clamp(rule, None, wanted, cap, "weight", reason))
    return {name: want * scale for name, want in wants.items()}


def _share(
    wants: dict[str, float], fees: dict[str, float], budget: float, rule: Rule, clamps: list[Clamp]
) -> dict[str, float]:
    """Scale the buys (quote) in proportion so that, with their fees, they cost at most `budget`."""
    cost = sum(want * (1 + fees.get(name, 0.0)) for name, want in wants.items())
    if cost <= 0 or cost <= budget:
        return wants
    scale = max(0.0, budget) / cost
    for name, want in wants.items() if scale < 1 - _NEGLIGIBLE else ():
        reason = f"{name} buy {want:,.2f} cut to {want * scale:,.2f}: {rule} left {budget:,.2f}"
        clamps.append(Clamp(rule, name, want, want * scale, "quote", reason))
    return {name: want * scale for name, want in wants.items()}


def _fit(
    asset: _Tradable, side: Side, amount: float, params: RiskParams, clamps: list[Clamp]
) -> OrderIntent | None:
    """The order for `amount` rounded down to the step; None (and a clamp) when it is too small."""
    market, what = asset.market, f"{asset.name} {side.value}"
    rounded = _round_down(amount, market.amount_step)
    notional = rounded * asset.price
    size = notional if rounded > 0 else amount * asset.price
    if rounded <= 0 and size >= params.min_order_notional:
        reason = f"{what} of {amount:.6g} rounds down to 0 at step {market.amount_step}"
        clamps.append(Clamp(Rule.PRECISION, asset.name, amount, market.amount_step, "base", reason))
        return None
    minimums = (
        (Rule.MIN_ORDER_NOTIONAL, size, params.min_order_notional, "quote", "the minimum order"),
        (Rule.VENUE_MIN_AMOUNT, rounded, market.min_amount, "base", "the venue minimum amount"),
        (Rule.VENUE_MIN_COST, notional, market.min_cost, "quote", "the venue minimum cost"),
    )
    for rule, wanted, minimum, unit, label in minimums:
        if wanted < minimum:
            reason = f"{what} of {_show(wanted, unit)} below {label} {_show(minimum, unit)}"
            clamps.append(Clamp(rule, asset.name, wanted, minimum, unit, reason))
            return None
    return OrderIntent(asset.name, side, rounded, asset.price, notional)


def _show(number: float, unit: str) -> str:
    return f"{number:,.2f}" if unit == "quote" else f"{number:.6g}"


def _round_down(amount: float, step: float | None) -> float:
    """`amount` rounded down to a multiple of `step`, never up.

    Floats are read as the decimals they print: 0.3 at step 0.1 is 3 steps, not 0.3 / 0.1 = 2.99."""
    if step is None:
        return amount
    exact = Context(prec=60, rounding=ROUND_FLOOR)
    size = Decimal(str(step))
    units = exact.divide(Decimal(str(amount)), size).to_integral_value(rounding=ROUND_FLOOR)
    return float(exact.multiply(units, size))


def _missing(asset: str | None, reason: str) -> Clamp:
    return Clamp(Rule.MISSING_INPUT, asset, None, None, "", reason)


def _require_aware(what: str, ts: datetime) -> None:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {ts!r}")
