"""`logs explain DECISION_ID`: one decision in plain words.

The decision record gives the breakout evidence, the stage and targets and the orders it asked
for; the records citing its id give every risk clamp, what became of each order and the fills
that followed (journalled under the decision that placed them, on later ticks too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.logs.describe import number, percent
from agent.logs.read import LogsError, OnInvalid, records

Found = tuple[int, dict[str, Any]]


def gather(path: Path, decision_id: str, on_invalid: OnInvalid) -> dict[str, list[Found]]:
    """The records about `decision_id` by event, each with its line number: those whose
    `decision_id` it is, and errors about one of its client order ids."""
    needle = decision_id.encode()
    found: dict[str, list[Found]] = {}
    for number_, _line, record in records(path, on_invalid, lambda line: needle in line):
        if record.get("decision_id") == decision_id or _its_order(record, decision_id):
            found.setdefault(str(record.get("event")), []).append((number_, record))
    if not found.get("decision"):
        raise LogsError(f"no decision {decision_id} in {path}")
    return found


def explain(path: Path, decision_id: str, on_invalid: OnInvalid) -> list[str]:
    """The explanation, line by line; LogsError when the journal holds no such decision."""
    found = gather(path, decision_id, on_invalid)
    decisions = found["decision"]
    line_no, decision = decisions[-1]
    out = [
        f"Decision {decision_id} at {decision.get('ts')} (session {decision.get('asof')}, "
        f"line {line_no}): {str(decision.get('action')).upper()}",
        f"  {decision.get('reason')}",
    ]
    if len(decisions) > 1:
        lines = ", ".join(str(n) for n, _ in decisions)
        out.append(
            f"  Journalled {len(decisions)} times (lines {lines}): the tick was decided again; "
            "the last record is explained."
        )
    if any(d.get("redone") is True for _, d in decisions):
        out.append(
            "  Redone after a crash (redone: true): the interrupted tick was decided again as it "
            "was, under the same client order ids."
        )
    equity = decision.get("equity")
    if equity is not None:
        drawdown = decision.get("drawdown")
        below = "unknown" if drawdown is None else f"{percent(drawdown)} below the peak"
        out.append(f"  Equity {number(equity)}, drawdown {below}.")
    out += ["", *_breakout(decision.get("breakout"))]
    out += ["", *_targets(decision.get("targets"))]
    out += ["", *_clamps(decision, found.get("risk", []))]
    out += ["", *_orders(decision, found.get("order", []), found.get("error", []))]
    out += ["", *_fills(found.get("fill", []))]
    others = found.get("reconcile", []) + found.get("discrepancy", [])
    if others:
        out += ["", "Reconciliation citing this decision:"]
        out += [f"  - line {n}: {r.get('event')} {_rest(r)}" for n, r in sorted(others)]
    return out


def _its_order(record: dict[str, Any], decision_id: str) -> bool:
    cid = record.get("client_order_id")
    if record.get("event") != "error" or not isinstance(cid, str):
        return False
    head, _, tail = cid.rpartition("-")
    return head == decision_id and tail.isdigit()


def _breakout(b: Any) -> list[str]:
    if not isinstance(b, dict):
        return ["Breakout: not evaluated (the signal could not be read on this tick)."]
    out = [f"Breakout of the small-cap proxy on {b.get('date')}: {str(b.get('state')).upper()}"]
    close, level = b.get("close"), b.get("level")
    if isinstance(close, int | float) and isinstance(level, int | float) and level:
        side = "above" if close > level else "at or below"
        out.append(
            f"  close {number(close, 10)} is {side} the level {number(level, 10)} "
            f"(the highest earlier close), {close / level - 1:+.2%}"
        )
    volume = b.get("rel_volume")
    if volume is not None:
        kind = (
            "a thin session"
            if b.get("thin")
            else ("a counted day" if b.get("counted") else "not a counted day")
        )
        out.append(f"  volume {number(volume, 3)}x its median: {kind}")
    rs, rs_mean = b.get("rs"), b.get("rs_mean")
    if isinstance(rs, int | float) and isinstance(rs_mean, int | float):
        lead = "leading" if rs > rs_mean else "not leading"
        out.append(
            f"  small caps {lead}: index/benchmark ratio {number(rs, 5)} vs its mean "
            f"{number(rs_mean, 5)}"
        )
    if b.get("candidate_date"):
        out.append(
            f"  candidate since {b['candidate_date']} at level "
            f"{number(b.get('candidate_level'), 10)}: "
            f"{b.get('holds')} close(s) held above it, {b.get('counted_in_window')} counted day(s)"
        )
    if b.get("confirmed_date"):
        day = b.get("window_day")
        window = "" if day is None else f"; day {day} of the lag window"
        out.append(
            f"  confirmed {b['confirmed_date']} at episode level "
            f"{number(b.get('episode_level'), 10)}{window}"
        )
    for key, words in (
        ("prefail_date", "closed below the failure line (not yet confirmed)"),
        ("failed_date", "failed"),
        ("expired_date", "lag window expired"),
    ):
        if b.get(key):
            out.append(f"  {words} on {b[key]}")
    return out


def _targets(t: Any) -> list[str]:
    if not isinstance(t, dict):
        return ["Targets: none (nothing was sized on this tick)."]
    out = [
        f"Stage {t.get('stage')} ({t.get('phase')}): crypto cap {percent(t.get('budget'))} of "
        f"equity: {t.get('reason')}"
    ]
    weights = t.get("weights") if isinstance(t.get("weights"), dict) else {}
    gates = t.get("gates") if isinstance(t.get("gates"), dict) else {}
    for asset in dict.fromkeys([*weights, *gates]):
        gate = gates.get(asset)
        trend = ""
        if isinstance(gate, dict):
            verdict = "in its uptrend" if gate.get("passed") else "below its trend: stands aside"
            trend = (
                f"; close {number(gate.get('close'))} vs trend mean {number(gate.get('mean'))}: "
                f"{verdict}"
            )
        out.append(f"  {asset}: target {percent(weights.get(asset))} of equity{trend}")
    return out


def _clamps(decision: dict[str, Any], risk: list[Found]) -> list[str]:
    clamps = [(n, r) for n, r in risk] or [
        (None, c) for c in decision.get("clamps") or [] if isinstance(c, dict)
    ]
    if not clamps:
        return ["Risk clamps: none; the risk gate approved the targets as sized."]
    out = [f"Risk clamps ({len(clamps)}):"]
    for n, c in clamps:
        unit = f" {c['unit']}" if c.get("unit") else ""
        where = f" (line {n})" if n is not None else ""
        out.append(
            f"  - {c.get('rule')} on {c.get('asset') or 'all assets'}: wanted "
            f"{number(c.get('wanted'))}, allowed {number(c.get('allowed'))}{unit}: "
            f"{c.get('reason')}{where}"
        )
    return out


def _orders(decision: dict[str, Any], orders: list[Found], errors: list[Found]) -> list[str]:
    asked = [o for o in decision.get("orders") or [] if isinstance(o, dict)]
    if not asked and not orders:
        return ["Orders: none."]
    sent: dict[Any, list[Found]] = {}
    for n, record in orders:
        sent.setdefault(record.get("client_order_id"), []).append((n, record))
    out = [f"Orders ({len(asked)} asked for):"]
    for order in asked:
        cid = order.get("client_order_id")
        out.append(
            f"  - {order.get('side')} {number(order.get('amount'), 10)} {order.get('asset')} "
            f"(~{number(order.get('notional'))} at {number(order.get('price'), 10)}), "
            f"client id {cid}"
        )
        for n, record in sent.pop(cid, []):
            venue = f", venue id {record['venue_order_id']}" if record.get("venue_order_id") else ""
            error = f": {record['error']}" if record.get("error") else ""
            out.append(f"      {record.get('status')}{venue}{error} (line {n})")
        if not any(e.get("client_order_id") == cid for _, e in errors) and cid not in {
            r.get("client_order_id") for _, r in orders
        }:
            out.append("      no order record: not sent, or the journal ends first")
    for cid, records_ in sent.items():  # order records whose intent the decision did not list
        for n, record in records_:
            out.append(
                f"  - {record.get('side')} {record.get('asset')}, client id {cid}: "
                f"{record.get('status')} (line {n})"
            )
    for n, error in errors:
        out.append(
            f"  - error for client id {error.get('client_order_id')}: {error.get('error')}: "
            f"{error.get('message')} (line {n})"
        )
    return out


def _fills(fills: list[Found]) -> list[str]:
    if not fills:
        return ["Fills: none journalled under this decision."]
    notional = sum(
        r["amount"] * r["price"]
        for _, r in fills
        if isinstance(r.get("amount"), int | float) and isinstance(r.get("price"), int | float)
    )
    fees = sum(r["fee"] for _, r in fills if isinstance(r.get("fee"), int | float))
    out = [f"Fills ({len(fills)}, notional {number(notional)}, fees {number(fees)}):"]
    for n, r in fills:
        at = f" at {r['filled_at']}" if r.get("filled_at") else ""
        out.append(
            f"  - {r.get('side')} {number(r.get('amount'), 10)} {r.get('asset')} @ "
            f"{number(r.get('price'), 10)}, fee {number(r.get('fee'))}, client id "
            f"{r.get('client_order_id')}, trade {r.get('trade_id')}{at} (line {n})"
        )
    return out


def _rest(record: dict[str, Any]) -> str:
    from agent.logs.describe import describe

    return describe(record)
