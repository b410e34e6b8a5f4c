"""The lake's schema, created on first use and versioned: plain PostgreSQL tables for what is
unique or mutable (pg.sql), append-only DuckLake tables for the rest (lake.sql), and the file
backend's user views, taken from archive/views.sql itself so both backends show the same
names and definitions. A PostgreSQL advisory lock makes concurrent first uses create it once."""

from __future__ import annotations

import re
from importlib import resources

import duckdb

from archive.db import ArchiveError
from archive.migrations import views_sql
from archive.target import LakeTarget, pg_session, unreachable

SCHEMA_VERSION = (
    4  # bump with a change to pg.sql / lake.sql; a newer lake is refused, an older one upgraded
)
_LOCK_KEY = (
    0x6D656469_61776174 & 0x7FFFFFFFFFFFFFFF
)  # "mediawat": the advisory lock of schema creation
# The file backend's views users know; articles, article_versions, clusters, crawl_runs and
# outlet_state are defined by lake.sql over the logs.
USER_VIEWS = ("article_latest", "article_history", "articles_per_outlet_day", "syndication",
              "syndication_copies", "removed_promotions", "outlet_pages_24h", "outlet_activity", "outlet_status",
              "quarantine_per_outlet")  # fmt: skip
_VIEW = re.compile(
    r"CREATE (?:OR REPLACE )?VIEW (\w+) AS\b(.*?);\s*(?=\n--|\nCREATE|\Z)", re.DOTALL
)
_RUN_FAILED = re.compile(r"run_failed\(([^()]*)\)")


def _read(name: str) -> str:
    return resources.files("archive.lake").joinpath(name).read_text(encoding="utf-8")


def statements(sql: str) -> list[str]:
    """Split a schema file on ';' at line ends (our files put no ';' inside a statement's lines)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", body + "\n") if s.strip()]


def _inline_run_failed(sql: str) -> str:
    """DuckLake stores no macros: the one definition of a failed run (migration 0010), inlined."""

    def expand(m: re.Match[str]) -> str:
        status, errors, new, updated = (a.strip() for a in m.group(1).split(","))
        return (
            f"({status} IN ('failed', 'crashed', 'timeout') OR ({status} = 'ok' AND coalesce({errors}, 0) > 0 "
            f"AND coalesce({new}, 0) = 0 AND coalesce({updated}, 0) = 0))"
        )

    return _RUN_FAILED.sub(expand, sql)


def user_views() -> list[str]:
    """CREATE OR REPLACE VIEW for each user view, at its definition in archive/views.sql."""
    latest = {m.group(1): m.group(2) for m in _VIEW.finditer(views_sql()[0])}
    missing = [v for v in USER_VIEWS if v not in latest]
    if missing:
        raise RuntimeError(f"archive/views.sql defines no view {missing[0]}")
    return [f"CREATE OR REPLACE VIEW {v} AS{_inline_run_failed(latest[v])}" for v in USER_VIEWS]


def _upgrades(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What a lake of an older version needs before lake.sql runs: version 3 made
    removed_blocks a view over removed_block_log (re-cleans append, archive/lake/reclean.py)."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'removed_blocks'"
    ).fetchone()
    if not row or not row[0]:
        return []
    return [
        "ALTER TABLE removed_blocks RENAME TO removed_block_log",
        "ALTER TABLE removed_block_log ADD COLUMN cleaned_at TIMESTAMPTZ",
    ]


def schema_version(target: LakeTarget) -> int:
    """The lake's schema version, 0 when nobody created a lake in this database."""
    with pg_session(target) as pg:
        row = pg.execute("SELECT to_regclass('mediawatch.schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        row = pg.execute("SELECT max(version) FROM mediawatch.schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def ensure_schema(target: LakeTarget) -> bool:
    """Create or upgrade the lake's tables and views; True when this call did it."""
    import psycopg

    from archive.lake.connect import attach

    try:
        pg = psycopg.connect(target.libpq(), autocommit=True)
    except psycopg.OperationalError as exc:
        raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None
    with pg:
        pg.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            pg.execute(_read("pg.sql"))
            row = pg.execute("SELECT max(version) FROM mediawatch.schema_version").fetchone()
            have = int(row[0]) if row and row[0] is not None else 0
            if have > SCHEMA_VERSION:
                raise ArchiveError(
                    f"{target.display()}: the lake's schema is version {have}, newer than this "
                    f"mediawatch knows ({SCHEMA_VERSION}); upgrade mediawatch"
                )
            if have == SCHEMA_VERSION:
                return False
            con = attach(target, read_only=False)
            try:
                con.execute("BEGIN")
                for stmt in [*_upgrades(con), *statements(_read("lake.sql")), *user_views()]:
                    con.execute(stmt)
                con.execute("COMMIT")
            finally:
                con.close()
            pg.execute(
                "INSERT INTO mediawatch.schema_version (version) VALUES (%s) ON CONFLICT DO NOTHING",
                [SCHEMA_VERSION],
            )
            return True
        finally:
            pg.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
