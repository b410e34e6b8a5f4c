"""What a lake occupies, for the lake benches: PostgreSQL bytes by kind (the search index,
our claims and state tables, DuckLake's catalog) and Parquet bytes by lake table."""

from __future__ import annotations

from pathlib import Path

from tests import pg

MB = 1024 * 1024


def pg_bytes(server: pg.Server, dbname: str) -> dict[str, int]:
    """Bytes (tables, TOAST and indexes) of: the search index, the other mediawatch tables
    (URL claims, versions, hashes, runs, state), and the DuckLake catalog (public.ducklake_*)."""
    sql = """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND {}"""
    return {
        "search index": int(
            server.value(
                dbname, sql.format("n.nspname = 'mediawatch' AND c.relname = 'search_index'")
            )
        ),
        "claims and state": int(
            server.value(
                dbname, sql.format("n.nspname = 'mediawatch' AND c.relname <> 'search_index'")
            )
        ),
        "catalog": int(
            server.value(dbname, sql.format("n.nspname = 'public' AND c.relname LIKE 'ducklake%'"))
        ),
    }


def snapshots(server: pg.Server, dbname: str) -> int:
    """Catalog commits so far: each lake transaction that changed something is a snapshot."""
    return int(server.value(dbname, "SELECT count(*) FROM public.ducklake_snapshot"))


def parquet_bytes(data: Path) -> dict[str, int]:
    """Bytes of the data files under each lake table's directory (DATA_PATH/main/TABLE/)."""
    out: dict[str, int] = {}
    for f in data.rglob("*"):
        if f.is_file():
            table = f.relative_to(data).parts[1] if len(f.relative_to(data).parts) > 2 else "?"
            out[table] = out.get(table, 0) + f.stat().st_size
    return dict(sorted(out.items()))


def shown(sizes: dict[str, int], per: int = 0) -> str:
    """`name 12.3 MB` items; with `per`, bytes per article beside each."""
    return ", ".join(
        f"{k} {v / MB:,.1f} MB" + (f" ({v / per:,.0f} B/article)" if per else "")
        for k, v in sizes.items()
        if v
    )
