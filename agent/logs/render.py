"""What `logs summary` and `logs show` print: rich tables on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent.logs.describe import describe


def print_summary(s: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{s['journal']}[/]: {s['records']:,} records on {s['lines']:,} lines")
    if s["invalid_lines"]:
        console.print(f"[red]{s['invalid_lines']:,} invalid line(s) skipped (see stderr)[/]")
    console.print(f"first {s['first_ts']}   last {s['last_ts']}")
    console.print("runs: " + ", ".join(f"{run} ({n:,})" for run, n in s["run_ids"].items()))
    sessions = s["sessions"]
    console.print(f"sessions (start records): {sessions['count']}")
    for start in sessions["starts"]:
        console.print(f"  {start['ts']}  mode {start['mode']}, version {start['version']}")

    table = _table("event", "records")
    for event, n in s["events"].items():
        table.add_row(event, f"{n:,}")
    console.print(table)

    d = s["decisions"]
    actions = ", ".join(f"{a} {n:,}" for a, n in d["actions"].items()) or "none"
    console.print(
        f"decisions: {d['count']:,} ({actions}); redone after a crash {d['redone']:,}; "
        f"ids journalled more than once {d['journalled_more_than_once']:,}"
    )

    st = s["stage_transitions"]
    table = _table("ts", "session", "from", "to", "decision", title="stage transitions")
    for t in st["first"]:
        before = (
            "-"
            if t["from_state"] is None and t["from_stage"] is None
            else (f"{t['from_state']} / stage {t['from_stage']}")
        )
        table.add_row(
            t["ts"], str(t["asof"]), before, f"{t['state']} / stage {t['stage']}", t["decision_id"]
        )
    console.print(table)
    if st["count"] > len(st["first"]):
        console.print(f"... {st['count'] - len(st['first']):,} more transitions (--json for all)")

    h = s["halts"]
    console.print(f"halts: {h['count']:,}" + _counts(h["by_rule"]))
    for halt in h["first"]:
        console.print(escape(f"  {halt['ts']}  {halt['rule']}: {halt['reason']}"))

    r = s["risk_clamps"]
    table = _table("rule", "clamps", "assets", title=f"risk clamps: {r['count']:,}")
    for rule, info in r["by_rule"].items():
        assets = ", ".join(f"{a} {n:,}" for a, n in info["assets"].items())
        table.add_row(rule, f"{info['count']:,}", assets)
    console.print(table)

    o = s["orders"]
    sides = sorted({side for by_side in o["by_status"].values() for side in by_side})
    table = _table("status", *sides, title=f"orders: {o['count']:,}")
    for status, by_side in o["by_status"].items():
        table.add_row(status, *(f"{by_side.get(side, 0):,}" for side in sides))
    console.print(table)

    f = s["fills"]
    table = _table("side", "fills", "notional", "fees", title=f"fills: {f['count']:,}")
    for side, info in f["by_side"].items():
        table.add_row(
            side, f"{info['count']:,}", f"{info['notional']:,.2f}", f"{info['fees']:,.2f}"
        )
    table.add_row("all", f"{f['count']:,}", f"{f['notional']:,.2f}", f"{f['fees']:,.2f}")
    console.print(table)

    e = s["errors"]
    console.print(f"errors: {e['count']:,}" + _counts(e["by_type"]))
    console.print(f"retries: {e['retries']['count']:,}" + _counts(e["retries"]["by_type"]))
    rc, dc = s["reconcile"], s["discrepancies"]
    console.print(
        f"reconcile: {rc['count']:,} (ok {rc['ok']:,}, failed {rc['failed']:,}); "
        f"discrepancies: {dc['count']:,}" + _counts(dc["by_kind"])
    )


def show_table(rows: Iterable[tuple[int, dict[str, Any]]], console: Console) -> int:
    """A table of (line, record) rows; returns how many were shown."""
    table = _table("line", "ts", "event", "decision", "what")
    shown = 0
    for number_, record in rows:
        table.add_row(
            str(number_),
            _when(record.get("ts")),
            Text(str(record.get("event", "-"))),
            Text(str(record.get("decision_id") or "-")),
            Text(describe(record, with_id=False)),
        )
        shown += 1
    if shown:
        console.print(table)
    return shown


def console() -> Console:
    """stdout; at least 160 columns wide when it is not a terminal (a file, a pipe)."""
    return Console(width=None if sys.stdout.isatty() else 160)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _counts(counts: dict[str, int]) -> str:
    return (": " + ", ".join(f"{k} {n:,}" for k, n in counts.items())) if counts else ""


def _when(ts: Any) -> str:
    """A journal stamp without its zero microseconds, for a narrow column."""
    if not isinstance(ts, str):
        return "-"
    return ts.replace(".000000Z", "Z")
