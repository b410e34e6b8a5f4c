"""Dedup decisions in the archive: exact text per outlet, near-duplicates across the archive.

Takes fingerprints already computed by the crawl (``content_hash``, LSH ``bands``) and the
cleaned text; runs inside the ingest's open transaction (never BEGIN/COMMIT here).

Level 3 (near duplicates): the article's band hashes are stored in ``lsh_bands``; articles
sharing at least one band hash are candidates, found in an in-process band index (below),
never by a scan of the archive; each candidate is then checked *exactly* on word 5-shingles
of its stored text (fetched by primary key):

* Jaccard >= ``JACCARD_MIN`` (0.5): the same text, lightly edited (headline, a paragraph
  added or cut, typos fixed); or
* containment >= ``CONTAINMENT_MIN`` (0.75) of the smaller text in the larger, with at
  least ``MIN_SHARED`` shared shingles: a truncated wire copy (cut to half: Jaccard ~0.5,
  containment ~1.0) joins its original. The floor on shared shingles stops a one-line
  brief from being "contained" in any article that quotes it.

Thresholds from the labelled set (tests/dedup_eval, ``bench/dedup_quality.py --sweep``):
the worst negatives are short briefs sharing an outlet's tail (containment up to 0.56) and
one template with other figures (Jaccard up to 0.78, containment 0.88: only the number
guard separates them); the weakest positives, a copy cut to 60 % *and* reworded, start at
containment 0.62. 0.75 keeps a margin on the negative side, where a wrong merge is worse
than a missed one (a missed copy stays an article of its own cluster).
* Rejected all the same when both texts carry at least ``NUMBERS_MIN`` distinct numbers and
  fewer than ``NUMBER_OVERLAP_MIN`` of the smaller set recur in the other: the same
  template (results, weather, market close) filled with other figures is another story.

An article joins the cluster of its best match (highest containment, then Jaccard). A new
article that matches articles of two clusters does not merge them: chaining through
bridges is how near-dup clusters grow into topics; the other matches are still recorded.
Every article has a cluster (its own when it matches nothing); ``clusters`` keeps the
earliest member (by published_at, unknown dates last, then first_seen_at, then id).

Every positive decision is a row in ``duplicate_links`` with its level, score and reason.

The band index (archive/bandindex.py) keeps lsh_bands as sorted arrays outside DuckDB,
persisted beside the archive (archive/bandstore.py) so a writer opens it in under a second.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from archive.bandindex import HOT_BAND, BandIndex, reset_band_indexes
from archive.bandindex import band_index as _band_index
from archive.bandindex import band_key as _key

__all__ = [
    "CONTAINMENT_MIN",
    "HOT_BAND",
    "JACCARD_MIN",
    "BandIndex",
    "Decision",
    "add_url",
    "ensure_indexes",
    "find_exact",
    "place_article",
    "record_decision",
    "refresh_bands",
    "reset_band_indexes",
    "similarity",
    "store_band_rows",
]

JACCARD_MIN = 0.5
CONTAINMENT_MIN = 0.75
MIN_SHARED = 8
NUMBERS_MIN = 3
NUMBER_OVERLAP_MIN = 0.5
MAX_CANDIDATES = 40  # verified per article, by shared band count: bounds the worst case
SHINGLE = 5


# Same tokenisation as pipelines.fingerprint.words (archive must not import pipelines;
# tests/test_dedup.py checks the two agree).
_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")  # 3.1, 1,200, 14:30 are one figure each

INDEXES = (
    # find_exact: without it every new article scans the content_hash column. (No index on
    # lsh_bands: see the module docstring.)
    "CREATE INDEX IF NOT EXISTS articles_content_hash_idx ON articles (content_hash)",
)


@dataclass(frozen=True)
class Decision:
    """One dedup decision, as stored in duplicate_links."""

    article_id: int
    matched_article_id: int
    level: str  # url | exact | near | version | syndication (another outlet's page naming this article)
    score: float | None
    reason: str


def ensure_indexes(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ART indexes dedup's lookups need (idempotent; call outside a transaction
    once per open, or put the statements in a migration)."""
    for statement in INDEXES:
        con.execute(statement)


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def _shingles(toks: list[str]) -> set[tuple[str, ...]]:
    """Word 5-shingles as tuples (faster to build and hash than joined strings)."""
    if not toks:
        return set()
    if len(toks) < SHINGLE:
        return {tuple(toks)}
    return set(zip(*(toks[i:] for i in range(SHINGLE)), strict=False))


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    containment: float
    shared: int
    sizes: tuple[int, int]
    number_overlap: float | None  # None when either text has too few numbers to judge

    @property
    def duplicate(self) -> bool:
        if self.number_overlap is not None and self.number_overlap < NUMBER_OVERLAP_MIN:
            return False
        if self.jaccard >= JACCARD_MIN:
            return True
        return self.containment >= CONTAINMENT_MIN and self.shared >= MIN_SHARED

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment) if self.duplicate else self.jaccard

    def describe(self) -> str:
        nums = "" if self.number_overlap is None else f", numbers {self.number_overlap:.2f}"
        return (
            f"jaccard {self.jaccard:.3f}, containment {self.containment:.3f} "
            f"({self.shared} shared of {self.sizes[0]}/{self.sizes[1]} shingles{nums})"
        )


class _Text:
    __slots__ = ("numbers", "shingles")

    def __init__(self, text: str) -> None:
        norm = unicodedata.normalize("NFKC", text or "")
        self.shingles = _shingles(_WORD.findall(norm.casefold()))
        self.numbers = set(_NUMBER.findall(norm))


def _compare(a: _Text, b: _Text) -> Similarity:
    sa, sb = a.shingles, b.shingles
    if not sa or not sb:
        return Similarity(0.0, 0.0, 0, (len(sa), len(sb)), None)
    shared = len(sa & sb)
    jaccard = shared / (len(sa) + len(sb) - shared)
    containment = shared / min(len(sa), len(sb))
    overlap: float | None = None
    if len(a.numbers) >= NUMBERS_MIN and len(b.numbers) >= NUMBERS_MIN:
        overlap = len(a.numbers & b.numbers) / min(len(a.numbers), len(b.numbers))
    return Similarity(jaccard, containment, shared, (len(sa), len(sb)), overlap)


def similarity(a: str, b: str) -> Similarity:
    """The exact check applied to LSH candidates (public for the benches and tests)."""
    return _compare(_Text(a), _Text(b))


def find_exact(con: duckdb.DuckDBPyConnection, outlet: str, content_hash: str) -> int | None:
    """The outlet's article with this exact normalised text, if any (level 2).

    Per outlet on purpose: the same text at another outlet is a syndicated copy, a separate
    article that place_article puts in the original's cluster.
    """
    if not content_hash:
        return None
    # The outlet is filtered here, not in SQL: with a second predicate DuckDB drops the
    # index scan on content_hash for a scan of the table.
    rows = con.execute(
        "SELECT id, outlet FROM articles WHERE content_hash = ?", [content_hash]
    ).fetchall()
    ids = [int(i) for i, o in rows if o == outlet]
    return min(ids) if ids else None


def add_url(
    con: duckdb.DuckDBPyConnection, url: str, article_id: int, kind: str, now: datetime
) -> bool:
    """Record a URL the article is known under; False when the URL was already known."""
    row = con.execute(
        "INSERT INTO article_urls (url, article_id, kind, first_seen_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        [url, article_id, kind, now],
    ).fetchone()
    return row is not None


def record_decision(con: duckdb.DuckDBPyConnection, decision: Decision, now: datetime) -> None:
    """Store one decision (e.g. an exact duplicate seen under a new URL, level 'exact')."""
    con.execute(
        "INSERT INTO duplicate_links (article_id, matched_article_id, level, score, reason, decided_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            decision.article_id,
            decision.matched_article_id,
            decision.level,
            decision.score,
            decision.reason,
            now,
        ],
    )


def _csv(values: Sequence[int]) -> str:
    # One VARCHAR parameter split in SQL: binding 42 parameters costs ~10 ms in duckdb's
    # Python client, one string ~0.3 ms. The values are ints we produced, still bound.
    return ",".join(str(int(v)) for v in values)


_INSERT_BANDS = """
INSERT INTO lsh_bands (band, hash, article_id)
SELECT (i - 1)::SMALLINT, h, $2
FROM (SELECT unnest(l) AS h, generate_subscripts(l, 1) AS i
      FROM (SELECT string_split($1, ',')::UBIGINT[] AS l))
"""


def _store_bands(con: duckdb.DuckDBPyConnection, article_id: int, bands: Sequence[int]) -> None:
    if bands:
        con.execute(_INSERT_BANDS, [_csv(bands), article_id])


BandRows = list[tuple[int, list[int]]]  # (article id, its band hashes), deferred to the commit


def store_band_rows(con: duckdb.DuckDBPyConnection, rows: BandRows) -> None:
    """The band rows a transaction deferred (``place_article(band_rows=...)``), in one INSERT:
    one statement a transaction instead of one an article. Call before COMMIT, in the same
    transaction: the rows then commit or roll back with their articles."""
    rows = [(a, b) for a, b in rows if b]
    if rows:
        con.execute(
            "INSERT INTO lsh_bands (band, hash, article_id) "
            "SELECT unnest(string_split(?, ',')::SMALLINT[]), unnest(string_split(?, ',')::UBIGINT[]), "
            "unnest(string_split(?, ',')::BIGINT[])",
            [
                _csv([i for _, b in rows for i in range(len(b))]),
                _csv([h for _, b in rows for h in b]),
                _csv([a for a, b in rows for _ in b]),
            ],
        )


def refresh_bands(con: duckdb.DuckDBPyConnection, article_id: int, bands: Sequence[int]) -> None:
    """After a new version of the text: add the band hashes it does not have yet.

    Old bands are kept rather than deleted (a delete by article_id would scan the table);
    a stale band only yields a candidate that the exact check on the current text rejects.
    Cluster membership is not revisited: an edited article stays the story it was.
    """
    if not bands:
        return
    index = _band_index(con)
    have = index.held_by(article_id, bands)
    missing = [(i, int(h)) for i, h in enumerate(bands) if _key(h) not in have]
    if missing:
        con.execute(
            "INSERT INTO lsh_bands (band, hash, article_id) "
            "SELECT unnest(string_split(?, ',')::SMALLINT[]), unnest(string_split(?, ',')::UBIGINT[]), ?",
            [_csv([i for i, _ in missing]), _csv([h for _, h in missing]), article_id],
        )
        index.added(article_id, [h for _, h in missing])


_CANDIDATE_ROWS = """
SELECT id, outlet, text, cluster_id
FROM articles
WHERE id = ANY(string_split(?, ',')::BIGINT[])
"""


def _earlier(a: tuple[Any, Any, int], b: tuple[Any, Any, int]) -> bool:
    """(published_at, first_seen_at, id): is a earlier than b? Unknown dates sort last."""
    pa, sa, ia = a
    pb, sb, ib = b
    if pa is not None and pb is not None and pa != pb:
        return bool(pa < pb)
    if (pa is None) != (pb is None):
        return pa is not None
    if sa is not None and sb is not None and sa != sb:
        return bool(sa < sb)
    return ia < ib


def _join_cluster(
    con: duckdb.DuckDBPyConnection,
    article_id: int,
    cluster_id: int,
    published_at: datetime | None,
    now: datetime,
) -> None:
    row = con.execute(
        "SELECT c.first_article_id, c.first_published_at, a.first_seen_at "
        "FROM clusters c LEFT JOIN articles a ON a.id = c.first_article_id WHERE c.cluster_id = ?",
        [cluster_id],
    ).fetchone()
    if row is None:
        # A match placed before clustering existed: its cluster starts now, named after it.
        first = con.execute(
            "SELECT published_at, first_seen_at FROM articles WHERE id = ?", [cluster_id]
        ).fetchone()
        pub, seen = (first[0], first[1]) if first else (None, None)
        con.execute(
            "INSERT INTO clusters (cluster_id, first_article_id, first_published_at, size) "
            "VALUES (?, ?, ?, 1) ON CONFLICT DO NOTHING",
            [cluster_id, cluster_id, pub],
        )
        con.execute(
            "UPDATE articles SET cluster_id = ? WHERE id = ? AND cluster_id IS NULL",
            [cluster_id, cluster_id],
        )
        row = (cluster_id, pub, seen)
    first_id, first_pub, first_seen = row
    if _earlier((published_at, now, article_id), (first_pub, first_seen, int(first_id))):
        con.execute(
            "UPDATE clusters SET size = size + 1, first_article_id = ?, first_published_at = ? "
            "WHERE cluster_id = ?",
            [article_id, published_at, cluster_id],
        )
    else:
        con.execute("UPDATE clusters SET size = size + 1 WHERE cluster_id = ?", [cluster_id])
    con.execute("UPDATE articles SET cluster_id = ? WHERE id = ?", [cluster_id, article_id])


def place_article(
    con: duckdb.DuckDBPyConnection,
    article_id: int,
    *,
    outlet: str,
    text: str,
    bands: Sequence[int],
    published_at: datetime | None,
    now: datetime,
    band_rows: BandRows | None = None,
) -> list[Decision]:
    """Store the article's bands, find and verify its near duplicates, set its cluster.

    The article row must already exist. Returns the positive decisions (also written to
    duplicate_links), best match first; [] when the article starts its own cluster. With
    ``band_rows`` the bands are appended there for store_band_rows() instead of inserted now
    (the band index holds them at once, so later articles of the transaction find them).
    """
    matches: list[tuple[Similarity, int, str, int | None, int]] = []
    if bands:
        index = _band_index(con)
        shared = dict(index.lookup(bands, article_id).most_common(MAX_CANDIDATES))
        if shared:
            me = _Text(text)
            rows = con.execute(_CANDIDATE_ROWS, [_csv(list(shared))]).fetchall()
            for cand_id, cand_outlet, cand_text, cand_cluster in rows:
                sim = _compare(me, _Text(cand_text or ""))
                if sim.duplicate:
                    matches.append(
                        (sim, int(cand_id), cand_outlet, cand_cluster, int(shared[cand_id]))
                    )
        if band_rows is None:
            _store_bands(con, article_id, bands)
        else:
            band_rows.append((article_id, [int(b) for b in bands]))
        index.added(article_id, bands)
    if not matches:
        con.execute(
            "INSERT INTO clusters (cluster_id, first_article_id, first_published_at, size) "
            "VALUES (?, ?, ?, 1)",  # a new article's id: no conflict possible, and ON CONFLICT costs 3 ms
            [article_id, article_id, published_at],
        )
        con.execute("UPDATE articles SET cluster_id = ? WHERE id = ?", [article_id, article_id])
        return []
    matches.sort(key=lambda m: (-m[0].containment, -m[0].jaccard, m[1]))
    best = matches[0]
    target = int(best[3]) if best[3] is not None else best[1]
    _join_cluster(con, article_id, target, published_at, now)
    decisions = []
    for sim, cand_id, cand_outlet, cand_cluster, n_bands in matches:
        where = "same outlet" if cand_outlet == outlet else f"outlet {cand_outlet}"
        cluster = int(cand_cluster) if cand_cluster is not None else cand_id
        verdict = (
            f"joined cluster {target}"
            if cluster == target
            else f"in cluster {cluster}, not merged (joined cluster {target})"
        )
        kind = (
            "identical text"
            if sim.jaccard >= 0.999
            else (
                "near-identical text"
                if sim.jaccard >= JACCARD_MIN
                else "contained (truncated copy)"
            )
        )
        reason = f"{kind}, {where}: {sim.describe()}, {n_bands}/{len(bands)} bands; {verdict}"
        decisions.append(Decision(article_id, cand_id, "near", round(sim.score, 4), reason))
    con.execute(
        "INSERT INTO duplicate_links (article_id, matched_article_id, level, score, reason, decided_at) "
        "SELECT ?, unnest(string_split(?, ',')::BIGINT[]), 'near', "
        "unnest(string_split(?, ',')::DOUBLE[]), unnest(?::VARCHAR[]), ?",
        [
            article_id,
            _csv([d.matched_article_id for d in decisions]),
            ",".join(repr(float(d.score or 0.0)) for d in decisions),
            [d.reason for d in decisions],
            now,
        ],
    )
    return decisions
