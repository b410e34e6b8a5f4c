"""Crawl runs on a lake: the mutable row in PostgreSQL (mediawatch.crawl_runs), each change
also appended to the lake's crawl_run_log (what the crawl_runs view shows). The ingest
computes a run's new row and hands it here with the batch's other state changes (a "post",
JSON, also kept in the batch's lake marker so a writer settling a dead one applies it)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg

from archive.dates import stored as stored_date

RunKey = tuple[str, str]  # (run_id, outlet)
COLUMNS = (
    "run_id", "outlet", "started_at", "finished_at", "status", "requests", "responses",
    "articles_new", "articles_updated", "skipped", "errors", "message", "failure", "fence", "home",
)  # fmt: skip
_WRITTEN = tuple(c for c in COLUMNS if c != "fence")  # the fence is the daemon's, set at the start
_LOGGED = tuple(c for c in COLUMNS if c not in ("fence", "home"))
_JSON = ("responses", "skipped")
_TIMES = ("started_at", "finished_at")
FENCED = "fenced"  # a run whose lease another daemon took over: its late records are refused


def load(pg: psycopg.Connection[Any], keys: Iterable[RunKey]) -> dict[RunKey, dict[str, Any]]:
    """The current rows of these runs (absent: not started yet)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = pg.execute(
        f"SELECT {', '.join(COLUMNS)} FROM mediawatch.crawl_runs r "
        "JOIN unnest(%s::text[], %s::text[]) AS k(run_id, outlet) USING (run_id, outlet)",
        [[r for r, _ in keys], [o for _, o in keys]],
    ).fetchall()
    out = {}
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=True))
        out[(str(values["run_id"]), str(values["outlet"]))] = values
    return out


def stale(pg: psycopg.Connection[Any], keys: Iterable[RunKey]) -> dict[RunKey, tuple[int, int]]:
    """Runs started under a lease fence that is no longer the outlet's (another daemon took the
    outlet over since): run -> (its fence, the lease's). Runs without a fence (`mediawatch
    crawl`) are never stale."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    rows = pg.execute(
        "SELECT r.run_id, r.outlet, r.fence, l.fence FROM mediawatch.crawl_runs r "
        "JOIN unnest(%s::text[], %s::text[]) AS k(run_id, outlet) USING (run_id, outlet) "
        "JOIN mediawatch.leases l ON l.outlet = r.outlet "
        "WHERE r.fence IS NOT NULL AND r.fence <> l.fence",
        [[r for r, _ in keys], [o for _, o in keys]],
    ).fetchall()
    return {(str(r), str(o)): (int(f), int(lf)) for r, o, f, lf in rows}


def new_row(
    run_id: str, outlet: str, started_at: datetime | None, home: str | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        run_id=run_id,
        outlet=outlet,
        started_at=started_at or datetime.now(UTC),
        status="running",
        requests=0,
        articles_new=0,
        articles_updated=0,
        errors=0,
        home=home,  # whose spool holds the run: only that machine may call it crashed
    )
    return row


def apply_end(row: dict[str, Any], record: dict[str, Any]) -> None:
    """A run record on the run's row, under the file ingest's rule: the supervisor's verdict
    (timeout, crashed) wins over the crawl's own status."""
    stats = record.get("stats") or {}
    keep = row["status"] in ("timeout", "crashed", FENCED)
    row.update(
        started_at=stored_date(record.get("started_at")) or row["started_at"],
        finished_at=stored_date(record.get("finished_at")),
        requests=stats.get("requests", 0),
        responses=stats.get("responses", {}),
        skipped=stats.get("skipped", {}),
        errors=stats.get("errors", 0),
        failure=stats.get("failure"),
    )
    if not keep:
        row["status"] = record.get("status", "ok")
        row["message"] = stats.get("failure") or record.get("finish_reason")


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for c in _TIMES:
        if isinstance(out[c], datetime):
            out[c] = out[c].isoformat()
    return out


def log_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The crawl_run_log row of a run's new state."""
    out = {c: row[c] for c in _LOGGED}
    for c in _JSON:
        out[c] = json.dumps(out[c]) if out[c] is not None else None
    out["recorded_at"] = now
    return out


def apply_post(pg: psycopg.Connection[Any], post: dict[str, Any]) -> None:
    """The state changes of a committed batch (in the caller's transaction): run rows as the
    batch left them, conditional-GET validators, the learned-boilerplate counts of its new
    articles."""
    from archive.lake import boilerplate

    boilerplate.record(pg, post.get("paragraphs", []))
    for row in post.get("runs", []):
        values = [
            json.dumps(row[c]) if c in _JSON and row[c] is not None else row[c] for c in _WRITTEN
        ]
        pg.execute(
            f"INSERT INTO mediawatch.crawl_runs ({', '.join(_WRITTEN)}) "
            f"VALUES ({', '.join('%s' for _ in _WRITTEN)}) ON CONFLICT (run_id, outlet) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _WRITTEN if c not in ("run_id", "outlet")),
            values,
        )
    for r in post.get("http", []):
        if r.get("status") == 304:
            pg.execute(
                "UPDATE mediawatch.http_state SET last_status = 304, last_fetched_at = now() WHERE url = %s",
                [r["url"]],
            )
            continue
        pg.execute(
            """INSERT INTO mediawatch.http_state (url, outlet, etag, last_modified, last_status,
                                                  last_fetched_at, last_changed_at)
               VALUES (%s, %s, %s, %s, %s, now(), CASE WHEN %s THEN now() END)
               ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
                   last_status = excluded.last_status, last_fetched_at = excluded.last_fetched_at,
                   last_changed_at = coalesce(excluded.last_changed_at, mediawatch.http_state.last_changed_at)""",
            [r["url"], r["outlet"], r.get("etag"), r.get("last_modified"), r.get("status"),
             bool(r.get("changed"))],
        )  # fmt: skip
