"""One tick: clock -> market data -> breakout state -> stage targets -> risk verdict -> orders ->
fills -> journal. The same `Agent.tick` runs in a backtest, a replay and (later) on testnets;
only the injected market data, venue and clock differ.

The decision record is written before any order leaves, so every order and fill in the journal
points back to a decision that already exists.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

import pandas as pd

from agent.clock import EquitySessions, crypto_bar_end, last_crypto_day
from agent.config import Config
from agent.ports import (
    DataError,
    Market,
    MarketData,
    Order,
    OrderRequest,
    OrderType,
    SafetyStop,
    Trade,
    Venue,
    VenueError,
)
from agent.signal import BreakoutSignal, SignalInputs
from agent.store import Store
from risk.gate import Account, MarketLimits, Quote, RiskRequest, evaluate
from risk.journal import Journal
from risk.verdict import Clamp, OrderIntent, Rule, Side, Verdict
from strategies.breakout import BreakoutDay
from strategies.column import DailyColumn
from strategies.staging import Targets, targets


@dataclass
class RunState:
    """What a tick remembers for the next one."""

    peak_equity: float = math.nan
    last_good_prices: dict[str, float] = field(default_factory=dict)
    """Each asset's previous fresh quote. A jump against it refuses that tick's orders; the new
    price is then the reference, so a move that lasts is traded after a one-tick pause."""
    turnover_day: date | None = None
    turnover_today: float = 0.0
    consecutive_errors: int = 0
    last_trade_ts: datetime | None = None
    seen_trades: set[str] = field(default_factory=set)
    order_decisions: dict[str, str] = field(default_factory=dict)
    """Client order id -> the decision that placed it, to tag fills."""
    halts: frozenset[str] = frozenset()

    @classmethod
    def restore(cls, store: Store) -> RunState:
        """The state the last committed tick left, for a resumed run."""
        peak = store.peak_equity()
        turnover = store.turnover()
        return cls(
            peak_equity=math.nan if peak is None else peak,
            last_good_prices=store.last_good_prices(),
            turnover_day=None if turnover is None else turnover[0],
            turnover_today=0.0 if turnover is None else turnover[1],
            consecutive_errors=store.consecutive_errors(),
            last_trade_ts=store.last_fill_ts(),
            seen_trades=store.seen_trade_ids(),
            order_decisions=store.order_decisions(),
            halts=store.halts(),
        )


@dataclass(frozen=True)
class Redo:
    """A tick the process died in the middle of, to run again as it was decided.

    Rerun while the clock is still in that tick's day (the same last closed equity session and
    crypto day), the tick reads the same bars and the state the last committed tick
    left, so given the balances it was sized with (the stored positions, not the venue's, which
    already hold whatever part of its batch went out) it decides the same orders under the same
    client ids: the venue finds those it already has, and only the rest are sent."""

    decision_id: str
    now: datetime
    balances: dict[str, float]
    turnover: tuple[date, float] | None


@dataclass(frozen=True)
class TickResult:
    now: datetime
    decision_id: str
    action: str
    reason: str
    breakout: BreakoutDay | None
    targets: Targets | None
    verdict: Verdict | None
    prices: dict[str, float]
    """Each asset's latest usable close (the valuation price)."""
    balances: dict[str, float]
    """Holdings after this tick's fills."""
    fills: tuple[Trade, ...]


class Agent:
    def __init__(
        self,
        config: Config,
        market_data: MarketData,
        venue: Venue,
        journal: Journal,
        sessions: EquitySessions,
        signal: BreakoutSignal | None = None,
        store: Store | None = None,
        *,
        session: int = 1,
        contain_errors: bool = False,
        repeat_quiet: bool = False,
    ) -> None:
        """`session` is the run's process count (2 after the first restart): a resumed session
        names its decisions apart, so a tick rerun after a crash never reuses the client order ids
        of the interrupted one. `contain_errors` turns an unexpected exception inside a tick into
        a journalled, refused tick that counts toward the error budget (runs), instead of ending
        the run (backtests, where it is a bug to see). `repeat_quiet` lets `repeat` stand in for
        the ticks that would repeat a quiet one (a sweep's journal-free replay)."""
        self.config = config
        self.market_data = market_data
        self.venue = venue
        self.journal = journal
        self.sessions = sessions
        self.signal = signal or BreakoutSignal(config.signal)
        self.store = store
        self.session = session
        self.contain_errors = contain_errors
        self.state = RunState()
        self.redo: Redo | None = None
        """Set by a resume: the interrupted tick, redone by the next tick that reads its bars."""
        self.assets = config.staging.assets
        quote = config.venue.quote
        self.symbols = {asset: f"{asset}/{quote}" for asset in self.assets}
        self.data_symbols = {
            asset: config.data.crypto_symbol.format(asset=asset) for asset in self.assets
        }
        self._values = getattr(market_data, "daily_values", None)
        self._reads: dict[datetime, _Reads] | None = None
        if self._values is not None and type(sessions) is EquitySessions:
            data = config.data
            key = (sessions.name, tuple(self.data_symbols.items()), data.index)
            key += (data.index_price, data.benchmark)
            self._reads = _READS.setdefault(market_data, {}).setdefault(key, {})
        self._limits_of: tuple[object, dict[str, MarketLimits]] | None = None
        self.repeat_quiet = repeat_quiet
        self._quiet: TickResult | None = None

    # -- inputs ---------------------------------------------------------------------------

    def signal_inputs(self, session: pd.Timestamp | None) -> SignalInputs | str:
        """The equity series the detector reads, up to and including `session`; or, when they
        cannot be used at this tick, why not (a missing bar for the last closed session)."""
        if session is None:
            return "no equity session has closed yet"
        data = self.config.data
        column = self._column
        volume = column(data.index, "volume", session)
        highs = column(data.index_price or data.index, "close", session)
        benchmark = column(data.benchmark, "close", session)
        named = (
            (data.index_price or data.index, highs),
            (data.index, volume),
            (data.benchmark, benchmark),
        )
        session_ns = session.value
        for symbol, bars in named:
            if bars.empty:
                return f"{symbol} has no bar up to the session of {session.date()}"
            if bars.last_ns != session_ns:
                last = bars.last_date.date()
                return f"{symbol} has no bar for the session of {session.date()} (last {last})"
        return SignalInputs(highs, volume, benchmark)

    def _crypto_closes(
        self, day: pd.Timestamp
    ) -> tuple[dict[str, DailyColumn], dict[str, DataError | VenueError]]:
        """Each asset's closes up to `day`, and the assets whose bars could not be read, with
        why. An asset that cannot be read has no price this tick, so the risk gate refuses its
        orders while the others still trade (an exit included); when none can be read, the
        first error is raised and the tick is held."""
        column = self._column
        closes: dict[str, DailyColumn] = {}
        unreadable: dict[str, DataError | VenueError] = {}
        for asset, symbol in self.data_symbols.items():
            try:
                closes[asset] = column(symbol, "close", day)
            except (DataError, VenueError) as exc:
                unreadable[asset] = exc
        if unreadable and not closes:
            raise next(iter(unreadable.values()))
        return closes, unreadable

    def _column(self, symbol: str, column: str, end: pd.Timestamp) -> DailyColumn:
        """`daily_column(symbol, column, end)` as arrays: straight from replayed data, which
        serves them without pandas objects; from a Series for other sources."""
        if self._values is not None:
            return self._values(symbol, column, end)
        return DailyColumn.of(self.market_data.daily_column(symbol, column, end))

    def _read(self, now: datetime) -> _Reads:
        """What the tick reads at `now`: the last closed session and crypto day, the closes, the
        signal's inputs, and the prices and quotes. Replayed bars never change, so these are a
        function of the data and `now`, kept for the next run on the same data (a sweep's)."""
        memo = self._reads
        reads = None if memo is None else memo.get(now)
        if reads is None:
            session = self.sessions.last_closed(now)
            crypto_day = last_crypto_day(now)
            closes, unreadable = self._crypto_closes(crypto_day)
            inputs = self.signal_inputs(session)
            reads = (session, crypto_day, closes, inputs, *_quotes(closes), unreadable)
            if memo is not None and not unreadable:
                memo[now] = reads
        return reads

    # -- the tick -------------------------------------------------------------------------

    def decision_id(self, now: datetime) -> str:
        stamp = _STAMPS.get(now)
        if stamp is None:
            if len(_STAMPS) > _MEMO_LIMIT:
                _STAMPS.clear()
            stamp = _STAMPS[now] = f"{now:%Y%m%dT%H%M}"
        base = f"{self.journal.run_id}-{stamp}"
        return base if self.session == 1 else f"{base}-{self.session}"

    def tick(self, now: datetime) -> TickResult:
        redo, self.redo = self.redo, None
        if redo is not None and not self._reads_the_same_bars(redo.now, now):
            redo = None
        decision_id = self.decision_id(now) if redo is None else redo.decision_id
        self._decided = False
        self._quiet = None
        if not self.contain_errors:
            return self._tick(now, decision_id, redo)
        try:
            return self._tick(now, decision_id, redo)
        except (SafetyStop, OSError):
            raise
        except Exception as exc:
            return self._failed(now, decision_id, exc)

    def _reads_the_same_bars(self, earlier: datetime, now: datetime) -> bool:
        """Whether a tick at `now` reads the bars a tick at `earlier` read: the same last closed
        equity session and crypto day."""
        return last_crypto_day(earlier) == last_crypto_day(now) and self.sessions.last_closed(
            earlier
        ) == self.sessions.last_closed(now)

    def _failed(self, now: datetime, decision_id: str, exc: Exception) -> TickResult:
        """An unexpected exception inside a tick: journalled with its traceback, counted toward
        the error budget; the tick is refused (if its decision was already journalled, that record
        stands and only the error follows)."""
        self.state.consecutive_errors += 1
        self.journal.error(
            now,
            exc,
            call="tick",
            decision_id=decision_id,
            consecutive_errors=self.state.consecutive_errors,
        )
        reason = f"tick failed: {type(exc).__name__}: {exc}"
        if self._decided:
            result = TickResult(now, decision_id, "refused", reason, None, None, None, {}, {}, ())
            self._save(result, None, [])
            return result
        return self._hold(now, decision_id, reason, self.sessions.last_closed(now), {}, None)

    def _tick(self, now: datetime, decision_id: str, redo: Redo | None) -> TickResult:
        try:
            session, crypto_day, closes, inputs, prices, quotes, unreadable = self._read(now)
            limits = self._limits()
        except (DataError, VenueError) as exc:
            self._read_error(now, exc)
            reason = f"market data unavailable: {exc}"
            return self._hold(now, decision_id, reason, self.sessions.last_closed(now), {}, None)
        if unreadable:
            self._unreadable(now, unreadable)
        prices = dict(prices)
        followed = self._follow_pending(now)
        balances = self._balances(now)
        if redo is not None and balances is not None:
            balances = dict(redo.balances)
            day, amount = redo.turnover or (None, 0.0)
            self.state.turnover_day, self.state.turnover_today = day, amount
        if isinstance(inputs, str):
            return self._hold(now, decision_id, inputs, session, prices, balances)
        assert session is not None
        day = self.signal.day(inputs)
        wanted = targets(day, self._fresh(now, closes, quotes), self.config.staging, crypto_day)
        verdict = self._verdict(now, wanted, quotes, balances, limits)
        if verdict is None:
            reason = "balances unavailable: no orders"
            return self._hold(now, decision_id, reason, session, prices, balances)
        refused = verdict.clamps or unreadable
        action = "trade" if verdict.orders else ("refused" if refused else "hold")
        reason = _reason(day, wanted, verdict)
        for exc in unreadable.values():
            reason += f"; market data unavailable: {exc}"
        if self.journal.writes_decisions:
            self.journal.write(
                "decision",
                now,
                decision_id=decision_id,
                asof=session.date(),
                crypto_asof=crypto_day.date(),
                action=action,
                reason=reason,
                breakout=day.evidence(),
                targets=wanted.to_dict(),
                clamps=[c.to_dict() for c in verdict.clamps],
                orders=[
                    o.to_dict() | {"client_order_id": _client_order_id(decision_id, n)}
                    for n, o in enumerate(verdict.orders)
                ],
                equity=verdict.equity,
                drawdown=verdict.drawdown,
                prices=prices,
                **({} if redo is None else {"redone": True}),
            )
        self._decided = True
        self._journal_clamps(now, decision_id, verdict.clamps)
        placed = self._place(now, decision_id, verdict.orders)
        fills = self._fills(now)
        after = self._balances(now) or balances
        peak = self.state.peak_equity
        self._remember(now, quotes, verdict, after, prices)
        result = TickResult(
            now, decision_id, action, reason, day, wanted, verdict, prices, after, fills
        )
        self._save(result, session.date(), placed, followed)
        if self.repeat_quiet and not (placed or fills or followed) and self._is_quiet(result, peak):
            self._quiet = result
        return result

    def _is_quiet(self, result: TickResult, peak: float) -> bool:
        """Whether every later tick of the same breakout episode would decide as `result` did,
        until something else happens: it traded nothing, holds nothing, has nothing pending, its
        schedule is settled (`Targets.settled`), and the peak equity its risk gate saw (`peak`)
        is the one the next tick's will see. That gate then sees no asset, the same cash and
        peak, no turnover and the same error count, so it gives the same verdict."""
        wanted, verdict, balances = result.targets, result.verdict, result.balances
        return (
            self.store is None
            and peak == self.state.peak_equity
            and wanted is not None
            and wanted.settled
            and verdict is not None
            and not verdict.orders
            and self.state.turnover_today == 0
            and not any(balances.get(asset, 0.0) for asset in self.assets)
            and not self.venue.open_orders(result.now)
        )

    def repeat(self, now: datetime) -> TickResult | None:
        """The tick at `now` without deciding again, when it would repeat the last tick (see
        `_is_quiet`) because `now` reads a day of the same breakout episode; None when the tick
        must run. The state moves on as the tick would move it (the day's turnover, the last good
        prices, the clamps counted by the journal). The result carries the quiet tick's targets,
        whose weights, stage and budget are today's too; their trend gates are that day's.

        No decision record is written: only a replay without a journal (`repeat_quiet`) uses it.
        """
        quiet = self._quiet
        if quiet is None or self.redo is not None:
            return None
        try:
            _, _, _, inputs, prices, quotes, unreadable = self._read(now)
        except (DataError, VenueError):
            return None
        if isinstance(inputs, str) or unreadable:
            return None
        day = self.signal.day(inputs)
        quiet_day, wanted, verdict = quiet.breakout, quiet.targets, quiet.verdict
        assert quiet_day is not None
        assert wanted is not None
        assert verdict is not None
        if day.episode != quiet_day.episode:
            return None
        decision_id = self.decision_id(now)
        self._new_day(now)
        if verdict.clamps:
            self._journal_clamps(now, decision_id, verdict.clamps)
        self._remember_prices(quotes, verdict)  # equity, peak and halts are the quiet tick's
        reason = quiet.reason if day.state is quiet_day.state else _reason(day, wanted, verdict)
        result = (now, decision_id, quiet.action, reason, day, wanted, verdict, dict(prices))
        return TickResult(*result, quiet.balances, ())

    def _fresh(
        self, now: datetime, closes: Mapping[str, DailyColumn], quotes: Mapping[str, Quote]
    ) -> dict[str, DailyColumn]:
        """Closes whose last bar is recent enough to trade on; a stale series (an asset whose
        data stopped) is passed empty, so its trend gate fails instead of reading old prices."""
        limit = self.config.risk.stale_after
        return {
            asset: series if asset in quotes and now - quotes[asset].ts <= limit else series.head(0)
            for asset, series in closes.items()
        }

    def _balances(self, now: datetime) -> dict[str, float] | None:
        try:
            balances = self.venue.balances(now)
        except VenueError as exc:
            self._venue_error(now, exc, call="balances")
            return None
        return balances

    def _verdict(
        self,
        now: datetime,
        wanted: Targets,
        quotes: Mapping[str, Quote],
        balances: Mapping[str, float] | None,
        limits: dict[str, MarketLimits],
    ) -> Verdict | None:
        if balances is None:
            return None
        state, quote = self.state, self.config.venue.quote
        self._new_day(now)
        request = RiskRequest(
            now=now,
            targets=wanted.weights,
            stage_cap=wanted.budget,
            account=Account(
                cash=balances.get(quote, 0.0),
                positions={asset: balances.get(asset, 0.0) for asset in self.assets},
            ),
            quotes=quotes,
            last_good_prices=state.last_good_prices,
            limits=limits,
            peak_equity=state.peak_equity,
            turnover_today=state.turnover_today,
            consecutive_errors=state.consecutive_errors,
        )
        return evaluate(request, self.config.risk)

    def _new_day(self, now: datetime) -> None:
        """The day's buy turnover starts from zero on a new UTC day."""
        state = self.state
        if state.turnover_day != now.date():
            state.turnover_day, state.turnover_today = now.date(), 0.0

    def _limits(self) -> dict[str, MarketLimits]:
        markets = self.venue.markets()
        known = self._limits_of
        if known is not None and known[0] is markets:
            return known[1]
        slippage = self.config.venue.slippage_bps / 10_000
        limits = {}
        for asset, symbol in self.symbols.items():
            market = markets.get(symbol)
            if market is not None:
                limits[asset] = _market_limits(market, slippage)
        if isinstance(markets, MappingProxyType):  # read-only: the same markets, the same limits
            self._limits_of = (markets, limits)
        return limits

    def _place(
        self, now: datetime, decision_id: str, orders: tuple[OrderIntent, ...]
    ) -> list[Order]:
        """Send the approved orders, each intent committed to the store before it leaves."""
        requests = [
            OrderRequest(
                _client_order_id(decision_id, n),
                self.symbols[order.asset],
                order.side,
                OrderType.MARKET,
                order.amount,
            )
            for n, order in enumerate(orders)
        ]
        if self.store is not None and requests:
            self.store.record_intents(now, decision_id, requests)
        placed_orders = []
        for order, request in zip(orders, requests, strict=True):
            self.state.order_decisions[request.client_order_id] = decision_id
            fields = {
                "decision_id": decision_id,
                "client_order_id": request.client_order_id,
                "asset": order.asset,
                "side": order.side.value,
                "amount": order.amount,
                "symbol": request.symbol,
                "type": request.type.value,
                "notional": order.notional,
            }
            try:
                placed = self.venue.place_order(request, now)
            except VenueError as exc:
                self.journal.write("order", now, **fields, status="error", error=str(exc))
                self._venue_error(
                    now, exc, call="place_order", client_order_id=request.client_order_id
                )
                continue
            self.state.consecutive_errors = 0
            if order.side is Side.BUY:
                self.state.turnover_today += order.notional
            placed_orders.append(placed)
            self.journal.write(
                "order",
                now,
                **fields,
                status=placed.status.value,
                venue_order_id=placed.venue_order_id,
            )
        return placed_orders

    def _follow_pending(self, now: datetime) -> list[_OrderUpdate]:
        """What became of the orders earlier ticks left pending in the store (a send that failed,
        an order still open), so the store follows each to its end; a send the venue never saw
        becomes `unsent`."""
        if self.store is None:
            return []
        updates = []
        for record in self.store.pending_orders():
            cid = record.client_order_id
            try:
                order = self.venue.fetch_order(cid, now)
            except VenueError as exc:
                self._venue_error(now, exc, call="fetch_order", client_order_id=cid)
                continue
            if order is None:
                updates.append((cid, "unsent", None, None))
            elif (order.status.value, order.filled) != (record.status, record.filled):
                updates.append((cid, order.status.value, order.venue_order_id, order.filled))
        return updates

    def _fills(self, now: datetime) -> tuple[Trade, ...]:
        state = self.state
        try:
            trades = self.venue.trades(state.last_trade_ts, now)
        except VenueError as exc:
            self._venue_error(now, exc, call="trades")
            return ()
        new = tuple(t for t in trades if t.trade_id not in state.seen_trades)
        for trade in new:
            state.seen_trades.add(trade.trade_id)
            state.last_trade_ts = max(state.last_trade_ts or trade.ts, trade.ts)
            asset = trade.symbol.split("/")[0]
            self.journal.write(
                "fill",
                now,
                decision_id=state.order_decisions.get(trade.client_order_id),
                client_order_id=trade.client_order_id,
                trade_id=trade.trade_id,
                asset=asset,
                side=trade.side.value,
                amount=trade.amount,
                price=trade.price,
                fee=trade.fee,
                filled_at=trade.ts,
            )
        return new

    def _remember_prices(self, quotes: Mapping[str, Quote], verdict: Verdict) -> None:
        """Each fresh quote is the next tick's last good price."""
        last_good = self.state.last_good_prices
        if not verdict.clamps:
            for asset, quote in quotes.items():
                last_good[asset] = quote.price
            return
        stale = {c.asset for c in verdict.clamps if c.rule is Rule.STALE_PRICE}
        for asset, quote in quotes.items():
            if asset not in stale:
                last_good[asset] = quote.price

    def _remember(
        self,
        now: datetime,
        quotes: Mapping[str, Quote],
        verdict: Verdict,
        balances: Mapping[str, float],
        prices: Mapping[str, float],
    ) -> None:
        state = self.state
        self._remember_prices(quotes, verdict)
        equity = _equity(balances, prices, self.config.venue.quote)
        if equity is not None and equity > 0:
            peak = state.peak_equity
            state.peak_equity = equity if math.isnan(peak) else max(peak, equity)
        halts = frozenset(c.rule.value for c in verdict.clamps if c.rule.value in _HALT_RULES)
        for rule in sorted(halts - state.halts):
            reason = next(c.reason for c in verdict.clamps if c.rule.value == rule)
            self.journal.write("halt", now, rule=rule, reason=reason)
        state.halts = halts

    def _journal_clamps(self, now: datetime, decision_id: str, clamps: tuple[Clamp, ...]) -> None:
        for clamp in clamps:
            record = clamp.to_dict()
            self.journal.write("risk", now, decision_id=decision_id, **record)

    def _hold(
        self,
        now: datetime,
        decision_id: str,
        reason: str,
        session: pd.Timestamp | None,
        prices: dict[str, float],
        balances: dict[str, float] | None,
    ) -> TickResult:
        self.journal.write(
            "decision",
            now,
            decision_id=decision_id,
            asof=None if session is None else session.date(),
            action="refused",
            reason=reason,
            breakout=None,
            targets=None,
            clamps=[],
            orders=[],
            prices=prices,
        )
        result = TickResult(
            now, decision_id, "refused", reason, None, None, None, prices, balances or {}, ()
        )
        self._save(result, None if session is None else session.date(), [])
        return result

    def _save(
        self,
        result: TickResult,
        asof: date | None,
        placed: list[Order],
        followed: list[_OrderUpdate] | None = None,
    ) -> None:
        """The tick's state in one store transaction (when the run has a store)."""
        if self.store is None:
            return
        state, targets_ = self.state, result.targets
        with self.store.tick(result.now) as saved:
            saved.decision(result.decision_id, asof, result.action, result.reason)
            if result.breakout is not None and targets_ is not None:
                saved.breakout(result.breakout.state.value, targets_.stage, targets_.budget)
            for update in followed or []:
                saved.order_update(*update)
            for order in placed:
                saved.order_update(
                    order.client_order_id, order.status.value, order.venue_order_id, order.filled
                )
            for trade in result.fills:
                saved.fill(trade)
            if result.balances:
                saved.positions(result.balances)
            saved.last_good_prices(state.last_good_prices)
            quote = self.config.venue.quote
            cash = result.balances.get(quote)
            equity, drawdown = None, None
            if result.verdict is not None:
                equity, drawdown = result.verdict.equity, result.verdict.drawdown
            elif cash is not None:
                equity = _equity(result.balances, result.prices, quote)
            saved.equity(equity, cash, drawdown, result.balances, result.prices)
            saved.peak_equity(None if math.isnan(state.peak_equity) else state.peak_equity)
            if state.turnover_day is not None:
                saved.turnover(state.turnover_day, state.turnover_today)
            saved.halts(state.halts)
        self.store.set_consecutive_errors(state.consecutive_errors)

    def _read_error(self, now: datetime, exc: DataError | VenueError) -> None:
        """A market-data read that gave up: journalled; a venue's counts toward the budget."""
        if isinstance(exc, VenueError):
            self._venue_error(now, exc, call="market data")
        else:
            self.journal.error(now, exc, call="market data")

    def _unreadable(self, now: datetime, errors: Mapping[str, DataError | VenueError]) -> None:
        """Assets whose bars could not be read: each journalled; an exchange that failed counts
        once toward the error budget, however many of its markets failed."""
        if any(isinstance(exc, VenueError) for exc in errors.values()):
            self.state.consecutive_errors += 1
        for asset, exc in errors.items():
            fields: dict[str, object] = {"call": "market data", "asset": asset}
            if isinstance(exc, VenueError):
                fields["consecutive_errors"] = self.state.consecutive_errors
            self.journal.error(now, exc, **fields)

    def _venue_error(self, now: datetime, exc: VenueError, **fields: object) -> None:
        self.state.consecutive_errors += 1
        self.journal.error(now, exc, consecutive_errors=self.state.consecutive_errors, **fields)


_Reads = tuple[
    pd.Timestamp | None,
    pd.Timestamp,
    dict[str, DailyColumn],
    SignalInputs | str,
    dict[str, float],
    dict[str, Quote],
    dict[str, DataError | VenueError],
]
"""(session, crypto day, closes, signal inputs or why none, prices, quotes, the assets that
could not be read): `Agent._read`."""
_READS: weakref.WeakKeyDictionary[MarketData, dict[tuple[object, ...], dict[datetime, _Reads]]]
_READS = weakref.WeakKeyDictionary()
"""Per replayed data and symbols: each tick's reads, shared by the runs on that data."""
_MEMO_LIMIT = 1 << 16
_STAMPS: dict[datetime, str] = {}
"""Each tick time's decision-id stamp (a pure function of the time)."""
_HALT_RULES = frozenset({"drawdown", "error_budget"})
_OrderUpdate = tuple[str, str, str | None, float | None]
"""(client order id, status, venue order id, filled) for `Tick.order_update`."""


def _client_order_id(decision_id: str, n: int) -> str:
    """Deterministic, so a retried send names the same order (the venue finds it instead of placing
    it twice); at most 36 characters of `[A-Za-z0-9-]`, which Binance and Bybit both accept."""
    return f"{decision_id}-{n}"


def _quotes(closes: Mapping[str, DailyColumn]) -> tuple[dict[str, float], dict[str, Quote]]:
    """Each asset's latest close, and the quote the gate checks (stamped when its bar closed)."""
    prices: dict[str, float] = {}
    quotes: dict[str, Quote] = {}
    for asset, series in closes.items():
        if series.empty:
            continue
        price = float(series.values[-1])
        prices[asset] = price
        quotes[asset] = Quote(price, _bar_end(series.last_ns))
    return prices, quotes


def _bar_end(day_ns: int) -> datetime:
    """`crypto_bar_end` of a day given in nanoseconds, memoised (a pure function of the day)."""
    end = _BAR_ENDS.get(day_ns)
    if end is None:
        end = _BAR_ENDS[day_ns] = crypto_bar_end(pd.Timestamp(day_ns))
    return end


_BAR_ENDS: dict[int, datetime] = {}


def _market_limits(market: Market, slippage: float) -> MarketLimits:
    """The gate sizes buys with fee plus expected slippage, so the cash suffices at the fill."""
    return MarketLimits(
        amount_step=market.amount_step,
        min_amount=market.min_amount,
        min_cost=market.min_cost,
        fee_rate=market.fee_rate + slippage,
    )


def _equity(balances: Mapping[str, float], prices: Mapping[str, float], quote: str) -> float | None:
    total = balances.get(quote, 0.0)
    for asset, amount in balances.items():
        if asset == quote or amount == 0:
            continue
        price = prices.get(asset)
        if price is None:
            return None
        total += amount * price
    return total


def _reason(day: BreakoutDay, wanted: Targets, verdict: Verdict) -> str:
    """One line a person reads first: the state, the schedule's reason, what was done or cut."""
    parts = [f"{day.state.value}: {wanted.reason}", f"stage {wanted.stage} cap {wanted.budget:.0%}"]
    if verdict.orders:
        parts.append(
            ", ".join(
                f"{o.side.value} {o.amount:.6g} {o.asset} ({o.notional:,.0f})"
                for o in verdict.orders
            )
        )
    else:
        parts.append("no orders")
    if verdict.clamps:
        rules = sorted({c.rule.value for c in verdict.clamps})
        parts.append(f"{len(verdict.clamps)} clamp(s): {', '.join(rules)}")
    return "; ".join(parts)
