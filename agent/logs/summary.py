"""`logs summary`: the counts of a whole journal, in one streaming pass.

`Summary` holds the counts and gives the JSON-ready result; `scan` reads the journal into it, a
block of lines at a time, taking from each line of the journal's own layout only the fields the
summary counts (a decision's id, session date, action, breakout state, stage and `redone`; an
order's status and side; a fill's side, amount, price and fee; a clamp's rule and asset; an
error's type and whether it was retried), and parsing any other line in full. `strict=True`
parses every line: the same counts (the tests check it), slower, and it also reports a line that
keeps the layout but is broken inside (which the journal's own writer never leaves: a torn last
line loses its newline, and reopening the journal repairs it).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent.logs.read import OnInvalid
from agent.logs.scan import BLOCK, Fills, scan

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
        self.fills: dict[str, Fills] = {}
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
        for side, fills in other.fills.items():
            self.fills.setdefault(side, Fills()).absorb(fills)
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

    def count_decision(self, action: bytes, decision_id: bytes, redone: bool) -> None:
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

    def count_decisions(
        self, actions: Counter[bytes], decision_ids: Iterable[bytes], redone: int
    ) -> None:
        """`count_decision` for many decisions at once, in file order."""
        for action, n in actions.items():
            self.actions[action] = self.actions.get(action, 0) + n
        self.redone += redone
        ids = self.decision_ids
        listed = list(decision_ids)
        new = set(listed)
        if len(new) == len(listed) and ids.isdisjoint(new):
            ids |= new
            return
        for decision_id in listed:
            if decision_id in ids:
                self.repeated[decision_id] = self.repeated.get(decision_id, 0) + 1
            else:
                ids.add(decision_id)

    def move(
        self,
        ts: bytes,
        decision_id: bytes,
        asof: bytes | None,
        state: bytes | None,
        stage: int | None,
    ) -> None:
        """A decision's stage and breakout state, in file order: a transition if they changed."""
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
        decision_id = str(record.get("decision_id")).encode()
        action = str(record.get("action")).encode()
        self.count_decision(action, decision_id, record.get("redone") is True)
        ts, asof = str(record.get("ts")).encode(), _bytes(record.get("asof"))
        self.move(ts, decision_id, asof, _bytes(state), stage)

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
        fills = self.fills.setdefault(str(record.get("side")), Fills())
        fills.count += 1
        amount, price, fee = record.get("amount"), record.get("price"), record.get("fee")
        if isinstance(amount, int | float) and isinstance(price, int | float):
            fills.notional.append(amount * price)
        if isinstance(fee, int | float):
            fills.fees.append(fee)

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
            side: {"count": f.count, "notional": math.fsum(f.notional), "fees": math.fsum(f.fees)}
            for side, f in self.fills.items()
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
                "notional": math.fsum(
                    itertools.chain.from_iterable(f.notional for f in self.fills.values())
                ),
                "fees": math.fsum(
                    itertools.chain.from_iterable(f.fees for f in self.fills.values())
                ),
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
    path: Path,
    on_invalid: OnInvalid,
    *,
    strict: bool = False,
    jobs: int | None = None,
    block: int = BLOCK,
) -> dict[str, Any]:
    """The summary of the journal at `path`, read once, a block of lines at a time (`scan`;
    `block`: the block size in bytes).

    A journal of more than PARALLEL_BYTES is cut at line boundaries into `jobs` parts (default:
    the CPU count, at most MAX_JOBS) read by as many processes; their summaries are added up in
    file order (counts add, stage transitions join across the cuts, line numbers are renumbered,
    fill sums are rounded once at the end), so the result is that of one pass to the last bit.
    Bad lines are then reported once all parts are read. `jobs=1` reads in one pass.
    """
    size = path.stat().st_size
    jobs = min(os.cpu_count() or 1, MAX_JOBS) if jobs is None else jobs
    if jobs < 2 or size < PARALLEL_BYTES or "fork" not in mp.get_all_start_methods():
        summary = Summary()
        scan(path, 0, size, summary, on_invalid, strict=strict, block=block)
        return summary.result(path)
    cuts = _cuts(path, size, jobs)
    parts = list(itertools.pairwise(cuts))
    with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("fork")) as pool:
        jobs_args = [(path, a, b, strict, block) for a, b in parts]
        done = list(pool.map(_scan_part, jobs_args))
    total, offset = Summary(), 0
    for part, invalid in done:
        for number, reason in invalid:
            on_invalid(offset + number, reason)
        offset += part.lines
        total.absorb(part)
    return total.result(path)


PARALLEL_BYTES = 64 << 20
MAX_JOBS = 4


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


def _scan_part(job: tuple[Path, int, int, bool, int]) -> tuple[Summary, list[tuple[int, str]]]:
    invalid: list[tuple[int, str]] = []
    path, start, end, strict, block = job
    summary = Summary()
    scan(
        path,
        start,
        end,
        summary,
        lambda n, why: invalid.append((n, why)),
        strict=strict,
        block=block,
    )
    return summary, invalid


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _bytes(value: Any) -> bytes | None:
    return None if value is None else str(value).encode()
