"""Time `spillover logs` on a large journal, and jq on the same file.

Writes a journal of `--records` records (default 1,000,000) with a realistic mix: one decision
per tick (breakout evidence, targets with trend gates, clamps, orders, prices), risk records for
its clamps, order and fill records for its trades, venue errors and retries, halts, sessions
(start, reconcile, discrepancy, stop). Lines are written by a fast writer that produces the same
bytes as `risk.journal.Journal` (checked on the first records before the rest is written). Then,
each as a subprocess (wall time and peak RSS from `os.wait4`):

- `spillover logs summary FILE --json` as it runs by default (the file read in parts by up to
  four processes, one per core), against its targets (<= 2 s, <= 1 GB), and with `--jobs 1`
  (one pass in one process), whose summary must be the same;
- `spillover logs show FILE --event fill --asset ETH --json`;
- jq doing the same counts (`reduce` over `.event`; `select(.event == "fill" and .asset == "ETH")`),
  when jq is installed.

Prints, asserts nothing:

    python bench/logs.py                  # 1,000,000 records
    python bench/logs.py --records 20000  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ASSETS = ("BTC", "ETH", "SOL", "XRP")
SHARES = {"BTC": 0.5, "ETH": 0.3, "SOL": 0.1, "XRP": 0.1}
RULES = ("stage_cap", "asset_cap", "min_order_notional", "daily_turnover", "stale_price")
RUN_ID = "ru-bench0001"
SUMMARY_SECONDS, SUMMARY_BYTES = 2.0, 1 << 30


def records(count: int, seed: int = 1) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
    """(event, ts, fields) of a long run, `count` records in all."""
    rng = random.Random(seed)
    ts = datetime(2000, 1, 3, tzinfo=UTC)
    prices = {"BTC": 30000.0, "ETH": 2000.0, "SOL": 40.0, "XRP": 0.5}
    level, close, stage, state, day = 100.0, 98.0, 0, "neutral", 0
    made, trade = 0, 0
    session = 0

    def emit(event: str, **fields: Any) -> tuple[str, datetime, dict[str, Any]]:
        nonlocal made
        made += 1
        return event, ts, fields

    while True:
        if made % 50_000 == 0:  # a restart: a new session, reconciled with the venue
            session += 1
            yield emit("start", config_hash=f"{session:064x}", mode="testnet", version="0.1.0")
            yield emit(
                "reconcile",
                decision_id=f"{RUN_ID}-reconcile-{session}",
                ok=True,
                reason="1 discrepancies",
                orders_checked=2,
                orders_changed=1,
                fills_adopted=1,
                unknown_orders=0,
                balance_differences=0,
            )
            yield emit(
                "discrepancy",
                decision_id=f"{RUN_ID}-reconcile-{session}",
                kind="order",
                key=f"{RUN_ID}-x-{session}",
                store={"status": "open", "filled": 0.0},
                venue={"status": "closed", "filled": 0.5},
                action="recorded the venue's status",
            )
        ts += timedelta(hours=1)
        for asset in ASSETS:
            prices[asset] *= 1 + rng.gauss(0.0002, 0.02)
        close *= 1 + rng.gauss(0.0002, 0.01)
        day += 1
        if state == "neutral" and close > level:
            state, day = "candidate", 0
        elif state == "candidate" and day >= 3:
            state, stage, day = "confirmed", 1, 0
        elif state == "confirmed":
            stage = min(4, 1 + day // 720)
            if close < level * 0.95:
                state, stage = "failed", 0
            elif day > 2184:
                state, stage = "expired", 0
        elif state in ("failed", "expired") and day > 200:
            level, state = max(level, close) * 1.02, "neutral"
        if rng.random() < 0.01:
            yield emit(
                "error",
                error="RequestTimeout",
                message="binance GET https://testnet.binance.vision/api/v3/ticker timed out",
                call="markets",
                attempt=1,
                retrying=True,
            )
        decision_id = f"{RUN_ID}-{ts:%Y%m%dT%H%M}"
        budget = 0.5 * stage / 4
        weights = {a: budget * SHARES[a] for a in ASSETS}
        n_clamps = rng.choice((0, 0, 0, 1, 2))
        clamps = [
            {
                "rule": rng.choice(RULES),
                "asset": rng.choice((*ASSETS, None)),
                "wanted": round(rng.random() * 0.3, 6),
                "allowed": round(rng.random() * 0.2, 6),
                "unit": "fraction",
                "reason": "capped by the stage budget",
            }
            for _ in range(n_clamps)
        ]
        trading = rng.random() < 0.3
        orders = []
        if trading:
            for n, asset in enumerate(rng.sample(ASSETS, rng.randint(1, 3))):
                amount = round(rng.uniform(100, 5000) / prices[asset], 6)
                orders.append(
                    {
                        "asset": asset,
                        "side": rng.choice(("buy", "sell")),
                        "amount": amount,
                        "price": prices[asset],
                        "notional": amount * prices[asset],
                        "client_order_id": f"{decision_id}-{n}",
                    }
                )
        action = "trade" if orders else ("refused" if clamps else "hold")
        yield emit(
            "decision",
            decision_id=decision_id,
            asof=ts.date(),
            crypto_asof=ts.date(),
            action=action,
            reason=f"{state}: stage {stage}; stage {stage} cap {budget:.0%}; {len(orders)} orders",
            breakout={
                "date": ts.date().isoformat(),
                "state": state,
                "close": close,
                "level": level,
                "rel_volume": rng.uniform(0.5, 2.0),
                "rs": rng.uniform(0.45, 0.55),
                "rs_mean": rng.uniform(0.45, 0.55),
                "thin": False,
                "counted": rng.random() < 0.3,
                "holds": 3 if state != "neutral" else 0,
                "counted_in_window": 2 if state != "neutral" else 0,
                "candidate_date": None,
                "candidate_level": level if state != "neutral" else None,
                "episode_level": level if state != "neutral" else None,
                "confirmed_date": None,
                "failed_date": None,
                "prefail_date": None,
                "expired_date": None,
                "window_day": day if state == "confirmed" else None,
            },
            targets={
                "weights": weights,
                "stage": stage,
                "budget": budget,
                "phase": "building" if stage else "flat",
                "gates": {
                    a: {"close": prices[a], "mean": prices[a] * 0.97, "passed": True}
                    for a in ASSETS
                },
                "reason": f"stage {stage}",
            },
            clamps=clamps,
            orders=orders,
            equity=100000.0 + rng.uniform(-5000, 5000),
            drawdown=rng.uniform(0, 0.1),
            prices=dict(prices),
        )
        for clamp in clamps:
            yield emit("risk", decision_id=decision_id, **clamp)
        if rng.random() < 0.001:
            yield emit("halt", rule="drawdown", reason="drawdown 21% > 20%: no buys")
        for order in orders:
            trade += 1
            yield emit(
                "order",
                decision_id=decision_id,
                client_order_id=order["client_order_id"],
                asset=order["asset"],
                side=order["side"],
                amount=order["amount"],
                symbol=f"{order['asset']}/USDT",
                type="market",
                notional=order["notional"],
                status="closed",
                venue_order_id=f"v-{trade}",
            )
            yield emit(
                "fill",
                decision_id=decision_id,
                client_order_id=order["client_order_id"],
                trade_id=f"t-{trade}",
                asset=order["asset"],
                side=order["side"],
                amount=order["amount"],
                price=order["price"] * 1.0005,
                fee=order["notional"] * 0.001,
                filled_at=ts,
            )
        if rng.random() < 0.002:
            yield emit(
                "error",
                error="InsufficientFunds",
                message="Account has insufficient balance for requested action.",
                call="place_order",
                consecutive_errors=1,
            )


def fast_line(event: str, ts: datetime, fields: dict[str, Any]) -> str:
    """The line `Journal.write(event, ts, **fields)` writes, for the types `records` yields."""
    record = {"ts": _stamp(ts), "run_id": RUN_ID, "event": event}
    for key, value in fields.items():
        record[key] = _plain(value)
    return json.dumps(record, allow_nan=False) + "\n"


def _stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _stamp(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def write_journal(path: Path, count: int) -> None:
    """Runs in a child process (`--write-only`): the measuring process stays small, and a child's
    peak RSS as the kernel reports it is never below its parent's at the fork."""
    from risk.journal import Journal

    check = 2000
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "reference.jsonl"
        with Journal(reference, RUN_ID) as journal:
            for event, ts, fields in _take(records(count), min(check, count)):
                journal.write(event, ts, **fields)
        expected = reference.read_text()
    produced = "".join(fast_line(*r) for r in _take(records(count), min(check, count)))
    same = produced == expected
    print(f"fast writer == Journal on the first {min(check, count):,} records: {same}")
    if not same:
        sys.exit("the fast writer differs from Journal: fix bench/logs.py")
    started = time.perf_counter()
    with open(path, "w", buffering=1 << 20) as out:
        for record in _take(records(count), count):
            out.write(fast_line(*record))
    size = path.stat().st_size
    print(
        f"wrote {count:,} records, {size / 1e6:,.0f} MB, in {time.perf_counter() - started:.1f} s"
    )


def _take(items: Iterator[Any], count: int) -> Iterator[Any]:
    for n, item in enumerate(items):
        if n >= count:
            return
        yield item


def timed(argv: list[str], stdout: Any = subprocess.DEVNULL) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS bytes, exit code) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stderr is not None:
        errors = process.stderr.read().decode(errors="replace").strip()
        if errors:
            print(f"  stderr: {errors[:300]}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss * scale, process.returncode


def row(what: str, wall: float, cpu: float, rss: int, note: str = "") -> None:
    print(f"  {what:<54} {wall:6.2f} s {cpu:6.2f} s {rss / 1e6:6.0f} MB  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "spillover-bench")
    parser.add_argument("--reuse", action="store_true", help="keep an existing journal file")
    parser.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"journal-{args.records}.jsonl"
    if args.write_only:
        write_journal(path, args.records)
        return
    if not (args.reuse and path.exists()):
        command = [sys.executable, __file__, "--write-only", "--records", str(args.records)]
        subprocess.run([*command, "--out", str(args.out)], check=True)
    spillover = [sys.executable, "-m", "agent", "logs"]
    with tempfile.TemporaryDirectory() as folder:
        summary_out = Path(folder) / "summary.json"
        show_out = Path(folder) / "show.jsonl"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{path} ({path.stat().st_size / 1e6:,.0f} MB)")
        print(f"{os.cpu_count()} cores, load average {load}; own RSS {_own_rss() / 1e6:.0f} MB")
        print(f"  {'command':<54} {'wall':>8} {'cpu':>8} {'peak RSS':>9}")
        wall, cpu, rss, _ = timed([sys.executable, "-m", "agent", "--version"])
        row("python -m agent --version (start-up alone)", wall, cpu, rss)
        with open(summary_out, "wb") as out:
            wall, cpu, rss, code = timed([*spillover, "summary", str(path), "--json"], out)
        ok = wall <= SUMMARY_SECONDS and rss <= SUMMARY_BYTES
        target = f"target <= {SUMMARY_SECONDS:g} s, <= 1 GB: {'met' if ok else 'MISSED'}"
        row("spillover logs summary --json", wall, cpu, rss, f"exit {code}; {target}")
        summary = json.loads(summary_out.read_text())
        one_pass = Path(folder) / "summary-one-pass.json"
        with open(one_pass, "wb") as out:
            command = [*spillover, "summary", str(path), "--json", "--jobs", "1"]
            wall, cpu, rss, code = timed(command, out)
        same = json.loads(one_pass.read_text()) == summary
        row("spillover logs summary --json --jobs 1", wall, cpu, rss, f"same summary: {same}")
        with open(show_out, "wb") as out:
            wall, cpu, rss, code = timed(
                [*spillover, "show", str(path), "--event", "fill", "--asset", "ETH", "--json"], out
            )
        shown = show_out.read_bytes().count(b"\n")
        row(
            "spillover logs show --event fill --asset ETH --json",
            wall,
            cpu,
            rss,
            f"{shown:,} lines",
        )

        jq = shutil.which("jq")
        if jq is None:
            print("  jq not installed: no comparison")
            return
        jq_counts = Path(folder) / "jq.json"
        with open(jq_counts, "wb") as out:
            wall, cpu, rss, _ = timed(
                [jq, "-n", "-c", "reduce inputs as $r ({}; .[$r.event] += 1)", str(path)], out
            )
        counts = json.loads(jq_counts.read_text())
        agree = counts == summary["events"]
        row("jq: count records by event (reduce)", wall, cpu, rss, f"same counts: {agree}")
        jq_fills = Path(folder) / "jq-fills.jsonl"
        with open(jq_fills, "wb") as out:
            wall, cpu, rss, _ = timed(
                [jq, "-c", 'select(.event == "fill" and .asset == "ETH")', str(path)], out
            )
        jq_shown = jq_fills.read_bytes().count(b"\n")
        row(
            'jq -c \'select(.event == "fill" and .asset == "ETH")\'',
            wall,
            cpu,
            rss,
            f"{jq_shown:,} lines (same count: {jq_shown == shown})",
        )


def _own_rss() -> int:
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


if __name__ == "__main__":
    main()
