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


def test_a_second_run_in_the_same_folder_keeps_the_first_runs_journal(tmp_path):
    config = tmp_path / "short.toml"
    text = (ROOT / "config" / "sim.toml").read_text()
    config.write_text(text.replace('dir = "data/sample"', f'dir = "{tmp_path / "data"}"'))
    for n in range(2):
        process = spillover("run", "--config", str(config), "--run-dir", "r", cwd=tmp_path)
        while n and not (tmp_path / "r" / "previous").exists() and process.poll() is None:
            time.sleep(0.05)
        wait_for_decisions(tmp_path / "r" / "decisions.jsonl", 3, process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
    [previous] = (tmp_path / "r" / "previous").iterdir()
    assert (previous / "decisions.jsonl").read_text().count('"event": "stop"') == 1
