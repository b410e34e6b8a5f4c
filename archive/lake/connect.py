"""DuckDB connections to a lake: the extensions loaded offline, the lake ATTACHed as `lake`
and made the default catalog, so the file backend's SQL (`FROM articles`) runs unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from archive.db import ArchiveError
from archive.lake.extensions import load_lake_extensions
from archive.lake.s3 import configure_s3
from archive.target import LakeTarget, check_reachable

ALIAS = "lake"
_METADATA = f"__ducklake_metadata_{ALIAS}"  # DuckLake's name for the attached catalog database
# Mutable state kept in PostgreSQL only (no log in the lake), shown to readers under the file
# backend's table names so the same SQL answers on both.
STATE_TABLES = ("http_state", "paragraph_stats", "boilerplate_due")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_sql(
    target: LakeTarget, *, read_only: bool, alias: str = ALIAS, application_name: str | None = None
) -> str:
    """The ATTACH statement (also what a notebook runs, see the README)."""
    options = [f"DATA_PATH {_literal(target.data)}"]
    if read_only:
        options.append("READ_ONLY")
    libpq = target.libpq(read_only=read_only, application_name=application_name)
    return f"ATTACH {_literal('ducklake:postgres:' + libpq)} AS {alias} ({', '.join(options)})"


def attach(
    target: LakeTarget, *, read_only: bool, application_name: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached and in use; ArchiveError in one line.
    `application_name` names the catalog's PostgreSQL sessions (a writer's liveness)."""
    check_reachable(target)  # a bounded connect first: the extension's errors are long
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a long batch must not draw bars on stderr
        load_lake_extensions(con)
        configure_s3(con, target)
        con.execute(attach_sql(target, read_only=read_only, application_name=application_name))
        con.execute(f"USE {ALIAS}")
    except (duckdb.Error, ArchiveError) as exc:
        con.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchiveError(f"{target.display()}: cannot open the lake: {first}") from None
    return con


@contextlib.contextmanager
def lost_lake(name: str, on_loss: Callable[[], None]) -> Iterator[None]:
    """A connection lost under the block (PostgreSQL's, or the lake's) as one ArchiveError
    line, after `on_loss` closed what it broke (the next use opens it again)."""
    import psycopg

    try:
        yield
    except (psycopg.OperationalError, duckdb.IOException, duckdb.ConnectionException) as exc:
        on_loss()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchiveError(f"{name}: lost the lake ({first})") from exc


def connect_lake_write(target: LakeTarget) -> duckdb.DuckDBPyConnection:
    """A read-write connection, the schema created or upgraded first."""
    from archive.lake.schema import ensure_schema

    ensure_schema(target)
    return attach(target, read_only=False)


def connect_lake_read(target: LakeTarget) -> duckdb.DuckDBPyConnection:
    """A read-only connection; a lake nobody created yet is said so, not created by a reader."""
    from archive.lake.schema import SCHEMA_VERSION, schema_version

    have = schema_version(target)
    if have == 0:
        raise ArchiveError(
            f"{target.display()}: no archive in this lake yet (run `mediawatch migrate` "
            "or a crawl with --db pointing at it first)"
        )
    if have > SCHEMA_VERSION:
        raise ArchiveError(
            f"{target.display()}: the lake's schema is version {have}, newer than this "
            f"mediawatch knows ({SCHEMA_VERSION}); upgrade mediawatch"
        )
    return attach(target, read_only=True)


def open_lake_reader(db: str) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """`archive.query.open_archive` on a lake URL: the read-only connection and where its
    sandbox must still let DuckDB read (the lake's Parquet files: a directory or s3:// prefix)."""
    from archive.target import parse_target

    target = parse_target(db)
    if not isinstance(target, LakeTarget):
        raise ArchiveError(f"{db}: not a lake URL")
    con = connect_lake_read(target)
    try:
        for table in STATE_TABLES:  # read through the catalog's own PostgreSQL connection
            con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {_METADATA}.mediawatch.{table}")
    except duckdb.Error as exc:
        con.close()
        raise ArchiveError(f"{target.display()}: cannot read {table}: {exc}") from None
    return con, [target.data]  # a directory, or an s3:// prefix


def check_output_outside(db: str, output: Path) -> None:
    """A reader's output file never goes among the lake's data files."""
    from archive.outputs import OutputError
    from archive.target import parse_target

    target = parse_target(db)
    if isinstance(target, LakeTarget) and not target.data.startswith("s3://"):
        data = Path(target.data).resolve()
        if output == data or data in output.parents:
            raise OutputError(
                f"{output}: is inside the lake's data directory {data}; choose another output"
            )
