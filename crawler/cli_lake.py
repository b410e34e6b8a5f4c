"""`mediawatch migrate`: move an embedded archive into a lake (archive/lake/migrate.py)."""

from __future__ import annotations

import sys

import click

from archive.db import ArchiveError
from crawler.options import fail


@click.command("migrate")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False),
    help="The embedded archive (DuckDB file) to move; stop `mediawatch run` on it first.",
)
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL",
    help="The lake: postgresql://USER@HOST:PORT/DBNAME?data=DIR_OR_S3_PREFIX (created on first use).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Articles (or pages) per lake transaction.  [default: 2000]",
)
def migrate_cmd(source: str, to: str, batch: int | None) -> None:
    """Move an embedded archive into a lake, then print the rows of each table on both sides.

    Adds only what the lake lacks: a second run adds nothing, and a run that was killed
    resumes where it stopped. Exits 1 when a count differs. The lake's search index
    (PostgreSQL text search) is built from the moved articles.

    \b
    Example:
      mediawatch migrate --from data/archive.duckdb \\
        --to 'postgresql://postgres@127.0.0.1:5432/news?data=/srv/mediawatch/lake/'
    """
    from archive.lake.migrate import BATCH, migrate_archive
    from archive.target import LakeTarget, parse_target

    try:
        target = parse_target(to)
    except ArchiveError as exc:
        fail(f"--to: {exc}", 2)
    if not isinstance(target, LakeTarget):
        fail(
            f"--to: {to!r} is a file path; a lake is postgresql://USER@HOST:PORT/DBNAME?data=DIR", 2
        )
    tty = sys.stderr.isatty()

    def progress(what: str, done: int, total: int) -> None:
        if tty:
            click.echo(f"\r{what}: {done}/{total} ids".ljust(40), nl=False, err=True)

    try:
        result = migrate_archive(source, target, batch=batch or BATCH, progress=progress)
    except ArchiveError as exc:
        if tty:
            click.echo("", err=True)
        fail(str(exc))
    if tty:
        click.echo("", err=True)
    width = max(len(c.table) for c in result.counts)
    click.echo(f"{'table':<{width}}  {'archive':>9}  {'lake':>9}")
    for c in result.counts:
        click.echo(f"{c.table:<{width}}  {c.source:>9}  {c.lake:>9}{'' if c.ok else '  DIFFERS'}")
    added = sum(result.added.values())
    click.echo(f"{added} rows added to {target.display()}", err=True)
    if added:  # the lake's search index is PostgreSQL's: built from what the lake now holds
        from archive.lake.search_index import reindex

        try:
            click.echo(f"{reindex(target)} articles indexed for search", err=True)
        except ArchiveError as exc:
            fail(f"the archive moved, but its search index was not built: {exc}")
    if not result.ok:
        bad = ", ".join(c.table for c in result.counts if not c.ok)
        fail(
            f"counts differ for {bad}: run the migrate again, or see what else writes to this lake"
        )


def register(group: click.Group) -> None:
    group.add_command(migrate_cmd)
