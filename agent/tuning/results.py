"""`results.csv`: one row per finished point and window, appended as each point finishes, so an
interrupted sweep keeps its work and a re-run skips what is done.

A row is keyed by (point_id, base_hash, start, end): the same parameters on the same base config
over the same trading range are the same backtest.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agent.tuning.select import METRICS

KEY_COLUMNS = ("point_id", "base_hash", "start", "end")
TAIL_COLUMNS = (*METRICS, "seconds")
_INTS = ("exposure_days", "orders")

Key = tuple[str, str, str, str]


def row_key(row: Mapping[str, Any]) -> Key:
    return (str(row["point_id"]), str(row["base_hash"]), str(row["start"]), str(row["end"]))


class Results:
    """The rows of `path`, and appending to it."""

    def __init__(self, path: Path, params: Iterable[str]) -> None:
        self.path = path
        self.columns = [*KEY_COLUMNS, *params, *TAIL_COLUMNS]
        self.rows: dict[Key, dict[str, Any]] = {}
        self.loaded: set[Key] = set()
        """Keys the file held when opened: points of an earlier run."""
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                old = list(reader.fieldnames or [])
                for raw in reader:
                    if all(raw.get(c) for c in KEY_COLUMNS):
                        self.rows[row_key(raw)] = _parse(raw)
            self.loaded = set(self.rows)
            if old != self.columns:  # another grid wrote here: keep its rows, widen the header
                self.columns = [*self.columns, *(c for c in old if c not in self.columns)]
                self._rewrite()

    def get(self, key: Key) -> dict[str, Any] | None:
        return self.rows.get(key)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write `row` unless the file holds its key already (a point run again for its curve)."""
        if row_key(row) in self.rows:
            self.rows[row_key(row)] = dict(row)
            return
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(_cells(row))
        self.rows[row_key(row)] = dict(row)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.columns, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows.values():
                writer.writerow(_cells(row))
        tmp.replace(self.path)


def _cells(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else v)
        for k, v in row.items()
    }


def _parse(raw: Mapping[str, str | None]) -> dict[str, Any]:
    row: dict[str, Any] = dict(raw)
    for key in TAIL_COLUMNS:
        text = raw.get(key)
        if not text:
            row[key] = None
        else:
            row[key] = int(float(text)) if key in _INTS else float(text)
    return row


def write_table(path: Path, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> None:
    """A whole CSV table (walk_forward.csv, sensitivity.csv), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(_cells(row))
    tmp.replace(path)
