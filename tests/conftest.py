import os

import pytest


@pytest.fixture(autouse=True)
def _no_config_overrides_from_the_outer_environment(monkeypatch):
    """A developer's own SPILLOVER__ variables must not change what the tests see."""
    for name in list(os.environ):
        if name.upper().startswith("SPILLOVER__"):
            monkeypatch.delenv(name)


from tests.emulators.fixtures import binance_emulator, bybit_emulator  # noqa: E402, F401
