"""The ducklake and postgres_scanner extensions, loaded from their pinned wheels the way
archive/search.py loads fts: INSTALL needs the internet, which this machine and CI lack."""

from __future__ import annotations

import weakref
from pathlib import Path

import duckdb

_WHEELS = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",  # only for a lake on S3 (archive/lake/s3.py)
}
_LOADED: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


def extension_path(name: str) -> Path:
    """The binary a pinned wheel ships for this duckdb version."""
    import importlib

    module = importlib.import_module(_WHEELS[name])
    path = (
        Path(module.__file__ or "").parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{name}.duckdb_extension"
    )
    if not path.exists():
        raise RuntimeError(
            f"{path}: {name} extension missing; {_WHEELS[name].replace('_', '-')} must match "
            f"duckdb=={duckdb.__version__}"
        )
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute("LOAD '" + str(extension_path(name)).replace("'", "''") + "'")


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD postgres_scanner then ducklake, once per connection."""
    if con in _LOADED:
        return
    for name in ("postgres_scanner", "ducklake"):
        load_extension(con, name)
    _LOADED.add(con)
