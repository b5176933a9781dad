"""One readable line per journal record: what `show` puts in its table and `tail` prints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def number(value: Any, digits: int = 6) -> str:
    """A number as a person reads it: up to `digits` significant digits, thousands separated
    when large; None as `-`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def percent(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def describe(record: dict[str, Any], *, with_id: bool = True) -> str:
    """The record's substance in one line, without `ts`, `run_id` and `event` (nor a
    decision's id unless `with_id`)."""
    if record.get("event") == "decision":
        return _decision(record, with_id)
    handler = _DESCRIBE.get(str(record.get("event")))
    if handler is None:
        rest = {k: v for k, v in record.items() if k not in ("ts", "run_id", "event")}
        return json.dumps(rest, separators=(",", ":"))[:300]
    return handler(record)


def line(record: dict[str, Any]) -> str:
    """`ts  event  description`: the line `tail` prints."""
    return f"{record.get('ts', '-')}  {record.get('event', '-')!s:<12} {describe(record)}"


def _decision(r: dict[str, Any], with_id: bool = True) -> str:
    breakout = r.get("breakout") if isinstance(r.get("breakout"), dict) else {}
    targets = r.get("targets") if isinstance(r.get("targets"), dict) else {}
    parts = [f"{r.get('action')} {r.get('decision_id')}" if with_id else str(r.get("action"))]
    if breakout or targets:
        parts.append(f"[{breakout.get('state', '-')}, stage {targets.get('stage', '-')}]")
    if r.get("redone") is True:
        parts.append("(redone after a crash)")
    return " ".join(parts) + f": {r.get('reason')}"


def _order(r: dict[str, Any]) -> str:
    notional = f" (~{number(r['notional'])})" if isinstance(r.get("notional"), int | float) else ""
    error = f": {r['error']}" if r.get("error") else ""
    return (
        f"{r.get('side')} {number(r.get('amount'), 10)} {r.get('asset')}{notional} "
        f"{r.get('status')}{error}  client id {r.get('client_order_id')}"
    )


def _fill(r: dict[str, Any]) -> str:
    return (
        f"{r.get('side')} {number(r.get('amount'), 10)} {r.get('asset')} "
        f"@ {number(r.get('price'), 10)}, fee {number(r.get('fee'))}"
        f"  client id {r.get('client_order_id')}, trade {r.get('trade_id')}"
    )


def _risk(r: dict[str, Any]) -> str:
    unit = f" {r['unit']}" if r.get("unit") else ""
    return (
        f"{r.get('rule')} {r.get('asset') or '(all)'}: wanted {number(r.get('wanted'))}, "
        f"allowed {number(r.get('allowed'))}{unit}: {r.get('reason')}"
    )


def _error(r: dict[str, Any]) -> str:
    retry = f" (retrying, attempt {r.get('attempt')})" if r.get("retrying") is True else ""
    call = f" in {r['call']}" if r.get("call") else ""
    return f"{r.get('error')}{call}{retry}: {r.get('message')}"


def _reconcile(r: dict[str, Any]) -> str:
    return f"{'ok' if r.get('ok') is True else 'FAILED'}: {r.get('reason')}"


def _discrepancy(r: dict[str, Any]) -> str:
    return (
        f"{r.get('kind')} {r.get('key')}: store {_compact(r.get('store'))}, "
        f"venue {_compact(r.get('venue'))} -> {r.get('action')}"
    )


def _compact(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))[:120]
    return number(value)


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "decision": _decision,
    "order": _order,
    "fill": _fill,
    "risk": _risk,
    "error": _error,
    "reconcile": _reconcile,
    "discrepancy": _discrepancy,
    "halt": lambda r: f"{r.get('rule')}: {r.get('reason')}",
    "start": lambda r: (
        f"session start: mode {r.get('mode')}, version {r.get('version')}, "
        f"config {str(r.get('config_hash'))[:12]}"
    ),
    "stop": lambda r: f"stop: {r.get('reason')}",
    "config_change": lambda r: (
        f"config changed: {str(r.get('old_hash'))[:12]} -> {str(r.get('new_hash'))[:12]}"
    ),
    "journal_repair": lambda r: (
        f"torn tail of {r.get('torn_bytes')} bytes after line {r.get('after_line')} "
        f"set aside in {r.get('set_aside')}"
    ),
}
