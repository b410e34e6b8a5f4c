"""The lake's schema: created on first use, once even when two writers start together,
versioned, with the views users know answering on an empty lake."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from archive.db import ArchiveError
from archive.lake.connect import connect_lake_read, connect_lake_write
from archive.lake.schema import SCHEMA_VERSION, USER_VIEWS, ensure_schema
from archive.target import LakeTarget, parse_target
from tests import pg


def lake(server: pg.Server, dbname: str, data: Path) -> LakeTarget:
    target = parse_target(server.url(dbname, data))
    assert isinstance(target, LakeTarget)
    return target


SNAPSHOTS = "SELECT count(*) FROM public.ducklake_snapshot"


def test_created_once_by_concurrent_first_users_then_left_alone(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = lake(pg_server, pg_database, tmp_path / "data")
    with ThreadPoolExecutor(3) as pool:
        created = list(pool.map(lambda _: ensure_schema(target), range(3)))
    assert sorted(created) == [False, False, True]
    assert ensure_schema(target) is False
    with psycopg.connect(pg_server.conninfo(pg_database)) as con:
        assert con.execute("SELECT version FROM mediawatch.schema_version").fetchall() == [
            (SCHEMA_VERSION,)
        ]
    snapshots = pg_server.value(pg_database, SNAPSHOTS)
    ensure_schema(target)
    assert pg_server.value(pg_database, SNAPSHOTS) == snapshots, "a later first use writes nothing"


def test_every_view_users_know_answers_on_an_empty_lake(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = lake(pg_server, pg_database, tmp_path / "data")
    connect_lake_write(target).close()
    con = connect_lake_read(target)
    try:
        for view in (
            *USER_VIEWS,
            "articles",
            "article_versions",
            "clusters",
            "crawl_runs",
            "outlet_state",
            "pages",
            "removed_blocks",
            "duplicate_links",
        ):
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view
    finally:
        con.close()


def test_a_lake_newer_than_this_mediawatch_is_refused(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = lake(pg_server, pg_database, tmp_path / "data")
    ensure_schema(target)
    with psycopg.connect(pg_server.conninfo(pg_database), autocommit=True) as con:
        con.execute(
            "INSERT INTO mediawatch.schema_version (version) VALUES (%s)", [SCHEMA_VERSION + 1]
        )
    with pytest.raises(ArchiveError, match=f"version {SCHEMA_VERSION + 1}, newer"):
        ensure_schema(target)


def test_a_reader_does_not_create_a_lake(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    with pytest.raises(ArchiveError, match="no archive in this lake yet"):
        connect_lake_read(lake(pg_server, pg_database, tmp_path / "data"))
