"""pytest fixtures for the exchange emulators, and `make_ccxt`, the client the adapter would build.

    def test_something(binance_emulator):
        exchange = make_ccxt("binance", binance_emulator, timeout_ms=200)
        exchange.load_markets()

Register with `pytest_plugins = ["tests.emulators.fixtures"]`, or import the names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.emulators.binance import BinanceEmulator
from tests.emulators.bybit import BybitEmulator
from tests.emulators.common import LoopbackEmulator

# What each exchange needs to talk spot only, and nothing a testnet lacks.
CCXT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchCurrencies": False,  # sapi, absent from the testnet
        "fetchMarkets": {"types": ["spot"]},  # else /fapi and /dapi exchangeInfo too
        "fetchMargins": False,  # sapi margin pairs
    },
    "bybit": {
        "defaultType": "spot",  # the default is swap: balances, open orders, trades
        "fetchMarkets": {"types": ["spot"]},  # else linear, inverse and option instruments
    },
}


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def point_at(urls: dict[str, Any], base_url: str) -> dict[str, Any]:
    """`urls` with every URL's scheme and host replaced by `base_url`, paths kept."""
    target = urlsplit(base_url)
    rewritten: dict[str, Any] = {}
    for name, url in urls.items():
        if isinstance(url, dict):
            rewritten[name] = point_at(url, base_url)
        elif isinstance(url, str):
            rewritten[name] = urlsplit(url)._replace(scheme=target.scheme, netloc=target.netloc)
            rewritten[name] = rewritten[name].geturl()
        else:
            rewritten[name] = url
    return rewritten


def make_ccxt(
    exchange_id: str,
    emulator: LoopbackEmulator,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = 1000,
    *,
    options: dict[str, Any] | None = None,
    enable_rate_limit: bool = True,
) -> Any:
    """A real ccxt client in sandbox mode whose every API URL points at `emulator`.

    Keys default to the emulator's. `options` are merged over the spot options above and
    `maxRetriesOnFailure=0`. The emulator's `timeout_sleep` is raised above `timeout_ms` if needed,
    so that its timeout faults outlast the client's timeout.
    """
    import ccxt  # lazily: importing the fixtures stays cheap

    merged = _deep_merge(CCXT_OPTIONS[exchange_id], {"maxRetriesOnFailure": 0})
    exchange = getattr(ccxt, exchange_id)(
        {
            "apiKey": emulator.api_key if api_key is None else api_key,
            "secret": emulator.secret if secret is None else secret,
            "timeout": timeout_ms,
            "enableRateLimit": enable_rate_limit,
            "options": _deep_merge(merged, options or {}),
        }
    )
    exchange.set_sandbox_mode(True)
    exchange.urls["api"] = point_at(exchange.urls["api"], emulator.url)
    emulator.timeout_sleep = max(emulator.timeout_sleep, timeout_ms / 1000 + 0.3)
    return exchange


@pytest.fixture
def binance_emulator() -> Iterator[BinanceEmulator]:
    with BinanceEmulator() as emulator:
        yield emulator


@pytest.fixture
def bybit_emulator() -> Iterator[BybitEmulator]:
    with BybitEmulator() as emulator:
        yield emulator
