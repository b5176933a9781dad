"""The `spillover logs` commands' work; `agent/cli.py` declares their options and calls these.

Bad lines go to stderr as `PATH: line N skipped: why`; a user error raises LogsError (the CLI
prints it as one line, exit code 2).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import typer

from agent.logs.filters import Filter, bound
from agent.logs.read import LogsError, journal_path, records, report_invalid

TABLE_LIMIT = 200


def _stderr(text: str) -> None:
    typer.echo(text, err=True)


def summary(journal: Path, *, as_json: bool, strict: bool, jobs: int | None = None) -> None:
    from agent.logs.summary import summarize

    path = journal_path(journal)
    result = summarize(path, report_invalid(_stderr, path), strict=strict, jobs=jobs)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from agent.logs.render import console, print_summary

    print_summary(result, console())


def make_filter(
    *,
    since: str | None,
    until: str | None,
    events: list[str] | None,
    asset: str | None,
    rule: str | None,
    decision: str | None,
) -> Filter:
    try:
        low = None if since is None else bound(since, upper=False)
        high = None if until is None else bound(until, upper=True)
    except ValueError as exc:
        raise LogsError(f"--since/--until: {exc}") from None
    if events:
        from risk.journal import EVENTS

        _check_known("--event", events, EVENTS, "a journal event")
    if rule is not None:
        from risk.verdict import Rule

        _check_known("--rule", [rule], [r.value for r in Rule], "a risk rule")
    return Filter(
        since=low,
        until=high,
        events=frozenset(events or ()),
        asset=asset.upper() if asset else None,
        rule=rule,
        decision=decision,
    )


def _check_known(option: str, given: list[str], known: Collection[str], what: str) -> None:
    """LogsError naming the values of `option` that no record can carry: a typo would match
    nothing and look like an empty journal."""
    unknown = list(dict.fromkeys(value for value in given if value not in known))
    if unknown:
        raise LogsError(f"{option} {', '.join(unknown)}: not {what}; known: {', '.join(known)}")


def show(journal: Path, wanted: Filter, *, limit: int | None, as_json: bool) -> None:
    """The matching records: JSON lines exactly as written, or a table (at most TABLE_LIMIT
    rows unless `limit` says otherwise)."""
    path = journal_path(journal)
    matches = (
        (number, line, record)
        for number, line, record in records(path, report_invalid(_stderr, path), wanted.keep_line)
        if wanted.keep(record)
    )
    if as_json:
        _write_lines(matches, limit)
        return
    from agent.logs.render import console, show_table

    cap = TABLE_LIMIT if limit is None else limit
    rows = []
    more = False
    for number, _line, record in matches:
        if len(rows) == cap:
            more = True
            break
        rows.append((number, record))
    shown = show_table(rows, console())
    if not shown:
        _stderr("no matching records")
    elif more:
        _stderr(f"showing the first {shown}; more records match: raise --limit, or use --json")


def _write_lines(matches: Iterable[tuple[int, bytes, dict[str, Any]]], limit: int | None) -> None:
    out = sys.stdout.buffer
    written = 0
    try:
        for _number, line, _record in matches:
            if limit is not None and written >= limit:
                break
            out.write(line if line.endswith(b"\n") else line + b"\n")
            written += 1
        out.flush()
    except BrokenPipeError:  # `| head`: the reader has gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def explain(journal: Path, decision_id: str) -> None:
    from agent.logs.explain import explain as explain_lines

    path = journal_path(journal)
    for text in explain_lines(path, decision_id, report_invalid(_stderr, path)):
        typer.echo(text)


def tail(journal: Path, *, count: int, follow: bool) -> None:
    from agent.logs.tail import tail as tail_lines

    path = journal_path(journal)

    def write(text: str) -> None:
        typer.echo(text)
        sys.stdout.flush()

    try:
        tail_lines(
            path,
            write,
            report_invalid(_stderr, path),
            count=count,
            follow=follow,
            note=_stderr,
        )
    except KeyboardInterrupt:
        return
