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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from archive.bandindex import HOT_BAND, BandIndex, reset_band_indexes
from archive.bandindex import band_index as _band_index
from archive.bandindex import band_key as _key
from archive.batch import Candidate, Cluster, WriteBatch, content_key, csv_ints, store_band_rows

__all__ = [
    "CONTAINMENT_MIN",
    "HOT_BAND",
    "JACCARD_MIN",
    "BandIndex",
    "Decision",
    "add_url",
    "candidates",
    "decide_near",
    "ensure_indexes",
    "find_exact",
    "grow",
    "place_article",
    "record_decision",
    "refresh_bands",
    "reset_band_indexes",
    "similarity",
    "store_band_rows",
    "verify",
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
    # find_exact: without it every new article scans the articles (archive.batch.content_key
    # says why a BIGINT). (No index on lsh_bands: see the module docstring.)
    "CREATE INDEX IF NOT EXISTS articles_content_key_idx ON articles (content_key)",
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


# (similarity, candidate id, its outlet, its cluster, bands shared with it)
Match = tuple[Similarity, int, str, int | None, int]


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
    # The outlet and the whole hash are compared here, not in SQL: with a second predicate
    # DuckDB drops the index scan for a scan of the table.
    key = content_key(content_hash)
    if key is None:  # not a hash of ours (hex): no key, the table scanned
        rows = con.execute(
            "SELECT id, outlet, content_hash FROM articles WHERE content_hash = ?", [content_hash]
        ).fetchall()
    else:
        rows = con.execute(
            "SELECT id, outlet, content_hash FROM articles WHERE content_key = ?", [key]
        ).fetchall()
    ids = [int(i) for i, o, h in rows if o == outlet and h == content_hash]
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


def record_decision(
    con: duckdb.DuckDBPyConnection,
    decision: Decision,
    now: datetime,
    batch: WriteBatch | None = None,
) -> None:
    """Store one decision (e.g. an exact duplicate seen under a new URL, level 'exact'), or
    hand it to the transaction's batch."""
    work = WriteBatch() if batch is None else batch
    work.links.append(_link_row(decision, now))
    if batch is None:
        work.flush(con)


_csv = csv_ints


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


def candidates(
    con: duckdb.DuckDBPyConnection, bands: Sequence[int], exclude: int
) -> dict[int, int]:
    """Article id -> bands shared with these, for the MAX_CANDIDATES sharing the most."""
    return dict(_band_index(con).lookup(bands, exclude).most_common(MAX_CANDIDATES))


def _link_row(d: Decision, now: datetime) -> list[Any]:
    return [d.article_id, d.matched_article_id, d.level, d.score, d.reason, now]


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
    batch: WriteBatch,
    article_id: int,
    cluster_id: int,
    published_at: datetime | None,
    now: datetime,
) -> None:
    batch.load_clusters(con, [cluster_id])
    state = batch.clusters.get(cluster_id)
    if state is None:
        # A match placed before clustering existed: its cluster starts now, named after it.
        first = batch.candidates(con, [cluster_id]).get(cluster_id)
        row = con.execute(
            "SELECT published_at, first_seen_at FROM articles WHERE id = ?", [cluster_id]
        ).fetchone()
        pub, seen = (row[0], row[1]) if row else (None, None)
        state = batch.clusters[cluster_id] = Cluster(cluster_id, pub, seen, 1, new=True)
        if first is not None and first.cluster_id is None:
            batch.set_cluster(cluster_id, cluster_id)
    grow(state, article_id, published_at, now)
    state.dirty = True
    batch.set_cluster(article_id, cluster_id)


def grow(state: Cluster, article_id: int, published_at: datetime | None, now: datetime) -> None:
    """A new member joins the cluster: one more, and its first member if it came earlier
    (both backends keep their cluster heads by this rule)."""
    if _earlier(
        (published_at, now, article_id),
        (state.first_published_at, state.first_seen_at, state.first_article_id),
    ):
        state.first_article_id, state.first_published_at = article_id, published_at
        state.first_seen_at = now
    state.size += 1


def place_article(
    con: duckdb.DuckDBPyConnection,
    article_id: int,
    *,
    outlet: str,
    text: str,
    bands: Sequence[int],
    published_at: datetime | None,
    now: datetime,
    batch: WriteBatch | None = None,
) -> list[Decision]:
    """Store the article's bands, find and verify its near duplicates, set its cluster.

    Returns the positive decisions (also written to duplicate_links), best match first; []
    when the article starts its own cluster. Without ``batch`` the article row must exist
    and everything is written before returning; with it (the ingest's transaction) the rows
    go to the batch, written at its flush, and the band index holds the bands at once, so
    later articles of the transaction find them.
    """
    own = batch is None
    work = WriteBatch() if batch is None else batch
    matches: list[Match] = []
    if bands:
        shared = candidates(con, bands, article_id)
        if shared:
            matches = verify(text, work.candidates(con, shared), shared)
        work.band_rows.append((article_id, [int(b) for b in bands]))
        _band_index(con).added(article_id, bands)
    decisions: list[Decision] = []
    if not matches:
        # a new article's id: no cluster row can exist yet
        work.clusters[article_id] = Cluster(article_id, published_at, now, 1, new=True)
        work.set_cluster(article_id, article_id)
    else:
        decisions = _join_best(
            con, work, article_id, outlet, len(bands), matches, published_at, now
        )
    if own:
        work.flush(con)
    return decisions


def _join_best(
    con: duckdb.DuckDBPyConnection,
    batch: WriteBatch,
    article_id: int,
    outlet: str,
    n_bands: int,
    matches: list[Match],
    published_at: datetime | None,
    now: datetime,
) -> list[Decision]:
    """Join the cluster of the best match; every match is a decision with its reason."""
    target, decisions = decide_near(article_id, outlet, n_bands, matches)
    _join_cluster(con, batch, article_id, target, published_at, now)
    batch.links.extend(_link_row(d, now) for d in decisions)
    return decisions


def verify(text: str, cands: Mapping[int, Candidate], shared: Mapping[int, int]) -> list[Match]:
    """The exact check of the LSH candidates: those whose stored text is a near duplicate."""
    me = _Text(text)
    matches: list[Match] = []
    for cand_id, cand in cands.items():
        sim = _compare(me, _Text(cand.text))
        if sim.duplicate:
            matches.append((sim, cand_id, cand.outlet, cand.cluster_id, shared[cand_id]))
    return matches


def decide_near(
    article_id: int, outlet: str, n_bands: int, matches: list[Match]
) -> tuple[int, list[Decision]]:
    """The cluster a new article joins (its best match's) and one decision per match, best
    first, with its reason: the same for both backends, given the same matches."""
    matches = sorted(matches, key=lambda m: (-m[0].containment, -m[0].jaccard, m[1]))
    best = matches[0]
    target = int(best[3]) if best[3] is not None else best[1]
    decisions = []
    for sim, cand_id, cand_outlet, cand_cluster, n_shared in matches:
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
        reason = f"{kind}, {where}: {sim.describe()}, {n_shared}/{n_bands} bands; {verdict}"
        decisions.append(Decision(article_id, cand_id, "near", round(sim.score, 4), reason))
    return target, decisions
