"""Fixtures of the lake tests: a real PostgreSQL (tests/pg.py) and a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.target import LakeTarget, parse_target
from tests import pg


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    try:
        server = pg.server()
    except pg.NoPostgres as exc:
        pytest.fail(str(exc), pytrace=False)  # never a skip: CI must see it
    yield server
    server.stop()


@pytest.fixture
def pg_database(pg_server: pg.Server) -> Iterator[str]:
    """A uniquely named, empty database, dropped after the test."""
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def lake(pg_server: pg.Server, pg_database: str, tmp_path: Path) -> tuple[str, LakeTarget]:
    """A lake in its own database, data under tmp_path/lake: its URL and its target."""
    url = pg_server.url(pg_database, tmp_path / "lake")
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    return url, target
