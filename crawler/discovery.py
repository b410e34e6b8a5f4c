"""Pure discovery helpers of the spider: feed entries, which child sitemaps to read, and the
article pattern matched with a time limit. No Scrapy types, so each is tested on bytes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import feedparser
import regex

from pipelines.jsontext import load_json, repair_char_refs, repair_text

# Seconds one article_pattern match may take: a pattern that backtracks catastrophically on
# a crafted URL gives up here (the URL recorded) instead of stalling the run.
PATTERN_TIMEOUT = 0.05


class FeedError(ValueError):
    """A feed that cannot be read at all (one line, for the log and the run's counters)."""


def feed_entries(body: bytes, url: str) -> list[dict[str, Any]]:
    """Entries of an RSS, Atom or JSON feed: {"url", "title", "published_at", "lastmod"}.

    Text is repaired where it enters (surrogate escapes and character references), so one bad
    title never costs the feed; FeedError when nothing can be read."""
    if body.lstrip()[:1] == b"{":
        return json_feed_entries(body)
    try:
        parsed = feedparser.parse(
            repair_char_refs(body),
            response_headers={"content-location": url},
            resolve_relative_uris=False,
            sanitize_html=False,
        )
    except Exception as exc:  # feedparser on bytes it does not expect: the feed is unreadable
        raise FeedError(f"{type(exc).__name__}: {exc}") from None
    if parsed.bozo and not parsed.entries:
        raise FeedError(str(parsed.get("bozo_exception")))
    entries = []
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            continue
        published = _struct_iso(entry.get("published_parsed") or entry.get("updated_parsed"))
        updated = _struct_iso(entry.get("updated_parsed")) or published
        title = entry.get("title")
        entries.append(
            {
                "url": repair_text(link),
                "title": repair_text(title) if isinstance(title, str) else None,
                "published_at": published,
                "lastmod": updated,
            }
        )
    return entries


def json_feed_entries(body: bytes) -> list[dict[str, Any]]:
    """JSON Feed items (feedparser does not read JSON Feed); FeedError when unreadable."""
    try:
        data = load_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"JSON feed unreadable: {exc}"[:300]) from None
    items = data.get("items") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            title = item.get("title")
            out.append(
                {
                    "url": item["url"],
                    "title": title if isinstance(title, str) else None,
                    "published_at": item.get("date_published"),
                    "lastmod": item.get("date_modified") or item.get("date_published"),
                }
            )
    return out


def _struct_iso(value: time.struct_time | None) -> str | None:
    """feedparser's parsed dates are struct_time in UTC."""
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC).isoformat()
    except (TypeError, ValueError):
        return None


def order_child_sitemaps(
    children: Iterable[dict[str, Any]], fetched: set[str] | frozenset[str], budget: int
) -> tuple[list[str], list[str]]:
    """(read now, deferred) child sitemaps of an index, at most `budget` read now.

    Newest first, by lastmod, else by name (monthly sitemaps are named by date): the newest
    children hold the new articles. Half of the budget goes to the newest, the rest first to
    children never fetched before, so the ones deferred by one run are read by the next ones
    instead of waiting behind the newest forever. Children without lastmod sort after the
    dated ones."""
    unique: dict[str, dict[str, Any]] = {}
    for child in children:
        unique.setdefault(child["loc"], child)

    def key(child: dict[str, Any]) -> tuple[int, str, str]:
        lastmod = child.get("lastmod_sort")
        return (1 if lastmod else 0, lastmod or "", child["loc"])

    ordered = [c["loc"] for c in sorted(unique.values(), key=key, reverse=True)]
    if budget <= 0:
        return [], ordered
    chosen = ordered[: (budget + 1) // 2]
    picked = set(chosen)
    for loc in ordered:
        if len(chosen) >= budget:
            break
        if loc not in picked and loc not in fetched:
            chosen.append(loc)
            picked.add(loc)
    for loc in ordered:
        if len(chosen) >= budget:
            break
        if loc not in picked:
            chosen.append(loc)
            picked.add(loc)
    return chosen, [loc for loc in ordered if loc not in picked]


def pattern_search(
    pattern: regex.Pattern[str], url: str, timeout: float = PATTERN_TIMEOUT
) -> bool | None:
    """Whether the URL matches; None when the match took over `timeout` seconds."""
    try:
        return pattern.search(url, timeout=timeout) is not None
    except TimeoutError:
        return None


_REF_AT_END = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));$")


def _ref_code(m: re.Match[bytes]) -> int:
    return int(m.group(1), 16) if m.group(1) else int(m.group(2))


class CharRefRepairingReader:
    """A file-like view of another whose character references to surrogates are repaired
    (pipelines.jsontext.repair_char_refs) as the bytes stream through: lxml refuses them, and
    one such title in a news sitemap lost every entry after it. A reference cut by a read is
    held back until the next one, so pairs are always seen whole."""

    HOLD = 32  # longer than any character reference

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.pending = b""
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while not self.done:
            chunk: bytes = self.raw.read(size if size and size > 0 else 64 * 1024)
            if not chunk:
                self.done = True
                break
            self.pending += chunk
            cut = self.pending.rfind(b"&", max(0, len(self.pending) - self.HOLD))
            if cut > 0:  # a high surrogate just before it stays with its (maybe cut) partner
                before = _REF_AT_END.search(self.pending, max(0, cut - self.HOLD), cut)
                if before is not None and 0xD800 <= _ref_code(before) <= 0xDBFF:
                    cut = before.start()
            if cut > 0:
                ready, self.pending = self.pending[:cut], self.pending[cut:]
                return repair_char_refs(ready)
            if cut < 0:
                ready, self.pending = self.pending, b""
                return repair_char_refs(ready)
            # a reference at the very start and nothing before it: read more
        ready, self.pending = self.pending, b""
        return repair_char_refs(ready)
