from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.breakout import BreakoutDay, State
from strategies.params import ParamError
from strategies.staging import AfterWindow, Phase, Stage, StagingParams, targets

PARAMS = StagingParams()
CONFIRMED = pd.Timestamp("2021-01-04")
ASSETS = PARAMS.assets


def day(on: pd.Timestamp, **episode) -> BreakoutDay:
    """A breakout row with a confirmed episode (unless told otherwise) seen on `on`."""
    fields = {
        "date": on,
        "state": State.CONFIRMED,
        "close": 105.0,
        "level": 104.0,
        "rel_volume": 1.0,
        "rs": 1.0,
        "rs_mean": 1.0,
        "thin": False,
        "counted": False,
        "holds": 0,
        "counted_in_window": 0,
        "candidate_date": None,
        "candidate_level": float("nan"),
        "episode_level": 100.0,
        "confirmed_date": CONFIRMED,
        "failed_date": None,
        "prefail_date": None,
        "expired_date": None,
        "window_day": (on - CONFIRMED).days,
    }
    fields.update(episode)
    return BreakoutDay(**fields)


def rising(until: pd.Timestamp, days: int = 400) -> pd.Series:
    dates = pd.date_range(end=until, periods=days, freq="D")
    return pd.Series(np.linspace(100, 200, days), index=dates)


def closes(until: pd.Timestamp, falling: tuple[str, ...] = ()) -> dict[str, pd.Series]:
    out = {}
    for asset in ASSETS:
        series = rising(until)
        out[asset] = series.iloc[::-1].set_axis(series.index) if asset in falling else series
    return out


def on(days: int) -> pd.Timestamp:
    return CONFIRMED + pd.Timedelta(days=days)


def test_no_confirmed_breakout_means_no_crypto():
    result = targets(day(on(0), confirmed_date=None, state=State.NEUTRAL), closes(on(0)), PARAMS)
    assert result.phase is Phase.FLAT
    assert result.stage == 0
    assert set(result.weights.values()) == {0.0}


def test_at_confirmation_only_btc_gets_a_quarter_of_the_budget():
    result = targets(day(on(0)), closes(on(0)), PARAMS)
    assert result.stage == 1
    assert result.weights["BTC"] == pytest.approx(0.5 * 0.25)
    assert result.weights["ETH"] == 0.0
    assert result.weights["SOL"] == 0.0
    assert result.budget == pytest.approx(0.125)


def test_schedule_walks_down_the_risk_curve():
    w30 = targets(day(on(30)), closes(on(30)), PARAMS).weights
    w60 = targets(day(on(60)), closes(on(60)), PARAMS).weights
    w90 = targets(day(on(90)), closes(on(90)), PARAMS).weights
    assert w30["ETH"] > 0
    assert w30["SOL"] == 0
    assert w60["SOL"] > 0
    assert w60["XRP"] > 0
    assert sum(w30.values()) == pytest.approx(0.25)
    assert sum(w60.values()) == pytest.approx(0.375)
    assert w90 == pytest.approx({"BTC": 0.25, "ETH": 0.15, "SOL": 0.05, "XRP": 0.05})


def test_asset_below_its_trend_stands_aside_without_moving_its_slice_to_others():
    both = targets(day(on(45)), closes(on(45)), PARAMS)
    gated = targets(day(on(45)), closes(on(45), falling=("ETH",)), PARAMS)
    assert gated.weights["ETH"] == 0.0
    assert gated.weights["BTC"] == both.weights["BTC"]
    assert not gated.gates["ETH"].passed
    assert "ETH" in gated.reason


def test_asset_without_enough_history_fails_its_gate():
    data = closes(on(70))
    data["SOL"] = data["SOL"].iloc[-10:]
    result = targets(day(on(70)), data, PARAMS)
    assert result.weights["SOL"] == 0.0
    assert result.weights["XRP"] > 0


def test_taper_after_the_window_reaches_zero_after_taper_days():
    expired = on(91)
    mid = targets(day(on(105), expired_date=expired), closes(on(105)), PARAMS)
    end = targets(day(on(121), expired_date=expired), closes(on(121)), PARAMS)
    full = targets(day(on(90)), closes(on(90)), PARAMS)
    assert mid.phase is Phase.AFTER_WINDOW
    assert 0 < sum(mid.weights.values()) < sum(full.weights.values())
    assert mid.stage == full.stage == 4
    assert sum(end.weights.values()) == 0.0
    assert (end.stage, end.budget) == (0, 0.0)  # the taper is done: no stage in force


@pytest.mark.parametrize(("mode", "share"), [(AfterWindow.HOLD, 1.0), (AfterWindow.EXIT, 0.0)])
def test_hold_keeps_the_last_stage_and_exit_leaves_at_once(mode, share):
    params = replace(PARAMS, after_window=mode)
    result = targets(day(on(150), expired_date=on(91)), closes(on(150)), params)
    assert sum(result.weights.values()) == pytest.approx(0.5 * share)


def test_failure_steps_down_to_zero_in_configured_steps():
    failed = {"failed_date": on(40), "prefail_date": on(39)}
    before = targets(day(on(39)), closes(on(39)), PARAMS)
    step1 = targets(day(on(40), **failed), closes(on(40)), PARAMS)
    step2 = targets(day(on(43), **failed), closes(on(43)), PARAMS)
    assert sum(before.weights.values()) == pytest.approx(0.25)
    assert sum(step1.weights.values()) == pytest.approx(0.125)
    assert sum(step2.weights.values()) == 0.0
    assert before.stage == step1.stage == 2  # the exit steps down from the stage reached
    assert step2.stage == 0  # and once it is done, no stage is in force


def test_failure_with_one_exit_step_exits_at_once():
    params = replace(PARAMS, exit_steps=1)
    failed = day(on(40), failed_date=on(40), prefail_date=on(39))
    assert sum(targets(failed, closes(on(40)), params).weights.values()) == 0.0


def test_after_failure_an_asset_whose_trend_broke_stays_out_when_it_recovers():
    data = closes(on(43))
    eth = data["ETH"].copy()
    eth.loc[on(41)] = 1.0
    data["ETH"] = eth
    params = replace(PARAMS, exit_steps=4)
    later = targets(day(on(43), failed_date=on(40), prefail_date=on(39)), data, params)
    assert later.gates["ETH"].passed
    assert later.weights["ETH"] == 0.0
    assert later.weights["BTC"] > 0


def stage_lists() -> st.SearchStrategy[StagingParams]:
    shares = st.lists(st.floats(0.05, 0.25), min_size=1, max_size=4)

    @st.composite
    def build(draw) -> StagingParams:
        values = draw(shares)
        assets = [f"A{i}" for i in range(len(values))]
        cuts = []
        if len(assets) > 1:
            cuts = sorted(draw(st.sets(st.integers(1, len(assets) - 1))))
        groups = [assets[a:b] for a, b in zip([0, *cuts], [*cuts, len(assets)], strict=True)]
        budgets = sorted(
            draw(st.lists(st.floats(0.05, 1.0), min_size=len(groups), max_size=len(groups)))
        )
        stages = tuple(
            Stage(day=20 * i, budget=b, add=tuple(g))
            for i, (b, g) in enumerate(zip(budgets, groups, strict=True))
        )
        return StagingParams(
            crypto_budget=draw(st.floats(0.05, 1.0)),
            shares=dict(zip(assets, values, strict=True)),
            stages=stages,
            trend_window=draw(st.integers(2, 30)),
            after_window=draw(st.sampled_from(list(AfterWindow))),
            taper_days=draw(st.integers(1, 40)),
            exit_steps=draw(st.integers(1, 5)),
            exit_step_days=draw(st.integers(1, 7)),
        )

    return build()


def random_closes(params: StagingParams, seed: int, until: pd.Timestamp) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=until, periods=300, freq="D")
    return {
        asset: pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.05, len(dates)))), index=dates)
        for asset in params.assets
    }


@settings(max_examples=150, deadline=None)
@given(
    params=stage_lists(),
    seed=st.integers(0, 10_000),
    offset=st.integers(0, 200),
    expired_after=st.one_of(st.none(), st.integers(1, 150)),
)
def test_weights_stay_within_stage_budget_and_shares(params, seed, offset, expired_after):
    today = on(offset)
    expired = on(expired_after) if expired_after is not None and expired_after <= offset else None
    data = {a: s.loc[:today] for a, s in random_closes(params, seed, on(220)).items()}
    result = targets(day(today, expired_date=expired), data, params)
    assert all(w >= 0 for w in result.weights.values())
    assert sum(result.weights.values()) <= result.budget + 1e-12
    assert result.budget <= params.crypto_budget + 1e-12
    for asset, weight in result.weights.items():
        assert weight <= params.crypto_budget * params.shares[asset] + 1e-12


@settings(max_examples=150, deadline=None)
@given(
    params=stage_lists(),
    seed=st.integers(0, 10_000),
    failed_after=st.integers(1, 180),
    gap=st.integers(1, 4),
    expired_after=st.one_of(st.none(), st.integers(1, 150)),
)
def test_weights_never_rise_after_a_failure(params, seed, failed_after, gap, expired_after):
    failed, prefail = on(failed_after), on(failed_after - gap)
    expired = (
        on(expired_after)
        if expired_after is not None and expired_after <= failed_after - gap
        else None
    )
    data = random_closes(params, seed, on(failed_after + 60))
    previous = targets(
        day(prefail, expired_date=expired), {a: s.loc[:prefail] for a, s in data.items()}, params
    ).weights
    for later in range(0, 40):
        today = failed + pd.Timedelta(days=later)
        current = targets(
            day(
                today,
                failed_date=failed,
                prefail_date=prefail,
                expired_date=expired,
                state=State.FAILED,
            ),
            {a: s.loc[:today] for a, s in data.items()},
            params,
        ).weights
        for asset in params.assets:
            assert current[asset] <= previous[asset] + 1e-12, (asset, later)
        previous = current
    assert sum(previous.values()) == 0.0 or params.exit_steps * params.exit_step_days > 40


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"crypto_budget": 0.0}, "crypto_budget"),
        ({"shares": {"BTC": 0.7, "ETH": 0.5}}, "shares"),
        ({"stages": ()}, "stages"),
        (
            {"stages": (Stage(0, 0.5, ("BTC", "ETH", "SOL", "XRP")), Stage(30, 0.4))},
            "stages[1].budget",
        ),
        (
            {"stages": (Stage(10, 0.5, ("BTC", "ETH", "SOL", "XRP")), Stage(10, 0.6))},
            "stages[1].day",
        ),
        ({"stages": (Stage(0, 0.5, ("BTC", "DOGE")),)}, "stages[0].add"),
        ({"stages": (Stage(0, 0.5, ("BTC",)),)}, "shares"),
        ({"exit_steps": 0}, "exit_steps"),
    ],
)
def test_bad_schedules_raise_naming_the_key(kwargs, key):
    with pytest.raises(ParamError) as info:
        StagingParams(**kwargs)
    assert info.value.key == key


def test_a_failure_after_expiry_keeps_the_stage_reached_inside_the_window():
    """Stages stop advancing when the window ends; a later failure must not unlock new ones."""
    params = replace(PARAMS, after_window=AfterWindow.HOLD)
    expired, failed = on(20), on(70)
    data = closes(on(80))
    held = targets(day(on(69), expired_date=expired), data, params)
    after = targets(
        day(
            on(70),
            state=State.FAILED,
            expired_date=expired,
            failed_date=failed,
            prefail_date=on(69),
        ),
        data,
        params,
    )
    assert held.stage == after.stage == 1
    assert after.weights["ETH"] == 0.0
    assert 0 < after.weights["BTC"] < held.weights["BTC"]


def test_stages_count_calendar_days_to_the_day_decided_not_to_the_last_session():
    friday = on(29)  # the last session before day 30 of the window
    weekend = targets(day(friday), closes(on(30)), PARAMS, today=on(30))
    session = targets(day(friday), closes(on(30)), PARAMS)
    assert (session.stage, weekend.stage) == (1, 2)
    assert weekend.weights["ETH"] > 0


@settings(max_examples=100, deadline=None)
@given(
    params=stage_lists(),
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(["flat", "failed", "expired"]),
    ends_after=st.integers(1, 80),
)
def test_a_settled_schedule_wants_nothing_for_the_rest_of_its_episode(
    params, seed, kind, ends_after
):
    """A sweep repeats a quiet tick while its episode lasts (`Targets.settled`): every later day
    of that episode must give zero weights with the same stage and budget, whatever the closes."""
    data = random_closes(params, seed, on(ends_after + 140))
    episode = {
        "flat": {"confirmed_date": None, "state": State.NEUTRAL},
        "failed": {
            "failed_date": on(ends_after),
            "prefail_date": on(ends_after - 1),
            "state": State.FAILED,
        },
        "expired": {"expired_date": on(ends_after), "state": State.EXPIRED},
    }[kind]
    settled = None
    for offset in range(ends_after, ends_after + 130):
        today = on(offset)
        result = targets(day(today, **episode), {a: s.loc[:today] for a, s in data.items()}, params)
        if settled is None and result.settled:
            settled = result
        if settled is not None:
            assert result.settled, offset
            assert sum(result.weights.values()) == 0.0
            assert (result.stage, result.budget) == (settled.stage, settled.budget)
    if kind in ("flat", "failed") or params.after_window is not AfterWindow.HOLD:
        assert settled is not None  # an exit, a taper or no breakout ends in a settled schedule
