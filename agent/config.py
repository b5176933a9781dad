"""Configuration: TOML files validated by frozen, strict pydantic models.

The strategy and risk sections are the parameter dataclasses of `strategies` and `risk`, which
validate themselves; this module adds the sections that only the agent uses, the checks that
span sections, environment overrides (``SPILLOVER__SECTION__KEY=value``) and error messages of
one line per problem: ``FILE: section.key: what is wrong``.

Secrets are never config keys: API keys come from the environment or `.env`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from risk.limits import RiskParams
from strategies.breakout import BreakoutParams
from strategies.params import ParamError
from strategies.staging import StagingParams

ENV_PREFIX = "SPILLOVER__"
_UNKNOWN_KEY = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_SECRET_KEY = re.compile(r"(api_?key|secret|password|passphrase|token|private_?key)", re.I)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataConfig(_Section):
    """Where daily bars come from and which series define the breakout."""

    source: Literal["sample", "replay", "alpaca"] = "sample"
    """`sample`: generated offline from `seed` into `dir` when absent; `replay`: CSV files in
    `dir`; `alpaca`: equity bars from Alpaca, crypto bars from the venue's exchange."""
    dir: Path = Path("data/sample")
    """Folder of `SYMBOL.csv` files for `sample` and `replay` (relative to the working dir)."""
    seed: int = 7
    """Seed of the sample generator: the same seed gives the same files."""
    index: str = "IWM"
    """The small-cap proxy: its volume always, and its closes unless `index_price` is set."""
    index_price: str = ""
    """Another symbol whose closes define the highs (e.g. `RUT` for the index level); empty
    means the closes of `index`."""
    crypto_symbol: str = "{asset}-USD"
    """Data symbol of each crypto asset; `{asset}` is replaced by its name (`BTC-USD`)."""
    benchmark: str = "SPY"
    """What small caps must outperform."""
    feed: Literal["iex", "sip"] = "iex"
    """Alpaca's stock feed: `iex` for free accounts (IEX volume only: the detector compares
    volume with its own history, never with absolute numbers)."""
    alpaca_url: str = ""
    """Loopback test servers only: overrides Alpaca's data URL (`http://127.0.0.1:PORT`)."""
    adjustment: Literal["raw", "split", "dividend", "all"] = "split"
    """Alpaca's price adjustment. `split` (the default) makes highs price highs, as quoted for
    the index; `all`/`dividend` make them total-return highs, which come earlier (IWM yields
    about 1.3% a year) and can mark a breakout the price never made."""

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        _require_loopback("alpaca_url", self.alpaca_url)
        return self


SANDBOXED = frozenset({"binance", "bybit"})
"""Exchanges whose spot testnet spillover supports: the only venues besides the paper one."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _require_loopback(key: str, url: str) -> None:
    """URL overrides exist for loopback test servers only; anything else is refused."""
    if not url:
        return
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK_HOSTS:
        raise ParamError(key, f"must be a loopback URL (http://127.0.0.1:PORT), got {url!r}")


class MarketConfig(_Section):
    """A paper market's trading rules (testnet venues report their own)."""

    amount_step: float | None = 1e-6
    """Order amounts are multiples of this many base units; unset means any amount."""
    min_amount: float = 0.0
    """Smallest order, base units."""
    min_cost: float = 10.0
    """Smallest order notional, quote currency."""

    @model_validator(mode="after")
    def _check(self) -> MarketConfig:
        if self.amount_step is not None and self.amount_step <= 0:
            raise ParamError("amount_step", f"must be > 0, got {self.amount_step}")
        for key in ("min_amount", "min_cost"):
            if getattr(self, key) < 0:
                raise ParamError(key, f"must be >= 0, got {getattr(self, key)}")
        return self


class VenueConfig(_Section):
    """Where orders go. Paper only: there is no live venue."""

    kind: Literal["paper", "testnet"] = "paper"
    """`paper`: the in-process paper venue; `testnet`: an exchange's spot testnet via ccxt."""
    exchange: str = ""
    """For `testnet`: the ccxt exchange id, one of SANDBOXED (`binance`, `bybit`)."""
    api_url: str = ""
    """Loopback test servers only: replaces the testnet's host (`http://127.0.0.1:PORT`)."""
    timeout_s: float = 10.0
    """Per-request timeout of the exchange client."""
    read_attempts: int = 4
    """Attempts of a read (balances, order lookups, trades, bars) on transient errors."""
    retry_wait_s: float = 0.5
    """First wait between attempts; it doubles each time (plus random jitter) ..."""
    retry_max_wait_s: float = 8.0
    """... up to this."""
    rate_limit: bool = True
    """ccxt's own request spacing (the exchange's published rate limit)."""
    quote: str = "USDT"
    """Quote currency of every market and of the balances."""
    initial_cash: float = 100_000.0
    """Starting balance of the paper venue, in the quote currency."""
    fee_bps: float = 10.0
    """Fee per fill, basis points of the notional."""
    slippage_bps: float = 5.0
    """Market orders fill this many basis points worse than the next bar's open."""
    default_market: MarketConfig = MarketConfig()
    """Rules of every market that `markets` does not name."""
    markets: dict[str, MarketConfig] = {}
    """Rules per asset (e.g. `[venue.markets.BTC]`), replacing `default_market`."""

    def market(self, asset: str) -> MarketConfig:
        return self.markets.get(asset, self.default_market)

    @model_validator(mode="after")
    def _check(self) -> VenueConfig:
        if self.kind == "testnet" and self.exchange not in SANDBOXED:
            named = f"{self.exchange!r} has no spot testnet here" if self.exchange else "required"
            raise ParamError(
                "exchange", f"{named}: spillover trades only on {', '.join(sorted(SANDBOXED))}"
            )
        if self.kind == "paper" and self.exchange:
            raise ParamError("exchange", 'only for kind = "testnet"')
        _require_loopback("api_url", self.api_url)
        if not self.timeout_s > 0:
            raise ParamError("timeout_s", f"must be > 0, got {self.timeout_s}")
        if self.read_attempts < 1:
            raise ParamError("read_attempts", f"must be >= 1, got {self.read_attempts}")
        if not 0 < self.retry_wait_s <= self.retry_max_wait_s:
            raise ParamError(
                "retry_wait_s",
                f"must be > 0 and <= retry_max_wait_s ({self.retry_max_wait_s}), "
                f"got {self.retry_wait_s}",
            )
        if self.initial_cash <= 0:
            raise ParamError("initial_cash", f"must be > 0, got {self.initial_cash}")
        for key in ("fee_bps", "slippage_bps"):
            if not 0 <= getattr(self, key) < 10_000:
                raise ParamError(key, f"must be in [0, 10000), got {getattr(self, key)}")
        return self


class RunConfig(_Section):
    """How `spillover run` runs: where it keeps its records and how fast it replays."""

    dir: Path = Path("runs/sim")
    """Run folder: the journal and the run's state (relative to the working dir)."""
    speed: float = 100.0
    """Replayed data only: simulated days per second of wall-clock time."""
    start: date | None = None
    """Replayed data only: first day to trade; unset means once the first asset has
    `staging.trend_window` days of closes."""
    fsync: bool = False
    """fsync the journal after every record (slower, survives a power cut)."""
    tick_at: time = time(0, 5)
    """Live runs: the UTC time of the daily tick, after the crypto day closes at midnight."""
    unknown_orders: Literal["cancel", "adopt"] = "cancel"
    """Resuming a run: what to do with an open order at the venue that the run never placed
    (`cancel` it, or `adopt` it into the run's state). Either way it is journalled."""

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if not self.speed > 0:
            raise ParamError("speed", f"must be > 0, got {self.speed}")
        return self


class Config(_Section):
    data: DataConfig = DataConfig()
    signal: BreakoutParams = BreakoutParams()
    staging: StagingParams = StagingParams()
    risk: RiskParams = RiskParams()
    venue: VenueConfig = VenueConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _check_across_sections(self) -> Config:
        for n, stage in enumerate(self.staging.stages):
            if stage.day >= self.signal.window_days:
                raise ParamError(
                    f"staging.stages[{n}].day",
                    f"{stage.day} is not inside the lag window "
                    f"(signal.window_days = {self.signal.window_days})",
                )
        live_data, testnet = self.data.source == "alpaca", self.venue.kind == "testnet"
        if live_data != testnet:
            raise ParamError(
                "data.source",
                "alpaca (live bars) goes with venue.kind = testnet, and replayed or sample bars "
                f"with the paper venue; got {self.data.source!r} with {self.venue.kind!r}",
            )
        if "{asset}" not in self.data.crypto_symbol:
            raise ParamError("data.crypto_symbol", "must contain {asset}")
        for asset in self.venue.markets:
            if asset not in self.staging.shares:
                raise ParamError(f"venue.markets.{asset}", "not an asset of staging.shares")
        for asset in self.risk.asset_caps:
            if asset not in self.staging.shares:
                raise ParamError(f"risk.asset_caps.{asset}", "not an asset of staging.shares")
        return self

    def hash(self) -> str:
        """SHA-256 of the effective config: runs and journals cite it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment and validate; raise ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None

    overridden = _apply_env(data, environ)
    try:
        return Config.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        errors = _every_error(data, exc.errors())
    raise ConfigError(sorted({_describe(path, err, overridden) for err in errors}))


def _every_error(data: dict[str, Any], errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """`errors` and those an unknown key hides: pydantic checks no value of a parameter
    dataclass given an unknown key, nor the sections together once one fails, so unknown keys
    are dropped and the rest validated again until none is left."""
    tree = json.loads(json.dumps(data, default=str))
    unknown: list[ErrorDetails] = []
    while dropped := [e for e in errors if e["type"] in _UNKNOWN_KEY and _drop(tree, e["loc"])]:
        unknown += dropped
        try:
            Config.model_validate_json(json.dumps(tree))
            errors = []
        except ValidationError as exc:
            errors = exc.errors()
    return unknown + errors


def _drop(tree: Any, loc: tuple[int | str, ...]) -> bool:
    """Delete the key at `loc` from `tree`; False when there is no such key."""
    if not loc:
        return False
    *parents, key = loc
    node = tree
    try:
        for part in parents:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(node, dict) or key not in node:
        return False
    del node[key]
    return True


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge SPILLOVER__A__B=value into `data`; return {dotted key: variable name} for every
    key a variable set and every table it created (so a misspelt section names the variable).

    A value is read as a TOML value (`1.5`, `true`, `["BTC", "ETH"]`, `{BTC = 0.2}`) and, when it
    is not one, as a plain string. Path parts match existing keys case-insensitively, else they
    are lower-cased.
    """
    overridden: dict[str, str] = {}
    for name, raw in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        node, path = data, []
        for part in parts[:-1]:
            key = _match_key(node, part)
            path.append(key)
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
                overridden.setdefault(".".join(path), name)
            node = child
        key = _match_key(node, parts[-1])
        node[key] = _parse_value(raw)
        overridden[".".join([*path, key])] = name
    return overridden


def _match_key(node: Mapping[str, Any], part: str) -> str:
    return next((k for k in node if k.lower() == part.lower()), part.lower())


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def describe_error(err: Mapping[str, Any]) -> tuple[str, str]:
    """A pydantic validation error of a config as (dotted key, what is wrong), in words."""
    loc = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]]
    message = err["msg"]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ParamError):
        loc = [*loc, *cause.key.split(".")]
        message = cause.message
    elif err["type"] in _UNKNOWN_KEY:
        message = "unknown key"
        if loc and _SECRET_KEY.search(loc[-1]):
            message = "secrets are not config keys: set them in the environment or .env"
    elif err["type"] == "missing":
        message = "required"
    elif "input" in err and not isinstance(err["input"], dict | list):
        message = f"{message} (got {err['input']!r})"
    return _join(loc), message


def _describe(path: Path, err: Mapping[str, Any], overridden: Mapping[str, str]) -> str:
    key, message = describe_error(err)
    sources = [k for k in overridden if key == k or key.startswith((k + ".", k + "["))]
    suffix = f" (from {overridden[max(sources, key=len)]})" if sources else ""
    return f"{path}: {key}: {message}{suffix}"


def _join(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") or not out else f".{part}"
    return out
