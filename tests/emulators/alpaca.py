"""A loopback Alpaca market-data server: what `StockHistoricalDataClient.get_stock_bars` calls.

    with AlpacaEmulator() as emu:
        emu.set_bars("IWM", frame)            # tz-naive session dates, open/high/low/close/volume
        client = StockHistoricalDataClient(emu.api_key, emu.secret_key, url_override=emu.url)

Speaks `GET /v2/stocks/bars?symbols=..&timeframe=1Day&start=..&end=..&adjustment=..&feed=..
&limit=..&page_token=..&sort=..` as Alpaca does:

- Keys in the headers `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`; missing or wrong -> 401
  `{"code": 40110000, "message": "request is not authorized"}`. A feed outside `allowed_feeds`
  -> 403 (a free account asking for SIP).
- A daily bar is stamped at midnight America/New_York of its session, in UTC with a `Z`:
  `2024-03-08T05:00:00Z` (EST), `2024-03-11T04:00:00Z` (EDT). `start` and `end` (RFC-3339, both
  inclusive) filter on that stamp.
- `limit` is the size of one page, counted across all symbols (default 1000, at most 10000);
  the server also caps a page at `page_size`. More data -> `next_page_token`, else null.
  Symbols come in alphabetical order, each oldest first (`sort=desc`: newest first); a symbol
  with no bars in a page is absent from `bars`, so an unknown symbol gives `"bars": {}`.
- Bad parameters (symbol, timeframe, dates, adjustment, feed, limit, page token) -> 422 with
  `{"code": 42210000, "message": ...}`.

Every request is recorded in `requests` (path, query parameters, status, fault). Faults:
`fail_next("429" | "500" | "503" | "504" | "timeout" | "malformed" | "reset", ...)` queues
faults for the next requests; `fault_rate` and `seed` add seeded random ones (`random_faults`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
BARS_PATH = "/v2/stocks/bars"
FAULTS = ("429", "500", "503", "504", "timeout", "malformed", "reset")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
TIMEFRAMES = ("1Day", "1D")
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.]{0,15}")


@dataclass
class Request:
    """One request as the server saw it."""

    path: str
    params: dict[str, str]
    status: int = 0
    """HTTP status sent; 0 when no response was sent (`timeout`, `reset`)."""
    fault: str | None = None


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]


def _error(status: int, code: int, message: str) -> _Reply:
    return _Reply(status, {"code": code, "message": message})


def stamp(session: date) -> str:
    """Alpaca's `t` of a daily bar: midnight New York of the session, in UTC."""
    midnight = datetime(session.year, session.month, session.day, tzinfo=NEW_YORK)
    return midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _bar(session: pd.Timestamp, row: dict[str, float]) -> dict[str, Any]:
    volume = row["volume"]
    if not math.isnan(volume) and float(volume).is_integer():
        volume = int(volume)
    vwap = row.get("vwap", (row["high"] + row["low"] + row["close"]) / 3)
    trades = row.get("trade_count", 0.0 if math.isnan(row["volume"]) else row["volume"] // 100)
    return {
        "t": stamp(session.date()),
        "o": _number(row["open"]),
        "h": _number(row["high"]),
        "l": _number(row["low"]),
        "c": _number(row["close"]),
        "v": _number(volume),
        "n": None if math.isnan(trades) else int(trades),
        "vw": _number(round(vwap, 4) if not math.isnan(vwap) else vwap),
    }


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if len(text) == 10:  # a bare date: the start of that day in UTC
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is not None else None


@dataclass
class AlpacaEmulator:
    api_key: str = "emu-key-id"
    secret_key: str = "emu-secret-key"
    page_size: int = DEFAULT_LIMIT
    """Most bars in one page, whatever `limit` asks; small values exercise pagination."""
    timeout_delay: float = 5.0
    """Seconds a `timeout` fault holds the request before dropping the connection."""
    allowed_feeds: frozenset[str] = frozenset({"iex", "sip"})
    random_faults: tuple[str, ...] = ("429", "500", "503", "504", "malformed", "reset")
    """What a random fault can be (`timeout` is left out: it is slow)."""
    requests: list[Request] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """Callable giving the server's time: the default `end` and `start` of a request."""

    def __post_init__(self) -> None:
        self._bars: dict[str, list[dict[str, Any]]] = {}
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._fault_rate = 0.0
        self._seed: int | None = None
        self._rng = random.Random()

    # -- data and faults -------------------------------------------------------------------

    def set_bars(self, symbol: str, frame: pd.DataFrame) -> None:
        """Serve `frame` (indexed by session dates, open/high/low/close/volume and optionally
        trade_count/vwap) as the bars of `symbol`, in the frame's order, duplicates included."""
        rows = frame.astype("float64").to_dict("records")
        bars = [_bar(pd.Timestamp(s), r) for s, r in zip(frame.index, rows, strict=True)]
        with self._lock:
            self._bars[symbol] = bars

    def fail_next(self, *faults: str) -> None:
        """Fail the next requests, one fault each, in order."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    @property
    def fault_rate(self) -> float:
        return self._fault_rate

    @fault_rate.setter
    def fault_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {rate}")
        self._fault_rate = rate

    @property
    def seed(self) -> int | None:
        return self._seed

    @seed.setter
    def seed(self, seed: int | None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)

    def bar_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == BARS_PATH]

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AlpacaEmulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="alpaca-emu", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> AlpacaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one request -----------------------------------------------------------------------

    def _take_fault(self) -> str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._fault_rate and self._rng.random() < self._fault_rate:
                return self._rng.choice(self.random_faults)
        return None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query, keep_blank_values=True)
        request = Request(url.path, {k: v[-1] for k, v in query.items()})
        with self._lock:
            self.requests.append(request)
        request.fault = self._take_fault()
        if request.fault is not None:
            self._fail(handler, request)
            return
        reply = self._reply(handler, request)
        request.status = reply.status
        _send(handler, reply.status, json.dumps(reply.body).encode())

    def _fail(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        fault = request.fault
        if fault in ("timeout", "reset"):
            if fault == "timeout":
                self._stopping.wait(self.timeout_delay)
            handler.close_connection = True
            return
        if fault == "malformed":
            request.status = 200
            body = json.dumps({"bars": {"IWM": [{"t": stamp(date(2024, 1, 2)), "o": 1.0}]}})
            _send(handler, 200, body[: len(body) // 2].encode())
            return
        status = int(fault or 500)
        request.status = status
        if status in (503, 504):  # the gateway answers, in HTML
            reason = "Service Temporarily Unavailable" if status == 503 else "Gateway Time-out"
            page = f"<html><head><title>{status} {reason}</title></head></html>\r\n"
            _send(handler, status, page.encode(), "text/html")
            return
        reply = (
            _error(429, 42910000, "rate limit exceeded")
            if status == 429
            else _error(500, 50010000, "internal server error occurred")
        )
        _send(handler, status, json.dumps(reply.body).encode())

    def _reply(self, handler: BaseHTTPRequestHandler, request: Request) -> _Reply:
        if request.path != BARS_PATH:
            return _error(404, 40410000, "endpoint not found")
        key = handler.headers.get("APCA-API-KEY-ID")
        secret = handler.headers.get("APCA-API-SECRET-KEY")
        if key != self.api_key or secret != self.secret_key:
            return _error(401, 40110000, "request is not authorized")
        return self._bars_page(request.params)

    def _bars_page(self, params: dict[str, str]) -> _Reply:
        symbols = [s.strip() for s in params.get("symbols", "").split(",") if s.strip()]
        if not symbols:
            return _error(422, 42210000, "no symbol was specified")
        for symbol in symbols:
            if not _SYMBOL.fullmatch(symbol):
                return _error(422, 42210000, f"invalid symbol: {symbol}")
        if params.get("timeframe") not in TIMEFRAMES:
            return _error(422, 42210000, f"invalid timeframe: {params.get('timeframe', '')}")
        adjustment = params.get("adjustment", "raw")
        if adjustment not in ADJUSTMENTS:
            return _error(422, 42210000, f"invalid adjustment: {adjustment}")
        feed = params.get("feed", "sip")
        if feed not in FEEDS:
            return _error(422, 42210000, f"invalid feed: {feed}")
        if feed not in self.allowed_feeds:
            return _error(403, 40310000, f"subscription does not permit querying {feed} data")
        sort = params.get("sort", "asc")
        if sort not in ("asc", "desc"):
            return _error(422, 42210000, f"invalid sort: {sort}")
        now = self.now()
        today = datetime(now.year, now.month, now.day, tzinfo=NEW_YORK)
        bounds = {}
        for name, default in (("start", today), ("end", now)):
            text = params.get(name)
            bounds[name] = default if not text else _parse_time(text)
            if bounds[name] is None:
                return _error(422, 42210000, f"invalid {name}: {text}")
        if bounds["end"] < bounds["start"]:
            return _error(422, 42210000, "end should not be before start")
        limit_text = params.get("limit") or str(DEFAULT_LIMIT)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _error(422, 42210000, f"invalid limit: must be between 1 and {MAX_LIMIT}")
        page = min(int(limit_text), self.page_size)

        first, last = (_z(bounds["start"]), _z(bounds["end"]))
        with self._lock:
            items = [
                (symbol, bar)
                for symbol in sorted(set(symbols))
                for bar in (self._bars.get(symbol, [])[:: -1 if sort == "desc" else 1])
                if first <= bar["t"] <= last
            ]
        query = {k: v for k, v in params.items() if k not in ("page_token", "limit")}
        fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
        offset = 0
        if params.get("page_token"):
            offset = _read_token(params["page_token"], fingerprint)
            if offset is None or offset > len(items):
                return _error(422, 42210000, "invalid page token")
        chunk = items[offset : offset + page]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in chunk:
            bars.setdefault(symbol, []).append(bar)
        more = offset + page < len(items)
        token = _make_token(offset + page, fingerprint) if more else None
        return _Reply(200, {"bars": bars, "next_page_token": token, "currency": "USD"})


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _make_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"q": fingerprint, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str, fingerprint: str) -> int | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("q") != fingerprint:
        return None
    offset = data.get("o")
    return offset if isinstance(offset, int) and offset >= 0 else None


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json; charset=UTF-8",
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.emulator.handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass
