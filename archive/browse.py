"""What `mediawatch serve` reads, as functions: every SQL statement of the web app is here.

Each page opens the archive read-only for one short session (`session`), as `mediawatch
query` does, so the daemon's writer gets in between requests. Nothing here writes.
Ranked search is `archive.search.search_in`, the one `mediawatch search` uses; counts of
matches use the `search_articles` macro, with the same syntax and hits (on a lake, both are
PostgreSQL's text search, archive/lake/search.py).
"""

from __future__ import annotations

import gzip
import io
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from archive.query import (
    QueryError,
    bind_params,
    check_read_only,
    condense_error,
    open_archive,
    write_rows,
)
from archive.search import (
    FALLBACK_STEMMER,
    STEMMERS,
    Hit,
    SearchFilters,
    _add_filters,
    _each,
    _match,
    _query_terms,
    has_syntax,
    positive_words,
    search_in,
)
from archive.target import LakeTarget, parse_target

PAGE_SIZE = 50
SQL_ROW_LIMIT = 1000  # rows shown in the /sql table; the CSV link has them all
ACTIVITY_DAYS = 30  # the outlets page's window
SESSION_TIMEOUT = 20.0  # seconds a page may hold the archive open


@dataclass
class Filters:
    """The filters every listing page shares: outlet, language, published date range."""

    outlets: Sequence[str] = ()
    languages: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The conditions on `articles a`, the same ones `mediawatch search` applies."""
        clauses: list[str] = ["TRUE"]
        params: dict[str, Any] = {}
        _add_filters(clauses, params, self.outlets, self.languages, self.since, self.until)
        return " AND ".join(clauses), params

    def search(self, limit: int = 20) -> SearchFilters:
        """As `mediawatch search` passes them."""
        return {"outlets": self.outlets, "languages": self.languages, "since": self.since,
                "until": self.until, "limit": limit}  # fmt: skip


@contextmanager
def session(
    db: str | os.PathLike[str], *, fts: bool = False, timeout: float = SESSION_TIMEOUT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-only session, sandboxed (no file access), timestamps in UTC.

    Interrupted after `timeout` seconds: while a reader is open the daemon cannot write, so
    a page must not hold the archive for as long as a heavy query takes."""
    con = open_archive(db, sandbox=True, timezone="UTC", fts=fts, retries=30)
    timer = threading.Timer(timeout, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield con
    except duckdb.InterruptException as exc:
        raise QueryError(
            f"stopped after {timeout:g} s so that the daemon can write; "
            "narrow the query (fewer words, a date range, an outlet)"
        ) from exc
    finally:
        timer.cancel()
        con.close()


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description or []]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def facets(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Outlets and languages present, for the filter menus."""
    outlets = [
        r[0] for r in con.execute("SELECT DISTINCT outlet FROM articles ORDER BY 1").fetchall()
    ]
    langs = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT language FROM articles WHERE language IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    return {"outlets": outlets, "languages": langs}


def latest(
    con: duckdb.DuckDBPyConnection, filters: Filters, *, page: int = 0, size: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """The newest articles (by publication, first seen when undated) matching the filters."""
    where, params = filters.sql()
    params |= {"limit": size + 1, "offset": max(0, page) * size}
    # Ids first, then the rows: sorting with the text in tow reads every text (1.2 s at 1M).
    ids = [
        int(r[0])
        for r in con.execute(
            f"""SELECT a.id FROM articles a WHERE {where}
            ORDER BY coalesce(a.published_at, a.first_seen_at) DESC, a.id DESC
            LIMIT $limit OFFSET $offset""",
            params,
        ).fetchall()
    ]
    if not ids:
        return []
    return _dicts(
        con.execute(
            f"""SELECT a.id, a.outlet, a.title, a.url, a.published_at, a.language, a.word_count,
                   left(coalesce(a.description, a.text), 240) AS teaser
            FROM articles a WHERE {_match("a.id", ids)}
            ORDER BY coalesce(a.published_at, a.first_seen_at) DESC, a.id DESC"""
        )
    )


def _matching(
    con: duckdb.DuckDBPyConnection, query: str, filters: Filters
) -> tuple[str, dict[str, Any]]:
    """SQL of the ids of the articles matching `query` (column article_id), and its parameters.

    Plain words read the index's postings directly, as `search` ranks them (a live text
    with any form of a word); a query with syntax goes through the search_articles macro,
    which also checks phrases, required and excluded words (slower: it scores every match).
    """
    words = positive_words(query)
    if has_syntax(query) or not words:
        return "SELECT article_id FROM search_articles($q)", {"q": query}
    stemmers = [
        str(r[0]) for r in con.execute("SELECT stemmer FROM search_stats WHERE docs > 0").fetchall()
    ]
    if filters.languages:
        stemmers = [
            s
            for s in stemmers
            if s in {STEMMERS.get(lang.lower(), FALLBACK_STEMMER) for lang in filters.languages}
        ]
    keys = [k for k, _ in _query_terms(con, words, sorted(stemmers))] if stemmers else []
    postings = _each("SELECT doc_id FROM search_postings", "term_key", keys)
    return f"SELECT DISTINCT d.article_id FROM ({postings}) p JOIN search_docs d USING (doc_id)", {}


def hits(
    db: str | os.PathLike[str],
    con: duckdb.DuckDBPyConnection,
    query: str,
    filters: Filters,
    *,
    limit: int,
    mark: tuple[str, str],
) -> list[Hit]:
    """The ranked hits `mediawatch search` gives, on either backend."""
    return search_in(db, con, query, mark=mark, **filters.search(limit))


def _lake(db: str | os.PathLike[str]) -> LakeTarget | None:
    target = parse_target(os.fspath(db))
    return target if isinstance(target, LakeTarget) else None


def matches_per_day(
    db: str | os.PathLike[str], con: duckdb.DuckDBPyConnection, query: str, filters: Filters
) -> list[tuple[Any, int]]:
    """How many articles match `query` per UTC day of publication (the search page's chart)."""
    lake = _lake(db)
    if lake is not None:
        from archive.lake.search import matches_per_day as lake_per_day

        return [(r[0], int(r[1])) for r in lake_per_day(lake, query, **filters.search())]
    where, params = filters.sql()
    matching, more = _matching(con, query, filters)
    rows = con.execute(
        f"""WITH m AS MATERIALIZED ({matching})
            SELECT CAST(a.published_at AS DATE) AS day, count(*) FROM m JOIN articles a ON a.id = m.article_id
            WHERE {where} AND a.published_at IS NOT NULL GROUP BY 1 ORDER BY 1""",
        params | more,
    ).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def mentions(
    db: str | os.PathLike[str],
    con: duckdb.DuckDBPyConnection,
    query: str,
    filters: Filters,
    *,
    by: str = "outlet",
) -> list[tuple[Any, str, int]]:
    """(day, outlet or language, matching articles): the trends page's series."""
    column = {"outlet": "a.outlet", "language": "coalesce(a.language, '?')"}[by]
    lake = _lake(db)
    if lake is not None:
        from archive.lake.search import matches_per_day as lake_per_day

        found = lake_per_day(lake, query, by=by, **filters.search())
        return [(r[0], str(r[1]), int(r[2])) for r in found]
    where, params = filters.sql()
    matching, more = _matching(con, query, filters)
    rows = con.execute(
        f"""WITH m AS MATERIALIZED ({matching})
            SELECT CAST(a.published_at AS DATE) AS day, {column} AS series, count(*)
            FROM m JOIN articles a ON a.id = m.article_id
            WHERE {where} AND a.published_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2""",
        params | more,
    ).fetchall()
    return [(r[0], str(r[1]), int(r[2])) for r in rows]


@dataclass
class ArticleView:
    """One article as its page shows it."""

    article: dict[str, Any]
    page: dict[str, Any] | None
    removed: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    copies: list[dict[str, Any]]
    decisions: list[dict[str, Any]] = field(default_factory=list)


def article(con: duckdb.DuckDBPyConnection, article_id: int) -> ArticleView | None:
    """Text, metadata, removed promotions, earlier versions and syndication cluster."""
    rows = _dicts(con.execute("SELECT * FROM articles WHERE id = $id", {"id": article_id}))
    if not rows:
        return None
    a = rows[0]
    page = (
        _dicts(
            con.execute(
                """SELECT id, url, final_url, status, content_type, fetched_at, size_bytes,
                  html_gz IS NOT NULL AS has_html
           FROM pages WHERE id = $pid""",
                {"pid": a["page_id"]},
            )
        )
        if a["page_id"] is not None
        else []
    )
    removed = _dicts(
        con.execute(
            "SELECT position, kind, rule, text FROM removed_blocks WHERE article_id = $id AND version = $v "
            "ORDER BY position",
            {"id": article_id, "v": a["version"]},
        )
    )
    versions = _dicts(
        con.execute(
            "SELECT version, title, text, fetched_at FROM article_versions WHERE article_id = $id ORDER BY version",
            {"id": article_id},
        )
    )
    copies: list[dict[str, Any]] = []
    if a["cluster_id"] is not None:
        copies = _dicts(
            con.execute(
                """SELECT m.id, m.outlet, m.title, m.url, m.published_at, m.id = c.first_article_id AS is_first,
                      m.published_at - coalesce(c.first_published_at, f.published_at) AS delay
               FROM articles m JOIN clusters c ON c.cluster_id = m.cluster_id
               LEFT JOIN articles f ON f.id = c.first_article_id
               WHERE m.cluster_id = $c ORDER BY m.published_at NULLS LAST, m.id""",
                {"c": a["cluster_id"]},
            )
        )
    decisions = _dicts(
        con.execute(
            """SELECT matched_article_id, level, score, reason, decided_at FROM duplicate_links
           WHERE article_id = $id ORDER BY decided_at""",
            {"id": article_id},
        )
    )
    return ArticleView(a, page[0] if page else None, removed, versions, copies, decisions)


def raw_page(con: duckdb.DuckDBPyConnection, article_id: int) -> tuple[str, bytes] | None:
    """(content type, bytes) of the stored page the article's current text came from."""
    row = con.execute(
        "SELECT p.content_type, p.html_gz FROM articles a JOIN pages p ON p.id = a.page_id "
        "WHERE a.id = $id AND p.html_gz IS NOT NULL",
        {"id": article_id},
    ).fetchone()
    if row is None:
        return None
    return str(row[0] or "text/html"), gzip.decompress(bytes(row[1]))


def outlet_activity(con: duckdb.DuckDBPyConnection, days: int = ACTIVITY_DAYS) -> dict[str, Any]:
    """Per outlet: last successful run (the outlet_activity view's rule), articles per day
    over `days` and skip reasons of the pages of that span."""
    success = {
        r[0]: r[1]
        for r in con.execute("SELECT outlet, last_success_at FROM outlet_activity").fetchall()
    }
    per_day: dict[str, list[tuple[Any, int]]] = {}
    for outlet, day, n in con.execute(
        """SELECT outlet, day, articles FROM articles_per_outlet_day
           WHERE day > current_date - $days::INTEGER ORDER BY outlet, day""",
        {"days": days},
    ).fetchall():
        per_day.setdefault(outlet, []).append((day, int(n)))
    skips: dict[str, list[tuple[str, int]]] = {}
    for outlet, reason, n in con.execute(
        """SELECT outlet, skip_reason, count(*) FROM pages
           WHERE skip_reason IS NOT NULL AND fetched_at >= now() - to_days($days::INTEGER)
           GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""",
        {"days": days},
    ).fetchall():
        skips.setdefault(outlet, []).append((str(reason), int(n)))
    return {"per_day": per_day, "skips": skips, "last_success": success}


@dataclass
class SqlResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def run_sql(
    db: str | os.PathLike[str],
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int = SQL_ROW_LIMIT,
    timeout: float = SESSION_TIMEOUT,
) -> SqlResult:
    """One read-only statement under the rules of `mediawatch query` (check_read_only,
    sandbox, named parameters), its first `limit` rows."""
    with session(db, fts="search_articles" in sql.lower(), timeout=timeout) as con:
        cur = _run_checked(con, sql, params)
        rows = cur.fetchmany(limit + 1)
        return SqlResult([d[0] for d in cur.description or []], rows[:limit], len(rows) > limit)


def sql_csv(
    db: str | os.PathLike[str],
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    timeout: float = SESSION_TIMEOUT,
) -> str:
    """The whole result as CSV, written as `mediawatch query --format csv` writes it."""
    out = io.StringIO()
    with session(db, fts="search_articles" in sql.lower(), timeout=timeout) as con:
        cur = _run_checked(con, sql, params)
        write_rows(
            [d[0] for d in cur.description or []], iter(lambda: cur.fetchmany(5000), []), "csv", out
        )
    return out.getvalue()


def _run_checked(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None
) -> duckdb.DuckDBPyConnection:
    stmt = check_read_only(con, sql)
    bound = bind_params(stmt, params or {})
    try:
        return con.execute(sql, bound)
    except duckdb.InterruptException:
        raise  # the session says why
    except duckdb.Error as exc:
        raise QueryError(condense_error(exc, sql)) from exc
