"""Downloader middlewares for politeness Scrapy does not give us out of the box."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response

from crawler.netpolicy import SiteBoundary

logger = logging.getLogger(__name__)


class RateLimited(IgnoreRequest):
    """The server kept answering 429, or asked us to wait longer than we allow."""


class OffsiteRedirect(IgnoreRequest):
    """A redirect would leave the outlet's domains: recorded, not followed."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class RetryAfterMiddleware:
    """Honour HTTP 429 (and 503 with Retry-After): the whole host waits, then the request
    is retried, a bounded number of times. AutoThrottle ignores 429, so this is ours."""

    MAX_TRIES = 3
    DEFAULT_WAIT = 5.0

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat("MEDIAWATCH_MAX_RETRY_AFTER", 120)
        self.not_before: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        host = urlsplit(request.url).netloc
        wait = self.not_before.get(host, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        retry_after = response.headers.get("Retry-After")
        if response.status != 429 and not (response.status == 503 and retry_after):
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(f"mediawatch/rate_limited/{response.status}")
        tries = request.meta.get("retry_after_tries", 0) + 1
        wait = retry_after_seconds(retry_after.decode("latin-1") if retry_after else None)
        if wait is None:
            wait = self.DEFAULT_WAIT * tries
        if tries > self.MAX_TRIES or wait > self.max_wait:
            if request.meta.get("source_url"):
                return response  # a feed or sitemap: its callback records the status
            raise RateLimited(f"HTTP {response.status}, Retry-After {wait:.0f}s, try {tries}")
        host = urlsplit(request.url).netloc
        self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + wait)
        retry = request.replace(dont_filter=True)
        retry.meta["retry_after_tries"] = tries
        return retry


class OffsiteRequest(IgnoreRequest):
    """A request to a host outside the outlet's domains: refused before any byte is sent."""


def on_domains(url: str, domains: list[str] | tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


class OffsiteGuardMiddleware:
    """The last word on where requests go: runs before robots.txt and Scrapy's own offsite
    filter (which lets dont_filter requests through, and drops redirects without telling the
    errback). A meta refresh, a sitemap child or anything else aimed outside the outlet's
    domains is refused here, with a reason the spider records."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffsiteGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        why = _outside(self.crawler.spider, request.url)
        if why is None:
            return
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("mediawatch/offsite_refused")
        if request.meta.get("redirect_urls"):
            raise OffsiteRedirect(f"redirect to {request.url} leaves the outlet's site: {why}")
        raise OffsiteRequest(f"request to {request.url} refused: {why}")


def _outside(spider: Any, url: str) -> str | None:
    """Why a URL is outside the spider's site (scheme, host and port), None when inside."""
    boundary: SiteBoundary | None = getattr(spider, "boundary", None)
    if boundary is not None:
        return boundary.why_not(url)
    domains = getattr(spider, "allowed_domains", None)
    if not domains or on_domains(url, domains):
        return None
    return "outside the outlet's domains"


class OffsiteRedirectMiddleware:
    """Stop a redirect that leaves the outlet's domains, so it is recorded with a reason
    instead of being dropped silently by the offsite filter."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffsiteRedirectMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in (301, 302, 303, 307, 308):
            return response
        location = response.headers.get("Location")
        if not location:
            return response
        target = urljoin(request.url, location.decode("latin-1"))
        why = _outside(self.crawler.spider, target)
        if why is None:
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("mediawatch/offsite_redirects")
        raise OffsiteRedirect(f"redirect to {target} leaves the outlet's site: {why}")


class OversizedRobots(IgnoreRequest):
    """A request refused because its host's robots.txt was too large to read."""


class BoundedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, except that a robots.txt over DOWNLOAD_MAXSIZE counts
    as "Disallow: /" for the run instead of "allow all": Scrapy treats any failure to read it
    as no robots.txt, so a site's `Disallow: /` hidden in 10 MB of padding went unobeyed."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._oversized: set[str] = set()

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        message = str(exc)
        if "max size" in message or "DOWNLOAD_MAXSIZE" in message:
            self._oversized.add(netloc)
            self._stats.inc_value("mediawatch/robots_too_large")
            logger.warning(
                "robots.txt of %s is over the download size limit: treated as "
                "'Disallow: /' for this run (%s)",
                netloc,
                message,
            )
        super()._robots_error(exc, netloc)

    def process_request_2(self, rp: Any, request: Request) -> None:
        netloc = urlsplit(request.url).netloc
        if netloc in self._oversized and not request.meta.get("dont_obey_robotstxt"):
            self._stats.inc_value("robotstxt/forbidden")
            raise OversizedRobots(
                "Forbidden by robots.txt: it is over the download size limit, "
                "treated as 'Disallow: /'"
            )
        super().process_request_2(rp, request)
