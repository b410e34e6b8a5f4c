"""Named migrations, read from the one schema file (archive/schema.sql), then the views and
macros (archive/views.sql), re-created whenever their text changes."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import duckdb

from archive.tx import transaction

_MARKER = re.compile(r"^-- migration: (\S+)\s*$", re.MULTILINE)


def _read(name: str) -> str:
    return resources.files("archive").joinpath(name).read_text(encoding="utf-8")


def load_migrations() -> list[tuple[str, str]]:
    """Return (name, sql) for every section of schema.sql, in file order."""
    parts = _MARKER.split(_read("schema.sql"))
    # parts = [preamble, name1, sql1, name2, sql2, ...]
    migrations = [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise RuntimeError(f"archive/schema.sql: duplicate migration names in {names}")
    return migrations


@cache
def views_sql() -> tuple[str, str]:
    """(sql, digest) of archive/views.sql: read once a process, as each open checks it."""
    import hashlib  # writers only: a reader's start does not pay for it

    sql = _read("views.sql")
    return sql, hashlib.sha256(sql.encode()).hexdigest()


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    return [row[0] for row in con.execute("SELECT name FROM schema_migrations").fetchall()]


def _has_statements(sql: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("--") for line in sql.splitlines())


def _load_fts_if_needed(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if "stem(" in sql:  # a macro over the fts extension's stem(): bound at creation, so load it
        from archive.search import load_fts

        load_fts(con)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply missing migrations, each in its own transaction, then the views if they changed;
    return the names of the migrations applied."""
    done = set(applied_migrations(con))
    applied = []
    for name, sql in load_migrations():
        if name in done:
            continue
        _load_fts_if_needed(con, sql)
        with transaction(con):
            if _has_statements(sql):  # a section whose statements moved to views.sql
                con.execute(sql)
            con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        applied.append(name)
    _refresh_views(con)
    return applied


def _refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """Re-create every view and macro when views.sql differs from what the archive holds."""
    sql, digest = views_sql()
    con.execute("CREATE TABLE IF NOT EXISTS schema_views (digest VARCHAR NOT NULL)")
    row = con.execute("SELECT digest FROM schema_views").fetchone()
    if row and row[0] == digest:
        return
    _load_fts_if_needed(con, sql)
    with transaction(con):
        con.execute(sql)
        con.execute("DELETE FROM schema_views")
        con.execute("INSERT INTO schema_views VALUES (?)", [digest])
