import os

import pytest

from tests.emulators.fixtures import binance_emulator, bybit_emulator

__all__ = ["binance_emulator", "bybit_emulator"]  # fixtures for every test module


@pytest.fixture(autouse=True)
def _no_config_overrides_from_the_outer_environment(monkeypatch):
    """A developer's own SPILLOVER__ variables must not change what the tests see."""
    for name in list(os.environ):
        if name.upper().startswith("SPILLOVER__"):
            monkeypatch.delenv(name)
