"""What a crawl needs to know from the archive before it starts, read in one short
read-only visit: the URLs already archived (the incremental filter), the pages not worth
fetching again yet, conditional-GET validators, and which known articles are due a revisit.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.boilerplate import load_boilerplate
from archive.db import ArchiveLocked, connect_read
from archive.spool import pending_urls, spool_dir_for
from archive.target import is_lake

logger = logging.getLogger(__name__)

# Pages whose failure is permanent enough not to fetch them again for a while.
# Skips that the next run would only repeat: not fetched again for PERMANENT_SKIP_DAYS.
# (A pattern that timed out on a URL times out again; a refused address stays refused.)
PERMANENT_SKIPS = (
    "http_404",
    "http_410",
    "not_html",
    "listing",
    "too_large",
    "offsite_redirect",
    "robots_forbidden",
    "http_403",
    "http_451",
    "pattern_timeout",
    "address_refused",
)
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
    held_by: str | None = None  # why the archive could not be read (the state came from the cache)

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
    """The state from the archive; when another program holds the archive (a read-write duckdb
    shell), from what the last crawl of the outlet saved, so the crawl still runs into the spool
    instead of failing (articles outside that saved window may be fetched again: ingest knows them)."""
    if is_lake(db_path):  # a lake is never held: no saved state to fall back on
        from archive.lake.state import read_lake_state

        state = read_lake_state(str(db_path), outlet)
        state.seen_urls |= pending_urls(spool_dir_for(db_path))
        return state
    path = Path(db_path)
    spool = spool_dir_for(path)
    pending = pending_urls(spool)
    if not path.exists():
        return CrawlState(seen_urls=pending)
    try:
        state = _read_state(path, outlet)
    except ArchiveLocked as exc:
        state = _cached_state(spool, outlet)
        state.held_by = str(exc)
        logger.warning(
            "%s; crawling %s from its saved state (%d known URLs)",
            exc,
            outlet,
            len(state.seen_urls),
        )
    else:
        _save_state(spool, outlet, state)
    state.seen_urls |= pending
    return state


def _cache_path(spool: Path, outlet: str) -> Path:
    return spool / "state" / f"{outlet}.json"


def _save_state(spool: Path, outlet: str, state: CrawlState) -> None:
    """What a crawl needs if the archive is held next time: the outlet's young articles (what
    its feeds list), pages not worth refetching, validators, boilerplate. Small, unlike the
    whole seen-set."""
    data = {
        "saved_at": datetime.now(UTC).isoformat(),
        "known": {
            u: [k.article_id, k.fetches, k.last_fetched_at.isoformat(), k.first_seen_at.isoformat()]
            for u, k in state.known.items()
        },
        "skip_urls": sorted(state.skip_urls),
        "validators": state.validators,
        "boilerplate": sorted(state.boilerplate),
    }
    target = _cache_path(spool, outlet)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:  # only a fallback: the crawl goes on without it
        logger.warning("cannot save the crawl state of %s in %s: %s", outlet, target, exc.strerror)


def _cached_state(spool: Path, outlet: str) -> CrawlState:
    try:
        data: dict[str, Any] = json.loads(_cache_path(spool, outlet).read_text(encoding="utf-8"))
        state = CrawlState()
        for url, (article_id, fetches, last, first) in data["known"].items():
            state.known[url] = KnownArticle(
                int(article_id),
                int(fetches),
                datetime.fromisoformat(last),
                datetime.fromisoformat(first),
            )
        state.seen_urls = set(state.known)
        state.skip_urls = set(data["skip_urls"])
        state.validators = {u: (v[0], v[1]) for u, v in data["validators"].items()}
        state.boilerplate = frozenset(data["boilerplate"])
        return state
    except FileNotFoundError:
        return CrawlState()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning(
            "saved crawl state of %s unreadable (%s): starting from nothing", outlet, exc
        )
        return CrawlState()


def _read_state(path: Path, outlet: str) -> CrawlState:
    con = connect_read(path)
    try:
        state = archived_state(con, outlet)
        for url, etag, last_modified in con.execute(
            "SELECT url, etag, last_modified FROM http_state WHERE outlet = ?", [outlet]
        ).fetchall():
            state.validators[url] = (etag, last_modified)
        state.boilerplate = load_boilerplate(con, outlet)
    finally:
        con.close()
    return state


def archived_state(con: Any, outlet: str) -> CrawlState:
    """Seen URLs, pages not worth fetching again, young articles due a revisit: the same SQL
    on the file and on a lake (whose tables and views have the same names)."""
    state = CrawlState()
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
        state.known[url] = KnownArticle(
            article_id, int(fetches), last_fetched or first_seen, first_seen
        )
    return state
