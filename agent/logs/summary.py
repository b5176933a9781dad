"""`logs summary`: the counts of a whole journal, in one streaming pass.

Decision records are most of a journal and most of its bytes; on a framed line (see `read`) the
few fields the summary needs (id, session date, action, breakout state, stage, `redone`) are
taken with regular expressions instead of parsing the whole record. Every other record, and any
line without the framing, is parsed. `strict=True` parses every line, decisions included: the
same counts, slower, and a line broken inside its framing is reported too.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from agent.logs.read import STAMP_END, OnInvalid, describe_invalid, event_of, framed, lines, parse

_DECISION_ID = re.compile(rb'"decision_id": "([^"\\]*)"')
_ASOF = re.compile(rb'"asof": (?:"([0-9-]*)"|null)')
_ACTION = re.compile(rb'"action": "([a-z_]*)"')
_STATE = re.compile(rb'"state": "([a-z_]*)"')
_STAGE = re.compile(rb'"stage": (-?[0-9]+)[,}]')
_RUN_ID = b'", "run_id": "'
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
        self.actions: Counter[str] = Counter()
        self.redone = 0
        self.decision_ids: set[str] = set()
        self.repeated: Counter[str] = Counter()
        self.stage: tuple[Any, Any] | None = None
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

    def add_decision_line(self, line: bytes) -> bool:
        """The fast path for a framed decision line; False when a field is not where the
        layout puts it (the caller then parses the line)."""
        found = _DECISION_ID.search(line)
        action = _ACTION.search(line)
        asof = _ASOF.search(line)
        at = line.find(b'"breakout": ')
        to = line.find(b'"targets": ', at)
        if found is None or action is None or asof is None or at < 0 or to < 0:
            return False
        state = None
        if line[at + 12 : at + 16] != b"null":
            match = _STATE.search(line, at, to)
            if match is None:
                return False
            state = match.group(1).decode()
        stage = None
        if line[to + 11 : to + 15] != b"null":
            match = _STAGE.search(line, to)
            if match is None:
                return False
            stage = int(match.group(1))
        ts = line[8:STAMP_END].decode()
        start = STAMP_END + len(_RUN_ID)
        if line[STAMP_END:start] != _RUN_ID:
            return False
        self.run_ids[line[start : line.find(b'"', start)].decode()] += 1
        self._stamp(ts)
        self.events["decision"] += 1
        self._decision(
            ts,
            found.group(1).decode(),
            None if asof.group(1) is None else asof.group(1).decode(),
            action.group(1).decode(),
            state,
            stage,
            b'"redone": true' in line,
        )
        return True

    def _stamp(self, ts: str) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def _decision(
        self,
        ts: str,
        decision_id: str,
        asof: str | None,
        action: str,
        state: str | None,
        stage: Any,
        redone: bool,
    ) -> None:
        self.actions[action] += 1
        if redone:
            self.redone += 1
        if decision_id in self.decision_ids:
            self.repeated[decision_id] += 1
        else:
            self.decision_ids.add(decision_id)
        if state is None and stage is None:
            return  # a refusal before the signal was read: no state to compare
        now = (stage, state)
        if now != self.stage:
            self.transition_count += 1
            if len(self.transitions) < _SHOWN:
                before = self.stage or (None, None)
                self.transitions.append(
                    {
                        "ts": ts,
                        "asof": asof,
                        "decision_id": decision_id,
                        "from_stage": before[0],
                        "from_state": before[1],
                        "stage": stage,
                        "state": state,
                    }
                )
            self.stage = now

    def _on_decision(self, record: dict[str, Any]) -> None:
        breakout, targets = record.get("breakout"), record.get("targets")
        self._decision(
            str(record.get("ts")),
            str(record.get("decision_id")),
            record.get("asof"),
            str(record.get("action")),
            breakout.get("state") if isinstance(breakout, dict) else None,
            targets.get("stage") if isinstance(targets, dict) else None,
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
                "actions": dict(self.actions.most_common()),
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
    number = 0
    for number, line in lines(path):
        if (
            not strict
            and framed(line)
            and event_of(line) == b"decision"
            and summary.add_decision_line(line)
        ):
            continue
        try:
            record = parse(line)
        except ValueError as exc:
            summary.invalid += 1
            on_invalid(number, describe_invalid(line, exc))
            continue
        summary.add(record)
    summary.lines = number
    return summary.result(path)
