"""Named migrations, read from the one schema file (archive/schema.sql)."""

from __future__ import annotations

import re
from importlib import resources

import duckdb

from archive.tx import transaction

_MARKER = re.compile(r"^-- migration: (\S+)\s*$", re.MULTILINE)


def load_migrations() -> list[tuple[str, str]]:
    """Return (name, sql) for every section of schema.sql, in file order."""
    text = resources.files("archive").joinpath("schema.sql").read_text(encoding="utf-8")
    parts = _MARKER.split(text)
    # parts = [preamble, name1, sql1, name2, sql2, ...]
    migrations = [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise RuntimeError(f"archive/schema.sql: duplicate migration names in {names}")
    return migrations


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    return [row[0] for row in con.execute("SELECT name FROM schema_migrations").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply missing migrations, each in its own transaction; return the names applied."""
    done = set(applied_migrations(con))
    applied = []
    for name, sql in load_migrations():
        if name in done:
            continue
        if "stem(" in sql:  # a macro over the fts extension's stem(): bound at creation, so load it
            from archive.search import load_fts

            load_fts(con)
        with transaction(con):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
        applied.append(name)
    return applied
