"""The ccxt testnet venue against loopback exchange emulators: real ccxt, real HTTP."""

from datetime import UTC, datetime

import pytest

from agent.ports import (
    InsufficientFunds,
    InvalidOrder,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentVenueError,
    TransientVenueError,
)
from agent.venue import testnet as sandbox
from agent.venue.testnet import LiveEndpointRefused
from risk.verdict import Side
from tests.emulators.fixtures import make_ccxt

NOW = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
EXCHANGES = ["binance", "bybit"]


@pytest.fixture(params=EXCHANGES)
def exchange(request, binance_emulator, bybit_emulator):
    emulator = binance_emulator if request.param == "binance" else bybit_emulator
    emulator.timeout_sleep = 0.6
    return request.param, emulator


def venue(exchange, *, secret=None, attempts=4, retries=None) -> sandbox.TestnetVenue:
    name, emulator = exchange
    return sandbox.TestnetVenue(
        name,
        emulator.api_key,
        emulator.secret if secret is None else secret,
        quote="USDT",
        assets=("BTC", "ETH"),
        api_url=emulator.url,
        timeout_s=0.3,
        read_attempts=attempts,
        first_wait_s=0.01,
        max_wait_s=0.05,
        on_retry=None if retries is None else lambda *args: retries.append(args),
    )


def buy(cid: str, amount: float = 0.01, symbol: str = "BTC/USDT") -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, OrderType.MARKET, amount)


def test_markets_carry_the_venue_precision_and_minimums(exchange):
    markets = venue(exchange).markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT"}
    btc = markets["BTC/USDT"]
    assert btc.base == "BTC"
    assert btc.amount_step is not None
    assert btc.amount_step > 0
    assert btc.min_cost == 5


def test_market_buy_fills_and_shows_in_balances_and_trades(exchange):
    testnet = venue(exchange)
    order = testnet.place_order(buy("run1-20261124T0005-0"), NOW)
    assert order.client_order_id == "run1-20261124T0005-0"
    assert order.status is OrderStatus.CLOSED
    assert order.filled == pytest.approx(0.01)
    balances = testnet.balances(NOW)
    assert balances["BTC"] == pytest.approx(0.01, rel=1e-3)  # bybit takes its fee in BTC
    assert balances["USDT"] == pytest.approx(10_000 - 500, abs=1.0)  # binance's in USDT
    [trade] = testnet.trades(None, NOW)
    assert trade.client_order_id == "run1-20261124T0005-0"
    assert trade.price == pytest.approx(50_000)
    assert trade.fee > 0


def test_a_restarted_process_finds_the_client_id_of_a_fill_it_never_placed(exchange):
    """After a restart the adapter has not seen the order a fill belongs to (Binance's trade list
    carries no client id): the fill still names it, so the journal puts it under its decision."""
    name, emulator = exchange
    venue(exchange).place_order(buy("run1-20261124T0005-0"), NOW)

    def lookups() -> int:
        return emulator.requests.count(("GET", "/api/v3/order"))

    before = lookups()
    restarted = venue(exchange)
    [trade] = restarted.trades(None, NOW)
    assert trade.client_order_id == "run1-20261124T0005-0"
    assert lookups() - before == (1 if name == "binance" else 0)  # Bybit's trades name it
    [again] = restarted.trades(None, NOW)
    assert again.client_order_id == "run1-20261124T0005-0"
    assert lookups() - before == (1 if name == "binance" else 0)  # learned once


def test_a_fill_whose_order_the_exchange_no_longer_keeps_is_untagged_not_an_error(
    binance_emulator,
):
    exchange = ("binance", binance_emulator)
    venue(exchange).place_order(buy("run1-20261124T0005-0"), NOW)
    binance_emulator.orders.clear()  # the order aged out of the exchange's records
    [trade] = venue(exchange).trades(None, NOW)
    assert trade.client_order_id == ""
    assert trade.amount == pytest.approx(0.01)


def test_the_same_client_order_id_twice_is_one_order(exchange):
    _, emulator = exchange
    testnet = venue(exchange)
    first = testnet.place_order(buy("run1-a-0"), NOW)
    again = testnet.place_order(buy("run1-a-0"), NOW)
    assert again.venue_order_id == first.venue_order_id
    assert len(emulator.orders_by_client_id("run1-a-0")) == 1
    assert emulator.duplicate_client_ids() == []


@pytest.mark.parametrize("fault", ["lost_response", "timeout", "reset", "503", "malformed"])
def test_an_order_whose_answer_is_lost_is_looked_up_not_sent_twice(exchange, fault):
    name, emulator = exchange
    path = "/api/v3/order" if name == "binance" else "/v5/order/create"
    emulator.fail_next(fault, path=path, method="POST")
    testnet = venue(exchange)
    order = testnet.place_order(buy("run1-b-0"), NOW)
    assert order.filled == pytest.approx(0.01)
    assert len(emulator.orders_by_client_id("run1-b-0")) == 1
    assert emulator.duplicate_client_ids() == []
    processed = fault in ("lost_response", "reset", "malformed")
    sent = [r for r in emulator.create_requests if r.client_id == "run1-b-0"]
    assert len(sent) == (1 if processed else 2)


@pytest.mark.parametrize("fault", ["429", "503", "timeout", "malformed"])
def test_reads_are_retried_on_transient_faults_and_each_retry_is_reported(exchange, fault):
    name, emulator = exchange
    path = "/api/v3/account" if name == "binance" else "/v5/account/wallet-balance"
    retries: list = []
    testnet = venue(exchange, retries=retries)
    emulator.fail_next(fault, path=path, times=2)
    assert testnet.balances(NOW)["USDT"] == pytest.approx(10_000)
    assert [r[0] for r in retries] == ["fetch_balance", "fetch_balance"]


def test_a_read_that_keeps_failing_gives_up_with_a_transient_error(exchange):
    name, emulator = exchange
    path = "/api/v3/account" if name == "binance" else "/v5/account/wallet-balance"
    testnet = venue(exchange, attempts=2)
    emulator.fail_next("503", path=path, times=5)
    with pytest.raises(TransientVenueError):
        testnet.balances(NOW)


def test_permanent_errors_are_raised_at_once_never_retried(exchange):
    _, emulator = exchange
    retries: list = []
    testnet = venue(exchange, retries=retries)
    with pytest.raises(InsufficientFunds):
        testnet.place_order(buy("run1-c-0", amount=1.0), NOW)
    with pytest.raises(InvalidOrder):
        testnet.place_order(buy("run1-c-1", amount=0.00001), NOW)
    assert retries == []
    assert not [r for r in emulator.create_requests if r.client_id == "run1-c-0"][1:]


def test_a_wrong_secret_is_a_permanent_error(exchange):
    with pytest.raises(PermanentVenueError):
        venue(exchange, secret="wrong-secret-value").balances(NOW)


def test_an_order_the_venue_never_saw_is_none(exchange):
    testnet = venue(exchange)
    assert testnet.fetch_order("run1-never-0", NOW) is None


# -- the paper-only guard ------------------------------------------------------------------


def test_the_client_is_in_sandbox_mode_on_the_testnet_hosts_without_an_override():
    testnet = sandbox.TestnetVenue("binance", "k", "s", quote="USDT", assets=("BTC",))
    assert testnet.api_hosts() == ["testnet.binance.vision", "testnet.binancefuture.com"]
    bybit = sandbox.TestnetVenue("bybit", "k", "s", quote="USDT", assets=("BTC",))
    assert bybit.api_hosts() == ["api-testnet.bybit.com"]


@pytest.mark.parametrize("url", ["https://api.binance.com", "http://10.0.0.1:8080", "https://x.io"])
def test_a_non_loopback_api_url_is_refused(url):
    with pytest.raises(LiveEndpointRefused):
        sandbox.TestnetVenue("binance", "k", "s", quote="USDT", assets=("BTC",), api_url=url)


@pytest.mark.parametrize("exchange_id", ["kraken", "kucoin", "coinbase"])
def test_an_exchange_without_a_sandbox_is_refused(exchange_id):
    with pytest.raises(LiveEndpointRefused, match="no spot testnet"):
        sandbox.TestnetVenue(exchange_id, "k", "s", quote="USDT", assets=("BTC",))


def test_switching_sandbox_off_or_pointing_at_live_urls_later_is_refused_before_any_call(
    binance_emulator,
):
    testnet = venue(("binance", binance_emulator))
    testnet.client.set_sandbox_mode(False)
    with pytest.raises(LiveEndpointRefused):
        testnet.balances(NOW)
    other = venue(("binance", binance_emulator))
    other.client.urls["api"]["private"] = "https://api.binance.com/api/v3"
    with pytest.raises(LiveEndpointRefused, match=r"api\.binance\.com"):
        other.place_order(buy("run1-d-0"), NOW)
    assert binance_emulator.create_requests == []


def test_a_live_url_never_receives_a_request(binance_emulator):
    """The guard runs before ccxt builds a request: nothing leaves, not even to the emulator."""
    testnet = venue(("binance", binance_emulator))
    testnet.client.urls["api"]["public"] = "https://api.binance.com/api/v3"
    count = len(binance_emulator.requests)
    with pytest.raises(LiveEndpointRefused):
        testnet.markets()
    assert len(binance_emulator.requests) == count


def test_make_ccxt_and_the_adapter_build_the_same_urls(binance_emulator):
    plain = make_ccxt("binance", binance_emulator)
    testnet = venue(("binance", binance_emulator))
    assert plain.urls["api"]["private"] == testnet.client.urls["api"]["private"]


def test_a_limit_order_is_sent_at_the_market_tick_and_rests_until_the_price_crosses(exchange):
    _, emulator = exchange
    testnet = venue(exchange)
    request = OrderRequest("run1-e-0", "BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, 49_000.123456)
    order = testnet.place_order(request, NOW)
    assert order.status is OrderStatus.OPEN
    [sent] = [r for r in emulator.create_requests if r.client_id == "run1-e-0"]
    price = sent.params.get("price")
    assert price is not None
    assert float(price) == pytest.approx(49_000.12, abs=0.01)
    emulator.set_price("BTCUSDT", 48_000)
    assert testnet.fetch_order("run1-e-0", NOW).status is OrderStatus.CLOSED
