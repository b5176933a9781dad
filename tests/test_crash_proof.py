"""Crash proof: `spillover run` in a child process, SIGKILLed at a few seeded moments (one right
after the order intent is committed and before it is sent, one after the exchange processed an
order and before it answered, others inside the child or at a wall-clock moment) and restarted
each time, ends like the uninterrupted run of the same command: the same positions, no client
order id placed twice, a journal of strict JSON lines, no decision missing.
`bench/crash_proof.py` kills many more times.

The window (26 daily ticks from 2016-11-06, as in test_fault_proof.py) holds the 2016 planted
breakout: six orders on the exchange. See tests/crash_run.py for how the child is driven.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.crash_run import KILLED, CrashRun, compare, plan_kills, run_child

EXCHANGE = "binance"
FIRST_DAY = date(2016, 11, 6)
DAYS = 26
SEED = 8
KILLS = 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[CrashRun, CrashRun]:
    """The uninterrupted run, then the killed one (its kills planned from the first)."""
    folder = tmp_path_factory.mktemp("crash-proof")
    window = {"days": DAYS, "first_day": FIRST_DAY}
    reference = run_child(EXCHANGE, folder / "uninterrupted", **window)
    plans = plan_kills(SEED, KILLS, reference)
    crashed = run_child(EXCHANGE, folder / "killed", kills=plans, **window)
    return reference, crashed


def test_the_uninterrupted_child_runs_every_day_in_one_life_and_trades(
    runs: tuple[CrashRun, CrashRun],
) -> None:
    reference, _ = runs
    assert reference.failure is None
    assert [life.returncode for life in reference.lives] == [0]
    assert len(reference.decision_times) == DAYS
    assert reference.orders >= 4
    assert reference.positions["BTC"] > 0
    assert reference.journal_check.problems == ()


def test_every_planned_kill_fired_and_the_child_was_restarted_after_each(
    runs: tuple[CrashRun, CrashRun],
) -> None:
    _, crashed = runs
    assert crashed.failure is None, crashed.failure
    assert [kill.plan for kill in crashed.kills] == list(crashed.planned)
    assert len(crashed.kills) == KILLS
    assert {"intent", "create"} <= set(crashed.kills_by_kind)
    assert [life.returncode for life in crashed.lives] == [KILLED] * KILLS + [0]
    assert crashed.restarts == KILLS


def test_the_killed_run_ends_with_the_uninterrupted_run_positions(
    runs: tuple[CrashRun, CrashRun],
) -> None:
    reference, crashed = runs
    check = compare(reference, crashed)
    assert check.position_differences == {}
    assert check.ok, check.problems()


def test_no_client_order_id_is_placed_twice(runs: tuple[CrashRun, CrashRun]) -> None:
    _, crashed = runs
    assert crashed.orders > 0
    assert crashed.duplicate_client_ids == []


def test_every_journal_line_is_strict_json_and_cites_its_decision(
    runs: tuple[CrashRun, CrashRun],
) -> None:
    _, crashed = runs
    check = crashed.journal_check
    assert check.lines > 0
    assert check.parses
    assert check.problems == ()


def test_every_tick_of_the_uninterrupted_run_has_a_decision_in_the_killed_run(
    runs: tuple[CrashRun, CrashRun],
) -> None:
    reference, crashed = runs
    check = compare(reference, crashed)
    assert check.missing_decisions == ()
    assert set(crashed.decision_times) == set(reference.decision_times)
    assert check.undecided_orders == ()  # every order the exchange holds has its decision


def test_the_kill_schedule_depends_only_on_the_seed(runs: tuple[CrashRun, CrashRun]) -> None:
    reference, _ = runs
    assert plan_kills(SEED, 24, reference) == plan_kills(SEED, 24, reference)
    assert plan_kills(SEED, 24, reference) != plan_kills(SEED + 1, 24, reference)
    many = plan_kills(SEED, 24, reference)
    assert {plan.kind for plan in many} == {
        "intent",
        "create",
        "journal",
        "torn",
        "tick",
        "read",
        "wall",
    }
    timed = [plan.at for plan in many if plan.at is not None]
    assert timed == sorted(timed)
