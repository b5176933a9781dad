"""Stream a journal's lines and records; a torn or invalid line is reported and skipped.

The journal writes each record as one line in a fixed layout (`risk/journal.py`): it starts with
`{"ts": "` and a 27-character UTC stamp, ends with `}` and a newline, and holds no second record
start (inside strings a quote is always escaped, so `{"ts": "` cannot occur there). A line with
that framing can be read by a fast path (a substring test, a regular expression) without
building its record; any other line is parsed in full, and only a line that is not a strict JSON
object is reported as invalid, by its number. A line that keeps the framing but is broken inside
is caught by the commands that parse it (`show`, `explain`, `tail`, `summary --strict`), not by
the fast path of `summary`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:  # a dependency of ccxt: about four times faster than json on decision records
    import orjson

    _orjson_loads: Callable[[bytes], Any] | None = orjson.loads
    _JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson comes with ccxt
    _orjson_loads = None
    _JSONDecodeError = ValueError

JOURNAL_NAME = "decisions.jsonl"
HEAD = b'{"ts": "'
STAMP_END = len(HEAD) + 27
_BUFFER = 1 << 20

OnInvalid = Callable[[int, str], None]


class LogsError(Exception):
    """A user error: a missing journal, an unknown decision id. One line, exit code 2."""


def journal_path(path: Path) -> Path:
    """The journal of a run folder (its `decisions.jsonl`), or `path` itself when a file."""
    if path.is_dir():
        path = path / JOURNAL_NAME
    if not path.is_file():
        raise LogsError(f"no journal at {path}")
    return path


def parse(line: bytes) -> dict[str, Any]:
    """The record on `line`: a strict JSON object, else ValueError saying why."""
    try:
        if _orjson_loads is not None:
            record = _orjson_loads(line)
        else:  # pragma: no cover
            record = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (_JSONDecodeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"invalid JSON: {_short(str(exc))}") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return record


def framed(line: bytes) -> bool:
    """Whether `line` has the journal's own framing: its layout's start, `}` and a newline."""
    return line[:8] == HEAD and line[-2:] == b"}\n" and line[STAMP_END : STAMP_END + 1] == b'"'


def single(line: bytes) -> bool:
    """`framed`, and no second record start in the line (a torn line with a record after it)."""
    return framed(line) and line.find(HEAD, 1) < 0


def event_of(line: bytes) -> bytes:
    """The event name of a framed line (b"" if not found where the layout puts it)."""
    start = line.find(b'"event": "', STAMP_END)
    if start < 0:
        return b""
    start += 10
    return line[start : line.find(b'"', start)]


def lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, the line's bytes with its newline) of each line; the file's last line may
    lack the newline: a torn line, see `checked`. With `start` (a line start) and `end`: the
    lines starting in bytes [start, end), numbered from 1."""
    with open(path, "rb", buffering=_BUFFER) as file:
        if start == 0 and end is None:
            yield from enumerate(file, start=1)
            return
        file.seek(start)
        position = start
        for number, line in enumerate(file, start=1):
            if end is not None and position >= end:
                return
            position += len(line)
            yield number, line


def checked(line: bytes) -> dict[str, Any]:
    """`parse`, and a line without its newline (only ever the file's last) is torn."""
    if not line.endswith(b"\n"):
        raise ValueError("torn: no newline at the end of the file")
    return parse(line)


def records(
    path: Path,
    on_invalid: OnInvalid,
    keep: Callable[[bytes], bool] | None = None,
) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """(line number, line, record) of each valid line; `keep(line)` may skip a framed line
    before it is parsed (a cheap pre-filter: a bad line it skips is not reported). Invalid lines
    go to `on_invalid` and are skipped."""
    for number, line in lines(path):
        if keep is not None and framed(line) and not keep(line):
            continue
        try:
            record = checked(line)
        except ValueError as exc:
            on_invalid(number, describe_invalid(line, exc))
            continue
        yield number, line, record


def describe_invalid(line: bytes, exc: Exception) -> str:
    """Why a line was skipped, with its start, so the user can find it."""
    preview = line[:60].decode("utf-8", errors="replace").rstrip("\n")
    return f"{exc}: {preview!r}"


def report_invalid(write: Callable[[str], None], path: Path) -> OnInvalid:
    """An `on_invalid` that writes one line per skipped line through `write` (stderr)."""

    def report(number: int, reason: str) -> None:
        write(f"{path}: line {number} skipped: {reason}")

    return report


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _reject_constant(name: str) -> Any:  # pragma: no cover - the json fallback only
    raise ValueError(f"non-standard JSON constant {name}")
