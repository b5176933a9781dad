"""What the exchange emulators share: HTTP server, fault injection, matching engine, records.

An exchange emulator subclasses `LoopbackEmulator` and implements `handle(request) -> Reply`
(raising `ApiError` with its own error reply), `rejection_reply(rejection)` (turns an engine
`Rejection` into the exchange's error), `fault_reply(kind)` and `create_route`. Everything else,
including the account state, lives here and is guarded by one lock.

Fault kinds (`FAULT_KINDS`); each emulator may add its own:

- `timeout`: sleep `timeout_sleep` seconds, then close the connection without answering. The
  request is NOT processed.
- `429`: a rate-limit answer (exchange specific). Not processed.
- `503`: HTTP 503 with a non-JSON body. Not processed.
- `503_json`: HTTP 503 with the exchange's JSON "internal error" body. Not processed.
- `malformed`: the request IS processed (a 200 means the server did the work), then the JSON
  answer is cut in half. On an order request this leaves an order behind.
- `lost_response`: the request IS processed, then nothing is sent for `timeout_sleep` seconds and
  the connection is closed, as if the answer was lost (the client sees a timeout). Reads have no
  side effect, so for them this is a timeout.
- `reset`: the request IS processed, then the connection is closed at once without an answer
  (the client sees a dropped connection, not a timeout).

Two hooks for harnesses that drive a client in another process (`tests/crash_run.py`), both off by
default: `control_routes` maps (method, path) to a handler answered before anything else (not
recorded, never faulted), and `on_create(record)` is called after an order creation has been
processed; when it returns True the answer is dropped (the connection closes without a reply).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

log = logging.getLogger("tests.emulators")

FAULT_KINDS: tuple[str, ...] = (
    "timeout",
    "429",
    "503",
    "503_json",
    "malformed",
    "lost_response",
    "reset",
)
UNANSWERED = frozenset({"timeout", "lost_response", "reset"})
PROCESSED = frozenset({"malformed", "lost_response", "reset"})  # other kinds: never processed
ZERO = Decimal(0)


def dec(value: object) -> Decimal:
    """A Decimal from a float, int, str or Decimal (floats through their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def hmac_sha256_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


# --- HTTP plumbing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str  # raw query string, as sent (what signatures cover)
    body: str  # raw body, as sent
    headers: dict[str, str]  # lower-case names

    @property
    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def form_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.body, keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, payload: object, status: int = 200, headers=()) -> Reply:
        return cls(status, json.dumps(payload).encode(), "application/json", tuple(headers))

    @classmethod
    def text(cls, text: str, status: int, content_type: str = "text/html") -> Reply:
        return cls(status, text.encode(), content_type)


class ApiError(Exception):
    """Raised by a handler: answer with this error reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode(errors="replace"))
        self.reply = reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers sleeping in a fault
    emulator: LoopbackEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("%s: unhandled error serving %s", self.emulator.name, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles after stop()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(method, split.path, split.query, body, headers)
        reply = self.server.emulator.serve(request)
        if reply is None:  # drop the connection without an answer
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            self.close_connection = True


# --- faults -------------------------------------------------------------------------------------


@dataclass
class FaultPlan:
    """Seeded random faults: each request (optionally only on `paths`) fails with probability
    `rate`, the kind drawn from `kinds`. The same seed and request sequence give the same faults.
    """

    rate: float = 0.1
    kinds: tuple[str, ...] = ("timeout", "429", "503", "malformed", "lost_response")
    seed: int = 0
    paths: tuple[str, ...] | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")
        if not self.kinds:
            raise ValueError("kinds is empty")
        self._rng = random.Random(self.seed)

    def draw(self, path: str) -> str | None:
        if self.paths is not None and path not in self.paths:
            return None
        with self._lock:
            if self._rng.random() < self.rate:
                return self._rng.choice(self.kinds)
        return None


# --- the account model --------------------------------------------------------------------------


@dataclass
class Market:
    symbol: str  # exchange id, e.g. "BTCUSDT"
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal = Decimal(9000)
    max_notional: Decimal = Decimal(9_000_000)

    def __post_init__(self) -> None:
        for name in (
            "tick_size",
            "step_size",
            "min_qty",
            "min_notional",
            "max_qty",
            "max_notional",
        ):
            setattr(self, name, dec(getattr(self, name)))


@dataclass
class Order:
    order_id: int
    client_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    type: str  # "MARKET" | "LIMIT"
    qty: Decimal
    price: Decimal | None  # the limit price
    time_in_force: str | None
    created_ms: int
    updated_ms: int
    status: str = "NEW"  # NEW | PARTIALLY_FILLED | FILLED | CANCELED
    executed: Decimal = ZERO
    quote_executed: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    locked: Decimal = ZERO  # what this order still holds locked (quote for buys, base for sells)
    quote_order_qty: Decimal | None = None
    trade_ids: list[int] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def average_price(self) -> Decimal:
        return self.quote_executed / self.executed if self.executed else ZERO


@dataclass
class Trade:
    trade_id: int
    order_id: int
    client_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class CreateRequest:
    """One order-creation request as received, whatever became of it."""

    client_id: str | None
    symbol: str | None
    params: dict[str, str]
    fault: str | None  # the injected fault, if any
    time_ms: int
    order_id: int | None = None  # the order it created, if any
    status: int | None = None  # the HTTP status sent; None when no answer was sent

    @property
    def answered(self) -> bool:
        return self.status is not None


class Rejection(Exception):
    """The engine refuses an order; the emulator turns `reason` into its exchange's error.

    Reasons: unknown_symbol, qty_min, qty_max, qty_step, price_tick, notional_min, insufficient,
    duplicate, no_price, not_found.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


DEFAULT_MARKETS = (
    Market("BTCUSDT", "BTC", "USDT", *map(Decimal, ("0.01", "0.00001", "0.00001", "5"))),
    Market("ETHUSDT", "ETH", "USDT", *map(Decimal, ("0.01", "0.0001", "0.0001", "5"))),
    Market("SOLUSDT", "SOL", "USDT", *map(Decimal, ("0.01", "0.001", "0.001", "5"))),
)
DEFAULT_PRICES = {"BTCUSDT": Decimal(50000), "ETHUSDT": Decimal(3000), "SOLUSDT": Decimal(100)}
DEFAULT_BALANCES = {"USDT": Decimal(10000)}


class LoopbackEmulator:
    """A fake exchange on 127.0.0.1 (port 0: a free port). Start/stop it or use `with`.

    State (guarded by `lock`): `markets`, prices, balances (free and locked per asset), `orders`,
    `trades`, klines per symbol. Records: `requests` [(method, path)], `create_requests`,
    `unknown_requests`, `injected_faults` [(method, path, kind)].
    """

    name: ClassVar[str] = "emulator"
    fault_kinds: ClassVar[tuple[str, ...]] = FAULT_KINDS
    create_route: ClassVar[tuple[str, str]] = ("POST", "/")
    duplicate_scope: str = "open"  # a client id is refused while an "open" / "any" order has it
    fee_asset: str = "quote"  # "quote": every fee in the quote asset; "received": in what it buys

    def __init__(
        self,
        api_key: str = "test-key",
        secret: str = "test-secret",
        *,
        fee_rate: float = 0.001,
        fill_parts: int = 1,
        timeout_sleep: float = 0.5,
        markets: tuple[Market, ...] = DEFAULT_MARKETS,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.fee_rate = dec(fee_rate)
        self.fill_parts = fill_parts
        self.timeout_sleep = timeout_sleep
        self.clock_offset_ms = 0  # the server clock is time.time() plus this
        self.lock = threading.RLock()
        self.markets: dict[str, Market] = {}
        self.prices: dict[str, Decimal] = {}
        self.free: dict[str, Decimal] = dict(DEFAULT_BALANCES)
        self.locked: dict[str, Decimal] = {}
        self.klines: dict[tuple[str, str], list[tuple]] = {}
        self.orders: list[Order] = []
        self.trades: list[Trade] = []
        self.requests: list[tuple[str, str]] = []
        self.create_requests: list[CreateRequest] = []
        self.unknown_requests: list[tuple[str, str]] = []
        self.injected_faults: list[tuple[str, str, str]] = []
        self._faults: FaultPlan | None = None
        self._scripted: list[tuple[str, str | None, str | None]] = []
        self.control_routes: dict[tuple[str, str], Callable[[Request], Reply | None]] = {}
        """(method, path) -> handler, answered first: not recorded, never faulted."""
        self.on_create: Callable[[CreateRequest], bool] | None = None
        """Called after an order creation was processed; True drops its answer."""
        self._next_order_id = 1000
        self._next_trade_id = 5000
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for market in markets:
            self.add_market(market, DEFAULT_PRICES.get(market.symbol))

    # --- lifecycle ---

    def start(self) -> LoopbackEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a fault
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> LoopbackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    # --- setters ---

    def add_market(self, market: Market, price: float | Decimal | None = None) -> None:
        with self.lock:
            self.markets[market.symbol] = market
            if price is not None:
                self.prices[market.symbol] = dec(price)

    def set_balance(self, asset: str, free: float | Decimal, locked: float | Decimal = 0) -> None:
        with self.lock:
            self.free[asset] = dec(free)
            self.locked[asset] = dec(locked)

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of an asset."""
        with self.lock:
            return self.free.get(asset, ZERO), self.locked.get(asset, ZERO)

    def set_price(self, symbol: str, price: float | Decimal, *, fill_fraction: float = 1.0) -> None:
        """Set the price; resting limit orders it crosses fill at their limit price (maker),
        `fill_fraction` of what remains of each (below 1: they stay PARTIALLY_FILLED)."""
        with self.lock:
            self._market(symbol)
            px = dec(price)
            self.prices[symbol] = px
            for order in [o for o in self.orders if o.symbol == symbol and o.is_open]:
                if order.type != "LIMIT" or order.price is None:
                    continue
                crossed = px <= order.price if order.side == "BUY" else px >= order.price
                if crossed:
                    market = self.markets[symbol]
                    qty = order.remaining
                    if fill_fraction < 1:
                        qty = max(floor_to_step(qty * dec(fill_fraction), market.step_size), ZERO)
                    if qty > 0:
                        self._fill(order, qty, order.price, is_maker=True)

    def set_klines(self, symbol: str, frame: pd.DataFrame, interval: str = "1d") -> None:
        """Candles for a symbol from a frame with open/high/low/close/volume indexed by the candle
        open time (dates or timestamps; naive means UTC). Sets the price to the last close if the
        symbol has none yet."""
        import pandas as pd

        rows = []
        for stamp, row in zip(frame.index, frame.itertuples(index=False), strict=True):
            ts = pd.Timestamp(stamp)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            values = row._asdict()
            rows.append(
                (
                    int(ts.timestamp() * 1000),
                    *(dec(values[c]) for c in ("open", "high", "low", "close", "volume")),
                )
            )
        rows.sort(key=lambda r: r[0])
        with self.lock:
            self._market(symbol)
            self.klines[(symbol, interval)] = rows
            if rows and symbol not in self.prices:
                self.prices[symbol] = rows[-1][4]

    # --- faults and records ---

    @property
    def faults(self) -> FaultPlan | None:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        if plan is not None:
            self._check_kinds(plan.kinds)
        self._faults = plan

    def fail_next(
        self, kind: str, path: str | None = None, times: int = 1, method: str | None = None
    ) -> None:
        """Queue a fault for the next request (on `path` and `method` only, if given)."""
        self._check_kinds((kind,))
        with self.lock:
            self._scripted.extend([(kind, path, method)] * times)

    def _check_kinds(self, kinds: tuple[str, ...]) -> None:
        unknown = set(kinds) - set(self.fault_kinds)
        if unknown:
            raise ValueError(f"{self.name}: unknown fault kinds {sorted(unknown)}")

    def duplicate_client_ids(self) -> list[str]:
        """Client order ids that created more than one order (empty if the client behaves)."""
        with self.lock:
            counts = Counter(o.client_id for o in self.orders if o.client_id)
        return sorted(cid for cid, n in counts.items() if n > 1)

    def orders_by_client_id(self, client_id: str) -> list[Order]:
        with self.lock:
            return [o for o in self.orders if o.client_id == client_id]

    # --- serving ---

    def serve(self, request: Request) -> Reply | None:
        """Answer one request (None: close the connection without an answer)."""
        control = self.control_routes.get((request.method, request.path))
        if control is not None:
            return control(request)
        with self.lock:
            self.requests.append((request.method, request.path))
            kind = self._take_fault(request.method, request.path)
            if kind is not None:
                self.injected_faults.append((request.method, request.path, kind))
            record = None
            if (request.method, request.path) == self.create_route:
                record = self._record_create(request, kind)
        if kind == "timeout":
            self._stopping.wait(self.timeout_sleep)
            return None
        if kind is None or kind in PROCESSED:
            reply = self._process(request, record)
        else:
            reply = self.fault_reply(kind)
        hook = self.on_create
        processed = kind is None or kind in PROCESSED
        if processed and record is not None and hook is not None and hook(record):
            record.status = None
            return None
        if record is not None:
            record.status = None if kind in UNANSWERED else reply.status
        if kind == "malformed":
            body = reply.body[: max(1, len(reply.body) // 2)]
            return Reply(200, body, "application/json")
        if kind == "lost_response":
            self._stopping.wait(self.timeout_sleep)
            return None
        if kind == "reset":
            return None
        return reply

    def _take_fault(self, method: str, path: str) -> str | None:
        for i, (kind, only, verb) in enumerate(self._scripted):
            if (only is None or only == path) and (verb is None or verb == method):
                del self._scripted[i]
                return kind
        plan = self._faults
        return plan.draw(path) if plan is not None else None

    def _record_create(self, request: Request, fault: str | None) -> CreateRequest:
        params = {**request.query_params, **self.create_params(request)}
        record = CreateRequest(
            client_id=self.client_id_of(params),
            symbol=params.get("symbol"),
            params=params,
            fault=fault,
            time_ms=self.now_ms(),
        )
        self.create_requests.append(record)
        return record

    def _process(self, request: Request, record: CreateRequest | None) -> Reply:
        with self.lock:
            before = len(self.orders)
            try:
                reply = self.handle(request)
            except ApiError as error:
                reply = error.reply
            except Rejection as rejection:
                reply = self.rejection_reply(rejection)
            except Exception as bug:  # an emulator bug: say so rather than drop the connection
                log.exception(
                    "%s emulator failed on %s %s", self.name, request.method, request.path
                )
                reply = Reply.text(f"emulator error: {bug!r}", 500, "text/plain")
            if record is not None and len(self.orders) > before:
                record.order_id = self.orders[-1].order_id
            return reply

    def unknown(self, request: Request) -> None:
        """Log an endpoint the emulator does not implement, loudly."""
        self.unknown_requests.append((request.method, request.path))
        log.error("%s emulator: UNKNOWN ENDPOINT %s %s", self.name, request.method, request.path)

    # --- to implement per exchange ---

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def rejection_reply(self, rejection: Rejection) -> Reply:
        raise NotImplementedError

    def fault_reply(self, kind: str) -> Reply:
        raise NotImplementedError

    def create_params(self, request: Request) -> dict[str, str]:
        """The parameters of an order-creation request (body or query)."""
        return request.form_params

    def client_id_of(self, params: dict[str, str]) -> str | None:
        raise NotImplementedError

    # --- the matching engine (call with the lock held) ---

    def _market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise Rejection("unknown_symbol", symbol)
        return market

    def price_of(self, symbol: str) -> Decimal | None:
        return self.prices.get(symbol)

    def find_order(
        self, symbol: str | None, order_id: int | None = None, client_id: str | None = None
    ) -> Order | None:
        """The most recent order matching the id (and symbol, if given)."""
        for order in reversed(self.orders):
            if symbol is not None and order.symbol != symbol:
                continue
            if order_id is not None and order.order_id != order_id:
                continue
            if client_id is not None and order.client_id != client_id:
                continue
            return order
        return None

    def check_quantity(self, market: Market, qty: Decimal) -> None:
        if qty < market.min_qty or qty <= 0:
            raise Rejection("qty_min", f"{qty} < {market.min_qty}")
        if qty > market.max_qty:
            raise Rejection("qty_max", f"{qty} > {market.max_qty}")
        if (qty - market.min_qty) % market.step_size != 0:
            raise Rejection("qty_step", f"{qty} is not a multiple of {market.step_size}")

    def check_price(self, market: Market, price: Decimal) -> None:
        if price <= 0 or price % market.tick_size != 0:
            raise Rejection("price_tick", f"{price} is not a multiple of {market.tick_size}")

    def check_notional(self, market: Market, notional: Decimal) -> None:
        if notional < market.min_notional:
            raise Rejection("notional_min", f"{notional} < {market.min_notional}")

    def place_order(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        client_id: str,
        qty: Decimal | None = None,
        quote_qty: Decimal | None = None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Order:
        """Validate, then create an order: a market order fills at once at the current price; a
        limit order fills at once if it crosses the current price, else rests (locking funds)."""
        market = self._market(symbol)
        same_id = [o for o in self.orders if client_id and o.client_id == client_id]
        if any(o.is_open for o in same_id) or (self.duplicate_scope == "any" and same_id):
            raise Rejection("duplicate", client_id)
        current = self.prices.get(symbol)
        if type == "MARKET":
            if current is None:
                raise Rejection("no_price", symbol)
            if qty is None:
                if quote_qty is None:
                    raise ValueError("a market order needs qty or quote_qty")
                qty = floor_to_step(quote_qty / current, market.step_size)
            self.check_quantity(market, qty)
            self.check_notional(market, qty * current)
            reference = current
        else:
            if price is None or qty is None:
                raise ValueError("a limit order needs qty and price")
            self.check_price(market, price)
            self.check_quantity(market, qty)
            self.check_notional(market, qty * price)
            reference = price
        if side == "BUY":
            need, asset = qty * reference * self._buy_cost_factor(), market.quote
        else:
            need, asset = qty, market.base
        if self.free.get(asset, ZERO) < need:
            raise Rejection("insufficient", f"{asset}: need {need}, free {self.free.get(asset)}")
        now = self.now_ms()
        order = Order(
            order_id=self._next_order_id,
            client_id=client_id,
            symbol=symbol,
            side=side,
            type=type,
            qty=qty,
            price=price if type == "LIMIT" else None,
            time_in_force=time_in_force,
            created_ms=now,
            updated_ms=now,
            fee_asset=market.base
            if side == "BUY" and self.fee_asset == "received"
            else market.quote,
            quote_order_qty=quote_qty,
            extra=dict(extra or {}),
        )
        self._next_order_id += 1
        self.orders.append(order)
        if type == "MARKET":
            self._fill(order, qty, current, is_maker=False)
            return order
        self._lock_funds(order, asset, need)
        crosses = current is not None and (
            current <= price if side == "BUY" else current >= price  # type: ignore[operator]
        )
        if crosses:
            self._fill(order, qty, current, is_maker=False)  # type: ignore[arg-type]
        return order

    def cancel_order(self, order: Order) -> None:
        if not order.is_open:
            raise Rejection("not_found", f"order {order.order_id} is {order.status}")
        asset = self._locked_asset(order)
        self._release(order, asset, order.locked)
        order.status = "CANCELED"
        order.updated_ms = self.now_ms()

    def _buy_cost_factor(self) -> Decimal:
        """What a buy costs per unit of quote, fee included when the fee is paid in quote."""
        return 1 + self.fee_rate if self.fee_asset == "quote" else Decimal(1)

    def _locked_asset(self, order: Order) -> str:
        market = self.markets[order.symbol]
        return market.quote if order.side == "BUY" else market.base

    def _lock_funds(self, order: Order, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, ZERO) - amount
        self.locked[asset] = self.locked.get(asset, ZERO) + amount
        order.locked += amount

    def _release(self, order: Order, asset: str, amount: Decimal) -> None:
        amount = min(amount, order.locked)
        self.locked[asset] = self.locked.get(asset, ZERO) - amount
        self.free[asset] = self.free.get(asset, ZERO) + amount
        order.locked -= amount

    def _split(self, qty: Decimal, step: Decimal) -> list[Decimal]:
        parts = max(1, self.fill_parts)
        piece = floor_to_step(qty / parts, step)
        if piece <= 0:
            return [qty]
        pieces = [piece] * (parts - 1)
        return [*pieces, qty - sum(pieces, ZERO)]

    def _fill(self, order: Order, qty: Decimal, price: Decimal, *, is_maker: bool) -> None:
        market = self.markets[order.symbol]
        for part in self._split(qty, market.step_size):
            self._fill_one(order, market, part, price, is_maker)
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.updated_ms = self.now_ms()

    def _fill_one(
        self, order: Order, market: Market, qty: Decimal, price: Decimal, is_maker: bool
    ) -> None:
        quote = qty * price
        fee_in_base = order.side == "BUY" and self.fee_asset == "received"
        commission = (qty if fee_in_base else quote) * self.fee_rate
        if order.locked > 0:  # a resting order: release what this part had locked
            share = qty
            if order.side == "BUY":
                share = qty * order.price * self._buy_cost_factor()  # type: ignore[operator]
            self._release(order, self._locked_asset(order), share)
        if fee_in_base:
            self.free[market.quote] = self.free.get(market.quote, ZERO) - quote
            self.free[market.base] = self.free.get(market.base, ZERO) + qty - commission
        elif order.side == "BUY":
            self.free[market.quote] = self.free.get(market.quote, ZERO) - quote - commission
            self.free[market.base] = self.free.get(market.base, ZERO) + qty
        else:
            self.free[market.base] = self.free.get(market.base, ZERO) - qty
            self.free[market.quote] = self.free.get(market.quote, ZERO) + quote - commission
        trade = Trade(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            client_id=order.client_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=commission,
            commission_asset=order.fee_asset,
            time_ms=self.now_ms(),
            is_maker=is_maker,
        )
        self._next_trade_id += 1
        self.trades.append(trade)
        order.trade_ids.append(trade.trade_id)
        order.executed += qty
        order.quote_executed += quote
        order.fee += commission

    def candles(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        *,
        from_start: bool,
    ) -> list[tuple]:
        """Candles with open time in [start, end], oldest first: the first `limit` of them when
        `from_start`, else the last `limit`."""
        rows = self.klines.get((symbol, interval), [])
        chosen = [
            r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)
        ]
        if limit <= 0:
            return []
        return chosen[:limit] if from_start else chosen[-limit:]
