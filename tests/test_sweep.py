"""spillover sweep: grid parsing and validation, point counts, resume, results.csv, windows,
choosing, sensitivity, optuna reproducibility, the executors, and the command end to end."""

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Config, DataConfig
from agent.marketdata.sample import write_sample
from agent.tuning.command import default_out
from agent.tuning.executors import DaskExecutor, InlineExecutor, ProcessExecutor
from agent.tuning.grid import (
    Grid,
    GridError,
    cartesian,
    parse_grid,
    point_id,
    random_points,
    search_space,
    validate,
)
from agent.tuning.results import KEY_COLUMNS, TAIL_COLUMNS
from agent.tuning.select import (
    METRICS,
    chain,
    choose,
    score,
    sensitivity_points,
    sensitivity_rows,
    sweep_metrics,
)
from agent.tuning.sweep import Sweeper, optuna_search, run_folds
from agent.tuning.windows import (
    Window,
    WindowError,
    episode_windows,
    leave_one_out_folds,
    parse_walk_forward,
    walk_forward_folds,
)
from agent.tuning.worker import Task

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SHORT = Window(pd.Timestamp("2020-11-20"), pd.Timestamp("2020-12-31"))
"""A short trading range around the sample's 2020-12 breakout: a few seconds per point."""


def write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, 7)
    return folder


def sample_config(folder: Path) -> Config:
    return Config(data=DataConfig(source="replay", dir=folder))


# --- the grid ----------------------------------------------------------------------------------


def test_a_grid_maps_dotted_keys_to_lists_in_file_order(tmp_path):
    grid = parse_grid(
        write(
            tmp_path,
            "signal.volume_multiple = [1.2, 1.5, 2.0]\n"
            '[staging]\nafter_window = ["taper", "exit"]\n',
        )
    )
    assert grid.axes == {
        "signal.volume_multiple": (1.2, 1.5, 2.0),
        "staging.after_window": ("taper", "exit"),
    }
    assert grid.size == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("signal.volume_multiple = []", "signal.volume_multiple = []: empty list"),
        ("signal.volume_multiple = 1.5", "signal.volume_multiple = 1.5: must be a list"),
        ("signal.volume_multiple = [1.5, 1.5]", "signal.volume_multiple = 1.5: repeated value"),
        ("signal.volume_multiple = [1.5", "invalid TOML"),
        ("", "no keys to sweep"),
    ],
)
def test_a_bad_grid_file_is_one_line(tmp_path, text, expected):
    with pytest.raises(GridError) as caught:
        parse_grid(write(tmp_path, text))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "signal.volume_multipl = [1.2]",
            "signal.volume_multipl = 1.2: signal.volume_multipl: unknown key",
        ),
        ("sigal.buffer = [0.0]", "sigal.buffer = 0.0: sigal: unknown key"),
        (
            'signal.volume_multiple = [1.2, "lots"]',
            'signal.volume_multiple = "lots": signal.volume_multiple:',
        ),
        ("signal.confirm_closes = [3, 2.5]", "signal.confirm_closes = 2.5:"),
        ('staging.after_window = ["taper", "never"]', 'staging.after_window = "never":'),
        ("signal.volume_multiple.x = [1]", "signal.volume_multiple.x = 1: signal.volume_multiple:"),
        (
            "signal.volume_multiple.x.y = [1]",
            "signal.volume_multiple.x.y = 1: signal.volume_multiple: not a table",
        ),
        (
            "staging.stages.4 = [{day = 9, budget = 1.0}]",
            'staging.stages.4 = {"day": 9, "budget": 1.0}: staging.stages.4: no such index '
            "(the config's staging.stages has 4 items: 0..3)",
        ),
        (
            "staging.stages.first.budget = [0.5]",
            "staging.stages.first.budget = 0.5: staging.stages.first: not an index (the config's "
            "staging.stages is a list of 4 items: 0..3)",
        ),
    ],
)
def test_an_unknown_key_or_invalid_value_is_one_line_naming_key_and_value(tmp_path, text, expected):
    grid = parse_grid(write(tmp_path, text))
    with pytest.raises(GridError) as caught:
        validate(grid, Config(), cartesian(grid))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'grid.toml'}: {expected}"), message
    assert "\n" not in message


def test_a_combination_that_does_not_validate_names_the_point(tmp_path):
    grid = parse_grid(
        write(tmp_path, "signal.volume_multiple = [1.2, 0.5]\nsignal.thin_volume_ratio = [0.6]\n")
    )
    with pytest.raises(GridError) as caught:
        validate(grid, Config(), cartesian(grid))
    message = str(caught.value)
    assert "signal.volume_multiple = 0.5" in message
    assert "\n" not in message


def test_valid_points_build_their_configs_with_the_values_set(tmp_path):
    grid = parse_grid(write(tmp_path, "signal.volume_multiple = [1.5]\nstaging.shares.BTC = [0.4]"))
    (config,) = validate(grid, Config(), cartesian(grid))
    assert config.signal.volume_multiple == 1.5
    assert config.staging.shares["BTC"] == 0.4


def test_cartesian_and_random_point_counts(tmp_path):
    grid = Grid(tmp_path, {"a": (1, 2, 3), "b": ("x", "y"), "c": (0.1, 0.2, 0.3, 0.4)})
    points = cartesian(grid)
    assert len(points) == 24
    assert len({point_id(p) for p in points}) == 24
    drawn = random_points(grid, 10, seed=3)
    assert len(drawn) == 10
    assert len({point_id(p) for p in drawn}) == 10
    assert all(p in points for p in drawn)
    assert drawn == random_points(grid, 10, seed=3)
    assert drawn != random_points(grid, 10, seed=4)
    assert len(random_points(grid, 100, seed=3)) == 24


def test_a_point_id_is_the_hash_of_its_values_whatever_their_order():
    assert point_id({"a": 1, "b": "x"}) == point_id({"b": "x", "a": 1})
    assert point_id({"a": 1}) != point_id({"a": 1.0})
    assert len(point_id({"a": 1})) == 12


def test_optuna_space_is_the_range_of_numbers_and_a_choice_of_strings(tmp_path):
    grid = Grid(tmp_path, {"i": (10, 50, 30), "f": (1, 2.5), "s": ("taper", "exit")})
    space = search_space(grid)
    assert (space["i"].kind, space["i"].low, space["i"].high) == ("int", 10, 50)
    assert (space["f"].kind, space["f"].low, space["f"].high) == ("float", 1, 2.5)
    assert space["s"].choices == ("taper", "exit")
    with pytest.raises(GridError, match="numbers or of strings"):
        search_space(Grid(tmp_path, {"m": ({"BTC": 0.5}, {"BTC": 0.4})}))


# --- windows -----------------------------------------------------------------------------------


def test_walk_forward_windows_roll_by_the_test_span():
    spans = parse_walk_forward("train=4y,test=1y")
    folds = walk_forward_folds(pd.Timestamp("2015-01-01"), pd.Timestamp("2021-06-30"), **spans)
    got = [(str(f.train[0]), str(f.test)) for f in folds]
    assert got == [
        ("2015-01-01..2018-12-31", "2019-01-01..2019-12-31"),
        ("2016-01-01..2019-12-31", "2020-01-01..2020-12-31"),
        ("2017-01-01..2020-12-31", "2021-01-01..2021-06-30"),  # cut at the data's end
    ]


def test_a_last_test_window_shorter_than_a_month_is_dropped_and_step_is_honoured():
    spans = parse_walk_forward("train=2y,test=6m,step=1y")
    folds = walk_forward_folds(pd.Timestamp("2015-01-01"), pd.Timestamp("2018-01-10"), **spans)
    assert [str(f.test) for f in folds] == ["2017-01-01..2017-06-30"]


@pytest.mark.parametrize(
    "spec", ["train=4y", "train=4x,test=1y", "train=0y,test=1y", "4y,1y", "train=4y,test=1y,z=1"]
)
def test_a_bad_walk_forward_spec_is_one_line(spec):
    with pytest.raises(WindowError) as caught:
        parse_walk_forward(spec)
    assert "\n" not in str(caught.value)


def test_a_range_too_short_for_one_fold_is_an_error():
    with pytest.raises(WindowError, match="too short"):
        walk_forward_folds(
            pd.Timestamp("2020-01-01"),
            pd.Timestamp("2021-01-01"),
            pd.DateOffset(years=4),
            pd.DateOffset(years=1),
        )


def test_leave_one_out_holds_out_each_confirmed_episode_in_turn():
    breakouts = [
        {"confirmed": "2013-01-04"},  # its window ends before trading starts
        {"confirmed": "2013-05-01"},  # starts before, ends inside: cut to the range
        {"confirmed": "2016-11-11"},
        {"confirmed": None},
        {"confirmed": "2020-12-04"},
        {"confirmed": "2025-09-22"},
        {"confirmed": "2025-12-10"},  # 22 days before the data ends: too short to score
    ]
    trading = Window(pd.Timestamp("2013-06-18"), pd.Timestamp("2025-12-31"))
    episodes = episode_windows(breakouts, 121, trading)
    assert [str(w) for w in episodes] == [
        "2013-06-18..2013-08-30",
        "2016-11-11..2017-03-12",
        "2020-12-04..2021-04-04",
        "2025-09-22..2025-12-31",
    ]
    folds = leave_one_out_folds(episodes)
    assert [f.test for f in folds] == episodes
    assert folds[1].train == (episodes[0], episodes[2], episodes[3])
    with pytest.raises(WindowError, match="at least two"):
        leave_one_out_folds(episodes[:1])


# --- choosing, sensitivity, chaining -------------------------------------------------------------


def test_calmar_is_cagr_over_max_drawdown_and_undefined_without_a_drawdown():
    m = sweep_metrics({"cagr": 0.2, "max_drawdown": 0.1, "sharpe": 1.0})
    assert m["calmar"] == pytest.approx(2.0)
    assert list(m) == list(METRICS)
    assert sweep_metrics({"cagr": 0.2, "max_drawdown": 0.0})["calmar"] is None


def test_choose_maximises_the_mean_objective_and_a_flat_curve_scores_zero():
    flat = {"total_return": 0.0, "max_drawdown": 0.0, "sharpe": None}
    broken = {"total_return": -0.5, "max_drawdown": 0.6, "sharpe": None}
    assert score(flat, "sharpe") == 0.0
    assert score(broken, "sharpe") == -math.inf
    candidates = [
        ({"a": 1}, [{"sharpe": 2.0}, {"sharpe": -1.0}]),
        ({"a": 2}, [{"sharpe": 0.6}, {"sharpe": 0.6}]),
        ({"a": 3}, [{"sharpe": 3.0}, broken]),
        ({"a": 4}, [flat, flat]),
    ]
    assert choose(candidates, "sharpe") == 1


def test_sensitivity_moves_each_parameter_one_grid_step_and_reports_every_metric(tmp_path):
    grid = Grid(tmp_path, {"x": (1.0, 2.0, 3.0), "y": ("a", "b"), "z": (5,)})
    best = {"x": 2.0, "y": "a", "z": 5}
    moved = sensitivity_points(grid, best)
    assert [(k, s, p[k]) for k, s, p in moved] == [("x", -1, 1.0), ("x", 1, 3.0), ("y", 1, "b")]

    def metrics(p):  # a knife edge on x: the objective collapses one step up
        return {m: 0.0 for m in METRICS} | {"sharpe": {1.0: 1.0, 2.0: 1.5, 3.0: -2.0}[p["x"]]}

    rows = sensitivity_rows(
        best, metrics(best), [(k, s, p, metrics(p)) for k, s, p in moved], "sharpe"
    )
    assert [(r["parameter"], r["step"], r["value"]) for r in rows] == [
        ("x", -1, 1.0),
        ("x", 0, 2.0),
        ("x", 1, 3.0),
        ("y", 0, "a"),
        ("y", 1, "b"),
    ]
    assert [r["sharpe_change"] for r in rows] == [-0.5, 0.0, -3.5, 0.0, 0.0]
    assert all(set(METRICS) <= set(r) for r in rows)


def test_chained_windows_compound_each_window_from_where_the_last_ended():
    a = pd.Series([110.0, 121.0], index=pd.DatetimeIndex(["2020-01-01", "2020-01-02"]))
    b = pd.Series([50.0, 100.0], index=pd.DatetimeIndex(["2021-01-01", "2021-01-02"]))
    curve = chain([a, b], 100.0)
    assert list(curve) == pytest.approx([100.0, 110.0, 121.0, 60.5, 121.0])


# --- sweeping with a stub executor ------------------------------------------------------------


class StubExecutor:
    """Metrics as a function of the config, no backtest: counts what it ran."""

    workers = 1
    where = "1 stub"

    def __init__(self) -> None:
        self.ran: list[Task] = []

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            self.ran.append(task)
            config = json.loads(task.config_json)
            vm, fail = config["signal"]["volume_multiple"], config["signal"]["fail_pct"]
            sharpe = 2.0 - (vm - 1.5) ** 2 - 10 * (fail - 0.05) ** 2
            metrics = {m: 0.1 for m in METRICS} | {"sharpe": sharpe, "orders": 3}
            days = pd.date_range(task.start, task.end)
            curve = [(str(d.date()), 100_000.0 * (1 + 0.001 * n)) for n, d in enumerate(days)]
            yield i, {"metrics": metrics, "seconds": 0.0, "breakouts": [], "curve": curve}

    def close(self) -> None:
        pass


def stub_sweeper(tmp_path: Path, grid_text: str) -> tuple[Sweeper, StubExecutor]:
    grid = parse_grid(write(tmp_path, grid_text))
    executor = StubExecutor()
    return Sweeper(Config(), grid, tmp_path / "out", executor), executor


GRID = "signal.volume_multiple = [1.2, 1.5, 2.0]\nsignal.fail_pct = [0.03, 0.05]\n"


def test_results_csv_has_one_row_per_point_with_parameters_and_metrics(tmp_path):
    sweeper, _ = stub_sweeper(tmp_path, GRID)
    sweeper.evaluate(cartesian(sweeper.grid), SHORT)
    with (tmp_path / "out" / "results.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [
        *KEY_COLUMNS,
        "signal.volume_multiple",
        "signal.fail_pct",
        *TAIL_COLUMNS,
    ]
    assert TAIL_COLUMNS[: len(METRICS)] == METRICS
    assert len(rows) == 6
    assert {r["point_id"] for r in rows} == {point_id(p) for p in cartesian(sweeper.grid)}
    best = max(rows, key=lambda r: float(r["sharpe"]))
    assert (best["signal.volume_multiple"], best["signal.fail_pct"]) == ("1.5", "0.05")
    assert {r["base_hash"] for r in rows} == {Config().hash()[:12]}


def test_a_second_run_of_the_same_sweep_runs_nothing(tmp_path):
    sweeper, executor = stub_sweeper(tmp_path, GRID)
    first = sweeper.evaluate(cartesian(sweeper.grid), SHORT)
    assert len(executor.ran) == 6
    again, executor2 = stub_sweeper(tmp_path, GRID)
    second = again.evaluate(cartesian(again.grid), SHORT)
    assert executor2.ran == []
    assert again.stats.skipped == 6
    assert [r["sharpe"] for r in second] == pytest.approx([r["sharpe"] for r in first])
    other_window = Window(SHORT.start, SHORT.end - pd.Timedelta(days=1))
    again.evaluate(cartesian(again.grid)[:2], other_window)  # another range is another backtest
    assert len(executor2.ran) == 2


def test_a_changed_base_config_runs_the_points_again(tmp_path):
    sweeper, _ = stub_sweeper(tmp_path, GRID)
    sweeper.evaluate(cartesian(sweeper.grid), SHORT)
    executor = StubExecutor()
    changed = Config().model_copy(
        update={"venue": Config().venue.model_copy(update={"fee_bps": 1.0})}
    )
    Sweeper(changed, sweeper.grid, tmp_path / "out", executor).evaluate(
        cartesian(sweeper.grid), SHORT
    )
    assert len(executor.ran) == 6
    with (tmp_path / "out" / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 12


def test_walk_forward_chooses_on_train_and_reports_the_test_windows(tmp_path):
    sweeper, executor = stub_sweeper(tmp_path, GRID)
    folds = walk_forward_folds(
        pd.Timestamp("2016-01-01"),
        pd.Timestamp("2019-12-31"),
        pd.DateOffset(years=2),
        pd.DateOffset(years=1),
    )
    rows, overall = run_folds(
        sweeper,
        folds,
        "grid",
        cartesian(sweeper.grid),
        trials=0,
        seed=0,
        objective="sharpe",
        name="walk_forward",
    )
    assert [r["test_start"] for r in rows] == ["2018-01-01", "2019-01-01"]
    assert all(r["params"] == "signal.volume_multiple = 1.5, signal.fail_pct = 0.05" for r in rows)
    assert overall["orders"] == 6  # summed over the two test windows
    assert overall["total_return"] == pytest.approx(1.364**2 - 1)  # each year: +0.1% a day, simple
    assert len(executor.ran) == 2 * 6 + 2
    written = list(csv.DictReader((tmp_path / "out" / "walk_forward.csv").open()))
    assert [r["fold"] for r in written] == ["1", "2", "all (chained)"]


def test_optuna_with_the_same_seed_asks_the_same_trials(tmp_path):
    grid = "signal.volume_multiple = [1.0, 2.5]\nsignal.fail_pct = [0.02, 0.08]\n"

    def trials(folder: Path, seed: int) -> list[dict[str, Any]]:
        sweeper, _ = stub_sweeper(folder, grid)
        rows = optuna_search(sweeper, SHORT, 12, seed, "sharpe")
        return [r["params"] for r in rows]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    first = trials(tmp_path / "a", 5)
    assert len(first) == 12
    assert all(1.0 <= p["signal.volume_multiple"] <= 2.5 for p in first)
    assert first == trials(tmp_path / "b", 5)
    assert first != trials(tmp_path / "c", 6)


# --- real backtests -----------------------------------------------------------------------------


def test_dask_local_cluster_matches_the_process_pool(tmp_path, sample_dir):
    grid = parse_grid(write(tmp_path, 'staging.after_window = ["taper", "exit"]'))
    points = cartesian(grid)
    base = sample_config(sample_dir)
    pool = ProcessExecutor(2)
    try:
        by_pool = Sweeper(base, grid, tmp_path / "pool", pool).evaluate(points, SHORT)
    finally:
        pool.close()
    dask = DaskExecutor(2, processes=False)
    try:
        by_dask = Sweeper(base, grid, tmp_path / "dask", dask).evaluate(points, SHORT)
    finally:
        dask.close()
    inline = Sweeper(base, grid, tmp_path / "inline", InlineExecutor()).evaluate(points, SHORT)
    assert (pool.where, dask.where, InlineExecutor().where) == (
        "2 worker processes",
        "2 dask workers",
        "1 process",
    )
    for a, b, c in zip(by_pool, by_dask, inline, strict=True):
        assert a["orders"] > 0
        assert (
            {m: a[m] for m in METRICS} == {m: b[m] for m in METRICS} == {m: c[m] for m in METRICS}
        )


def test_the_sweep_command_end_to_end_then_resumes(tmp_path, sample_dir):
    config = write(
        tmp_path, f'[data]\nsource = "replay"\ndir = "{sample_dir}"\n', name="config.toml"
    )
    grid = write(tmp_path, "signal.volume_multiple = [1.2, 1.5]\nsignal.fail_pct = [0.03, 0.05]\n")
    out = tmp_path / "out"
    argv = [
        "sweep",
        "--config",
        str(config),
        "--grid",
        str(grid),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--start",
        "2020-11-20",
        "--end",
        "2020-12-31",
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "top 4 of 4 points by sharpe" in result.output
    assert "sensitivity" in result.output
    said = " ".join(result.output.split())
    assert f"4 points run, 0 already in {out / 'results.csv'};" in said
    assert "points/s on 2 worker processes; window 2020-11-20..2020-12-31" in said
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4
    assert {r["start"] for r in rows} == {"2020-11-20"}
    sensitivity = list(csv.DictReader((out / "sensitivity.csv").open()))
    assert [r["step"] for r in sensitivity].count("0") == 2
    again = runner.invoke(app, argv)
    assert again.exit_code == 0, again.output
    assert "0 points run, 4 already" in again.output


def test_the_sweep_command_refuses_a_bad_grid_in_one_line_before_any_work(tmp_path):
    grid = write(tmp_path, "signal.volume_multiple = [1.2, -1.0]\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "sweep",
            "--config",
            str(ROOT / "config/sim.toml"),
            "--grid",
            str(grid),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "signal.volume_multiple = -1.0" in lines[0]
    assert not out.exists()


def test_a_list_index_past_the_end_is_one_line_naming_the_list_and_its_length(tmp_path):
    grid = write(tmp_path, "staging.stages.9.budget = [0.1]\n")
    config = str(ROOT / "config/sim.toml")
    out = str(tmp_path / "out")
    result = runner.invoke(app, ["sweep", "--config", config, "--grid", str(grid), "--out", out])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {grid}: staging.stages.9.budget = 0.1: staging.stages.9: no such index "
        "(the config's staging.stages has 4 items: 0..3)"
    ]


@pytest.mark.parametrize(
    ("grid", "out"),
    [
        ("config/sweep-example.toml", "runs/sweep-example"),
        ("config/sweep.toml", "runs/sweep"),
        ("grids/volume.toml", "runs/sweep-volume"),
    ],
)
def test_the_default_out_folder_says_sweep_once(grid, out):
    assert default_out(Path(grid)) == Path(out)


def test_the_shipped_example_grid_validates_against_the_sample_config():
    grid = parse_grid(ROOT / "config" / "sweep-example.toml")
    from agent.config import load_config

    configs = validate(grid, load_config(ROOT / "config" / "sim.toml"), cartesian(grid))
    assert 2 <= len(configs) <= 8


def test_leave_one_out_runs_each_point_once_per_episode_and_scores_the_held_out_one(tmp_path):
    sweeper, executor = stub_sweeper(tmp_path, GRID)
    episodes = episode_windows(
        [{"confirmed": "2016-11-11"}, {"confirmed": "2020-12-04"}, {"confirmed": "2025-09-22"}],
        121,
        Window(pd.Timestamp("2015-01-01"), pd.Timestamp("2025-12-31")),
    )
    rows, overall = run_folds(
        sweeper,
        leave_one_out_folds(episodes),
        "grid",
        cartesian(sweeper.grid),
        trials=0,
        seed=0,
        objective="sharpe",
        name="leave_one_out",
    )
    assert len(executor.ran) == 6 * 3  # every point on every episode, once: no re-runs
    assert [r["test_start"] for r in rows] == ["2016-11-11", "2020-12-04", "2025-09-22"]
    assert overall["orders"] == 9
    assert (tmp_path / "out" / "leave_one_out.csv").exists()


def test_a_worker_reads_the_data_once_and_again_when_a_file_changes(tmp_path, sample_dir):
    import os
    import shutil

    from agent.tuning.worker import cached_market_data

    folder = tmp_path / "data"
    shutil.copytree(sample_dir, folder)
    config = sample_config(folder)
    first = cached_market_data(config)
    assert cached_market_data(config) is first
    spy = folder / "SPY.csv"
    os.utime(spy, ns=(spy.stat().st_atime_ns, spy.stat().st_mtime_ns + 10**9))
    assert cached_market_data(config) is not first
