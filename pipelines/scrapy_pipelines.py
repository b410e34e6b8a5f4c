"""Scrapy item pipelines: thin wrappers over the pure functions of this package.

CleanPipeline turns a fetched page into an archived-article candidate (extract, strip
promotions, fingerprint) or a page with a skip reason; SpoolPipeline hands every record to
the archive writer through the spool. Settings come from the crawler; resources are opened
in open_spider and closed in close_spider.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler

from archive.records import (
    HttpStateRecord,
    PageItem,
    PageRecord,
    RunRecord,
    RunStartRecord,
    RunStats,
)
from archive.spool import SpoolWriter, spool_dir_for
from pipelines.workers import (
    clean_in_worker,
    forkserver_context,
    parse_workers,
    start_forkserver,
    warm,
    worker_init,
)

logger = logging.getLogger(__name__)


class _SharedPool:
    """One pool per crawl process, shared by the crawlers of all its outlets (a pool per
    outlet would start outlets x cores workers); shut down when the last crawler closes."""

    def __init__(self) -> None:
        self.executor: ProcessPoolExecutor | None = None
        self.size = 0
        self.users = 0
        self._slots: asyncio.Semaphore | None = None

    def acquire(self, workers: int) -> ProcessPoolExecutor:
        self.users += 1
        if self.executor is None:
            self._start(max(workers, self.size))
        assert self.executor is not None
        return self.executor

    def _start(self, workers: int) -> None:
        self.size = workers
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=forkserver_context(),
            initializer=worker_init,
            initargs=(start_forkserver(),),
        )
        for _ in range(workers):  # start every worker now, while discovery runs
            self.executor.submit(warm)

    def replace(self, broken: ProcessPoolExecutor, *, kill: bool = False) -> ProcessPoolExecutor:
        """A fresh pool after a worker died (a page that crashes lxml, the OOM killer) or, with
        kill, after a page overran its time: its workers are killed, the other pages in
        flight fail with BrokenProcessPool and are retried in the new pool."""
        if self.executor is broken:
            if kill:
                for process in list(getattr(broken, "_processes", {}).values()):
                    process.kill()
            broken.shutdown(wait=False, cancel_futures=True)
            self._start(self.size)
        assert self.executor is not None
        return self.executor

    def slots(self) -> asyncio.Semaphore:
        """Pages handed to the pool at once, over all outlets: two per worker keeps every
        worker busy; the rest wait in Scrapy's scraper slot (created on the running loop)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(2 * max(1, self.size))
        return self._slots

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
            self.users = 0


_POOL = _SharedPool()


class CleanPipeline:
    """Cleaning costs tens of milliseconds a page; it runs in a pool of worker processes so
    the reactor thread keeps downloading and every core works. MEDIAWATCH_WORKERS=0 cleans
    in-process. Back-pressure: at most 2 pages per worker are handed to the pool; the others
    wait here with their responses counted in Scrapy's scraper slot, whose memory limit
    (SCRAPER_SLOT_MAX_ACTIVE_SIZE) stops the engine from starting more downloads."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.outlet_rules: Any = None
        self.rule_strings: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        self.boilerplate: frozenset[str] = frozenset()
        self.workers = parse_workers(crawler.settings.get("MEDIAWATCH_WORKERS"))
        self.timeout = crawler.settings.getfloat("MEDIAWATCH_CLEAN_TIMEOUT", 120.0)
        self.pool: ProcessPoolExecutor | None = None
        self.worker_pids: set[int] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CleanPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        spider: Any = self.crawler.spider
        outlet = spider.outlet
        self.rule_strings = (tuple(outlet.strip_selectors), tuple(outlet.strip_patterns))
        self.boilerplate = spider.crawl_state.boilerplate
        if self.workers > 0:
            self.pool = _POOL.acquire(self.workers)
            logger.info("cleaning pages in %d worker processes", _POOL.size)
        else:
            from pipelines.promo import compile_outlet_rules

            self.outlet_rules = compile_outlet_rules(*map(list, self.rule_strings))
            logger.info("cleaning pages in-process (MEDIAWATCH_WORKERS=0)")

    def close_spider(self) -> None:
        if self.pool is not None:
            logger.info("cleaned pages in %d worker processes", len(self.worker_pids))
            self.pool = None
            _POOL.release()

    async def _in_pool(self, item: PageItem, html: str) -> PageRecord:
        detail = "cleaning worker died twice on this page"
        async with _POOL.slots():
            for attempt in (1, 2):
                assert self.pool is not None
                pool = self.pool
                try:
                    future = pool.submit(
                        clean_in_worker, item, html, *self.rule_strings, self.boilerplate
                    )
                    record, pid = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
                    self.worker_pids.add(pid)
                    return record
                except BrokenProcessPool:
                    logger.warning(
                        "cleaning worker died on %s (attempt %d)", item.get("url"), attempt
                    )
                    self.pool = _POOL.replace(pool)
                except TimeoutError:
                    # A page the cleaner cannot finish must not stall the crawl forever.
                    logger.error(
                        "cleaning %s took over %gs: worker killed", item.get("url"), self.timeout
                    )
                    self.pool = _POOL.replace(pool, kill=True)
                    detail = f"cleaning took over {self.timeout:g}s"
                    break
        from pipelines.clean import (
            unclean_record,
        )  # the crawl process never loads the cleaning stack

        return unclean_record(item, "extraction_error", detail)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("type") != "page":
            return item
        html = item.pop("html", None)
        if html is None:
            return item
        stats = self.crawler.stats
        assert stats is not None
        page: PageItem = item  # type: ignore[assignment]  # the spider's page item (Scrapy hands dicts on)
        if self.pool is not None:
            record = await self._in_pool(page, html)
        else:
            from pipelines.clean import clean_page

            record = clean_page(
                page, html, outlet_rules=self.outlet_rules, boilerplate=self.boilerplate
            )
        if record.get("skip_reason"):
            stats.inc_value(f"mediawatch/skipped/{record['skip_reason']}")
            logger.info("page %s skipped: %s", record["url"], record["skip_reason"])
        else:
            stats.inc_value("mediawatch/articles_extracted")
            stats.inc_value(
                "mediawatch/promo_blocks_removed", len(record.get("removed_blocks") or ())
            )
        return dict(record)


# Article failures that may pass next time: while one is pending, the feed's validators must
# not be kept, or the next run's 304 would hide the article for good.
TRANSIENT_SKIPS = ("download_error", "rate_limited", "extraction_error")


class SpoolPipeline:
    """Writes records to the spool; when the spider has closed, records the run (with the real
    finish reason) and ingests if nobody else does.

    Conditional-GET validators (http_state records) are held back until then and handed over
    only for a run that finished with no transient article failure: a run killed or stopped
    after reading a feed must not leave an ETag behind that hides the feed's articles."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ingest_on_close = crawler.settings.getbool("MEDIAWATCH_INGEST_ON_CLOSE", True)
        self.writer: SpoolWriter | None = None
        self.started_at = datetime.now(UTC)
        self.source_states: list[HttpStateRecord] = []
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SpoolPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        spider: Any = self.crawler.spider
        self.db_path = spider.db_path
        self.writer = SpoolWriter(
            spool_dir_for(spider.db_path), f"{spider.run_id}.{spider.outlet.name}"
        )
        self.writer.open()
        self.started_at = datetime.now(UTC)
        self.writer.write(
            RunStartRecord(
                type="run_start",
                run_id=spider.run_id,
                outlet=spider.outlet.name,
                started_at=self.started_at.isoformat(),
            )
        )

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self.writer is not None
        if item.get("type") == "http_state":
            self.source_states.append(item)  # type: ignore[arg-type]  # the spider's http_state record
        else:
            self.writer.write(item)  # type: ignore[arg-type]  # a PageRecord from CleanPipeline
        return item

    def spider_closed(self, spider: Any, reason: str) -> None:
        assert self.writer is not None
        stats = self.crawler.stats
        assert stats is not None
        values = stats.get_stats()
        keep_validators = (
            reason == "finished"
            and not any(values.get(f"mediawatch/skipped/{r}") for r in TRANSIENT_SKIPS)
            and not any(k.startswith("mediawatch/skipped/http_5") for k in values)
        )
        for state in self.source_states:
            if not keep_validators:
                state = HttpStateRecord(**{**state, "etag": None, "last_modified": None})
            self.writer.write(state)
        self.writer.write(
            RunRecord(
                **{
                    "type": "run",
                    "run_id": spider.run_id,
                    "outlet": spider.outlet.name,
                    "started_at": self.started_at.isoformat(),
                    "finished_at": datetime.now(UTC).isoformat(),
                    "status": "ok"
                    if reason == "finished"
                    else ("stopped" if reason == "shutdown" else "failed"),
                    "finish_reason": reason,
                    "stats": run_stats(values),
                }
            )
        )
        self.writer.close()
        if self.ingest_on_close:
            from archive.db import ArchiveError
            from archive.ingest import drain_spool

            try:  # all of it: one ingest_spool call stops after its time budget (a loaded machine)
                result = drain_spool(self.db_path)
                logger.info("ingested %s", result)
            except (
                ArchiveError
            ) as exc:  # the daemon (or a reader) holds the archive: it ingests later
                logger.warning("spool left for the archive writer: %s", exc)


def run_stats(values: dict[str, Any]) -> RunStats:
    """The figures of a run from Scrapy's stats, in the shape crawl_runs stores."""
    responses = {
        key.rsplit("/", 1)[1]: value
        for key, value in values.items()
        if key.startswith("downloader/response_status_count/")
    }
    skipped = {
        key[len("mediawatch/skipped/") :]: v
        for key, v in values.items()
        if key.startswith("mediawatch/skipped/")
    }
    for key, value in values.items():
        if key.startswith("mediawatch/filtered/"):
            skipped[key[len("mediawatch/") :]] = value
    return {
        "requests": values.get("downloader/request_count", 0),
        "responses": responses,
        "skipped": skipped,
        "errors": values.get("mediawatch/errors", 0) + values.get("log_count/ERROR", 0),
        "articles_extracted": values.get("mediawatch/articles_extracted", 0),
        "not_modified": values.get("mediawatch/sources/not_modified", 0),
        "failure": values.get("mediawatch/failure"),  # one line, from crawler.failures
    }
