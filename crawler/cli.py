"""The `mediawatch` command. Errors are one line on stderr with a non-zero exit code;
every command's help shows an example."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from archive.db import ArchiveError
from crawler.options import config_option, db_option, fail


def _load(config_path: str) -> Any:
    from crawler.outlets import (  # regex, apscheduler: only when a config is read
        ConfigError,
        load_config,
    )

    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), 2)


class _LazyGroup(click.Group):
    """Commands of other modules are imported when asked for: `mediawatch query` should not
    pay for the daemon, the scheduler and the cleaning stack (0.9 s against 0.1 s for duckdb)."""

    LAZY: ClassVar[dict[str, str]] = {
        "query": "crawler.cli_archive",
        "search": "crawler.cli_archive",
        "export": "crawler.cli_archive",
        "reindex": "crawler.cli_archive",
        "run": "crawler.cli_daemon",
        "status": "crawler.cli_daemon",
        "alerts": "crawler.alerts.cli",
        "serve": "crawler.cli_serve",
        "migrate": "crawler.cli_lake",
        "compact": "crawler.cli_compact",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            importlib.import_module(self.LAZY[cmd_name]).register(self)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mediawatch")
def main() -> None:
    """mediawatch: archive the outlets you follow, cleaned and deduplicated, in DuckDB.

    \b
    Example:
      mediawatch crawl --config outlets.toml
      mediawatch query "select outlet, count(*) from articles group by 1"
    """


@main.command("outlets")
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def outlets_cmd(config_path: str, fmt: str) -> None:
    """Validate the config and list its outlets.

    \b
    Example:
      mediawatch outlets --config outlets.toml --format json
    """
    config = _load(config_path)
    rows = [
        {
            "name": o.name,
            "language": o.language,
            "schedule": o.cron or f"every {o.every_seconds:g}s",
            "feeds": list(o.feeds),
            "sitemaps": list(o.sitemaps),
            "start_urls": list(o.start_urls),
            "domains": list(o.domains),
            "delay": o.delay,
            "concurrency": o.concurrency,
        }
        for o in config.outlets
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{len(rows)} outlets in {config_path}"))
    for column in ("name", "language", "schedule", "sources", "domains"):
        table.add_column(column)
    for row in rows:
        sources = len(row["feeds"]) + len(row["sitemaps"]) + len(row["start_urls"])
        cells = (
            row["name"],
            row["language"] or "-",
            row["schedule"],
            str(sources),
            ", ".join(row["domains"]),
        )
        table.add_row(*(Text(c) for c in cells))  # config values are data, not Rich markup
    Console().print(table)


@main.command("crawl")
@config_option
@db_option
@click.option("--timeout", type=float, default=None, help="Stop the run after this many seconds.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the crawl's Scrapy log here (default: <db dir>/logs/crawl-<run>.log).",
)
@click.argument("outlet_names", nargs=-1, metavar="[OUTLET ...]")
def crawl_cmd(
    config_path: str,
    db_path: str,
    timeout: float | None,
    log_path: str | None,
    outlet_names: tuple[str, ...],
) -> None:
    """Crawl the outlets once now (all of them, or the ones named) and archive what is new.

    \b
    Example:
      mediawatch crawl --config outlets.toml --db data/archive.duckdb lemonde bbc
    """
    config = _load(config_path)
    from crawler.outlets import ConfigError
    from crawler.scheduler.logs import setup_logging
    from crawler.scheduler.run_once import run_crawl
    from crawler.scheduler.supervisor import new_run_id

    setup_logging(None, os.environ.get("MEDIAWATCH_LOG_LEVEL", "WARNING").upper())

    names = list(outlet_names) or [o.name for o in config.outlets]
    try:
        outlets = [config.get(n) for n in names]
    except ConfigError as exc:
        fail(str(exc), 2)
    run_id = new_run_id()
    from archive.store import open_store

    store = open_store(db_path)
    log_file = Path(log_path) if log_path else store.home / "logs" / f"crawl-{run_id}.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{log_file.parent}: cannot create the log directory: {exc.strerror}")
    try:
        with store.session():
            pass  # created, migrated and writable; else one line saying why, before any fetch
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        store.close()
    limit = timeout or max(o.timeout_seconds for o in outlets)
    import tempfile
    import time

    from crawler.progress import format_progress, read_progress

    tty = sys.stderr.isatty()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="mediawatch-progress-") as progress_dir:

        def show(_ingested: Any) -> None:
            """On a terminal, one line rewritten in place. Piped, nothing until the summary: an
            error must stay the only line a script reads on stderr."""
            if tty:
                line = format_progress(
                    read_progress(Path(progress_dir)), time.monotonic() - started
                )
                click.echo("\r" + line.ljust(100)[:200], nl=False, err=True)

        try:
            result = run_crawl(
                config_path,
                db_path,
                names,
                timeout=limit,
                run_id=run_id,
                log_path=log_file,
                on_progress=show,
                progress_dir=Path(progress_dir),
            )
        except ArchiveError as exc:
            fail(str(exc))
        final = format_progress(read_progress(Path(progress_dir)), time.monotonic() - started)
    if tty:
        click.echo("", err=True)
    click.echo(final.rsplit(", ETA", 1)[0], err=True)  # the summary line, piped or not
    try:
        store.checkpoint()  # the archive at rest is one file, and readers replay no log
    except ArchiveError as exc:
        click.echo(
            f"warning: {exc} (the archive is complete; its log is replayed at the next open)",
            err=True,
        )
    _print_run_summary(store, run_id)
    store.close()
    click.echo(
        f"run {run_id}: {result.status} in {result.seconds:.1f}s, {result.ingest}; log: {log_file}",
        err=True,
    )
    if result.status not in ("ok",):
        sys.exit(1)


def _print_run_summary(store: Any, run_id: str) -> None:
    from archive.db import reader

    try:
        with store.session() if store.lake else reader(store.db) as con:
            rows = store.runs.run_summaries(con, run_id)
    except ArchiveError:
        return
    for outlet, status, requests, new, updated, skipped, errors in rows:
        skipped_map = json.loads(skipped) if skipped else {}
        skipped_text = ", ".join(f"{k} {v}" for k, v in sorted(skipped_map.items())) or "none"
        click.echo(
            f"{outlet}: {status}, {requests} requests, {new} new, {updated} updated, "
            f"{errors} errors, skipped: {skipped_text}",
            err=True,
        )


@main.command("extract")
@click.argument("page", type=click.File("rb"))
@click.option("--url", required=True, help="The URL the page was fetched from.")
@click.option("--language", default=None, help="Language hint, e.g. fr.")
@click.option(
    "--html/--no-html", "include_blocks", default=False, help="Include the article blocks."
)
def extract_cmd(page: Any, url: str, language: str | None, include_blocks: bool) -> None:
    """Show, as JSON, how one stored page would be archived (text, metadata, removed promotions).

    \b
    Example:
      mediawatch extract page.html --url https://example.org/2024/05/17/story
      curl -s https://example.org/a | mediawatch extract - --url https://example.org/a
    """
    from pipelines.clean import PIPELINE_VERSION, clean_article
    from pipelines.decode import decode_html
    from pipelines.fingerprint import content_hash
    from pipelines.urls import article_key

    body = page.read()
    html, _note = decode_html(body)
    cleaned = clean_article(html, url, language_hint=language)
    article = cleaned.article
    key, cross_site = article_key(url, article.get("canonical_url"), article.get("og_url"))
    out = {
        "url": url,
        "key": key,
        "cross_site_canonical": cross_site,
        "archived": cleaned.skip_reason is None,
        "skip_reason": cleaned.skip_reason,
        **{k: v for k, v in article.items() if include_blocks or k != "blocks"},
        "content_hash": content_hash(article.get("text") or ""),
        "removed_blocks": cleaned.removed,
        "extractor_version": PIPELINE_VERSION,
    }
    click.echo(json.dumps(out, ensure_ascii=False, indent=2, default=str))


@main.command("reprocess")
@config_option
@db_option
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@click.option(
    "--since", default=None, help="Only articles published (or first seen) on or after this date."
)
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def reprocess_cmd(
    config_path: str,
    db_path: str,
    outlets: tuple[str, ...],
    since: str | None,
    dry_run: bool,
    fmt: str,
) -> None:
    """Clean the stored raw pages again with the current code and rules, in place.

    Text, metadata, removed promotions, fingerprints and the search index of every changed
    article (and of its older versions) are updated; each article records the extractor and
    rules version that made it. Articles the new rules would skip are kept and listed.

    \b
    Example:
      mediawatch reprocess --outlet lemonde --since 2024-05-01 --dry-run
      mediawatch reprocess --outlet lemonde
    """
    from datetime import UTC, datetime

    from crawler.reprocess import reprocess

    config = _load(config_path) if Path(config_path).exists() else None
    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since: not a date: {since!r} (use YYYY-MM-DD)", 2)
        assert since_dt is not None
        if since_dt.tzinfo is None:
            since_dt = since_dt.replace(tzinfo=UTC)
    if outlets:  # a typo must not "reprocess" nothing silently
        from archive.query import QueryError, check_outlets, open_archive

        try:
            con = open_archive(db_path, fts=False)
            try:
                check_outlets(con, outlets)
            finally:
                con.close()
        except (QueryError, ArchiveError) as exc:
            fail(str(exc))
    try:
        result = reprocess(
            db_path, config, outlets=list(outlets) or None, since=since_dt, dry_run=dry_run
        )
    except ArchiveError as exc:
        fail(str(exc))
    verb = "would change" if dry_run else "changed"
    if fmt == "json":
        from dataclasses import asdict

        click.echo(
            json.dumps(
                {
                    "examined": result.examined,
                    "dry_run": dry_run,
                    "changed": [asdict(c) for c in result.changed],
                    "kept": [asdict(c) for c in result.kept],
                },
                indent=2,
            )
        )
        return
    for c in result.changed:
        which = "current" if c.current else f"version {c.version}"
        click.echo(
            f"{verb} article {c.article_id} ({which}) {c.url}: words {c.words_before} -> {c.words_after}, "
            f"removed blocks {c.removed_before} -> {c.removed_after}"
        )
    for c in result.kept:
        click.echo(
            f"kept article {c.article_id} {c.url}: the current rules would skip it ({c.skip_reason})"
        )
    click.echo(
        f"{result.examined} pages examined, {len(result.changed)} {verb}, {len(result.kept)} kept as they are",
        err=True,
    )
