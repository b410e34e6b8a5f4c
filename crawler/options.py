"""Options and the error exit shared by every command (the CLI, the daemon's commands), so
the default paths and the one-line error are written once and no module imports the CLI."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from archive.db import DEFAULT_ARCHIVE

DEFAULT_CONFIG = "outlets.toml"
DEFAULT_DB = DEFAULT_ARCHIVE

config_option = click.option(
    "--config",
    "config_path",
    envvar="MEDIAWATCH_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Outlet config (TOML). Env: MEDIAWATCH_CONFIG.",
)
db_option = click.option(
    "--db",
    "db_path",
    envvar="MEDIAWATCH_DB",
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Archive: a DuckDB file, or a lake postgresql://USER@HOST:PORT/DBNAME?data=DIR. Env: MEDIAWATCH_DB.",
)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, a non-zero exit: how every command reports an error."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
