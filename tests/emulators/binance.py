"""A loopback Binance SPOT (testnet) emulator for ccxt's `binance` in sandbox mode.

    with BinanceEmulator() as emu:             # or emu.start() ... emu.stop()
        emu.set_price("BTCUSDT", 50000)
        emu.set_balance("USDT", 100_000)
        exchange = make_ccxt("binance", emu)   # tests/emulators/fixtures.py

Endpoints (all under /api/v3): public `ping`, `time`, `exchangeInfo`, `ticker/24hr`,
`ticker/price`, `ticker/bookTicker`, `depth`, `klines`; signed `account`, `order` (POST, GET,
DELETE), `openOrders` (GET, DELETE), `allOrders`, `myTrades`. Anything else: logged as an error,
recorded in `unknown_requests`, answered 404 `{"code": -1, ...}` (ccxt: ExchangeError).

Signed requests are checked as Binance does: header `X-MBX-APIKEY` (missing: 401 -2014, unknown:
401 -2015), `signature` = hex HMAC-SHA256(secret, query string + form body without the
`signature` parameter) (else 400 -1022), `timestamp` within `recvWindow` (default 5000, at most
60000) of the server clock and at most 1000 ms ahead (else 400 -1021).

Errors are `{"code": .., "msg": ..}` with HTTP 400 unless said otherwise: -1121 invalid symbol,
-1013 "Filter failure: LOT_SIZE | PRICE_FILTER | NOTIONAL", -2010 insufficient balance /
"Duplicate order sent." (a client id that an OPEN order has: Binance lets a filled or canceled
order's client id be used again, `duplicate_client_ids()` shows it), -2013 order does not exist,
-2011 cancel of an unknown or closed order, -1102/-1100 bad parameters, -1127 time window.

`myTrades` follows Binance's windows: with `fromId`, trades with id >= fromId; with only
`startTime`, trades in [startTime, startTime + 24 h); with only `endTime`, (endTime - 24 h,
endTime]; both more than 24 h apart: -1127; none: the most recent `limit` (default 500, at most
1000). Set `my_trades_window_ms = None` to drop the 24-hour windows.
"""

from __future__ import annotations

import hmac
import json
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.emulators.common import (
    ZERO,
    ApiError,
    LoopbackEmulator,
    Market,
    Order,
    Rejection,
    Reply,
    Request,
    Trade,
    hmac_sha256_hex,
)

API = "/api/v3"
DAY_MS = 86_400_000
INTERVALS_MS = {
    "1s": 1000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    "1M": 30 * DAY_MS,
}
LOT_SIZE = "Filter failure: LOT_SIZE"
REJECTIONS = {
    "unknown_symbol": (-1121, "Invalid symbol."),
    "qty_min": (-1013, LOT_SIZE),
    "qty_max": (-1013, LOT_SIZE),
    "qty_step": (-1013, LOT_SIZE),
    "price_tick": (-1013, "Filter failure: PRICE_FILTER"),
    "notional_min": (-1013, "Filter failure: NOTIONAL"),
    "insufficient": (-2010, "Account has insufficient balance for requested action."),
    "duplicate": (-2010, "Duplicate order sent."),
    "no_price": (-2010, "Market is closed."),
    "not_found": (-2013, "Order does not exist."),
}
CLIENT_ID_CHARS = frozenset("._:/-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def f8(value: Decimal | None) -> str:
    return f"{(value or ZERO):.8f}"


def error(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(Reply.json({"code": code, "msg": msg}, status))


def mandatory(name: str) -> ApiError:
    return error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


class BinanceEmulator(LoopbackEmulator):
    name = "binance"
    create_route = ("POST", f"{API}/order")
    duplicate_scope = "open"
    my_trades_window_ms: int | None = DAY_MS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notional_filter = "NOTIONAL"  # or "MIN_NOTIONAL", the older filter name
        self._public = {
            ("GET", "ping"): lambda p: {},
            ("GET", "time"): lambda p: {"serverTime": self.now_ms()},
            ("GET", "exchangeInfo"): self._exchange_info,
            ("GET", "ticker/24hr"): self._ticker_24hr,
            ("GET", "ticker/price"): self._ticker_price,
            ("GET", "ticker/bookTicker"): self._book_ticker,
            ("GET", "depth"): self._depth,
            ("GET", "klines"): self._klines,
        }
        self._signed = {
            ("GET", "account"): self._account,
            ("POST", "order"): self._create_order,
            ("GET", "order"): self._get_order,
            ("DELETE", "order"): self._cancel_order,
            ("GET", "openOrders"): self._open_orders,
            ("DELETE", "openOrders"): self._cancel_open_orders,
            ("GET", "allOrders"): self._all_orders,
            ("GET", "myTrades"): self._my_trades,
        }

    # --- dispatch ---

    def handle(self, request: Request) -> Reply:
        name = request.path.removeprefix(API + "/") if request.path.startswith(API) else None
        key = (request.method, name)
        if key in self._public:
            return Reply.json(self._public[key](request.query_params))
        if key in self._signed:
            return Reply.json(self._signed[key](self._authenticate(request)))
        self.unknown(request)
        raise error(-1, f"emulator: unknown endpoint {request.method} {request.path}", 404)

    def client_id_of(self, params: dict[str, str]) -> str | None:
        return params.get("newClientOrderId")

    def rejection_reply(self, rejection: Rejection) -> Reply:
        code, msg = REJECTIONS[rejection.reason]
        if rejection.reason == "notional_min":
            msg = f"Filter failure: {self.notional_filter}"
        return Reply.json({"code": code, "msg": msg}, 400)

    def fault_reply(self, kind: str) -> Reply:
        if kind == "429":
            body = {
                "code": -1003,
                "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per "
                "minute. Please use WebSocket Streams for live updates to avoid bans.",
            }
            return Reply.json(body, 429, headers=[("Retry-After", "1")])
        if kind == "503":
            return Reply.text("<html><body><h1>503 Service Unavailable</h1></body></html>", 503)
        if kind == "503_json":
            msg = "Internal error; unable to process your request. Please try again."
            return Reply.json({"code": -1001, "msg": msg}, 503)
        raise ValueError(kind)

    def _authenticate(self, request: Request) -> dict[str, str]:
        key = request.headers.get("x-mbx-apikey")
        if not key:
            raise error(-2014, "API-key format invalid.", 401)
        if key != self.api_key:
            raise error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        params = {**request.query_params, **request.form_params}
        signature = params.pop("signature", "")
        if not signature:
            raise mandatory("signature")

        def unsigned(text: str) -> str:
            return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))

        payload = unsigned(request.query) + unsigned(request.body)
        if not hmac.compare_digest(hmac_sha256_hex(self.secret, payload), signature.lower()):
            raise error(-1022, "Signature for this request is not valid.")
        timestamp = self._int(params, "timestamp", required=True)
        window = self._int(params, "recvWindow") or 5000
        if window > 60000:
            raise error(-1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if timestamp > now + 1000:
            raise error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > window:
            raise error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    # --- parameter helpers ---

    @staticmethod
    def _int(params: dict[str, str], name: str, *, required: bool = False) -> int | None:
        raw = params.get(name)
        if raw in (None, ""):
            if required:
                raise mandatory(name)
            return None
        try:
            return int(raw)
        except ValueError:
            raise error(-1100, f"Illegal characters found in parameter '{name}'.") from None

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw in (None, ""):
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise error(-1100, f"Illegal characters found in parameter '{name}'.") from None
        if not value.is_finite() or value < 0:
            raise error(-1100, f"Illegal characters found in parameter '{name}'.")
        return value

    def _symbol(self, params: dict[str, str], *, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        if symbol not in self.markets:
            raise Rejection("unknown_symbol", symbol)
        return symbol

    def _symbols(self, params: dict[str, str]) -> list[str]:
        if params.get("symbol"):
            return [self._symbol(params)]  # type: ignore[list-item]
        if params.get("symbols"):
            try:
                names = json.loads(params["symbols"])
            except ValueError:
                raise error(-1100, "Illegal characters found in parameter 'symbols'.") from None
            for name in names:
                if name not in self.markets:
                    raise Rejection("unknown_symbol", name)
            return list(names)
        return list(self.markets)

    @staticmethod
    def _limit(params: dict[str, str], default: int, maximum: int) -> int:
        raw = params.get("limit")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise error(-1100, "Illegal characters found in parameter 'limit'.") from None
        if value <= 0:
            raise error(-1130, "Data sent for parameter 'limit' is not valid.")
        return min(value, maximum)

    # --- public ---

    def _exchange_info(self, params: dict[str, str]) -> dict:
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(self.markets[s]) for s in self._symbols(params)],
        }

    def _symbol_info(self, m: Market) -> dict:
        notional = {"filterType": self.notional_filter, "minNotional": f8(m.min_notional)}
        if self.notional_filter == "NOTIONAL":
            notional.update(
                applyMinToMarket=True,
                maxNotional=f8(m.max_notional),
                applyMaxToMarket=False,
                avgPriceMins=5,
            )
        else:
            notional.update(applyToMarket=True, avgPriceMins=5)
        return {
            "symbol": m.symbol,
            "status": "TRADING",
            "baseAsset": m.base,
            "baseAssetPrecision": 8,
            "quoteAsset": m.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": f8(m.tick_size),
                    "maxPrice": "1000000.00000000",
                    "tickSize": f8(m.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": f8(m.min_qty),
                    "maxQty": f8(m.max_qty),
                    "stepSize": f8(m.step_size),
                },
                notional,
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _ticker_24hr(self, params: dict[str, str]) -> dict | list:
        rows = [self._ticker(s) for s in self._symbols(params)]
        return rows[0] if params.get("symbol") else rows

    def _ticker(self, symbol: str) -> dict:
        price = self.price_of(symbol) or ZERO
        now = self.now_ms()
        candles = self.klines.get((symbol, "1d"), [])
        last = candles[-1] if candles else None
        open_, high, low = (last[1], last[2], last[3]) if last else (price, price, price)
        high, low = max(high, price), min(low, price) if price else low
        volume = last[5] if last else ZERO
        return {
            "symbol": symbol,
            "priceChange": f8(price - open_),
            "priceChangePercent": f"{((price - open_) / open_ * 100) if open_ else ZERO:.3f}",
            "weightedAvgPrice": f8(price),
            "prevClosePrice": f8(open_),
            "lastPrice": f8(price),
            "lastQty": "0.00000000",
            "bidPrice": f8(price),
            "bidQty": "1.00000000",
            "askPrice": f8(price),
            "askQty": "1.00000000",
            "openPrice": f8(open_),
            "highPrice": f8(high),
            "lowPrice": f8(low),
            "volume": f8(volume),
            "quoteVolume": f8(volume * price),
            "openTime": now - DAY_MS,
            "closeTime": now,
            "firstId": 0,
            "lastId": 0,
            "count": 0,
        }

    def _ticker_price(self, params: dict[str, str]) -> dict | list:
        rows = [{"symbol": s, "price": f8(self.price_of(s))} for s in self._symbols(params)]
        return rows[0] if params.get("symbol") else rows

    def _book_ticker(self, params: dict[str, str]) -> dict | list:
        rows = []
        for s in self._symbols(params):
            px = f8(self.price_of(s))
            rows.append(
                {"symbol": s, "bidPrice": px, "bidQty": "1.00000000", "askPrice": px, "askQty": "1"}
            )
        return rows[0] if params.get("symbol") else rows

    def _depth(self, params: dict[str, str]) -> dict:
        symbol = self._symbol(params)
        px = self.price_of(symbol) or ZERO  # type: ignore[arg-type]
        tick = self.markets[symbol].tick_size  # type: ignore[index]
        return {
            "lastUpdateId": self._next_trade_id,
            "bids": [[f8(px - tick), "1.00000000"]] if px else [],
            "asks": [[f8(px + tick), "1.00000000"]] if px else [],
        }

    def _klines(self, params: dict[str, str]) -> list:
        symbol = self._symbol(params)
        interval = params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in INTERVALS_MS:
            raise error(-1120, "Invalid interval.")
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        if start is not None and end is not None and start > end:
            raise error(-1023, "Start time is greater than end time.")
        limit = self._limit(params, 500, 1000)
        rows = self.candles(symbol, interval, start, end, limit, from_start=start is not None)  # type: ignore[arg-type]
        width = INTERVALS_MS[interval]
        return [
            [
                t,
                f8(o),
                f8(h),
                f8(low),
                f8(c),
                f8(v),
                t + width - 1,
                f8(v * c),
                100,
                f8(v / 2),
                f8(v * c / 2),
                "0",
            ]
            for t, o, h, low, c, v in rows
        ]

    # --- signed ---

    def _account(self, params: dict[str, str]) -> dict:
        assets = sorted(set(self.free) | set(self.locked))
        balances = [
            {"asset": a, "free": f8(self.free.get(a)), "locked": f8(self.locked.get(a))}
            for a in assets
        ]
        if params.get("omitZeroBalances") == "true":
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        fee = f8(self.fee_rate)
        return {
            "makerCommission": int(self.fee_rate * 10000),
            "takerCommission": int(self.fee_rate * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": fee, "taker": fee, "buyer": f8(ZERO), "seller": f8(ZERO)},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1000001,
        }

    def _create_order(self, params: dict[str, str]) -> dict:
        symbol = self._symbol(params)
        side = params.get("side")
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise error(-1100, "Illegal characters found in parameter 'side'.")
        type_ = params.get("type")
        if not type_:
            raise mandatory("type")
        if type_ not in ("MARKET", "LIMIT"):
            raise error(-1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or secrets.token_urlsafe(16)[:22]
        if len(client_id) > 36 or not set(client_id) <= CLIENT_ID_CHARS:
            raise error(-1100, "Illegal characters found in parameter 'newClientOrderId'.")
        qty = self._decimal(params, "quantity")
        quote_qty = self._decimal(params, "quoteOrderQty")
        price = self._decimal(params, "price")
        tif = params.get("timeInForce")
        if type_ == "MARKET":
            if qty is None and quote_qty is None:
                raise error(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            if qty is not None and quote_qty is not None:
                raise error(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        else:
            if qty is None:
                raise mandatory("quantity")
            if price is None:
                raise mandatory("price")
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise error(-1115, "Invalid timeInForce.")
        order = self.place_order(
            symbol=symbol,  # type: ignore[arg-type]
            side=side,
            type=type_,
            client_id=client_id,
            qty=qty,
            quote_qty=quote_qty if type_ == "MARKET" else None,
            price=price,
            time_in_force=tif if type_ == "LIMIT" else "GTC",
        )
        if order.is_open and tif in ("IOC", "FOK"):
            self._release(order, self._locked_asset(order), order.locked)
            order.status = "EXPIRED"
        return self._order_response(order, params.get("newOrderRespType") or "FULL")

    def _order_response(self, o: Order, resp_type: str) -> dict:
        ack = {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "transactTime": o.created_ms,
        }
        if resp_type == "ACK":
            return ack
        result = {
            **ack,
            "price": f8(o.price),
            "origQty": f8(o.qty),
            "executedQty": f8(o.executed),
            "origQuoteOrderQty": f8(o.quote_order_qty),
            "cummulativeQuoteQty": f8(o.quote_executed),
            "status": o.status,
            "timeInForce": o.time_in_force or "GTC",
            "type": o.type,
            "side": o.side,
            "workingTime": o.created_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if resp_type == "RESULT":
            return result
        trades = {t.trade_id: t for t in self.trades if t.order_id == o.order_id}
        result["fills"] = [
            {
                "price": f8(t.price),
                "qty": f8(t.qty),
                "commission": f8(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in (trades[i] for i in o.trade_ids)
        ]
        return result

    def _order_json(self, o: Order) -> dict:
        return {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "price": f8(o.price),
            "origQty": f8(o.qty),
            "executedQty": f8(o.executed),
            "cummulativeQuoteQty": f8(o.quote_executed),
            "status": o.status,
            "timeInForce": o.time_in_force or "GTC",
            "type": o.type,
            "side": o.side,
            "stopPrice": f8(ZERO),
            "icebergQty": f8(ZERO),
            "time": o.created_ms,
            "updateTime": o.updated_ms,
            "isWorking": True,
            "workingTime": o.created_ms,
            "origQuoteOrderQty": f8(o.quote_order_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _lookup(self, params: dict[str, str]) -> tuple[str, Order | None]:
        symbol = self._symbol(params)
        order_id = self._int(params, "orderId")
        client_id = params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise error(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return symbol, self.find_order(symbol, order_id, client_id)  # type: ignore[return-value]

    def _get_order(self, params: dict[str, str]) -> dict:
        _, order = self._lookup(params)
        if order is None:
            raise Rejection("not_found")
        return self._order_json(order)

    def _cancel_order(self, params: dict[str, str]) -> dict:
        _, order = self._lookup(params)
        if order is None or not order.is_open:
            raise error(-2011, "Unknown order sent.")
        self.cancel_order(order)
        return self._cancel_json(order, params.get("newClientOrderId"))

    def _cancel_json(self, o: Order, cancel_id: str | None) -> dict:
        body = self._order_json(o)
        for name in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime"):
            body.pop(name)
        return {
            **body,
            "origClientOrderId": o.client_id,
            "clientOrderId": cancel_id or secrets.token_urlsafe(16)[:22],
            "transactTime": o.updated_ms,
        }

    def _open_orders(self, params: dict[str, str]) -> list:
        symbol = self._symbol(params, required=False)
        return [
            self._order_json(o)
            for o in self.orders
            if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def _cancel_open_orders(self, params: dict[str, str]) -> list:
        symbol = self._symbol(params)
        open_orders = [o for o in self.orders if o.is_open and o.symbol == symbol]
        if not open_orders:
            raise error(-2011, "Unknown order sent.")
        for order in open_orders:
            self.cancel_order(order)
        return [self._cancel_json(o, None) for o in open_orders]

    def _window(self, params: dict[str, str], window_ms: int | None) -> tuple[int | None, ...]:
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        if start is not None and end is not None:
            if start > end:
                raise error(-1023, "Start time is greater than end time.")
            if end - start > DAY_MS:
                raise error(-1127, "More than 24 hours between startTime and endTime.")
        elif window_ms is not None and start is not None:
            end = start + window_ms - 1
        elif window_ms is not None and end is not None:
            start = end - window_ms + 1
        return start, end

    def _all_orders(self, params: dict[str, str]) -> list:
        symbol = self._symbol(params)
        from_id = self._int(params, "orderId")
        start, end = self._window(params, None)
        limit = self._limit(params, 500, 1000)
        rows = [
            o
            for o in self.orders
            if o.symbol == symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [self._order_json(o) for o in rows]

    def _my_trades(self, params: dict[str, str]) -> list:
        symbol = self._symbol(params)
        order_id = self._int(params, "orderId")
        from_id = self._int(params, "fromId")
        limit = self._limit(params, 500, 1000)
        rows: list[Trade] = [
            t
            for t in self.trades
            if t.symbol == symbol and (order_id is None or t.order_id == order_id)
        ]
        if from_id is not None:
            rows = [t for t in rows if t.trade_id >= from_id][:limit]
        else:
            start, end = self._window(params, self.my_trades_window_ms)
            rows = [
                t
                for t in rows
                if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
            ]
            rows = rows[:limit] if start is not None else rows[-limit:]
        return [
            {
                "symbol": t.symbol,
                "id": t.trade_id,
                "orderId": t.order_id,
                "orderListId": -1,
                "price": f8(t.price),
                "qty": f8(t.qty),
                "quoteQty": f8(t.quote_qty),
                "commission": f8(t.commission),
                "commissionAsset": t.commission_asset,
                "time": t.time_ms,
                "isBuyer": t.side == "BUY",
                "isMaker": t.is_maker,
                "isBestMatch": True,
            }
            for t in rows
        ]


__all__ = ["BinanceEmulator"]
