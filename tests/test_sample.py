from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.marketdata.replay import ReplayData, load_bars, symbol_file
from agent.marketdata.sample import (
    MANIFEST,
    SampleManifest,
    generate,
    load_manifest,
    write_sample,
)
from strategies.breakout import BreakoutParams, detect

ALTS = ("SOL-USD", "XRP-USD", "ADA-USD")
KINDS = ["clean", "fails", "clean", "crypto_falls"]


@pytest.fixture(scope="module")
def sample7(tmp_path_factory) -> tuple[Path, SampleManifest]:
    folder = tmp_path_factory.mktemp("seed7")
    return folder, write_sample(folder, 7)


@pytest.fixture(scope="module", params=[7, 1234])
def generated(request) -> tuple[dict[str, pd.DataFrame], SampleManifest, pd.DataFrame]:
    bars, manifest = generate(request.param)
    iwm, spy = bars["IWM"], bars["SPY"]
    states = detect(iwm["close"], iwm["volume"], spy["close"], BreakoutParams())
    return bars, manifest, states


def dates(states: pd.DataFrame, column: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in states[column].dropna().unique()]


def within(day: pd.Timestamp, start, end) -> bool:
    return pd.Timestamp(start) <= day <= pd.Timestamp(end)


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_same_seed_writes_byte_identical_files(sample7, tmp_path):
    folder, _ = sample7
    write_sample(tmp_path, 7)
    assert files(tmp_path) == files(folder)
    assert len(files(folder)) == 8


def test_different_seed_changes_the_paths_but_not_the_story(sample7, tmp_path):
    folder, manifest = sample7
    other = write_sample(tmp_path, 8)
    for symbol in manifest.symbols:
        name = symbol_file(symbol)
        assert (tmp_path / name).read_bytes() != (folder / name).read_bytes(), name
    assert [s.kind for s in other.scenarios] == [s.kind for s in manifest.scenarios] == KINDS


def test_written_files_load_cleanly_and_match_the_generated_bars(sample7):
    folder, manifest = sample7
    bars, _ = generate(7)
    data = ReplayData(folder)
    assert sorted(data.symbols()) == sorted(manifest.symbols)
    for symbol in manifest.symbols:
        loaded = load_bars(folder / symbol_file(symbol))
        pd.testing.assert_frame_equal(loaded, bars[symbol], check_exact=False, rtol=1e-9)


def test_manifest_is_written_beside_the_files_and_reads_back(sample7):
    folder, manifest = sample7
    assert (folder / MANIFEST).is_file()
    assert load_manifest(folder) == manifest
    assert manifest.seed == 7
    assert manifest.symbols == ("IWM", "SPY", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD")


def test_sample_covers_at_least_eight_years_of_nyse_sessions_and_calendar_days():
    bars, manifest = generate(7)
    iwm, btc = bars["IWM"], bars["BTC-USD"]
    assert (iwm.index[-1] - iwm.index[0]).days >= 8 * 365
    assert (manifest.start.isoformat(), manifest.end.isoformat()) == ("2016-01-04", "2025-12-31")
    assert bars["SPY"].index.equals(iwm.index)
    assert pd.Timestamp("2016-11-24") not in iwm.index  # Thanksgiving
    assert pd.Timestamp("2016-11-25") in iwm.index  # the half day after it
    assert pd.Timestamp("2020-04-10") not in iwm.index  # Good Friday
    assert 2500 < len(iwm) < 2530
    assert btc.index.equals(pd.date_range("2016-01-04", "2025-12-31", unit="ns", name="date"))


def test_bars_are_consistent_ohlcv():
    bars, _ = generate(7)
    for symbol, frame in bars.items():
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all(), symbol
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all(), symbol
        assert (frame["low"] > 0).all(), symbol
        assert (frame["volume"] > 0).all(), symbol
        assert (frame["volume"] == frame["volume"].round()).all(), symbol
        returns = np.log(frame["close"]).diff().abs()
        assert returns.max() < 0.4, symbol


def test_half_day_sessions_are_thin(generated):
    _, _, states = generated
    for day in ("2016-11-25", "2018-12-24", "2020-11-27", "2025-11-28"):
        assert states.loc[day, "thin"], day
        assert states.loc[day, "rel_volume"] < 0.5


def test_detector_confirms_each_planted_breakout_inside_its_window_and_nothing_else(generated):
    _, manifest, states = generated
    confirmed = dates(states, "confirmed_date")
    assert len(confirmed) == len(manifest.scenarios) == 4
    for scenario, day in zip(manifest.scenarios, confirmed, strict=True):
        assert within(day, scenario.confirm_start, scenario.confirm_end), (scenario, day)
        assert states.loc[day, "episode_level"] == pytest.approx(scenario.level, abs=1e-9)
        assert states.loc[pd.Timestamp(scenario.breakout), "counted"]
    assert dates(states, "candidate_date") == [pd.Timestamp(s.breakout) for s in manifest.scenarios]


def test_each_new_level_is_above_the_previous_episode(generated):
    _, manifest, _ = generated
    levels = [s.level for s in manifest.scenarios]
    assert levels == sorted(levels)
    assert len(set(levels)) == len(levels)


def test_only_the_planted_failure_fails_and_inside_its_window(generated):
    _, manifest, states = generated
    (planted,) = [s for s in manifest.scenarios if s.kind == "fails"]
    failures = dates(states, "failed_date")
    assert len(failures) == 1, failures
    (failed,) = failures
    assert within(failed, planted.fail_start, planted.fail_end)
    assert 20 <= (failed - pd.Timestamp(planted.confirm_start)).days <= 62
    assert states.loc[failed, "close"] < 0.95 * planted.level


def test_episodes_that_do_not_fail_run_their_whole_window(generated):
    _, _, states = generated
    expired = dates(states, "expired_date")
    confirmed = dates(states, "confirmed_date")
    assert len(expired) == 3
    for start, end in zip([confirmed[0], *confirmed[2:]], expired, strict=True):
        assert 91 <= (end - start).days <= 95


def crypto_after(bars, symbol: str, confirmed: pd.Timestamp, days: int) -> float:
    close = bars[symbol]["close"]
    return float(close.loc[confirmed + pd.Timedelta(days=days)] / close.loc[confirmed])


def test_crypto_rallies_after_a_clean_breakout_btc_first_then_eth_then_alts(generated):
    bars, manifest, states = generated
    confirmed = dates(states, "confirmed_date")
    for scenario, day in zip(manifest.scenarios, confirmed, strict=True):
        if scenario.kind != "clean":
            continue
        btc = bars["BTC-USD"]["close"]
        assert btc.loc[day : day + pd.Timedelta(days=100)].max() >= 1.3 * btc.loc[day]
        at_45 = {s: crypto_after(bars, s, day, 45) for s in ("BTC-USD", "ETH-USD", *ALTS)}
        assert at_45["BTC-USD"] > at_45["ETH-USD"] > max(at_45[s] for s in ALTS), at_45
        eth = crypto_after(bars, "ETH-USD", day, 100) / crypto_after(bars, "ETH-USD", day, 30)
        assert eth > 1.3
        for alt in ALTS:
            assert crypto_after(bars, alt, day, 120) / crypto_after(bars, alt, day, 60) > 1.3


def test_crypto_falls_after_the_crypto_falls_breakout(generated):
    bars, manifest, states = generated
    (day,) = [
        d
        for s, d in zip(manifest.scenarios, dates(states, "confirmed_date"), strict=True)
        if s.kind == "crypto_falls"
    ]
    for symbol in ("BTC-USD", "ETH-USD", *ALTS):
        close = bars[symbol]["close"]
        assert close.loc[day : day + pd.Timedelta(days=100)].min() <= 0.75 * close.loc[day], symbol
    assert states["close"].iloc[-1] > 0.95 * manifest.scenarios[-1].level


def test_cli_writes_the_sample(tmp_path):
    out = tmp_path / "sample"
    result = CliRunner().invoke(app, ["data", "sample", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 7 files" in result.output
    expected = ("IWM", "SPY", "BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "ADA-USD")
    assert sorted(p.stem for p in out.glob("*.csv")) == sorted(expected)
    assert load_manifest(out).seed == 3
