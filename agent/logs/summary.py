"""`logs summary`: the counts of a whole journal, in one streaming pass.

A journal of a million records is most of a gigabyte; parsing every line costs seconds. On a line
with the journal's framing (see `read`), the fields the summary needs are read straight from the
bytes where the journal's layout puts them: a decision's id, session date, action, breakout
state, stage and `redone`; an order's status and side; a fill's side, amount, price and fee; a
clamp's rule and asset; an error's type and whether it was retried. A line where one of them is
not found, a line of any other event and a line without the framing are parsed in full.
`strict=True` parses every line: the same counts (the tests check it), slower, and it also
reports a line that keeps the framing but is broken inside (which the journal's own writer never
leaves: a torn last line loses its newline, and reopening the journal repairs it).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent.logs.read import HEAD, STAMP_END, OnInvalid, checked, describe_invalid, lines

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
_RUN_ID = b'", "run_id": "'
_RUN_START = STAMP_END + len(_RUN_ID)
_SHOWN = 50


class Summary:
    """Counts fed one record at a time; `result()` is the JSON-ready summary."""

    def __init__(self) -> None:
        self.lines = 0
        self.invalid = 0
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.run_ids: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.actions: dict[bytes, int] = {}
        self.redone = 0
        self.decision_ids: set[bytes] = set()
        self.repeated: dict[bytes, int] = {}
        self.stage: tuple[int | None, bytes | None] | None = None
        self.transitions: list[dict[str, Any]] = []
        self.transition_count = 0
        self.halts: Counter[str] = Counter()
        self.halt_list: list[dict[str, Any]] = []
        self.clamps: Counter[str] = Counter()
        self.clamp_assets: dict[str, Counter[str]] = {}
        self.orders: Counter[tuple[str, str]] = Counter()
        self.fills: dict[str, list[float]] = {}
        self.errors: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.reconciles: Counter[str] = Counter()
        self.discrepancies: Counter[str] = Counter()
        self.sessions: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        ts = record.get("ts")
        if isinstance(ts, str):
            self._stamp(ts)
        run_id = record.get("run_id")
        if isinstance(run_id, str):
            self.run_ids[run_id] += 1
        event = str(record.get("event"))
        self.events[event] += 1
        handler = _HANDLERS.get(event)
        if handler is not None:
            handler(self, record)

    def absorb(self, other: Summary) -> None:
        """Add `other`, the summary of the lines that come right after this one's."""
        self.lines += other.lines
        self.invalid += other.invalid
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                self._stamp(ts)
        for name in (
            "run_ids",
            "events",
            "halts",
            "clamps",
            "orders",
            "errors",
            "retries",
            "reconciles",
            "discrepancies",
        ):
            getattr(self, name).update(getattr(other, name))
        for rule, assets in other.clamp_assets.items():
            self.clamp_assets.setdefault(rule, Counter()).update(assets)
        for action, n in other.actions.items():
            self.actions[action] = self.actions.get(action, 0) + n
        for side, (n, notional, fees) in other.fills.items():
            totals = self.fills.setdefault(side, [0, 0.0, 0.0])
            totals[0] += n
            totals[1] += notional
            totals[2] += fees
        self.redone += other.redone
        for decision_id in self.decision_ids & other.decision_ids:
            self.repeated[decision_id] = self.repeated.get(decision_id, 0) + 1
        for decision_id, n in other.repeated.items():
            self.repeated[decision_id] = self.repeated.get(decision_id, 0) + n
        self.decision_ids |= other.decision_ids
        transitions, count = other.transitions, other.transition_count
        if transitions and self.stage is not None:
            head = transitions[0]  # from nothing: `other` did not know where this one ended
            if (head["stage"], _bytes(head["state"])) == self.stage:
                transitions, count = transitions[1:], count - 1
            else:
                joined = {"from_stage": self.stage[0], "from_state": _text(self.stage[1])}
                transitions = [head | joined, *transitions[1:]]
        self.transitions += transitions[: _SHOWN - len(self.transitions)]
        self.transition_count += count
        if other.stage is not None:
            self.stage = other.stage
        self.halt_list += other.halt_list[: _SHOWN - len(self.halt_list)]
        self.sessions += other.sessions[: _SHOWN - len(self.sessions)]

    def _stamp(self, ts: str) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def _decision(
        self,
        ts: bytes,
        decision_id: bytes,
        asof: bytes | None,
        action: bytes,
        state: bytes | None,
        stage: int | None,
        redone: bool,
    ) -> None:
        """Count one decision; bytes, as the fast path reads them (decoded when shown)."""
        actions = self.actions
        actions[action] = actions.get(action, 0) + 1
        if redone:
            self.redone += 1
        ids = self.decision_ids
        if decision_id in ids:
            self.repeated[decision_id] = self.repeated.get(decision_id, 0) + 1
        else:
            ids.add(decision_id)
        if state is None and stage is None:
            return  # a refusal before the signal was read: no state to compare
        now = (stage, state)
        if now != self.stage:
            self.transition_count += 1
            if len(self.transitions) < _SHOWN:
                before = self.stage or (None, None)
                self.transitions.append(
                    {
                        "ts": ts.decode(),
                        "asof": _text(asof),
                        "decision_id": decision_id.decode(),
                        "from_stage": before[0],
                        "from_state": _text(before[1]),
                        "stage": stage,
                        "state": _text(state),
                    }
                )
            self.stage = now

    def _on_decision(self, record: dict[str, Any]) -> None:
        breakout, targets = record.get("breakout"), record.get("targets")
        state = breakout.get("state") if isinstance(breakout, dict) else None
        stage = targets.get("stage") if isinstance(targets, dict) else None
        self._decision(
            str(record.get("ts")).encode(),
            str(record.get("decision_id")).encode(),
            _bytes(record.get("asof")),
            str(record.get("action")).encode(),
            _bytes(state),
            stage,
            record.get("redone") is True,
        )

    def _on_risk(self, record: dict[str, Any]) -> None:
        rule = str(record.get("rule"))
        self.clamps[rule] += 1
        self.clamp_assets.setdefault(rule, Counter())[str(record.get("asset") or "-")] += 1

    def _on_halt(self, record: dict[str, Any]) -> None:
        rule = str(record.get("rule"))
        self.halts[rule] += 1
        if len(self.halt_list) < _SHOWN:
            self.halt_list.append(
                {"ts": record.get("ts"), "rule": rule, "reason": record.get("reason")}
            )

    def _on_order(self, record: dict[str, Any]) -> None:
        self.orders[(str(record.get("status")), str(record.get("side")))] += 1

    def _on_fill(self, record: dict[str, Any]) -> None:
        totals = self.fills.setdefault(str(record.get("side")), [0, 0.0, 0.0])
        totals[0] += 1
        amount, price, fee = record.get("amount"), record.get("price"), record.get("fee")
        if isinstance(amount, int | float) and isinstance(price, int | float):
            totals[1] += amount * price
        if isinstance(fee, int | float):
            totals[2] += fee

    def _on_error(self, record: dict[str, Any]) -> None:
        kind = str(record.get("error"))
        (self.retries if record.get("retrying") is True else self.errors)[kind] += 1

    def _on_reconcile(self, record: dict[str, Any]) -> None:
        self.reconciles["ok" if record.get("ok") is True else "failed"] += 1

    def _on_discrepancy(self, record: dict[str, Any]) -> None:
        self.discrepancies[str(record.get("kind"))] += 1

    def _on_start(self, record: dict[str, Any]) -> None:
        if len(self.sessions) < _SHOWN:
            self.sessions.append(
                {
                    "ts": record.get("ts"),
                    "mode": record.get("mode"),
                    "version": record.get("version"),
                    "config_hash": record.get("config_hash"),
                }
            )

    def result(self, path: Path) -> dict[str, Any]:
        """The summary as plain JSON types."""
        fills = {
            side: {"count": n, "notional": v, "fees": f} for side, (n, v, f) in self.fills.items()
        }
        by_status: dict[str, dict[str, int]] = {}
        for (status, side), count in sorted(self.orders.items()):
            by_status.setdefault(status, {})[side] = count
        return {
            "journal": str(path),
            "lines": self.lines,
            "records": sum(self.events.values()),
            "invalid_lines": self.invalid,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "run_ids": dict(self.run_ids),
            "events": dict(self.events.most_common()),
            "decisions": {
                "count": self.events["decision"],
                "actions": {
                    a.decode(): n for a, n in sorted(self.actions.items(), key=lambda x: -x[1])
                },
                "redone": self.redone,
                "journalled_more_than_once": len(self.repeated),
            },
            "sessions": {"count": self.events["start"], "starts": self.sessions},
            "stage_transitions": {"count": self.transition_count, "first": self.transitions},
            "halts": {
                "count": sum(self.halts.values()),
                "by_rule": dict(self.halts.most_common()),
                "first": self.halt_list,
            },
            "risk_clamps": {
                "count": sum(self.clamps.values()),
                "by_rule": {
                    rule: {"count": n, "assets": dict(self.clamp_assets[rule].most_common())}
                    for rule, n in self.clamps.most_common()
                },
            },
            "orders": {
                "count": sum(self.orders.values()),
                "by_status": by_status,
                "by_side": _by_side(self.orders),
            },
            "fills": {
                "count": sum(v["count"] for v in fills.values()),
                "notional": sum(v["notional"] for v in fills.values()),
                "fees": sum(v["fees"] for v in fills.values()),
                "by_side": fills,
            },
            "errors": {
                "count": sum(self.errors.values()),
                "by_type": dict(self.errors.most_common()),
                "retries": {
                    "count": sum(self.retries.values()),
                    "by_type": dict(self.retries.most_common()),
                },
            },
            "reconcile": {
                "count": self.events["reconcile"],
                "ok": self.reconciles["ok"],
                "failed": self.reconciles["failed"],
            },
            "discrepancies": {
                "count": sum(self.discrepancies.values()),
                "by_kind": dict(self.discrepancies.most_common()),
            },
        }


def _by_side(orders: Counter[tuple[str, str]]) -> dict[str, int]:
    sides: Counter[str] = Counter()
    for (_status, side), count in orders.items():
        sides[side] += count
    return dict(sides.most_common())


_HANDLERS = {
    "decision": Summary._on_decision,
    "risk": Summary._on_risk,
    "halt": Summary._on_halt,
    "order": Summary._on_order,
    "fill": Summary._on_fill,
    "error": Summary._on_error,
    "reconcile": Summary._on_reconcile,
    "discrepancy": Summary._on_discrepancy,
    "start": Summary._on_start,
}


def summarize(
    path: Path, on_invalid: OnInvalid, *, strict: bool = False, jobs: int | None = None
) -> dict[str, Any]:
    """The summary of the journal at `path`, read once, line by line.

    With `jobs` > 1, a journal of more than PARALLEL_BYTES is cut at line boundaries into `jobs`
    parts read by as many processes; their summaries are added up in file order (counts add,
    stage transitions join across the cuts, line numbers are renumbered), so the result is that
    of one pass. Bad lines are then reported once all parts are read. It pays on an idle
    multi-core machine; on a busy one the parts only compete for the same cores.
    """
    size = path.stat().st_size
    jobs = 1 if jobs is None else jobs
    if jobs < 2 or size < PARALLEL_BYTES or "fork" not in mp.get_all_start_methods():
        return _scan(path, 0, size, strict, on_invalid).result(path)
    cuts = _cuts(path, size, jobs)
    parts = list(itertools.pairwise(cuts))
    with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("fork")) as pool:
        done = list(pool.map(_scan_part, [(path, a, b, strict) for a, b in parts]))
    total, offset = Summary(), 0
    for part, invalid in done:
        for number, reason in invalid:
            on_invalid(offset + number, reason)
        offset += part.lines
        total.absorb(part)
    return total.result(path)


PARALLEL_BYTES = 64 << 20


def _cuts(path: Path, size: int, jobs: int) -> list[int]:
    """0, the starts of the lines at about each 1/jobs of the file, and its size."""
    cuts = [0]
    with open(path, "rb") as file:
        for k in range(1, jobs):
            file.seek(size * k // jobs)
            file.readline()
            cut = min(file.tell(), size)
            if cut > cuts[-1]:
                cuts.append(cut)
    return [*cuts, size] if cuts[-1] < size else cuts


def _scan_part(job: tuple[Path, int, int, bool]) -> tuple[Summary, list[tuple[int, str]]]:
    invalid: list[tuple[int, str]] = []
    path, start, end, strict = job
    summary = _scan(path, start, end, strict, lambda n, why: invalid.append((n, why)))
    return summary, invalid


def _scan(path: Path, start: int, end: int, strict: bool, on_invalid: OnInvalid) -> Summary:
    """The summary of the lines starting in bytes [start, end) of `path`, numbered from 1."""
    summary = Summary()
    fast = _Fast(summary)
    handlers = {} if strict else fast.handlers
    events, runs = fast.events, fast.runs
    first = last = b""
    # The bytes between the stamp and the event name for the run being read: one comparison
    # checks the layout and the run id of a line.
    run, between, in_run = b"", b"\0", 0
    number = 0
    for number, line in lines(path, start, end):
        if line.startswith(between, STAMP_END) and line[:8] == HEAD and line[-2:] == b"}\n":
            start = STAMP_END + len(between)
        elif line[:8] == HEAD and line[-2:] == b"}\n" and line[STAMP_END:_RUN_START] == _RUN_ID:
            run_end = line.find(b'"', _RUN_START)
            if line[run_end : run_end + 13] != b'", "event": "':
                start = -1
            else:
                runs[run] = runs.get(run, 0) + in_run
                run, in_run = line[_RUN_START:run_end], 0
                between = line[STAMP_END : run_end + 13]
                start = run_end + 13
        else:
            start = -1
        if start > 0:
            event_end = line.find(b'"', start)
            event = line[start:event_end]
            handler = handlers.get(event)
            if handler is not None and handler(line, event_end):
                events[event] = events.get(event, 0) + 1
                in_run += 1
                ts = line[8:STAMP_END]
                if ts > last:
                    last = ts
                    if not first:
                        first = ts
                elif ts < first:
                    first = ts
                continue
        try:
            record = checked(line)
        except ValueError as exc:
            summary.invalid += 1
            on_invalid(number, describe_invalid(line, exc))
            continue
        summary.add(record)
    runs[run] = runs.get(run, 0) + in_run
    fast.first, fast.last = first or None, last or None
    fast.merge()
    summary.lines = number
    return summary


class _Fast:
    """The byte-level readers of framed lines: counts keyed by bytes, merged into the Summary
    at the end. Each reader returns False, having counted nothing, when a field is missing."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.first: bytes | None = None
        self.last: bytes | None = None
        self.runs: dict[bytes, int] = {}
        self.events: dict[bytes, int] = {}
        self.orders: dict[tuple[bytes, bytes], int] = {}
        self.risk: dict[tuple[bytes, bytes], int] = {}
        self.errors: dict[tuple[bytes, bool], int] = {}
        self.fills: dict[bytes, list[float]] = {}
        self.handlers: dict[bytes, Callable[[bytes, int], bool]] = {
            b"decision": self.decision,
            b"order": self.order,
            b"fill": self.fill,
            b"risk": self.clamp,
            b"error": self.error,
        }

    def decision(self, line: bytes, at: int) -> bool:
        found = _DECISION.match(line, at)
        if found is None:
            return False
        decision_id, asof, action, state, stage = found.groups()
        self.summary._decision(
            line[8:STAMP_END],
            decision_id,
            asof,
            action,
            state,
            None if stage is None else int(stage),
            line.endswith(_REDONE),  # the loop writes it last
        )
        return True

    def order(self, line: bytes, at: int) -> bool:
        found = _ORDER.match(line, at)
        if found is None:
            return False
        key = found.group(2, 1)
        self.orders[key] = self.orders.get(key, 0) + 1
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
        totals = self.fills.get(side)
        if totals is None:
            totals = self.fills[side] = [0, 0.0, 0.0]
        totals[0] += 1
        totals[1] += value
        totals[2] += paid
        return True

    def clamp(self, line: bytes, at: int) -> bool:
        found = _CLAMP.match(line, at)
        if found is None:
            return False
        rule, asset = found.groups()
        key = (rule, asset or b"-")
        self.risk[key] = self.risk.get(key, 0) + 1
        return True

    def error(self, line: bytes, at: int) -> bool:
        found = _ERROR.match(line, at)
        if found is None:
            return False
        exception = line.find(b'"exception": ', at)
        retry = line.find(b'"retrying": true', at, exception if exception >= 0 else len(line))
        key = (found.group(1), retry >= 0)
        self.errors[key] = self.errors.get(key, 0) + 1
        return True

    def merge(self) -> None:
        s = self.summary
        if self.first is not None:
            s._stamp(self.first.decode())
        if self.last is not None:
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
            s.clamp_assets.setdefault(rule.decode(), Counter())[asset.decode()] += n
        for (kind, retry), n in self.errors.items():
            (s.retries if retry else s.errors)[kind.decode()] += n
        for side, (n, notional, fees) in self.fills.items():
            totals = s.fills.setdefault(side.decode(), [0, 0.0, 0.0])
            totals[0] += n
            totals[1] += notional
            totals[2] += fees


_REDONE = b', "redone": true}\n'
_ASSET = b'"asset": "'


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _bytes(value: Any) -> bytes | None:
    return None if value is None else str(value).encode()
