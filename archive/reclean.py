"""Archive side of `mediawatch reprocess`: which stored pages to clean again, and writing the
new result over the old one in place (text, metadata, removed blocks, fingerprints, search).

The cleaning itself happens in the crawler layer (archive never imports the pipelines);
this module only reads pages and writes results. A Recleaner is the one seam between the
two backends: the file's (FileRecleaner, below: in place, one transaction per batch) and the
lake's (archive/lake/reclean.py: appended, one lake transaction per batch); the reads are the
same SQL on both, since the lake's views carry the file's table names.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb

from archive import dedup, search
from archive.batch import content_key
from archive.ingest import ARTICLE_COLUMNS, article_values
from archive.records import Article, Hints, RemovedBlock


@dataclass
class StoredPage:
    article_id: int
    version: int  # the article's current version, or the version an article_versions row holds
    current: bool
    outlet: str
    url: str
    html: str
    hints: Hints
    content_hash: str | None
    extractor_version: str | None
    removed: list[tuple[int, str, str, str]]  # (position, kind, rule, text)


@dataclass
class Rewrite:
    """A stored page's new cleaning result, to be written over the stored one."""

    page: StoredPage
    article: Article
    removed: list[RemovedBlock]
    content_hash: str
    bands: list[int]


class Recleaner(Protocol):
    """Where a re-clean reads stored pages and writes its results, batch by batch."""

    lake: bool

    def reading(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]: ...
    def boilerplate(self, con: duckdb.DuckDBPyConnection, outlet: str) -> frozenset[str]: ...
    def learned_due(self) -> list[tuple[str, str, str]]: ...
    def holding(self, outlet: str, samples: list[str]) -> list[int]: ...
    def learned_done(self, outlet: str, keys: list[str], changed: int, sample: str) -> None: ...
    def write(
        self, rewrites: list[Rewrite], unchanged: list[StoredPage], version: str, now: datetime
    ) -> None: ...
    def close(self) -> None: ...


class FileRecleaner:
    """The embedded file: short read-only opens, one write transaction per batch, so a
    running daemon only waits a moment."""

    lake = False

    def __init__(self, db: str | os.PathLike[str]) -> None:
        self.db = db

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        from archive.db import reader

        with reader(self.db) as con:
            yield con

    def boilerplate(self, con: duckdb.DuckDBPyConnection, outlet: str) -> frozenset[str]:
        from archive.boilerplate import load_boilerplate

        return load_boilerplate(con, outlet)

    def learned_due(self) -> list[tuple[str, str, str]]:
        """(key, outlet, sample) of learned paragraphs archived articles may still hold."""
        from archive.boilerplate import due_recleans

        with self.reading() as con:
            return due_recleans(con)

    def holding(self, outlet: str, samples: list[str]) -> list[int]:
        from archive.boilerplate import articles_holding

        with self.reading() as con:
            return articles_holding(con, outlet, samples)

    def learned_done(self, outlet: str, keys: list[str], changed: int, sample: str) -> None:
        """Those paragraphs re-cleaned: off the queue, the re-clean in daemon_events."""
        from archive.boilerplate import clear_due, record_reclean
        from archive.db import writer
        from archive.tx import transaction

        with writer(self.db) as con, transaction(con):
            clear_due(con, keys)
            if changed:
                record_reclean(con, outlet, changed, sample, os.getpid())

    def write(
        self, rewrites: list[Rewrite], unchanged: list[StoredPage], version: str, now: datetime
    ) -> None:
        from archive.db import writer
        from archive.tx import transaction

        with writer(self.db) as con, transaction(con):
            for r in rewrites:
                apply(con, r.page, r.article, r.removed, r.content_hash, r.bands, version, now)
            mark_version(con, [p.article_id for p in unchanged if p.current], version)

    def close(self) -> None:
        pass


def learned_pending(db: str | os.PathLike[str]) -> bool:
    """Whether `reclean_learned` may have work: on a lake, asked of PostgreSQL without opening
    a re-cleaner; the file's queue is read by the re-cleaner's own short reader."""
    from archive.target import LakeTarget, parse_target

    target = parse_target(os.fspath(db))
    if isinstance(target, LakeTarget):
        from archive.lake.boilerplate import pending

        return pending(target)
    return True


def open_recleaner(db: str | os.PathLike[str]) -> Recleaner:
    """The recleaner of the archive `--db` names: a lake URL, or the file."""
    from archive.target import is_lake

    if is_lake(db):
        from archive.lake.reclean import LakeRecleaner

        return LakeRecleaner(str(db))
    return FileRecleaner(db)


def candidates(
    con: duckdb.DuckDBPyConnection,
    *,
    outlets: list[str] | None = None,
    since: datetime | None = None,
) -> list[int]:
    """Ids of the articles to clean again, oldest first."""
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if outlets:
        where.append("outlet IN (SELECT unnest(?))")
        params.append(outlets)
    if since is not None:
        where.append("coalesce(published_at, first_seen_at) >= ?")
        params.append(since)
    sql = f"SELECT id FROM articles WHERE {' AND '.join(where)} ORDER BY id"
    return [r[0] for r in con.execute(sql, params).fetchall()]


def stored_pages(con: duckdb.DuckDBPyConnection, article_ids: list[int]) -> list[StoredPage]:
    """The raw pages behind these articles' current text and their older versions."""
    rows = con.execute(
        """
        SELECT a.id, a.version, TRUE, a.outlet, coalesce(p.final_url, p.url), p.html_gz, a.feed_title,
               a.feed_published_at, a.discovered_via, a.content_hash, a.extractor_version
        FROM articles a JOIN pages p ON p.id = a.page_id
        WHERE a.id IN (SELECT unnest(?)) AND p.html_gz IS NOT NULL
        UNION ALL
        SELECT a.id, v.version, FALSE, a.outlet, coalesce(p.final_url, p.url), p.html_gz, a.feed_title,
               a.feed_published_at, a.discovered_via, v.content_hash, NULL
        FROM article_versions v JOIN articles a ON a.id = v.article_id JOIN pages p ON p.id = v.page_id
        WHERE a.id IN (SELECT unnest(?)) AND p.html_gz IS NOT NULL
        ORDER BY 1, 2
        """,
        [article_ids, article_ids],
    ).fetchall()
    removed: dict[tuple[int, int], list[tuple[int, str, str, str]]] = {}
    for article_id, version, position, kind, rule, text in con.execute(
        "SELECT article_id, version, position, kind, rule, text FROM removed_blocks "
        "WHERE article_id IN (SELECT unnest(?)) ORDER BY article_id, version, position",
        [article_ids],
    ).fetchall():
        removed.setdefault((article_id, version), []).append((position, kind, rule, text))
    pages = []
    for (
        article_id,
        version,
        current,
        outlet,
        url,
        html_gz,
        feed_title,
        feed_published,
        via,
        chash,
        extractor,
    ) in rows:
        html = gzip.decompress(html_gz).decode("utf-8", "replace")
        hints: Hints = {
            "title": feed_title,
            "published_at": feed_published.isoformat() if feed_published else None,
            "source": via,
        }
        pages.append(
            StoredPage(
                article_id,
                version,
                current,
                outlet,
                url,
                html,
                hints,
                chash,
                extractor,
                removed.get((article_id, version), []),
            )
        )
    return pages


def apply(
    con: duckdb.DuckDBPyConnection,
    page: StoredPage,
    article: Article,
    removed: list[RemovedBlock],
    content_hash: str,
    bands: list[int],
    extractor_version: str,
    now: datetime,
) -> None:
    """Write a re-cleaned result over the stored one, in the caller's transaction."""
    con.execute(
        "DELETE FROM removed_blocks WHERE article_id = ? AND version = ?",
        [page.article_id, page.version],
    )
    if removed:
        con.executemany(
            "INSERT INTO removed_blocks (article_id, version, position, kind, rule, text) VALUES (?, ?, ?, ?, ?, ?)",
            [
                [page.article_id, page.version, b["position"], b["kind"], b["rule"], b["text"]]
                for b in removed
            ],
        )
    if not page.current:
        con.execute(
            "UPDATE article_versions SET title = ?, text = ?, content_hash = ? WHERE article_id = ? AND version = ?",
            [article.get("title"), article["text"], content_hash, page.article_id, page.version],
        )
        return
    values = article_values(article)
    assignments = ", ".join(f"{c} = ?" for c in ARTICLE_COLUMNS)
    con.execute(
        f"UPDATE articles SET {assignments}, content_hash = ?, content_key = ?, promo_flagged = ?, "
        "extractor_version = ? WHERE id = ?",
        [
            *values,
            content_hash,
            content_key(content_hash),
            bool(article.get("promo_flagged")),
            extractor_version,
            page.article_id,
        ],
    )
    dedup.refresh_bands(con, page.article_id, bands)
    search.index_articles(con, [page.article_id])


def mark_version(
    con: duckdb.DuckDBPyConnection, article_ids: list[int], extractor_version: str
) -> None:
    """Articles whose result did not change were still made again by this version."""
    if article_ids:
        con.execute(
            "UPDATE articles SET extractor_version = ? WHERE id IN (SELECT unnest(?))",
            [extractor_version, article_ids],
        )


def word_counts(con: duckdb.DuckDBPyConnection, article_ids: list[int]) -> dict[int, int]:
    """Current word count of each article, for the before/after report of a re-clean."""
    return {
        int(i): int(n or 0)
        for i, n in con.execute(
            "SELECT id, word_count FROM articles WHERE id IN (SELECT unnest(?))", [article_ids]
        ).fetchall()
    }
