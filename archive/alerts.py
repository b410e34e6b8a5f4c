"""Alerts in the archive: which new articles match a saved query, and the outbox of their
deliveries (migration 0015_alerts). No network here: the daemon claims due rows in one
short write session, sends them outside any session (crawler/alerts/) and records the
outcome in another, so a kill -9 at any moment loses no delivery and the outbox never
shows one twice as sent.

Matching is the search's (archive/search_syntax.py parses, the SQL below reads the roles
with the `search_articles` macro's own expressions) but only over the articles past the
alert's watermark: their postings are the tail of the index, so the cost follows what was
ingested, not the size of the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from archive.search import FALLBACK_STEMMER, STEMMERS, _matching_tokens, _snippet, load_fts
from archive.search_syntax import ParsedQuery
from archive.tx import transaction

CHANNELS = ("atom", "webhook", "email")
FEED_ENTRIES = 50  # entries in an alert's Atom feed
MAX_COPIES = 10  # articles of one cluster listed in a delivery
WINDOW = 50_000  # article ids matched per statement (a daemon back after a long stop)
IN_DOUBT = (
    "in doubt: the daemon stopped while sending; sent again "
    "(a webhook receiver can drop it by its Idempotency-Key)"
)


@dataclass(frozen=True)
class AlertSpec:
    """What the archive needs of an alert: its query and filters, and its channels."""

    name: str
    query: ParsedQuery
    outlets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("atom",)


@dataclass(frozen=True)
class Claimed:
    id: int
    alert: str
    channel: str
    cluster_id: int
    attempts: int


# An article's delivery cluster: the cluster of the story it syndicates, else its own (both
# backends: the lake's articles and duplicate_links views have the file's columns).
CLUSTER_OF = """coalesce((SELECT coalesce(m.cluster_id, m.id) FROM duplicate_links l
                       JOIN articles m ON m.id = l.matched_article_id
                       WHERE l.article_id = a.id AND l.level = 'syndication'
                       ORDER BY l.matched_article_id LIMIT 1),
                      a.cluster_id, a.id)"""

_MATCH_SQL = r"""
WITH items AS (
    SELECT unnest(string_split($toks, chr(31))) AS tok, unnest(string_split($roles, chr(31))) AS role
),
words AS (
    SELECT w, bool_or(role IN ('required', 'phrase')) AS req, bool_or(role = 'excluded') AS excl,
           bool_or(role IN ('optional', 'required', 'phrase')) AS pos
    FROM (SELECT role,
                 unnest(regexp_split_to_array(lower(regexp_replace(tok, '^[+-]+|[*]+$', '', 'g')),
                                              '[^\p{L}\p{N}]+')) AS w
          FROM items WHERE role NOT IN ('op', 'prefix'))
    WHERE length(w) BETWEEN 2 AND 40
    GROUP BY w
),
prefixes AS (
    SELECT list(DISTINCT strip_accents(lower(regexp_replace(tok, '[^\p{L}\p{N}]', '', 'g')))) AS l
    FROM items WHERE role = 'prefix' AND length(regexp_replace(tok, '[^\p{L}\p{N}]', '', 'g')) > 0
),
phrase_res AS (
    SELECT list('(^|[^\p{L}\p{N}])' || array_to_string(ws, '[^\p{L}\p{N}]+') || '($|[^\p{L}\p{N}])') AS l
    FROM (SELECT list_filter(regexp_split_to_array(strip_accents(lower(tok)), '[^\p{L}\p{N}]+'), x -> x <> '') AS ws
          FROM items WHERE role = 'phrase')
    WHERE len(ws) > 0
),
new AS MATERIALIZED (
    SELECT article_id, doc_id, stemmer FROM search_docs WHERE article_id > $after AND article_id <= $upto
),
qt AS (
    SELECT DISTINCT CAST(md5_number(s.stemmer || ':' || strip_accents(stem(w.w, s.stemmer))) >> 64 AS UBIGINT)
               AS term_key, w.w, w.req, w.excl, w.pos
    FROM words w CROSS JOIN (SELECT DISTINCT stemmer FROM new) s
),
hits AS MATERIALIZED (  -- the doc id bounds are inlined: the scan then reads the index's tail only
    SELECT n.article_id, qt.w, qt.req, qt.excl, qt.pos
    FROM search_postings sp JOIN qt ON qt.term_key = sp.term_key JOIN new n ON n.doc_id = sp.doc_id
    WHERE sp.doc_id BETWEEN __LO__ AND __HI__
),
per AS (
    SELECT article_id, count(DISTINCT w) FILTER (WHERE req) AS req_hits, bool_or(excl) AS excl,
           bool_or(pos) AS pos
    FROM hits GROUP BY article_id
),
cand AS (
    SELECT article_id FROM per WHERE pos
    UNION  -- only prefixes (trum*): every new article is a candidate
    SELECT article_id FROM new
    WHERE NOT EXISTS (SELECT 1 FROM words WHERE pos) AND EXISTS (SELECT 1 FROM prefixes WHERE len(l) > 0)
)
SELECT a.id, __CLUSTER__ AS cluster_id, a.text, a.language
FROM cand c JOIN articles a ON a.id = c.article_id LEFT JOIN per p ON p.article_id = c.article_id
WHERE coalesce(p.req_hits, 0) = (SELECT count(*) FROM words WHERE req)
  AND NOT coalesce(p.excl, false)
  AND list_bool_and(list_transform(coalesce((SELECT l FROM phrase_res), []), r ->
        regexp_matches(strip_accents(lower(coalesce(a.title, '') || ' ' || coalesce(a.text, ''))), r)) || [true])
  AND list_bool_and(list_transform(coalesce((SELECT l FROM prefixes), []), x ->
        regexp_matches(strip_accents(lower(coalesce(a.title, '') || ' ' || coalesce(a.text, ''))),
                       '(^|[^\p{L}\p{N}])' || x)) || [true])
  AND (len($outlets) = 0 OR list_contains($outlets, a.outlet))
  AND (len($languages) = 0 OR list_contains($languages, lower(split_part(a.language, '-', 1))))
ORDER BY a.id
""".replace("__CLUSTER__", CLUSTER_OF)


def _stemmer(language: str | None) -> str:
    code = (language or "").split("-")[0].split("_")[0].lower()
    return STEMMERS.get(code, FALLBACK_STEMMER)


def matches(
    con: duckdb.DuckDBPyConnection,
    spec: AlertSpec,
    after: int,
    upto: int,
    *,
    snippets: bool = True,
) -> list[tuple[int, int, str]]:
    """(article id, cluster id, snippet) of the articles with after < id <= upto that the
    alert's query and filters match, as `mediawatch search` would find them. The snippets
    of all of them are marked in one statement (search._matching_tokens)."""
    load_fts(con)
    out: list[tuple[int, int, str]] = []
    words = spec.query.words()
    for lo_id in range(after, upto, WINDOW):
        hi_id = min(upto, lo_id + WINDOW)
        row = con.execute(
            "SELECT min(doc_id), max(doc_id) FROM search_docs WHERE article_id > ? AND article_id <= ?",
            [lo_id, hi_id],
        ).fetchone()
        if row is None or row[0] is None:
            continue
        sql = _MATCH_SQL.replace("__LO__", str(int(row[0]))).replace("__HI__", str(int(row[1])))
        params = {
            "toks": "\x1f".join(t.replace("\x1f", " ") for t, _ in spec.query.items),
            "roles": "\x1f".join(r for _, r in spec.query.items),
            "after": lo_id,
            "upto": hi_id,
            "outlets": list(spec.outlets),
            "languages": [x.lower() for x in spec.languages],
        }
        found = con.execute(sql, params).fetchall()
        texts = [(_stemmer(r[3]), r[2] or "") for r in found]
        marked = _matching_tokens(con, texts, words) if words and snippets and found else {}
        for (article_id, cluster_id, _, _), (stemmer, text) in zip(found, texts, strict=True):
            shown = _snippet(text, marked.get(stemmer, set()), 40, ("", "")) if marked else ""
            out.append((int(article_id), int(cluster_id), shown or text[:300] if snippets else ""))
    return out


def max_article_id(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()
    return int(row[0]) if row else 0


def watermark(con: duckdb.DuckDBPyConnection, alert: str) -> int | None:
    row = con.execute("SELECT watermark FROM alert_state WHERE alert = ?", [alert]).fetchone()
    return int(row[0]) if row else None


def enqueue(
    con: duckdb.DuckDBPyConnection, specs: Sequence[AlertSpec], now: datetime
) -> dict[str, tuple[int, int]]:
    """Match each alert against the articles archived since its watermark and queue one
    delivery per (channel, cluster) not queued before; return per alert the articles it
    matched and the deliveries it queued (fewer: copies join their cluster's).
    A new alert starts at the archive's newest article: it alerts on what comes next."""
    added: dict[str, tuple[int, int]] = {}
    with transaction(con):
        upto = max_article_id(con)
        for spec in specs:
            after = watermark(con, spec.name)
            if after is None:
                con.execute(
                    "INSERT INTO alert_state (alert, watermark, created_at) VALUES (?, ?, ?)",
                    [spec.name, upto, now],
                )
                continue
            if upto <= after:
                continue
            found = matches(con, spec, after, upto)
            before = _count(con, spec.name)
            if found:
                # one statement, the columns as separated strings: bound lists cost ~0.5 ms an element
                con.execute(
                    """
                    INSERT INTO alert_matches (alert, article_id, cluster_id, matched_at, snippet)
                    SELECT $alert, CAST(i AS BIGINT), CAST(c AS BIGINT), $now, s
                    FROM (SELECT unnest(string_split($ids, ',')) AS i, unnest(string_split($clusters, ',')) AS c,
                                 unnest(string_split($snippets, chr(31))) AS s)
                    ON CONFLICT DO NOTHING
                    """,
                    {
                        "alert": spec.name,
                        "now": now,
                        "ids": ",".join(str(f[0]) for f in found),
                        "clusters": ",".join(str(f[1]) for f in found),
                        "snippets": "\x1f".join(f[2].replace("\x1f", " ") for f in found),
                    },
                )
                con.execute(
                    """
                    INSERT INTO alert_deliveries (alert, channel, cluster_id, article_id, status, enqueued_at,
                                                  next_attempt_at)
                    SELECT $alert, ch.channel, m.cluster_id, min(m.article_id), 'pending', $now, $now
                    FROM alert_matches m CROSS JOIN (SELECT unnest($channels) AS channel) ch
                    WHERE m.alert = $alert AND m.article_id > $after AND m.article_id <= $upto
                    GROUP BY ch.channel, m.cluster_id
                    ON CONFLICT (alert, channel, cluster_id) DO NOTHING
                    """,
                    {
                        "alert": spec.name,
                        "channels": list(spec.channels),
                        "now": now,
                        "after": after,
                        "upto": upto,
                    },
                )
            con.execute(
                "UPDATE alert_state SET watermark = ?, matched_at = ? WHERE alert = ?",
                [upto, now, spec.name],
            )
            added[spec.name] = (len(found), _count(con, spec.name) - before)
    return added


def _count(con: duckdb.DuckDBPyConnection, alert: str) -> int:
    row = con.execute("SELECT count(*) FROM alert_deliveries WHERE alert = ?", [alert]).fetchone()
    return int(row[0]) if row else 0


def _keys(channels: Mapping[str, Iterable[str]]) -> list[str]:
    return [f"{alert}\x1f{ch}" for alert, chs in channels.items() for ch in chs]


def release_in_doubt(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Rows a dead daemon claimed and may or may not have sent: due again, saying so."""
    row = con.execute(
        "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = ?, last_error = ? "
        "WHERE status = 'sending' RETURNING id",
        [now, IN_DOUBT],
    ).fetchall()
    return len(row)


def claim(
    con: duckdb.DuckDBPyConnection, channels: Mapping[str, Iterable[str]], now: datetime, limit: int
) -> list[Claimed]:
    """Mark up to `limit` due deliveries of these (alert, channels) 'sending', attempts + 1,
    and return them: committed before anything is sent, so a crash leaves them in doubt,
    never forgotten. The caller reads what they send in the same transaction."""
    rows = con.execute(
        """
        UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1, claimed_at = $now
        WHERE id IN (SELECT id FROM alert_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= $now
                       AND list_contains($keys, alert || chr(31) || channel)
                     ORDER BY next_attempt_at, id LIMIT $limit)
        RETURNING id, alert, channel, cluster_id, attempts
        """,
        {"now": now, "keys": _keys(channels), "limit": int(limit)},
    ).fetchall()
    return sorted(
        (Claimed(int(r[0]), r[1], r[2], int(r[3]), int(r[4])) for r in rows), key=lambda c: c.id
    )


def next_due(
    con: duckdb.DuckDBPyConnection, channels: Mapping[str, Iterable[str]]
) -> datetime | None:
    row = con.execute(
        "SELECT min(next_attempt_at) FROM alert_deliveries WHERE status = 'pending' "
        "AND list_contains($keys, alert || chr(31) || channel)",
        {"keys": _keys(channels)},
    ).fetchone()
    return row[0] if row else None


def mark_sent(con: duckdb.DuckDBPyConnection, ids: Iterable[int], now: datetime) -> None:
    ids = sorted(int(i) for i in ids)
    if ids:
        con.execute(
            "UPDATE alert_deliveries SET status = 'sent', sent_at = ? WHERE list_contains(?, id) "
            "AND status = 'sending'",
            [now, ids],
        )


def mark_failed(
    con: duckdb.DuckDBPyConnection, delivery_id: int, error: str, retry_at: datetime | None
) -> None:
    """A failed attempt: due again at `retry_at`, or given up ('failed') when it is None."""
    con.execute(
        "UPDATE alert_deliveries SET status = ?, last_error = ?, next_attempt_at = coalesce(?, next_attempt_at) "
        "WHERE id = ? AND status = 'sending'",
        ["pending" if retry_at is not None else "failed", error[:1000], retry_at, int(delivery_id)],
    )


_ARTICLES_SQL = """
SELECT m.cluster_id, a.id, a.outlet, a.title, a.url, a.published_at, a.language, m.snippet, m.matched_at
FROM alert_matches m JOIN articles a ON a.id = m.article_id
WHERE m.alert = $alert AND list_contains($clusters, m.cluster_id)
ORDER BY m.cluster_id, m.article_id
"""


def cluster_articles(
    con: duckdb.DuckDBPyConnection, alert: str, clusters: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """The matched articles of each cluster, first match first (at most MAX_COPIES)."""
    rows = con.execute(
        _ARTICLES_SQL, {"alert": alert, "clusters": sorted({int(c) for c in clusters})}
    ).fetchall()
    return by_cluster(rows)


MATCH_KEYS = ("id", "outlet", "title", "url", "published_at", "language", "snippet", "matched_at")


def by_cluster(rows: Iterable[Sequence[Any]]) -> dict[int, list[dict[str, Any]]]:
    """Rows of (cluster id, *MATCH_KEYS) in cluster and article order -> each cluster's first
    MAX_COPIES articles (both backends' outboxes)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for cluster_id, *rest in rows:
        items = out.setdefault(int(cluster_id), [])
        if len(items) < MAX_COPIES:
            items.append(dict(zip(MATCH_KEYS, rest, strict=True)))
    return out


def feed_entries(
    con: duckdb.DuckDBPyConnection, alert: str, limit: int = FEED_ENTRIES
) -> list[dict[str, Any]]:
    """The newest deliveries of the alert's Atom channel (being sent or sent), for its feed:
    each with its delivery id, cluster, time and articles."""
    rows = con.execute(
        "SELECT id, cluster_id, enqueued_at FROM alert_deliveries WHERE alert = ? AND channel = 'atom' "
        "AND status IN ('sending', 'sent') ORDER BY id DESC LIMIT ?",
        [alert, int(limit)],
    ).fetchall()
    articles = cluster_articles(con, alert, [r[1] for r in rows])
    return [
        {
            "delivery_id": int(r[0]),
            "cluster_id": int(r[1]),
            "enqueued_at": r[2],
            "articles": articles.get(int(r[1]), []),
        }
        for r in rows
    ]


def has_alert_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this archive has the outbox yet (a read-only opener cannot migrate)."""
    row = con.execute(
        "SELECT count(*) FROM schema_migrations WHERE name = '0015_alerts'"
    ).fetchone()
    return bool(row and row[0])


def overview(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (alert, channel): deliveries by status, the last sent, the last failure and the
    next retry, for `mediawatch alerts`."""
    rows = con.execute(
        """
        SELECT alert, channel, count(*) FILTER (WHERE status = 'sent') AS sent,
               count(*) FILTER (WHERE status IN ('pending', 'sending')) AS waiting,
               count(*) FILTER (WHERE status IN ('pending', 'sending') AND attempts > 0) AS retrying,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               max(sent_at) AS last_sent_at,
               arg_max(last_error, coalesce(claimed_at, enqueued_at)) FILTER (WHERE last_error IS NOT NULL
                   AND status <> 'sent') AS last_error,
               min(next_attempt_at) FILTER (WHERE status = 'pending') AS next_attempt_at
        FROM alert_deliveries GROUP BY ALL
        """
    ).fetchall()
    keys = (
        "sent",
        "waiting",
        "retrying",
        "failed",
        "last_sent_at",
        "last_error",
        "next_attempt_at",
    )
    return {(r[0], r[1]): dict(zip(keys, r[2:], strict=True)) for r in rows}


def match_counts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, int | None]]:
    """Per alert: articles matched, clusters they make, and its watermark."""
    rows = con.execute(
        """
        SELECT s.alert, count(m.article_id), count(DISTINCT m.cluster_id), any_value(s.watermark)
        FROM alert_state s LEFT JOIN alert_matches m USING (alert) GROUP BY s.alert
        """
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def waiting(con: duckdb.DuckDBPyConnection, alert: str) -> list[dict[str, Any]]:
    """The alert's deliveries not sent yet (queued, retrying, in doubt), oldest first."""
    rows = con.execute(
        "SELECT id, channel, cluster_id, status, attempts, last_error, next_attempt_at FROM alert_deliveries "
        "WHERE alert = ? AND status IN ('pending', 'sending') ORDER BY id",
        [alert],
    ).fetchall()
    keys = (
        "delivery_id",
        "channel",
        "cluster_id",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]


def known_clusters(con: duckdb.DuckDBPyConnection, alert: str, clusters: Iterable[int]) -> set[int]:
    """Which of these clusters the alert already has a delivery for (a copy joins it)."""
    rows = con.execute(
        "SELECT DISTINCT cluster_id FROM alert_deliveries WHERE alert = ? AND list_contains(?, cluster_id)",
        [alert, sorted({int(c) for c in clusters})],
    ).fetchall()
    return {int(r[0]) for r in rows}


def articles_by_id(con: duckdb.DuckDBPyConnection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    rows = con.execute(
        "SELECT id, outlet, title, url, published_at, language FROM articles WHERE list_contains(?, id)",
        [sorted({int(i) for i in ids})],
    ).fetchall()
    keys = ("id", "outlet", "title", "url", "published_at", "language")
    return {int(r[0]): dict(zip(keys, r, strict=True)) for r in rows}
