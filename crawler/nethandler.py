"""Scrapy's HTTP/1.1 download handler with the two limits it lacks.

- Response headers are bounded in bytes and in count (DOWNLOAD_MAXSIZE covers bodies only:
  a server sending header lines forever took one crawl to 9.9 GB). Twisted bounds a single
  line (16 KiB) but neither the number of lines nor their total.
- The peer address is checked before the request is written: loopback, private, link-local
  and multicast addresses are refused unless the outlet's own configured URLs are there or
  it allows them (crawler.netpolicy.AddressPolicy), whatever name resolved to them.

Both live in the connection's protocol, the only place that sees header lines as they come
and the connected address before a byte is sent; everything else is Scrapy's handler.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _LenientHTTPClientParser,
)
from scrapy.crawler import Crawler
from twisted.internet.defer import Deferred, fail
from twisted.web._newclient import HEADER, STATUS

from crawler.netpolicy import AddressPolicy

logger = logging.getLogger(__name__)
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
MAX_HEADER_BYTES = 256 * 1024
MAX_HEADERS = 200


class HeadersTooLarge(Exception):
    """The response's header section went over a limit: the connection is dropped."""


class AddressRefused(Exception):
    """The connection reached an address the outlet may not reach: nothing was sent."""


class _BoundedParser(_LenientHTTPClientParser):
    """Scrapy's lenient parser, counting the status line and header lines as they come.
    It is swapped in by class, like Scrapy swaps in its own, so it holds no state of its own
    beyond the counters set by _GuardedProtocol.request."""

    _mw_max_bytes: int = MAX_HEADER_BYTES
    _mw_max_count: int = MAX_HEADERS
    _mw_bytes: int = 0
    _mw_count: int = 0

    def lineReceived(self, line: bytes) -> None:
        if self.state in (STATUS, HEADER):
            self._mw_bytes += len(line) + 1
            self._mw_count += 1
            if self._mw_bytes > self._mw_max_bytes:
                raise HeadersTooLarge(
                    f"response headers over {self._mw_max_bytes} bytes "
                    f"(MEDIAWATCH_MAX_HEADER_BYTES): connection dropped"
                )
            if self._mw_count > self._mw_max_count + 1:  # + the status line
                raise HeadersTooLarge(
                    f"response has over {self._mw_max_count} header lines "
                    f"(MEDIAWATCH_MAX_HEADERS): connection dropped"
                )
        super().lineReceived(line)


class _GuardedProtocol(_LenientHTTP11ClientProtocol):
    def __init__(self, quiescent: Any, guard: _Guard) -> None:
        super().__init__(quiescent)
        self._guard = guard

    def request(self, request: Any) -> Deferred[Any]:
        transport: Any = self.transport
        reason = self._guard.why_refused(getattr(transport.getPeer(), "host", None))
        if reason is not None:
            transport.loseConnection()
            return fail(AddressRefused(reason))
        d = super().request(request)
        parser = self._parser
        assert parser is not None
        parser.__class__ = _BoundedParser
        parser._mw_max_bytes = self._guard.max_bytes  # type: ignore[attr-defined]
        parser._mw_max_count = self._guard.max_count  # type: ignore[attr-defined]
        return d


class _Guard:
    """The limits and the address policy of one crawler (one outlet)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_bytes = crawler.settings.getint("MEDIAWATCH_MAX_HEADER_BYTES", MAX_HEADER_BYTES)
        self.max_count = crawler.settings.getint("MEDIAWATCH_MAX_HEADERS", MAX_HEADERS)
        self.enforce_addresses = crawler.settings.getbool(
            "MEDIAWATCH_REFUSE_PRIVATE_ADDRESSES", True
        )
        proxy = next((v for v in _PROXY_VARIABLES if os.environ.get(v)), None)
        if self.enforce_addresses and proxy and crawler.settings.getbool("HTTPPROXY_ENABLED", True):
            # Behind a proxy the connected address is the proxy's (often on loopback or the
            # LAN), not the site's: the check would refuse everything, and the proxy resolves.
            logger.warning(
                "%s is set: the crawl connects through a proxy, so the address check "
                "(MEDIAWATCH_REFUSE_PRIVATE_ADDRESSES) is left to it",
                proxy,
            )
            self.enforce_addresses = False
        self._policy: AddressPolicy | None = None

    def why_refused(self, host: str | None) -> str | None:
        if not self.enforce_addresses or host is None:
            return None
        if self._policy is None:
            outlet = getattr(self.crawler.spider, "outlet", None)
            if outlet is None:
                return None  # not an outlet spider (scrapy shell): no outlet policy to apply
            self._policy = AddressPolicy.for_outlet(outlet)
        reason = self._policy.why_refused(host)
        if reason is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value("mediawatch/address_refused")
        return reason


class GuardedHTTP11DownloadHandler(HTTP11DownloadHandler):
    """DOWNLOAD_HANDLERS for http and https (crawler/settings.py)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        guard = _Guard(crawler)

        class _Factory(_LenientHTTP11ClientFactory):
            def buildProtocol(self, addr: Any) -> _GuardedProtocol:
                return _GuardedProtocol(self._quiescentCallback, guard)

        self._pool._factory = _Factory
