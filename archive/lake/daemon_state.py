"""archive/runs.py on a lake: the same functions, the same arguments, `con` a LakeWriter.
Mutable rows live in PostgreSQL; each change is also appended to the lake's log tables
(crawl_run_log, outlet_state_log, daemon_events), which the lake's views read. The verdict
rule of a run's abnormal end is archive/runs.py's, written here as Python."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from archive.lake import runs as lake_runs
from archive.lake.ingest import LakeWriter
from archive.lake.rows import append
from archive.runs import STATE_COLUMNS, NoStatusView

if TYPE_CHECKING:
    import duckdb

__all__ = ["NoStatusView"]


def change_runs(con: LakeWriter, rows: list[dict[str, Any]]) -> None:
    """New states of runs: PostgreSQL first (what the daemons read), then the lake's log."""
    if not rows:
        return
    with con.pg.transaction():
        lake_runs.apply_post(con.pg, {"runs": rows})
    now = datetime.now(UTC)
    _append(con.lake, "crawl_run_log", [lake_runs.log_row(r, now) for r in rows])


def _append(lake: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    lake.execute("BEGIN")
    append(lake, table, rows)
    lake.execute("COMMIT")


def verdict(old: str, old_message: str | None, new: str, message: str) -> tuple[str, str | None]:
    """(status, message) after the supervisor's verdict `new` on a run recorded `old`."""
    replaces = (
        old in ("running", "ok")
        or (old == "stopped" and new == "timeout")
        or (old == "crashed" and new in ("timeout", "stopped"))
    )
    keep_message = old == "failed" and new == "failed" and old_message is not None
    return (new if replaces else old), (old_message if keep_message else message)


def record_abnormal_end(
    con: LakeWriter, run_id: str, outlets: Iterable[str], status: str, message: str, now: datetime
) -> None:
    outlets = list(outlets)
    keys = [(run_id, o) for o in outlets]
    rows, stale = lake_runs.load(con.pg, keys), lake_runs.stale(con.pg, keys)
    changed = []
    for outlet in outlets:
        row = rows.get((run_id, outlet)) or lake_runs.new_row(run_id, outlet, now, con.home)
        row["status"], row["message"] = verdict(row["status"], row["message"], status, message)
        if (run_id, outlet) in stale and row["status"] != lake_runs.FENCED:
            row["status"] = lake_runs.FENCED  # stopped because another daemon took it over
            row["message"] = f"lease taken over by another daemon; {message}"
        row["finished_at"] = row["finished_at"] or now
        changed.append(row)
    change_runs(con, changed)


def close_orphan_runs(con: LakeWriter, still_running: set[str]) -> None:
    """This machine's runs recorded 'running' whose crawl is gone are 'crashed' (another
    machine's running runs are its own business)."""
    keys = [
        (str(r), str(o))
        for r, o in con.pg.execute(
            "SELECT run_id, outlet FROM mediawatch.crawl_runs WHERE status = 'running' "
            "AND home IS NOT DISTINCT FROM %s",
            [con.home],
        )
        if f"{r}.{o}" not in still_running
    ]
    rows = list(lake_runs.load(con.pg, keys).values())
    for row in rows:
        row.update(status="crashed", finished_at=row["finished_at"] or datetime.now(UTC))
        row["message"] = row["message"] or "crawl ended without recording its end"
    change_runs(con, rows)


def outlets_last_run_unfinished(con: LakeWriter) -> list[str]:
    rows = con.pg.execute(
        "SELECT DISTINCT ON (outlet) outlet, status FROM mediawatch.crawl_runs "
        "ORDER BY outlet, started_at DESC"
    ).fetchall()
    return [str(o) for o, s in rows if s not in ("ok", "running")]


def forget_validators(con: LakeWriter, outlet: str) -> int:
    cur = con.pg.execute(
        "UPDATE mediawatch.http_state SET etag = NULL, last_modified = NULL "
        "WHERE outlet = %s AND (etag IS NOT NULL OR last_modified IS NOT NULL)",
        [outlet],
    )
    return int(cur.rowcount or 0)


def _figures(con: LakeWriter, columns: str, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    rows = con.pg.execute(
        f"SELECT {columns}, skipped::text FROM mediawatch.crawl_runs WHERE {where}", params
    ).fetchall()
    return [tuple(r) for r in rows]


def run_figures(con: LakeWriter, run_id: str, outlet: str) -> tuple[Any, ...] | None:
    """(status, requests, articles_new, articles_updated, skipped JSON, errors, message)."""
    rows = _figures(
        con,
        "status, requests, articles_new, articles_updated, errors, message",
        "run_id = %s AND outlet = %s",
        [run_id, outlet],
    )
    if not rows:
        return None
    status, requests, new, updated, errors, message, skipped = rows[0]
    return (status, requests, new, updated, skipped, errors, message)


def run_summaries(con: LakeWriter, run_id: str) -> list[tuple[Any, ...]]:
    """(outlet, status, requests, new, updated, skipped JSON, errors) per outlet of a run."""
    rows = _figures(
        con,
        "outlet, status, requests, articles_new, articles_updated, errors",
        "run_id = %s ORDER BY outlet",
        [run_id],
    )
    return [(o, s, r, n, u, sk, e) for o, s, r, n, u, e, sk in rows]


def load_outlet_states(con: LakeWriter) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in con.pg.execute(f"SELECT {', '.join(STATE_COLUMNS)} FROM mediawatch.outlet_state")
    ]


_STATE = (
    "outlet", "next_run_at", "interval_seconds", "delay_seconds", "consecutive_failures",
    "healthy", "health_reason", "last_run_id", "last_status", "last_run_at", "last_new_at",
    "updated_at",
)  # fmt: skip


def save_outlet_state(con: LakeWriter, outlet: str, **state: Any) -> None:
    """The daemon's state of an outlet (archive.runs.save_outlet_state's keywords)."""
    values = {
        "outlet": outlet, "next_run_at": state["next_run_at"],
        "interval_seconds": state["interval"], "delay_seconds": state["delay"],
        "consecutive_failures": state["failures"], "healthy": state["healthy"],
        "health_reason": state["reason"], "last_run_id": state["last_run_id"],
        "last_status": state["last_status"], "last_run_at": state["last_run_at"],
        "last_new_at": state["last_new_at"], "updated_at": state["now"],
    }  # fmt: skip
    con.pg.execute(
        f"INSERT INTO mediawatch.outlet_state ({', '.join(_STATE)}) "
        f"VALUES ({', '.join('%s' for _ in _STATE)}) ON CONFLICT (outlet) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _STATE[1:]),
        [values[c] for c in _STATE],
    )
    _append(con.lake, "outlet_state_log", [{**values, "recorded_at": datetime.now(UTC)}])


def record_events(
    con: LakeWriter,
    events: Iterable[tuple[datetime, str, str | None, str | None]],
    pid: int | None = None,
) -> None:
    append_events(con.lake, events, pid)


def append_events(
    lake: duckdb.DuckDBPyConnection,
    events: Iterable[tuple[datetime, str, str | None, str | None]],
    pid: int | None = None,
) -> None:
    """daemon_events rows, (at, kind, outlet, message) each, in one lake commit."""
    rows = [
        {
            "event_at": at,
            "pid": pid or os.getpid(),
            "kind": kind,
            "outlet": outlet,
            "message": message,
        }
        for at, kind, outlet, message in events
    ]
    if rows:
        _append(lake, "daemon_events", rows)
