"""The real ccxt clients against the loopback Binance and Bybit emulators: calls, errors, faults."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from tests.emulators.binance import BinanceEmulator
from tests.emulators.bybit import BybitEmulator
from tests.emulators.common import FaultPlan, LoopbackEmulator
from tests.emulators.fixtures import binance_emulator, bybit_emulator, make_ccxt  # noqa: F401

ccxt = pytest.importorskip("ccxt")

TIMEOUT_MS = 300
DAY_MS = 86_400_000
SYMBOL = "BTC/USDT"
EXCHANGES = ("binance", "bybit")


@dataclass
class Venue:
    id: str
    emu: LoopbackEmulator
    ex: Any

    def lookup(self, client_id: str) -> dict | None:
        """The order with this client id, through ccxt, the way that works on this exchange."""
        if self.id == "binance":
            try:
                return self.ex.fetch_order(None, SYMBOL, {"clientOrderId": client_id})
            except ccxt.OrderNotFound:
                return None
        found = self.ex.fetch_open_orders(SYMBOL, params={"orderLinkId": client_id})
        return found[0] if found else None


def venue_for(exchange_id: str, emu: LoopbackEmulator, **kwargs: Any) -> Venue:
    kwargs.setdefault("enable_rate_limit", False)  # ccxt's throttle only slows the tests
    return Venue(exchange_id, emu, make_ccxt(exchange_id, emu, timeout_ms=TIMEOUT_MS, **kwargs))


@pytest.fixture
def binance(request: pytest.FixtureRequest) -> BinanceEmulator:
    return request.getfixturevalue("binance_emulator")


@pytest.fixture
def bybit(request: pytest.FixtureRequest) -> BybitEmulator:
    return request.getfixturevalue("bybit_emulator")


@pytest.fixture(params=EXCHANGES)
def venue(request: pytest.FixtureRequest) -> Venue:
    emu = request.getfixturevalue(f"{request.param}_emulator")
    v = venue_for(request.param, emu)
    v.ex.load_markets()
    return v


def daily_frame(days: int, start: str = "2020-01-01") -> pd.DataFrame:
    index = pd.date_range(start, periods=days, freq="D")
    close = [100.0 + i for i in range(days)]
    return pd.DataFrame(
        {
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [10.0] * days,
        },
        index=index,
    )


# --- the calls ---


def test_load_markets_carries_precision_and_limits(venue: Venue) -> None:
    market = venue.ex.market(SYMBOL)
    assert market["spot"]
    assert market["active"]
    assert market["precision"]["amount"] == 0.00001
    assert market["precision"]["price"] == 0.01
    assert market["limits"]["amount"]["min"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5
    assert set(venue.ex.markets) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert venue.emu.unknown_requests == []


def test_fetch_ticker_follows_set_price(venue: Venue) -> None:
    venue.emu.set_price("BTCUSDT", 61234.5)
    assert venue.ex.fetch_ticker(SYMBOL)["last"] == 61234.5


def test_fetch_ohlcv_pages_through_1500_daily_candles(venue: Venue) -> None:
    frame = daily_frame(1500)
    venue.emu.set_klines("BTCUSDT", frame)
    since = int(frame.index[0].timestamp() * 1000)
    candles: list[list] = []
    while True:
        batch = venue.ex.fetch_ohlcv(SYMBOL, "1d", since=since, limit=1000)
        candles += batch
        if len(batch) < 1000:
            break
        since = batch[-1][0] + DAY_MS
    stamps = [c[0] for c in candles]
    assert stamps == [int(ts.timestamp() * 1000) for ts in frame.index]
    assert [c[4] for c in candles] == frame["close"].tolist()
    assert candles[0][1:] == [100.0, 101.0, 99.0, 100.0, 10.0]
    latest = venue.ex.fetch_ohlcv(SYMBOL, "1d")  # no since: the most recent, default limit
    assert len(latest) == {"binance": 500, "bybit": 200}[venue.id]
    assert latest[-1][0] == stamps[-1]


def test_fetch_balance_follows_set_balance(venue: Venue) -> None:
    venue.emu.set_balance("USDT", 100_000)
    venue.emu.set_balance("ETH", 2.5)
    balance = venue.ex.fetch_balance()
    assert balance["USDT"]["free"] == 100_000
    assert balance["ETH"]["total"] == 2.5


def test_market_buy_with_client_id_fills_in_parts(venue: Venue) -> None:
    venue.emu.fill_parts = 3
    order = venue.ex.create_order(SYMBOL, "market", "buy", 0.01, None, {"clientOrderId": "c-1"})
    assert order["clientOrderId"] == "c-1"
    found = venue.lookup("c-1")
    assert found is not None
    assert found["id"] == order["id"]
    assert found["status"] == "closed"
    assert found["filled"] == 0.01
    trades = venue.ex.fetch_my_trades(SYMBOL)
    assert len({t["id"] for t in trades}) == 3
    assert sum(t["amount"] for t in trades) == pytest.approx(0.01)
    assert all(t["order"] == order["id"] and t["price"] == 50000 for t in trades)
    balance = venue.ex.fetch_balance()
    if venue.id == "binance":  # fee in the quote asset
        assert balance["USDT"]["total"] == pytest.approx(10000 - 500 * 1.001)
        assert balance["BTC"]["total"] == pytest.approx(0.01)
    else:  # Bybit: a buy pays its fee in the base coin
        assert balance["USDT"]["total"] == pytest.approx(9500)
        assert balance["BTC"]["total"] == pytest.approx(0.01 * 0.999)
    assert venue.emu.create_requests[-1].client_id == "c-1"
    assert venue.emu.duplicate_client_ids() == []


def test_limit_order_rests_fills_partly_on_a_cross_then_cancels(venue: Venue) -> None:
    order = venue.ex.create_order(SYMBOL, "limit", "buy", 0.01, 40000, {"clientOrderId": "l-1"})
    assert [o["clientOrderId"] for o in venue.ex.fetch_open_orders(SYMBOL)] == ["l-1"]
    assert venue.ex.fetch_balance()["USDT"]["used"] > 0
    venue.emu.set_price("BTCUSDT", 39000, fill_fraction=0.5)
    found = venue.lookup("l-1")
    assert found["status"] == "open"
    assert found["filled"] == pytest.approx(0.005)
    venue.ex.cancel_order(order["id"], SYMBOL)
    assert venue.ex.fetch_open_orders(SYMBOL) == []
    assert venue.emu.balance("USDT")[1] == 0  # nothing left locked
    trades = venue.ex.fetch_my_trades(SYMBOL)
    assert [t["price"] for t in trades] == [40000]  # filled at its limit, as maker
    assert trades[0]["takerOrMaker"] == "maker"


def test_fetch_open_orders_without_a_symbol() -> None:
    with BinanceEmulator() as binance_emu, BybitEmulator() as bybit_emu:
        options = {"fetchOpenOrders": {"warnWithoutSymbol": False}}
        venues = (venue_for("binance", binance_emu, options=options), venue_for("bybit", bybit_emu))
        for v in venues:
            v.emu.set_balance("ETH", 1)
            v.ex.create_order(SYMBOL, "limit", "buy", 0.01, 40000, {"clientOrderId": "a"})
            v.ex.create_order("ETH/USDT", "limit", "sell", 0.1, 9000, {"clientOrderId": "b"})
            assert sorted(o["clientOrderId"] for o in v.ex.fetch_open_orders()) == ["a", "b"]


def test_fetch_open_orders_without_a_symbol_raises_by_default_on_binance(
    binance: BinanceEmulator,
) -> None:
    with pytest.raises(ccxt.ExchangeError, match="warnWithoutSymbol"):
        venue_for("binance", binance).ex.fetch_open_orders()


# --- errors ---

ERRORS = {
    # name: {exchange: exact ccxt class}, with loopback URLs
    "wrong secret": {"binance": "AuthenticationError", "bybit": "AuthenticationError"},
    "unknown key": {"binance": "AuthenticationError", "bybit": "AuthenticationError"},
    "clock skew": {"binance": "InvalidNonce", "bybit": "InvalidNonce"},
    "insufficient": {"binance": "InsufficientFunds", "bybit": "InsufficientFunds"},
    "below min cost": {"binance": "BadRequest", "bybit": "InvalidOrder"},
    "duplicate open": {"binance": "InvalidOrder", "bybit": "InvalidOrder"},
    "cancel unknown": {"binance": "OrderNotFound", "bybit": "OrderNotFound"},
    "unknown symbol": {"binance": "BadSymbol", "bybit": "BadSymbol"},
}


def provoke(v: Venue, name: str) -> None:
    if name == "wrong secret":
        make_ccxt(v.id, v.emu, secret="wrong", enable_rate_limit=False).fetch_balance()
    elif name == "unknown key":
        make_ccxt(v.id, v.emu, api_key="nobody", enable_rate_limit=False).fetch_balance()
    elif name == "clock skew":
        v.emu.clock_offset_ms = -60_000  # the client is a minute ahead of the server
        v.ex.fetch_balance()
    elif name == "insufficient":
        v.ex.create_order(SYMBOL, "market", "buy", 1, None, {"clientOrderId": "big"})
    elif name == "below min cost":
        v.ex.create_order(SYMBOL, "market", "buy", 0.00001, None, {"clientOrderId": "tiny"})
    elif name == "duplicate open":
        v.ex.create_order(SYMBOL, "limit", "buy", 0.001, 40000, {"clientOrderId": "twice"})
        v.ex.create_order(SYMBOL, "limit", "buy", 0.001, 40000, {"clientOrderId": "twice"})
    elif name == "cancel unknown":
        v.ex.cancel_order("424242", SYMBOL)
    elif name == "unknown symbol":  # raw calls: ccxt refuses unknown unified symbols itself
        if v.id == "binance":
            v.ex.publicGetTicker24hr({"symbol": "NOPEUSDT"})
        else:
            v.ex.publicGetV5MarketTickers({"category": "spot", "symbol": "NOPEUSDT"})


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_map_to_ccxt_exceptions(venue: Venue, name: str) -> None:
    with pytest.raises(ccxt.BaseError) as raised:
        provoke(venue, name)
    assert type(raised.value).__name__ == ERRORS[name][venue.id], str(raised.value)


def test_binance_lets_a_closed_orders_client_id_be_used_again(
    binance: BinanceEmulator,
) -> None:
    v = venue_for("binance", binance)
    for _ in range(2):  # both fill: Binance only refuses a client id that an open order has
        v.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "again"})
    assert binance.duplicate_client_ids() == ["again"]


def test_bybit_refuses_any_earlier_order_link_id(bybit: BybitEmulator) -> None:
    v = venue_for("bybit", bybit)
    v.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "once"})
    with pytest.raises(ccxt.InvalidOrder, match="170141"):
        v.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "once"})
    assert bybit.duplicate_client_ids() == []


def test_lot_size_and_price_filters_on_binance(binance: BinanceEmulator) -> None:
    ex = venue_for("binance", binance).ex
    ex.load_markets()
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        ex.privatePostOrder({**order, "quantity": "0.000015", "price": "40000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        ex.privatePostOrder({**order, "quantity": "0.001", "price": "40000.001"})


def test_unknown_endpoint_is_recorded_and_answered_404(
    binance: BinanceEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    ex = venue_for("binance", binance).ex
    with pytest.raises(ccxt.ExchangeError):
        ex.publicGetAvgPrice({"symbol": "BTCUSDT"})
    assert binance.unknown_requests == [("GET", "/api/v3/avgPrice")]
    assert "UNKNOWN ENDPOINT" in caplog.text


def test_binance_my_trades_windows(binance: BinanceEmulator) -> None:
    v = venue_for("binance", binance)
    v.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "t"})
    now = binance.now_ms()
    assert len(v.ex.fetch_my_trades(SYMBOL, since=now - 60_000)) == 1
    assert v.ex.fetch_my_trades(SYMBOL, since=now - 2 * DAY_MS) == []  # 24 h from since
    with pytest.raises(ccxt.BadRequest):
        v.ex.fetch_my_trades(SYMBOL, since=now - 2 * DAY_MS, params={"until": now})


# --- faults ---

FAULTS = {
    "binance": {
        "timeout": "RequestTimeout",
        "429": "DDoSProtection",
        "503": "ExchangeNotAvailable",
        "503_json": "OperationFailed",
        "lost_response": "RequestTimeout",
        "reset": "NetworkError",
    },
    "bybit": {
        "timeout": "RequestTimeout",
        "429": "RateLimitExceeded",
        "403": "RateLimitExceeded",
        "503": "ExchangeNotAvailable",
        "503_json": "ExchangeError",
        "lost_response": "RequestTimeout",
        "reset": "NetworkError",
    },
}
PROCESSED = {"lost_response", "reset", "malformed"}


@pytest.mark.parametrize(
    ("exchange_id", "kind"), [(e, k) for e, kinds in FAULTS.items() for k in kinds]
)
def test_fault_kinds_raise_these_ccxt_exceptions(
    request: pytest.FixtureRequest, exchange_id: str, kind: str
) -> None:
    emu = request.getfixturevalue(f"{exchange_id}_emulator")
    v = venue_for(exchange_id, emu)
    v.ex.load_markets()
    emu.fail_next(kind)
    with pytest.raises(ccxt.BaseError) as raised:
        v.ex.fetch_ticker(SYMBOL)
    assert type(raised.value).__name__ == FAULTS[exchange_id][kind]
    emu.fail_next(kind, path=emu.create_route[1])
    with pytest.raises(ccxt.BaseError) as raised:
        v.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "f"})
    assert type(raised.value).__name__ == FAULTS[exchange_id][kind]
    record = emu.create_requests[-1]
    assert (record.client_id, record.fault) == ("f", kind)
    assert (record.order_id is not None) == (kind in PROCESSED)
    assert (v.lookup("f") is not None) == (kind in PROCESSED)
    assert emu.duplicate_client_ids() == []


def test_malformed_answers_are_not_exceptions_in_ccxt(venue: Venue) -> None:
    """A 200 with truncated JSON: ccxt hands the raw text to its parsers and returns junk."""
    venue.ex.fetch_balance()  # bybit: ccxt's one-time account probe, answered well
    venue.emu.fail_next("malformed")
    assert venue.ex.fetch_ticker(SYMBOL)["last"] is None
    venue.emu.fail_next("malformed", path=venue.emu.create_route[1])
    order = venue.ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "m"})
    assert order["id"] is None or isinstance(order["info"], str)
    assert venue.lookup("m")["status"] == "closed"  # yet the order was placed


def test_a_malformed_bybit_account_probe_sticks(bybit: BybitEmulator) -> None:
    """ccxt asks once whether the account is unified and caches the answer: a junk answer makes
    it a classic account for good, and a market buy's qty is then sent as a quote amount without
    `marketUnit`. Setting the options `enableUnifiedAccount=True, enableUnifiedMargin=False`
    skips the probe."""
    ex = venue_for("bybit", bybit).ex
    bybit.fail_next("malformed", path="/v5/user/query-api")
    ex.fetch_balance()
    assert ex.options["enableUnifiedAccount"] is False
    with pytest.raises(ccxt.InvalidOrder, match="170136"):  # 0.001 USDT worth: too little
        ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "q"})
    assert bybit.create_requests[-1].params.get("marketUnit") is None


def test_a_lost_answer_leaves_an_order_that_a_lookup_finds(venue: Venue) -> None:
    venue.emu.fail_next("lost_response", path=venue.emu.create_route[1])
    with pytest.raises(ccxt.RequestTimeout):
        venue.ex.create_order(SYMBOL, "market", "buy", 0.002, None, {"clientOrderId": "lost"})
    assert not venue.emu.create_requests[-1].answered
    assert venue.lookup("lost")["filled"] == pytest.approx(0.002)
    assert venue.emu.duplicate_client_ids() == []


def test_fault_plan_is_seeded(venue: Venue) -> None:
    def run(emu: LoopbackEmulator) -> list[tuple[str, str, str]]:
        emu.faults = FaultPlan(rate=0.5, kinds=("429", "503"), seed=7)
        ex = make_ccxt(venue.id, emu, timeout_ms=TIMEOUT_MS, enable_rate_limit=False)
        for _ in range(12):
            with contextlib.suppress(ccxt.NetworkError):
                ex.fetch_time()
        return emu.injected_faults

    first = run(venue.emu)
    with type(venue.emu)() as other:
        assert run(other) == first
    assert 0 < len(first) < 12
    with pytest.raises(ValueError, match="unknown fault"):
        venue.emu.fail_next("gremlins")


def test_stop_returns_promptly_while_a_handler_sleeps() -> None:
    emu = BinanceEmulator(timeout_sleep=30).start()
    emu.fail_next("timeout")
    errors: list[Exception] = []

    def call() -> None:
        try:
            urllib.request.urlopen(f"{emu.url}/api/v3/ping", timeout=5)
        except (urllib.error.URLError, ConnectionError) as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.1)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 1
    caller.join(timeout=2)
    assert not caller.is_alive()
