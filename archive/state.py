"""What a crawl needs to know from the archive before it starts, read in one short
read-only visit: the URLs already archived (the incremental filter), the pages not worth
fetching again yet, conditional-GET validators, and which known articles are due a revisit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.boilerplate import load_boilerplate
from archive.db import connect_read
from archive.spool import pending_urls, spool_dir_for

# Pages whose failure is permanent enough not to fetch them again for a while.
PERMANENT_SKIPS = ("http_404", "http_410", "not_html", "listing", "too_large", "offsite_redirect",
                   "robots_forbidden", "http_403", "http_451")
PERMANENT_SKIP_DAYS = 7
# Bounded revisits: an article is rechecked a few times in its first days.
REVISIT_MAX_FETCHES = 3
REVISIT_WINDOW = timedelta(days=3)
REVISIT_MIN_GAP = timedelta(hours=6)


@dataclass
class KnownArticle:
    article_id: int
    fetches: int
    last_fetched_at: datetime
    first_seen_at: datetime


@dataclass
class CrawlState:
    seen_urls: set[str] = field(default_factory=set)
    known: dict[str, KnownArticle] = field(default_factory=dict)  # url -> article, for revisits
    skip_urls: set[str] = field(default_factory=set)
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    boilerplate: frozenset[str] = frozenset()

    def revisit_due(self, url: str, lastmod: datetime | None, now: datetime) -> bool:
        """A known URL is fetched again when its feed/sitemap date moved past our last fetch,
        or while it is young and has been fetched fewer than REVISIT_MAX_FETCHES times."""
        known = self.known.get(url)
        if known is None:
            return False
        if lastmod is not None and lastmod > known.last_fetched_at:
            return True
        return (
            known.fetches < REVISIT_MAX_FETCHES
            and now - known.first_seen_at < REVISIT_WINDOW
            and now - known.last_fetched_at >= REVISIT_MIN_GAP
        )


def load_crawl_state(db_path: str | os.PathLike[str], outlet: str) -> CrawlState:
    state = CrawlState()
    path = Path(db_path)
    state.seen_urls |= pending_urls(spool_dir_for(path))
    if not path.exists():
        return state
    con = connect_read(path)
    try:
        state.seen_urls.update(r[0] for r in con.execute("SELECT url FROM article_urls").fetchall())
        cutoff = datetime.now(UTC) - timedelta(days=PERMANENT_SKIP_DAYS)
        placeholders = ", ".join("?" for _ in PERMANENT_SKIPS)
        state.skip_urls.update(
            r[0]
            for r in con.execute(
                f"SELECT url FROM pages WHERE outlet = ? AND fetched_at >= ? AND skip_reason IN ({placeholders})",
                [outlet, cutoff, *PERMANENT_SKIPS],
            ).fetchall()
        )
        for url, etag, last_modified in con.execute(
            "SELECT url, etag, last_modified FROM http_state WHERE outlet = ?", [outlet]
        ).fetchall():
            state.validators[url] = (etag, last_modified)
        young = datetime.now(UTC) - REVISIT_WINDOW - timedelta(days=1)
        rows = con.execute(
            """
            SELECT u.url, a.id, count(p.id), max(p.fetched_at), a.first_seen_at
            FROM articles a
            JOIN article_urls u ON u.article_id = a.id
            LEFT JOIN pages p ON p.article_id = a.id
            WHERE a.outlet = ? AND (a.last_seen_at >= ? OR a.first_seen_at >= ?)
            GROUP BY u.url, a.id, a.first_seen_at
            """,
            [outlet, young, young],
        ).fetchall()
        for url, article_id, fetches, last_fetched, first_seen in rows:
            state.known[url] = KnownArticle(article_id, int(fetches), last_fetched or first_seen, first_seen)
        state.boilerplate = load_boilerplate(con, outlet)
    finally:
        con.close()
    return state
