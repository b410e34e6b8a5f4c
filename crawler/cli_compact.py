"""`mediawatch compact`: a lake's maintenance run by hand (archive/lake/compact.py); the
daemon runs the same on its schedule."""

from __future__ import annotations

from datetime import timedelta

import click

from archive.db import ArchiveError
from crawler.options import fail


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    from crawler.outlets import parse_duration

    try:
        return timedelta(seconds=parse_duration(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


@click.command("compact")
@click.option(
    "--db",
    "db_path",
    envvar="MEDIAWATCH_DB",
    required=True,
    metavar="URL",
    help="The lake: postgresql://USER@HOST:PORT/DBNAME?data=DIR_OR_S3_PREFIX. Env: MEDIAWATCH_DB.",
)
@click.option(
    "--keep",
    default="7d",
    show_default=True,
    callback=_duration,
    help="Snapshots younger than this stay readable (time travel).",
)
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    callback=_duration,
    help="Files unused for this long are deleted (a reader may still scan younger ones).",
)
def compact_cmd(db_path: str, keep: timedelta, grace: timedelta) -> None:
    """Flush inlined rows, merge small files, expire old snapshots and delete unused files
    of a lake, then print what changed. Readers and writers go on meanwhile; a second
    compaction of the same lake at the same time is skipped. Exits 1 when a step failed
    (it is tried again next time).

    \b
    Example:
      mediawatch compact --db 'postgresql://postgres@127.0.0.1:5432/news?data=/srv/lake/'
    """
    from archive.lake.compact import compact
    from archive.target import LakeTarget, parse_target

    try:
        target = parse_target(db_path)
        if not isinstance(target, LakeTarget):
            fail(
                f"--db: {db_path!r} is a file; only a lake is compacted (DuckDB checkpoints a file)",
                2,
            )
        report = compact(target, keep=keep, grace=grace)
    except ArchiveError as exc:
        fail(str(exc))
    if report.failed:
        fail(report.summary())
    click.echo(report.summary())


def register(group: click.Group) -> None:
    group.add_command(compact_cmd)
