"""One generic spider for every outlet, driven by the outlet config.

Discovery from feeds (feedparser; JSON Feed by hand since feedparser does not read it),
sitemaps (index, gzip, Google News fields, parsed with a non-resolving lxml parser) and
section pages. The feed or sitemap entry's title and date travel with the request as hints.
Known article URLs are filtered before the request, from the archive's URL set.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import scrapy
from lxml import etree
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Request, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from archive.state import CrawlState, load_crawl_state
from crawler.discovery import (
    CharRefRepairingReader,
    FeedError,
    feed_entries,
    order_child_sitemaps,
    pattern_search,
)
from crawler.netpolicy import SiteBoundary
from crawler.outlets import Config, ConfigError, Outlet, load_config
from pipelines.decode import decode_html as decode_page
from pipelines.urls import canonical_url

HTML_TYPES = ("text/html", "application/xhtml+xml")
ERROR_STATUSES = [s for s in range(400, 600)]
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_CHILD_SITEMAPS = 20  # child sitemaps read per run (newest first; the rest in later runs)
MAX_INDEX_CHILDREN = 50_000  # the protocol's limit of entries per sitemap index
# Feed and sitemap dates outside these bounds are typos or placeholders: trusting a date in
# 2100 would make an article "modified" (and refetched) on every run.
MIN_PLAUSIBLE_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
_SITEMAP_NS = re.compile(r"^\{[^}]*\}")


def _local(tag: Any) -> str:
    return _SITEMAP_NS.sub("", tag) if isinstance(tag, str) else ""


def parse_date(value: str | None) -> datetime | None:
    """Feed and sitemap dates: W3C/ISO 8601 or RFC 822; naive dates are taken as UTC."""
    if not value:
        return None
    value = value.strip()
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            dt = parsedate_to_datetime(value)  # RFC 822, as feeds write it
        except (TypeError, ValueError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


class OutletSpider(scrapy.Spider):
    name = "outlet"

    outlet: Outlet
    config: Config
    crawl_state: CrawlState
    run_id: str
    allowed_domains: list[str]
    boundary: SiteBoundary

    def __init__(
        self,
        outlet: str | None = None,
        config: str | None = None,
        db: str | None = None,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not outlet:
            raise OutletConfigError("pass the outlet to crawl: scrapy crawl outlet -a outlet=NAME")
        self._outlet_name = outlet
        self._config_path = config
        self._db_path = db
        self._run_id = run_id
        self.db_path = db or ""
        self._requested: dict[str, dict[str, Any]] = {}  # canonical URL -> hints, this run
        self._article_budget = 0
        self._sitemaps_seen: set[str] = set()
        self._child_budget = MAX_CHILD_SITEMAPS
        # Section links wait until every feed and sitemap of the run has answered: those give
        # an article its title and date hints, and a hint arriving after the page was fetched
        # was lost, so what was archived depended on which response came first.
        self._hint_sources_pending = 0
        self._held: list[Request] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> OutletSpider:
        try:
            spider: OutletSpider = super().from_crawler(crawler, *args, **kwargs)
        except OutletConfigError as exc:
            _report_config_error(str(exc))
            raise
        settings = crawler.settings
        try:
            spider.config = load_config(spider._config_path or settings.get("MEDIAWATCH_CONFIG"))
            spider.outlet = spider.config.get(spider._outlet_name)
        except ConfigError as exc:
            _report_config_error(str(exc))
            raise OutletConfigError(str(exc)) from None
        spider.db_path = spider._db_path or settings.get("MEDIAWATCH_DB")
        spider.run_id = (
            spider._run_id
            or settings.get("MEDIAWATCH_RUN_ID")
            or datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        )
        # Settings are not frozen yet at this point: apply the outlet's politeness.
        o = spider.outlet
        settings.set("DOWNLOAD_DELAY", o.delay, priority="spider")
        settings.set("AUTOTHROTTLE_START_DELAY", max(o.delay, 0.01), priority="spider")
        settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", o.concurrency, priority="spider")
        if o.delay == 0:
            settings.set("AUTOTHROTTLE_ENABLED", False, priority="spider")
        user_agent = o.user_agent or spider.config.user_agent
        if user_agent:
            settings.set("USER_AGENT", user_agent, priority="spider")
        spider.allowed_domains = list(o.domains)
        spider.boundary = SiteBoundary.for_outlet(o)
        spider.crawl_state = load_crawl_state(spider.db_path, o.name)
        spider._article_budget = o.max_articles
        crawler.signals.connect(spider._bytes_received, signal=signals.bytes_received)
        crawler.signals.connect(spider._release_on_idle, signal=signals.spider_idle)
        return spider

    def _release_on_idle(self) -> None:
        """Safety net: held section links never wait for a source whose callback failed."""
        if self._held:
            from scrapy.exceptions import DontCloseSpider

            held, self._held = self._held, []
            self._hint_sources_pending = 0
            assert self.crawler.engine is not None
            for request in held:
                self.crawler.engine.crawl(request)
            raise DontCloseSpider

    def _release_held(self) -> Iterator[Request]:
        if self._hint_sources_pending <= 0:
            held, self._held = self._held, []
            yield from held

    def _bytes_received(self, data: bytes, request: Request, spider: Any = None) -> None:
        """Count body bytes per request: Scrapy cancels a body over DOWNLOAD_MAXSIZE without
        saying why when it has no Content-Length (chunked, endless), and we must tell."""
        request.meta["mediawatch_bytes"] = request.meta.get("mediawatch_bytes", 0) + len(data)

    # -- helpers -----------------------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"mediawatch/{key}", n)

    def _on_domain(self, url: str) -> bool:
        """Inside the outlet's site: its domains, on the schemes and ports it is configured on."""
        return self.boundary.allows(url)

    def _source_request(self, url: str, callback: Any, **meta: Any) -> Request:
        headers = {}
        etag, last_modified = self.crawl_state.validators.get(url, (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        meta.setdefault("handle_httpstatus_list", [304, *ERROR_STATUSES])
        meta["source_url"] = url
        if meta.get("source_kind") in ("feed", "sitemap"):
            self._hint_sources_pending += 1
        return Request(
            url,
            callback=callback,
            errback=self.source_failed,
            headers=headers,
            meta=meta,
            dont_filter=True,
            priority=10,
        )

    def article_request(self, url: str, hints: dict[str, Any]) -> Request | dict[str, Any] | None:
        """Filter a candidate article URL before any byte is downloaded; None when skipped, a
        page record when the skip must be recorded (an article_pattern that timed out)."""
        url = urljoin(hints.get("source_url") or "", url.strip())
        if not url.startswith(("http://", "https://")):
            return None
        key = canonical_url(url)
        if key in self._requested:
            # Found again: a feed or sitemap says more than a section link. The request's meta
            # holds this same dict, so hints improve while the page is still in flight.
            known = self._requested[key]
            known.setdefault("seen_as", []).append(url)  # every URL it was seen under is kept
            if known.get("source") == "section" and hints.get("source") != "section":
                known.update({k: v for k, v in hints.items() if v is not None and k != "seen_as"})
            return None
        if not self._on_domain(url):
            self._count("filtered/offsite")
            return None
        pattern = self.outlet.article_pattern
        if pattern is not None:
            matched = pattern_search(pattern, url)
            if matched is None:
                self._requested[key] = hints
                self._count("skipped/pattern_timeout")
                self._count("errors")
                self.logger.warning(
                    "article_pattern %r took too long on %s: skipped", pattern.pattern, url
                )
                return self._page(
                    Request(url, meta={"hints": {**hints, "seen_as": [url]}}),
                    final_url=None,
                    status=None,
                    content_type=None,
                    skip_reason="pattern_timeout",
                    detail=f"article_pattern {pattern.pattern!r} took over the match time limit "
                    f"on this URL (catastrophic backtracking?)"[:500],
                )
            if not matched:
                self._count("filtered/not_article_pattern")
                return None
        now = datetime.now(UTC)
        if key in self.crawl_state.seen_urls or url in self.crawl_state.seen_urls:
            lastmod = parse_date(hints.get("lastmod")) if hints.get("lastmod") else None
            if not (self.outlet.revisit and self.crawl_state.revisit_due(key, lastmod, now)):
                self._count("filtered/already_archived")
                return None
            hints = {**hints, "revisit": True}
            self._count("revisits")
        elif key in self.crawl_state.skip_urls or url in self.crawl_state.skip_urls:
            self._count("filtered/known_bad")
            return None
        if self._article_budget <= 0:
            self._count("filtered/budget")
            return None
        self._article_budget -= 1
        hints = {**hints, "seen_as": [url]}
        self._requested[key] = hints
        # dont_filter: this run's duplicates are already caught above by canonical URL; Scrapy's
        # dupefilter would silently drop a redirect back to a URL seen before (a 301 loop), so
        # the page would vanish without a record. Loops now end at REDIRECT_MAX_TIMES, recorded.
        return Request(
            url,
            callback=self.parse_article,
            errback=self.article_failed,
            dont_filter=True,
            meta={"hints": hints, "handle_httpstatus_list": ERROR_STATUSES},
        )

    # -- discovery ---------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for url in self.outlet.feeds:
            yield self._source_request(url, self.parse_feed, source_kind="feed")
        for url in self.outlet.sitemaps:
            self._sitemaps_seen.add(url)
            yield self._source_request(
                url, self.parse_sitemap, source_kind="sitemap", download_maxsize=MAX_SITEMAP_BYTES
            )
        for url in self.outlet.start_urls:
            yield self._source_request(url, self.parse_section, source_kind="section")

    def _source_state(self, response: Response) -> Iterator[dict[str, Any]]:
        """Record conditional-GET validators; say whether the source changed."""
        source_url = response.meta["source_url"]
        yield {
            "type": "http_state",
            "outlet": self.outlet.name,
            "url": source_url,
            "status": response.status,
            "etag": _header(response, "ETag"),
            "last_modified": _header(response, "Last-Modified"),
            "changed": response.status == 200,
        }

    def _source_usable(self, response: Response) -> bool:
        if response.status == 304:
            self._count("sources/not_modified")
            return False
        if response.status >= 400:
            self._count(f"sources/http_{response.status}")
            self._count("errors")
            self.logger.warning("source %s answered %s", response.url, response.status)
            return False
        return True

    def parse_feed(self, response: Response) -> Iterator[Any]:
        try:
            yield from self._parse_feed(response)
        finally:
            self._hint_sources_pending -= 1
        yield from self._release_held()

    def _parse_feed(self, response: Response) -> Iterator[Any]:
        yield from self._source_state(response)
        if not self._source_usable(response):
            return
        try:
            entries = feed_entries(response.body, response.url)
        except FeedError as exc:
            self._count("sources/malformed")
            self._count("errors")
            self.logger.warning("feed %s unreadable: %s", response.url, exc)
            return
        self._count("sources/feed_entries", len(entries))
        for entry in entries:
            request = self.article_request(
                entry["url"],
                {
                    "title": entry.get("title"),
                    "published_at": _iso(entry.get("published_at")),
                    "lastmod": _iso(entry.get("lastmod")),
                    "source": "feed",
                    "source_url": response.url,
                },
            )
            if request is not None:
                yield request

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        try:
            yield from self._parse_sitemap(response)
        finally:
            self._hint_sources_pending -= 1
        yield from self._release_held()

    def _parse_sitemap(self, response: Response) -> Iterator[Any]:
        yield from self._source_state(response)
        if not self._source_usable(response):
            return
        body = response.body
        # Streamed: a gzipped sitemap is inflated as it is parsed, never as a whole, and only up
        # to MAX_SITEMAP_BYTES (the protocol's limit): a million-URL sitemap costs flat memory
        # and gives its first entries instead of nothing.
        source = _CappedReader(
            gzip.GzipFile(fileobj=io.BytesIO(body))
            if body[:2] == b"\x1f\x8b"
            else io.BytesIO(body),
            MAX_SITEMAP_BYTES,
        )
        count = 0
        children: list[dict[str, Any]] = []
        try:
            for kind, entry in iter_sitemap(CharRefRepairingReader(source)):
                if kind == "sitemap":
                    loc = urljoin(response.url, entry["loc"])
                    if loc in self._sitemaps_seen:
                        continue
                    if not self._on_domain(loc):
                        self._count("filtered/offsite")
                        continue
                    if len(children) >= MAX_INDEX_CHILDREN:
                        self._count("filtered/sitemaps_deferred")
                        continue
                    lastmod = parse_date(entry.get("lastmod"))
                    children.append(
                        {
                            "loc": loc,
                            "lastmod_sort": lastmod.astimezone(UTC).isoformat()
                            if lastmod and lastmod.year >= 1990
                            else None,
                        }
                    )
                    continue
                count += 1
                published = entry.get("publication_date")
                request = self.article_request(
                    entry["loc"],
                    {
                        "title": entry.get("title"),
                        "published_at": _iso(published),
                        "lastmod": _iso(entry.get("lastmod")),
                        "source": "sitemap",
                        "source_url": response.url,
                    },
                )
                if request is not None:
                    yield request
                if self._article_budget <= 0:
                    break
        except (etree.XMLSyntaxError, OSError, EOFError, zlib.error) as exc:
            if source.truncated:
                self._count("sources/truncated")
                self.logger.warning(
                    "sitemap %s: over %d bytes, read its first %d entries only",
                    response.url,
                    MAX_SITEMAP_BYTES,
                    count,
                )
            else:
                self._count("sources/malformed")
                self._count("errors")
                self.logger.warning("sitemap %s malformed: %s", response.url, exc)
        self._count("sources/sitemap_entries", count)
        yield from self._child_sitemaps(response.url, children)

    def _child_sitemaps(self, index_url: str, children: list[dict[str, Any]]) -> Iterator[Request]:
        """Requests for the children of an index, newest first, within the run's budget; the
        others are counted (filtered/sitemaps_deferred) and read by later runs."""
        if not children:
            return
        fetched = set(self.crawl_state.validators)  # sources fetched by earlier runs
        chosen, deferred = order_child_sitemaps(children, fetched, self._child_budget)
        self._child_budget -= len(chosen)
        if deferred:
            self._count("filtered/sitemaps_deferred", len(deferred))
            self.logger.info(
                "sitemap index %s: %d child sitemaps read, %d deferred to later runs",
                index_url,
                len(chosen),
                len(deferred),
            )
        for loc in chosen:
            self._sitemaps_seen.add(loc)
            yield self._source_request(
                loc, self.parse_sitemap, source_kind="sitemap", download_maxsize=MAX_SITEMAP_BYTES
            )

    def parse_section(self, response: Response) -> Iterator[Any]:
        yield from self._source_state(response)
        if not self._source_usable(response) or not isinstance(response, TextResponse):
            return
        extractor = LinkExtractor(
            unique=True
        )  # domains are checked (and counted) by article_request
        for link in extractor.extract_links(response):
            request = self.article_request(
                link.url,
                {
                    "title": (link.text or "").strip() or None,
                    "source": "section",
                    "source_url": response.url,
                },
            )
            if request is not None:
                if self._hint_sources_pending > 0 and isinstance(request, Request):
                    self._held.append(request)
                else:
                    yield request  # a record (the URL a pattern timed out on) is not held

    def source_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        self._count("sources/failed")
        self._count("errors")
        self.logger.warning("source %s failed: %s", request.url, failure.getErrorMessage())
        if request.meta.get("source_kind") in ("feed", "sitemap"):
            self._hint_sources_pending -= 1
        return self._release_held()

    # -- article pages -----------------------------------------------------------------------

    def _page(self, request: Request, **fields: Any) -> dict[str, Any]:
        redirects = list(request.meta.get("redirect_urls", []))
        return {
            "type": "page",
            "record_id": uuid.uuid4().hex,
            "run_id": self.run_id,
            "outlet": self.outlet.name,
            "url": redirects[0] if redirects else request.url,
            "redirect_urls": redirects,
            "fetched_at": datetime.now(UTC).isoformat(),
            "hints": request.meta.get("hints", {}),
            "language_hint": self.outlet.language,
            **fields,
        }

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        content_type = (_header(response, "Content-Type") or "").lower()
        request = response.request
        assert request is not None
        base = {
            "final_url": response.url,
            "status": response.status,
            "content_type": content_type or None,
            "size_bytes": len(response.body),
        }
        if response.status >= 400:
            self._count(f"skipped/http_{response.status}")
            yield self._page(request, **base, skip_reason=f"http_{response.status}")
            return
        if not isinstance(response, TextResponse) or (
            content_type and not content_type.startswith(HTML_TYPES)
        ):
            self._count("skipped/not_html")
            yield self._page(request, **base, skip_reason="not_html")
            return
        html, note = decode_html(response)
        if note:
            self._count("charset_corrected")
        yield self._page(request, **base, html=html, skip_reason=None, detail=note)

    def article_failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        request: Request = failure.request  # type: ignore[attr-defined]
        message = failure.getErrorMessage()
        name = type(failure.value).__name__
        maxsize = request.meta.get("download_maxsize") or self.crawler.settings.getint(
            "DOWNLOAD_MAXSIZE"
        )
        received = request.meta.get("mediawatch_bytes", 0)
        if name in ("OffsiteRedirect", "OffsiteRequest"):
            reason = "offsite_redirect"
        elif name == "AddressRefused":
            reason = "address_refused"  # resolved to loopback/private/link-local: nothing sent
        elif header_limit := _HEADER_LIMIT.search(message):
            reason = "too_large"  # a header section over its limit (crawler/nethandler.py)
            message = header_limit.group(0)  # not Twisted's nested failure reprs
        elif "robots.txt" in message:
            reason = "robots_forbidden"
        elif (
            "max size" in message
            or "maxsize" in message.lower()
            or "larger than download" in message
        ):
            reason = "too_large"
        elif maxsize and received > maxsize:
            reason = (
                "too_large"  # a body without Content-Length (chunked, endless) cut at the limit
            )
            message = f"body larger than download max size ({maxsize}): cut after {received} bytes"
        elif name == "RateLimited":
            reason = "rate_limited"
        else:
            reason = "download_error"
            self._count("errors")
        self._count(f"skipped/{reason}")
        self.logger.info("article %s not fetched (%s): %s", request.url, reason, message)
        yield self._page(
            request,
            final_url=None,
            status=None,
            content_type=None,
            skip_reason=reason,
            detail=f"{name}: {message}"[:500],
        )


class OutletConfigError(ValueError):
    """The outlet is not in the config (or the config is broken): one line, names both."""


def _report_config_error(message: str) -> None:
    """`scrapy crawl outlet -a outlet=NAME` with a wrong name or config: one error line (the
    config file, the outlet, the known names) and a non-zero exit, not a traceback. Scrapy
    re-raises a spider that cannot be created in its asyncio task, whose exception asyncio
    prints with a traceback; this loop's handler prints our one line instead."""
    logging.getLogger(__name__).error("error: %s", message)
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), OutletConfigError):
            return  # said above, in one line
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _iso(value: Any) -> str | None:
    """A feed or sitemap date as ISO 8601, or None when unreadable or implausible."""
    if isinstance(value, str):
        dt = parse_date(value)
        if dt is None or dt < MIN_PLAUSIBLE_DATE or dt > datetime.now(UTC) + FUTURE_SLACK:
            return None
        return dt.isoformat()
    return None


_HEADER_LIMIT = re.compile(
    r"response (?:headers over \d+ bytes|has over \d+ header lines)[^\]>'\"]*"
)


def decode_html(response: TextResponse) -> tuple[str, str | None]:
    """The page's text, and a note when its declared charset was overruled: the one
    decoding path shared with `mediawatch extract` (pipelines.decode)."""
    content_type = response.headers.get(b"Content-Type")
    return decode_page(response.body, content_type.decode("latin-1") if content_type else None)


class _CappedReader:
    """A file-like view of at most `limit` bytes of another; remembers when it cut."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw = raw
        self.left = limit
        self.truncated = False

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            if self.raw.read(1):
                self.truncated = True
            return b""
        want = self.left if size is None or size < 0 else min(size, self.left)
        data: bytes = self.raw.read(want)
        self.left -= len(data)
        return data


def iter_sitemap(body: bytes | Any) -> Iterator[tuple[str, dict[str, str]]]:
    """Stream a sitemap or sitemap index: ("url", {...}) or ("sitemap", {...}) per entry.

    Streaming keeps memory flat on a million-URL sitemap; the parser resolves no entity
    and reaches no network (billion laughs and XXE stay inert)."""
    parser_kwargs = {
        "resolve_entities": False,
        "no_network": True,
        "huge_tree": False,
        "load_dtd": False,
        "recover": False,
    }
    source = io.BytesIO(body) if isinstance(body, bytes | bytearray) else body
    context = etree.iterparse(source, events=("end",), **parser_kwargs)
    for _event, element in context:
        tag = _local(element.tag)
        if tag not in ("url", "sitemap"):
            continue
        entry: dict[str, str] = {}
        for child in element.iter():
            name = _local(child.tag)
            text = (child.text or "").strip()
            if not text:
                continue
            if name == "title" and "news" not in str(child.tag):
                continue  # image:title or video:title is not the article's headline
            if name in ("loc", "lastmod", "publication_date", "title") and name not in entry:
                entry[name] = text
        if entry.get("loc"):
            yield tag, entry
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
