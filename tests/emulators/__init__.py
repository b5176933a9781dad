"""Loopback servers that the real clients (ccxt, alpaca-py) talk to over HTTP on 127.0.0.1.

Import the module you need: `tests.emulators.alpaca`, `tests.emulators.binance`,
`tests.emulators.bybit` (the two exchanges share `tests.emulators.common`); pytest fixtures for
the exchanges are in `tests.emulators.fixtures`. Nothing is imported here, so using one emulator
does not load the others.
"""
