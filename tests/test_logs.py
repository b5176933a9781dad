"""`spillover logs`: summary, show, explain and tail over journals written by the real Journal."""

import json
import os
import queue
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


def rounded(summary: dict) -> dict:
    """Sums of floats added in another order differ in the last bits."""
    return json.loads(json.dumps(summary), parse_float=lambda text: round(float(text), 6))


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
    assert rounded(summarize(damaged, lambda n, _why: parts_bad.append(n), jobs=jobs)) == (
        rounded(serial)
    )
    assert parts_bad == serial_bad == [6, 23]
    assert rounded(summarize(run_journal, pytest.fail, jobs=jobs)) == rounded(real)
