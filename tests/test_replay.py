import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from agent.cli import app
from agent.marketdata.replay import ReplayData, load_bars, symbol_file
from agent.ports import DataError

HEADER = "date,open,high,low,close,volume"
GOOD = [
    "2024-01-02,100.0,101.5,99.0,101.0,1000",
    "2024-01-03,101.0,102.0,100.5,101.5,1200",
    "2024-01-04,101.5,101.75,100.0,100.25,900",
    "2024-01-05,100.25,103.0,100.25,102.5,1500",
]
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
runner = CliRunner()


def write(folder: Path, rows: list[str], name: str = "IWM.csv", header: str = HEADER) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_bars(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_file_round_trips_to_float_bars_on_a_naive_date_index(tmp_path):
    bars = load_bars(write(tmp_path, GOOD))
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars.dtypes == np.float64).all()
    assert isinstance(bars.index, pd.DatetimeIndex)
    assert bars.index.name == "date"
    assert bars.index.tz is None
    assert list(bars.index.strftime("%Y-%m-%d")) == [row[:10] for row in GOOD]
    assert bars.loc["2024-01-04"].tolist() == [101.5, 101.75, 100.0, 100.25, 900.0]


def test_empty_volume_means_unknown_and_reads_as_nan(tmp_path):
    rows = [*GOOD[:2], "2024-01-04,101.5,101.75,100.0,100.25,"]
    bars = load_bars(write(tmp_path, rows))
    assert math.isnan(bars["volume"].iloc[-1])
    assert bars["volume"].iloc[0] == 1000.0


def test_a_bad_file_reports_its_first_bad_line(tmp_path):
    rows = [*GOOD[:2], "2024-01-04,101.5,101.75,100.0,0,900", "2024-01-05,-1,103,100,102,5"]
    assert load_error(write(tmp_path, rows)) == (
        f"{tmp_path / 'IWM.csv'}: line 4: close is 0: prices must be > 0 and finite"
    )


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        pytest.param("2024-01-06,102.5,103,101,nan,100", "close is missing", id="nan-price"),
        pytest.param("2024-01-06,102.5,103,101,,100", "close is missing", id="empty-price"),
        pytest.param("2024-01-06,102.5,103,101,abc,100", "close is 'abc': not a number", id="text"),
        pytest.param("2024-01-06,0,103,101,102,100", "open is 0: prices must be > 0", id="zero"),
        pytest.param(
            "2024-01-06,102,103,-101,102,100", "low is -101: prices must be > 0", id="negative"
        ),
        pytest.param("2024-01-06,102,101,103,102,100", "high 101 is below low 103", id="high<low"),
        pytest.param("2024-01-06,102,103,101,104,100", "close 104 is above high 103", id="close>h"),
        pytest.param("2024-01-06,100,103,101,102,100", "open 100 is below low 101", id="open<low"),
        pytest.param("2024-01-05,102,103,101,102,100", "duplicate date 2024-01-05", id="dup-date"),
        pytest.param("2024-01-03,102,103,101,102,100", "dates must increase", id="out-of-order"),
        pytest.param("2024-01-32,102,103,101,102,100", "date '2024-01-32' is not", id="bad-date"),
        pytest.param("06/01/2024,102,103,101,102,100", "date '06/01/2024' is not", id="us-date"),
        pytest.param("2024-01-06,102,103,101,102,-5", "volume is -5: must be >= 0", id="neg-vol"),
        pytest.param("2024-01-06,102,103,101,102,100,7", "expected 6 fields, saw 7", id="fields"),
        pytest.param("", "blank line", id="blank-line"),
    ],
)
def test_bad_bar_is_one_line_naming_file_line_and_problem(tmp_path, bad_row, problem):
    path = write(tmp_path, [*GOOD, bad_row, "2024-01-08,102,103,101,102,100"])
    message = load_error(path)
    assert message.startswith(f"{path}: line 6: ")
    assert problem in message


def test_prices_a_hair_outside_the_range_are_tolerated(tmp_path):
    rows = [*GOOD, "2024-01-08,102.5,103,101,103.0000000001,100"]
    assert load_bars(write(tmp_path, rows))["close"].iloc[-1] == pytest.approx(103)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("date,open,high,low,close", "missing column volume"),
        ("date,open,high,low,close,volume,adj_close", "unexpected column adj_close"),
        ("Date,open,high,low,close,volume", "missing column date"),
        ("date,open,low,high,close,volume", "columns out of order"),
    ],
)
def test_wrong_header_is_reported_on_line_1(tmp_path, header, problem):
    path = write(tmp_path, ["2024-01-02,1,2,0.5,1,3"], header=header)
    message = load_error(path)
    assert message.startswith(f"{path}: line 1: {problem}")
    assert "expected the header date,open,high,low,close,volume" in message


def test_empty_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_text("")
    assert load_error(path).startswith(f"{path}: empty file")


def test_header_without_rows_is_an_error(tmp_path):
    assert "no bars" in load_error(write(tmp_path, []))


def test_symbol_file_writes_slashes_as_dashes():
    assert symbol_file("BTC/USD") == "BTC-USD.csv"
    assert symbol_file("BTC-USD") == "BTC-USD.csv"
    assert symbol_file("IWM") == "IWM.csv"
    with pytest.raises(DataError):
        symbol_file("../etc")


def test_daily_bars_ends_at_end_inclusive(tmp_path):
    write(tmp_path, GOOD)
    data = ReplayData(tmp_path)
    assert list(data.daily_bars("IWM", pd.Timestamp("2024-01-03")).index.day) == [2, 3]
    assert len(data.daily_bars("IWM", pd.Timestamp("2024-01-03 23:59"))) == 2
    assert len(data.daily_bars("IWM", pd.Timestamp("2024-01-01"))) == 0
    assert len(data.daily_bars("IWM", pd.Timestamp("2030-01-01"))) == len(GOOD)


def test_daily_bars_refuses_a_tz_aware_end(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(ValueError, match="tz-naive"):
        ReplayData(tmp_path).daily_bars("IWM", pd.Timestamp("2024-01-03", tz="UTC"))


def test_crypto_symbols_are_read_from_dashed_files(tmp_path):
    write(tmp_path, GOOD, name="BTC-USD.csv")
    data = ReplayData(tmp_path)
    assert len(data.daily_bars("BTC/USD", pd.Timestamp("2024-01-04"))) == 3
    assert data.full_history("BTC-USD").equals(data.full_history("BTC/USD"))


def test_missing_symbol_file_is_a_data_error_naming_the_file(tmp_path):
    with pytest.raises(DataError, match=r"ETH-USD\.csv: no such file"):
        ReplayData(tmp_path).daily_bars("ETH/USD", pd.Timestamp("2024-01-04"))


def test_missing_folder_is_a_data_error_naming_the_folder(tmp_path):
    with pytest.raises(DataError) as info:
        ReplayData(tmp_path / "nowhere").daily_bars("IWM", pd.Timestamp("2024-01-04"))
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such data folder"


def spillover(*args: str) -> Result:
    return runner.invoke(app, [*args, "--config", str(ROOT / "config" / "sim.toml")])


def test_backtest_and_sweep_on_a_missing_data_dir_name_the_folder_in_one_line(tmp_path):
    missing = tmp_path / "nowhere"
    grid = tmp_path / "grid.toml"
    grid.write_text("signal.buffer = [0.0, 0.01]\n")
    for args in (
        ["backtest", "--out", str(tmp_path / "bt")],
        ["sweep", "--grid", str(grid), "--out", str(tmp_path / "sweep")],
    ):
        result = spillover(*args, "--data-dir", str(missing))
        assert (result.exit_code, result.stderr) == (2, f"error: {missing}: no such data folder\n")


def test_backtest_on_a_folder_missing_one_file_names_the_file_and_adds_no_blank_line(tmp_path):
    write(tmp_path, GOOD, name="SPY.csv")
    result = spillover("backtest", "--data-dir", str(tmp_path), "--out", str(tmp_path / "bt"))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path / 'IWM.csv'}: no such file\n",
    )


def test_each_file_is_read_once(tmp_path):
    path = write(tmp_path, GOOD)
    data = ReplayData(tmp_path)
    first = data.daily_bars("IWM", pd.Timestamp("2024-01-03"))
    path.unlink()
    assert data.daily_bars("IWM", pd.Timestamp("2024-01-05")).iloc[:2].equals(first)


def test_changing_a_returned_frame_leaves_the_cache_alone(tmp_path):
    write(tmp_path, GOOD)
    data = ReplayData(tmp_path)
    history = data.full_history("IWM")
    history["close"] = 0.0
    history["extra"] = 1.0
    recent = data.daily_bars("IWM", pd.Timestamp("2024-01-05"))
    recent["close"] = 0.0
    assert list(data.full_history("IWM").columns) == ["open", "high", "low", "close", "volume"]
    assert data.full_history("IWM")["close"].iloc[0] == 101.0


def test_symbols_lists_the_csv_files(tmp_path):
    write(tmp_path, GOOD, name="IWM.csv")
    write(tmp_path, GOOD, name="BTC-USD.csv")
    (tmp_path / "sample.json").write_text("{}")
    assert ReplayData(tmp_path).symbols() == ["BTC-USD", "IWM"]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no shared price history at {SHARED_DATA}")
def test_shared_price_history_loads_cleanly_and_fast():
    files = sorted(SHARED_DATA.glob("*.csv"))
    assert files
    started = time.perf_counter()
    bars = {path.stem: load_bars(path) for path in files}
    elapsed = time.perf_counter() - started
    assert all(len(frame) > 1000 for frame in bars.values())
    assert bars["SPY"].index.is_monotonic_increasing
    assert elapsed < 1.0, f"loading {len(files)} files took {elapsed:.2f} s"
    data = ReplayData(SHARED_DATA)
    assert data.daily_bars("BTC/USD", pd.Timestamp("2020-12-31")).index[-1] == pd.Timestamp(
        "2020-12-31"
    )
