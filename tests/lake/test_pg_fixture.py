"""The PostgreSQL fixture itself: a database per test, and a throwaway cluster when no server runs."""

from __future__ import annotations

import psycopg
import pytest

from tests import pg


def test_each_test_gets_its_own_empty_database(pg_server: pg.Server, pg_database: str) -> None:
    with psycopg.connect(pg_server.conninfo(pg_database)) as con:
        tables = con.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        assert tables == (0,)
    with psycopg.connect(pg_server.conninfo()) as con:
        assert con.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [pg_database]
        ).fetchone() == (1,)


def test_a_throwaway_cluster_starts_from_the_installed_binaries_and_goes_away() -> None:
    bindir = pg.find_bindir()
    if bindir is None:
        pytest.fail(pg.INSTALL_HINT, pytrace=False)
    server = pg.start_cluster(bindir)
    try:
        assert server.port != pg.DEFAULT_PORT
        name = server.create_database()
        with psycopg.connect(server.conninfo(name)) as con:
            assert con.execute("SELECT current_user").fetchone() == ("postgres",)
        server.drop_database(name)
    finally:
        server.stop()
    assert not pg.answers(server.host, server.port), "the throwaway cluster is stopped"
    assert server.datadir is not None and not server.datadir.exists(), "and its directory removed"


def test_no_server_and_no_binaries_is_one_line_saying_what_to_install(tmp_path) -> None:
    nothing_here = pg._free_port()  # a port no server listens on
    with pytest.raises(pg.NoPostgres) as caught:
        pg.server(port=nothing_here, binaries=str(tmp_path / "*/bin/initdb"))
    assert "\n" not in str(caught.value) and "apt-get install postgresql" in str(caught.value)
