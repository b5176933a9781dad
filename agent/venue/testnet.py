"""An exchange's spot testnet through ccxt in sandbox mode: the only venue besides the paper one.

Paper only, enforced here: the client is switched to sandbox mode before anything else, and
before every call `_guard` checks that each URL the client would use is the exchange's testnet
or a loopback test server; otherwise it raises `LiveEndpointRefused`, which nothing catches.

Orders are never duplicated. Each carries the agent's deterministic client order id. A
`create_order` that times out or meets a 5xx is not retried blindly: the order is looked up by
that id and sent again only when the venue says it does not exist. Reads are retried on transient
errors and malformed answers, with exponential backoff plus random jitter (each retry reported
through `on_retry`); ccxt's own retry stays off. Permanent errors (authentication, funds,
invalid order, bad symbol) are raised at once as `PermanentVenueError` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pandas as pd
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from agent.marketdata.candles import daily_candles
from agent.ports import (
    InsufficientFunds,
    InvalidOrder,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentVenueError,
    SafetyStop,
    Trade,
    TransientVenueError,
)
from risk.verdict import Side

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "binance": {
        "fetchCurrencies": False,
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
        "fetchOpenOrders": {"warnWithoutSymbol": False},
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    },
    "bybit": {
        "defaultType": "spot",
        "fetchCurrencies": False,
        "fetchMarkets": {"types": ["spot"]},
        "enableUnifiedAccount": True,  # else ccxt asks once, and a garbled answer sticks
        "enableUnifiedMargin": False,
    },
}
"""Per exchange: options that keep ccxt away from endpoints the spot testnet lacks."""
TRANSIENT_CODES: Mapping[str, tuple[str, ...]] = {"bybit": ("10016",)}
"""Per exchange: error codes ccxt calls a plain ExchangeError that mean "server error, try
again" (bybit's 10016, sent with HTTP 503 or 200)."""

OnRetry = Callable[[str, int, BaseException], None]
T = TypeVar("T")

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


class LiveEndpointRefused(SafetyStop):
    """A URL the client would call is neither the exchange's testnet nor loopback."""


class TestnetVenue:
    """A `Venue` on one exchange's spot testnet; one instance per configured exchange."""

    def __init__(
        self,
        exchange_id: str,
        api_key: str,
        secret: str,
        *,
        quote: str,
        assets: tuple[str, ...],
        api_url: str = "",
        timeout_s: float = 10.0,
        read_attempts: int = 4,
        on_retry: OnRetry | None = None,
        first_wait_s: float = 0.5,
        max_wait_s: float = 8.0,
        rate_limit: bool = True,
    ) -> None:
        import ccxt

        self._ccxt = ccxt
        cls = getattr(ccxt, exchange_id, None)
        if cls is None:
            raise PermanentVenueError(f"ccxt has no exchange {exchange_id!r}")
        self._allowed_hosts = _testnet_hosts(cls()) | LOOPBACK_HOSTS
        if not self._allowed_hosts - LOOPBACK_HOSTS:
            raise LiveEndpointRefused(f"{exchange_id} has no spot testnet in ccxt")
        client = cls(
            {
                "apiKey": api_key,
                "secret": secret,
                "timeout": int(timeout_s * 1000),
                "enableRateLimit": rate_limit,
                "options": dict(OPTIONS.get(exchange_id, {})),
            }
        )
        client.options["maxRetriesOnFailure"] = 0
        for code in TRANSIENT_CODES.get(exchange_id, ()):
            client.exceptions["exact"][code] = ccxt.ExchangeNotAvailable
        _refuse_truncated_json(client, ccxt.BadResponse)
        client.set_sandbox_mode(True)
        if api_url:
            point_at(client, api_url)
        self.exchange_id = exchange_id
        self.client = client
        self.quote = quote
        self.assets = assets
        self._read_attempts = read_attempts
        self._on_retry = on_retry
        self._first_wait_s = first_wait_s
        self._max_wait_s = max_wait_s
        self._markets: dict[str, Market] | None = None
        self._attempted: dict[str, str] = {}
        """Client order id -> symbol, for every order this process has tried to send."""
        self._client_ids: dict[str, str] = {}
        """Venue order id -> client order id, for orders this process placed or looked up."""
        self.guard()

    # -- the paper-only guard ------------------------------------------------------------

    def api_hosts(self) -> list[str]:
        """The hosts of every URL the client would call."""
        urls = _urls(self.client.urls.get("api"))
        return sorted({urlsplit(self.client.implode_hostname(url)).hostname or "" for url in urls})

    def guard(self) -> None:
        """Refuse unless every URL the client would use is the testnet or loopback."""
        if not getattr(self.client, "isSandboxModeEnabled", True):
            raise LiveEndpointRefused(f"{self.exchange_id}: sandbox mode is off")
        for host in self.api_hosts():
            if host not in self._allowed_hosts:
                raise LiveEndpointRefused(
                    f"{self.exchange_id}: refusing to call {host}: not its testnet or loopback"
                )

    # -- Venue ----------------------------------------------------------------------------

    def markets(self) -> Mapping[str, Market]:
        if self._markets is None:
            loaded = self._read("load_markets", _is_dict, self.client.load_markets)
            wanted = {f"{asset}/{self.quote}" for asset in self.assets}
            self._markets = {
                symbol: _market(raw) for symbol, raw in loaded.items() if symbol in wanted
            }
        return self._markets

    def balances(self, now: datetime) -> dict[str, float]:
        raw = self._read("fetch_balance", _has_totals, self.client.fetch_balance)
        totals = raw["total"]
        return {name: float(totals.get(name) or 0.0) for name in (self.quote, *self.assets)}

    def place_order(self, request: OrderRequest, now: datetime) -> Order:
        """Send once; after a lost answer, look up by client id and resend only if absent."""
        cid = request.client_order_id
        if request.symbol not in self.markets():
            raise InvalidOrder(f"{self.exchange_id}: {request.symbol} is not a configured market")
        self._attempted.setdefault(cid, request.symbol)
        known = self.fetch_order(cid, now)  # sent before, by this process or an earlier one
        if known is not None:
            return known
        rounded = self._call(self.client.amount_to_precision, request.symbol, request.amount)
        amount = float(rounded)
        price = None  # a market order given a price is sent as a quote amount (API-NOTES)
        if request.type is OrderType.LIMIT:
            if request.price is None:
                raise InvalidOrder(f"{self.exchange_id}: a limit order needs a price")
            price = float(self._call(self.client.price_to_precision, request.symbol, request.price))
        for attempt in range(1, self._read_attempts + 1):
            self._attempted[cid] = request.symbol
            try:
                raw = self._call(
                    self.client.create_order,
                    request.symbol,
                    request.type.value,
                    request.side.value,
                    amount,
                    price,
                    {"clientOrderId": cid},
                )
                if not _is_order(raw):
                    raise TransientVenueError(f"{self.exchange_id}: malformed order response")
            except TransientVenueError as exc:
                known = self.fetch_order(cid, now)
                if known is not None:
                    return known
                if attempt == self._read_attempts:
                    raise
                self._report("create_order", attempt, exc)
                continue
            if raw.get("status") is None:  # an acknowledgement only (bybit): read the order
                return self.fetch_order(cid, now) or self._order(raw, now, request)
            return self._order(raw, now, request)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def fetch_order(self, client_order_id: str, now: datetime) -> Order | None:
        """The order with this client id, or None when the venue has never seen it."""
        known = self._attempted.get(client_order_id)
        for symbol in [known] if known else list(self.markets()):
            raw = self._lookup(symbol, client_order_id)
            if raw is not None:
                return self._order(raw, now, None, client_order_id)
        return None

    def cancel_order(self, client_order_id: str, now: datetime) -> Order:
        known = self.fetch_order(client_order_id, now)
        if known is None:
            raise InvalidOrder(f"no order with client id {client_order_id}")
        if known.status is not OrderStatus.OPEN:
            return known
        self._call(self.client.cancel_order, known.venue_order_id, known.symbol)
        return self.fetch_order(client_order_id, now) or known

    def open_orders(self, now: datetime) -> list[Order]:
        raw = self._read("fetch_open_orders", _are_orders, self.client.fetch_open_orders)
        return [self._order(item, now) for item in raw]

    def trades(self, since: datetime | None, now: datetime) -> list[Trade]:
        start = None if since is None else int(since.timestamp() * 1000) + 1
        out: list[Trade] = []
        for symbol in self.markets():
            raw = self._read(
                "fetch_my_trades", _are_trades, self.client.fetch_my_trades, symbol, start
            )
            out.extend(self._trade(item, now, symbol) for item in raw)
        return sorted(out, key=lambda trade: (trade.ts, trade.trade_id))

    def daily_ohlcv(self, symbol: str, since: datetime) -> pd.DataFrame:
        """Daily bars of `symbol` from `since`, in the replay frame format."""

        def page(cursor: int, limit: int) -> list[list[Any]]:
            fetch = self.client.fetch_ohlcv
            return self._read("fetch_ohlcv", _are_candles, fetch, symbol, "1d", cursor, limit)

        return daily_candles(page, int(since.timestamp() * 1000))

    # -- calls, retries and errors ---------------------------------------------------------

    def _lookup(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        """One exchange's way to find an order by client id, whatever its status."""
        if self.exchange_id == "bybit":
            params = {"orderLinkId": client_order_id}
            found = self._read(
                "fetch_order",
                _are_orders,
                self.client.fetch_open_orders,
                symbol,
                None,
                None,
                params,
            )
            return next((o for o in found if o.get("clientOrderId") == client_order_id), None)
        try:
            params = {"clientOrderId": client_order_id}
            raw = self._read(
                "fetch_order", _is_order, self.client.fetch_order, None, symbol, params
            )
        except InvalidOrder:
            return None
        return raw if raw.get("clientOrderId") in (None, client_order_id) else None

    def _read(
        self, name: str, valid: Callable[[Any], bool], call: Callable[..., T], *args: Any
    ) -> T:
        """A read, retried on transient errors and on answers that fail `valid` (malformed)."""

        def once() -> T:
            result = self._call(call, *args)
            if not valid(result):
                raise TransientVenueError(f"{self.exchange_id}: malformed {name} response")
            return result

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, TransientVenueError)),
            wait=wait_exponential(multiplier=self._first_wait_s, max=self._max_wait_s)
            + wait_random(0, self._first_wait_s),
            stop=stop_after_attempt(self._read_attempts),
            before_sleep=lambda state: self._before_sleep(name, state),
            reraise=True,
        )
        return retrying(once)

    def _call(self, call: Callable[..., T], *args: Any) -> T:
        """One request, after the guard; ccxt errors become the ports' error classes."""
        self.guard()
        ccxt = self._ccxt
        try:
            return call(*args)
        except ccxt.OrderNotFound as exc:
            raise InvalidOrder(self._message(exc)) from exc
        except ccxt.InsufficientFunds as exc:
            raise InsufficientFunds(self._message(exc)) from exc
        except (ccxt.InvalidOrder, ccxt.BadSymbol, ccxt.BadRequest) as exc:
            raise InvalidOrder(self._message(exc)) from exc
        except (ccxt.NetworkError, ccxt.OperationFailed) as exc:
            raise TransientVenueError(self._message(exc)) from exc
        except ccxt.BaseError as exc:
            raise PermanentVenueError(self._message(exc)) from exc

    def _message(self, exc: BaseException) -> str:
        """`exchange: ErrorClass: text`, on one line, with the keys scrubbed: some exchanges
        echo the signed string (API key included) in their error text."""
        text = " ".join(str(exc).split()).removeprefix(f"{self.exchange_id} ")
        for secret in (self.client.apiKey, self.client.secret):
            if secret:
                text = text.replace(secret, "***")
        return f"{self.exchange_id}: {type(exc).__name__}: {text}"

    def _before_sleep(self, name: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            self._report(name, state.attempt_number, exc)

    def _report(self, name: str, attempt: int, exc: BaseException) -> None:
        if self._on_retry is not None:
            self._on_retry(name, attempt, exc)

    # -- conversions ----------------------------------------------------------------------

    def _order(
        self,
        raw: Mapping[str, Any],
        now: datetime,
        request: OrderRequest | None = None,
        client_order_id: str = "",
    ) -> Order:
        cid = (
            raw.get("clientOrderId")
            or client_order_id
            or (request.client_order_id if request else "")
        )
        venue_id = str(raw.get("id") or "")
        if venue_id and cid:
            self._client_ids[venue_id] = cid
        amount = raw.get("amount")
        return Order(
            client_order_id=cid,
            venue_order_id=venue_id,
            symbol=str(raw.get("symbol") or (request.symbol if request else "")),
            side=Side(raw.get("side") or (request.side.value if request else "buy")),
            type=OrderType(raw.get("type") or (request.type.value if request else "market")),
            amount=float(amount if amount is not None else (request.amount if request else 0)),
            price=None if raw.get("price") is None else float(raw["price"]),
            status=_STATUS.get(str(raw.get("status")), OrderStatus.OPEN),
            filled=float(raw.get("filled") or 0.0),
            ts=_utc(raw.get("timestamp"), now),
        )

    def _trade(self, raw: Mapping[str, Any], now: datetime, symbol: str) -> Trade:
        price, amount = float(raw["price"]), float(raw["amount"])
        fee = raw.get("fee") or {}
        cost = float(fee.get("cost") or 0.0)
        if fee.get("currency") and fee["currency"] != self.quote:
            cost *= price  # a fee taken in the base asset, valued in the quote
        return Trade(
            trade_id=f"{self.exchange_id}-{raw['id']}",
            client_order_id=self._trade_client_id(raw, symbol),
            symbol=str(raw["symbol"]),
            side=Side(raw["side"]),
            amount=amount,
            price=price,
            fee=cost,
            ts=_utc(raw.get("timestamp"), now),
        )

    def _trade_client_id(self, raw: Mapping[str, Any], symbol: str) -> str:
        """The client id of the order a fill belongs to. Bybit's trades carry it; Binance's do
        not, so an order this process did not place or look up (it placed it before a restart)
        is fetched by its venue id, once."""
        order_id = str(raw.get("order") or "")
        cid = self._client_ids.get(order_id) or _info_client_id(raw)
        if not cid and order_id and self.exchange_id == "binance":
            fetch = self.client.fetch_order
            try:
                found = self._read("fetch_order", _is_order, fetch, order_id, symbol)
            except InvalidOrder:  # an order the exchange no longer keeps: the fill stays untagged
                return ""
            cid = str(found.get("clientOrderId") or "")
        if cid and order_id:
            self._client_ids[order_id] = cid
        return cid


def _info_client_id(raw: Mapping[str, Any]) -> str:
    info = raw.get("info")
    if not isinstance(info, Mapping):
        return ""
    return str(info.get("orderLinkId") or info.get("clientOrderId") or "")


def _refuse_truncated_json(client: Any, error: type[Exception]) -> None:
    """ccxt reads a body that starts like JSON but does not parse as a plain string, which its
    parsers turn into an empty answer (no candles, no orders); make it a transient error."""
    parse = client.parse_json

    def parse_json(http_response: Any) -> Any:
        parsed = parse(http_response)
        if parsed is None and str(http_response or "").lstrip()[:1] in ("{", "["):
            raise error(f"{client.id}: truncated JSON answer")
        return parsed

    client.parse_json = parse_json


def _is_dict(raw: Any) -> bool:
    return isinstance(raw, dict)


def _has_totals(raw: Any) -> bool:
    """A parsed balance whose raw answer was a real JSON document, not a truncated one."""
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("total"), dict)
        and isinstance(raw.get("info"), dict | list)
        and bool(raw["info"])
    )


def _is_order(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("id") is not None


def _are_orders(raw: Any) -> bool:
    return isinstance(raw, list) and all(_is_order(item) for item in raw)


def _are_trades(raw: Any) -> bool:
    fields = ("id", "price", "amount", "side", "symbol")
    return isinstance(raw, list) and all(
        isinstance(item, dict) and all(item.get(f) is not None for f in fields) for item in raw
    )


def _are_candles(raw: Any) -> bool:
    return isinstance(raw, list) and all(
        isinstance(row, list) and len(row) >= 6 and None not in row[:5] for row in raw
    )


def _market(raw: Mapping[str, Any]) -> Market:
    limits = raw.get("limits") or {}
    precision = raw.get("precision") or {}
    step = precision.get("amount")
    return Market(
        symbol=raw["symbol"],
        base=raw["base"],
        quote=raw["quote"],
        amount_step=None if step is None else float(step),
        min_amount=float((limits.get("amount") or {}).get("min") or 0.0),
        min_cost=float((limits.get("cost") or {}).get("min") or 0.0),
        fee_rate=float(raw.get("taker") or 0.0),
    )


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _urls(item)


def _testnet_hosts(fresh: Any) -> set[str]:
    """The hosts of ccxt's own testnet URLs for this exchange (empty when it has none)."""
    test = (fresh.urls or {}).get("test")
    return {urlsplit(fresh.implode_hostname(url)).hostname or "" for url in _urls(test)} - {""}


def point_at(client: Any, api_url: str) -> None:
    """Rewrite every API URL to the loopback test server, keeping each path.

    ccxt picks some exchanges' error tables by URL (binance's spot codes by host), so error
    lookups are answered as for the testnet URL each loopback URL replaced."""
    base = urlsplit(api_url)
    if base.hostname not in LOOPBACK_HOSTS:
        raise LiveEndpointRefused(f"api_url must be loopback, got {api_url!r}")
    replaced: dict[str, str] = {}

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            testnet = client.implode_hostname(value)
            loopback = f"{base.scheme}://{base.netloc}{urlsplit(testnet).path}"
            replaced.setdefault(loopback, testnet)
            return loopback
        return {key: rewrite(item) for key, item in value.items()}

    client.urls["api"] = rewrite(client.urls["api"])
    by_url = getattr(client, "get_exceptions_by_url", None)
    if by_url is None:
        return

    def as_testnet(url: str | None, exact_or_broad: str) -> dict:
        for loopback, testnet in replaced.items():
            if url and url.startswith(loopback):
                return by_url(testnet + url[len(loopback) :], exact_or_broad)
        return by_url(url, exact_or_broad)

    client.get_exceptions_by_url = as_testnet


def _utc(ms: Any, default: datetime) -> datetime:
    """A ccxt millisecond timestamp as UTC; `default` (the caller's now) when there is none."""
    return default if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC)
