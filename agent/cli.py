"""The `spillover` command line: one console script, `python -m agent` the same.

Heavy imports (pandas, pydantic, the adapters) happen inside the commands, so `--help` stays fast.
Every user error ends in one line per problem and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent import __version__

if TYPE_CHECKING:
    from agent.config import Config

EXIT_USAGE = 2

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

ConfigFile = Annotated[Path, typer.Argument(help="A TOML config file, e.g. config/sim.toml.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spillover {__version__}")
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
