"""`spillover doctor`, `spillover data pull` and a backtest on pulled data, end to end.

The CLI (`agent.cli.app` through typer's `CliRunner`) runs in a temporary working directory, so no
real `.env` is read, against the loopback Alpaca emulator and a loopback exchange emulator that a
temporary testnet config points at (`data.alpaca_url`, `venue.api_url`). Keys reach the CLI
through the environment; every key value is distinctive, so the tests can check it never shows.
The config keeps the default schedule: BTC, ETH, SOL and XRP.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from agent.cli import app
from agent.marketdata.replay import load_bars
from agent.marketdata.sample import generate
from tests.emulators import common
from tests.emulators.alpaca import AlpacaEmulator
from tests.emulators.binance import BinanceEmulator
from tests.emulators.bybit import BybitEmulator

ALPACA_KEY, ALPACA_SECRET = "alpaca-key-id-7f3a1c", "alpaca-secret-c91e55"
EXCHANGE_KEY, EXCHANGE_SECRET = "exchange-key-52d0b8", "exchange-secret-a6b4e2"
SECRETS = (ALPACA_KEY, ALPACA_SECRET, EXCHANGE_KEY, EXCHANGE_SECRET)
ALPACA_NAMES = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
EMULATORS: dict[str, type[common.LoopbackEmulator]] = {
    "binance": BinanceEmulator,
    "bybit": BybitEmulator,
}
ASSETS = ("BTC", "ETH", "SOL", "XRP")
XRP_MARKET = common.Market(
    "XRPUSDT", "XRP", "USDT", Decimal("0.0001"), Decimal("0.1"), Decimal("0.1"), Decimal(5)
)
"""The emulators list BTC, ETH and SOL; the pull needs XRP too."""

runner = CliRunner()


def key_names(exchange: str) -> tuple[str, ...]:
    """Alpaca's key and secret, then the exchange's."""
    upper = exchange.upper()
    return (*ALPACA_NAMES, f"SPILLOVER_{upper}_API_KEY", f"SPILLOVER_{upper}_SECRET")


def keys(exchange: str = "binance", **changes: str | None) -> dict[str, str | None]:
    """Every key a testnet run needs, by variable name; None unsets one for the run."""
    values = dict(zip(key_names(exchange), SECRETS, strict=True))
    return values | changes


def write_config(folder: Path, exchange: str, alpaca_url: str, api_url: str) -> Path:
    path = folder / f"testnet-{exchange}.toml"
    path.write_text(
        f"""
[data]
source = "alpaca"
alpaca_url = "{alpaca_url}"
index = "IWM"
benchmark = "SPY"
crypto_symbol = "{{asset}}/USDT"

[venue]
kind = "testnet"
exchange = "{exchange}"
api_url = "{api_url}"
quote = "USDT"
timeout_s = 2.0
read_attempts = 1

[run]
dir = "runs/testnet"
""",
        encoding="utf-8",
    )
    return path


def daily(
    last: pd.Timestamp, periods: int, price: float, *, sessions: bool = False
) -> pd.DataFrame:
    """Flat bars ending on `last`: every day, or business days (`sessions`)."""
    dates = (pd.bdate_range if sessions else pd.date_range)(end=last, periods=periods)
    return pd.DataFrame(
        {"open": price, "high": price * 1.01, "low": price * 0.99, "close": price, "volume": 1e3},
        index=pd.DatetimeIndex(dates, name="date"),
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_no_key_shown(result: Result, *extra: str) -> None:
    for value in (*SECRETS, *extra):
        assert value not in result.output


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder (no `.env`) with no key in the environment."""
    monkeypatch.chdir(tmp_path)
    for exchange in EMULATORS:
        for name in key_names(exchange):
            monkeypatch.delenv(name, raising=False)
    return tmp_path


# -- doctor ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """The emulators a doctor run talks to, and the config pointing at them."""

    exchange: str
    alpaca: AlpacaEmulator
    venue: common.LoopbackEmulator
    config: Path

    def doctor(self, env: Mapping[str, str | None]) -> Result:
        return runner.invoke(app, ["doctor", "--config", str(self.config)], env=env)


def _site(exchange: str, folder: Path) -> Iterator[Site]:
    """Equity bars ending a week ago (so no holiday near today drops one: the adapter keeps only
    completed NYSE sessions), crypto bars up to yesterday except SOL's (stale), no XRP market."""
    yesterday = pd.Timestamp(datetime.now(UTC).date()) - pd.Timedelta(days=1)
    week_ago = yesterday - pd.Timedelta(days=6)
    alpaca = AlpacaEmulator(api_key=ALPACA_KEY, secret_key=ALPACA_SECRET)
    venue = EMULATORS[exchange](api_key=EXCHANGE_KEY, secret=EXCHANGE_SECRET)
    with alpaca, venue:
        alpaca.set_bars("IWM", daily(week_ago, 120, 210.0, sessions=True))
        alpaca.set_bars("SPY", daily(week_ago, 120, 520.0, sessions=True))
        venue.set_klines("BTCUSDT", daily(yesterday, 60, 50_000.0))
        venue.set_klines("ETHUSDT", daily(yesterday, 60, 3_000.0))
        venue.set_klines("SOLUSDT", daily(yesterday - pd.Timedelta(days=10), 60, 100.0))
        venue.set_balance("BTC", 0.5)
        yield Site(exchange, alpaca, venue, write_config(folder, exchange, alpaca.url, venue.url))


@pytest.fixture
def binance_site(tmp_path: Path) -> Iterator[Site]:
    yield from _site("binance", tmp_path)


@pytest.fixture(params=list(EMULATORS))
def any_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    yield from _site(request.param, tmp_path)


def test_doctor_on_the_emulators_passes_one_line_per_check_and_never_shows_a_key(
    binance_site: Site,
) -> None:
    result = binance_site.doctor(keys())
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = lines(result.output)
    assert out[:4] == [f"ok    {name} set" for name in key_names("binance")]
    assert out[4] == "ok    binance: sandbox mode on, calls go to 127.0.0.1"
    assert out[5].startswith("ok    alpaca IWM: 120 daily bars, last ")
    assert out[6].startswith("ok    alpaca SPY: 120 daily bars, last ")
    assert out[7].startswith("ok    BTC/USDT: listed, last daily bar ")
    assert out[8].startswith("ok    ETH/USDT: listed, last daily bar ")
    assert out[9].startswith("warn  SOL/USDT: last daily bar ")
    assert out[9].endswith(" is stale")
    assert out[10] == "warn  XRP/USDT: not listed on the testnet; it will not trade"
    assert out[11] == "ok    binance balances: BTC 0.5, USDT 10000"
    assert len(out) == 12
    assert_no_key_shown(result)


def test_doctor_counts_keys_in_a_dotenv_file_of_the_working_directory(
    binance_site: Site, tmp_path: Path
) -> None:
    dotenv = "".join(f"{name}={value}\n" for name, value in keys().items())
    (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    result = binance_site.doctor({})
    assert result.exit_code == 0, result.output
    assert lines(result.output)[:4] == [f"ok    {name} set" for name in key_names("binance")]
    assert_no_key_shown(result)


@pytest.mark.parametrize(
    "unset",
    [
        dict.fromkeys(key_names("binance")),
        {"ALPACA_SECRET_KEY": None, "SPILLOVER_BINANCE_API_KEY": None},
        {"SPILLOVER_BINANCE_SECRET": ""},  # set but empty counts as missing
    ],
    ids=["all", "two", "empty"],
)
def test_doctor_with_missing_keys_fails_one_line_per_missing_variable_and_calls_nothing(
    binance_site: Site, unset: dict[str, str | None]
) -> None:
    missing = list(unset)
    result = binance_site.doctor(keys(**unset))
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"FAIL  {name} not set (environment or .env)" for name in missing
    ]
    present = [name for name in key_names("binance") if name not in missing]
    assert lines(result.stdout) == [f"ok    {name} set" for name in present]
    assert binance_site.alpaca.requests == []
    assert binance_site.venue.requests == []
    assert_no_key_shown(result)


def test_doctor_with_a_wrong_alpaca_key_fails_the_alpaca_checks_and_exits_1(
    binance_site: Site,
) -> None:
    wrong = "alpaca-wrong-secret-0d9f"
    result = binance_site.doctor(keys(ALPACA_SECRET_KEY=wrong))
    assert result.exit_code == 1
    failed = lines(result.stderr)
    assert [line.split(":")[0] for line in failed] == ["FAIL  alpaca IWM", "FAIL  alpaca SPY"]
    assert all("HTTP 401" in line for line in failed)
    assert "ok    binance balances: BTC 0.5, USDT 10000" in lines(result.stdout)
    assert_no_key_shown(result, wrong)


def test_doctor_with_a_wrong_exchange_secret_fails_the_exchange_check_without_showing_a_key(
    any_site: Site, request: pytest.FixtureRequest
) -> None:
    wrong = "exchange-wrong-secret-77c3"
    secret_name = key_names(any_site.exchange)[3]
    result = any_site.doctor(keys(any_site.exchange, **{secret_name: wrong}))
    assert result.exit_code == 1
    [failed] = lines(result.stderr)
    assert failed.startswith(f"FAIL  {any_site.exchange}: ")
    assert "AuthenticationError" in failed
    assert not any("balances" in line for line in lines(result.output))
    assert_no_key_shown(result, wrong)


def test_doctor_on_a_paper_config_has_nothing_to_reach(tmp_path: Path) -> None:
    config = tmp_path / "paper.toml"
    config.write_text('[venue]\nkind = "paper"\n', encoding="utf-8")
    result = runner.invoke(app, ["doctor", "--config", str(config)], env={})
    assert result.exit_code == 0, result.output
    assert lines(result.output) == ["ok    paper venue and offline data: nothing to reach"]


# -- data pull and a backtest on what it wrote ----------------------------------------------------

START, END = pd.Timestamp("2019-01-01"), pd.Timestamp("2023-02-08")
"""1500 days: more than one page (1000) of daily candles."""
KLINES = {"binance": "/api/v3/klines", "bybit": "/v5/market/kline"}
PUBLIC = {
    "binance": {"/api/v3/exchangeInfo", "/api/v3/klines"},
    "bybit": {"/v5/market/instruments-info", "/v5/market/kline"},
}
"""The exchange endpoints a keyless pull may call."""


@dataclass(frozen=True)
class Pulled:
    exchange: str
    result: Result
    config: Path
    out: Path
    served: dict[str, pd.DataFrame]
    """What the emulators served, by the file name the pull should write."""
    exchange_paths: list[str]


@pytest.fixture(scope="module", params=list(EMULATORS))
def pulled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pulled:
    """One `data pull` per exchange (the sample generator's bars, served by the emulators)."""
    exchange = request.param
    frames, _ = generate(7)
    root = tmp_path_factory.mktemp(f"pull-{exchange}")
    alpaca = AlpacaEmulator(api_key=ALPACA_KEY, secret_key=ALPACA_SECRET)
    venue = EMULATORS[exchange](api_key=EXCHANGE_KEY, secret=EXCHANGE_SECRET)
    served = {f"{symbol}.csv": frames[symbol] for symbol in ("IWM", "SPY")}
    with pytest.MonkeyPatch.context() as patch, alpaca, venue:
        patch.chdir(root)
        for name in list(os.environ):  # module scope: conftest's cleanup has not run yet
            if name.upper().startswith("SPILLOVER__"):
                patch.delenv(name)
        for symbol in ("IWM", "SPY"):
            alpaca.set_bars(symbol, frames[symbol])
        venue.add_market(XRP_MARKET)
        for asset in ASSETS:
            venue.set_klines(f"{asset}USDT", frames[f"{asset}-USD"])
            served[f"{asset}-USDT.csv"] = frames[f"{asset}-USD"]
        config = write_config(root, exchange, alpaca.url, venue.url)
        out = root / "pulled"
        args = ["data", "pull", "--config", str(config), "--out", str(out)]
        args += ["--start", f"{START.date()}", "--end", f"{END.date()}"]
        alpaca_only = keys(exchange) | dict.fromkeys(key_names(exchange)[2:])  # no exchange key
        result = runner.invoke(app, args, env=alpaca_only)
        paths = [path for _, path in venue.requests]
    return Pulled(exchange, result, config, out, served, paths)


def test_data_pull_writes_one_replay_file_per_symbol_and_names_each(pulled: Pulled) -> None:
    assert pulled.result.exit_code == 0, pulled.result.output
    names = ["IWM.csv", "SPY.csv", *(f"{asset}-USDT.csv" for asset in ASSETS)]
    assert lines(pulled.result.output) == [f"wrote {pulled.out / name}" for name in names]
    assert sorted(p.name for p in pulled.out.iterdir()) == sorted(names)
    assert_no_key_shown(pulled.result)


def test_pulled_files_load_back_with_the_values_the_emulators_served(pulled: Pulled) -> None:
    for name, frame in pulled.served.items():
        loaded = load_bars(pulled.out / name)
        expected = frame.loc[START:END]
        assert list(loaded.index) == list(expected.index), name
        pd.testing.assert_frame_equal(
            loaded.reset_index(drop=True), expected.reset_index(drop=True), rtol=1e-9
        )


def test_data_pull_pages_past_1000_daily_candles_and_keeps_to_start_and_end(
    pulled: Pulled,
) -> None:
    every_day = pd.date_range(START, END)
    assert len(every_day) == 1500
    for asset in ASSETS:
        bars = load_bars(pulled.out / f"{asset}-USDT.csv")
        assert list(bars.index) == list(every_day), asset
    assert pulled.exchange_paths.count(KLINES[pulled.exchange]) >= 2 * len(ASSETS)
    for symbol in ("IWM", "SPY"):
        bars = load_bars(pulled.out / f"{symbol}.csv")
        assert bars.index[0] == pd.Timestamp("2019-01-02")  # the first session of 2019
        assert bars.index[-1] == END


def test_data_pull_reads_candles_without_exchange_keys_from_public_endpoints_only(
    pulled: Pulled,
) -> None:
    assert pulled.result.exit_code == 0, pulled.result.output
    assert set(pulled.exchange_paths) <= PUBLIC[pulled.exchange]


def test_backtest_runs_on_the_pulled_data_with_the_same_testnet_config(
    pulled: Pulled, tmp_path: Path
) -> None:
    out = tmp_path / "backtest"
    args = ["backtest", "--config", str(pulled.config), "--data-dir", str(pulled.out)]
    result = runner.invoke(app, [*args, "--out", str(out)], env={})
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert pd.Timestamp(summary["data"]["start"]) >= START
    assert summary["data"]["end"] == f"{END.date()}"
    assert summary["metrics"]["orders"] > 0


def test_data_pull_without_alpaca_keys_exits_2_naming_both_variables(tmp_path: Path) -> None:
    config = write_config(tmp_path, "binance", "http://127.0.0.1:9", "http://127.0.0.1:9")
    args = ["data", "pull", "--config", str(config), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, args, env={})
    assert result.exit_code == 2
    assert lines(result.stderr) == [
        "error: ALPACA_API_KEY, ALPACA_SECRET_KEY not set (environment or .env)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_bad_candle_from_the_exchange_is_never_written(tmp_path: Path) -> None:
    frames, _ = generate(7)
    alpaca = AlpacaEmulator(api_key=ALPACA_KEY, secret_key=ALPACA_SECRET)
    venue = EMULATORS["binance"](api_key=EXCHANGE_KEY, secret=EXCHANGE_SECRET)
    with alpaca, venue:
        for symbol in ("IWM", "SPY"):
            alpaca.set_bars(symbol, frames[symbol])
        venue.add_market(XRP_MARKET)
        for asset in ASSETS:
            bars = frames[f"{asset}-USD"].copy()
            if asset == ASSETS[-1]:
                bars.loc["2020-03-12", "close"] = 0.0
            venue.set_klines(f"{asset}USDT", bars)
        config = write_config(tmp_path, "binance", alpaca.url, venue.url)
        out = tmp_path / "pulled"
        args = ["data", "pull", "--config", str(config), "--out", str(out)]
        args += ["--start", f"{START.date()}", "--end", f"{END.date()}"]
        result = runner.invoke(app, args, env=keys("binance"))
    assert result.exit_code == 2, result.output
    [line] = lines(result.stderr)
    assert f"{ASSETS[-1]}/USDT 2020-03-12: close" in line
    assert not (out / f"{ASSETS[-1]}-USDT.csv").exists()
