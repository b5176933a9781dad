"""An unexpected exception inside a testnet tick: journalled with its traceback (no local
variables), counted toward the error budget, the tick refused, and the next tick runs. What must
stop the run (a live endpoint, a state file that cannot be written) still stops it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import agent.loop
from agent.store import Store, StoreError
from agent.venue.testnet import LiveEndpointRefused
from tests.test_resume import Scene, events, new_scene


@pytest.fixture
def scene() -> Iterator[Scene]:
    with new_scene() as made:
        yield made


def failing_on(calls: set[int], exc: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the risk gate raise `exc` on the given (1-based) calls."""
    real = agent.loop.evaluate
    seen = []

    def evaluate(request, params):  # type: ignore[no-untyped-def]
        seen.append(1)
        if len(seen) in calls:
            secret_local = "do-not-journal-me"  # noqa: F841 - must not reach the journal
            raise exc
        return real(request, params)

    monkeypatch.setattr(agent.loop, "evaluate", evaluate)


def test_an_exception_in_a_tick_is_journalled_counted_and_the_next_tick_runs(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_on({3, 4}, ZeroDivisionError("the gate divided by zero"), monkeypatch)
    folder = tmp_path / "run"
    scene.run(folder, 12)
    assert len(scene.ticks) == 12
    failures = [e for e in events(folder, "error") if e.get("call") == "tick"]
    assert [f["consecutive_errors"] for f in failures] == [1, 2]
    assert failures[0]["error"] == "ZeroDivisionError"
    frames = failures[0]["exception"][0]["frames"]
    assert any(frame["name"] == "evaluate" for frame in frames)
    text = (folder / "decisions.jsonl").read_text()
    assert "do-not-journal-me" not in text
    decisions = events(folder, "decision")
    refused = [d for d in decisions if d["reason"].startswith("tick failed")]
    assert [d["reason"] for d in refused] == [
        "tick failed: ZeroDivisionError: the gate divided by zero"
    ] * 2
    assert all(d["orders"] == [] for d in refused)
    assert len(decisions) == 12
    assert {d["action"] for d in decisions[4:]} - {"refused"}  # later ticks decide again
    with Store.open(folder) as store:
        assert store.consecutive_errors() == 0  # reset by the next order that went through


def test_the_error_budget_halts_buying_after_repeated_tick_failures(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = scene.config.risk.error_budget
    failing_on(set(range(1, budget + 1)), RuntimeError("boom"), monkeypatch)
    folder = tmp_path / "run"
    scene.run(folder, budget + 1)
    last = events(folder, "decision")[-1]
    assert "error_budget" in {c["rule"] for c in last["clamps"]}
    assert not [o for o in last["orders"] if o["side"] == "buy"]
    assert [h["rule"] for h in events(folder, "halt")] == ["error_budget"]


@pytest.mark.parametrize(
    "exc", [LiveEndpointRefused("https://api.binance.com is live"), StoreError("disk full")]
)
def test_a_safety_stop_inside_a_tick_ends_the_run(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    failing_on({2}, exc, monkeypatch)
    folder = tmp_path / "run"
    with pytest.raises(type(exc)):
        scene.run(folder, 5)
    assert len(scene.ticks) == 1
    assert events(folder, "stop")[-1]["reason"].startswith(type(exc).__name__)
