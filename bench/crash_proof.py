"""Crash proof, many kills: `spillover run` in a child process against the loopback emulators,
SIGKILLed at seeded moments and restarted each time, compared with an uninterrupted run.

    python bench/crash_proof.py [--kills 24] [--seed 1] [--exchange binance|bybit|both]
                                [--days 124] [--out DIR]

Per exchange: the uninterrupted run (one life of the child), the kill schedule (`--seed`; every
kind at least once when `--kills` allows: intent committed and not sent, order processed and not
answered, journal line, torn journal line, tick commit, venue read, wall clock), one line per kill
as it happens, then the checks. A summary table follows: kills by kind, restarts, planned kills
that never fired, create requests, orders, client ids sent twice, duplicate orders, journal lines
checked, torn tails set aside, ticks run again, reconcile records, decisions missing, orders no
decision record names, positions equal, seconds. It measures and prints, asserts nothing; the
exit code is 1 when a check failed (positions differ, a duplicate, a line that is not strict
JSON or cites no decision, a decision missing, an order no decision names, a kill that never
fired, a life that crashed), else 0; when positions differ it names the first tick at which the
exchange saw other orders than in the uninterrupted run, and the last kill before it. Run
folders and each life's output stay under `--out`.

The default window (124 daily ticks from 2016-10-15) covers the 2016 planted breakout, its lag
window and the start of the taper: about 40 orders. See tests/crash_run.py for how it is driven.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.crash_run, the harness shared with the test suite

from tests.crash_run import GROUPS, KINDS, CrashCheck, CrashRun, compare, plan_kills, run_child  # noqa: E402
from tests.fault_run import EXCHANGES, FIRST_DAY, FULL_DAYS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=24, help="kills per exchange")
    parser.add_argument("--seed", type=int, default=1, help="seeds the kill schedule")
    parser.add_argument("--exchange", choices=[*EXCHANGES, "both"], default="both")
    parser.add_argument("--days", type=int, default=FULL_DAYS, help="daily ticks per run")
    parser.add_argument("--out", type=Path, default=None, help="folder for runs and logs")
    args = parser.parse_args(argv)
    if args.kills < 0 or args.days < 3:
        parser.error("--kills must be >= 0 and --days >= 3")

    exchanges = list(EXCHANGES) if args.exchange == "both" else [args.exchange]
    out = args.out or Path(tempfile.mkdtemp(prefix="crash-proof-"))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"crash proof: {', '.join(exchanges)}; {args.kills} kills each (seed {args.seed}); "
        f"{args.days} days from {FIRST_DAY}; runs in {out}",
        flush=True,
    )
    started = time.perf_counter()
    results: list[tuple[str, CrashRun, CrashRun, CrashCheck]] = []
    for exchange in exchanges:
        window = {"days": args.days, "first_day": FIRST_DAY}
        reference = run_child(exchange, out / f"{exchange}-uninterrupted", **window)
        print(_reference_line(reference), flush=True)
        if reference.failure is not None:
            check = compare(reference, reference)
            results.append((exchange, reference, reference, check))
            continue
        plans = plan_kills(args.seed, args.kills, reference)
        print(f"{exchange}: schedule: " + "; ".join(p.describe() for p in plans), flush=True)
        crashed = run_child(
            exchange,
            out / f"{exchange}-killed",
            kills=plans,
            on_kill=lambda kill, name=exchange: print(f"{name} {kill.describe()}", flush=True),
            **window,
        )
        check = compare(reference, crashed)
        verdict = "all checks pass" if check.ok else "FAILED"
        print(f"{exchange}: {verdict} ({crashed.seconds:.1f} s)", flush=True)
        for problem in check.problems():
            print(f"    {problem}", flush=True)
        if check.first_divergence:
            when = check.first_divergence[:16]
            before = [k for k in crashed.kills if k.sim_time.isoformat()[:16] <= when]
            if before:
                print(f"    the last kill at or before it: {before[-1].describe()}", flush=True)
        if not check.ok:
            print(f"    run folder {crashed.folder}", flush=True)
        results.append((exchange, reference, crashed, check))

    print()
    print(_table(results))
    bad = sum(not check.ok for *_, check in results)
    verdict = "all checks pass" if not bad else f"{bad} exchange(s) failed a check"
    print(f"total: {time.perf_counter() - started:.0f} s: {verdict}")
    return 1 if bad else 0


def _reference_line(run: CrashRun) -> str:
    if run.failure is not None:
        return f"{run.exchange_id} uninterrupted: FAILED: {run.failure}"
    held = ", ".join(f"{a} {v:.6g}" for a, v in run.positions.items())
    return (
        f"{run.exchange_id} uninterrupted: {len(run.decision_times)} ticks, {run.orders} orders, "
        f"{run.journal_check.lines} journal lines, positions {held} ({run.seconds:.1f} s)"
    )


def _table(results: list[tuple[str, CrashRun, CrashRun, CrashCheck]]) -> str:
    def kinds(run: CrashRun) -> str:
        by_kind = run.kills_by_kind
        return " ".join(f"{kind} {by_kind[kind]}" for kind in KINDS if by_kind[kind])

    def groups(run: CrashRun) -> str:
        by_group = run.kills_by_group
        return " ".join(f"{g} {by_group[g]}" for g in sorted(set(GROUPS.values())))

    rows: list[tuple[str, ...]] = [("", *(name for name, *_ in results))]
    figures = [
        ("kills", lambda r, c, k: f"{len(c.kills)} of {len(c.planned)} planned"),
        ("kills by group", lambda r, c, k: groups(c)),
        ("kills by kind", lambda r, c, k: kinds(c)),
        ("restarts", lambda r, c, k: str(c.restarts)),
        (
            "create requests",
            lambda r, c, k: f"{c.create_requests} (uninterrupted {r.create_requests})",
        ),
        ("orders", lambda r, c, k: f"{c.orders} (uninterrupted {r.orders})"),
        ("client ids sent twice", lambda r, c, k: str(len(c.resent_client_ids))),
        ("duplicate orders", lambda r, c, k: str(len(c.duplicate_client_ids))),
        ("journal lines checked", lambda r, c, k: str(c.journal_check.lines)),
        ("lines not strict JSON", lambda r, c, k: str(_invalid(c))),
        ("journal problems", lambda r, c, k: str(len(c.journal_check.problems))),
        ("torn tails set aside", lambda r, c, k: f"{c.torn_files} ({c.torn_bytes} bytes)"),
        ("ticks run again", lambda r, c, k: str(c.reruns)),
        ("reconcile records", lambda r, c, k: str(c.journal_check.events.get("reconcile", 0))),
        (
            "decisions missing",
            lambda r, c, k: f"{len(k.missing_decisions)} of {len(r.decision_times)}",
        ),
        ("orders no decision names", lambda r, c, k: str(len(k.undecided_orders))),
        ("positions equal", lambda r, c, k: "yes" if not k.position_differences else "NO"),
        ("failure", lambda r, c, k: "; ".join(k.failures) or "none"),
        ("seconds", lambda r, c, k: f"{c.seconds:.1f} (uninterrupted {r.seconds:.1f})"),
    ]
    for label, figure in figures:
        rows.append((label, *(figure(r, c, k) for _, r, c, k in results)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _invalid(run: CrashRun) -> int:
    return sum(1 for p in run.journal_check.problems if "invalid JSON" in p or "not a JSON" in p)


if __name__ == "__main__":
    sys.exit(main())
