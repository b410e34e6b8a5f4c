"""Progress of a running crawl, for `mediawatch crawl`: pages fetched and queued, articles,
an ETA. The crawl runs in its own process, so each spider writes its figures to a small
JSON file (atomically, once a second) in the directory the parent names with the setting
MEDIAWATCH_PROGRESS_DIR; the parent reads and sums them. Nothing is written when the
setting is empty (the daemon leaves it so).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTERVAL = 1.0
log = logging.getLogger(__name__)


@dataclass
class Progress:
    fetched: int = 0  # responses received
    queued: int = 0  # requests waiting in the schedulers
    articles: int = 0  # article pages extracted
    outlets: int = 0
    done: int = 0  # outlets whose spider closed

    @property
    def remaining(self) -> int:
        return max(self.queued, 0)


def read_progress(directory: Path) -> Progress:
    """The sum of every spider's latest figures (a file being replaced is read next time)."""
    total = Progress()
    try:
        files = sorted(directory.glob("*.json"))
    except OSError:
        return total
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        total.outlets += 1
        total.fetched += int(data.get("fetched", 0))
        total.queued += int(data.get("queued", 0))
        total.articles += int(data.get("articles", 0))
        total.done += 1 if data.get("done") else 0
    return total


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def eta(progress: Progress, elapsed: float) -> float | None:
    """Seconds left at the rate so far: queued pages / pages fetched per second."""
    if progress.fetched == 0 or elapsed <= 0:
        return None
    rate = progress.fetched / elapsed
    return progress.remaining / rate if rate > 0 else None


def format_progress(progress: Progress, elapsed: float) -> str:
    """One line: "42 pages fetched, 18 queued, 30 articles, 2/3 outlets done, 0m40s, ETA 17s"."""
    left = eta(progress, elapsed)
    parts = [
        f"{progress.fetched} pages fetched",
        f"{progress.remaining} queued",
        f"{progress.articles} articles",
    ]
    if progress.outlets:
        parts.append(f"{progress.done}/{progress.outlets} outlets done")
    parts.append(_duration(elapsed))
    parts.append("ETA " + (_duration(left) if left is not None else "?"))
    return ", ".join(parts)


class ProgressExtension:
    """Scrapy extension: writes this spider's figures to MEDIAWATCH_PROGRESS_DIR/<outlet>.json."""

    def __init__(self, crawler: Any, directory: Path) -> None:
        from scrapy import signals

        self.crawler = crawler
        self.directory = directory
        self.loop: Any = None
        self.warned = False
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressExtension:
        from scrapy.exceptions import NotConfigured

        directory = crawler.settings.get("MEDIAWATCH_PROGRESS_DIR") or ""
        if not directory:
            raise NotConfigured
        return cls(crawler, Path(directory))

    def _path(self) -> Path:
        spider: Any = self.crawler.spider
        name = getattr(getattr(spider, "outlet", None), "name", None) or spider.name
        return self.directory / f"{name}.json"

    def write(self, done: bool = False) -> None:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        data = {
            "fetched": stats.get("downloader/response_count", 0),
            "queued": stats.get("scheduler/enqueued", 0) - stats.get("scheduler/dequeued", 0),
            "articles": stats.get("mediawatch/articles_extracted", 0),
            "done": done,
        }
        path = self._path()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # progress is a courtesy: a full disk must not stop the crawl
            if not self.warned:
                log.warning("progress file %s not written: %s", path, exc)
                self.warned = True

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.loop = task.LoopingCall(self.write)
        self.loop.start(INTERVAL, now=True)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.write(done=True)
