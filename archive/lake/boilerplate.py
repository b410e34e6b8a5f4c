"""Learned boilerplate on a lake (archive/boilerplate.py on the file). The counts per (outlet,
paragraph hash) change with every article, so they live in PostgreSQL
(`mediawatch.paragraph_stats`, `mediawatch.boilerplate_due`), written in the settle transaction
of the batch that archived the articles: a batch counts once, whichever writer settles it (its
own, or the next one from the lake's marker). Concurrent writers upsert keys in sorted order,
so they never deadlock. A crawl loads the outlet's learned hashes with the file's rule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.boilerplate import MIN_ARTICLES, SAMPLE_CHARS, WINDOW_DAYS, summed
from archive.dates import stored as stored_date
from archive.target import LakeTarget, pg_session

_UPSERT = """
INSERT INTO mediawatch.paragraph_stats AS s
    (para_key, outlet, para_hash, articles, first_seen_at, last_seen_at, sample)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::timestamptz[],
                     %s::timestamptz[], %s::text[])
ON CONFLICT (para_key) DO UPDATE SET
    articles = CASE WHEN excluded.last_seen_at - s.last_seen_at > %s::interval
                    THEN excluded.articles ELSE s.articles + excluded.articles END,
    first_seen_at = CASE WHEN excluded.last_seen_at - s.last_seen_at > %s::interval
                         THEN excluded.first_seen_at
                         ELSE least(s.first_seen_at, excluded.first_seen_at) END,
    last_seen_at = greatest(s.last_seen_at, excluded.last_seen_at)
RETURNING para_key, articles
"""


def paragraphs_entry(
    outlet: str, para_hashes: Sequence[Sequence[str]], text: str, seen_at: datetime
) -> list[Any]:
    """What a batch carries (as JSON, in its lake marker) of one new article: its boundary
    paragraphs, each flagged when the article's final text still holds it."""
    pairs = [[str(h), str(t), bool(t) and str(t)[:SAMPLE_CHARS] in text] for h, t in para_hashes]
    return [outlet, pairs, seen_at.isoformat()]


def record(
    pg: Any,
    entries: Iterable[Sequence[Any]],
    *,
    window_days: int = WINDOW_DAYS,
    min_articles: int = MIN_ARTICLES,
) -> int:
    """Count the batch's new articles (paragraphs_entry each) in the caller's transaction;
    queue for a re-clean the learned paragraphs an article still holds. Returns the keys."""
    entries = list(entries)
    counts, _ = summed(
        (o, [(h, t) for h, t, _held in pairs], stored_date(at) or datetime.now(UTC))
        for o, pairs, at in entries
    )
    if not counts:
        return 0
    held = {
        (o, h): t[:SAMPLE_CHARS] for o, pairs, _ in entries for h, t, was_held in pairs if was_held
    }
    rows = sorted((f"{o}:{h}", o, h, *counts[(o, h)]) for o, h in counts)
    window = timedelta(days=window_days)
    totals = dict(
        pg.execute(_UPSERT, [*([r[i] for r in rows] for i in range(7)), window, window]).fetchall()
    )
    due = sorted(
        (k, o, h, held[(o, h)])
        for k, o, h, *_ in rows
        if (o, h) in held and totals.get(k, 0) >= min_articles
    )
    if due:
        now = max(c[2] for c in counts.values())
        pg.execute(
            "INSERT INTO mediawatch.boilerplate_due (para_key, outlet, para_hash, sample, due_since) "
            "SELECT *, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
            "ON CONFLICT (para_key) DO NOTHING",
            [now, *([d[i] for d in due] for i in range(4))],
        )
    return len(rows)


def load(
    pg: Any,
    outlet: str,
    *,
    min_articles: int = MIN_ARTICLES,
    window_days: int = WINDOW_DAYS,
    now: datetime | None = None,
) -> frozenset[str]:
    """The outlet's learned paragraph hashes (archive.boilerplate.load_boilerplate's rule)."""
    since = (now or datetime.now(UTC)) - timedelta(days=window_days)
    rows = pg.execute(
        "SELECT para_hash FROM mediawatch.paragraph_stats "
        "WHERE outlet = %s AND articles >= %s AND last_seen_at >= %s",
        [outlet, min_articles, since],
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def pending(target: LakeTarget) -> bool:
    """Whether a learned paragraph waits for its re-clean: one short read-only session, since
    the daemon asks after every ingest (a re-cleaner's writer would cost a lake ATTACH)."""
    with pg_session(target, read_only=True) as pg:
        row = pg.execute("SELECT EXISTS (SELECT 1 FROM mediawatch.boilerplate_due)").fetchone()
    return bool(row and row[0])
