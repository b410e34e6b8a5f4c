"""Crawl runs, the daemon's per-outlet state and its events: every statement the scheduler
and the supervisor need, in the archive layer (the crawler writes no SQL of its own).

A run's status is written by the crawl's own record (ingest), by the supervisor when it
stopped or lost the crawl (`record_abnormal_end`), and by the daemon for runs whose crawl
vanished (`close_orphan_runs`); the precedence between them lives in `record_abnormal_end`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb

from archive.db import ArchiveError

STATE_COLUMNS = (
    "outlet",
    "interval_seconds",
    "consecutive_failures",
    "healthy",
    "health_reason",
    "last_run_id",
    "last_status",
    "last_run_at",
    "last_new_at",
    "delay_seconds",
    "next_run_at",
)


def record_abnormal_end(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    outlets: Iterable[str],
    status: str,
    message: str,
    now: datetime,
) -> None:
    """A crawl that was stopped, timed out, died or failed gets its row, with why. A verdict
    only replaces 'running' or 'ok', 'stopped' by a 'timeout', and 'crashed' (what the ingest of
    a killed crawl's spool says) by the supervisor's 'timeout' or 'stopped'; a crawl that ended
    itself with a reason (memusage_exceeded) keeps its message."""
    for outlet in outlets:
        con.execute(
            """
            INSERT INTO crawl_runs (run_id, outlet, started_at, finished_at, status, message)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (run_id, outlet) DO UPDATE SET
                status = CASE WHEN crawl_runs.status IN ('running', 'ok')
                                OR (crawl_runs.status = 'stopped' AND excluded.status = 'timeout')
                                -- the ingest of a killed crawl's spool says 'crashed'; the
                                -- supervisor that killed it knows why
                                OR (crawl_runs.status = 'crashed' AND excluded.status IN ('timeout', 'stopped'))
                              THEN excluded.status ELSE crawl_runs.status END,
                finished_at = coalesce(crawl_runs.finished_at, excluded.finished_at),
                message = CASE WHEN crawl_runs.status = 'failed' AND excluded.status = 'failed'
                                    AND crawl_runs.message IS NOT NULL
                               THEN crawl_runs.message ELSE excluded.message END
            """,
            [run_id, outlet, now, now, status, message],
        )


def close_orphan_runs(con: duckdb.DuckDBPyConnection, still_running: set[str]) -> None:
    """Runs recorded 'running' whose crawl is gone (not in `still_running`, "run_id.outlet")
    are 'crashed'."""
    for run_id, outlet in con.execute(
        "SELECT run_id, outlet FROM crawl_runs WHERE status = 'running'"
    ).fetchall():
        if f"{run_id}.{outlet}" in still_running:
            continue
        con.execute(
            "UPDATE crawl_runs SET status = 'crashed', finished_at = coalesce(finished_at, now()), "
            "message = coalesce(message, 'crawl ended without recording its end') "
            "WHERE run_id = ? AND outlet = ?",
            [run_id, outlet],
        )


def outlets_last_run_unfinished(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Outlets whose latest run did not end ok (nor is still running)."""
    return [
        str(outlet)
        for outlet, status in con.execute(
            "SELECT outlet, arg_max(status, started_at) FROM crawl_runs GROUP BY outlet"
        ).fetchall()
        if status not in ("ok", "running")
    ]


def forget_validators(con: duckdb.DuckDBPyConnection, outlet: str) -> int:
    """Drop the outlet's feed and sitemap validators (ETag, Last-Modified); returns how many."""
    row = con.execute(
        "UPDATE http_state SET etag = NULL, last_modified = NULL "
        "WHERE outlet = ? AND (etag IS NOT NULL OR last_modified IS NOT NULL)",
        [outlet],
    ).fetchone()
    return int(row[0]) if row and row[0] else 0


def run_figures(con: duckdb.DuckDBPyConnection, run_id: str, outlet: str) -> tuple[Any, ...] | None:
    """(status, requests, articles_new, articles_updated, skipped JSON, errors, message) of a run."""
    row = con.execute(
        "SELECT status, requests, articles_new, articles_updated, skipped, errors, message "
        "FROM crawl_runs WHERE run_id = ? AND outlet = ?",
        [run_id, outlet],
    ).fetchone()
    return tuple(row) if row is not None else None


def run_summaries(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[Any, ...]]:
    """(outlet, status, requests, new, updated, skipped JSON, errors) per outlet of a run."""
    return [
        tuple(r)
        for r in con.execute(
            "SELECT outlet, status, requests, articles_new, articles_updated, skipped, errors "
            "FROM crawl_runs WHERE run_id = ? ORDER BY outlet",
            [run_id],
        ).fetchall()
    ]


def load_outlet_states(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every row of outlet_state, columns as in STATE_COLUMNS."""
    return [
        tuple(r)
        for r in con.execute(f"SELECT {', '.join(STATE_COLUMNS)} FROM outlet_state").fetchall()
    ]


def save_outlet_state(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    *,
    next_run_at: datetime | None,
    interval: float,
    delay: float,
    failures: int,
    healthy: bool,
    reason: str | None,
    last_run_id: str | None,
    last_status: str | None,
    last_run_at: datetime | None,
    last_new_at: datetime | None,
    now: datetime,
) -> None:
    con.execute(
        """
        INSERT INTO outlet_state (outlet, next_run_at, interval_seconds, delay_seconds, consecutive_failures,
                                  healthy, health_reason, last_run_id, last_status, last_run_at, last_new_at,
                                  updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (outlet) DO UPDATE SET next_run_at = excluded.next_run_at,
            interval_seconds = excluded.interval_seconds, delay_seconds = excluded.delay_seconds,
            consecutive_failures = excluded.consecutive_failures, healthy = excluded.healthy,
            health_reason = excluded.health_reason, last_run_id = excluded.last_run_id,
            last_status = excluded.last_status, last_run_at = excluded.last_run_at,
            last_new_at = excluded.last_new_at, updated_at = excluded.updated_at
        """,
        [
            outlet,
            next_run_at,
            interval,
            delay,
            failures,
            healthy,
            reason,
            last_run_id,
            last_status,
            last_run_at,
            last_new_at,
            now,
        ],
    )


def record_events(
    con: duckdb.DuckDBPyConnection,
    events: Iterable[tuple[datetime, str, str | None, str | None]],
    pid: int | None = None,
) -> None:
    """daemon_events rows: (at, kind, outlet, message) each."""
    rows = [[at, pid or os.getpid(), kind, outlet, message] for at, kind, outlet, message in events]
    if rows:
        con.executemany(
            "INSERT INTO daemon_events (event_at, pid, kind, outlet, message) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


class NoStatusView(ArchiveError):
    """The archive has no outlet_status view with these columns: its schema predates them
    (made by an older mediawatch and opened read-only since, so never migrated)."""


def status_rows(con: duckdb.DuckDBPyConnection, columns: Iterable[str]) -> list[tuple[Any, ...]]:
    """The outlet_status view, the columns asked for, by outlet."""
    try:
        return [
            tuple(r)
            for r in con.execute(
                f"SELECT {', '.join(columns)} FROM outlet_status ORDER BY outlet"
            ).fetchall()
        ]
    except (
        duckdb.CatalogException,
        duckdb.BinderException,
    ) as exc:  # no such view, or an older one
        raise NoStatusView(str(exc).splitlines()[0]) from exc
