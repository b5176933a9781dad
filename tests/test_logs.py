"""`spillover logs`: summary, show, explain and tail over journals written by the real Journal."""

import json
import math
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.backtest import run_backtest
from agent.cli import app
from agent.config import Config, DataConfig
from agent.logs.summary import summarize
from agent.marketdata.sample import write_sample
from risk.journal import Journal, read_journal

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2021, 1, 4, tzinfo=UTC)
RUN = "ru-test"


def evidence(day: datetime, state: str) -> dict:
    """A decision's `breakout`, shaped as BreakoutDay.evidence() writes it."""
    confirmed = state == "confirmed"
    return {
        "date": day.date().isoformat(),
        "state": state,
        "close": 212.5,
        "level": 205.25,
        "rel_volume": 1.84,
        "rs": 0.5125,
        "rs_mean": 0.4975,
        "thin": False,
        "counted": True,
        "holds": 3,
        "counted_in_window": 2,
        "candidate_date": "2020-12-28",
        "candidate_level": 205.25,
        "episode_level": 205.25 if confirmed else None,
        "confirmed_date": "2020-12-31" if confirmed else None,
        "failed_date": None,
        "prefail_date": None,
        "expired_date": None,
        "window_day": 4 if confirmed else None,
    }


def targets(stage: int, btc: float, eth: float) -> dict:
    return {
        "weights": {"BTC": btc, "ETH": eth},
        "stage": stage,
        "budget": btc + eth,
        "phase": "building" if stage else "flat",
        "gates": {
            "BTC": {"close": 33000.0, "mean": 25000.0, "passed": True},
            "ETH": {"close": 1000.0, "mean": 1100.0, "passed": False},
        },
        "reason": f"stage {stage}",
    }


def decide(journal: Journal, ts: datetime, decision_id: str, action: str, **fields) -> None:
    """A decision record with the loop's fields in the loop's order."""
    state = fields.pop("state", "neutral")
    stage = fields.pop("stage", 0)
    signal_read = fields.pop("signal_read", True)
    record = {
        "decision_id": decision_id,
        "asof": (ts - timedelta(days=1)).date(),
        "crypto_asof": (ts - timedelta(days=1)).date(),
        "action": action,
        "reason": fields.pop("reason", f"{state}: stage {stage}"),
        "breakout": evidence(ts - timedelta(days=1), state) if signal_read else None,
        "targets": targets(stage, *fields.pop("weights", (0.0, 0.0))) if signal_read else None,
        "clamps": fields.pop("clamps", []),
        "orders": fields.pop("orders", []),
        "equity": 100000.0,
        "drawdown": 0.01,
        "prices": {"BTC": 33000.0, "ETH": 1000.0},
        **fields,
    }
    journal.write("decision", ts, **record)


CLAMP_ETH = {
    "rule": "asset_cap",
    "asset": "ETH",
    "wanted": 0.2,
    "allowed": 0.15,
    "unit": "fraction",
    "reason": "ETH capped at its 15% share",
}
CLAMP_STAGE = {
    "rule": "stage_cap",
    "asset": None,
    "wanted": 0.4,
    "allowed": 0.35,
    "unit": "fraction",
    "reason": "total above the stage cap",
}
BUY_BTC = {"asset": "BTC", "side": "buy", "amount": 0.5, "price": 33000.0, "notional": 16500.0}
BUY_ETH = {"asset": "ETH", "side": "buy", "amount": 15.0, "price": 1000.0, "notional": 15000.0}


def order(journal, ts, decision_id, n, intent, status="closed", **extra) -> str:
    cid = f"{decision_id}-{n}"
    fields = {k: intent[k] for k in ("asset", "side", "amount")}
    journal.write(
        "order", ts, decision_id=decision_id, client_order_id=cid, **fields, status=status, **extra
    )
    return cid


def fill(journal, ts, decision_id, cid, trade_id, intent, price, fee) -> None:
    journal.write(
        "fill",
        ts,
        decision_id=decision_id,
        client_order_id=cid,
        trade_id=trade_id,
        asset=intent["asset"],
        side=intent["side"],
        amount=intent["amount"],
        price=price,
        fee=fee,
        filled_at=ts,
    )


D1, D2, D3, D4, D5 = (f"{RUN}-2021010{n}T0000" for n in (4, 5, 6, 7, 8))


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    """Two sessions of a small run, with every kind of record the summary counts."""
    path = tmp_path / "run" / "decisions.jsonl"
    day = timedelta(days=1)
    with Journal(path, RUN) as j:
        j.write("start", T0, config_hash="a" * 64, mode="testnet", version="0.1.0")
        decide(j, T0, D1, "hold", state="candidate")
        j.error(T0, TimeoutError("read timed out"), call="markets", attempt=1, retrying=True)
        t = T0 + day
        decide(
            j,
            t,
            D2,
            "trade",
            state="confirmed",
            stage=1,
            weights=(0.2, 0.15),
            clamps=[CLAMP_ETH, CLAMP_STAGE],
            orders=[
                BUY_BTC | {"client_order_id": f"{D2}-0"},
                BUY_ETH | {"client_order_id": f"{D2}-1"},
            ],
        )
        j.write("risk", t, decision_id=D2, **CLAMP_ETH)
        j.write("risk", t, decision_id=D2, **CLAMP_STAGE)
        btc = order(j, t, D2, 0, BUY_BTC, venue_order_id="v-1")
        eth = order(j, t, D2, 1, BUY_ETH, venue_order_id="v-2")
        fill(j, t, D2, btc, "t-1", BUY_BTC, 33010.0, 16.5)
        fill(j, t, D2, eth, "t-2", BUY_ETH, 1001.0, 15.0)
        t = T0 + 2 * day
        decide(j, t, D3, "refused", signal_read=False, reason="market data unavailable")
        j.write("halt", t, rule="drawdown", reason="drawdown 21% > 20%: no buys")
        j.write("stop", t, reason="SIGKILL")  # as if: the next session starts after a crash
        t = T0 + 3 * day
        j.write("start", t, config_hash="a" * 64, mode="testnet", version="0.1.0")
        j.write("reconcile", t, decision_id=f"{RUN}-reconcile", ok=True, reason="1 discrepancies")
        j.write(
            "discrepancy",
            t,
            decision_id=f"{RUN}-reconcile",
            kind="order",
            key=f"{D4}-0",
            store={"status": "open"},
            venue={"status": "closed"},
            action="recorded",
        )
        sell = BUY_BTC | {"side": "sell", "amount": 0.25}
        for _ in range(2):  # decided, crashed, redone: journalled twice
            decide(
                j,
                t,
                D4,
                "trade",
                state="confirmed",
                stage=2,
                weights=(0.1, 0.0),
                orders=[sell | {"client_order_id": f"{D4}-0"}],
                redone=True,
            )
        cid = order(j, t, D4, 0, sell, status="error", error="insufficient funds")
        j.error(t, RuntimeError("insufficient funds"), call="place_order", client_order_id=cid)
        decide(j, T0 + 4 * day, D5, "hold", state="failed", stage=0)
    return path


def invoke(*args: str):
    return runner.invoke(app, ["logs", *args])


def raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# summary


def test_summary_counts_equal_hand_counts(journal_file: Path):
    result = invoke("summary", str(journal_file.parent), "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["records"] == s["lines"] == 21
    assert s["events"] == {
        "decision": 6,
        "order": 3,
        "fill": 2,
        "risk": 2,
        "error": 2,
        "start": 2,
        "halt": 1,
        "stop": 1,
        "reconcile": 1,
        "discrepancy": 1,
    }
    assert s["decisions"] == {
        "count": 6,
        "actions": {"trade": 3, "hold": 2, "refused": 1},
        "redone": 2,
        "journalled_more_than_once": 1,
    }
    assert s["sessions"]["count"] == 2
    assert [t["state"] for t in s["stage_transitions"]["first"]] == [
        "candidate",
        "confirmed",
        "confirmed",
        "failed",
    ]
    assert [t["stage"] for t in s["stage_transitions"]["first"]] == [0, 1, 2, 0]
    assert s["stage_transitions"]["first"][1]["decision_id"] == D2
    assert s["halts"]["by_rule"] == {"drawdown": 1}
    assert s["risk_clamps"]["by_rule"] == {
        "asset_cap": {"count": 1, "assets": {"ETH": 1}},
        "stage_cap": {"count": 1, "assets": {"-": 1}},
    }
    assert s["orders"]["by_status"] == {"closed": {"buy": 2}, "error": {"sell": 1}}
    assert s["fills"]["count"] == 2
    assert s["fills"]["notional"] == pytest.approx(0.5 * 33010.0 + 15.0 * 1001.0)
    assert s["fills"]["fees"] == pytest.approx(31.5)
    assert s["errors"]["by_type"] == {"RuntimeError": 1}
    assert s["errors"]["retries"]["by_type"] == {"TimeoutError": 1}
    assert s["reconcile"] == {"count": 1, "ok": 1, "failed": 0}
    assert s["discrepancies"]["by_kind"] == {"order": 1}
    assert s["first_ts"] == "2021-01-04T00:00:00.000000Z"
    assert s["last_ts"] == "2021-01-08T00:00:00.000000Z"


def test_summary_fast_path_equals_parsing_every_line(journal_file: Path):
    fast = summarize(journal_file, pytest.fail)
    strict = summarize(journal_file, pytest.fail, strict=True)
    assert fast == strict


@pytest.fixture(scope="module")
def run_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short `spillover run` on the sample data: a breakout, trades, clamps."""
    folder = tmp_path_factory.mktemp("logs-run")
    write_sample(folder / "sample", 7)
    config = Config(data=DataConfig(source="replay", dir=folder / "sample"))
    start, end = pd.Timestamp("2016-11-01"), pd.Timestamp("2017-01-20")
    run = run_backtest(config, folder / "run", start=start, end=end, mode="run")
    return run.files.journal


def test_summary_of_a_real_run_counts_what_the_records_say(run_journal: Path):
    records = list(read_journal(run_journal))
    result = invoke("summary", str(run_journal), "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["events"] == dict(Counter(r["event"] for r in records))
    decisions = [r for r in records if r["event"] == "decision"]
    assert s["decisions"]["actions"] == dict(Counter(r["action"] for r in decisions))
    fills = [r for r in records if r["event"] == "fill"]
    assert s["fills"]["count"] == len(fills) > 0
    assert s["fills"]["notional"] == pytest.approx(sum(f["amount"] * f["price"] for f in fills))
    assert s["fills"]["fees"] == pytest.approx(sum(f["fee"] for f in fills))
    clamps = Counter(r["rule"] for r in records if r["event"] == "risk")
    assert {rule: v["count"] for rule, v in s["risk_clamps"]["by_rule"].items()} == clamps
    states = [
        (r["targets"]["stage"], r["breakout"]["state"])
        for r in decisions
        if r["targets"] is not None
    ]
    changes = [b for a, b in zip([None, *states], states, strict=False) if a != b]
    assert [(t["stage"], t["state"]) for t in s["stage_transitions"]["first"]] == changes
    assert "confirmed" in {state for _, state in changes}
    assert len(changes) > 2
    assert summarize(run_journal, pytest.fail) == summarize(run_journal, pytest.fail, strict=True)


def test_summary_prints_tables_for_people(journal_file: Path):
    result = invoke("summary", str(journal_file))
    assert result.exit_code == 0, result.output
    for text in ("decision", "asset_cap", "stage transitions", "retries: 1", "drawdown"):
        assert text in result.stdout


# show


def shown(*args: str) -> list[dict]:
    result = invoke("show", *args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_show_json_lines_are_the_records_as_written(journal_file: Path):
    result = invoke("show", str(journal_file), "--json")
    assert result.exit_code == 0
    assert result.stdout_bytes.splitlines(keepends=True) == raw_lines(journal_file)


def test_show_filters_by_event_asset_rule_and_decision(journal_file: Path):
    path = str(journal_file)
    assert [r["trade_id"] for r in shown(path, "--event", "fill")] == ["t-1", "t-2"]
    assert Counter(r["event"] for r in shown(path, "--event", "fill", "--event", "order")) == {
        "fill": 2,
        "order": 3,
    }
    eth = shown(path, "--asset", "eth")
    assert [(r["event"], r.get("decision_id")) for r in eth] == [
        ("decision", D2),  # its orders and clamps name ETH
        ("risk", D2),
        ("order", D2),
        ("fill", D2),
    ]
    assert [r["event"] for r in shown(path, "--event", "fill", "--asset", "ETH")] == ["fill"]
    assert [(r["event"], r.get("asset")) for r in shown(path, "--rule", "stage_cap")] == [
        ("decision", None),
        ("risk", None),
    ]
    assert [r["event"] for r in shown(path, "--rule", "drawdown")] == ["halt"]
    ids = {r["decision_id"] for r in shown(path, "--decision", D4)}
    assert ids == {D4}  # not the client ids D4-0 in other records' fields
    assert Counter(r["event"] for r in shown(path, "--decision", D4)) == {
        "decision": 2,
        "order": 1,
    }


def test_show_filters_by_time_and_limits(journal_file: Path):
    path = str(journal_file)
    day = shown(path, "--since", "2021-01-05", "--until", "2021-01-05")
    assert {r["ts"][:10] for r in day} == {"2021-01-05"}
    assert len(day) == 7
    later = shown(path, "--since", "2021-01-07T00:00:00Z")
    assert min(r["ts"] for r in later) == "2021-01-07T00:00:00.000000Z"
    assert len(later) == 8
    until = shown(path, "--until", "2021-01-04T00:00:00")  # an instant: kept, inclusive
    assert len(until) == 3
    assert len(shown(path, "--limit", "4")) == 4
    bad = invoke("show", path, "--since", "last tuesday")
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1


def test_show_a_misspelled_event_or_rule_is_one_line_and_exit_2(journal_file: Path):
    events = "start, stop, decision, order, fill, risk, halt, error, reconcile, discrepancy"
    result = invoke("show", str(journal_file), "--event", "fill", "--event", "flil")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: --event flil: not a journal event; known: {events}, config_change, journal_repair"
    ]
    rule = invoke("show", str(journal_file), "--rule", "stagecap")
    assert rule.exit_code == 2
    assert rule.stderr.startswith("error: --rule stagecap: not a risk rule; known: asset_cap, ")
    assert len(rule.stderr.strip().splitlines()) == 1
    unread = invoke("show", str(journal_file.parent / "nope"), "--event", "flil")
    assert unread.stderr.startswith("error: --event flil: ")  # checked before the journal


def test_show_table_names_what_happened(journal_file: Path):
    result = invoke("show", str(journal_file), "--event", "fill")
    assert result.exit_code == 0, result.output
    assert f"{D2}-0" in result.stdout
    assert "t-2" in result.stdout
    empty = invoke("show", str(journal_file), "--asset", "DOGE")
    assert empty.exit_code == 0
    assert "no matching records" in empty.stderr


# explain


def test_explain_names_the_evidence_clamps_orders_and_fills(journal_file: Path):
    result = invoke("explain", str(journal_file), D2)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "TRADE" in text
    assert "CONFIRMED" in text
    assert "close 212.5 is above the level 205.25" in text
    assert "1.84x its median: a counted day" in text
    assert "confirmed 2020-12-31" in text
    assert "day 4 of the lag window" in text
    assert "Stage 1" in text
    assert "ETH: target 15.0% of equity" in text
    assert "below its trend: stands aside" in text
    assert "asset_cap on ETH: wanted 0.2, allowed 0.15 fraction: ETH capped" in text
    assert "stage_cap on all assets: wanted 0.4, allowed 0.35" in text
    for cid, venue in ((f"{D2}-0", "v-1"), (f"{D2}-1", "v-2")):
        assert f"client id {cid}" in text
        assert f"venue id {venue}" in text
    assert "trade t-1" in text
    assert "trade t-2" in text
    assert "fee 16.5" in text
    assert "Fills (2," in text


def test_explain_says_a_decision_was_redone_and_journalled_twice(journal_file: Path):
    result = invoke("explain", str(journal_file), D4)
    assert result.exit_code == 0, result.output
    assert "Journalled 2 times" in result.stdout
    assert "Redone after a crash" in result.stdout
    assert "error" in result.stdout
    assert "insufficient funds" in result.stdout
    assert "Fills: none" in result.stdout
    plain = invoke("explain", str(journal_file), D1)
    assert "Redone" not in plain.stdout
    assert "Journalled" not in plain.stdout
    refused = invoke("explain", str(journal_file), D3)
    assert "not evaluated" in refused.stdout
    assert "market data unavailable" in refused.stdout


def test_explain_an_unknown_decision_is_one_line_and_exit_2(journal_file: Path):
    result = invoke("explain", str(journal_file), f"{D2}-0")  # a client id, not a decision
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: no decision {D2}-0 in {journal_file}"]
    missing = invoke("summary", str(journal_file.parent / "nope"))
    assert missing.exit_code == 2
    assert len(missing.stderr.strip().splitlines()) == 1


def test_explain_a_real_trade(run_journal: Path):
    records = list(read_journal(run_journal))
    trade = next(r for r in records if r["event"] == "decision" and r["action"] == "trade")
    result = invoke("explain", str(run_journal), trade["decision_id"])
    assert result.exit_code == 0, result.output
    for placed in trade["orders"]:
        assert f"client id {placed['client_order_id']}" in result.stdout
    fills = [
        r for r in records if r["event"] == "fill" and r["decision_id"] == trade["decision_id"]
    ]
    for f in fills:
        assert f"trade {f['trade_id']}" in result.stdout


# bad lines


@pytest.fixture
def damaged(journal_file: Path) -> Path:
    lines = raw_lines(journal_file)
    lines.insert(5, b'{"ts": "2021-01-04T00:00:00.000000Z", "event": "fill", oops}\n')
    lines.append(b'{"ts": "2021-01-09T00:00:00.000000Z", "run_id": "ru-test", "event": "deci')
    journal_file.write_bytes(b"".join(lines))
    return journal_file


@pytest.mark.parametrize(
    "command",
    [["summary"], ["summary", "--strict"], ["show"], ["show", "--json"], ["tail", "-n", "50"]],
)
def test_a_torn_last_line_and_an_invalid_middle_line_are_reported_and_skipped(damaged, command):
    result = invoke(command[0], str(damaged), *command[1:])
    assert result.exit_code == 0, result.output
    problems = result.stderr.strip().splitlines()
    assert len(problems) == 2
    assert f"{damaged}: line 6 skipped: invalid JSON" in problems[0]
    assert f"{damaged}: line 23 skipped: torn" in problems[1]
    if command[:2] == ["show", "--json"]:
        assert len(result.stdout.splitlines()) == 21


def test_summary_counts_skip_the_bad_lines(damaged: Path):
    s = json.loads(invoke("summary", str(damaged), "--json").stdout)
    assert (s["lines"], s["records"], s["invalid_lines"]) == (23, 21, 2)
    assert s["fills"]["count"] == 2


# tail


def test_tail_prints_the_last_records_one_line_each(journal_file: Path):
    result = invoke("tail", str(journal_file), "-n", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "order" in lines[0]
    assert f"client id {D4}-0" in lines[0]
    assert "RuntimeError in place_order" in lines[1]
    assert lines[2].startswith("2021-01-08T00:00:00.000000Z  decision")
    assert D5 in lines[2]


def test_tail_follow_prints_records_appended_after_it_started(journal_file: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "logs", "tail", "-f", "-n", "1", str(journal_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()

    def next_line() -> str:
        return lines.get(timeout=20)

    try:
        assert D5 in next_line()
        later = T0 + timedelta(days=9)
        with Journal(journal_file, RUN) as j:
            j.write("halt", later, rule="error_budget", reason="5 venue errors in a row")
        assert "halt" in next_line()
        # a record written in two pieces, as a reader can see it mid-write
        stop = {"ts": "2021-01-14T00:00:00.000000Z", "run_id": RUN, "event": "stop"}
        line = json.dumps(stop | {"reason": "done"})
        with open(journal_file, "ab") as out:
            out.write(line[:30].encode())
            out.flush()
            time.sleep(0.6)
            out.write(line[30:].encode() + b"\n")
        assert "stop: done" in next_line()
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=20)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert "skipped" not in errors


@pytest.mark.parametrize("jobs", [2, 3, 5, 7])
def test_summary_read_in_parts_equals_one_pass_and_numbers_bad_lines_alike(
    damaged: Path, run_journal: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
):
    from agent.logs import summary as module

    serial_bad: list[int] = []
    serial = summarize(damaged, lambda n, _why: serial_bad.append(n), jobs=1)
    real = summarize(run_journal, pytest.fail, jobs=1)
    monkeypatch.setattr(module, "PARALLEL_BYTES", 0)  # cut even a small journal into parts
    parts_bad: list[int] = []
    assert summarize(damaged, lambda n, _why: parts_bad.append(n), jobs=jobs) == serial
    assert parts_bad == serial_bad == [6, 23]
    assert summarize(run_journal, pytest.fail, jobs=jobs) == real  # the sums to the last bit


# summary, a block of lines at a time


def summarized(path: Path, **options) -> tuple[dict, list[int]]:
    """The summary, and the numbers of the lines it reported, in the order reported."""
    bad: list[int] = []
    return summarize(path, lambda n, _why: bad.append(n), **options), bad


def ordinary(j: Journal, first: int, days: int) -> None:
    """`days` ticks as the loop writes them: a decision, an order, its fill and a clamp each."""
    states = ["neutral", "candidate", "candidate", "confirmed", "confirmed", "failed", "neutral"]
    for n in range(first, first + days):
        t = T0 + timedelta(days=n)
        state = states[n % len(states)]
        stage = 0 if state in ("neutral", "failed") else 1 + n % 3
        decision_id = f"{RUN}-{n:04d}"
        decide(j, t, decision_id, "trade" if n % 3 else "hold", state=state, stage=stage)
        cid = order(j, t, decision_id, 0, BUY_BTC | {"side": "sell" if n % 2 else "buy"})
        fill(j, t, decision_id, cid, f"t-{n}", BUY_BTC, 33000.0 + n / 7, 0.1 * n / 3)
        j.write("risk", t, decision_id=decision_id, **(CLAMP_ETH if n % 2 else CLAMP_STAGE))


T_ODD = T0 + timedelta(days=5, hours=12)
NUMBERS = {"wanted": 1.0, "allowed": 0.0, "reason": "stale"}
D_ODD = f"{RUN}-odd0"  # the ordinary ids' length


def order_with(j: Journal, **fields) -> None:
    head = {"decision_id": D_ODD, "client_order_id": f"{D_ODD}-0", "asset": "ETH", "side": "buy"}
    j.write("order", T_ODD, **(head | fields))


def raw(j: Journal, line: bytes) -> None:
    """A line the journal's writer would not write, appended after its last record."""
    with open(j.path, "ab") as out:
        out.write(line)


ODDITIES = {
    "an id of another length": lambda j: decide(j, T_ODD, "x-1", "hold", state="confirmed"),
    "an id with an escape, as long as the others": lambda j: decide(
        j, T_ODD, f"{RUN}-od\\0", "hold", state="expired"
    ),
    "a null session date, a reason with quotes": lambda j: decide(
        j, T_ODD, D_ODD, "hold", asof=None, reason='a "quoted" reason, a \\ backslash'
    ),
    "a long reason": lambda j: decide(j, T_ODD, D_ODD, "hold", reason="x; " * 80),
    "no signal read": lambda j: decide(j, T_ODD, D_ODD, "refused", signal_read=False),
    "no breakout, targets": lambda j: decide(
        j, T_ODD, D_ODD, "refused", breakout=None, targets=targets(3, 0.1, 0.1)
    ),
    "a breakout, no targets": lambda j: decide(
        j, T_ODD, D_ODD, "refused", breakout=evidence(T_ODD, "expired"), targets=None
    ),
    "a breakout without a date": lambda j: decide(
        j, T_ODD, D_ODD, "hold", breakout=evidence(T_ODD, "expired") | {"date": None}
    ),
    "fields out of the loop's order": lambda j: j.write(
        "decision",
        T_ODD,
        decision_id=D_ODD,
        action="trade",
        asof="2021-01-09",
        reason="reordered",
        breakout=evidence(T_ODD, "expired"),
        targets=targets(0, 0.0, 0.0),
        clamps=[],
        orders=[],
    ),
    "redone, journalled twice": lambda j: decide(
        j, T_ODD, f"{RUN}-0002", "hold", state="failed", redone=True
    ),
    "a nested status before the order's own": lambda j: order_with(
        j, amount=1.0, info={"state": "x", "status": "open"}, status="closed"
    ),
    "an order's status far from its side": lambda j: order_with(
        j, amount=1.0, note="x" * 300, status="closed"
    ),
    "an order without a decision, a quoted error": lambda j: order_with(
        j, decision_id=None, amount=2.0, status="error", error='venue said "no"'
    ),
    "awkward numbers": lambda j: [
        fill(j, T_ODD, D_ODD, "c-1", "t-x", BUY_ETH, 0.30000000000000004, 2.5e-05),
        fill(j, T_ODD, D_ODD, "c-1", "t-y", BUY_ETH | {"amount": 1e-05}, 1e22, -0.0),
        fill(j, T_ODD, D_ODD, "c-1", "t-z", BUY_ETH | {"side": "sell"}, 12345.678901234567, 1),
    ],
    "a null fee": lambda j: fill(j, T_ODD, D_ODD, "c-1", "t-n", BUY_ETH, 1234.5678, None),
    "null and empty assets": lambda j: [
        j.write("risk", T_ODD, decision_id=None, rule="stale", asset=None, **NUMBERS),
        j.write("risk", T_ODD, decision_id=D_ODD, rule="stale", asset="", **NUMBERS),
    ],
    "a head and a body that name different events": lambda j: raw(
        j,
        b'{"ts": "2021-01-09T12:00:00.000000Z", "run_id": "ru-test", "event": "stop", '
        b'"reason": "-", "event": "decision", "decision_id": "ru-test-dup", "asof": null, '
        b'"action": "hold", "breakout": {"state": "expired"}, "targets": {"stage": 4}}\n',
    ),
    "errors": lambda j: [
        j.error(T_ODD, TimeoutError("slow"), call="markets", attempt=2, retrying=True),
        j.error(T_ODD, RuntimeError("down"), call="place_order"),
    ],
}


@pytest.fixture(params=sorted(ODDITIES))
def oddity(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Ordinary ticks with one oddity among them: records each reader must take apart, or
    hand on to the next, exactly."""
    path = tmp_path / "oddity.jsonl"
    with Journal(path, RUN) as j:
        j.write("start", T0, config_hash="b" * 64, mode="testnet", version="0.1.0")
        ordinary(j, 0, 6)
        ODDITIES[request.param](j)
        ordinary(j, 6, 6)
    return path


@pytest.mark.parametrize("block", [700, 1 << 20])
def test_summary_of_an_oddity_among_ordinary_records_equals_parsing_every_line(
    oddity: Path, block: int
):
    assert summarized(oddity, block=block) == summarized(oddity, strict=True)


@pytest.fixture
def variants(tmp_path: Path) -> Path:
    """All the oddities in one journal, and another run's records after them."""
    path = tmp_path / "variants.jsonl"
    with Journal(path, RUN) as j:
        j.write("start", T0, config_hash="b" * 64, mode="testnet", version="0.1.0")
        ordinary(j, 0, 6)
        for write in ODDITIES.values():
            write(j)
        ordinary(j, 6, 30)
    with Journal(path, "ru-other") as j:
        decide(j, T0 + timedelta(days=41), "ru-other-1", "hold", state="candidate", stage=0)
        j.write("stop", T0 + timedelta(days=41), reason="done")
    return path


BLOCKS = [64, 700, 2000, 5000, 1 << 20]


@pytest.mark.parametrize("block", BLOCKS)
def test_summary_in_blocks_equals_parsing_every_line(
    variants: Path, damaged: Path, run_journal: Path, block: int
):
    for path in (variants, damaged, run_journal):
        assert summarized(path, block=block) == summarized(path, strict=True), path.name
    s, bad = summarized(damaged, block=block)
    assert bad == [6, 23]
    assert s["stage_transitions"]["count"] == 4


def test_summary_of_the_variants_counts_what_the_records_say(variants: Path):
    records = list(read_journal(variants))
    s, bad = summarized(variants)
    assert bad == []
    assert s["events"] == dict(Counter(r["event"] for r in records))
    assert s["run_ids"] == {RUN: len(records) - 2, "ru-other": 2}
    assert s["orders"]["by_status"] == {"closed": {"buy": 20, "sell": 18}, "error": {"buy": 1}}
    assert s["risk_clamps"]["by_rule"]["stale"] == {"count": 2, "assets": {"-": 2}}
    assert s["decisions"]["journalled_more_than_once"] == 2  # the oddities' id, and the redone
    assert s["decisions"]["redone"] == 1
    fills = [r for r in records if r["event"] == "fill"]
    fees = [f["fee"] for f in fills if f["fee"] is not None and f["side"] == "buy"]
    assert s["fills"]["by_side"]["buy"]["fees"] == math.fsum(fees)
    assert s["last_ts"] == "2021-02-14T00:00:00.000000Z"


def test_a_bad_line_at_a_block_edge_is_numbered_as_in_one_pass(journal_file: Path):
    lines = raw_lines(journal_file)
    bad = b'{"ts": "2021-01-05T00:00:00.000000Z", "run_id": "ru-test", "event": "order"}x\n'
    lines.insert(9, bad)
    journal_file.write_bytes(b"".join(lines))
    at = len(b"".join(lines[:9]))
    expected = summarized(journal_file, strict=True)
    assert expected[1] == [10]
    for block in (at, at + 5, at + len(bad), at + len(bad) + 1):  # before, in, after it
        assert summarized(journal_file, block=block) == expected, block


def test_a_torn_last_line_without_a_newline_is_reported_at_any_block_size(journal_file: Path):
    with open(journal_file, "ab") as out:
        out.write(b'{"ts": "2021-01-09T00:00:00.000000Z", "run_id": "ru-test", "event": "fill"')
    size = journal_file.stat().st_size
    for block in (64, size - 10, size - 1, size, size + 1):
        s, bad = summarized(journal_file, block=block)
        assert bad == [22], block
        assert s["fills"]["count"] == 2


def test_an_ordinary_journal_is_read_by_the_column_readers_alone(
    run_journal: Path, monkeypatch: pytest.MonkeyPatch
):
    """Neither line by line nor by regular expression: the fast path is the one taken."""
    from agent.logs import scan

    def not_here(*_args):
        pytest.fail("a line of an ordinary journal was read one at a time")

    monkeypatch.setattr(scan._Lines, "add", not_here)
    monkeypatch.setattr(scan, "_PATTERNS", {})  # a regular expression: KeyError
    kinds: Counter[str] = Counter()
    for name, read in list(scan._VECTOR.items()):

        def counted(cursor, read=read, name=name):
            fields = read(cursor)
            kinds[name.decode()] += fields is not None
            return fields

        monkeypatch.setitem(scan._VECTOR, name, counted)
    s = summarize(run_journal, pytest.fail, block=4096)
    assert set(kinds) == {"decision", "order", "fill", "risk"}
    assert s["events"]["decision"] > 50


# the README's examples


def readme_examples(heading: str) -> list[str]:
    """The commands of the first code block under `heading` in the README, comments cut."""
    text = (ROOT / "README.md").read_text().split(f"\n{heading}\n", 1)[1]
    block = text.split("```", 2)[1].split("\n", 1)[1]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_examples_of_reviewing_decisions_work_as_written(run_journal: Path):
    """Run on a run folder of the sample data in place of runs/sim and runs/testnet-binance
    (tests/test_readme.py runs each README command alone in an empty folder: no run to read)."""
    examples = readme_examples("## Reviewing decisions")
    assert len(examples) == 5
    folder = str(run_journal.parent)
    records = list(read_journal(run_journal))
    trade = next(r for r in records if r["event"] == "decision" and r["action"] == "trade")
    for example in examples:
        command, _, pipe = example.partition(" | ")
        command = command.replace("runs/sim", folder).replace("runs/testnet-binance", folder)
        argv = shlex.split(command.replace("DECISION_ID", trade["decision_id"]))
        assert argv[:2] == ["spillover", "logs"], example
        if "-f" in argv:  # follows until Ctrl-C: started, read, interrupted
            process = subprocess.Popen(
                [sys.executable, "-m", "agent", *argv[1:]],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            first = process.stdout.readline()
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=20)
            assert process.returncode == 0, errors
            assert first.startswith(records[-10]["ts"]), first
            continue
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, (example, result.output)
        assert result.stdout.strip(), example  # something to show in the sample's run
        assert result.stderr == "", example
        if pipe and shutil.which("jq"):
            jq = subprocess.run(
                shlex.split(pipe), input=result.stdout, capture_output=True, text=True, check=True
            )
            assert len(jq.stdout.splitlines()) == len(result.stdout.splitlines())
