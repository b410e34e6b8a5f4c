"""Why a run failed, in one line a user can act on ("DNS lookup failed for news.example",
"feed https://x/feed.xml answered 404"), recorded with the run in crawl_runs.failure.

Without it, a machine with no network showed every outlet healthy while every run failed,
and the cause ("DNS lookup failed") sat only in the Scrapy logs. A downloader middleware,
nearest the downloader (above RetryMiddleware), sees every failed attempt (exceptions:
DNS, refused, timeout, TLS, lost connections) and the status of every feed and sitemap
answer. The current one-line summary is kept in the Scrapy stat `mediawatch/failure`, which
the run record carries to the archive; per-kind counts are `mediawatch/failures/<kind>`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

SOURCE_KINDS = ("feed", "sitemap", "section")

# Exception class names (anywhere in the MRO) -> kind. Names, not imports: Twisted, Scrapy
# and pyOpenSSL move these classes between versions.
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dns", ("DNSLookupError", "CannotResolveHostError")),
    ("refused", ("ConnectionRefusedError", "DownloadConnectionRefusedError")),
    ("timeout", ("TimeoutError", "TCPTimedOutError", "DownloadTimeoutError", "UserTimeoutError")),
    ("tls", ("SSLError", "CertificateError", "VerificationError")),
    (
        "connection",
        (
            "ConnectError",
            "ConnectionLost",
            "ConnectionDone",
            "ResponseNeverReceived",
            "ResponseFailed",
            "ConnectionAborted",
            "NoRouteError",
            "DownloadFailedError",
            "ResponseDataLossError",
        ),
    ),
)
_WORDS = {
    "dns": "DNS lookup failed for {host}",
    "refused": "connection refused by {host}",
    "timeout": "timed out fetching from {host}",
    "tls": "TLS error with {host}",
    "connection": "connection to {host} failed",
    "error": "download from {host} failed",
}


def classify(exc: BaseException) -> str:
    """The kind of a download exception: dns, refused, timeout, tls, connection, or error."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    for kind, candidates in _KINDS:
        if names & set(candidates):
            if kind == "connection" and ("SSL" in text or "certificate" in text.lower()):
                return "tls"  # ResponseNeverReceived wrapping a handshake failure
            return kind
    if "SSL" in text or "certificate verify" in text:
        return "tls"
    return "error"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


@dataclass
class FailureLog:
    """What went wrong in a run, summarised in one line (pure: tested without Scrapy)."""

    downloads: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, host) -> attempts
    sources: dict[str, str] = field(default_factory=dict)  # source URL -> its failure, in words

    def download_failed(self, url: str, exc: BaseException, source_kind: str | None) -> str:
        kind = classify(exc)
        host = _host(url)
        self.downloads[(kind, host)] += 1
        if source_kind in SOURCE_KINDS:
            self.sources[url] = f"{source_kind} {url}: " + _WORDS[kind].format(host=host)
        return kind

    def source_answered(self, url: str, status: int, source_kind: str) -> None:
        if status >= 400:
            self.sources[url] = f"{source_kind} {url} answered {status}"
        else:
            self.sources.pop(url, None)  # a retry that succeeded

    def summary(self) -> str | None:
        """The most telling failure first: a network failure hides everything behind it, a
        broken feed or sitemap (HTTP status) explains why nothing was discovered."""
        parts: list[str] = []
        if self.downloads:
            (kind, host), n = self.downloads.most_common(1)[0]
            parts.append(_WORDS[kind].format(host=host) + f" ({n} attempt{'s' if n != 1 else ''})")
        answered = [text for text in self.sources.values() if " answered " in text]
        if answered:
            parts.insert(0, answered[0])
        if not parts:
            return None
        others = (
            len(answered)
            - (1 if answered else 0)
            + len(self.downloads)
            - (1 if self.downloads else 0)
        )
        return "; ".join(parts) + (f"; {others} more" if others > 0 else "")


class FailureMiddleware:
    """Downloader middleware recording every failed attempt and every feed/sitemap status."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.log = FailureLog()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailureMiddleware:
        return cls(crawler)

    def _publish(self, kind: str | None) -> None:
        stats = self.crawler.stats
        if stats is None:
            return
        if kind is not None:
            stats.inc_value(f"mediawatch/failures/{kind}")
        stats.set_value("mediawatch/failure", self.log.summary())

    def process_exception(self, request: Request, exception: BaseException) -> None:
        kind = self.log.download_failed(request.url, exception, request.meta.get("source_kind"))
        self._publish(kind)
        return None  # RetryMiddleware and the errbacks go on as before

    def process_response(self, request: Request, response: Response) -> Any:
        source_kind = request.meta.get("source_kind")
        if source_kind in ("feed", "sitemap"):
            self.log.source_answered(
                request.meta.get("source_url") or request.url, response.status, source_kind
            )
            self._publish(f"http_{response.status}" if response.status >= 400 else None)
        return response
