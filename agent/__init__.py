"""The agent: the loop, the CLI, config, and the adapters at the edge (market data, venues)."""

from functools import cache
from typing import Any


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spillover")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """`__version__`, read from the installed package's metadata when first asked for (reading
    it costs every command's start-up about 30 ms)."""
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
