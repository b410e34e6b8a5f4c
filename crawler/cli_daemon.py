"""The daemon's commands, `mediawatch run` and `mediawatch status` (registered lazily by
crawler/cli.py: their imports are paid only when they run)."""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from archive.db import ArchiveError, ArchiveLocked
from crawler.options import config_option, db_option, fail


def register(group: click.Group) -> None:
    @group.command("run")
    @config_option
    @db_option
    @click.option(
        "--max-parallel",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Crawls running at the same time.",
    )
    @click.option(
        "--lease",
        default="30s",
        show_default=True,
        help="On a lake: how long an outlet stays this daemon's without a renewal (the "
        "take-over time when a daemon dies or freezes).",
    )
    @click.option(
        "--compact-every",
        default="1h",
        show_default=True,
        help="On a lake: how often to compact it (one daemon of the lake at a time; "
        "see mediawatch compact).",
    )
    @click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    )
    def run_cmd(
        config_path: str,
        db_path: str,
        max_parallel: int,
        lease: str,
        compact_every: str,
        log_level: str,
    ) -> None:
        """Crawl every outlet on its own schedule, forever, as the archive's single writer.

        Runs one crawl process per outlet run; re-reads the config on SIGHUP or when the file
        changes (a broken config keeps the previous one); stops cleanly on SIGTERM / Ctrl-C.
        Crawl logs go to <db dir>/logs/. Query the archive meanwhile from another shell.

        \b
        Example:
          mediawatch run --config outlets.toml --db data/archive.duckdb
          kill -HUP $(cat data/archive.duckdb.daemon.lock)   # reload the config
        """
        from archive.target import is_lake
        from crawler.outlets import ConfigError
        from crawler.scheduler.daemon import Daemon, log
        from crawler.scheduler.lock import DaemonLock
        from crawler.scheduler.logs import setup_logging

        # the lock, spool and logs of the file, not of a symlink to it; a lake is its URL
        db = db_path if is_lake(db_path) else Path(db_path).resolve()
        from crawler.outlets import parse_duration

        durations = {}
        for option, value in (("--lease", lease), ("--compact-every", compact_every)):
            try:
                durations[option] = parse_duration(value)
            except ValueError as exc:
                fail(f"{option}: {exc}", 2)
        daemon = Daemon(
            Path(config_path),
            db,
            max_parallel=max_parallel,
            lease=durations["--lease"],
            compact_every=durations["--compact-every"],
        )
        try:
            raw = daemon.load_initial_config()
        except ConfigError as exc:
            fail(str(exc), 2)
        lock = DaemonLock(db)
        try:
            lock.acquire()
        except ArchiveError as exc:
            fail(str(exc), 1)
        except OSError as exc:
            fail(f"{lock.path}: cannot take the daemon lock: {exc.strerror}")
        try:
            daemon.write_snapshot(raw)
        except OSError as exc:
            fail(f"{daemon.snapshot}: cannot write the config snapshot: {exc.strerror}")
        setup_logging(daemon.logs, log_level.upper())

        def on_stop(signum: int, _frame: Any) -> None:
            if daemon.stopping.is_set():
                log.info("already stopping (signal %d)", signum)
            daemon.stopping.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, lambda *_: daemon.hup.set())
        waited = False
        while True:
            try:
                daemon.prepare_archive()
                break
            except ArchiveLocked as exc:
                if not waited:  # a user's long query: wait for it rather than refuse to start
                    log.warning("archive busy at start, waiting: %s", exc)
                    waited = True
                if daemon.stopping.wait(2.0):
                    sys.exit(0)
            except ArchiveError as exc:  # unreadable, unwritable, disk full: nothing to wait for
                fail(str(exc))
        sys.exit(daemon.serve())

    del run_cmd

    @group.command("status")
    @db_option
    @click.option(
        "--config",
        "config_path",
        envvar="MEDIAWATCH_CONFIG",
        default=None,
        type=click.Path(dir_okay=False),
        help="Also list the config's outlets that never ran. Env: MEDIAWATCH_CONFIG.",
    )
    @click.option(
        "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
    )
    def status_cmd(db_path: str, config_path: str | None, fmt: str) -> None:
        """Per outlet: last run and its result, next run, articles in 24 h, error and
        empty-extraction rates, days since the last new article, health. Read-only: safe
        while the daemon runs. The same figures are the SQL view outlet_status.

        \b
        Example:
          mediawatch status --db data/archive.duckdb
          mediawatch status --format json | jq '.[] | select(.healthy == false)'
        """
        from archive.target import hide_password, is_lake
        from crawler.outlets import ConfigError, read_config
        from crawler.scheduler.status import print_status_table, read_status

        configured: list[str] | None = None
        snapshot = Path(db_path).with_name(Path(db_path).name + ".daemon-config.toml")
        if is_lake(db_path):
            from archive.lake.home import lake_home

            snapshot = lake_home(db_path) / "daemon-config.toml"  # this machine's daemon
        if not config_path and snapshot.exists():
            # what the daemon runs: outlets removed from it are not shown as ok
            config_path = str(snapshot)
        if config_path:
            try:
                configured = [o.name for o in read_config(Path(config_path))[0].outlets]
            except ConfigError as exc:
                click.echo(f"warning: {exc}; showing the archive only", err=True)
        try:
            rows = read_status(db_path if is_lake(db_path) else Path(db_path), configured)
        except ArchiveError as exc:
            fail(str(exc))
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, default=_json_default))
        else:
            print_status_table(rows, hide_password(db_path) if is_lake(db_path) else Path(db_path))

    del status_cmd


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)
