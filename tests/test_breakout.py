import pandas as pd
import pytest

from strategies.breakout import BreakoutDay, BreakoutParams, State, detect
from strategies.params import ParamError
from tests.bars import BASE_VOLUME, base, random_walk

PARAMS = BreakoutParams()
HEAVY = 2.0 * BASE_VOLUME
THIN = 0.3 * BASE_VOLUME


def run(tape, params: BreakoutParams = PARAMS) -> pd.DataFrame:
    return detect(*tape.series(), params)


def states(frame: pd.DataFrame) -> list[str]:
    return list(frame["state"])


def test_clean_breakout_on_heavy_volume_is_confirmed_on_the_third_hold():
    tape = base().add(102, HEAVY).add(103).add(104)
    frame = run(tape)
    assert states(frame)[-4:] == ["neutral", "candidate", "candidate", "confirmed"]
    day = BreakoutDay.from_frame(frame)
    assert day.episode_level == 100.0
    assert day.confirmed_date == frame.index[-1]
    assert day.holds == 3
    assert day.counted_in_window == 1
    first = BreakoutDay.from_frame(frame, frame.index[-3])
    assert first.counted
    assert first.rel_volume == pytest.approx(2.0)
    assert first.rs > first.rs_mean


def test_new_high_on_ordinary_volume_lapses_after_the_confirm_window():
    tape = base().add(102).add(103).add(104).add(104.5).add(105)
    frame = run(tape)
    assert State.CONFIRMED not in states(frame)
    assert states(frame)[-5:] == ["candidate"] * 4 + ["neutral"]
    assert frame["holds"].iloc[-1] == 5
    assert frame["counted_in_window"].iloc[-1] == 0


def test_late_volume_surge_starts_a_new_candidate_at_the_new_high():
    tape = base().add(102).add(103).add(104).add(104.5).add(105)
    frame = run(tape.add(106, HEAVY).add(106.5).add(107))
    assert states(frame)[-3:] == ["candidate", "candidate", "confirmed"]
    assert BreakoutDay.from_frame(frame).episode_level == 105.0


def test_holiday_thin_new_high_never_starts_a_candidate():
    tape = base().add(103, THIN).add(98).add(97)
    frame = run(tape)
    assert set(states(frame)) == {"neutral"}
    assert bool(frame["thin"].iloc[-3])
    assert not bool(frame["counted"].iloc[-3])


def test_thin_sessions_above_the_level_do_not_count_as_holds():
    tape = base().add(102, HEAVY).add(103, THIN).add(104, THIN)
    frame = run(tape)
    assert states(frame)[-1] == "candidate"
    assert frame["holds"].iloc[-1] == 1
    confirmed = run(tape.add(104.5))
    assert states(confirmed)[-1] == "candidate"
    assert states(run(tape.add(105)))[-1] == "confirmed"


def test_breakout_while_small_caps_lag_the_benchmark_is_not_counted():
    tape = base()
    tape.add(102, HEAVY, bench=460).add(103, HEAVY, bench=470).add(104, HEAVY, bench=480)
    frame = run(tape)
    assert not frame["counted"].iloc[-3:].any()
    assert State.CONFIRMED not in states(frame)
    assert (frame["rs"].iloc[-3:] < frame["rs_mean"].iloc[-3:]).all()


def test_candidate_that_falls_back_under_the_level_lapses_to_neutral():
    tape = base().add(102).add(98).add(97).add(96)
    frame = run(tape)
    assert states(frame)[-4:] == ["candidate", "candidate", "candidate", "neutral"]


def test_confirmed_breakout_fails_on_a_close_below_the_fail_line():
    tape = base().add(102, HEAVY).add(103).add(104).repeat(10, 103).add(94.9)
    frame = run(tape)
    day = BreakoutDay.from_frame(frame)
    assert day.state is State.FAILED
    assert day.failed_date == frame.index[-1]
    assert day.prefail_date == frame.index[-2]
    assert day.confirmed_date == frame.index[-12]


def test_a_dip_above_the_fail_line_keeps_the_breakout_confirmed():
    tape = base().add(102, HEAVY).add(103).add(104).add(95.5).add(99)
    assert states(run(tape))[-1] == "confirmed"


def test_lag_window_expires_after_window_days():
    params = BreakoutParams(window_days=30)
    tape = base().add(102, HEAVY).add(103).add(104).repeat(30, 103.5)
    frame = run(tape, params)
    confirmed = frame.index[frame["state"] == "confirmed"][0]
    expired = frame.index[frame["state"] == "expired"][0]
    assert (expired - confirmed).days >= 30
    assert (frame.index[frame.index.get_loc(expired) - 1] - confirmed).days < 30
    assert BreakoutDay.from_frame(frame).expired_date == expired


def test_after_expiry_a_close_above_the_old_level_alone_does_not_rearm():
    params = BreakoutParams(window_days=30)
    tape = base().add(102, HEAVY).add(103).add(104).repeat(30, 103.5)
    tape.add(102, HEAVY).add(103.9, HEAVY)
    frame = run(tape, params)
    assert states(frame)[-1] == "expired"


def test_after_expiry_a_new_higher_high_rearms_and_confirms_a_new_episode():
    params = BreakoutParams(window_days=30)
    tape = base().add(102, HEAVY).add(103).add(104).repeat(30, 103.5)
    tape.add(106, HEAVY).add(107).add(108)
    frame = run(tape, params)
    assert states(frame)[-3:] == ["candidate", "candidate", "confirmed"]
    day = BreakoutDay.from_frame(frame)
    assert day.episode_level == 104.0
    assert day.expired_date is None


def test_expired_episode_still_fails_when_the_index_collapses():
    params = BreakoutParams(window_days=30)
    tape = base().add(102, HEAVY).add(103).add(104).repeat(30, 103.5).add(90)
    assert states(run(tape, params))[-1] == "failed"


def test_after_failure_rearming_needs_a_level_above_the_failed_one():
    tape = base().add(102, HEAVY).add(103).add(104).add(94)
    frame = run(tape.add(101, HEAVY).add(101.5).add(102))
    assert states(frame)[-1] == "failed"
    frame = run(tape.add(105, HEAVY).add(106).add(107))
    assert states(frame)[-1] == "confirmed"
    assert BreakoutDay.from_frame(frame).episode_level == 104.0


def test_unknown_volume_never_counts():
    tape = base().add(102, float("nan")).add(103, float("nan")).add(104, float("nan"))
    frame = run(tape)
    assert not frame["counted"].any()
    assert State.CONFIRMED not in states(frame)


def test_lookback_limits_the_level_to_recent_sessions():
    tape = base(sessions=60).add(99.5, HEAVY)
    close, volume, bench = tape.series()
    all_time = detect(close, volume, bench, BreakoutParams())
    recent = detect(close, volume, bench, BreakoutParams(lookback=20))
    assert all_time["level"].iloc[-1] == 100.0
    assert recent["level"].iloc[-1] < 99.5
    assert states(recent)[-1] == "candidate"
    assert states(all_time)[-1] == "neutral"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_appending_future_bars_never_changes_an_earlier_day(seed):
    close, volume, bench = random_walk(seed)
    full = detect(close, volume, bench, PARAMS)
    assert {"confirmed", "failed", "expired"} <= set(full["state"]), "the walk must be eventful"
    for cut in (150, 400, 777):
        past = detect(close.iloc[:cut], volume.iloc[:cut], bench, PARAMS)
        pd.testing.assert_frame_equal(past, full.iloc[:cut])


def test_same_bars_give_the_same_states():
    series = random_walk(9)
    pd.testing.assert_frame_equal(detect(*series, PARAMS), detect(*series, PARAMS))


def test_evidence_is_json_ready():
    frame = run(base().add(102, HEAVY).add(103).add(104))
    evidence = BreakoutDay.from_frame(frame).evidence()
    assert evidence["state"] == "confirmed"
    assert evidence["confirmed_date"] == frame.index[-1].date().isoformat()
    assert evidence["failed_date"] is None


def test_unordered_dates_are_rejected():
    close, volume, bench = base().series()
    with pytest.raises(ValueError, match="strictly increasing"):
        detect(close.iloc[::-1], volume, bench, PARAMS)


def test_non_positive_close_is_rejected_naming_the_date():
    close, volume, bench = base().series()
    close.iloc[10] = 0.0
    with pytest.raises(ValueError, match=str(close.index[10].date())):
        detect(close, volume, bench, PARAMS)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"volume_window": 0}, "volume_window"),
        ({"fail_pct": 0.0}, "fail_pct"),
        ({"buffer": -0.01}, "buffer"),
        ({"thin_volume_ratio": 1.5}, "thin_volume_ratio"),
        ({"confirm_closes": 6, "confirm_window": 5}, "confirm_closes"),
        ({"window_days": -3}, "window_days"),
    ],
)
def test_bad_parameters_raise_naming_the_key(kwargs, key):
    with pytest.raises(ParamError) as info:
        BreakoutParams(**kwargs)
    assert info.value.key == key
