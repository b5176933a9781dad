"""A loopback Bybit v5 (testnet) emulator for ccxt's `bybit` in sandbox mode, spot category only.

    with BybitEmulator() as emu:
        emu.set_price("BTCUSDT", 50000)
        exchange = make_ccxt("bybit", emu)     # tests/emulators/fixtures.py

Endpoints: public `GET /v5/market/time`, `/v5/market/instruments-info`, `/v5/market/tickers`,
`/v5/market/kline`, `/v5/market/orderbook`; signed `GET /v5/user/query-api`,
`/v5/account/info`, `/v5/asset/coin/query-info`, `/v5/account/wallet-balance`,
`/v5/order/realtime`, `/v5/order/history`, `/v5/execution/list`, `POST /v5/order/create`,
`/v5/order/cancel`, `/v5/order/cancel-all`. Anything else: logged as an error, recorded in
`unknown_requests`, answered HTTP 404 with retCode 10001.

The account is a unified trading account (`uta: 1`, `unifiedMarginStatus: 6`), as testnet
accounts are now: ccxt asks `/v5/user/query-api` and `/v5/account/info` once to find out.

Signed requests: headers `X-BAPI-API-KEY` (unknown or missing: 10003), `X-BAPI-TIMESTAMP`,
`X-BAPI-RECV-WINDOW` (default 5000), `X-BAPI-SIGN` = hex HMAC-SHA256(secret, timestamp + key +
recvWindow + (raw query string for GET | raw JSON body for POST)) (else 10004); the timestamp
must be within [server - recvWindow, server + 1000) (else 10002). Every answer is HTTP 200 with
`{"retCode", "retMsg", "result", "retExtInfo", "time"}`, errors included, as Bybit does.

Order errors: 170121 invalid symbol, 170136 quantity below the minimum, 170135 too large,
170137 too many decimals, 170134 price decimals, 170140 order value below the minimum,
170131 insufficient balance, 170141 duplicate `orderLinkId` (any earlier order: Bybit keeps them
unique), 170213 cancel of an unknown or closed order, 10001 bad parameters; market data for an
unknown symbol: 10001 "Not supported symbols".

Fees: spot buys pay the fee in the base coin, sells in the quote coin (`fee_asset = "received"`),
as Bybit does and as ccxt's bybit parser assumes.

Market orders: `marketUnit` "baseCoin" (qty in base; what ccxt sends when price is None) or
"quoteCoin" (qty in quote; the default for a market buy without marketUnit).

Windows: `/v5/execution/list` and `/v5/order/history` cover 7 days (startTime only: 7 days from
it; endTime only: 7 days up to it; neither: the last 7 days; both more than 7 days apart: 10001),
newest first, `limit` (executions 1-100, default 50; orders 1-50, default 20) and an opaque
`cursor` / `nextPageCursor`. `/v5/order/realtime` gives open orders; with `orderId` or else
`orderLinkId`, that order open or among the 500 most recent closed ones (`openOnly=1`: those
closed ones). ccxt's `fetch_order(None, ..)` sends `orderId=None`, which matches nothing; look an
order up by client id with `fetch_open_orders(symbol, params={"orderLinkId": cid})`.
Klines come newest first: with `start` only, the first `limit` candles from it; otherwise the
last `limit` up to `end` (or now).
"""

from __future__ import annotations

import hmac
import json
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

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
INTERVALS = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
    "M": "1M",
}
REJECTIONS = {
    "unknown_symbol": (170121, "Invalid symbol."),
    "qty_min": (170136, "Order quantity lower than the minimum."),
    "qty_max": (170135, "Order quantity too large."),
    "qty_step": (170137, "Order volume decimal too long"),
    "price_tick": (170134, "Order price decimal too long."),
    "notional_min": (170140, "Order value exceeded lower limit."),
    "insufficient": (170131, "Insufficient balance."),
    "duplicate": (170141, "Duplicate clientOrderId."),
    "no_price": (170001, "Internal error."),
    "not_found": (170213, "Order does not exist."),
}
STATUS = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
    "CANCELED": "Cancelled",
    "EXPIRED": "Cancelled",
}


def num(value: Decimal | None) -> str:
    """Bybit's plain decimal strings: "50000", "0.001", "0"."""
    if value is None:
        return "0"
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class BybitEmulator(LoopbackEmulator):
    name = "bybit"
    fault_kinds = (*LoopbackEmulator.fault_kinds, "403")
    create_route = ("POST", "/v5/order/create")
    duplicate_scope = "any"
    fee_asset = "received"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._public = {
            "/v5/market/time": self._time,
            "/v5/market/instruments-info": self._instruments,
            "/v5/market/tickers": self._tickers,
            "/v5/market/kline": self._kline,
            "/v5/market/orderbook": self._orderbook,
        }
        self._signed = {
            ("GET", "/v5/user/query-api"): self._query_api,
            ("GET", "/v5/account/info"): self._account_info,
            ("GET", "/v5/asset/coin/query-info"): self._coin_info,
            ("GET", "/v5/account/wallet-balance"): self._wallet_balance,
            ("GET", "/v5/order/realtime"): self._realtime,
            ("GET", "/v5/order/history"): self._history,
            ("GET", "/v5/execution/list"): self._executions,
            ("POST", "/v5/order/create"): self._create_order,
            ("POST", "/v5/order/cancel"): self._cancel_order,
            ("POST", "/v5/order/cancel-all"): self._cancel_all,
        }

    # --- envelope and dispatch ---

    def envelope(self, result: object, code: int = 0, msg: str = "OK") -> dict:
        return {
            "retCode": code,
            "retMsg": msg,
            "result": result,
            "retExtInfo": {},
            "time": self.now_ms(),
        }

    def error(self, code: int, msg: str, status: int = 200) -> ApiError:
        return ApiError(Reply.json(self.envelope({}, code, msg), status))

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path in self._public:
            return Reply.json(self.envelope(self._public[request.path](request.query_params)))
        handler = self._signed.get((request.method, request.path))
        if handler is not None:
            params = self._authenticate(request)
            return Reply.json(self.envelope(handler(params)))
        self.unknown(request)
        raise self.error(10001, f"emulator: unknown endpoint {request.method} {request.path}", 404)

    def create_params(self, request: Request) -> dict[str, str]:
        try:
            body = json.loads(request.body or "{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}

    def client_id_of(self, params: dict[str, str]) -> str | None:
        return params.get("orderLinkId")

    def rejection_reply(self, rejection: Rejection) -> Reply:
        code, msg = REJECTIONS[rejection.reason]
        return Reply.json(self.envelope({}, code, msg))

    def fault_reply(self, kind: str) -> Reply:
        if kind == "429":
            msg = "Too many visits. Exceeded the API Rate Limit."
            return Reply.json(self.envelope({}, 10006, msg))
        if kind == "403":
            return Reply.text("access too frequent", 403, "text/plain")
        if kind == "503":
            return Reply.text("<html><body><h1>503 Service Unavailable</h1></body></html>", 503)
        if kind == "503_json":
            return Reply.json(self.envelope({}, 10016, "Server error."), 503)
        raise ValueError(kind)

    def _authenticate(self, request: Request) -> dict[str, str]:
        headers = request.headers
        key = headers.get("x-bapi-api-key", "")
        if key != self.api_key:
            raise self.error(10003, "API key is invalid.")
        timestamp, window = headers.get("x-bapi-timestamp", ""), headers.get("x-bapi-recv-window")
        window = window or "5000"
        signature = headers.get("x-bapi-sign", "")
        if not timestamp.isdigit() or not window.isdigit():
            raise self.error(10001, "params error: X-BAPI-TIMESTAMP or X-BAPI-RECV-WINDOW")
        payload = request.body if request.method == "POST" else request.query
        origin = timestamp + key + window + payload
        if not hmac.compare_digest(hmac_sha256_hex(self.secret, origin), signature.lower()):
            raise self.error(10004, f"error sign! origin_string[{origin}]")
        now = self.now_ms()
        if not now - int(window) <= int(timestamp) < now + 1000:
            raise self.error(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
            )
        if request.method == "POST":
            return self.create_params(request)
        return request.query_params

    # --- parameter helpers ---

    def _category(self, params: dict[str, str]) -> None:
        category = params.get("category")
        if not category:
            raise self.error(10001, "params error: category is empty")
        if category != "spot":
            raise self.error(10001, f"emulator: category {category} not supported (spot only)")

    def _market_symbol(self, params: dict[str, str], *, required: bool) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise self.error(10001, "params error: symbol is empty")
            return None
        if symbol not in self.markets:
            raise self.error(10001, "Not supported symbols")
        return symbol

    def _int(self, params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError:
            raise self.error(10001, f"params error: {name} invalid") from None

    def _decimal(self, params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw in (None, ""):
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.error(10001, f"params error: {name} invalid") from None
        if not value.is_finite() or value <= 0:
            raise self.error(10001, f"params error: {name} invalid")
        return value

    def _limit(self, params: dict[str, str], default: int, maximum: int) -> int:
        value = self._int(params, "limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise self.error(10001, "params error: limit invalid")
        return value

    def _week(self, params: dict[str, str]) -> tuple[int, int]:
        start, end = self._int(params, "startTime"), self._int(params, "endTime")
        if start is not None and end is not None:
            if end < start or end - start > WEEK_MS:
                raise self.error(10001, "params error: the time range must be within 7 days")
            return start, end
        if start is not None:
            return start, start + WEEK_MS
        end = self.now_ms() if end is None else end
        return end - WEEK_MS, end

    def _page(self, rows: list, params: dict[str, str], limit: int) -> tuple[list, str]:
        cursor = params.get("cursor") or "0"
        offset = int(cursor) if cursor.isdigit() else 0
        page = rows[offset : offset + limit]
        more = offset + limit < len(rows)
        return page, str(offset + limit) if more else ""

    # --- public ---

    def _time(self, params: dict[str, str]) -> dict:
        now = self.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _instruments(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = params.get("symbol")
        markets = [m for s, m in self.markets.items() if symbol in (None, "", s)]
        return {
            "category": "spot",
            "list": [self._instrument(m) for m in markets],
            "nextPageCursor": "",
        }

    @staticmethod
    def _instrument(m: Market) -> dict:
        return {
            "symbol": m.symbol,
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "none",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": num(m.step_size),
                "quotePrecision": "0.00000001",
                "minOrderQty": num(m.min_qty),
                "maxOrderQty": num(m.max_qty),
                "minOrderAmt": num(m.min_notional),
                "maxOrderAmt": num(m.max_notional),
            },
            "priceFilter": {"tickSize": num(m.tick_size)},
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        }

    def _tickers(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=False)
        symbols = [symbol] if symbol else list(self.markets)
        return {"category": "spot", "list": [self._ticker(s) for s in symbols]}

    def _ticker(self, symbol: str) -> dict:
        price = self.price_of(symbol) or ZERO
        candles = self.klines.get((symbol, "1d"), [])
        last = candles[-1] if candles else None
        open_ = last[1] if last else price
        high = max(last[2], price) if last else price
        low = min(last[3], price) if last and price else (last[3] if last else price)
        volume = last[5] if last else ZERO
        change = (price - open_) / open_ if open_ else ZERO
        return {
            "symbol": symbol,
            "bid1Price": num(price),
            "bid1Size": "1",
            "ask1Price": num(price),
            "ask1Size": "1",
            "lastPrice": num(price),
            "prevPrice24h": num(open_),
            "price24hPcnt": f"{change:.4f}",
            "highPrice24h": num(high),
            "lowPrice24h": num(low),
            "turnover24h": num(volume * price),
            "volume24h": num(volume),
            "usdIndexPrice": num(price),
        }

    def _kline(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=True)
        raw_interval = params.get("interval", "")
        interval = INTERVALS.get(raw_interval)
        if interval is None:
            raise self.error(10001, "params error: interval invalid")
        start, end = self._int(params, "start"), self._int(params, "end")
        limit = self._limit(params, 200, 1000)
        from_start = start is not None and end is None
        rows = self.candles(symbol, interval, start, end, limit, from_start=from_start)  # type: ignore[arg-type]
        return {
            "category": "spot",
            "symbol": symbol,
            "list": [
                [str(t), num(o), num(h), num(low), num(c), num(v), num(v * c)]
                for t, o, h, low, c, v in reversed(rows)
            ],
        }

    def _orderbook(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=True)
        price = self.price_of(symbol) or ZERO  # type: ignore[arg-type]
        tick = self.markets[symbol].tick_size  # type: ignore[index]
        now = self.now_ms()
        return {
            "s": symbol,
            "b": [[num(price - tick), "1"]] if price else [],
            "a": [[num(price + tick), "1"]] if price else [],
            "ts": now,
            "u": self._next_trade_id,
            "seq": self._next_trade_id,
            "cts": now,
        }

    # --- account ---

    def _query_api(self, params: dict[str, str]) -> dict:
        return {
            "id": "1",
            "note": "emulator",
            "apiKey": self.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {"Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"]},
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 1000001,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
        }

    def _account_info(self, params: dict[str, str]) -> dict:
        return {
            "unifiedMarginStatus": 6,
            "marginMode": "REGULAR_MARGIN",
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
            "updatedTime": str(self.now_ms()),
            "dcpStatus": "OFF",
            "timeWindow": 0,
            "smpGroup": 0,
        }

    def _coin_info(self, params: dict[str, str]) -> dict:
        coins = sorted({m.base for m in self.markets.values()} | {"USDT"})
        return {
            "rows": [
                {
                    "name": coin,
                    "coin": coin,
                    "remainAmount": "1000000",
                    "chains": [
                        {
                            "chainType": coin,
                            "confirmation": "1",
                            "withdrawFee": "0",
                            "depositMin": "0",
                            "withdrawMin": "0",
                            "chain": coin,
                            "chainDeposit": "1",
                            "chainWithdraw": "1",
                            "minAccuracy": "8",
                            "withdrawPercentageFee": "0",
                        }
                    ],
                }
                for coin in coins
            ]
        }

    def _wallet_balance(self, params: dict[str, str]) -> dict:
        account_type = params.get("accountType")
        if account_type not in ("UNIFIED", "SPOT"):
            raise self.error(10001, "accountType only support UNIFIED.")
        wanted = set(filter(None, params.get("coin", "").split(",")))
        assets = sorted(a for a in set(self.free) | set(self.locked) if not wanted or a in wanted)
        coins = []
        total = ZERO
        for asset in assets:
            free, locked = self.free.get(asset, ZERO), self.locked.get(asset, ZERO)
            wallet = free + locked
            value = wallet * (self._usd_price(asset) or ZERO)
            total += value
            coins.append(
                {
                    "coin": asset,
                    "equity": num(wallet),
                    "usdValue": num(value),
                    "walletBalance": num(wallet),
                    "free": "",
                    "locked": num(locked),
                    "availableToWithdraw": "",
                    "availableToBorrow": "",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "totalOrderIM": "0",
                    "totalPositionIM": "0",
                    "totalPositionMM": "0",
                    "unrealisedPnl": "0",
                    "cumRealisedPnl": "0",
                    "bonus": "0",
                    "collateralSwitch": True,
                    "marginCollateral": True,
                    "spotHedgingQty": "0",
                }
            )
        return {
            "list": [
                {
                    "accountType": account_type,
                    "accountIMRate": "0",
                    "accountMMRate": "0",
                    "accountLTV": "0",
                    "totalEquity": num(total),
                    "totalWalletBalance": num(total),
                    "totalMarginBalance": num(total),
                    "totalAvailableBalance": num(total),
                    "totalPerpUPL": "0",
                    "totalInitialMargin": "0",
                    "totalMaintenanceMargin": "0",
                    "coin": coins,
                }
            ]
        }

    def _usd_price(self, asset: str) -> Decimal | None:
        if asset in ("USDT", "USDC", "USD"):
            return Decimal(1)
        return self.price_of(f"{asset}USDT")

    # --- orders ---

    def _create_order(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = params.get("symbol")
        if not symbol:
            raise self.error(10001, "params error: symbol is empty")
        if symbol not in self.markets:
            raise Rejection("unknown_symbol", symbol)
        side = {"Buy": "BUY", "Sell": "SELL"}.get(params.get("side", ""))
        if side is None:
            raise self.error(10001, "params error: side invalid")
        order_type = {"Market": "MARKET", "Limit": "LIMIT"}.get(params.get("orderType", ""))
        if order_type is None:
            raise self.error(10001, "params error: orderType invalid")
        qty = self._decimal(params, "qty")
        if qty is None:
            raise self.error(10001, "params error: qty invalid")
        link_id = params.get("orderLinkId") or ""
        if len(link_id) > 36:
            raise self.error(10001, "params error: orderLinkId too long")
        extra = {}
        if order_type == "MARKET":
            unit = params.get("marketUnit") or ("quoteCoin" if side == "BUY" else "baseCoin")
            if unit not in ("baseCoin", "quoteCoin"):
                raise self.error(10001, "params error: marketUnit invalid")
            extra["marketUnit"] = unit
            order = self.place_order(
                symbol=symbol,
                side=side,
                type="MARKET",
                client_id=link_id,
                qty=qty if unit == "baseCoin" else None,
                quote_qty=qty if unit == "quoteCoin" else None,
                time_in_force="IOC",
                extra=extra,
            )
        else:
            price = self._decimal(params, "price")
            if price is None:
                raise self.error(10001, "params error: price invalid")
            tif = params.get("timeInForce") or "GTC"
            if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
                raise self.error(10001, "params error: timeInForce invalid")
            order = self.place_order(
                symbol=symbol,
                side=side,
                type="LIMIT",
                client_id=link_id,
                qty=qty,
                price=price,
                time_in_force=tif,
                extra=extra,
            )
            if order.is_open and tif in ("IOC", "FOK"):
                self._release(order, self._locked_asset(order), order.locked)
                order.status = "EXPIRED"
        return {"orderId": str(order.order_id), "orderLinkId": order.client_id}

    def _order_json(self, o: Order) -> dict:
        leaves = o.remaining if o.is_open else ZERO
        market_unit = o.extra.get("marketUnit", "")
        shown_qty = o.quote_order_qty if market_unit == "quoteCoin" else o.qty
        status = STATUS[o.status]
        if o.status == "CANCELED" and o.executed > 0:
            status = "PartiallyFilledCanceled"
        return {
            "orderId": str(o.order_id),
            "orderLinkId": o.client_id,
            "blockTradeId": "",
            "symbol": o.symbol,
            "price": num(o.price) if o.price is not None else "0",
            "qty": num(shown_qty),
            "side": "Buy" if o.side == "BUY" else "Sell",
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": status,
            "cancelType": "CancelByUser" if o.status == "CANCELED" else "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": num(o.average_price) if o.executed else "",
            "leavesQty": num(leaves),
            "leavesValue": num(leaves * (o.price or ZERO)),
            "cumExecQty": num(o.executed),
            "cumExecValue": num(o.quote_executed),
            "cumExecFee": num(o.fee),
            "cumFeeDetail": {o.fee_asset: num(o.fee)} if o.executed else {},
            "timeInForce": o.time_in_force or "GTC",
            "orderType": "Market" if o.type == "MARKET" else "Limit",
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": market_unit,
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "placeType": "",
            "createdTime": str(o.created_ms),
            "updatedTime": str(o.updated_ms),
        }

    def _select_orders(self, params: dict[str, str], symbol: str | None) -> list[Order]:
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        rows = [o for o in self.orders if symbol is None or o.symbol == symbol]
        if order_id:  # Bybit: orderId wins over orderLinkId
            return [o for o in rows if str(o.order_id) == order_id]
        if link_id:
            return [o for o in rows if o.client_id == link_id]
        return rows

    def _realtime(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=False)
        closed = [o for o in self.orders if not o.is_open][-500:]  # the recent 500 closed
        rows = [o for o in self._select_orders(params, symbol) if o.is_open or o in closed]
        if params.get("openOnly") == "1":
            rows = [o for o in rows if not o.is_open]
        elif not params.get("orderId") and not params.get("orderLinkId"):
            rows = [o for o in rows if o.is_open]
        rows.sort(key=lambda o: (o.created_ms, o.order_id), reverse=True)
        page, cursor = self._page(rows, params, self._limit(params, 20, 50))
        return {
            "category": "spot",
            "list": [self._order_json(o) for o in page],
            "nextPageCursor": cursor,
        }

    def _history(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=False)
        start, end = self._week(params)
        status = params.get("orderStatus")
        rows = [
            o
            for o in self._select_orders(params, symbol)
            if start <= o.created_ms <= end
            and (STATUS[o.status] == status if status else not o.is_open)
        ]
        rows.sort(key=lambda o: (o.created_ms, o.order_id), reverse=True)
        page, cursor = self._page(rows, params, self._limit(params, 20, 50))
        return {
            "category": "spot",
            "list": [self._order_json(o) for o in page],
            "nextPageCursor": cursor,
        }

    def _cancel_order(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = params.get("symbol")
        if not symbol:
            raise self.error(10001, "params error: symbol is empty")
        if not params.get("orderId") and not params.get("orderLinkId"):
            raise self.error(10001, "params error: orderId or orderLinkId is required")
        matches = [o for o in self._select_orders(params, symbol) if o.is_open]
        if not matches:
            raise Rejection("not_found")
        order = matches[-1]
        self.cancel_order(order)
        return {"orderId": str(order.order_id), "orderLinkId": order.client_id}

    def _cancel_all(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=False)
        cancelled = [o for o in self.orders if o.is_open and symbol in (None, o.symbol)]
        for order in cancelled:
            self.cancel_order(order)
        return {
            "list": [{"orderId": str(o.order_id), "orderLinkId": o.client_id} for o in cancelled],
            "success": "1",
        }

    def _executions(self, params: dict[str, str]) -> dict:
        self._category(params)
        symbol = self._market_symbol(params, required=False)
        exec_type = params.get("execType")
        if exec_type not in (None, "", "Trade"):
            rows: list[Trade] = []
        else:
            start, end = self._week(params)
            orders = {o.order_id: o for o in self.orders}
            order_id, link_id = params.get("orderId"), params.get("orderLinkId")
            rows = [
                t
                for t in self.trades
                if (symbol is None or t.symbol == symbol)
                and start <= t.time_ms <= end
                and (not order_id or str(t.order_id) == order_id)
                and (not link_id or t.client_id == link_id)
            ]
        rows.sort(key=lambda t: t.trade_id, reverse=True)
        page, cursor = self._page(rows, params, self._limit(params, 50, 100))
        orders = {o.order_id: o for o in self.orders}
        return {
            "category": "spot",
            "list": [self._execution_json(t, orders[t.order_id]) for t in page],
            "nextPageCursor": cursor,
        }

    def _execution_json(self, t: Trade, o: Order) -> dict:
        return {
            "symbol": t.symbol,
            "orderType": "Market" if o.type == "MARKET" else "Limit",
            "underlyingPrice": "",
            "orderLinkId": t.client_id,
            "side": "Buy" if t.side == "BUY" else "Sell",
            "indexPrice": "",
            "orderId": str(t.order_id),
            "stopOrderType": "",
            "leavesQty": num(o.remaining if o.is_open else ZERO),
            "execTime": str(t.time_ms),
            "feeCurrency": t.commission_asset,
            "isMaker": t.is_maker,
            "execFee": num(t.commission),
            "feeRate": num(self.fee_rate),
            "execId": str(t.trade_id),
            "tradeIv": "",
            "blockTradeId": "",
            "markPrice": "",
            "execPrice": num(t.price),
            "markIv": "",
            "orderQty": num(o.qty),
            "orderPrice": num(o.price) if o.price is not None else "0",
            "execValue": num(t.quote_qty),
            "execType": "Trade",
            "execQty": num(t.qty),
            "closedSize": "",
            "seq": t.trade_id,
        }


__all__ = ["BybitEmulator"]
