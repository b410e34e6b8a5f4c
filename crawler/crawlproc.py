"""One crawl run in its own process: a fresh Twisted reactor, fresh trafilatura caches,
memory returned to the system when it exits. The daemon and `mediawatch crawl` start it;
it writes only to the spool, never to the archive.

    python -m crawler.crawlproc --config outlets.toml --db data/archive.duckdb --run-id R -- lemonde bbc

The runner passes "--" before the outlet names, so no name is ever read as an option.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from crawler.outlets import ConfigError, load_config

ORPHAN_GRACE = 10.0  # seconds an orphaned crawl gets to close its spool before it exits hard


def _die_with_parent() -> None:
    """An orphaned crawl must not keep fetching after the daemon is killed -9 (Linux only):
    the parent's death sends SIGTERM (Scrapy's graceful stop), and a watchdog ends the process
    ORPHAN_GRACE later whatever it waits for (a hung download, the cleaning pool at exit), so
    the next daemon, which waits for it, never waits long. Records already spooled are kept;
    the segment left open marks the run crashed at the next ingest."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass
    threading.Thread(target=_orphan_watchdog, args=(parent,), daemon=True, name="orphan").start()


def _orphan_watchdog(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    time.sleep(ORPHAN_GRACE)
    print(
        f"orphaned for {ORPHAN_GRACE:g}s and still running: exiting now",
        file=sys.stderr,
        flush=True,
    )
    os._exit(3)


def _apply_settings_override(settings: Any, raw: str | None) -> None:
    """MEDIAWATCH_SCRAPY_SETTINGS='{"DOWNLOAD_TIMEOUT": 3}': Scrapy settings for this run, as a
    JSON object (tests and operators shorten timeouts without editing settings.py). They win
    over the project settings; the outlet's own politeness is still applied by the spider."""
    if not raw:
        return
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError("expected a JSON object of setting names to values")
    for name, value in values.items():
        settings.set(str(name), value, priority="cmdline")


def _start_cleaning_forkserver() -> None:
    """Start the cleaning pool's forkserver before Scrapy is imported: its import of the
    cleaning stack then runs beside ours, and the pool opens without waiting for it.
    MEDIAWATCH_WORKERS=0 (cleaning in-process) starts none."""
    from pipelines.workers import parse_workers, start_forkserver

    setting = os.environ.get("MEDIAWATCH_WORKERS", "auto")
    with contextlib.suppress(ValueError, AttributeError):  # not JSON: main() reports it
        setting = json.loads(os.environ.get("MEDIAWATCH_SCRAPY_SETTINGS") or "{}").get(
            "MEDIAWATCH_WORKERS", setting
        )
    try:
        workers = parse_workers(setting)
    except (TypeError, ValueError):
        return  # the pipeline reports the bad setting when it opens
    if workers > 0:
        start_forkserver()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.crawlproc")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--ingest-on-close", action="store_true")
    parser.add_argument("--log-level", default=os.environ.get("MEDIAWATCH_LOG_LEVEL", "INFO"))
    parser.add_argument("outlets", nargs="+")
    args = parser.parse_args(argv)
    if os.environ.get("MEDIAWATCH_PDEATHSIG") == "1":
        _die_with_parent()
    try:
        config = load_config(args.config)
        for name in args.outlets:
            config.get(name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _start_cleaning_forkserver()
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    from crawler.spiders.outlet import OutletSpider

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    settings.set("MEDIAWATCH_CONFIG", args.config, priority="cmdline")
    settings.set("MEDIAWATCH_DB", args.db, priority="cmdline")
    settings.set("MEDIAWATCH_RUN_ID", args.run_id, priority="cmdline")
    settings.set("MEDIAWATCH_INGEST_ON_CLOSE", args.ingest_on_close, priority="cmdline")
    settings.set("LOG_LEVEL", args.log_level, priority="cmdline")
    try:
        _apply_settings_override(settings, os.environ.get("MEDIAWATCH_SCRAPY_SETTINGS"))
    except ValueError as exc:
        print(f"error: MEDIAWATCH_SCRAPY_SETTINGS: {exc}", file=sys.stderr)
        return 2
    process = CrawlerProcess(settings, install_root_handler=True)
    crawlers = []
    for name in args.outlets:
        crawler = process.create_crawler(OutletSpider)
        crawlers.append(crawler)
        process.crawl(crawler, outlet=name)
    process.start()
    failed = [
        c
        for c in crawlers
        if c.stats is not None and c.stats.get_value("finish_reason") != "finished"
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
