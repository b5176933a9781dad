"""The agent: the loop, the CLI, config, and the adapters at the edge (market data, venues)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spillover")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
