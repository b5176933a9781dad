"""`spillover run`: replayed data on an accelerated clock, stopped cleanly by a signal."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def spillover(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPILLOVER__")}
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_decisions(journal: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"run ended early: {process.communicate()}")
        if journal.exists() and journal.read_text().count('"event": "decision"') >= count:
            return
        time.sleep(0.1)
    pytest.fail("no decisions within 60 s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stopped_by_a_signal_finishes_its_tick_and_exits_0(tmp_path, signum):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sim.toml").write_text((ROOT / "config" / "sim.toml").read_text())
    process = spillover("run", "--speed", "20", cwd=tmp_path)
    journal = tmp_path / "runs" / "sim" / "decisions.jsonl"
    wait_for_decisions(journal, 5, process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert records[0]["event"] == "start"
    assert records[-1] == records[-1] | {"event": "stop", "reason": f"{signum.name} received"}
    decisions = [r for r in records if r["event"] == "decision"]
    lines = [line for line in stdout.splitlines() if line[:4].isdigit()]
    assert len(lines) == len(decisions) >= 5
    assert f"stopped by {signum.name}" in stdout
    assert (tmp_path / "data" / "sample" / "IWM.csv").exists()


def short_config(tmp_path: Path) -> Path:
    config = tmp_path / "short.toml"
    text = (ROOT / "config" / "sim.toml").read_text()
    config.write_text(text.replace('dir = "data/sample"', f'dir = "{tmp_path / "data"}"'))
    return config


def run_and_stop(tmp_path: Path, *args: str, decisions: int) -> str:
    """`spillover run ARGS` until it has journalled `decisions` more decisions, then SIGTERM
    (with `--fresh`, counting only once the earlier run's files are in `previous/`)."""
    journal = tmp_path / "r" / "decisions.jsonl"
    before = journal.read_text().count('"event": "decision"') if journal.exists() else 0
    process = spillover("run", *args, cwd=tmp_path)
    if "--fresh" in args:
        before = 0
        while not (tmp_path / "r" / "previous").exists():
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
    wait_for_decisions(journal, before + decisions, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stdout


def test_a_second_run_in_the_same_folder_resumes_after_the_last_tick(tmp_path):
    config = short_config(tmp_path)
    first = run_and_stop(tmp_path, "--config", str(config), "--run-dir", "r", decisions=3)
    assert first.startswith("new run ")
    second = run_and_stop(tmp_path, "--config", str(config), "--run-dir", "r", decisions=3)
    assert second.startswith("resumed run ")
    assert "(session 2;" in second
    records = [json.loads(line) for line in (tmp_path / "r" / "decisions.jsonl").open()]
    assert [r.get("session") for r in records if r["event"] == "start"] == [None, 2]
    ticks = [r["ts"] for r in records if r["event"] == "decision"]
    assert ticks == sorted(set(ticks))  # each day once, in order, none repeated by the resume
    assert not (tmp_path / "r" / "previous").exists()


def test_fresh_moves_the_earlier_run_aside(tmp_path):
    config = short_config(tmp_path)
    run_and_stop(tmp_path, "--config", str(config), "--run-dir", "r", decisions=3)
    run_and_stop(tmp_path, "--config", str(config), "--run-dir", "r", "--fresh", decisions=3)
    [previous] = (tmp_path / "r" / "previous").iterdir()
    assert (previous / "decisions.jsonl").read_text().count('"event": "stop"') == 1
    assert (previous / "state.sqlite").exists()
    journal = (tmp_path / "r" / "decisions.jsonl").read_text()
    assert journal.count('"event": "start"') == 1


def test_a_changed_config_is_refused_in_one_line_with_exit_2(tmp_path):
    config = short_config(tmp_path)
    run_and_stop(tmp_path, "--config", str(config), "--run-dir", "r", decisions=2)
    changed = config.read_text().replace("max_order_notional = 50000.0", "max_order_notional = 2e4")
    assert changed != config.read_text()
    config.write_text(changed)
    process = spillover("run", "--config", str(config), "--run-dir", "r", cwd=tmp_path)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    [line] = stderr.strip().splitlines()
    assert "--accept-config-change" in line
