import dataclasses
import enum
import json
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import structlog
from structlog.testing import capture_logs

from risk.journal import EVENTS, Journal, read_journal

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
