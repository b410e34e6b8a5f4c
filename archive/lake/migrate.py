"""Move an embedded archive into a lake: idempotent, resumable, verified by counts.

Articles (with their versions, URLs, removed blocks, dedup decisions, bands) and pages go in
batches of ids, each batch one lake transaction that adds only the rows the lake lacks
(an anti-join on the batch's key range), so a killed run leaves whole batches and the next
run adds exactly what is missing. The PostgreSQL claims (article keys, URLs, record ids)
follow each batch with ON CONFLICT DO NOTHING semantics (with what the writers decide by:
each version's content hash, band keys, cluster heads, so what is crawled after the move is
deduplicated against what was moved); the small mutable tables go last, compared with the
lake's latest-wins views. The file's search tables are not moved: the lake's index is
PostgreSQL's, built from the moved articles afterwards (archive/lake/search_index.py reindex,
which `mediawatch migrate` runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from archive.bandindex import KEY_MASK
from archive.db import ArchiveError, _is_lock_error
from archive.lake.connect import connect_lake_write
from archive.lake.rows import STORED_IN
from archive.target import LakeTarget

BATCH = 2000  # articles (or pages) per lake transaction: a commit costs ~20 ms, a Parquet file each
PG = "pgstate"  # the lake's PostgreSQL, attached beside it for the claims and the mutable state

_ARTICLE_COLS = (
    "outlet, url, canonical_url, page_canonical_url, title, authors, published_at, modified_at, "
    "date_source, language, section, tags, description, summary, image_url, site_name, text, "
    "word_count, paywalled, promo_flagged, content_hash, feed_title, feed_published_at, "
    "discovered_via, cross_site_canonical, extractor_version, page_id"
)
_PAGE_COLS = (
    "id, record_id, run_id, outlet, url, final_url, status, content_type, fetched_at, size_bytes, "
    "html_gz, article_id, skip_reason, detail"
)
_RUN_COLS = (
    "run_id, outlet, started_at, finished_at, status, requests, responses, articles_new, "
    "articles_updated, skipped, errors, message, failure"
)
_STATE_COLS = (
    "outlet, next_run_at, interval_seconds, delay_seconds, consecutive_failures, healthy, "
    "health_reason, last_run_id, last_status, last_run_at, last_new_at, updated_at"
)

# Rows keyed by article_id with no key of their own: the batch adds the multiset difference.
_BY_ARTICLE = {
    "removed_blocks": "article_id, version, position, kind, rule, text",
    "duplicate_links": "article_id, matched_article_id, level, score, reason, decided_at",
    "lsh_bands": "band, hash, article_id",
}
# PostgreSQL state copied once (never overwriting what a lake writer already keeps there).
_PG_STATE = {
    "http_state": (
        "url",
        "url, outlet, etag, last_modified, last_status, last_fetched_at, last_changed_at",
    ),
    "paragraph_stats": (
        "para_key",
        "para_key, outlet, para_hash, articles, first_seen_at, last_seen_at, sample",
    ),
    "boilerplate_due": ("para_key", "para_key, outlet, para_hash, sample, due_since"),
    "outlet_state": ("outlet", _STATE_COLS),
    "crawl_runs": ("run_id, outlet", _RUN_COLS),
}

# What the verification compares: (name, count in the source, count in the lake).
CHECKS = (
    ("articles", "src.articles", "lake.articles"),
    ("article_versions", "src.article_versions", "lake.article_versions"),
    ("pages", "src.pages", "lake.pages"),
    ("article_urls", "src.article_urls", "lake.article_urls"),
    ("removed_blocks", "src.removed_blocks", "lake.removed_blocks"),
    ("duplicate_links", "src.duplicate_links", "lake.duplicate_links"),
    ("lsh_bands", "src.lsh_bands", "lake.lsh_bands"),
    ("clusters", "src.clusters", "lake.clusters"),
    ("crawl_runs", "src.crawl_runs", "lake.crawl_runs"),
    ("outlet_state", "src.outlet_state", "lake.outlet_state"),
    ("daemon_events", "src.daemon_events", "lake.daemon_events"),
    ("spool_quarantine", "src.spool_quarantine", "lake.spool_quarantine"),
    ("postgres: article keys", "src.articles", f"{PG}.mediawatch.article_keys"),
    ("postgres: URL claims", "src.article_urls", f"{PG}.mediawatch.article_urls"),
    ("postgres: record ids", "src.pages", f"{PG}.mediawatch.page_records"),
    (
        "postgres: article versions",
        "(SELECT id FROM src.articles UNION ALL SELECT article_id FROM src.article_versions)",
        f"{PG}.mediawatch.article_versions",
    ),
    (
        "postgres: band keys",
        f"(SELECT DISTINCT hash & {KEY_MASK}, article_id FROM src.lsh_bands)",
        f"{PG}.mediawatch.lsh_bands",
    ),
    (
        "postgres: cluster heads",
        "src.clusters",
        f"(SELECT DISTINCT cluster_id FROM {PG}.mediawatch.cluster_heads)",
    ),
    *((f"postgres: {t}", f"src.{t}", f"{PG}.mediawatch.{t}") for t in _PG_STATE),
)


@dataclass
class Count:
    table: str
    source: int
    lake: int

    @property
    def ok(self) -> bool:
        return self.source == self.lake


@dataclass
class MigrateResult:
    counts: list[Count] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)  # rows this run added, per lake table

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.counts)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _insert(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _open(source: Path, target: LakeTarget) -> duckdb.DuckDBPyConnection:
    if not source.exists():
        raise ArchiveError(f"{source}: no archive here (--from names the embedded DuckDB file)")
    con = connect_lake_write(target)
    try:
        con.execute(f"ATTACH {_lit(str(source))} AS src (READ_ONLY)")
        con.execute(f"ATTACH {_lit(target.libpq())} AS {PG} (TYPE postgres, SCHEMA 'mediawatch')")
    except duckdb.Error as exc:
        con.close()
        if _is_lock_error(exc):
            raise ArchiveError(
                f"{source}: the archive is held for writing (stop `mediawatch run` first: "
                "a migrate reads an archive at rest)"
            ) from None
        raise ArchiveError(
            f"{source}: cannot read the archive: {str(exc).splitlines()[0]}"
        ) from None
    return con


def _bounds(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, int] | None:
    row = con.execute(sql).fetchone()
    return (int(row[0]), int(row[1])) if row and row[0] is not None else None


def _article_batch(con: duckdb.DuckDBPyConnection, lo: int, hi: int, added: dict[str, int]) -> None:
    """One lake transaction: the articles with ids in [lo, hi] and everything keyed by them."""
    r = f"BETWEEN {lo} AND {hi}"
    con.execute("BEGIN")
    n = {}
    n["article_texts"] = _insert(
        con,
        f"""
        INSERT INTO lake.article_texts (article_id, version, {_ARTICLE_COLS}, fetched_at, first_seen_at, recorded_at)
        SELECT a.id, a.version, {", ".join("a." + c.strip() for c in _ARTICLE_COLS.split(","))},
               coalesce(p.fetched_at, a.last_seen_at), a.first_seen_at, coalesce(p.fetched_at, a.last_seen_at)
        FROM src.articles a LEFT JOIN src.pages p ON p.id = a.page_id
        WHERE a.id {r} AND NOT EXISTS (SELECT 1 FROM lake.article_texts t
                                       WHERE t.article_id {r} AND t.article_id = a.id AND t.version = a.version)
        UNION ALL  -- earlier versions: the file keeps their text, title and hash, not their metadata
        SELECT v.article_id, v.version, a.outlet, a.url, a.canonical_url, NULL, v.title, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, v.text, NULL, NULL, NULL, v.content_hash,
               NULL, NULL, NULL, NULL, NULL, v.page_id, v.fetched_at, a.first_seen_at, v.fetched_at
        FROM src.article_versions v JOIN src.articles a ON a.id = v.article_id
        WHERE v.article_id {r} AND v.version < a.version
          AND NOT EXISTS (SELECT 1 FROM lake.article_texts t
                          WHERE t.article_id {r} AND t.article_id = v.article_id AND t.version = v.version)""",
    )
    n["article_sightings"] = _insert(
        con,
        f"""
        INSERT INTO lake.article_sightings SELECT id, last_seen_at FROM src.articles a WHERE id {r}
        AND NOT EXISTS (SELECT 1 FROM lake.article_sightings s WHERE s.article_id {r} AND s.article_id = a.id
                        AND s.seen_at >= a.last_seen_at)""",
    )
    n["cluster_members"] = _insert(
        con,
        f"""
        INSERT INTO lake.cluster_members SELECT id, cluster_id, last_seen_at FROM src.articles a
        WHERE id {r} AND cluster_id IS NOT NULL AND cluster_id IS DISTINCT FROM
              (SELECT arg_max(m.cluster_id, m.decided_at) FROM lake.cluster_members m
               WHERE m.article_id {r} AND m.article_id = a.id)""",
    )
    n["article_urls"] = _insert(
        con,
        f"""
        INSERT INTO lake.article_urls SELECT url, article_id, kind, first_seen_at FROM src.article_urls u
        WHERE article_id {r} AND NOT EXISTS (SELECT 1 FROM lake.article_urls l
                                             WHERE l.article_id {r} AND l.url = u.url)""",
    )
    for table, cols in _BY_ARTICLE.items():
        n[table] = _insert(
            con,
            f"""
            INSERT INTO lake.{STORED_IN.get(table, table)} ({cols})
            SELECT * FROM (SELECT {cols} FROM src.{table} WHERE article_id {r}
                           EXCEPT ALL SELECT {cols} FROM lake.{table} WHERE article_id {r})""",
        )
    con.execute("COMMIT")
    # The claims: PostgreSQL's own keys reject doubles; a batch killed before this point is
    # claimed by the next run, which finds the lake rows already there.
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.article_keys (canonical_url, article_id, outlet, first_seen_at)
        SELECT canonical_url, id, outlet, first_seen_at FROM src.articles a WHERE id {r}
        AND canonical_url NOT IN (SELECT canonical_url FROM {PG}.mediawatch.article_keys
                                  WHERE article_id {r}) ORDER BY canonical_url""",
    )
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.article_urls (url, article_id, kind, first_seen_at)
        SELECT url, article_id, kind, first_seen_at FROM src.article_urls WHERE article_id {r}
        AND url NOT IN (SELECT url FROM {PG}.mediawatch.article_urls WHERE article_id {r}) ORDER BY url""",
    )
    _dedup_claims(con, r)
    for table, count in n.items():
        added[table] = added.get(table, 0) + count


def _dedup_claims(con: duckdb.DuckDBPyConnection, r: str) -> None:
    """What the lake's writers decide duplicates and versions by, for the batch's articles:
    every version with its hash (a new text is the next version), every text an outlet's
    article has had (exact copies), the band keys (near copies; archive.bandindex.band_key)."""
    versions = f"""SELECT id AS article_id, version, content_hash, outlet FROM src.articles WHERE id {r}
        UNION ALL SELECT v.article_id, v.version, v.content_hash, a.outlet
        FROM src.article_versions v JOIN src.articles a ON a.id = v.article_id WHERE v.article_id {r}"""
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.article_versions (article_id, version, content_hash)
        SELECT article_id, version, content_hash FROM ({versions}) s
        WHERE NOT EXISTS (SELECT 1 FROM {PG}.mediawatch.article_versions d WHERE d.article_id {r}
                          AND d.article_id = s.article_id AND d.version = s.version)
        ORDER BY article_id, version""",
    )
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.content_hashes (outlet, content_hash, article_id)
        SELECT DISTINCT outlet, content_hash, article_id FROM ({versions}) s
        WHERE content_hash IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM {PG}.mediawatch.content_hashes d WHERE d.article_id {r}
            AND d.article_id = s.article_id AND d.outlet = s.outlet AND d.content_hash = s.content_hash)
        ORDER BY 1, 2, 3""",
    )
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.lsh_bands (band_key, article_id)
        SELECT DISTINCT (hash & {KEY_MASK})::BIGINT AS band_key, article_id FROM src.lsh_bands s
        WHERE article_id {r} AND NOT EXISTS (
            SELECT 1 FROM {PG}.mediawatch.lsh_bands d WHERE d.article_id {r}
            AND d.article_id = s.article_id AND d.band_key = (s.hash & {KEY_MASK})::BIGINT)
        ORDER BY 1, 2""",
    )


def _page_batch(con: duckdb.DuckDBPyConnection, lo: int, hi: int, added: dict[str, int]) -> None:
    r = f"BETWEEN {lo} AND {hi}"
    con.execute("BEGIN")
    count = _insert(
        con,
        f"""INSERT INTO lake.pages ({_PAGE_COLS}) SELECT {_PAGE_COLS} FROM src.pages p
        WHERE id {r} AND NOT EXISTS (SELECT 1 FROM lake.pages l WHERE l.id {r} AND l.id = p.id)""",
    )
    con.execute("COMMIT")
    _insert(
        con,
        f"""INSERT INTO {PG}.mediawatch.page_records (record_id, page_id)
        SELECT record_id, id FROM src.pages WHERE id {r}
        AND record_id NOT IN (SELECT record_id FROM {PG}.mediawatch.page_records WHERE page_id {r})
        ORDER BY record_id""",
    )
    added["pages"] = added.get("pages", 0) + count


def _state(con: duckdb.DuckDBPyConnection, added: dict[str, int]) -> None:
    """The small tables, in one lake transaction, compared with what the lake shows now."""
    con.execute("BEGIN")
    logs = {
        "crawl_run_log": f"""INSERT INTO lake.crawl_run_log ({_RUN_COLS}, recorded_at)
            SELECT *, now() FROM (SELECT {_RUN_COLS} FROM src.crawl_runs
                                  EXCEPT ALL SELECT {_RUN_COLS} FROM lake.crawl_runs)""",
        "outlet_state_log": f"""INSERT INTO lake.outlet_state_log ({_STATE_COLS}, recorded_at)
            SELECT *, now() FROM (SELECT {_STATE_COLS} FROM src.outlet_state
                                  EXCEPT ALL SELECT {_STATE_COLS} FROM lake.outlet_state)""",
        "cluster_heads": """INSERT INTO lake.cluster_heads
            SELECT *, now() FROM (SELECT cluster_id, first_article_id, first_published_at, size FROM src.clusters
                                  EXCEPT ALL SELECT cluster_id, first_article_id, first_published_at, size
                                  FROM lake.clusters)""",
        "daemon_events": """INSERT INTO lake.daemon_events SELECT * FROM (
            SELECT event_at, pid, kind, outlet, message FROM src.daemon_events
            EXCEPT ALL SELECT event_at, pid, kind, outlet, message FROM lake.daemon_events)""",
        "spool_quarantine": """INSERT INTO lake.spool_quarantine SELECT * FROM (
            SELECT segment, line, outlet, run_id, record_id, reason, excerpt, quarantined_at FROM src.spool_quarantine
            EXCEPT ALL SELECT segment, line, outlet, run_id, record_id, reason, excerpt, quarantined_at
            FROM lake.spool_quarantine)""",
    }
    for table, sql in logs.items():
        added[table] = added.get(table, 0) + _insert(con, sql)
    con.execute("COMMIT")
    for table, (key, cols) in _PG_STATE.items():
        keys = [k.strip() for k in key.split(",")]
        match = " AND ".join(f"d.{k} = s.{k}" for k in keys)
        _insert(
            con,
            f"""INSERT INTO {PG}.mediawatch.{table} ({cols}) SELECT {cols} FROM src.{table} s
            WHERE NOT EXISTS (SELECT 1 FROM {PG}.mediawatch.{table} d WHERE {match})""",
        )
    _insert(  # each cluster's head as it stands: the next member claims (cluster, size + 1)
        con,
        f"""INSERT INTO {PG}.mediawatch.cluster_heads
            (cluster_id, size, first_article_id, first_published_at, first_seen_at)
        SELECT c.cluster_id, c.size, c.first_article_id, c.first_published_at, a.first_seen_at
        FROM src.clusters c JOIN src.articles a ON a.id = c.first_article_id
        WHERE NOT EXISTS (SELECT 1 FROM {PG}.mediawatch.cluster_heads h
                          WHERE h.cluster_id = c.cluster_id)
        ORDER BY 1""",
    )
    for seq, table in (("article_id_seq", "articles"), ("page_id_seq", "pages")):
        _set_sequence(con, seq, table)


def _set_sequence(con: duckdb.DuckDBPyConnection, seq: str, table: str) -> None:
    """Ids the lake's writers take next start above every migrated id."""
    row = con.execute(f"SELECT max(id) FROM src.{table}").fetchone()
    if row and row[0] is not None:
        con.execute(
            f"CALL postgres_execute('{PG}', $$SELECT setval('mediawatch.{seq}', "
            f"greatest({int(row[0])}, (SELECT last_value FROM mediawatch.{seq})))$$)"
        )


def verify(con: duckdb.DuckDBPyConnection) -> list[Count]:
    counts = []
    for name, src_table, lake_table in CHECKS:
        row = con.execute(
            f"SELECT (SELECT count(*) FROM {src_table}), (SELECT count(*) FROM {lake_table})"
        ).fetchone()
        assert row is not None
        counts.append(Count(name, int(row[0]), int(row[1])))
    return counts


def migrate_archive(
    source: str | os.PathLike[str],
    target: LakeTarget,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int, int], None] | None = None,
) -> MigrateResult:
    """Copy what the lake lacks of the archive at `source`, then count both sides."""
    con = _open(Path(source), target)
    result = MigrateResult()
    try:
        ids = _bounds(
            con,
            """SELECT min(id), max(id) FROM (SELECT id FROM src.articles
            UNION ALL SELECT article_id FROM src.article_versions UNION ALL SELECT article_id FROM src.article_urls
            UNION ALL SELECT article_id FROM src.removed_blocks UNION ALL SELECT article_id FROM src.duplicate_links
            UNION ALL SELECT article_id FROM src.lsh_bands)""",
        )
        for name, bounds, step in (
            ("articles", ids, _article_batch),
            ("pages", _bounds(con, "SELECT min(id), max(id) FROM src.pages"), _page_batch),
        ):
            if bounds is None:
                continue
            lo, hi = bounds
            for start in range(lo, hi + 1, batch):
                step(con, start, min(start + batch - 1, hi), result.added)
                if progress:
                    progress(name, min(start + batch - 1, hi) - lo + 1, hi - lo + 1)
        _state(con, result.added)
        result.counts = verify(con)
    except duckdb.Error as exc:
        raise ArchiveError(
            f"{target.display()}: migrate failed (run it again: it resumes): "
            f"{' '.join(str(exc).split())[:300]}"
        ) from None
    finally:
        con.close()
    return result
