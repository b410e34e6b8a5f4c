"""`mediawatch query`, `search`, `export`, `reindex`: the archive's reader commands.

Each opens the archive read-only (retrying while the ingest writes) and closes it as soon
as its output is written. Errors are one line on stderr with exit code 1.
"""

from __future__ import annotations

import json
import re
import sys
from typing import IO, TYPE_CHECKING, NoReturn

import click

from archive.db import ArchiveError
from crawler.options import db_option, fail

if TYPE_CHECKING:
    from rich.text import Text

    from archive.search import Hit


def _fail(message: str) -> NoReturn:
    fail(message)


@click.command("query")
@click.argument("sql", required=False)
@click.option(
    "--file",
    "-f",
    "sql_file",
    type=click.File("r", encoding="utf-8"),
    help="Read the SQL from this file ('-' for stdin).",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Named parameter, used as $NAME in the SQL (repeatable). Values are text: cast in SQL.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "jsonl", "parquet"]),
    default="table",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write to this file instead of stdout (never the archive or its files).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@db_option
def query_cmd(
    sql: str | None,
    sql_file: IO[str] | None,
    params: tuple[str, ...],
    fmt: str,
    output: str | None,
    overwrite: bool,
    db_path: str,
) -> None:
    """Run one read-only SQL statement over the archive.

    SQL comes from the argument, from --file, or from stdin when the argument is '-'.
    Writes (COPY, ATTACH, SET, PRAGMA, INSTALL...) are refused. Views: article_latest,
    article_history, articles_per_outlet_day, syndication, syndication_copies,
    removed_promotions, outlet_activity, outlet_status. Ranked search as a table:
    search_articles('terms'), same syntax and scores as `mediawatch search`.

    \b
    Examples:
      mediawatch query "SELECT outlet, sum(articles) FROM articles_per_outlet_day GROUP BY 1"
      mediawatch query "SELECT title FROM articles WHERE outlet = \\$o LIMIT \\$n::INT" -p o=lemonde -p n=5
      mediawatch query --file report.sql --format parquet --output report.parquet --overwrite
      echo "SELECT * FROM outlet_activity" | mediawatch query - --format json
      mediawatch query "SELECT published_at::DATE AS day, count(*) FROM search_articles('\"élections municipales\" -paris') GROUP BY 1 ORDER BY 1"
    """
    from archive.query import QueryError, parse_params, run_query

    if sql_file is not None and sql is not None:
        _fail("give the SQL as an argument or with --file, not both")
    if sql_file is not None:
        text = sql_file.read()
    elif sql == "-":
        text = sys.stdin.read()
    elif sql is not None:
        text = sql
    else:
        _fail("no SQL given (an argument, --file FILE, or '-' for stdin)")
    try:
        run_query(
            db_path,
            text,
            parse_params(params),
            fmt=fmt,
            output=output,
            stream=sys.stdout,
            overwrite=overwrite,
        )
    except (QueryError, ArchiveError) as exc:
        _fail(str(exc))


@click.command("search")
@click.argument("terms", nargs=-1, required=True)
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    help="Only articles in this language, ISO 639-1 (repeatable).",
)
@click.option("--since", help="Published at or after (YYYY-MM-DD or ISO date-time, UTC if naive).")
@click.option("--until", help="Published before (a bare date includes that day).")
@click.option("--limit", "-n", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    default="table",
    show_default=True,
)
@db_option
def search_cmd(
    terms: tuple[str, ...],
    outlets: tuple[str, ...],
    languages: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
    db_path: str,
) -> None:
    """Full-text search, best match first (BM25 over title and text; ts_rank on a lake).

    Words are stemmed in each article's language, so "élections" also finds "élection"
    and "voters" finds "voter". Snippets mark matched words as **word**.

    \b
    Syntax:
      words        any of them, best match first
      "a phrase"   these words in this order (accents and case aside); required
      +word        required; a AND b requires both; OR is the default
      -word        excluded
      pre*         requires a word starting with pre

    \b
    Examples:
      mediawatch search "élections municipales" --outlet lemonde --since 2026-11-01
      mediawatch search '"élections municipales" -paris' --lang fr
      mediawatch search 'trump* AND tariffs' --lang en --limit 5 --format json
    In SQL (mediawatch query): SELECT * FROM search_articles('"la gauche" -paris')
    """
    from archive.export import parse_when
    from archive.query import QueryError, check_languages, check_outlets, open_archive, write_rows
    from archive.search import SearchFilters, search_in
    from archive.search_syntax import QuerySyntaxError
    from archive.target import is_lake

    try:
        since_dt, until_dt = parse_when(since), parse_when(until, end=True)
        filters: SearchFilters = {"outlets": outlets, "languages": languages, "since": since_dt,
                                  "until": until_dt, "limit": limit}  # fmt: skip
        # a lake's search is PostgreSQL's alone: its reader (an ATTACH) only checks the names
        con = (
            open_archive(db_path, sandbox=True, timezone="UTC")
            if outlets or languages or not is_lake(db_path)
            else None
        )
        try:
            if con is not None:
                check_outlets(con, outlets)
                check_languages(con, languages)
            hits = search_in(db_path, con, " ".join(terms), **filters)
        finally:
            if con is not None:
                con.close()
    except QuerySyntaxError as exc:
        _fail(f"query: {exc}")
    except (QueryError, ArchiveError) as exc:
        _fail(str(exc))
    except Exception as exc:  # a DuckDB error: condense it
        from archive.query import condense_error

        _fail(condense_error(exc))
    stream = sys.stdout
    columns = ["id", "url", "outlet", "title", "published_at", "language", "score", "snippet"]
    if fmt == "json":
        from archive.query import jsonable

        stream.write(
            json.dumps([jsonable(h.as_dict()) for h in hits], ensure_ascii=False, indent=2) + "\n"
        )
    elif fmt in ("jsonl", "csv"):
        rows = [tuple(getattr(h, c) for c in columns) for h in hits]
        write_rows(columns, [rows], fmt, stream)
    else:
        _print_hits(hits, stream)


def _print_hits(hits: list[Hit], stream: IO[str]) -> None:
    """Hits as a table; matched words in bold on a terminal, **word** in a pipe."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    tty = hasattr(stream, "isatty") and stream.isatty()
    console = Console(file=stream, width=None if tty else 200, highlight=False)
    table = Table(header_style="bold", show_lines=True)
    for name in ("score", "published", "outlet", "title / snippet"):
        table.add_column(name, overflow="fold")
    for h in hits:
        cell = Text(h.title or "(no title)", style="bold")
        cell.append("\n")
        cell.append_text(_marked(h.snippet, tty))
        cell.append(f"\n{h.url}", style="dim")
        published = h.published_at.strftime("%Y-%m-%d %H:%M") if h.published_at else ""
        table.add_row(
            Text(f"{h.score:.3f}"), Text(published), Text(h.outlet), cell
        )  # data, not markup
    console.print(table)
    console.print(f"{len(hits)} hit{'s' if len(hits) != 1 else ''}", style="dim", markup=False)


def _marked(snippet: str, tty: bool) -> Text:
    from rich.text import Text

    if not tty:
        return Text(snippet)
    text = Text()
    for i, part in enumerate(re.split(r"\*\*", snippet)):
        text.append(part, style="bold yellow" if i % 2 else "")
    return text


@click.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl", "warc"]), required=True
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(),
    help="Directory for parquet (partitioned outlet=/day=), else a file (.warc.gz is gzipped).",
)
@click.option("--since", help="From this date (YYYY-MM-DD or ISO date-time, UTC if naive).")
@click.option("--until", help="Before this date (a bare date includes that day).")
@click.option(
    "--date-field",
    type=click.Choice(["published", "first_seen"]),
    default="published",
    show_default=True,
    help="Which date --since/--until apply to.",
)
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output file (or an earlier export's parquet partitions).",
)
@db_option
def export_cmd(
    fmt: str,
    output: str,
    since: str | None,
    until: str | None,
    date_field: str,
    outlets: tuple[str, ...],
    overwrite: bool,
    db_path: str,
) -> None:
    """Export articles (or, as WARC, their raw pages) for a time range and/or outlets.

    \b
    Examples:
      mediawatch export --format parquet --output out/ --since 2026-11-01 --until 2026-11-30
      mediawatch export --format warc --output lemonde.warc.gz --outlet lemonde --since 2026-11-29
      mediawatch export --format jsonl --output new.jsonl --date-field first_seen --since 2026-12-01
    """
    from archive.export import Selection, export, parse_when
    from archive.query import QueryError

    try:
        sel = Selection(
            since=parse_when(since),
            until=parse_when(until, end=True),
            outlets=outlets,
            date_field=date_field,
        )
        n = export(db_path, output, fmt, sel, overwrite=overwrite)
    except (QueryError, ArchiveError) as exc:
        _fail(str(exc))
    what = "pages" if fmt == "warc" else "articles"
    click.echo(f"{n} {what} written to {output}", err=True)


@click.command("reindex")
@click.option("--full", is_flag=True, help="Rebuild the whole search index (also compacts it).")
@click.option("--compact", is_flag=True, help="Also delete postings of superseded texts.")
@db_option
def reindex_cmd(full: bool, compact: bool, db_path: str) -> None:
    """Bring the search index up to date (articles missing or at an older version).

    The ingest keeps the index current by itself; this is for archives made before the
    index existed, and for upkeep: --compact sweeps postings of edited or removed texts,
    --full rebuilds everything sorted by term. Takes the write lock.

    \b
    Examples:
      mediawatch reindex --compact
      mediawatch reindex --full --db data/archive.duckdb
    """
    import time

    from archive.db import writer
    from archive.search import compact_index, index_pending, rebuild_index
    from archive.target import LakeTarget, parse_target
    from archive.tx import transaction

    t0 = time.perf_counter()
    swept = 0
    try:
        target = parse_target(db_path)
        if isinstance(target, LakeTarget):  # the lake's index lives in PostgreSQL: rebuilt whole
            from archive.lake.search_index import reindex

            n = reindex(target)
            click.echo(f"{n} articles indexed in {time.perf_counter() - t0:.1f} s", err=True)
            return
        with writer(db_path) as con, transaction(con):
            n = rebuild_index(con) if full else index_pending(con)
            if compact and not full:
                swept = compact_index(con)
    except ArchiveError as exc:
        _fail(str(exc))
    extra = f", {swept} stale postings deleted" if compact and not full else ""
    click.echo(f"{n} articles indexed{extra} in {time.perf_counter() - t0:.1f} s", err=True)


def register(group: click.Group) -> None:
    """Add the archive reader commands to the main `mediawatch` group."""
    for cmd in (query_cmd, search_cmd, export_cmd, reindex_cmd):
        group.add_command(cmd)
