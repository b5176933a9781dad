"""API keys: from the environment, or a `.env` file beside the run, never from config files.

Values never reach the console or the journal: errors name the variable, not its value, and the
journal is given every key to redact.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values


class MissingSecret(Exception):
    """A key the config needs is not set; the message names the variable."""


def load_env(path: Path = Path(".env")) -> dict[str, str]:
    """The process environment over the values of `path` (when it exists)."""
    from_file = {k: v for k, v in dotenv_values(path).items() if v is not None}
    return from_file | dict(os.environ)


def require(env: Mapping[str, str], *names: str) -> tuple[str, ...]:
    """The values of `names`; MissingSecret naming every one that is unset or empty."""
    missing = [name for name in names if not (env.get(name) or "").strip()]
    if missing:
        raise MissingSecret(f"{', '.join(missing)} not set (environment or .env)")
    return tuple(env[name].strip() for name in names)


def exchange_key_names(exchange: str) -> tuple[str, str]:
    """`SPILLOVER_BINANCE_API_KEY`, `SPILLOVER_BINANCE_SECRET` for `binance`."""
    prefix = f"SPILLOVER_{exchange.upper()}"
    return f"{prefix}_API_KEY", f"{prefix}_SECRET"


ALPACA_KEY_NAMES = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
