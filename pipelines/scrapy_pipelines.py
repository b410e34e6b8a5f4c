"""Scrapy item pipelines: thin wrappers over the pure functions of this package.

CleanPipeline turns a fetched page into an archived-article candidate (extract, strip
promotions, fingerprint) or a page with a skip reason; SpoolPipeline hands every record to
the archive writer through the spool. Settings come from the crawler; resources are opened
in open_spider and closed in close_spider.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler

from archive.spool import SpoolWriter, spool_dir_for
from pipelines.clean import clean_page

logger = logging.getLogger(__name__)


def _worker_init() -> None:
    """Pool workers die with their crawl process, even when it is killed -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the crawl handles Ctrl-C, not its workers


def default_workers() -> int:
    """One worker per core: the reactor thread only downloads and writes the spool."""
    return max(1, (os.cpu_count() or 1))


class CleanPipeline:
    """Cleaning costs tens of milliseconds a page; it runs in a pool of worker processes so
    the reactor thread keeps downloading and every core works. MEDIAWATCH_WORKERS=0 cleans
    in-process. In-flight pages are bounded by Scrapy's CONCURRENT_ITEMS and the scraper's
    memory limit (SCRAPER_SLOT_MAX_ACTIVE_SIZE), which pause downloads when cleaning lags."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.outlet_rules: Any = None
        self.boilerplate: frozenset[str] = frozenset()
        setting = crawler.settings.get("MEDIAWATCH_WORKERS")
        self.workers = default_workers() if setting in (None, "", "auto") else int(setting)
        self.pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CleanPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        from pipelines.promo import compile_outlet_rules

        spider: Any = self.crawler.spider
        outlet = spider.outlet
        self.outlet_rules = compile_outlet_rules(list(outlet.strip_selectors), list(outlet.strip_patterns))
        self.boilerplate = spider.crawl_state.boilerplate

    def close_spider(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=False)
            self.pool = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            # spawn, not fork: a forked Twisted reactor and its sockets must not live on in workers.
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_worker_init)
        return self.pool

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("type") != "page":
            return item
        html = item.pop("html", None)
        if html is None:
            return item
        stats = self.crawler.stats
        assert stats is not None
        kwargs = {"outlet_rules": self.outlet_rules, "boilerplate": self.boilerplate}
        if self.workers > 0:
            loop = asyncio.get_running_loop()
            record = await loop.run_in_executor(self._pool(), functools.partial(clean_page, item, html, **kwargs))
        else:
            record = clean_page(item, html, **kwargs)
        if record.get("skip_reason"):
            stats.inc_value(f"mediawatch/skipped/{record['skip_reason']}")
            logger.info("page %s skipped: %s", record["url"], record["skip_reason"])
        else:
            stats.inc_value("mediawatch/articles_extracted")
            stats.inc_value("mediawatch/promo_blocks_removed", len(record.get("removed_blocks") or ()))
        return record


class SpoolPipeline:
    """Writes records to the spool; on close, records the run and ingests if nobody else does."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ingest_on_close = crawler.settings.getbool("MEDIAWATCH_INGEST_ON_CLOSE", True)
        self.writer: SpoolWriter | None = None
        self.started_at = datetime.now(UTC)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SpoolPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        spider: Any = self.crawler.spider
        self.db_path = spider.db_path
        self.writer = SpoolWriter(spool_dir_for(spider.db_path), f"{spider.run_id}.{spider.outlet.name}")
        self.writer.open()
        self.started_at = datetime.now(UTC)
        self.writer.write({"type": "run_start", "run_id": spider.run_id, "outlet": spider.outlet.name,
                           "started_at": self.started_at.isoformat()})

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self.writer is not None
        self.writer.write(item)
        return item

    def close_spider(self) -> None:
        spider: Any = self.crawler.spider
        assert self.writer is not None
        stats = self.crawler.stats
        assert stats is not None
        values = stats.get_stats()
        reason = values.get("finish_reason") or "finished"
        self.writer.write({
            "type": "run", "run_id": spider.run_id, "outlet": spider.outlet.name,
            "started_at": self.started_at.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
            "status": "ok" if reason == "finished" else ("stopped" if reason == "shutdown" else "failed"),
            "finish_reason": reason, "stats": run_stats(values),
        })
        self.writer.close()
        if self.ingest_on_close:
            from archive.db import ArchiveError
            from archive.ingest import ingest_spool

            try:
                result = ingest_spool(self.db_path)
                logger.info("ingested %s", result)
            except ArchiveError as exc:  # the daemon (or a reader) holds the archive: it ingests later
                logger.warning("spool left for the archive writer: %s", exc)


def run_stats(values: dict[str, Any]) -> dict[str, Any]:
    """The figures of a run from Scrapy's stats, in the shape crawl_runs stores."""
    responses = {
        key.rsplit("/", 1)[1]: value
        for key, value in values.items()
        if key.startswith("downloader/response_status_count/")
    }
    skipped = {key[len("mediawatch/skipped/"):]: v for key, v in values.items()
               if key.startswith("mediawatch/skipped/")}
    for key, value in values.items():
        if key.startswith("mediawatch/filtered/"):
            skipped[key[len("mediawatch/"):]] = value
    return {
        "requests": values.get("downloader/request_count", 0),
        "responses": responses,
        "skipped": skipped,
        "errors": values.get("mediawatch/errors", 0) + values.get("log_count/ERROR", 0),
        "articles_extracted": values.get("mediawatch/articles_extracted", 0),
        "not_modified": values.get("mediawatch/sources/not_modified", 0),
    }
