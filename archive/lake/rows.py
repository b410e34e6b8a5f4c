"""Appending rows to the lake's tables: one INSERT per table and batch, one list parameter per
column (`unnest($1::T[])`), since a DuckLake statement costs a few ms whatever its rows and
the catalog serialises commits. The column types are those of lake.sql. Writers name
removed_blocks, which on a lake is a view over the log it is appended to (STORED_IN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "pages": (
        ("id", "BIGINT"), ("record_id", "VARCHAR"), ("run_id", "VARCHAR"), ("outlet", "VARCHAR"),
        ("url", "VARCHAR"), ("final_url", "VARCHAR"), ("status", "INTEGER"),
        ("content_type", "VARCHAR"), ("fetched_at", "TIMESTAMPTZ"), ("size_bytes", "BIGINT"),
        ("html_gz", "BLOB"), ("article_id", "BIGINT"), ("skip_reason", "VARCHAR"),
        ("detail", "VARCHAR"),
    ),
    "article_texts": (
        ("article_id", "BIGINT"), ("version", "INTEGER"), ("outlet", "VARCHAR"), ("url", "VARCHAR"),
        ("canonical_url", "VARCHAR"), ("title", "VARCHAR"), ("authors", "VARCHAR[]"),
        ("published_at", "TIMESTAMPTZ"), ("modified_at", "TIMESTAMPTZ"),
        ("date_source", "VARCHAR"), ("language", "VARCHAR"), ("section", "VARCHAR"),
        ("tags", "VARCHAR[]"), ("description", "VARCHAR"), ("summary", "VARCHAR"),
        ("image_url", "VARCHAR"), ("site_name", "VARCHAR"), ("text", "VARCHAR"),
        ("word_count", "INTEGER"), ("paywalled", "BOOLEAN"), ("page_canonical_url", "VARCHAR"),
        ("promo_flagged", "BOOLEAN"), ("content_hash", "VARCHAR"), ("feed_title", "VARCHAR"),
        ("feed_published_at", "TIMESTAMPTZ"), ("discovered_via", "VARCHAR"),
        ("cross_site_canonical", "VARCHAR"), ("extractor_version", "VARCHAR"),
        ("page_id", "BIGINT"), ("fetched_at", "TIMESTAMPTZ"), ("first_seen_at", "TIMESTAMPTZ"),
        ("recorded_at", "TIMESTAMPTZ"),
    ),
    "article_sightings": (("article_id", "BIGINT"), ("seen_at", "TIMESTAMPTZ")),
    "article_urls": (
        ("url", "VARCHAR"), ("article_id", "BIGINT"), ("kind", "VARCHAR"),
        ("first_seen_at", "TIMESTAMPTZ"),
    ),
    "removed_block_log": (
        ("article_id", "BIGINT"), ("version", "INTEGER"), ("position", "INTEGER"),
        ("kind", "VARCHAR"), ("rule", "VARCHAR"), ("text", "VARCHAR"), ("cleaned_at", "TIMESTAMPTZ"),
    ),
    "recleans": (
        ("article_id", "BIGINT"), ("version", "INTEGER"), ("batch", "VARCHAR"),
        ("content_hash", "VARCHAR"), ("extractor_version", "VARCHAR"),
        ("recleaned_at", "TIMESTAMPTZ"),
    ),
    "duplicate_links": (
        ("article_id", "BIGINT"), ("matched_article_id", "BIGINT"), ("level", "VARCHAR"),
        ("score", "DOUBLE"), ("reason", "VARCHAR"), ("decided_at", "TIMESTAMPTZ"),
    ),
    "cluster_members": (
        ("article_id", "BIGINT"), ("cluster_id", "BIGINT"), ("decided_at", "TIMESTAMPTZ"),
    ),
    "cluster_heads": (
        ("cluster_id", "BIGINT"), ("first_article_id", "BIGINT"),
        ("first_published_at", "TIMESTAMPTZ"), ("size", "INTEGER"), ("decided_at", "TIMESTAMPTZ"),
    ),
    "crawl_run_log": (
        ("run_id", "VARCHAR"), ("outlet", "VARCHAR"), ("started_at", "TIMESTAMPTZ"),
        ("finished_at", "TIMESTAMPTZ"), ("status", "VARCHAR"), ("requests", "INTEGER"),
        ("responses", "JSON"), ("articles_new", "INTEGER"), ("articles_updated", "INTEGER"),
        ("skipped", "JSON"), ("errors", "INTEGER"), ("message", "VARCHAR"),
        ("failure", "VARCHAR"), ("recorded_at", "TIMESTAMPTZ"),
    ),
    "spool_quarantine": (
        ("segment", "VARCHAR"), ("line", "INTEGER"), ("outlet", "VARCHAR"), ("run_id", "VARCHAR"),
        ("record_id", "VARCHAR"), ("reason", "VARCHAR"), ("excerpt", "VARCHAR"),
        ("quarantined_at", "TIMESTAMPTZ"),
    ),
    "daemon_events": (
        ("event_at", "TIMESTAMPTZ"), ("pid", "INTEGER"), ("kind", "VARCHAR"),
        ("outlet", "VARCHAR"), ("message", "VARCHAR"),
    ),
    "outlet_state_log": (
        ("outlet", "VARCHAR"), ("next_run_at", "TIMESTAMPTZ"), ("interval_seconds", "DOUBLE"),
        ("delay_seconds", "DOUBLE"), ("consecutive_failures", "INTEGER"), ("healthy", "BOOLEAN"),
        ("health_reason", "VARCHAR"), ("last_run_id", "VARCHAR"), ("last_status", "VARCHAR"),
        ("last_run_at", "TIMESTAMPTZ"), ("last_new_at", "TIMESTAMPTZ"),
        ("updated_at", "TIMESTAMPTZ"), ("recorded_at", "TIMESTAMPTZ"),
    ),
    "ingest_batches": (
        ("batch", "VARCHAR"), ("owner", "VARCHAR"), ("records", "INTEGER"), ("counts", "JSON"),
        ("committed_at", "TIMESTAMPTZ"),
    ),
}  # fmt: skip
STORED_IN = {"removed_blocks": "removed_block_log"}  # a view's name -> the log under it


def _column(n: int, kind: str) -> str:
    if kind == "JSON":  # bound as text, parsed by the lake
        return f"unnest(${n}::VARCHAR[])::JSON"
    return f"unnest(${n}::{kind}[])"


def append(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> int:
    """Append rows (column -> value; a column left out is NULL) to a lake table in one
    statement; the caller's transaction decides when they become visible."""
    if not rows:
        return 0
    table = STORED_IN.get(table, table)
    columns = TABLES[table]
    names = {c for c, _ in columns}
    for row in rows:
        unknown = row.keys() - names
        if unknown:
            raise KeyError(f"{table} has no column {sorted(unknown)[0]}")
    values = ", ".join(_column(i + 1, kind) for i, (_, kind) in enumerate(columns))
    con.execute(
        f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) SELECT {values}",
        [[row.get(c) for row in rows] for c, _ in columns],
    )
    return len(rows)
