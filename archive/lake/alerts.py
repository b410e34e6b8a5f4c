"""Alerts on a lake: the outbox of archive/alerts.py in PostgreSQL (pg.sql), shared by every
daemon of the lake, and the matching by the lake's search (archive/lake/search.py's tsqueries).

Why the watermark is a snapshot, not an article id: a writer draws its article ids when it
decides a batch, before its claims commit, and an article becomes searchable when its batch
settles (archive/lake/ingest.py). With several writers id 100 can settle after id 101, and a
watermark "past 101" would skip it for good. So each search_index row carries the transaction
that first inserted it (settled_xid: a column default, kept by the upserts of later versions,
so an alert is about new articles as on the file), and an alert's watermark is the snapshot of
its last matching: the new articles are the rows that snapshot did not see. A settle still in
flight at a matching is outside its snapshot and matched the next time, whatever the order of
commits: none is missed, none matched twice.

Once, whichever daemon: matching locks the alerts' alert_state rows (FOR UPDATE, in name
order), so a second daemon waits and starts from the first's new watermark; the matches, the
deliveries and the watermark commit together. Deliveries are claimed FOR UPDATE SKIP LOCKED and
marked with the claimer's application_name: a 'sending' row whose claimer has no session left
is in doubt (its daemon died) and is released by the next daemon to look, as the ingest treats
a dead writer's batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from archive.alerts import CLUSTER_OF, FEED_ENTRIES, IN_DOUBT, AlertSpec, Claimed, by_cluster
from archive.lake import search as lake_search
from archive.lake.search_index import ensure_index
from archive.search import SearchFilters
from archive.target import LakeTarget

log = logging.getLogger("mediawatch.alerts")

PREVIEW = 10  # matches `alerts test` shows of an alert not started yet
_XID_LOCK = 0x6D775F616C657274  # "mw_alert": adding settled_xid to the search index
ARTICLE_KEYS = ("id", "outlet", "title", "url", "published_at", "language")


def ensure_alerts(pg: Any) -> None:
    """The search index with its settled_xid column (added once, under a lock)."""
    ensure_index(pg)
    have = pg.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'mediawatch' "
        "AND table_name = 'search_index' AND column_name = 'settled_xid'"
    ).fetchone()
    if have:
        return
    with pg.transaction():
        pg.execute("SELECT pg_advisory_xact_lock(%s)", [_XID_LOCK])
        pg.execute(
            "ALTER TABLE mediawatch.search_index ADD COLUMN IF NOT EXISTS settled_xid xid8 "
            "NOT NULL DEFAULT pg_current_xact_id()"
        )
        pg.execute(
            "CREATE INDEX IF NOT EXISTS search_index_settled ON mediawatch.search_index (settled_xid)"
        )


def has_alert_tables(pg: Any) -> bool:
    row = pg.execute("SELECT to_regclass('mediawatch.alert_deliveries') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _candidates(
    pg: Any, target: LakeTarget, spec: AlertSpec, after: str | None
) -> tuple[str, dict[int, str], dict[str, Any]]:
    """(this statement's snapshot, article id -> configuration of the articles matching the
    alert that snapshot `after` did not see (all, newest first, when None), the tsqueries)."""
    languages = spec.languages
    filters: SearchFilters = {"outlets": list(spec.outlets), "languages": list(languages)}
    configs = lake_search.index_configs(pg, target, languages)
    queries = {c: lake_search.tsqueries(spec.query.items, c) for c in configs}
    if not queries:
        row = pg.execute("SELECT pg_current_snapshot()::text").fetchone()
        return str(row[0]), {}, queries
    where, params = lake_search.where_clause(queries, filters)
    if after is None:
        news, news_p, order = "true", [], f"ORDER BY c.article_id DESC LIMIT {PREVIEW}"
    else:
        news = (
            "settled_xid >= pg_snapshot_xmin(%s::pg_snapshot) "
            "AND NOT pg_visible_in_snapshot(settled_xid, %s::pg_snapshot)"
        )
        news_p, order = [after, after], "ORDER BY c.article_id"
    rows = pg.execute(
        f"""SELECT s.snap::text, c.article_id, c.config
            FROM (SELECT pg_current_snapshot() AS snap) s
            LEFT JOIN LATERAL (SELECT article_id, config::text AS config FROM mediawatch.search_index
                               WHERE {news} AND {where}) c ON true
            {order}""",
        [*news_p, *params],
    ).fetchall()
    found = {int(r[1]): str(r[2]) for r in rows if r[1] is not None}
    return str(rows[0][0]), found, queries


def _matched(
    pg: Any, lake: duckdb.DuckDBPyConnection, found: dict[int, str], queries: dict[str, Any]
) -> list[dict[str, Any]]:
    """The found articles as the lake holds them, with their cluster and snippet; an id the
    lake does not have (cannot happen: a batch settles after its lake commit) is logged."""
    if not found:
        return []
    rows = lake.execute(
        f"SELECT a.id, {CLUSTER_OF}, a.text, a.outlet, a.title, a.url, a.published_at, a.language "
        "FROM articles a WHERE a.id IN (SELECT unnest($ids)) ORDER BY a.id",
        {"ids": sorted(found)},
    ).fetchall()
    missing = len(found) - len(rows)
    if missing:
        log.warning("alerts: %d indexed articles not in the lake, not alerted on", missing)
    texts = [(int(r[0]), found[int(r[0])], r[2] or "") for r in rows]
    snippets = lake_search.snippets_of(pg, queries, texts, ("", ""))
    return [
        {
            "cluster_id": int(r[1]),
            "snippet": snippets.get(int(r[0])) or (r[2] or "")[:300],
            **dict(zip(ARTICLE_KEYS, (int(r[0]), *r[3:]), strict=True)),
        }
        for r in rows
    ]


def enqueue(
    pg: Any,
    lake: duckdb.DuckDBPyConnection,
    target: LakeTarget,
    specs: Sequence[AlertSpec],
    now: datetime,
) -> dict[str, tuple[int, int]]:
    """archive.alerts.enqueue on the lake, in one PostgreSQL transaction: a new alert starts
    at the current snapshot (it alerts on what comes next)."""
    names = sorted(s.name for s in specs)
    added: dict[str, tuple[int, int]] = {}
    with pg.transaction():
        new = {
            str(r[0])
            for r in pg.execute(
                "INSERT INTO mediawatch.alert_state (alert, watermark, created_at) "
                "SELECT unnest(%s::text[]), pg_current_snapshot(), %s ON CONFLICT DO NOTHING "
                "RETURNING alert",
                [names, now],
            ).fetchall()
        }
        marks = dict(
            pg.execute(
                "SELECT alert, watermark::text FROM mediawatch.alert_state WHERE alert = ANY(%s) "
                "ORDER BY alert FOR UPDATE",
                [names],
            ).fetchall()
        )
        for spec in sorted(specs, key=lambda s: s.name):
            if spec.name in new:
                continue
            snap, found, queries = _candidates(pg, target, spec, marks[spec.name])
            matched = _matched(pg, lake, found, queries)
            queued = _queue(pg, spec, matched, now) if matched else 0
            pg.execute(
                "UPDATE mediawatch.alert_state SET watermark = %s::pg_snapshot, matched_at = %s "
                "WHERE alert = %s",
                [snap, now, spec.name],
            )
            added[spec.name] = (len(matched), queued)
    return added


def _queue(pg: Any, spec: AlertSpec, matched: list[dict[str, Any]], now: datetime) -> int:
    """Insert the matches and one delivery per (channel, cluster) not queued before."""
    columns = ("cluster_id", "snippet", "outlet", "title", "url", "published_at", "language")
    with pg.cursor() as cur:
        cur.executemany(
            "INSERT INTO mediawatch.alert_matches (alert, article_id, matched_at, "
            f"{', '.join(columns)}) VALUES (%s, %s, %s, {', '.join(['%s'] * len(columns))}) "
            "ON CONFLICT DO NOTHING",
            [[spec.name, m["id"], now, *(m[c] for c in columns)] for m in matched],
        )
    rows = pg.execute(
        """
        INSERT INTO mediawatch.alert_deliveries
            (alert, channel, cluster_id, article_id, status, enqueued_at, next_attempt_at)
        SELECT %(alert)s, ch, m.cluster_id, min(m.article_id), 'pending', %(now)s, %(now)s
        FROM mediawatch.alert_matches m CROSS JOIN unnest(%(channels)s::text[]) AS ch
        WHERE m.alert = %(alert)s AND m.article_id = ANY(%(ids)s)
        GROUP BY ch, m.cluster_id
        ON CONFLICT (alert, channel, cluster_id) DO NOTHING RETURNING 1
        """,
        {"alert": spec.name, "now": now, "channels": list(spec.channels),
         "ids": [m["id"] for m in matched]},
    ).fetchall()  # fmt: skip
    return len(rows)


def _keys(channels: Mapping[str, Iterable[str]]) -> list[str]:
    return [f"{alert}\x1f{ch}" for alert, chs in channels.items() for ch in chs]


def release_in_doubt(pg: Any, now: datetime) -> int:
    """Rows claimed by a daemon with no session left: it may or may not have sent them."""
    rows = pg.execute(
        "UPDATE mediawatch.alert_deliveries d SET status = 'pending', next_attempt_at = %s, "
        "last_error = %s WHERE status = 'sending' AND NOT EXISTS "
        "(SELECT 1 FROM pg_stat_activity a WHERE a.application_name = d.claimed_by) RETURNING id",
        [now, IN_DOUBT],
    ).fetchall()
    return len(rows)


def claim(
    pg: Any, channels: Mapping[str, Iterable[str]], now: datetime, limit: int
) -> list[Claimed]:
    """archive.alerts.claim: rows another daemon is claiming are skipped, not waited for."""
    rows = pg.execute(
        """
        UPDATE mediawatch.alert_deliveries SET status = 'sending', attempts = attempts + 1,
            claimed_at = %(now)s, claimed_by = current_setting('application_name')
        WHERE id IN (SELECT id FROM mediawatch.alert_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= %(now)s
                       AND alert || chr(31) || channel = ANY(%(keys)s)
                     ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
        RETURNING id, alert, channel, cluster_id, attempts
        """,
        {"now": now, "keys": _keys(channels), "limit": int(limit)},
    ).fetchall()
    return sorted(
        (Claimed(int(r[0]), r[1], r[2], int(r[3]), int(r[4])) for r in rows), key=lambda c: c.id
    )


def next_due(pg: Any, channels: Mapping[str, Iterable[str]]) -> datetime | None:
    row = pg.execute(
        "SELECT min(next_attempt_at) FROM mediawatch.alert_deliveries WHERE status = 'pending' "
        "AND alert || chr(31) || channel = ANY(%s)",
        [_keys(channels)],
    ).fetchone()
    return row[0] if row else None


_MINE = "status = 'sending' AND claimed_by = current_setting('application_name')"


def mark_sent(pg: Any, ids: Iterable[int], now: datetime) -> None:
    """Sent, if still this daemon's claim (released meanwhile: someone sends it again)."""
    pg.execute(
        f"UPDATE mediawatch.alert_deliveries SET status = 'sent', sent_at = %s "
        f"WHERE id = ANY(%s) AND {_MINE}",
        [now, sorted(int(i) for i in ids)],
    )


def mark_failed(pg: Any, delivery_id: int, error: str, retry_at: datetime | None) -> None:
    pg.execute(
        "UPDATE mediawatch.alert_deliveries SET status = %s, last_error = %s, "
        f"next_attempt_at = coalesce(%s, next_attempt_at) WHERE id = %s AND {_MINE}",
        ["pending" if retry_at is not None else "failed", error[:1000], retry_at, int(delivery_id)],
    )


def cluster_articles(
    pg: Any, alert: str, clusters: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """The matched articles of each cluster, first match first (at most MAX_COPIES)."""
    rows = pg.execute(
        "SELECT cluster_id, article_id, outlet, title, url, published_at, language, snippet, "
        "matched_at FROM mediawatch.alert_matches WHERE alert = %s AND cluster_id = ANY(%s) "
        "ORDER BY cluster_id, article_id",
        [alert, sorted({int(c) for c in clusters})],
    ).fetchall()
    return by_cluster(rows)


def feed_entries(pg: Any, alert: str, limit: int = FEED_ENTRIES) -> list[dict[str, Any]]:
    """archive.alerts.feed_entries: whichever daemon sent them."""
    rows = pg.execute(
        "SELECT id, cluster_id, enqueued_at FROM mediawatch.alert_deliveries WHERE alert = %s "
        "AND channel = 'atom' AND status IN ('sending', 'sent') ORDER BY id DESC LIMIT %s",
        [alert, int(limit)],
    ).fetchall()
    articles = cluster_articles(pg, alert, [r[1] for r in rows])
    return [
        {"delivery_id": int(r[0]), "cluster_id": int(r[1]), "enqueued_at": r[2],
         "articles": articles.get(int(r[1]), [])}
        for r in rows
    ]  # fmt: skip


# `mediawatch alerts` ------------------------------------------------------------------------


def overview(pg: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """archive.alerts.overview: per (alert, channel) deliveries by status, last sent, last
    failure, next retry."""
    rows = pg.execute(
        """
        SELECT alert, channel, count(*) FILTER (WHERE status = 'sent'),
               count(*) FILTER (WHERE status IN ('pending', 'sending')),
               count(*) FILTER (WHERE status IN ('pending', 'sending') AND attempts > 0),
               count(*) FILTER (WHERE status = 'failed'),
               max(sent_at),
               (array_agg(last_error ORDER BY coalesce(claimed_at, enqueued_at) DESC)
                    FILTER (WHERE last_error IS NOT NULL AND status <> 'sent'))[1],
               min(next_attempt_at) FILTER (WHERE status = 'pending')
        FROM mediawatch.alert_deliveries GROUP BY alert, channel
        """
    ).fetchall()
    keys = ("sent", "waiting", "retrying", "failed", "last_sent_at", "last_error",
            "next_attempt_at")  # fmt: skip
    return {(r[0], r[1]): dict(zip(keys, r[2:], strict=True)) for r in rows}


def match_counts(pg: Any) -> dict[str, tuple[int, int, str]]:
    """Per alert: articles matched, clusters they make, and its watermark (a snapshot)."""
    rows = pg.execute(
        "SELECT s.alert, count(m.article_id), count(DISTINCT m.cluster_id), min(s.watermark::text) "
        "FROM mediawatch.alert_state s LEFT JOIN mediawatch.alert_matches m USING (alert) "
        "GROUP BY s.alert"
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), str(r[3])) for r in rows}


def watermark(pg: Any, alert: str) -> str | None:
    row = pg.execute(
        "SELECT watermark::text FROM mediawatch.alert_state WHERE alert = %s", [alert]
    ).fetchone()
    return str(row[0]) if row else None


def waiting(pg: Any, alert: str) -> list[dict[str, Any]]:
    rows = pg.execute(
        "SELECT id, channel, cluster_id, status, attempts, last_error, next_attempt_at "
        "FROM mediawatch.alert_deliveries WHERE alert = %s AND status IN ('pending', 'sending') "
        "ORDER BY id",
        [alert],
    ).fetchall()
    keys = ("delivery_id", "channel", "cluster_id", "status", "attempts", "last_error",
            "next_attempt_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def known_clusters(pg: Any, alert: str, clusters: Iterable[int]) -> set[int]:
    rows = pg.execute(
        "SELECT DISTINCT cluster_id FROM mediawatch.alert_deliveries WHERE alert = %s "
        "AND cluster_id = ANY(%s)",
        [alert, sorted({int(c) for c in clusters})],
    ).fetchall()
    return {int(r[0]) for r in rows}


def preview(
    pg: Any, lake: duckdb.DuckDBPyConnection, target: LakeTarget, spec: AlertSpec
) -> list[dict[str, Any]]:
    """The matches the next matching would queue (the latest PREVIEW ones of an alert not
    started yet); nothing written."""
    _, found, queries = _candidates(pg, target, spec, watermark(pg, spec.name))
    return _matched(pg, lake, found, queries)
