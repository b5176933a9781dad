"""The `spillover` command line: one console script, `python -m agent` the same.

Heavy imports (pandas, pydantic, the adapters) happen inside the commands, so `--help` stays fast.
Every user error ends in one line per problem and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

import agent

if TYPE_CHECKING:
    import pandas as pd

    from agent.config import Config
    from agent.stopping import StopSignals

T = TypeVar("T")

EXIT_USAGE = 2
EXIT_LIVE_REFUSED = 3
EXIT_NOT_RECONCILED = 4

app = typer.Typer(
    name="spillover",
    help=(
        "Paper-trading agent: stages crypto exposure in the lag window after a small-cap breakout."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check and show config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Generate and check market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigFile = Annotated[Path, typer.Argument(help="A TOML config file, e.g. config/sim.toml.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spillover {agent.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Paper only: orders go to exchange testnets or the in-process paper venue, never live."""


@config_app.command("check")
def config_check(file: ConfigFile) -> None:
    """Validate FILE (with SPILLOVER__SECTION__KEY overrides): `ok`, or one line per problem."""
    _load(file)
    typer.echo("ok")


@config_app.command("show")
def config_show(file: ConfigFile) -> None:
    """Print the effective config of FILE as TOML: defaults filled in, overrides applied."""
    typer.echo(_load(file).to_toml(), nl=False)


@data_app.command("sample")
def data_sample(
    out: Annotated[Path, typer.Option(help="Folder to write SYMBOL.csv files into.")],
    seed: Annotated[int, typer.Option(help="The same seed gives the same files.")] = 7,
) -> None:
    """Write seeded sample bars (IWM, SPY, BTC, ETH, altcoins) with planted breakouts."""
    from agent.marketdata.sample import write_sample

    manifest = write_sample(out, seed)
    typer.echo(f"wrote {len(manifest.symbols)} files to {out} (seed {seed})")


DEFAULT_CONFIG = Path("config/sim.toml")
ConfigOption = Annotated[Path, typer.Option("--config", help="A TOML config file.")]
DateOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="A UTC day, YYYY-MM-DD.")
]


@app.command()
def backtest(
    config: ConfigOption = DEFAULT_CONFIG,
    data_dir: Annotated[
        Path | None, typer.Option(help="Replay the CSV files in this folder instead.")
    ] = None,
    start: DateOption = None,
    end: DateOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default runs/backtest-NAME).")
    ] = None,
) -> None:
    """Backtest: the live tick on a simulated clock over replayed bars, into the paper venue
    (a testnet config with --data-dir backtests its strategy on the paper venue)."""
    from agent.backtest import run_backtest
    from agent.output import backtest_progress, print_metrics

    settings = _with_data_dir(_load(config), data_dir)
    folder = out or Path("runs") / f"backtest-{config.stem}"
    with backtest_progress() as on_tick:
        result = _guard(
            lambda: run_backtest(
                settings, folder, start=_day(start), end=_day(end), on_tick=on_tick
            )
        )
    print_metrics(result.summary)
    typer.echo(f"wrote {folder}/decisions.jsonl, equity.csv, summary.json")


@app.command()
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    run_dir: Annotated[Path | None, typer.Option(help="Run folder (default: run.dir).")] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Replay speed, simulated days per second (default: run.speed)."),
    ] = None,
    accept_config_change: Annotated[
        bool,
        typer.Option(
            "--accept-config-change",
            help="Resume a run whose config has changed (the journal records both hashes).",
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Start a new run: an earlier run's files are moved to previous/."
        ),
    ] = False,
) -> None:
    """Run the agent. A run folder that holds a run resumes it: state restored from the folder's
    store and reconciled with the venue before any trade. Replayed data plays on an accelerated
    clock; SIGINT/SIGTERM stop it cleanly after the current tick."""
    from agent.stopping import StopSignals

    with StopSignals() as stop:  # from the start: a SIGTERM while loading stops cleanly too
        _run(config, run_dir, speed, accept_config_change, fresh, stop)


def _run(
    config: Path,
    run_dir: Path | None,
    speed: float | None,
    accept_config_change: bool,
    fresh: bool,
    stop: StopSignals,
) -> None:
    from agent.backtest import run_backtest
    from agent.output import decision_line, print_run_summary, start_line

    settings = _load(config)
    if speed is not None and not speed > 0:
        _fail(f"--speed: must be > 0, got {speed}")
    folder = run_dir or settings.run.dir
    if settings.data.source == "alpaca":
        from agent.live import run_live
        from agent.secrets import load_env

        reason = _guard(
            lambda: run_live(
                settings,
                folder,
                load_env(),
                should_stop=stop.requested,
                on_tick=lambda tick: typer.echo(decision_line(tick)),
                accept_config_change=accept_config_change,
                fresh=fresh,
                on_start=lambda opened, done: typer.echo(start_line(folder, opened, done)),
            )
        )
        typer.echo(f"stopped: {reason}; journal {folder / 'decisions.jsonl'}")
        return
    pace = 1 / (speed or settings.run.speed)
    start = _day(settings.run.start)
    result = _guard(
        lambda: run_backtest(
            settings,
            folder,
            start=start,
            on_tick=lambda tick, _n, _total: typer.echo(decision_line(tick)),
            mode="run",
            pace=pace,
            should_stop=stop.requested,
            accept_config_change=accept_config_change,
            fresh=fresh,
            on_start=lambda opened, done: typer.echo(start_line(folder, opened, done)),
        )
    )
    print_run_summary(result, stop.signal_name)


@app.command()
def doctor(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check a testnet config: keys present (never shown), endpoints, sandbox URLs, markets,
    balances. One line per check; exit 1 when any fails."""
    from datetime import UTC, datetime

    from agent.doctor import Level, run_checks
    from agent.secrets import load_env

    settings = _load(config)
    failed = False
    for check in run_checks(settings, load_env(), lambda: datetime.now(UTC)):
        typer.echo(check.line(), err=check.level is Level.FAIL)
        failed |= check.level is Level.FAIL
    if failed:
        raise typer.Exit(1)


@app.command()
def status(
    run_dir: Annotated[Path, typer.Argument(help="A run folder, e.g. runs/sim.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")] = False,
    max_age: Annotated[
        float | None,
        typer.Option(
            help="Health check: exit 1 unless the heartbeat is at most this many seconds old."
        ),
    ] = None,
) -> None:
    """Where a run stands: breakout state, stage, positions and weights, open orders, the last
    decision and its reason, halts, the last tick and the heartbeat."""
    import json

    from agent.status import run_status
    from agent.store import StoreError

    try:
        state = run_status(run_dir)
    except StoreError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(state, indent=2))
    else:
        from agent.output import print_status

        print_status(state)
    beat = state["heartbeat"]
    if max_age is not None and (beat is None or beat["age_s"] > max_age):
        age = "none" if beat is None else f"{beat['age_s']:.0f} s old"
        typer.echo(f"unhealthy: heartbeat {age} (max {max_age:g} s)", err=True)
        raise typer.Exit(1)


def _day(value: date | None) -> pd.Timestamp | None:
    import pandas as pd

    return None if value is None else pd.Timestamp(value).normalize()


def _with_data_dir(config: Config, data_dir: Path | None) -> Config:
    if data_dir is None:
        return config
    data = config.data.model_copy(update={"dir": data_dir, "source": "replay"})
    venue = config.venue.model_copy(update={"kind": "paper", "exchange": "", "api_url": ""})
    return config.model_copy(update={"data": data, "venue": venue})


def _guard(work: Callable[[], T]) -> T:
    """Run `work`; bad data, a missing key, a run folder that cannot be resumed as asked or a
    venue that refuses at start end in one line and exit code 2; an attempt to reach a live
    endpoint in one line and exit code 3; a resumed run that cannot be reconciled with its venue
    in one line and exit code 4."""
    from agent.ports import DataError, PermanentVenueError
    from agent.reconcile import ReconcileError
    from agent.runtime import RunFolderError
    from agent.secrets import MissingSecret
    from agent.store import StoreError
    from agent.venue.testnet import LiveEndpointRefused

    try:
        return work()
    except (DataError, MissingSecret, PermanentVenueError, RunFolderError, StoreError) as exc:
        _fail(str(exc))
    except ReconcileError as exc:
        typer.echo(f"not trading: {exc}", err=True)
        raise typer.Exit(EXIT_NOT_RECONCILED) from None
    except LiveEndpointRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(EXIT_LIVE_REFUSED) from None


def _fail(line: str) -> NoReturn:
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(EXIT_USAGE)


@data_app.command("pull")
def data_pull(
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Folder to write SYMBOL.csv files into.")],
    start: DateOption = None,
    end: DateOption = None,
) -> None:
    """Download the daily bars CONFIG needs (equities from Alpaca, crypto from the exchange's
    public candles) into the replay format, for backtests on fresh data."""
    from datetime import UTC, datetime

    import pandas as pd

    from agent.marketdata.pull import pull
    from agent.secrets import load_env

    settings = _load(config)
    today = pd.Timestamp(datetime.now(UTC).date())
    first = _day(start) or pd.Timestamp("2015-01-01")
    last = _day(end) or today - pd.Timedelta(days=1)
    paths = _guard(lambda: pull(settings, out, load_env(), first, last, lambda: datetime.now(UTC)))
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command()
def study(
    data_dir: Annotated[Path, typer.Option(help="Folder of replayed SYMBOL.csv files.")],
    config: ConfigOption = DEFAULT_CONFIG,
    out: Annotated[
        Path | None, typer.Option(help="JSON file to write (default runs/study-NAME.json).")
    ] = None,
    horizons: Annotated[
        str, typer.Option(help="Forward horizons in calendar days, comma-separated.")
    ] = "30,60,90",
    samples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap: same seed, same numbers.")] = 0,
) -> None:
    """Event study: each crypto asset's forward returns after every confirmed breakout against
    those from all other days (percentile, excess over the median, bootstrap interval)."""
    import json

    from agent.study import print_study, run_study

    try:
        days = [int(part) for part in horizons.split(",")]
    except ValueError:
        _fail(f"--horizons: expected days like 30,60,90, got {horizons!r}")
    if not days or min(days) <= 0:
        _fail(f"--horizons: days must be positive, got {horizons!r}")
    if samples <= 0:
        _fail(f"--samples: must be positive, got {samples}")
    settings = _with_data_dir(_load(config), data_dir)
    result = _guard(lambda: run_study(settings, days, samples=samples, seed=seed))
    print_study(result)
    path = out or Path("runs") / f"study-{config.stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    typer.echo(f"wrote {path}")


@app.command()
def sweep(
    grid: Annotated[
        Path, typer.Option(help="Grid TOML: dotted config keys mapped to lists of values.")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    jobs: Annotated[
        int | None, typer.Option(help="Points run in parallel (default: CPU count).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default runs/sweep-GRIDNAME, or runs/GRIDNAME if it starts sweep)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Replay the CSV files in this folder instead.")
    ] = None,
    start: DateOption = None,
    end: DateOption = None,
    search: Annotated[str, typer.Option(help="grid (every point), random or optuna.")] = "grid",
    trials: Annotated[int | None, typer.Option(help="Points of a random or optuna search.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random or optuna search.")] = 0,
    objective: Annotated[
        str, typer.Option(help="What to maximise: sharpe, cagr, calmar or sortino.")
    ] = "sharpe",
    walk_forward: Annotated[
        str | None,
        typer.Option(help="Rolling windows, e.g. train=4y,test=1y: out-of-sample results only."),
    ] = None,
    leave_one_out: Annotated[
        bool,
        typer.Option(
            "--leave-one-out", help="Choose on the other breakout episodes, score on each one."
        ),
    ] = False,
    sensitivity: Annotated[
        bool, typer.Option(help="Metrics of the best point moved one grid step per key.")
    ] = True,
    executor: Annotated[str, typer.Option(help="processes or dask.")] = "processes",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a local cluster).")
    ] = None,
) -> None:
    """Sweep config keys over a grid (or random / optuna search), each point the real backtest;
    writes OUT/results.csv (resumable) and prints a ranked table."""
    from agent.tuning.command import SweepOptions, default_out, run_sweep
    from agent.tuning.grid import GridError
    from agent.tuning.sweep import SweepError
    from agent.tuning.windows import WindowError

    settings = _with_data_dir(_load(config), data_dir)
    options = SweepOptions(
        grid=grid,
        out=out or default_out(grid),
        jobs=jobs,
        search=search,
        trials=trials,
        seed=seed,
        objective=objective,
        start=_day(start),
        end=_day(end),
        walk_forward=walk_forward,
        leave_one_out=leave_one_out,
        sensitivity=sensitivity,
        executor=executor,
        scheduler=scheduler,
    )
    try:
        _guard(lambda: run_sweep(settings, options))
    except (GridError, SweepError, WindowError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo(f"interrupted: finished points are kept in {options.out}/results.csv", err=True)
        raise typer.Exit(130) from None


logs_app = typer.Typer(
    help="Review a decision journal: summary, show, explain, tail.", no_args_is_help=True
)
app.add_typer(logs_app, name="logs")
JournalArg = Annotated[
    Path, typer.Argument(help="A run folder (its decisions.jsonl) or a journal file.")
]


@logs_app.command("summary")
def logs_summary(
    journal: JournalArg,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Parse every line in full (slower; no fast path).")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            help="Read a journal over 64 MB in N parts, by N processes (default: the CPU count,"
            " at most 4; 1: one pass). The result is the same.",
            min=1,
        ),
    ] = None,
) -> None:
    """Counts by event and action, stage transitions, halts, clamps by rule, orders, fills,
    errors and retries, reconciliation, sessions, first and last timestamps."""
    from agent.logs.command import summary
    from agent.logs.read import LogsError

    try:
        summary(journal, as_json=as_json, strict=strict, jobs=jobs)
    except LogsError as exc:
        _fail(str(exc))


@logs_app.command("show")
def logs_show(
    journal: JournalArg,
    since: Annotated[
        str | None, typer.Option(help="From this date (2021-01-04) or timestamp, UTC.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this date (the whole day) or timestamp.")
    ] = None,
    event: Annotated[
        list[str] | None, typer.Option(help="Only this event (repeat for several).")
    ] = None,
    asset: Annotated[
        str | None, typer.Option(help="Records about this asset (decisions: its orders, clamps).")
    ] = None,
    rule: Annotated[
        str | None, typer.Option(help="Risk or halt records of this rule, decisions it clamped.")
    ] = None,
    decision: Annotated[
        str | None, typer.Option(help="Records of this decision id.", metavar="ID")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many records.", min=0)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The records as written, one per line (for jq).")
    ] = False,
) -> None:
    """The records that match every filter, as a table or as JSON lines."""
    from agent.logs.command import make_filter, show
    from agent.logs.read import LogsError

    try:
        wanted = make_filter(
            since=since, until=until, events=event, asset=asset, rule=rule, decision=decision
        )
        show(journal, wanted, limit=limit, as_json=as_json)
    except LogsError as exc:
        _fail(str(exc))


@logs_app.command("explain")
def logs_explain(
    journal: JournalArg,
    decision_id: Annotated[str, typer.Argument(help="A decision id from the journal.")],
) -> None:
    """One decision in plain words: breakout evidence, stage and targets, every risk clamp, the
    orders and the fills that followed, with their client ids."""
    from agent.logs.command import explain
    from agent.logs.read import LogsError

    try:
        explain(journal, decision_id)
    except LogsError as exc:
        _fail(str(exc))


@logs_app.command("tail")
def logs_tail(
    journal: JournalArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing records as they are written.")
    ] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Start with the last N records.", min=0)
    ] = 10,
) -> None:
    """The last records, one readable line each; -f follows a running agent's journal (Ctrl-C
    stops)."""
    from agent.logs.command import tail
    from agent.logs.read import LogsError

    try:
        tail(journal, count=lines, follow=follow)
    except LogsError as exc:
        _fail(str(exc))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder: backtest, run or testnet.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """One self-contained HTML file (opens with no network): equity against buy-and-hold BTC,
    the small-cap proxy with its breakout level and states, exposure by asset and the stage,
    drawdown, the metrics and a searchable table of decisions with their clamps."""
    from agent.report import ReportError, write_report

    try:
        path = write_report(run_dir, out)
    except ReportError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {path}")


def _load(file: Path) -> Config:
    from agent.config import ConfigError, load_config

    try:
        return load_config(file)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_USAGE) from None


def main() -> None:
    app()
