import dataclasses
import enum
import json
import os
import re
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import structlog
from structlog.testing import capture_logs

from risk.journal import EVENTS, Journal, JournalRepair, read_journal

TS = datetime(2021, 1, 4, 21, 0, tzinfo=UTC)
SECRET = "sk-live-0123456789abcdef"

SAMPLES = {
    "start": {"config_hash": "abc123", "mode": "sim", "version": "0.1.0"},
    "stop": {"reason": "end of data"},
    "decision": {
        "decision_id": "d-1",
        "asof": date(2021, 1, 4),
        "action": "trade",
        "reason": "IWM breakout confirmed; stage 1 buys BTC",
        "breakout": {"state": "confirmed", "close": 105.0, "level": 104.0},
        "targets": {"BTC": 0.1},
        "clamps": [{"rule": "max_asset", "asset": "BTC", "wanted": 0.2, "allowed": 0.1}],
        "orders": [{"client_order_id": "o-1", "asset": "BTC", "side": "buy", "amount": 0.01}],
    },
    "order": {
        "decision_id": "d-1",
        "client_order_id": "o-1",
        "asset": "BTC",
        "side": "buy",
        "amount": 0.01,
        "status": "open",
    },
    "fill": {
        "decision_id": "d-1",
        "client_order_id": "o-1",
        "trade_id": "t-1",
        "asset": "BTC",
        "side": "buy",
        "amount": 0.01,
        "price": 33000.0,
        "fee": 0.33,
    },
    "risk": {
        "decision_id": "d-1",
        "rule": "max_asset",
        "asset": "BTC",
        "wanted": 0.2,
        "allowed": 0.1,
        "reason": "BTC capped at 10%",
    },
    "halt": {"rule": "drawdown", "reason": "drawdown 21% > 20%"},
    "error": {"error": "RuntimeError", "message": "venue down"},
    "reconcile": {"decision_id": "d-2-reconcile", "ok": True, "reason": "1 discrepancies"},
    "discrepancy": {
        "decision_id": "d-2-reconcile",
        "kind": "balance",
        "key": "BTC",
        "store": 0.5,
        "venue": 0.6,
        "action": "used the venue's",
    },
    "config_change": {"old_hash": "abc123", "new_hash": "def456"},
    "journal_repair": {
        "torn_bytes": 12,
        "set_aside": "j.jsonl.torn-20210104T210000000000Z",
        "after_line": 3,
        "preview": '{"ts": "2021',
    },
}


def strict_lines(path):
    """Every line, parsed by a JSON parser that refuses NaN/Infinity."""

    def refuse(name):
        raise ValueError(f"non-standard constant {name}")

    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def raise_with_local_secret():
    password_local = "hunter2-secret"
    try:
        {}[password_local[:0]]
    except KeyError as exc:
        raise RuntimeError(f"login failed with key {SECRET}") from exc


class Side(enum.Enum):
    BUY = "buy"


@dataclasses.dataclass
class Clamp:
    rule: str
    wanted: float


def test_samples_cover_every_event():
    assert set(SAMPLES) == set(EVENTS)
    for event, fields in SAMPLES.items():
        assert set(EVENTS[event]) <= set(fields)


def test_one_record_per_event_when_read_strictly_then_each_has_head_and_required_fields(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, "run-1") as journal:
        for event, fields in SAMPLES.items():
            journal.write(event, TS, **fields)
    records = strict_lines(path)
    assert [r["event"] for r in records] == list(SAMPLES)
    for record in records:
        assert list(record)[:3] == ["ts", "run_id", "event"]
        assert record["ts"] == "2021-01-04T21:00:00.000000Z"
        assert record["run_id"] == "run-1"
        assert set(EVENTS[record["event"]]) <= set(record)
    assert list(read_journal(path)) == records


def test_write_returns_the_record_as_written(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        returned = journal.write("decision", TS, **SAMPLES["decision"], extra={"nan": float("nan")})
    (line,) = strict_lines(path)
    assert returned == line
    assert list(returned) == list(line)
    assert returned["asof"] == "2021-01-04"


def test_write_when_field_missing_then_raises_naming_field(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1") as journal:
        fields = dict(SAMPLES["fill"])
        del fields["price"], fields["fee"]
        with pytest.raises(ValueError, match=r"'fill'.*price, fee"):
            journal.write("fill", TS, **fields)
    assert (tmp_path / "j.jsonl").read_text() == ""


def test_write_when_field_is_none_then_it_counts_as_present(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1") as journal:
        record = journal.write("decision", TS, **(SAMPLES["decision"] | {"breakout": None}))
    assert record["breakout"] is None


def test_write_when_event_unknown_then_raises_naming_event(tmp_path):
    with (
        Journal(tmp_path / "j.jsonl", "run-1") as journal,
        pytest.raises(ValueError, match="bogus"),
    ):
        journal.write("bogus", TS, reason="x")


def test_write_when_decision_action_unknown_then_raises(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1") as journal, pytest.raises(ValueError, match="buy"):
        journal.write("decision", TS, **(SAMPLES["decision"] | {"action": "buy"}))


def test_write_when_run_id_passed_as_field_then_raises(tmp_path):
    with (
        Journal(tmp_path / "j.jsonl", "run-1") as journal,
        pytest.raises(ValueError, match="run_id"),
    ):
        journal.write("stop", TS, reason="x", run_id="other")


def test_write_when_ts_naive_then_raises(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1") as journal:
        with pytest.raises(ValueError, match="timezone-aware"):
            journal.write("stop", datetime(2021, 1, 4, 21, 0), reason="x")
        with pytest.raises(TypeError, match="datetime"):
            journal.write("stop", date(2021, 1, 4), reason="x")
        with pytest.raises(TypeError, match="datetime"):
            journal.write("stop", "2021-01-04T21:00:00Z", reason="x")


def test_write_when_ts_not_utc_then_rendered_in_utc(tmp_path):
    new_york = timezone(timedelta(hours=-5))
    with Journal(tmp_path / "j.jsonl", "run-1") as journal:
        first = journal.write("stop", datetime(2021, 1, 4, 16, 0, 0, 123456, new_york), reason="x")
        second = journal.write(
            "stop", pd.Timestamp("2021-07-01 09:30", tz="America/New_York"), reason="x"
        )
    assert first["ts"] == "2021-01-04T21:00:00.123456Z"
    assert second["ts"] == "2021-07-01T13:30:00.000000Z"


def test_write_when_values_are_not_json_then_converted_to_plain_json(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        journal.write(
            "stop",
            TS,
            reason="x",
            nan=float("nan"),
            inf=np.float64("inf"),
            nested={"a": [1.0, float("-inf")], "b": (np.int64(3), np.float32(0.5), np.bool_(True))},
            side=Side.BUY,
            clamp=Clamp("max_asset", float("nan")),
            assets={"ETH", "BTC"},
            bar_time=pd.Timestamp("2021-01-04 16:00", tz="America/New_York"),
            session=pd.Timestamp("2021-01-04"),
            missing=pd.NaT,
            day=date(2021, 1, 4),
            weights=np.array([0.25, np.nan]),
            by_day={date(2021, 1, 4): 1, 2: "two"},
        )
    (record,) = strict_lines(path)
    assert record["nan"] is None
    assert record["inf"] is None
    assert record["nested"] == {"a": [1.0, None], "b": [3, 0.5, True]}
    assert record["side"] == "buy"
    assert record["clamp"] == {"rule": "max_asset", "wanted": None}
    assert record["assets"] == ["BTC", "ETH"]
    assert record["bar_time"] == "2021-01-04T21:00:00.000000Z"
    assert record["session"] == "2021-01-04T00:00:00"
    assert record["missing"] is None
    assert record["day"] == "2021-01-04"
    assert record["weights"] == [0.25, None]
    assert record["by_day"] == {"2021-01-04": 1, "2": "two"}


def test_known_secret_never_reaches_the_file(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1", secrets=[SECRET, "", "short"]) as journal:
        journal.write(
            "stop",
            TS,
            reason=f"key {SECRET} revoked",
            context={"deep": [{"note": f"prefix{SECRET}suffix"}], SECRET: "as a key"},
        )
        try:
            raise_with_local_secret()
        except RuntimeError as exc:
            record = journal.error(TS, exc, context={"url": f"https://x/?k={SECRET}"})
    text = path.read_text()
    assert SECRET not in text
    assert "prefix***suffix" in text
    assert record["message"] == "login failed with key ***"
    assert record["exception"][0]["exc_value"] == "login failed with key ***"


def test_short_or_empty_secrets_are_ignored(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1", secrets=["", "abc"]) as journal:
        record = journal.write("stop", TS, reason="abc is a word")
    assert record["reason"] == "abc is a word"


def test_secret_looking_keys_are_redacted_at_any_depth(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        record = journal.write(
            "stop",
            TS,
            reason="x",
            api_key="k1",
            exchange={
                "apiKey": "k2",
                "headers": [{"X-MBX-APIKEY": "k3", "Authorization": "Bearer k4"}],
                "creds": {"Secret": "k5", "PASSWORD": "k6", "passphrase": "k7"},
                "access_token": {"nested": "k8"},
                "private_key": "k9",
                "signature": "k10",
                "symbol": "BTC/USDT",
            },
        )
    text = path.read_text()
    for value in ("k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10"):
        assert f'{value}"' not in text
    assert record["api_key"] == "***"
    assert record["exchange"]["headers"][0] == {"X-MBX-APIKEY": "***", "Authorization": "***"}
    assert record["exchange"]["access_token"] == "***"
    assert record["exchange"]["symbol"] == "BTC/USDT"


def test_error_from_raised_exception_has_frames_but_no_locals(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        try:
            raise_with_local_secret()
        except RuntimeError as exc:
            journal.error(TS, exc, decision_id="d-1")
    (record,) = strict_lines(path)
    assert record["event"] == "error"
    assert record["error"] == "RuntimeError"
    assert record["decision_id"] == "d-1"
    assert "hunter2-secret" not in path.read_text()
    stacks = record["exception"]
    assert [s["exc_type"] for s in stacks] == ["RuntimeError", "KeyError"]
    assert [s["is_cause"] for s in stacks] == [False, True]
    names = [f["name"] for s in stacks for f in s["frames"]]
    assert "test_error_from_raised_exception_has_frames_but_no_locals" in names
    assert "raise_with_local_secret" in names
    assert all(set(f) == {"filename", "lineno", "name"} for s in stacks for f in s["frames"])


def test_error_from_exception_never_raised_has_no_frames(tmp_path):
    with Journal(tmp_path / "j.jsonl", "run-1") as journal:
        record = journal.error(TS, ValueError("bad bar"))
    assert record["message"] == "bad bar"
    assert record["exception"][0]["frames"] == []


def test_error_when_fields_clash_with_exception_then_raises(tmp_path):
    with (
        Journal(tmp_path / "j.jsonl", "run-1") as journal,
        pytest.raises(ValueError, match="message"),
    ):
        journal.error(TS, ValueError("x"), message="other")


def test_two_journals_in_one_process_write_their_own_files(tmp_path):
    a_path, b_path = tmp_path / "a" / "j.jsonl", tmp_path / "b" / "nested" / "j.jsonl"
    with Journal(a_path, "run-a", secrets=["secret-of-a"]) as a, Journal(b_path, "run-b") as b:
        a.write("stop", TS, reason="a1")
        b.write("stop", TS, reason="b1 secret-of-a")
        a.write("halt", TS, rule="r", reason="a2")
    assert [(r["run_id"], r["reason"]) for r in strict_lines(a_path)] == [
        ("run-a", "a1"),
        ("run-a", "a2"),
    ]
    assert [(r["run_id"], r["reason"]) for r in strict_lines(b_path)] == [
        ("run-b", "b1 secret-of-a")
    ]


def test_journal_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        journal.write("start", TS, **SAMPLES["start"])
    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="done")
    assert [r["event"] for r in strict_lines(path)] == ["start", "stop"]


def test_records_written_with_fsync_are_complete_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, "run-1", fsync=True)
    journal.write("start", TS, **SAMPLES["start"])
    journal.write("stop", TS, reason="done")
    # Read before close(): each record is on disk as soon as write() returns.
    assert [r["event"] for r in strict_lines(path)] == ["start", "stop"]
    journal.close()


def test_write_after_close_then_raises(tmp_path):
    journal = Journal(tmp_path / "j.jsonl", "run-1")
    journal.close()
    journal.close()
    with pytest.raises(ValueError, match="closed"):
        journal.write("stop", TS, reason="x")


def test_journal_does_not_leak_into_structlog_global_logger(tmp_path):
    path = tmp_path / "j.jsonl"
    with capture_logs() as captured, Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="x")
        structlog.get_logger().info("global", n=1)
    assert [entry["event"] for entry in captured] == ["global"]
    assert [r["reason"] for r in strict_lines(path)] == ["x"]


def test_journal_ignores_global_structlog_configuration(tmp_path):
    path = tmp_path / "j.jsonl"
    saved = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(50),
    )
    try:
        with Journal(path, "run-1") as journal:
            journal.write("stop", TS, reason="x")
    finally:
        structlog.configure(**saved)
    assert [r["reason"] for r in strict_lines(path)] == ["x"]


def test_read_journal_when_line_invalid_then_raises_naming_line(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="x")
    with path.open("a") as f:
        f.write('{"ts": NaN}\n')
    records = read_journal(path)
    assert next(records)["reason"] == "x"
    with pytest.raises(ValueError, match="line 2"):
        next(records)


def test_read_journal_when_line_not_an_object_then_raises_naming_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"event": "stop"}\n[1, 2]\n')
    with pytest.raises(ValueError, match="line 2"):
        list(read_journal(path))


def test_read_journal_when_line_not_utf8_then_raises_naming_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"event": "stop"}\n{"reason": "caf\xc3\n')
    with pytest.raises(ValueError, match="line 2"):
        list(read_journal(path))


def test_read_journal_with_on_invalid_reports_bad_lines_by_number_and_yields_the_rest(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(
        b'{"n": 1}\n{"ts": NaN}\n[1, 2]\n\n{"n": 5}\n{"reason": "caf\xc3\n{"n": 7}\n{"ts": "20'
    )
    invalid = []
    records = list(read_journal(path, on_invalid=lambda n, why: invalid.append((n, why))))
    assert records == [{"n": 1}, {"n": 5}, {"n": 7}]
    assert [n for n, _ in invalid] == [2, 3, 4, 6, 8]
    assert "NaN" in invalid[0][1]
    assert invalid[1][1] == "not a JSON object"


# --- repair of a torn tail on opening ---

TORN = b'{"ts": "2021-01-04T21:00:00.000000Z", "run_id": "run-1", "event": "sto'


def journal_with(path, *reasons):
    """A clean journal of one `stop` record per reason; returns its bytes."""
    with Journal(path, "run-1") as journal:
        for reason in reasons:
            journal.write("stop", TS, reason=reason)
    return path.read_bytes()


def set_aside_files(path):
    return sorted(path.parent.glob(f"{path.name}.torn-*"))


def test_torn_tail_without_newline_is_set_aside_and_cut_off(tmp_path):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a", "b")
    path.write_bytes(clean + TORN)

    journal = Journal(path, "run-1")
    journal.close()

    assert path.read_bytes() == clean
    (aside,) = set_aside_files(path)
    assert re.fullmatch(r"j\.jsonl\.torn-\d{8}T\d{12}Z", aside.name)
    assert aside.read_bytes() == TORN
    assert journal.repair == JournalRepair(
        torn_bytes=len(TORN), set_aside=aside, after_line=2, preview=TORN.decode()
    )


@pytest.mark.parametrize(
    "bad_line",
    [
        TORN + b'{"ts": "2021-01-04T21:00:00.000000Z", "event": "stop"}\n',  # glued to a record
        b'{"ts": NaN, "event": "stop"}\n',
        b"[1, 2]\n",
        b"\n",
    ],
    ids=["glued", "nan", "not-an-object", "empty"],
)
def test_newline_terminated_invalid_last_line_is_set_aside(tmp_path, bad_line):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a", "b")
    path.write_bytes(clean + bad_line)

    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="c")

    (aside,) = set_aside_files(path)
    assert aside.read_bytes() == bad_line
    assert journal.repair.torn_bytes == len(bad_line)
    assert journal.repair.after_line == 2
    assert path.read_bytes().startswith(clean)
    assert [r["event"] for r in strict_lines(path)] == ["stop", "stop", "journal_repair", "stop"]


def test_file_that_is_one_torn_fragment_is_set_aside_whole_and_emptied(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(TORN)

    with Journal(path, "run-1") as journal:
        journal.write("start", TS, **SAMPLES["start"])

    (aside,) = set_aside_files(path)
    assert aside.read_bytes() == TORN
    assert journal.repair.after_line == 0
    assert journal.repair.torn_bytes == len(TORN)
    records = strict_lines(path)
    assert [r["event"] for r in records] == ["journal_repair", "start"]
    assert records[0]["after_line"] == 0


def test_several_invalid_tail_lines_are_set_aside_back_to_the_last_good_line(tmp_path):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a")
    tail = b'{"ts": NaN}\n\n[1]\n' + TORN
    path.write_bytes(clean + tail)

    journal = Journal(path, "run-1")
    journal.close()

    assert path.read_bytes() == clean
    assert set_aside_files(path)[0].read_bytes() == tail
    assert journal.repair.after_line == 1


def test_clean_file_is_left_byte_identical_and_gets_no_repair_record(tmp_path):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a", "b")

    with Journal(path, "run-1") as journal:
        assert journal.repair is None
    assert path.read_bytes() == clean

    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="c")
    assert [r["reason"] for r in strict_lines(path)] == ["a", "b", "c"]
    assert set_aside_files(path) == []


def test_repair_record_comes_first_once_with_the_first_records_ts(tmp_path):
    path = tmp_path / "j.jsonl"
    journal_with(path, "a")
    path.write_bytes(path.read_bytes() + TORN)
    later = TS + timedelta(days=1)

    with Journal(path, "run-1") as journal:
        aside = journal.repair.set_aside
        journal.write("start", later, **SAMPLES["start"])
        journal.write("stop", later, reason="b")

    repair, start, stop = strict_lines(path)[1:]
    assert (repair["event"], start["event"], stop["event"]) == ("journal_repair", "start", "stop")
    assert repair["ts"] == start["ts"] == "2021-01-05T21:00:00.000000Z"
    assert repair["run_id"] == "run-1"
    assert repair["torn_bytes"] == len(TORN)
    assert repair["set_aside"] == aside.name
    assert repair["after_line"] == 1
    assert repair["preview"] == TORN.decode()
    with Journal(path, "run-1") as reopened:
        assert reopened.repair is None


def test_set_aside_file_holds_exact_bytes_and_preview_is_200_replaced_chars(tmp_path):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a")
    torn = b'{"reason": "caf\xc3' + b"x" * 500 + b"\x00\xff"  # cut UTF-8, NULs, no newline
    path.write_bytes(clean + torn)

    journal = Journal(path, "run-1")
    journal.close()

    assert journal.repair.set_aside.read_bytes() == torn
    assert journal.repair.torn_bytes == len(torn)
    assert journal.repair.preview == ('{"reason": "caf\ufffd' + "x" * 500)[:200]


def test_appends_after_repair_give_a_file_whose_every_line_parses(tmp_path):
    path = tmp_path / "j.jsonl"
    journal_with(path, "a", "b")
    path.write_bytes(path.read_bytes() + TORN)

    with Journal(path, "run-1", fsync=True) as journal:
        for event, fields in SAMPLES.items():
            journal.write(event, TS, **fields)

    records = strict_lines(path)
    assert list(read_journal(path)) == records
    assert [r["event"] for r in records] == ["stop", "stop", "journal_repair", *SAMPLES]


def test_large_journal_is_repaired_at_its_tail_only(tmp_path):
    path = tmp_path / "j.jsonl"
    head = {"ts": "2021-01-04T21:00:00.000000Z", "run_id": "run-1", "event": "stop"}
    lines = [json.dumps(head | {"n": n}) for n in range(200_000)]
    lines[4] = '{"ts": NaN}'  # an old bad line mid-file: not the tail, so not the repair's business
    body = ("\n".join(lines) + "\n").encode()
    path.write_bytes(body + TORN)

    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="after")

    assert journal.repair.after_line == 200_000
    assert journal.repair.set_aside.read_bytes() == TORN
    data = path.read_bytes()
    assert data.startswith(body)
    invalid = []
    records = list(read_journal(path, on_invalid=lambda n, why: invalid.append(n)))
    assert invalid == [5]
    assert len(records) == 199_999 + 2
    assert [r["event"] for r in records[-2:]] == ["journal_repair", "stop"]


def test_long_last_line_spanning_many_read_chunks_is_judged_whole(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="a")
        journal.write("stop", TS, reason="x" * 300_000)
    clean = path.read_bytes()

    with Journal(path, "run-1") as journal:
        assert journal.repair is None
    path.write_bytes(clean + b"y" * 300_000)
    with Journal(path, "run-1") as journal:
        assert journal.repair.after_line == 2
    assert path.read_bytes() == clean


def test_set_aside_file_is_stamped_with_the_torn_journals_mtime_and_never_overwrites(tmp_path):
    path = tmp_path / "j.jsonl"
    clean = journal_with(path, "a")
    path.write_bytes(clean + TORN)
    torn_at = datetime(2021, 1, 4, 21, 0, 0, 123456, tzinfo=UTC)
    os.utime(path, ns=(0, int(torn_at.timestamp()) * 10**9 + 123_456_000))
    taken = tmp_path / "j.jsonl.torn-20210104T210000123456Z"
    taken.write_bytes(b"an earlier repair's bytes")

    with Journal(path, "run-1") as journal:
        journal.write("stop", TS, reason="b")

    assert taken.read_bytes() == b"an earlier repair's bytes"
    assert journal.repair.set_aside.name == "j.jsonl.torn-20210104T210000123456Z-2"
    assert journal.repair.set_aside.read_bytes() == TORN
    assert strict_lines(path)[1]["set_aside"] == "j.jsonl.torn-20210104T210000123456Z-2"
