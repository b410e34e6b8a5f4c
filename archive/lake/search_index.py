"""The lake's search index, written: one row per article in `mediawatch.search_index`
(PostgreSQL; the fts extension cannot index DuckLake tables), its title and text as a tsvector
in the configuration of its language (Snowball stemmers, as the file backend's), a GIN index
over them. Writers upsert the current version of what they commit (an older version never
replaces a newer one); `reindex` rebuilds it from the lake.

Accents are folded as in the file backend ("elections" finds "élections") by copies of the
configurations with the `unaccent` dictionary first (schema mediawatch); where the server
lacks that extension (postgresql-contrib), the plain configurations are used and accents
count.

The row also holds what a hit shows (url, title, the text for its snippet), so a search is
answered by PostgreSQL alone (archive/lake/search.py): reading 20 hits back from Parquet cost a
DuckLake ATTACH and the whole text column of every row group holding one (9-13 s at 200,000
articles, growing with the text bytes). Rows indexed before those columns existed lack them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from archive.search import STEMMERS
from archive.target import LakeTarget

logger = logging.getLogger(__name__)

UNACCENTED = "mediawatch."  # the schema of the accent-folding copies of the configurations
_LOCK_KEY = 0x6D775F7365617263  # "mw_searc": creation of the index and its configurations
# The text search configurations PostgreSQL 15 ships (SELECT cfgname FROM pg_ts_config).
PG_CONFIGS = frozenset((
    "simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish",
    "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian",
    "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian", "serbian",
    "spanish", "swedish", "tamil", "turkish", "yiddish",
))  # fmt: skip


@dataclass(frozen=True)
class IndexRow:
    """What the index needs of one article's current version."""

    id: int
    version: int
    outlet: str
    language: str | None
    published_at: datetime | None
    title: str | None
    text: str | None
    url: str | None


DDL = """
CREATE SCHEMA IF NOT EXISTS mediawatch;
CREATE TABLE IF NOT EXISTS mediawatch.search_index (
    article_id BIGINT PRIMARY KEY,
    version INTEGER NOT NULL,
    outlet TEXT NOT NULL,
    language TEXT,
    published_at TIMESTAMPTZ,
    config REGCONFIG NOT NULL,
    doc TSVECTOR NOT NULL,
    url TEXT,
    title TEXT,
    body TEXT
);
CREATE INDEX IF NOT EXISTS search_index_doc ON mediawatch.search_index USING gin (doc);
CREATE INDEX IF NOT EXISTS search_index_recent
    ON mediawatch.search_index (published_at DESC NULLS LAST);
-- The configurations the index holds articles in, which every query is built for: counted
-- with DISTINCT over the index it cost 0.4 s a search at 1M articles.
CREATE TABLE IF NOT EXISTS mediawatch.search_configs (config REGCONFIG PRIMARY KEY);
"""
# Added where it is missing (the configurations of a lake indexed by an older mediawatch);
# under the DDL's lock, so once.
_FILL_CONFIGS = """
INSERT INTO mediawatch.search_configs SELECT DISTINCT config FROM mediawatch.search_index
WHERE NOT EXISTS (SELECT 1 FROM mediawatch.search_configs) ON CONFLICT DO NOTHING
"""
# A batch's configurations, inserted only when new: a known one is not written again, so
# writers never wait on each other's row.
_ADD_CONFIGS = """
INSERT INTO mediawatch.search_configs
SELECT c FROM unnest(%s::regconfig[]) AS c
WHERE NOT EXISTS (SELECT 1 FROM mediawatch.search_configs s WHERE s.config = c)
ON CONFLICT DO NOTHING
"""
# An index made before the hits' fields were kept in it (read from the lake until a reindex).
_DISPLAY_COLUMNS = ("url", "title", "body")
_UPSERT = """
INSERT INTO mediawatch.search_index
    (article_id, version, outlet, language, published_at, config, doc, url, title, body)
VALUES (%(id)s, %(version)s, %(outlet)s, %(language)s, %(published_at)s, %(config)s::regconfig,
        setweight(to_tsvector(%(config)s::regconfig, %(title)s), 'A')
        || to_tsvector(%(config)s::regconfig, %(text)s), %(url)s, %(shown_title)s, %(text)s)
ON CONFLICT (article_id) DO UPDATE SET
    version = EXCLUDED.version, outlet = EXCLUDED.outlet, language = EXCLUDED.language,
    published_at = EXCLUDED.published_at, config = EXCLUDED.config, doc = EXCLUDED.doc,
    url = EXCLUDED.url, title = EXCLUDED.title, body = EXCLUDED.body
WHERE mediawatch.search_index.version <= EXCLUDED.version
"""


def config_for(language: str | None, prefix: str = "") -> str:
    """The text search configuration of an article's language ('simple': no stemming)."""
    name = STEMMERS.get((language or "").lower(), "simple")
    return prefix + (name if name in PG_CONFIGS else "simple")


def known_config(config: str) -> bool:
    """A configuration name safe to write into SQL: one of ours."""
    return config.removeprefix(UNACCENTED) in PG_CONFIGS


def _unaccented_configs(pg: Any) -> None:
    pg.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    have = {
        str(r[0])
        for r in pg.execute(
            "SELECT cfgname FROM pg_ts_config WHERE cfgnamespace = 'mediawatch'::regnamespace"
        )
    }
    for name in sorted(PG_CONFIGS - have):
        dictionary = "simple" if name == "simple" else f"{name}_stem"
        pg.execute(f"CREATE TEXT SEARCH CONFIGURATION mediawatch.{name} (COPY = pg_catalog.{name})")
        pg.execute(
            f"ALTER TEXT SEARCH CONFIGURATION mediawatch.{name} "
            f"ALTER MAPPING FOR hword, hword_part, word WITH unaccent, {dictionary}"
        )


def _add_display_columns(pg: Any) -> None:
    """Columns an older index lacks, added once: ALTER takes the table's exclusive lock even
    when there is nothing to add, and every writer comes here when it opens."""
    rows = pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'mediawatch' "
        "AND table_name = 'search_index'"
    ).fetchall()
    missing = [c for c in _DISPLAY_COLUMNS if c not in {str(r[0]) for r in rows}]
    if missing:
        pg.execute(
            "ALTER TABLE mediawatch.search_index "
            + ", ".join(f"ADD COLUMN IF NOT EXISTS {c} TEXT" for c in missing)
        )


def ensure_index(pg: Any) -> str:
    """Create the index (once, under a lock held to the end of this transaction); the prefix
    of the configurations to write with: UNACCENTED, or "" where `unaccent` cannot be
    created (said in the log)."""
    import psycopg

    with pg.transaction():
        pg.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        pg.execute(DDL)
        _add_display_columns(pg)
        pg.execute(_FILL_CONFIGS)
        try:
            with pg.transaction():  # a savepoint: a refusal leaves the table created
                _unaccented_configs(pg)
        except psycopg.Error as exc:
            logger.warning("lake search: accents count (no unaccent dictionary: %s)", exc)
            return ""
    return UNACCENTED


def rows_of(texts: Iterable[dict[str, Any]]) -> list[IndexRow]:
    """Index rows of the lake writer's article_texts rows (archive/lake/decide.py)."""
    return [
        IndexRow(t["article_id"], t["version"], t["outlet"], t.get("language"),
                 t.get("published_at"), t.get("title"), t.get("text"), t.get("url"))
        for t in texts
    ]  # fmt: skip


def index_from_lake(pg: Any, lake: Any, ids: Sequence[int], prefix: str) -> int:
    """Index the current version of these articles as the lake holds them (a batch a dead
    writer committed: its texts are in the lake, not in memory)."""
    if not ids:
        return 0
    rows = lake.execute(
        "SELECT id, version, outlet, language, published_at, title, text, url FROM articles "
        "WHERE id IN (SELECT unnest($ids))",
        {"ids": list(ids)},
    ).fetchall()
    return index_articles(pg, (IndexRow(*r) for r in rows), prefix)


def index_articles(pg: Any, rows: Iterable[IndexRow], prefix: str = UNACCENTED) -> int:
    """Upsert the rows (psycopg connection `pg`, in its transaction) with the configurations
    ensure_index gave; an older version never replaces a newer one, so a replayed batch
    changes nothing."""
    params = [
        {
            "id": r.id,
            "version": r.version,
            "outlet": r.outlet,
            "language": r.language,
            "published_at": r.published_at,
            "config": config_for(r.language, prefix),
            "title": r.title or "",
            "text": r.text or "",
            "url": r.url,
            "shown_title": r.title,
        }
        for r in rows
    ]
    if params:
        with pg.cursor() as cur:
            cur.executemany(_UPSERT, params)
            cur.execute(_ADD_CONFIGS, [sorted({str(p["config"]) for p in params})])
    return len(params)


def reindex(target: LakeTarget, *, batch: int = 2000) -> int:
    """(Re)build the index from the lake's articles: after `mediawatch migrate`, or to repair."""
    import psycopg

    from archive.lake.connect import connect_lake_read

    con = connect_lake_read(target)
    done = 0
    try:
        with psycopg.connect(target.libpq()) as pg:
            prefix = ensure_index(pg)
            pg.commit()
            cursor = con.execute(
                "SELECT id, version, outlet, language, published_at, title, text, url "
                "FROM articles ORDER BY id"
            )
            while chunk := cursor.fetchmany(batch):
                done += index_articles(pg, (IndexRow(*r) for r in chunk), prefix)
                pg.commit()
    finally:
        con.close()
    return done
