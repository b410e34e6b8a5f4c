"""Learned boilerplate: paragraphs an outlet repeats across its own articles.

A paragraph that closes (or opens) many articles of one outlet within a few weeks is the
outlet's promo or footer, whatever its words, so the promo stripper removes it even when no
phrase rule knows that wording. The archive only stores counts by paragraph hash; the hash
function lives with the stripper (`pipelines.promo.paragraph_hash`) and the caller passes
hashes already computed, because the archive never imports the pipelines.

Which paragraphs are recorded is the caller's choice (`pipelines.promo.recurrence.boundary_blocks`):
the edges of each *newly archived* article's extracted text (before stripping, so a learned
promo keeps being counted), the blocks after its last prose paragraph and its shortest inner
blocks, a bounded number per article. Outlets put their repeated blocks there, and the
story's own paragraphs would only grow the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

SAMPLE_CHARS = 300
MIN_ARTICLES = 4  # articles of an outlet that make a paragraph its boilerplate
WINDOW_DAYS = 30  # a paragraph not seen for longer is counted afresh


def record_paragraphs(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    para_hashes_with_samples: Iterable[tuple[str, str]],
    seen_at: datetime,
    *,
    window_days: int = 30,
) -> int:
    """Count one more article for each paragraph hash; return how many hashes were recorded.

    Call once per new article (not for re-fetches), inside the ingest transaction. A hash
    repeated within one article counts once. A hash not seen for more than `window_days`
    starts again from 1: an old campaign does not make a new paragraph look repeated.
    """
    return record_paragraphs_batch(
        con, [(outlet, para_hashes_with_samples, seen_at)], window_days=window_days
    )


def summed(
    articles: Iterable[tuple[Any, ...]],
) -> tuple[dict[tuple[str, str], list[Any]], list[tuple[str, str, str]]]:
    """The counts of one batch of new articles, (outlet, hashes, seen_at[, final text]) each,
    summed per (outlet, hash): [articles, first seen, last seen, sample]; and the (outlet,
    hash, sample) each article's final text still holds (re-clean candidates once learned).
    A hash repeated within one article counts once. Both backends store these."""
    counts: dict[tuple[str, str], list[Any]] = {}
    kept: list[tuple[str, str, str]] = []
    for outlet, pairs, seen_at, *final in articles:
        if seen_at.tzinfo is None:
            seen_at = seen_at.replace(tzinfo=UTC)
        unique: dict[str, str] = {}
        for para_hash, sample in pairs:
            if para_hash and para_hash not in unique:
                unique[para_hash] = (sample or "")[:SAMPLE_CHARS]
        text = final[0] if final else None
        for para_hash, sample in unique.items():
            if text and sample and sample in text:
                kept.append((outlet, para_hash, sample))
            entry = counts.get((outlet, para_hash))
            if entry is None:
                counts[(outlet, para_hash)] = [1, seen_at, seen_at, sample]
            else:
                entry[0] += 1
                entry[1], entry[2] = min(entry[1], seen_at), max(entry[2], seen_at)
    return counts, kept


def record_paragraphs_batch(
    con: duckdb.DuckDBPyConnection,
    articles: Iterable[tuple[Any, ...]],
    *,
    window_days: int = 30,
    min_articles: int = MIN_ARTICLES,
) -> int:
    """record_paragraphs for the new articles of one transaction, (outlet, hashes, seen_at)
    each, optionally with the article's final text as a fourth item: a learned paragraph the
    text still holds is queued in `boilerplate_due` for a re-clean. Counts are summed per
    (outlet, hash) first, then stored with three statements per transaction instead of one
    upsert per article (an upsert cost ~25 ms a statement at 400k rows whatever it carried,
    bench/dedup_scale.py)."""
    counts, kept = summed(articles)
    if not counts:
        return 0
    keys = {f"{outlet}:{para_hash}": (outlet, para_hash) for outlet, para_hash in counts}
    # A literal IN list on the one-column key is an index scan; the rows found are updated
    # one by one (point updates), the others inserted in one plain INSERT: an ON CONFLICT
    # upsert cost 4x as much and grew with the table.
    placeholders = ", ".join("?" for _ in keys)
    stored = {
        str(k): (int(n), first, last)
        for k, n, first, last in con.execute(
            f"SELECT para_key, articles, first_seen_at, last_seen_at FROM paragraph_stats WHERE para_key IN ({placeholders})",
            list(keys),
        ).fetchall()
    }
    window = timedelta(days=window_days)
    updates, inserts = [], []
    for para_key, key in keys.items():
        n, first, last, sample = counts[key]
        if para_key in stored:
            old_n, old_first, old_last = stored[para_key]
            if last - old_last > window:  # not seen for a while: counted afresh
                updates.append([n, first, max(old_last, last), para_key])
            else:
                updates.append([old_n + n, min(old_first, first), max(old_last, last), para_key])
        else:
            inserts.append((para_key, key[0], key[1], n, first, last, sample))
    if inserts:
        con.execute(
            "INSERT INTO paragraph_stats (para_key, outlet, para_hash, articles, first_seen_at, last_seen_at, sample) "
            "SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[]), unnest($4::INTEGER[]), "
            "unnest($5::TIMESTAMPTZ[]), unnest($6::TIMESTAMPTZ[]), unnest($7::VARCHAR[])",
            [list(col) for col in zip(*inserts, strict=True)],
        )
    if updates:
        con.executemany(
            "UPDATE paragraph_stats SET articles = ?, first_seen_at = ?, last_seen_at = ? WHERE para_key = ?",
            updates,
        )
    totals = {u[3]: u[0] for u in updates} | {i[0]: i[3] for i in inserts}
    due = {
        f"{o}:{h}": (o, h, smp) for o, h, smp in kept if totals.get(f"{o}:{h}", 0) >= min_articles
    }
    if due:
        # learned now (or before, by a crawl that did not know it yet): the outlet's
        # articles that still hold the paragraph are to be cleaned again
        now = max(c[2] for c in counts.values())
        con.executemany(
            "INSERT OR IGNORE INTO boilerplate_due (para_key, outlet, para_hash, sample, due_since) VALUES (?, ?, ?, ?, ?)",
            [[k, o, h, smp, now] for k, (o, h, smp) in due.items()],
        )
    return len(keys)


def load_boilerplate(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    *,
    min_articles: int = 4,
    window_days: int = 30,
    now: datetime | None = None,
) -> frozenset[str]:
    """Hashes of paragraphs seen in at least `min_articles` articles of `outlet` and still in
    use (last seen within `window_days` of `now`, default the current time)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    rows = con.execute(
        """
        SELECT para_hash FROM paragraph_stats
        WHERE outlet = ? AND articles >= ? AND last_seen_at >= ?
        """,
        [outlet, min_articles, now - timedelta(days=window_days)],
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def due_recleans(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[tuple[str, str, str]]:
    """(para_key, outlet, sample) of learned paragraphs archived articles may still hold."""
    return [
        (str(k), str(o), str(smp))
        for k, o, smp in con.execute(
            "SELECT para_key, outlet, sample FROM boilerplate_due ORDER BY due_since, para_key LIMIT ?",
            [limit],
        ).fetchall()
    ]


def articles_holding(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    samples: list[str],
    *,
    window_days: int = 30,
    now: datetime | None = None,
) -> list[int]:
    """Ids of the outlet's recent articles whose current text contains one of the samples."""
    now = now or datetime.now(UTC)
    rows = con.execute(
        """
        SELECT a.id FROM articles a
        WHERE a.outlet = ? AND a.first_seen_at >= ?
          AND EXISTS (SELECT 1 FROM unnest(?::VARCHAR[]) s(sample) WHERE strpos(a.text, s.sample) > 0)
        ORDER BY a.id
        """,
        [outlet, now - timedelta(days=window_days), samples],
    ).fetchall()
    return [int(r[0]) for r in rows]


def clear_due(con: duckdb.DuckDBPyConnection, para_keys: list[str]) -> None:
    con.execute(
        "DELETE FROM boilerplate_due WHERE para_key IN (SELECT unnest(?::VARCHAR[]))", [para_keys]
    )


def record_reclean(
    con: duckdb.DuckDBPyConnection, outlet: str, articles: int, sample: str, pid: int | None = None
) -> None:
    """A re-clean for learned boilerplate, where `daemon_events` shows what the archive did."""
    con.execute(
        "INSERT INTO daemon_events (event_at, pid, kind, outlet, message) VALUES (?, ?, 'boilerplate_reclean', ?, ?)",
        [datetime.now(UTC), pid, outlet, reclean_message(articles, sample)],
    )


def reclean_message(articles: int, sample: str) -> str:
    """What `daemon_events` says of a re-clean for learned boilerplate (both backends)."""
    return f"re-cleaned {articles} article(s) for learned boilerplate: {' '.join(sample.split())[:120]}"
