"""Fault proof: the real testnet loop against the loopback emulators, once clean and then with
seeded faults of every kind on 20% of requests, ends with the same positions, and the exchange
never sees one client order id twice. `bench/fault_proof.py` runs many more seeds.

The window (26 daily ticks from 2016-11-06) holds the 2016 planted breakout: the agent buys BTC
at confirmation, then trims, sells and buys back as BTC's trend gate flips, six orders in all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from tests.fault_run import EXCHANGES, RunOutcome, position_differences, run_against_emulators

FIRST_DAY = date(2016, 11, 6)
DAYS = 26
SEEDS = (1, 2)
FAULTED = [(exchange, seed) for exchange in EXCHANGES for seed in SEEDS]

Run = Callable[[str, int | None], RunOutcome]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Each (exchange, fault seed) runs once per module; seed None is the clean run."""
    done: dict[tuple[str, int | None], RunOutcome] = {}

    def outcome(exchange: str, seed: int | None) -> RunOutcome:
        key = (exchange, seed)
        if key not in done:
            folder: Path = tmp_path_factory.mktemp(f"{exchange}-{seed or 'clean'}")
            done[key] = run_against_emulators(
                exchange, seed, DAYS, first_day=FIRST_DAY, run_dir=folder
            )
        return done[key]

    return outcome


def _ran_through(outcome: RunOutcome) -> None:
    assert outcome.crash is None, f"run_live raised: {outcome.crash}"
    assert outcome.ticks == DAYS


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_the_clean_run_buys_and_sells_and_ends_holding_btc(run: Run, exchange: str) -> None:
    clean = run(exchange, None)
    _ran_through(clean)
    assert clean.injected == 0
    assert clean.journal_check.actions.get("trade", 0) >= 3
    sides = clean.journal_check.order_sides
    assert sides.get("buy", 0) >= 2
    assert sides.get("sell", 0) >= 2
    assert clean.orders == clean.create_requests
    assert clean.positions["BTC"] > 0


@pytest.mark.parametrize(("exchange", "seed"), FAULTED)
def test_a_run_with_faults_on_a_fifth_of_requests_ends_with_the_clean_run_positions(
    run: Run, exchange: str, seed: int
) -> None:
    clean, faulted = run(exchange, None), run(exchange, seed)
    _ran_through(faulted)
    assert position_differences(clean.positions, faulted.positions) == {}
    assert faulted.orders == clean.orders


@pytest.mark.parametrize(("exchange", "seed"), FAULTED)
def test_the_exchange_never_sees_a_client_order_id_create_two_orders(
    run: Run, exchange: str, seed: int
) -> None:
    faulted = run(exchange, seed)
    assert faulted.orders > 0
    assert faulted.duplicate_client_ids == []


@pytest.mark.parametrize(("exchange", "seed"), FAULTED)
def test_faults_of_several_kinds_hit_both_emulators(run: Run, exchange: str, seed: int) -> None:
    faulted = run(exchange, seed)
    assert sum(faulted.faults.values()) >= 20
    assert len(faulted.faults) >= 5, faulted.faults
    assert set(faulted.faults) <= set(faulted.fault_kinds)
    assert sum(faulted.alpaca_faults.values()) > 0
    assert faulted.journal_check.retries > 0  # each retry is journalled


@pytest.mark.parametrize(("exchange", "seed"), [(e, None) for e in EXCHANGES] + FAULTED)
def test_every_journal_line_parses_and_every_order_and_fill_cites_its_decision(
    run: Run, exchange: str, seed: int | None
) -> None:
    outcome = run(exchange, seed)
    check = outcome.journal_check
    assert check.parses
    assert check.problems == ()
    assert check.events.get("order", 0) == outcome.orders
    assert check.events.get("fill", 0) == outcome.trades
