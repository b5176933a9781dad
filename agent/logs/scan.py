"""How `logs summary` reads a journal: a block of lines at a time, the per-line work in C.

A million-line journal is most of a gigabyte, and a few microseconds of Python per line are
seconds. The file is read in blocks of whole lines (BLOCK bytes, cut after the last newline).
For a block, numpy finds every line and checks its framing at once: `{"ts": "`, the stamp, the
run id and `", "event": "` where the journal's layout puts them (`read`), `}` before the newline,
and the event name. The fields the summary counts are then read for all decision, order, fill and
risk lines of the block together (`columns`), and added up in bulk; error lines go through a
regular expression one by one (they are few), lines of any other event are parsed in full.
Python touches a single line only where something is kept in order: a change of stage or
breakout state, a repeated decision id.

Where the lines of one event do not all follow the usual layout (a null where a value usually
is, a long reason, fields in another order), they are read by regular expressions matched at
each line (`_DECISION`...: the rules `_Lines` applies to a single line). A block where even those
do not match, or where a line is not framed, belongs to another run, or is torn, is read line by
line (`_Lines`), so a bad line is reported by its number and skipped, and what the summary keeps
in file order (stage transitions) comes out as in one pass over the lines. `strict=True` reads
every line that way, parsing each.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.logs import columns
from agent.logs.read import HEAD, STAMP_END, OnInvalid, checked, describe_invalid

if TYPE_CHECKING:
    from agent.logs.summary import Summary

BLOCK = 4 << 20  # measured on the bench journal: 1-8 MB blocks are within 5%; 64 MB is slower


@dataclass
class Fills:
    """One side's fills: their number, and each one's notional and fee, summed once at the end
    with `math.fsum` (correctly rounded), so the totals do not depend on how the journal was
    split between processes or in what order the parts were added."""

    count: int = 0
    notional: list[float] = field(default_factory=list)
    fees: list[float] = field(default_factory=list)

    def absorb(self, other: Fills) -> None:
        self.count += other.count
        self.notional += other.notional
        self.fees += other.fees


# Anchored at the closing quote of the event name: the fields of the loop's records, in its order
# (`agent/loop.py`). A string is "[^"\\]*", or longer with escapes; a scalar runs to a comma.
_STR = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_ID = rb'(?:null|"[^"\\]*")'
_DECISION = re.compile(
    rb'", "decision_id": "([^"\\]*)", "asof": (?:"([^"]*)"|null), '
    rb'(?:"crypto_asof": (?:"[^"]*"|null), )?"action": "([a-z_]+)", "reason": ' + _STR + rb", "
    rb'"breakout": (?:null|\{"date": (?:"[^"]*"|null), "state": "([a-z_]+)"[^}]*\}), '
    rb'"targets": (?:null|\{"weights": \{[^}]*\}, "stage": ([0-9]+))'
)
_ORDER = re.compile(
    rb'", "decision_id": ' + _ID + rb', "client_order_id": "[^"]*", "asset": "[^"]*", '
    rb'"side": "([^"]*)", (?:"[a-z_]+": (?:"[^"\\]*"|[^",{}\[]*), )*?"status": "([^"]*)"'
)
_FILL = re.compile(
    rb'", "decision_id": ' + _ID + rb', "client_order_id": "[^"]*", "trade_id": "[^"]*", '
    rb'"asset": "[^"]*", "side": "([^"]*)", "amount": ([^,]*), "price": ([^,]*), '
    rb'"fee": ([^,}]*)'
)
_CLAMP = re.compile(
    rb'", "decision_id": ' + _ID + rb', "rule": "([^"]*)", "asset": (?:null|"([^"]*)")'
)
_ERROR = re.compile(rb'", "error": "([^"\\]*)"')
_REDONE = b', "redone": true}\n'  # the loop writes it last
_RUN_ID = b'", "run_id": "'
_RUN_START = STAMP_END + len(_RUN_ID)
_EVENT = b'", "event": "'
_NEWLINE, _CLOSE, _QUOTE = ord("\n"), ord("}"), ord('"')
_NO_STAGE = (None, None)


def scan(
    path: Path,
    start: int,
    end: int,
    summary: Summary,
    on_invalid: OnInvalid,
    *,
    strict: bool = False,
    block: int = BLOCK,
) -> None:
    """Add the lines starting in bytes [start, end) of `path` (numbered from 1) to `summary`."""
    lines = _Lines(summary, on_invalid, strict)
    blocks = None if strict else _Blocks(summary, lines)
    for data, size in _read(path, start, end, block):
        if blocks is None or not blocks.add(data, size):
            lines.add_block(data, size)
    lines.merge()
    summary.lines = lines.number


def _read(path: Path, start: int, end: int, block: int) -> Iterator[tuple[bytearray, int]]:
    """(buffer, size): the buffer's first `size` bytes are whole lines of [start, end), each with
    its newline, or, last, the file's last line without one (a torn line). The buffer is reused:
    its bytes are valid until the next item. It grows to hold a line longer than `block`, and
    has `columns.SLACK` bytes more than it holds (windows read past the last line)."""
    data = bytearray(block + columns.SLACK)
    held = 0  # the start of a line, carried over at the front of `data`
    with open(path, "rb", buffering=0) as file:
        file.seek(start)
        left = end - start
        while True:
            room = len(data) - columns.SLACK
            if held == room:
                grown = bytearray(2 * room + columns.SLACK)
                grown[:held] = data[:held]
                data, room = grown, 2 * room
            with memoryview(data) as view:
                got = file.readinto(view[held : held + min(room - held, left)]) if left else 0
            left -= got
            filled = held + got
            if not got:
                if filled:
                    yield data, filled
                return
            cut = data.rfind(b"\n", held, filled) + 1
            if cut:
                yield data, cut
                data[: filled - cut] = data[cut:filled]
                held = filled - cut
            else:
                held = filled


class _Lines:
    """One line at a time: the fields read from the bytes of a framed line of the current run,
    any other line parsed in full (a bad one reported). Counts keyed by bytes, merged into the
    Summary at the end; shared with `_Blocks`. Each field reader returns False, having counted
    nothing, when a field is not where the layout puts it."""

    def __init__(self, summary: Summary, on_invalid: OnInvalid, strict: bool) -> None:
        self.summary = summary
        self.on_invalid = on_invalid
        self.number = 0
        self.first = self.last = b""
        self.runs: dict[bytes, int] = {}
        self.events: dict[bytes, int] = {}
        self.orders: Counter[tuple[bytes, bytes]] = Counter()
        self.risk: Counter[tuple[bytes, bytes | None]] = Counter()
        self.errors: Counter[tuple[bytes, bool]] = Counter()
        self.fills = summary.fills
        # The bytes between the stamp and the event name for the run being read: one comparison
        # checks the layout and the run id of a line.
        self.run, self.between, self.in_run = b"", b"\0", 0
        self.handlers: dict[bytes, Callable[[bytes, int], bool]] = (
            {}
            if strict
            else {
                b"decision": self.decision,
                b"order": self.order,
                b"fill": self.fill,
                b"risk": self.clamp,
                b"error": self.error,
            }
        )

    def add_block(self, data: bytearray, size: int) -> None:
        at = 0
        while at < size:
            newline = data.find(b"\n", at, size)
            end = size if newline < 0 else newline + 1
            self.add(bytes(data[at:end]))
            at = end

    def add(self, line: bytes) -> None:
        self.number += 1
        between = self.between
        if line.startswith(between, STAMP_END) and line[:8] == HEAD and line[-2:] == b"}\n":
            start = STAMP_END + len(between)
        elif line[:8] == HEAD and line[-2:] == b"}\n" and line[STAMP_END:_RUN_START] == _RUN_ID:
            run_end = line.find(b'"', _RUN_START)
            if line[run_end : run_end + 13] != _EVENT:
                start = -1
            else:
                self.runs[self.run] = self.runs.get(self.run, 0) + self.in_run
                self.run, self.in_run = line[_RUN_START:run_end], 0
                self.between = line[STAMP_END : run_end + 13]
                start = run_end + 13
        else:
            start = -1
        if start > 0:
            event_end = line.find(b'"', start)
            event = line[start:event_end]
            handler = self.handlers.get(event)
            if handler is not None and handler(line, event_end):
                self.events[event] = self.events.get(event, 0) + 1
                self.in_run += 1
                self.stamps(line[8:STAMP_END], line[8:STAMP_END])
                return
        self.parse(self.number, line)

    def parse(self, number: int, line: bytes) -> None:
        try:
            record = checked(line)
        except ValueError as exc:
            self.summary.invalid += 1
            self.on_invalid(number, describe_invalid(line, exc))
            return
        self.summary.add(record)

    def stamps(self, low: bytes, high: bytes) -> None:
        if high > self.last:
            self.last = high
        if low < self.first or not self.first:
            self.first = low

    def decision(self, line: bytes, at: int) -> bool:
        found = _DECISION.match(line, at)
        if found is None:
            return False
        decision_id, asof, action, state, stage = found.groups()
        self.summary.count_decision(action, decision_id, line.endswith(_REDONE))
        self.summary.move(line[8:STAMP_END], decision_id, asof, state, _stage(stage))
        return True

    def order(self, line: bytes, at: int) -> bool:
        found = _ORDER.match(line, at)
        if found is None:
            return False
        self.orders[found.group(2, 1)] += 1
        return True

    def fill(self, line: bytes, at: int) -> bool:
        found = _FILL.match(line, at)
        if found is None:
            return False
        side, amount, price, fee = found.groups()
        try:
            value, paid = float(amount) * float(price), float(fee)
        except ValueError:  # a null: parsed in full
            return False
        fills = self.fills.get(side.decode())
        if fills is None:
            fills = self.fills[side.decode()] = Fills()
        fills.count += 1
        fills.notional.append(value)
        fills.fees.append(paid)
        return True

    def clamp(self, line: bytes, at: int) -> bool:
        found = _CLAMP.match(line, at)
        if found is None:
            return False
        self.risk[found.group(1, 2)] += 1
        return True

    def error(self, line: bytes, at: int) -> bool:
        key = _error(line, at, len(line))
        if key is None:
            return False
        self.errors[key] += 1
        return True

    def merge(self) -> None:
        s = self.summary
        self.runs[self.run] = self.runs.get(self.run, 0) + self.in_run
        self.in_run = 0
        if self.first:
            s._stamp(self.first.decode())
            s._stamp(self.last.decode())
        for run, n in self.runs.items():
            if n:
                s.run_ids[run.decode()] += n
        for event, n in self.events.items():
            s.events[event.decode()] += n
        for (status, side), n in self.orders.items():
            s.orders[(status.decode(), side.decode())] += n
        for (rule, asset), n in self.risk.items():
            s.clamps[rule.decode()] += n
            s.clamp_assets.setdefault(rule.decode(), Counter())[(asset or b"-").decode()] += n
        for (kind, retry), n in self.errors.items():
            (s.retries if retry else s.errors)[kind.decode()] += n


def _error(data: bytes | bytearray, at: int, end: int) -> tuple[bytes, bool] | None:
    """An error line's type and whether it was retried, from `at` (its event name's closing
    quote) to `end`; None when the type is not where the layout puts it."""
    found = _ERROR.match(data, at, end)
    if found is None:
        return None
    exception = data.find(b'"exception": ', at, end)
    retry = data.find(b'"retrying": true', at, exception if exception >= 0 else end)
    return found.group(1), retry >= 0


def _stage(stage: bytes | None) -> int | None:
    return None if stage is None else int(stage)


class _Blocks:
    """A block of whole lines at once (see the module's docstring); `add` returns False, having
    counted nothing, when the block must be read line by line."""

    def __init__(self, summary: Summary, lines: _Lines) -> None:
        self.summary = summary
        self.lines = lines
        self.between = b""
        self.layout: _Layout | None = None
        # The (stage, state) of the last decision read here, as matched, and the Summary's stage
        # then: a decision with the same bytes moves nothing unless the Summary moved since.
        self.stage: tuple[bytes | None, bytes | None] | None = None
        self.seen: object = None

    def add(self, data: bytearray, size: int) -> bool:
        if data[size - 1] != _NEWLINE:
            return False  # a torn last line
        layout = self._layout(data, size)
        if layout is None:
            return False
        a = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(a[:size] == _NEWLINE)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        width = layout.width
        windows = np.ndarray((len(a) - width + 1,), f"V{width}", data, 0, (1,))
        heads = windows[starts].view(np.uint8).reshape(len(starts), width)
        words = heads.view("<u8")
        framed = ends - starts >= width + 1  # the head, then at least `}` before the newline
        for k in layout.words:
            framed &= (words[:, k] & layout.mask[k]) == layout.template[k]
        framed &= a[ends - 1] == _CLOSE
        if not framed.all():
            return False
        at = layout.event
        key = np.ascontiguousarray(heads[:, at : at + 8]).view("<u8")[:, 0]
        kinds = {name: key & mask == word for name, (word, mask) in _SHORT.items()}
        kinds[b"decision"] = (key == _DECISION_WORD) & (heads[:, at + 8] == _QUOTE)
        other = ~np.logical_or.reduce(list(kinds.values()))
        read = {}
        for name, selected in kinds.items():
            index = np.flatnonzero(selected)
            fields = _fields(name, data, starts[index] + (at + len(name)), ends[index])
            if fields is None:
                return False
            read[name] = fields
        rest = np.flatnonzero(other).tolist()
        parsed = [_parse(data, starts[i], ends[i]) for i in rest]
        if any(isinstance(r, dict) and r.get("event") in _KEPT_IN_ORDER for r in parsed):
            return False  # a line whose head and body name different events: read in order
        decisions = np.flatnonzero(kinds[b"decision"])
        read[b"decision"]["redone"] = _redone(data, ends[decisions])
        self._commit(data, read, starts, ends, heads[~other], rest, parsed, layout)
        self._decisions(data, read[b"decision"], starts[decisions])
        return True

    def _layout(self, data: bytearray, size: int) -> _Layout | None:
        """The head of the block's lines: the run of the last block, or of its first line."""
        if self.layout is None or not data.startswith(self.between, STAMP_END):
            if data[STAMP_END:_RUN_START] != _RUN_ID:
                return None
            run_end = data.find(b'"', _RUN_START, size)
            if run_end < 0 or data[run_end : run_end + 13] != _EVENT:
                return None
            self.between = bytes(data[STAMP_END : run_end + 13])
            self.layout = _Layout(self.between)
        return self.layout

    def _commit(
        self,
        data: bytearray,
        read: dict[bytes, Any],
        starts: np.ndarray,
        ends: np.ndarray,
        heads: np.ndarray,
        rest: list[int],
        parsed: list[Any],
        layout: _Layout,
    ) -> None:
        lines, summary = self.lines, self.summary
        first_number = lines.number + 1
        lines.number += len(ends)
        for i, record in zip(rest, parsed, strict=True):
            if isinstance(record, dict):
                summary.add(record)
            else:
                summary.invalid += 1
                lines.on_invalid(first_number + i, record)
        counted = len(ends) - len(rest)
        for name, fields in read.items():
            n = _count(fields)
            if n:
                lines.events[name] = lines.events.get(name, 0) + n
        lines.runs[layout.run] = lines.runs.get(layout.run, 0) + counted
        if counted:
            lines.stamps(*_stamp_range(heads))
        lines.orders.update(read[b"order"])
        lines.risk.update(read[b"risk"])
        lines.errors.update(read[b"error"])
        sides, values, fees = read[b"fill"]
        for side in np.unique(sides).tolist():
            mine = sides == side
            fills = lines.fills.setdefault(side.decode(), Fills())
            fills.count += int(mine.sum())
            fills.notional += values[mine].tolist()
            fills.fees += fees[mine].tolist()

    def _decisions(self, data: bytearray, read: dict[str, Any], starts: np.ndarray) -> None:
        """Count the block's decisions; move the stage where it changed (`columns.decisions`:
        the first decision of the block always, compared here with the last one before)."""
        summary = self.summary
        ids = read["ids"]
        if not ids:
            return
        summary.count_decisions(read["actions"], ids, read["redone"])
        before = self.stage if summary.stage is self.seen else None
        for i, stage, state, asof in read["stages"]:
            now = (stage, state)
            if now == before:
                continue
            at = int(starts[i])
            ts = bytes(data[at + 8 : at + STAMP_END])
            summary.move(ts, ids[i], asof, state, _stage(stage))
            before = now
        self.stage, self.seen = before, summary.stage


def _fields(name: bytes, data: bytearray, at: np.ndarray, ends: np.ndarray) -> Any:
    """The fields of the lines of event `name` (`at`: their event name's closing quote) in the
    form `_Blocks._commit` adds up: read with `columns` where the lines follow the usual
    layout, else with the regular expressions, else None."""
    if name == b"error":  # rare: one by one
        keys = list(map(_error, repeat(data), at.tolist(), (ends + 1).tolist()))
        return None if None in keys else Counter(keys)
    if not len(at):
        return _nothing(name)
    fields = _VECTOR[name](columns.Cursor(data, at, ends))
    if fields is not None:
        return fields
    pattern = _PATTERNS[name]
    found = list(map(pattern.match, repeat(data), at.tolist(), (ends + 1).tolist()))
    if None in found:
        return None
    groups = list(map(re.Match.groups, found))
    if name == b"decision":
        return _decision_columns(groups)
    if name == b"order":
        return Counter((status, side) for side, status in groups)
    if name == b"risk":
        return Counter((rule, asset or b"") for rule, asset in groups)
    try:  # fill
        values = [float(amount) * float(price) for _side, amount, price, _fee in groups]
        fees = [float(fee) for _side, _amount, _price, fee in groups]
    except ValueError:  # a null amount, price or fee: read in full, in order
        return None
    sides = np.array([side for side, _amount, _price, _fee in groups], dtype=np.bytes_)
    return sides, np.array(values, dtype=np.float64), np.array(fees, dtype=np.float64)


def _decision_columns(groups: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The decisions' `_DECISION` groups in the form `columns.decisions` gives."""
    moves, before = [], None
    for i, (_id, asof, _action, state, stage) in enumerate(groups):
        if (stage, state) not in (before, _NO_STAGE):
            moves.append((i, stage, state, asof))
            before = (stage, state)
    return {
        "ids": [group[0] for group in groups],
        "actions": Counter(group[2] for group in groups),
        "stages": moves,
    }


def _nothing(name: bytes) -> Any:
    """What `_fields` gives for no lines of event `name`."""
    if name == b"decision":
        return {"ids": [], "actions": Counter(), "stages": []}
    if name == b"fill":
        return np.zeros(0, dtype=np.bytes_), np.zeros(0), np.zeros(0)
    return Counter()


def _count(fields: Any) -> int:
    if isinstance(fields, Counter):
        return fields.total()
    if isinstance(fields, dict):
        return len(fields["ids"])
    return len(fields[0])


def _parse(data: bytearray, start: int, end: int) -> Any:
    """The record on the line, or why it is invalid."""
    line = bytes(data[start : end + 1])
    try:
        return checked(line)
    except ValueError as exc:
        return describe_invalid(line, exc)


def _redone(data: bytearray, ends: np.ndarray) -> int:
    """How many of the lines ending at `ends` (their newline) end with `_REDONE`."""
    windows = np.ndarray((len(data) - 23,), "V24", data, 0, (1,))
    words = windows[ends - 23].view("<u8").reshape(len(ends), 3)
    same = words[:, 2] == _REDONE_WORDS[2]
    same &= words[:, 1] == _REDONE_WORDS[1]
    same &= (words[:, 0] & _REDONE_MASK) == _REDONE_WORDS[0]
    return int(same.sum())


class _Layout:
    """The fixed head of a run's framed lines as 8-byte words: `{"ts": "`, a stamp, then
    `between` (`", "run_id": "RUN", "event": "`), and the event name's first 9 bytes."""

    def __init__(self, between: bytes) -> None:
        self.run = between[len(_RUN_ID) : -len(_EVENT)]
        self.event = STAMP_END + len(between)
        self.width = -(-(self.event + 9) // 8) * 8
        template = bytearray(self.width)
        mask = bytearray(self.width)
        template[:8] = HEAD
        template[STAMP_END : self.event] = between
        mask[:8] = b"\xff" * 8
        mask[STAMP_END : self.event] = b"\xff" * len(between)
        self.template = np.frombuffer(bytes(template), "<u8")
        self.mask = np.frombuffer(bytes(mask), "<u8")
        self.words = np.flatnonzero(self.mask).tolist()  # the words that hold a fixed byte


def _stamp_range(heads: np.ndarray) -> tuple[bytes, bytes]:
    """The lowest and the highest stamp of lines whose heads (`{"ts": "` and on) are `heads`:
    compared as big-endian 8-byte words, which orders them as bytes."""
    stamps = np.zeros((len(heads), 32), dtype=np.uint8)
    stamps[:, : STAMP_END - 8] = heads[:, 8:STAMP_END]
    words = stamps.view(">u8")
    extremes = []
    for pick in (np.argmin, np.argmax):
        keep = np.arange(len(heads))
        for column in words.T:
            values = column[keep]
            keep = keep[values == values[pick(values)]]
        extremes.append(stamps[keep[0], : STAMP_END - 8].tobytes())
    return extremes[0], extremes[1]


def _word(text: bytes) -> np.uint64:
    return np.frombuffer(text.ljust(8, b"\0"), "<u8")[0]


_PATTERNS = {b"decision": _DECISION, b"order": _ORDER, b"fill": _FILL, b"risk": _CLAMP}
_VECTOR = {
    b"decision": columns.decisions,
    b"order": columns.orders,
    b"fill": columns.fills,
    b"risk": columns.clamps,
}
_DECISION_WORD = _word(b"decision")
# An event name shorter than 8 bytes and its closing quote; the line's next bytes masked off.
_SHORT = {
    name: (_word(name + b'"'), _word(b"\xff" * (len(name) + 1)))
    for name in (b"order", b"fill", b"risk", b"error")
}
_REDONE_WORDS = np.frombuffer(_REDONE.rjust(24, b"\0"), "<u8")  # the last 24 bytes of a line
_REDONE_MASK = np.frombuffer(bytes(24 - len(_REDONE)) + b"\xff" * (len(_REDONE) - 16), "<u8")[0]
_KEPT_IN_ORDER = {"decision", "fill"}
