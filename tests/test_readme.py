"""The README's commands, run as written in a fresh folder holding only the project's configs."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return list(
        dict.fromkeys(
            line
            for line in lines
            if line.split(" ")[0] == "spillover" or line.startswith("python -m agent")
        )
    )


COMMANDS = readme_commands()


def stop_after_decisions(process: subprocess.Popen, journal: Path, count: int = 3) -> None:
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"decision"') >= count:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "config", folder / "config")
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED)
    return folder


def test_the_readme_lists_the_first_command_and_the_test_command():
    assert 'python -m pip install -e ".[dev]"\nspillover run\n' in README
    assert "```bash\npython -m pytest\n```" in README


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_as_written(command: str, project: Path):
    if "../shared/data" in command and not SHARED.exists():
        pytest.skip("../shared/data is not beside this checkout")
    argv = shlex.split(command)
    executable = Path(sys.executable).parent / argv[0]
    argv = [str(executable) if executable.exists() else argv[0], *argv[1:]]
    if argv[0] == "python":
        argv[0] = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPILLOVER__")}
    if argv[1:2] == ["status"]:  # a run folder to look at: the README's first command, stopped
        run = [argv[0], "run"]
        started = subprocess.Popen(run, cwd=project, env=env, stdout=subprocess.DEVNULL)
        stop_after_decisions(started, project / "runs" / "sim" / "decisions.jsonl")
        assert started.wait(timeout=60) == 0
    process = subprocess.Popen(
        argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if argv[1:2] == ["run"]:
        run_dir = project / "runs" / ("demo" if "--run-dir" in argv else "sim")
        stop_after_decisions(process, run_dir / "decisions.jsonl")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"{command}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr
