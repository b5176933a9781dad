"""Fault proof, many seeds: the testnet loop against the loopback emulators, clean and then with
seeded faults of every kind on 20% of requests (exchange and Alpaca), for each seed.

    python bench/fault_proof.py [--seeds 30] [--first-seed 1] [--exchange binance|bybit|both]
                                [--days 124] [--jobs 4] [--out DIR]

Per seed it prints the faults injected by kind (and how many hit order creation), the create
requests and orders the exchange saw, duplicate client order ids, whether the final positions
equal the clean run's (to each asset's amount step), whether the journal is sound, and the time
taken; then one summary line per exchange and a final one. It measures and prints, asserts
nothing; the exit code is 1 when any run saw a duplicate, a position mismatch, a crash or an
unsound journal (a result, not a failure of the script), else 0. Journals stay under `--out`.

The default window (124 daily ticks from 2016-10-15) covers the 2016 planted breakout, its lag
window and the start of the taper: about 40 orders per run. See tests/fault_run.py for how the
run is driven.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fault_run, the harness shared with the test suite

from tests.fault_run import (  # noqa: E402
    EXCHANGES,
    FAULT_RATE,
    FIRST_DAY,
    FULL_DAYS,
    RunOutcome,
    position_differences,
    run_against_emulators,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30, help="fault seeds per exchange")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--exchange", choices=[*EXCHANGES, "both"], default="both")
    parser.add_argument("--days", type=int, default=FULL_DAYS, help="daily ticks per run")
    parser.add_argument("--jobs", type=int, default=4, help="runs at a time (processes)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the run journals")
    args = parser.parse_args(argv)

    exchanges = list(EXCHANGES) if args.exchange == "both" else [args.exchange]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    out = args.out or Path(tempfile.mkdtemp(prefix="fault-proof-"))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"fault proof: {', '.join(exchanges)}; {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}); "
        f"{args.days} days from {FIRST_DAY}; fault rate {FAULT_RATE:.0%}; "
        f"{args.jobs} jobs; journals in {out}",
        flush=True,
    )
    started = time.perf_counter()
    bad_total = 0
    summaries = []
    for exchange in exchanges:
        clean = run_against_emulators(exchange, None, args.days, run_dir=out / f"{exchange}-clean")
        print(_clean_line(clean), flush=True)
        bad_total += clean.crash is not None
        outcomes = []
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(
                    run_against_emulators,
                    exchange,
                    seed,
                    args.days,
                    run_dir=out / f"{exchange}-seed{seed}",
                )
                for seed in seeds
            ]
            for future in futures:
                outcome = future.result()
                outcomes.append(outcome)
                print(_seed_line(clean, outcome), flush=True)
        line, bad = _summary(exchange, clean, outcomes)
        summaries.append(line)
        bad_total += bad
    print()
    for line in summaries:
        print(line)
    runs = len(exchanges) * len(seeds)
    verdict = "all equal, no duplicates" if not bad_total else f"{bad_total} bad run(s)"
    print(f"total: {runs} faulted runs in {time.perf_counter() - started:.0f} s: {verdict}")
    return 1 if bad_total else 0


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.most_common()) or "none"


def _problems(clean: RunOutcome, outcome: RunOutcome) -> list[str]:
    problems = []
    if outcome.crash:
        problems.append(f"crashed after {outcome.ticks} ticks: {outcome.crash}")
    differences = position_differences(clean.positions, outcome.positions)
    if differences:
        shown = ", ".join(f"{a} {x} vs {y}" for a, (x, y) in differences.items())
        problems.append(f"positions differ (clean vs faulted): {shown}")
    if outcome.duplicate_client_ids:
        problems.append(f"duplicate client ids: {', '.join(outcome.duplicate_client_ids)}")
    if not outcome.journal_check.parses or outcome.journal_check.problems:
        problems.append(f"journal: {'; '.join(outcome.journal_check.problems[:3])}")
    return problems


def _clean_line(clean: RunOutcome) -> str:
    state = f"crashed: {clean.crash}" if clean.crash else f"{clean.ticks} ticks"
    held = ", ".join(f"{a} {v:.6g}" for a, v in clean.positions.items())
    return (
        f"{clean.exchange_id} clean: {state}, {clean.orders} orders, positions {held} "
        f"({clean.seconds:.1f} s)"
    )


def _seed_line(clean: RunOutcome, outcome: RunOutcome) -> str:
    equal = not position_differences(clean.positions, outcome.positions) and not outcome.crash
    line = (
        f"{outcome.exchange_id} seed {outcome.fault_seed:>3}: "
        f"faults {sum(outcome.faults.values())} ({_kinds(outcome.faults)}); "
        f"on creates {sum(outcome.create_faults.values())}; "
        f"alpaca {sum(outcome.alpaca_faults.values())}; "
        f"creates {outcome.create_requests}, orders {outcome.orders}, "
        f"duplicates {len(outcome.duplicate_client_ids)}, "
        f"positions equal {'yes' if equal else 'NO'} ({outcome.seconds:.1f} s)"
    )
    problems = _problems(clean, outcome)
    if problems:
        line += "".join(f"\n    {p}" for p in problems) + f"\n    journal {outcome.journal}"
    return line


def _summary(exchange: str, clean: RunOutcome, outcomes: list[RunOutcome]) -> tuple[str, int]:
    faults: Counter[str] = Counter()
    creates: Counter[str] = Counter()
    alpaca: Counter[str] = Counter()
    for outcome in outcomes:
        faults.update(outcome.faults)
        creates.update(outcome.create_faults)
        alpaca.update(outcome.alpaca_faults)
    duplicates = sum(len(o.duplicate_client_ids) for o in outcomes)
    mismatches = sum(bool(position_differences(clean.positions, o.positions)) for o in outcomes)
    crashes = sum(o.crash is not None for o in outcomes)
    journals = sum(bool(o.journal_check.problems) or not o.journal_parses for o in outcomes)
    bad = sum(bool(_problems(clean, o)) for o in outcomes)
    line = (
        f"{exchange}: {len(outcomes)} seeds; faults {sum(faults.values())} ({_kinds(faults)}); "
        f"on creates {sum(creates.values())} ({_kinds(creates)}); "
        f"alpaca {sum(alpaca.values())} ({_kinds(alpaca)}); "
        f"create requests {sum(o.create_requests for o in outcomes)}, "
        f"orders {sum(o.orders for o in outcomes)} (clean {clean.orders} per run); "
        f"duplicates {duplicates}; mismatches {mismatches}; crashes {crashes}; "
        f"unsound journals {journals}"
    )
    return line, bad


if __name__ == "__main__":
    sys.exit(main())
