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

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.logs.read import HEAD, STAMP_END, OnInvalid, checked, describe_invalid, lines

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


def summarize(path: Path, on_invalid: OnInvalid, *, strict: bool = False) -> dict[str, Any]:
    """The summary of the journal at `path`, read once, line by line."""
    summary = Summary()
    fast = _Fast(summary)
    handlers = {} if strict else fast.handlers
    events = fast.events
    number = 0
    for number, line in lines(path):
        if line[:8] == HEAD and line[-2:] == b"}\n" and line[STAMP_END:_RUN_START] == _RUN_ID:
            run_end = line.find(b'"', _RUN_START)
            if line[run_end : run_end + 12] == b'", "event": ':
                event_end = line.find(b'"', run_end + 13)
                event = line[run_end + 13 : event_end]
                handler = handlers.get(event)
                if handler is not None and handler(line, event_end):
                    events[event] = events.get(event, 0) + 1
                    fast.seen(line[8:STAMP_END], line[_RUN_START:run_end])
                    continue
        try:
            record = checked(line)
        except ValueError as exc:
            summary.invalid += 1
            on_invalid(number, describe_invalid(line, exc))
            continue
        summary.add(record)
    fast.merge()
    summary.lines = number
    return summary.result(path)


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

    def seen(self, ts: bytes, run: bytes) -> None:
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        self.runs[run] = self.runs.get(run, 0) + 1

    def decision(self, line: bytes, at: int) -> bool:
        """`at`: the event's closing quote. The fields follow in the loop's order; each is
        looked for where the layout puts it (a slice compared), then searched for."""
        if not line.startswith(b', "decision_id": "', at + 1):
            return False
        id_end = line.find(b'"', at + 19)
        if not line.startswith(b', "asof": ', id_end + 1):
            return False
        asof = id_end + 11
        action = asof + 54  # "YYYY-MM-DD", "crypto_asof": "YYYY-MM-DD", "action": "
        if not line.startswith(b'"action": "', action - 11):
            action = line.find(b'"action": "', asof) + 11
            if action < 11:
                return False
        action_end = line.find(b'"', action)
        breakout = line.find(b'"', action_end + 14)  # the reason's closing quote, unless escaped
        if line.startswith(b', "breakout": ', breakout + 1):
            breakout += 15
        else:
            breakout = line.find(b'"breakout": ', action_end) + 12
            if breakout < 12:
                return False
        state = None
        if line.startswith(b"null", breakout):
            targets = breakout + 4
        else:
            start = breakout + 33  # {"date": "YYYY-MM-DD", "state": "
            if not line.startswith(b', "state": "', start - 12):
                start = line.find(b'"state": "', breakout) + 10
                if start < 10:
                    return False
            state = line[start : line.find(b'"', start)]
            targets = line.find(b"}", start) + 1  # the evidence holds no nested object
        if line.startswith(b', "targets": ', targets):
            targets += 13
        else:
            targets = line.find(b'"targets": ', breakout) + 11
            if targets < 11:
                return False
        stage = None
        if not line.startswith(b"null", targets):
            start = line.find(b"}", targets) + 12  # after the weights: , "stage":
            if not line.startswith(b', "stage": ', start - 11):
                start = line.find(b'"stage": ', targets) + 9
            text = line[start : line.find(b",", start)]
            if start < 9 or not text.isdigit():
                return False
            stage = int(text)
        self.summary._decision(
            line[8:STAMP_END],
            line[at + 19 : id_end],
            None if line.startswith(b"null", asof) else line[asof + 1 : asof + 11],
            line[action:action_end],
            state,
            stage,
            line.endswith(_REDONE),  # the loop writes it last
        )
        return True

    def order(self, line: bytes, at: int) -> bool:
        side = _string(line, b'"side": "', at)
        status = _string(line, b'"status": "', at)
        if side is None or status is None:
            return False
        key = (status, side)
        self.orders[key] = self.orders.get(key, 0) + 1
        return True

    def fill(self, line: bytes, at: int) -> bool:
        start = line.find(b'"side": "', at) + 9
        end = line.find(b'"', start) + 1
        side = line[start : end - 1]
        numbers = []
        for key in (b', "amount": ', b', "price": ', b', "fee": '):
            if not line.startswith(key, end):
                return self._fill_searched(line, at)
            start = end + len(key)
            end = line.find(b",", start)
            numbers.append(line[start:end])
        try:
            amount, price, fee = map(float, numbers)
        except ValueError:  # a null: the slow way
            return self._fill_searched(line, at)
        self._fill(side, amount, price, fee)
        return True

    def _fill_searched(self, line: bytes, at: int) -> bool:
        side = _string(line, b'"side": "', at)
        amount = _number(line, b'"amount": ', at)
        price = _number(line, b'"price": ', at)
        fee = _number(line, b'"fee": ', at)
        if side is None or amount is _MISSING or price is _MISSING or fee is _MISSING:
            return False
        self._fill(side, amount, price, fee)
        return True

    def _fill(self, side: bytes, amount: Any, price: Any, fee: Any) -> None:
        totals = self.fills.get(side)
        if totals is None:
            totals = self.fills[side] = [0, 0.0, 0.0]
        totals[0] += 1
        if amount is not None and price is not None:
            totals[1] += amount * price
        if fee is not None:
            totals[2] += fee

    def clamp(self, line: bytes, at: int) -> bool:
        start = line.find(b'"rule": "', at) + 9
        end = line.find(b'"', start)
        if start < 9 or not line.startswith(b', "asset": ', end + 1):
            return False
        asset = end + 12
        if line.startswith(b"null", asset):
            key = (line[start:end], b"-")
        else:
            key = (line[start:end], line[asset + 1 : line.find(b'"', asset + 1)])
        self.risk[key] = self.risk.get(key, 0) + 1
        return True

    def error(self, line: bytes, at: int) -> bool:
        kind = _string(line, b'"error": "', at)
        if kind is None:
            return False
        exception = line.find(b'"exception": ', at)
        retry = line.find(b'"retrying": true', at, exception if exception >= 0 else len(line))
        key = (kind, retry >= 0)
        self.errors[key] = self.errors.get(key, 0) + 1
        return True

    def merge(self) -> None:
        s = self.summary
        if self.first is not None:
            s._stamp(self.first.decode())
        if self.last is not None:
            s._stamp(self.last.decode())
        for run, n in self.runs.items():
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


_MISSING = object()
_REDONE = b', "redone": true}\n'
_ASSET = b'"asset": "'


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _bytes(value: Any) -> bytes | None:
    return None if value is None else str(value).encode()


def _string(line: bytes, key: bytes, at: int) -> bytes | None:
    """The first string value of `key` after `at` (only a key can be followed by `": "`:
    inside a string every quote is escaped)."""
    start = line.find(key, at)
    if start < 0:
        return None
    start += len(key)
    end = line.find(b'"', start)
    value = line[start:end]
    return None if b"\\" in value else value


def _number(line: bytes, key: bytes, at: int) -> Any:
    """The first number value of `key` after `at`, None for null, _MISSING if not there."""
    start = line.find(key, at)
    if start < 0:
        return _MISSING
    start += len(key)
    end = line.find(b",", start)
    brace = line.find(b"}", start)
    if end < 0 or 0 <= brace < end:
        end = brace
    text = line[start:end]
    if text == b"null":
        return None
    try:
        return float(text)
    except ValueError:
        return _MISSING
