"""The lake's extensions load from the pinned wheels, with installing from the network off."""

from __future__ import annotations

import duckdb

from archive.lake.extensions import extension_path, load_lake_extensions


def test_ducklake_and_postgres_load_offline_from_the_wheels() -> None:
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        load_lake_extensions(con)
        loaded = dict(
            con.execute(
                "SELECT extension_name, loaded FROM duckdb_extensions() "
                "WHERE extension_name IN ('ducklake', 'postgres_scanner')"
            ).fetchall()
        )
        assert loaded == {"ducklake": True, "postgres_scanner": True}
        assert "site-packages" in str(extension_path("ducklake"))
    finally:
        con.close()
