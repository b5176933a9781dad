"""Daily equity bars from Alpaca's market-data API, through alpaca-py's `StockHistoricalDataClient`.

Alpaca stamps a daily bar at midnight America/New_York of its session, in UTC (`05:00:00Z` in
winter, `04:00:00Z` in summer); a bar's date here is that New York date, tz-naive. While a session
is open its daily bar is partial, so only completed sessions (per the XNYS calendar and the
injected clock) are asked for and kept: a request ends at noon New York of the last completed
session, and any later bar is dropped.

One symbol per request (alpaca-py's `limit` is a total across symbols), from `start` to that
session, no limit: alpaca-py follows `next_page_token` itself. Bars are cached per symbol and the
tail is fetched again, from the last cached bar, once `end` asks past the cache and a newer
session has closed; a fetch that stops short of the last completed session (a bar not yet
published) is cached only up to its last bar, so the next call asks again. The overlapping bar
must come back unchanged; if it does not (a split or dividend re-adjusted history, or a
correction), the whole history is fetched again.

Retries are tenacity's alone: alpaca-py's own (3 more tries, 3 s apart, on 429 and 504) is
switched off by setting the client's `_retry` to 0 and `_retry_codes` to [] (its constructor
cannot: it drops a 0 or an empty list), and its requests session gets a timeout (it sets none,
so a stalled connection would hang forever). Transient: HTTP 429 and 5xx, connection errors,
timeouts, truncated or malformed JSON. Anything else (401, 403, 422, bad bars) is a `DataError`
at once, one line naming the symbol; keys never appear in messages.

alpaca, requests and tenacity are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from agent.clock import EquitySessions
from agent.marketdata.checks import bar_values, earliest, order_checks, value_checks
from agent.ports import BAR_COLUMNS, DataError
from agent.secrets import ALPACA_KEY_NAMES, load_env, require

if TYPE_CHECKING:
    from agent.config import DataConfig

NEW_YORK = ZoneInfo("America/New_York")
KEY_VARIABLE, SECRET_VARIABLE = ALPACA_KEY_NAMES
FEEDS = ("iex", "sip", "delayed_sip")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
_FIELDS = dict(zip(BAR_COLUMNS, ("o", "h", "l", "c", "v"), strict=True))
_MESSAGE_CHARS = 200

__all__ = ["AlpacaData", "RetryHook", "load_env"]

RetryHook = Callable[[str, int, BaseException], None]
"""Called before each retry's sleep with the symbol, the attempt that failed (1 = the first) and
its exception: the agent journals it."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Cached:
    bars: pd.DataFrame
    through: pd.Timestamp
    """The bars are complete up to this session: the last completed one when fetched, or the
    last bar served if that is older (a bar not yet published is asked for again)."""


class AlpacaData:
    """`MarketData` for US equities: daily bars of any symbol Alpaca serves, fetched on demand."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        feed: str = "iex",
        adjustment: str = "split",
        url_override: str | None = None,
        attempts: int = 4,
        clock_now: Callable[[], datetime] = _utc_now,
        start: date = date(2000, 1, 1),
        timeout_s: float = 30.0,
        wait_initial: float = 1.0,
        wait_max: float = 30.0,
        on_retry: RetryHook | None = None,
        sessions: EquitySessions | None = None,
    ) -> None:
        if not api_key or not secret_key:
            raise DataError("alpaca: an API key and a secret key are both required")
        if feed not in FEEDS:
            raise ValueError(f"feed must be one of {', '.join(FEEDS)}, got {feed!r}")
        if adjustment not in ADJUSTMENTS:
            raise ValueError(
                f"adjustment must be one of {', '.join(ADJUSTMENTS)}, got {adjustment!r}"
            )
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self._api_key = api_key
        self._secret_key = secret_key
        self.feed = feed
        self.adjustment = adjustment
        self.url_override = url_override
        self.attempts = attempts
        self.start = start
        self.timeout_s = timeout_s
        self._clock_now = clock_now
        self._wait = (wait_initial, wait_max)
        self._on_retry = on_retry
        self._sessions = sessions
        self._rest: Any = None
        self._cache: dict[str, _Cached] = {}

    @classmethod
    def from_config(
        cls, config: DataConfig, environ: Mapping[str, str], **options: Any
    ) -> AlpacaData:
        """Keys from `environ` (`load_env()`: the environment over `.env`); feed, adjustment
        and URL from `config` (the `data` section)."""
        return cls(
            *require(environ, KEY_VARIABLE, SECRET_VARIABLE),
            feed=config.feed,
            adjustment=config.adjustment,
            url_override=config.alpaca_url or None,
            **options,
        )

    def __repr__(self) -> str:
        url = f", url_override={self.url_override!r}" if self.url_override else ""
        return f"AlpacaData(feed={self.feed!r}, adjustment={self.adjustment!r}{url})"

    # -- MarketData ------------------------------------------------------------------------

    def daily_bars(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        end = _naive(end)
        bars = self._fresh(symbol, end)
        return bars.iloc[: bars.index.searchsorted(end, side="right")]

    def daily_column(self, symbol: str, column: str, end: pd.Timestamp) -> pd.Series:
        end = _naive(end)
        bars = self._fresh(symbol, end)
        return bars[column].iloc[: bars.index.searchsorted(end, side="right")]

    # -- cache -----------------------------------------------------------------------------

    def _fresh(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        cached = self._cache.get(symbol)
        if cached is not None and end <= cached.through:
            return cached.bars
        last = self._last_closed()
        if cached is not None and cached.through >= last:
            return cached.bars
        bars = self._history(symbol, last) if cached is None else self._extend(symbol, cached, last)
        self._cache[symbol] = _Cached(bars, min(last, bars.index[-1]))
        return bars

    def _last_closed(self) -> pd.Timestamp:
        if self._sessions is None:
            self._sessions = EquitySessions()
        now = self._clock_now()
        last = self._sessions.last_closed(now)
        if last is None:
            raise DataError(f"alpaca: no completed session at {now.isoformat()}")
        return last

    def _history(self, symbol: str, last: pd.Timestamp) -> pd.DataFrame:
        first = pd.Timestamp(self.start)
        bars = self._fetch(symbol, first, last)
        if bars.empty:
            raise DataError(
                f"alpaca {symbol}: no bars from {first.date()} to {last.date()} "
                f"(feed {self.feed}): is the symbol right?"
            )
        _validate(symbol, bars)
        return bars

    def _extend(self, symbol: str, cached: _Cached, last: pd.Timestamp) -> pd.DataFrame:
        old = cached.bars
        tail = self._fetch(symbol, old.index[-1], last)
        if tail.empty or tail.index[0] != old.index[-1] or not _same(tail.iloc[0], old.iloc[-1]):
            return self._history(symbol, last)  # history re-adjusted or corrected
        bars = pd.concat([old.iloc[:-1], tail])
        _validate(symbol, bars)
        return bars

    # -- one request -----------------------------------------------------------------------

    def _fetch(self, symbol: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
        """Bars of sessions `first` to `last`, both included."""
        client = self._client()  # first: it imports alpaca

        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Day,
            start=_new_york(first, hour=0),
            end=_new_york(last, hour=12),
            adjustment=Adjustment(self.adjustment),
            feed=DataFeed(self.feed),
        )
        raw = self._call(symbol, lambda: client.get_stock_bars(request))
        bars = _frame(symbol, raw)
        return bars[bars.index <= last]

    def _client(self) -> Any:
        if self._rest is None:
            with warnings.catch_warnings():  # alpaca-py 0.44 imports websockets.legacy
                warnings.filterwarnings("ignore", message=r"websockets\.legacy is deprecated")
                from alpaca.data.historical import StockHistoricalDataClient

            client = StockHistoricalDataClient(
                self._api_key, self._secret_key, raw_data=True, url_override=self.url_override
            )
            client._retry = 0  # alpaca-py's own retry off: tenacity is the one policy
            client._retry_codes = []
            _add_timeout(client._session, self.timeout_s)
            if self.url_override is not None:
                client._session.trust_env = False  # loopback: no proxies from the environment
            self._rest = client
        return self._rest

    def _call(self, symbol: str, fetch: Callable[[], Any]) -> Any:
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
            wait_random,
        )

        initial, most = self._wait
        retrying = Retrying(
            retry=retry_if_exception(_transient),
            # = wait_exponential_jitter(initial, max, jitter=initial), whose `initial` is
            # deprecated in tenacity 9.2 and its replacement `multiplier` missing in 9.0
            wait=wait_exponential(multiplier=initial, max=most) + wait_random(0, initial),
            stop=stop_after_attempt(self.attempts),
            reraise=True,
            before_sleep=self._before_sleep(symbol),
        )
        try:
            return retrying(fetch)
        except Exception as exc:
            if not _from_the_call(exc):
                raise
            problem = self._problem(exc, retrying.statistics.get("attempt_number", 1))
            raise DataError(self._scrub(f"alpaca {symbol}: {problem}")) from None

    def _before_sleep(self, symbol: str) -> Callable[[Any], None]:
        def hook(state: Any) -> None:
            if self._on_retry is not None and state.outcome is not None:
                self._on_retry(symbol, state.attempt_number, state.outcome.exception())

        return hook

    def _problem(self, exc: BaseException, attempts: int) -> str:
        import requests
        from alpaca.common.exceptions import APIError

        if isinstance(exc, APIError):
            status = exc.status_code
            problem = f"HTTP {status}: {_api_message(exc)}"
            if status in (401, 403):
                problem += f" (check {KEY_VARIABLE}, {SECRET_VARIABLE} and feed {self.feed!r})"
        elif isinstance(exc, requests.Timeout):
            problem = f"no answer within {self.timeout_s:g} s"
        elif isinstance(exc, requests.ConnectionError):
            problem = f"connection failed: {_one_line(exc)}"
        elif isinstance(exc, requests.exceptions.JSONDecodeError | json.JSONDecodeError):
            problem = f"malformed JSON in the response: {_one_line(exc)}"
        else:
            problem = f"unexpected response: {type(exc).__name__}: {_one_line(exc)}"
        if _transient(exc) and attempts > 1:
            problem = f"gave up after {attempts} attempts: {problem}"
        return problem

    def _scrub(self, message: str) -> str:
        for secret in (self._api_key, self._secret_key):
            message = message.replace(secret, "***")
        return message


def _transient(exc: BaseException) -> bool:
    """Whether trying again can help: rate limits, server errors, the network, a cut body."""
    import requests
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        return status is not None and (status == 429 or status >= 500)
    return isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.JSONDecodeError
        | json.JSONDecodeError,
    )


def _from_the_call(exc: BaseException) -> bool:
    """Errors of the HTTP call or of an answer alpaca-py could not read; others are bugs."""
    from alpaca.common.exceptions import APIError

    return isinstance(exc, APIError | OSError | ValueError | TypeError | KeyError | AttributeError)


def _add_timeout(session: Any, timeout_s: float) -> None:
    """Give every request of `session` a timeout unless the caller passes one."""
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, timeout: Any = None, **kwargs: Any) -> Any:
            return super().send(
                request, timeout=timeout_s if timeout is None else timeout, **kwargs
            )

    for prefix in ("https://", "http://"):
        session.mount(prefix, TimeoutAdapter())


def _api_message(exc: Any) -> str:
    """Alpaca's `message` from a JSON error body, else the HTTP reason (gateways send HTML)."""
    try:
        body = json.loads(str(exc))
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return _one_line(body["message"])
    response = exc.response
    reason = getattr(response, "reason", None) if response is not None else None
    return _one_line(reason or str(exc) or "no message")


def _frame(symbol: str, raw: Any) -> pd.DataFrame:
    """The bars of `symbol` in alpaca-py's raw answer (`{symbol: [{"t", "o", ...}]}`)."""
    rows = raw.get(symbol, []) if isinstance(raw, dict) else None
    if not isinstance(rows, list):
        raise DataError(f"alpaca {symbol}: unexpected response: {type(raw).__name__}")
    try:
        stamps = pd.to_datetime([row["t"] for row in rows], utc=True, format="ISO8601")
        values = {
            column: np.array([row[key] for row in rows], dtype="float64")
            for column, key in _FIELDS.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"alpaca {symbol}: unexpected bar data: {_one_line(exc)}") from None
    dates = pd.DatetimeIndex(stamps).tz_convert(NEW_YORK).tz_localize(None).normalize()
    return pd.DataFrame(values, index=pd.DatetimeIndex(dates, name="date").as_unit("ns"))


def _validate(symbol: str, bars: pd.DataFrame) -> None:
    """The checks of every bar (`checks`): one bar per session, in order, sane prices and volume."""

    def day(i: int) -> str:
        return _day(bars.index[i])

    order = earliest(
        order_checks(
            bars.index.asi8,
            lambda i: f"two bars for session {day(i)}",
            lambda i: f"session {day(i)} comes after {day(i - 1)}: bars out of order",
        )
    )
    if order is not None:
        raise DataError(f"alpaca {symbol}: {order[1]}")
    found = earliest(value_checks(bar_values(bars)))
    if found is not None:
        row, message = found
        raise DataError(f"alpaca {symbol}: {day(row)}: {message}")


def _same(new: pd.Series, old: pd.Series) -> bool:
    return bool(np.allclose(new.to_numpy(), old.to_numpy(), rtol=1e-9, atol=0, equal_nan=True))


def _naive(end: pd.Timestamp) -> pd.Timestamp:
    end = pd.Timestamp(end)
    if end.tzinfo is not None:
        raise ValueError(f"end must be a tz-naive date, got {end}")
    return end


def _new_york(day: pd.Timestamp, *, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK)


def _day(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%d")


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."
