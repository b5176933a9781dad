"""Replay of daily bars from CSV files in a folder: one `SYMBOL.csv` per symbol.

A file has exactly the header `date,open,high,low,close,volume` (no extra, missing or reordered
columns), one row per ISO date (`YYYY-MM-DD`), strictly increasing. Prices must be finite and
> 0 with low <= open, close <= high (1e-9 relative tolerance); volume is >= 0 or empty (unknown,
read as NaN). The first bad row is reported as one line: `path: line N: problem`, the header
being line 1. Blank lines are not skipped, so line numbers always match the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from agent.marketdata.checks import earliest, order_checks, value_checks
from agent.ports import BAR_COLUMNS, DataError
from strategies.column import DailyColumn

HEADER = ("date", *BAR_COLUMNS)
_DTYPES = {"date": str, **dict.fromkeys(BAR_COLUMNS, "float64")}
_NA_TEXT = {"nan", "na", "n/a", "null", "none", "-nan", "#n/a", "<na>"}
"""Read as missing (NaN) by pandas, so never "not a number"."""
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def symbol_file(symbol: str) -> str:
    """File name of a symbol: `/` is written `-` (`BTC/USD` -> `BTC-USD.csv`)."""
    if not symbol or symbol.strip() != symbol or "\\" in symbol or symbol.startswith("."):
        raise DataError(f"bad symbol {symbol!r}")
    return symbol.replace("/", "-") + ".csv"


def load_bars(path: Path) -> pd.DataFrame:
    """Bars of one file, indexed by a tz-naive `date` index (ns), float64 OHLCV columns."""
    frame = _read(path)
    columns = tuple(frame.columns)
    if columns != HEADER:
        raise DataError(f"{path}: line 1: {_header_problem(columns)}")
    if frame.empty:
        raise DataError(f"{path}: no bars: the file has only a header")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    problem = first_problem(frame, dates)
    if problem is not None:
        row, message = problem
        raise DataError(f"{path}: line {row + 2}: {message}")
    bars = frame.loc[:, list(BAR_COLUMNS)]
    bars.index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    return bars


def _read(path: Path) -> pd.DataFrame:
    try:
        return _read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None


def _read_csv(path: Path) -> pd.DataFrame:
    kwargs = {"skip_blank_lines": False, "engine": "c", "encoding": "utf-8-sig"}
    try:
        return pd.read_csv(path, dtype=_DTYPES, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file: expected the header {','.join(HEADER)}") from None
    except pd.errors.ParserError as exc:
        match = _FIELDS.search(str(exc))
        if match is None:
            raise DataError(f"{path}: unreadable CSV: {_one_line(exc)}") from None
        expected, line, saw = match.groups()
        raise DataError(f"{path}: line {line}: expected {expected} fields, saw {saw}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {_one_line(exc)}") from None
    except ValueError:
        pass  # a number column holds text: read it as text to find the row
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    if tuple(frame.columns) != HEADER:
        return frame  # the caller reports the header first
    for column in BAR_COLUMNS:
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = numbers.isna() & (text != "") & ~text.str.lower().isin(_NA_TEXT)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            value = frame[column].iloc[row]
            raise DataError(f"{path}: line {row + 2}: {column} is {value!r}: not a number")
    raise DataError(f"{path}: unreadable CSV")


def _header_problem(columns: tuple[str, ...]) -> str:
    expected = ",".join(HEADER)
    missing = [c for c in HEADER if c not in columns]
    extra = [c for c in columns if c not in HEADER]
    if missing:
        return f"missing column {', '.join(missing)}: expected the header {expected}"
    if extra:
        return f"unexpected column {', '.join(map(str, extra))}: expected the header {expected}"
    return f"columns out of order: expected the header {expected}"


def first_problem(frame: pd.DataFrame, dates: pd.Series) -> tuple[int, str] | None:
    """The earliest bad row and what is wrong with it, or None: the checks of `checks`, with
    date problems worded by line."""
    text = frame["date"]
    return earliest(
        [
            (dates.isna().to_numpy(), lambda i: _bad_date(frame.iloc[i])),
            *value_checks({c: frame[c].to_numpy(dtype=float) for c in BAR_COLUMNS}),
            *order_checks(
                dates.to_numpy(dtype="datetime64[ns]").view("int64"),
                lambda i: f"duplicate date {text.iloc[i]} (also on line {i + 1})",
                lambda i: (
                    f"date {text.iloc[i]} is before {text.iloc[i - 1]} "
                    "on the line above: dates must increase"
                ),
            ),
        ]
    )


def _bad_date(row: pd.Series) -> str:
    if row.isna().all():
        return "blank line"
    text = row["date"]
    if not isinstance(text, str) or not text.strip():
        return "date is missing"
    return f"date {text!r} is not YYYY-MM-DD"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class ReplayData:
    """`MarketData` over a folder of `SYMBOL.csv` files; each file is read once, then sliced."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._bars: dict[str, pd.DataFrame] = {}
        self._series: dict[tuple[str, str], tuple[pd.Series, np.ndarray]] = {}
        self._arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._dates: dict[str, np.ndarray] = {}

    def symbols(self) -> list[str]:
        """Symbols with a file, as file stems (`BTC-USD`); each works with `daily_bars`."""
        return sorted(p.stem for p in self.folder.glob("*.csv") if p.is_file())

    def full_history(self, symbol: str) -> pd.DataFrame:
        """Every bar in the symbol's file."""
        return self._cached(symbol).copy(deep=False)

    def daily_bars(self, symbol: str, end: pd.Timestamp) -> pd.DataFrame:
        end = pd.Timestamp(end)
        if end.tzinfo is not None:
            raise ValueError(f"end must be a tz-naive date, got {end}")
        bars = self._cached(symbol)
        return bars.iloc[: bars.index.searchsorted(end, side="right")]

    def daily_column(self, symbol: str, column: str, end: pd.Timestamp) -> pd.Series:
        """`daily_bars(symbol, end)[column]`, sliced from a cached Series (no frame slice)."""
        end = pd.Timestamp(end)
        if end.tzinfo is not None:
            raise ValueError(f"end must be a tz-naive date, got {end}")
        key = (symbol, column)
        cached = self._series.get(key)
        if cached is None:
            bars = self._cached(symbol)
            cached = self._series[key] = (bars[column], bars.index.asi8)
        series, ns = cached
        return series.iloc[: int(np.searchsorted(ns, end.as_unit("ns").value, side="right"))]

    def daily_values(self, symbol: str, column: str, end: pd.Timestamp) -> DailyColumn:
        """`daily_column(symbol, column, end)` as array views (no pandas object per call)."""
        key = (symbol, column)
        cached = self._arrays.get(key)
        if cached is None:
            bars = self._cached(symbol)
            dates = self._dates.get(symbol)
            if dates is None:
                dates = self._dates[symbol] = bars.index.as_unit("ns").asi8
            values = np.ascontiguousarray(bars[column].to_numpy())
            cached = self._arrays[key] = (values, dates)
        values, ns = cached
        n = int(np.searchsorted(ns, _ns(end), side="right"))
        return DailyColumn(values[:n], ns[:n], column)

    def _cached(self, symbol: str) -> pd.DataFrame:
        name = symbol_file(symbol)
        bars = self._bars.get(name)
        if bars is None:
            bars = self._bars[name] = self._load(name)
        return bars

    def _load(self, name: str) -> pd.DataFrame:
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: no such data folder")
        return load_bars(self.folder / name)


def _ns(end: pd.Timestamp) -> int:
    end = pd.Timestamp(end)
    if end.tzinfo is not None:
        raise ValueError(f"end must be a tz-naive date, got {end}")
    return end.as_unit("ns").value


def write_bars(folder: Path, symbol: str, bars: pd.DataFrame) -> Path:
    """Write `bars` as `folder/SYMBOL.csv` in the replay format (unknown volume left empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / symbol_file(symbol)
    text = bars.loc[:, list(BAR_COLUMNS)].to_csv(
        float_format="%.10g", date_format="%Y-%m-%d", lineterminator="\n", index_label="date"
    )
    path.write_text(text, encoding="utf-8")
    return path
