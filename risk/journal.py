"""Decision journal: one JSON object per line, one line per event.

`Journal.write(event, ts, **fields)` appends a record `{"ts", "run_id", "event", ...fields}`;
`EVENTS` names the fields each event must carry (extra fields are welcome: a decision also
carries its inputs and state). Records are built by a structlog processor chain owned by the
Journal itself, never by the global `structlog.configure()`, so two journals in one process (two
runs, a test beside the agent) never see each other's records.

The journal never reads the clock: `ts` comes from the caller (the agent's injected clock, or
simulated time in a backtest). It must be timezone-aware and is written in UTC as
`YYYY-MM-DDTHH:MM:SS.ffffffZ`: always microseconds, always `Z`, so the strings have a fixed width
and sort as time does. Aware datetimes inside fields are written the same way; naive ones as
`isoformat()`, dates as `YYYY-MM-DD`.

Values are made JSON-ready before anything else: enums become their value, numpy scalars Python
numbers, dataclasses dicts, tuples and sets lists, NaN/inf (and pandas NaT) null, and anything else
its `repr()`. The output is strict JSON. Then secrets are redacted: the value of any key whose name
looks secret becomes "***" at any depth, and every occurrence of a known secret string (the
`secrets` argument) inside any string or key becomes "***", tracebacks included.

Each record is one `write()` of a complete line to a file opened in append mode, then `flush()`,
then `os.fsync()` when asked: a crash leaves whole lines behind, and at most a torn last one.

Opening an existing journal repairs a torn tail (see `Journal.repair`): the bytes after the last
line that is a strict JSON object ending in a newline are copied to a sibling
`<name>.torn-<UTC stamp>` file, the journal is truncated to that line, and a `journal_repair`
record goes in before the first record written after opening, with that record's `ts`. The stamp
is the journal's last modification time, when it was torn, not the clock's. Only the end of the
file is read to find the tail; the line count costs one more pass, on repair only.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, BinaryIO, Self

import numpy as np
import structlog
from structlog.tracebacks import ExceptionDictTransformer

__all__ = ["ACTIONS", "EVENTS", "REDACTED", "Journal", "JournalRepair", "read_journal"]

EVENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "start": ("config_hash", "mode", "version"),
        "stop": ("reason",),
        "decision": (
            "decision_id",
            "asof",
            "action",
            "reason",
            "breakout",
            "targets",
            "clamps",
            "orders",
        ),
        "order": ("decision_id", "client_order_id", "asset", "side", "amount", "status"),
        "fill": (
            "decision_id",
            "client_order_id",
            "trade_id",
            "asset",
            "side",
            "amount",
            "price",
            "fee",
        ),
        "risk": ("decision_id", "rule", "asset", "wanted", "allowed", "reason"),
        "halt": ("rule", "reason"),
        "error": ("error", "message"),
        "reconcile": ("decision_id", "ok", "reason"),
        "discrepancy": ("decision_id", "kind", "key", "store", "venue", "action"),
        "config_change": ("old_hash", "new_hash"),
        "journal_repair": ("torn_bytes", "set_aside", "after_line", "preview"),
    }
)
"""Event name -> the fields its record must carry beyond `ts`, `run_id` and `event`."""

ACTIONS = frozenset({"hold", "trade", "refused"})
"""The values a decision's `action` may take."""

REDACTED = "***"
_HEAD = ("ts", "run_id", "event")
_SECRET_KEY_PARTS = (
    "apikey",
    "secret",
    "password",
    "passphrase",
    "token",
    "privatekey",
    "authorization",
    "signature",
)
_MIN_SECRET_LENGTH = 6
# Frames only, never local variables: a local may hold a key.
_TRACEBACK = ExceptionDictTransformer(show_locals=False, use_rich=False)
_CHUNK = 1 << 16
_PREVIEW_CHARS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class JournalRepair:
    """What opening a journal with a torn tail did: the `journal_repair` record's numbers."""

    torn_bytes: int
    set_aside: Path
    """The full path of the file holding the torn bytes; the record carries its name."""
    after_line: int
    """The good lines kept: the torn bytes came after this line (0: the file was all torn)."""
    preview: str


class Journal:
    """Append-only JSON-lines journal of one run.

    `write()` returns the record as written (JSON-ready, redacted, `ts` rendered), which equals
    `json.loads()` of the line. Safe to share between threads; use as a context manager or call
    `close()`. `repair` is None when the file was new or clean, else the JournalRepair done on
    opening it.
    """

    writes_decisions = True
    """A stand-in that only counts (a sweep's) says False, and is spared the decision records."""

    def __init__(
        self,
        path: Path | str,
        run_id: str,
        *,
        secrets: Iterable[str] = (),
        fsync: bool = False,
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"journal run_id must be a non-empty string, got {run_id!r}")
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair = _repair_tail(self.path)
        self._pending_repair = self.repair
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open until close()
        self._lock = threading.Lock()
        self._last: dict[str, Any] = {}
        self._log = structlog.wrap_logger(
            _LineSink(self._file, fsync),
            processors=[_json_ready, _Redactor(secrets), _head_first, self._keep, _RENDER],
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        ).bind(run_id=run_id)

    def write(self, event: str, ts: datetime, **fields: Any) -> dict[str, Any]:
        """Append one `event` record at `ts`; return the record as written.

        The first write after a repair is preceded by the `journal_repair` record, at the same
        `ts`: the journal never reads the clock.

        Raises ValueError for an unknown event, a missing required field (a field given as
        None is present), a reserved field name, a decision `action` outside ACTIONS or a naive
        `ts`; TypeError when `ts` is not a datetime.
        """
        required = EVENTS.get(event)
        if required is None:
            raise ValueError(f"unknown journal event {event!r}; known: {', '.join(EVENTS)}")
        missing = [name for name in required if name not in fields]
        if missing:
            raise ValueError(f"journal event {event!r} is missing field(s): {', '.join(missing)}")
        reserved = [name for name in _HEAD if name in fields]
        if reserved:
            raise ValueError(f"journal event {event!r}: reserved field(s): {', '.join(reserved)}")
        if event == "decision" and fields["action"] not in ACTIONS:
            raise ValueError(
                f"journal decision action must be one of {sorted(ACTIONS)}, "
                f"got {fields['action']!r}"
            )
        stamp = _utc_stamp(ts, f"journal event {event!r}: ts")
        with self._lock:
            if self._file.closed:
                raise ValueError(f"journal {self.path} is closed")
            if self._pending_repair is not None:
                repair, self._pending_repair = self._pending_repair, None
                self._log.msg(
                    "journal_repair",
                    ts=stamp,
                    torn_bytes=repair.torn_bytes,
                    set_aside=repair.set_aside.name,
                    after_line=repair.after_line,
                    preview=repair.preview,
                )
            self._log.msg(event, ts=stamp, **fields)
            record, self._last = self._last, {}
        return record

    def error(self, ts: datetime, exc: BaseException, **fields: Any) -> dict[str, Any]:
        """Append an `error` record for `exc`: its type name, message and traceback.

        The traceback (`exception`) is structlog's dict form: chained exceptions, each with
        `exc_type`, `exc_value`, `exc_notes` and `frames` (filename, lineno, name), never locals.
        """
        clash = [name for name in ("error", "message", "exception") if name in fields]
        if clash:
            raise ValueError(
                f"journal error(): field(s) set from the exception: {', '.join(clash)}"
            )
        return self.write(
            "error",
            ts,
            error=type(exc).__name__,
            message=str(exc),
            **fields,
            exception=_TRACEBACK((type(exc), exc, exc.__traceback__)),
        )

    def close(self) -> None:
        """Close the file; later writes raise ValueError. Closing twice is harmless."""
        with self._lock:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _keep(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """Processor: remember the final record for write() to return."""
        self._last = event_dict
        return event_dict


def read_journal(
    path: Path | str, *, on_invalid: Callable[[int, str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the records of a journal.

    An invalid line (torn, not strict JSON, not an object, not UTF-8) raises ValueError naming
    its line, unless `on_invalid` is given: then it is called with the line number and the
    reason, and the line is skipped.
    """
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                record = _parse_line(line)
            except ValueError as exc:
                if on_invalid is None:
                    raise ValueError(f"{path}: line {number}: {exc}") from exc
                on_invalid(number, str(exc))
                continue
            yield record


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return record


def _repair_tail(path: Path) -> JournalRepair | None:
    """Set aside the bytes after the last good line of `path` and truncate it there.

    A good line is a strict JSON object ending in a newline. The copy is fsynced (with its
    directory entry) before the journal is cut, so a crash in between leaves the torn bytes in
    both places, never in neither.
    """
    try:
        file = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with file:
        size = file.seek(0, os.SEEK_END)
        good = _good_end(file, size)
        if good == size:
            return None
        file.seek(good)
        preview = file.read(_PREVIEW_CHARS * 4).decode("utf-8", errors="replace")
        torn_at = _EPOCH + timedelta(microseconds=os.fstat(file.fileno()).st_mtime_ns // 1000)
        out, aside = _create_new(path.with_name(f"{path.name}.torn-{torn_at:%Y%m%dT%H%M%S%fZ}"))
        with out:
            file.seek(good)
            shutil.copyfileobj(file, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(path.parent)
        file.truncate(good)
        file.flush()
        os.fsync(file.fileno())
        return JournalRepair(
            torn_bytes=size - good,
            set_aside=aside,
            after_line=_count_lines(file, good),
            preview=preview[:_PREVIEW_CHARS],
        )


def _create_new(path: Path) -> tuple[BinaryIO, Path]:
    """Open `path` for writing, or `<path>-2`, `<path>-3`, ... when taken: never overwrite."""
    candidate, n = path, 1
    while True:
        try:
            return open(candidate, "xb"), candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")


def _good_end(file: BinaryIO, size: int) -> int:
    """The offset just past the last good line of `file`, 0 if none.

    Reads backwards from the end in chunks and keeps one line in memory, so a clean journal of
    any length costs one small read.
    """
    start, buf = size, b""

    def newline_before(offset: int) -> int:
        """The offset of the last newline before `offset`, -1 if none."""
        nonlocal start, buf
        while (found := buf.rfind(b"\n", 0, offset - start)) < 0:
            if start == 0:
                return -1
            step = min(_CHUNK, start)
            file.seek(start - step)
            buf = file.read(step) + buf[: offset - start]
            start -= step
        return start + found

    end = newline_before(size) + 1
    while end > 0:
        line_start = newline_before(end - 1) + 1
        try:
            _parse_line(buf[line_start - start : end - 1 - start])
        except ValueError:
            end = line_start
        else:
            return end
    return 0


def _count_lines(file: BinaryIO, end: int) -> int:
    file.seek(0)
    count = 0
    while (left := end - file.tell()) > 0 and (chunk := file.read(min(1 << 20, left))):
        count += chunk.count(b"\n")
    return count


def _fsync_dir(directory: Path) -> None:
    """Make a new file's name durable: POSIX only, a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LineSink:
    """The wrapped logger: one write() of a whole line, then flush (and fsync when asked)."""

    def __init__(self, file: Any, fsync: bool) -> None:
        self._file = file
        self._fsync = fsync

    def msg(self, line: str) -> None:
        self._file.write(line.encode("utf-8") + b"\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())


class _Redactor:
    """Processor: hide secret-looking keys' values and known secret strings, at any depth."""

    def __init__(self, secrets: Iterable[str]) -> None:
        known = {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is hidden whole.
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in sorted(known, key=len, reverse=True)))
            if known
            else None
        )

    def __call__(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return self._walk(event_dict)

    def _walk(self, value: Any) -> Any:
        kind = type(value)
        if self._pattern is None and kind is not dict and kind is not list:
            return value  # only dict keys can be redacted then; scalars pass as they are
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value) if self._pattern else value
        if isinstance(value, dict):
            return {
                self._walk(key): REDACTED if _looks_secret(key) else self._walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._walk(item) for item in value]
        return value


@functools.lru_cache(maxsize=4096)
def _looks_secret(key: str) -> bool:
    folded = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(part in folded for part in _SECRET_KEY_PARTS)


def _json_ready(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Processor: turn every value into plain JSON types (see `_plain`)."""
    return _plain(event_dict)


def _head_first(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Processor: ts, run_id, event first, then the fields in the caller's order."""
    head = {key: event_dict[key] for key in _HEAD if key in event_dict}
    return head | {key: value for key, value in event_dict.items() if key not in head}


def _plain(value: Any) -> Any:
    """`value` as JSON types only (dict with str keys, list, str, int, float, bool, None)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {_key(key): _plain(item) for key, item in value.items()}
    if kind is list:
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value != value:  # pandas NaT, the one datetime unequal to itself
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            return value.isoformat()
        return _utc_stamp(value, "datetime")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _plain(float(value))
    if isinstance(value, np.generic | np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, Mapping):
        return {_key(key): _plain(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        items = [_plain(item) for item in value]
        try:
            return sorted(items)  # a stable order across runs when the items allow one
        except TypeError:
            return items
    return repr(value)


def _key(key: Any) -> str:
    if type(key) is str:
        return key
    plain = _plain(key)
    return plain if isinstance(plain, str) else json.dumps(plain)


def _utc_stamp(ts: Any, what: str) -> str:
    if not isinstance(ts, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(ts).__name__}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {ts.isoformat()}")
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


# `default` is a safety net: `_json_ready` has already made every value plain.
_RENDER = structlog.processors.JSONRenderer(default=_plain, allow_nan=False)
