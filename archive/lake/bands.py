"""Near-duplicate clustering on the lake: the file backend's decisions (archive/dedup.py:
verify, decide_near, grow) on candidates found in PostgreSQL.

Why PostgreSQL: writers on several machines ingest at once, and a band lookup must see what
the others claimed. ``mediawatch.lsh_bands`` (band key -> article, indexed) is claimed with
the batch, under one transaction lock and a check that no key the batch looked up gained an
article meanwhile (archive/lake/claims.py: the second of two writers placing copies of one
story at once looks again, and waits while the first one's batch is in flight). A cluster's
head (first member, size) is claimed as ``(cluster, size)`` in ``mediawatch.cluster_heads``,
so two writers cannot both add its third member; the lake gets append-only
``cluster_members`` / ``cluster_heads`` rows, read through the ``articles`` and ``clusters``
views. Candidate texts and clusters are read from the lake: a band claim of a settled batch
names an article the lake has.

Same rules as the file's band index (archive/bandindex.py): keys are the low 32 bits of the
band hashes, a key held by more than ``HOT_BAND`` articles is skipped, the ``MAX_CANDIDATES``
sharing the most keys are checked exactly on their current text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import psycopg

from archive.bandindex import HOT_BAND, band_key
from archive.batch import Candidate, Cluster
from archive.dedup import MAX_CANDIDATES, Decision, decide_near, grow, verify
from archive.lake.claims import Known, Looked


def keys_of(bands: Sequence[int]) -> list[int]:
    """The index keys of a text's band hashes, in band order (a repeated key counts twice,
    as in the file's index)."""
    return [band_key(b) for b in bands]


@dataclass
class Neighbours:
    """What one batch's texts may match: the band keys it looked up, the candidates' texts
    and clusters, the clusters' heads; the batch's own articles are added as it goes."""

    pg: psycopg.Connection[Any]
    lake: duckdb.DuckDBPyConnection
    known: Known
    looked: Looked = field(default_factory=dict)  # band key -> articles seen in PostgreSQL
    hot: set[int] = field(default_factory=set)
    holders: dict[int, set[int]] = field(default_factory=dict)  # band key -> articles, now
    texts: dict[int, Candidate] = field(default_factory=dict)
    heads: dict[int, Cluster] = field(default_factory=dict)

    def shared(self, bands: Sequence[int], exclude: int) -> dict[int, int]:
        """Article id -> keys shared with these bands, for the MAX_CANDIDATES sharing most."""
        found: Counter[int] = Counter()
        for key in keys_of(bands):
            holders = self.holders.get(key, set())
            if key in self.hot or len(holders) > HOT_BAND:
                continue
            found.update(holders)
        found.pop(exclude, None)
        return dict(found.most_common(MAX_CANDIDATES))

    def place(
        self, row: dict[str, Any], bands: Sequence[int], now: datetime
    ) -> tuple[int, Cluster, list[Decision]]:
        """A new article's cluster (its own, or its best match's), that cluster's head after
        it joined, and the decisions (archive.dedup.place_article's, on the lake's claims);
        `row`: its article_texts row."""
        article_id, outlet, text = (
            int(row["article_id"]),
            str(row["outlet"]),
            str(row["text"] or ""),
        )
        published_at: datetime | None = row["published_at"]
        matches = []
        if bands:
            shared = self.shared(bands, article_id)
            if shared:
                matches = verify(text, self.candidates(shared), shared)
        self.holds(article_id, bands)
        decisions: list[Decision] = []
        if not matches:
            cluster_id, head = article_id, Cluster(article_id, published_at, now, 1, new=True)
        else:
            cluster_id, decisions = decide_near(article_id, outlet, len(bands), matches)
            head = self.head(cluster_id)
            grow(head, article_id, published_at, now)
        self.heads[cluster_id] = head
        self.texts[article_id] = Candidate(outlet, text, cluster_id)
        return cluster_id, head, decisions

    def holds(self, article_id: int, bands: Sequence[int]) -> None:
        """This batch gives these band keys to the article (a new text, or a new version's)."""
        for key in keys_of(bands):
            self.holders.setdefault(key, set()).add(article_id)

    def edited(self, article_id: int, text: str) -> None:
        """A new version in this batch: later texts of the batch are checked against it."""
        if article_id in self.texts:
            self.texts[article_id].text = text

    def candidates(self, ids: Iterable[int]) -> dict[int, Candidate]:
        """Candidate id -> its outlet, current text and cluster (read from the lake once)."""
        wanted = sorted(set(ids))
        missing = [i for i in wanted if i not in self.texts]
        if missing:
            self.texts.update(lake_candidates(self.lake, missing))
        return {i: self.texts[i] for i in wanted if i in self.texts}

    def head(self, cluster_id: int) -> Cluster:
        if cluster_id not in self.heads:
            self.heads.update(heads(self.pg, [cluster_id], self.known))
        if cluster_id not in self.heads:
            raise RuntimeError(f"cluster {cluster_id} has no head in mediawatch.cluster_heads")
        return self.heads[cluster_id]


def lookup(
    pg: psycopg.Connection[Any],
    lake: duckdb.DuckDBPyConnection,
    known: Known,
    texts: Sequence[Sequence[int]],
) -> Neighbours:
    """The neighbours of a batch's texts (their band hashes): band holders from PostgreSQL,
    then the candidates' texts and clusters from the lake and their heads from PostgreSQL,
    in one query each; Busy (known.final) when any of it is a batch still in flight."""
    n = Neighbours(pg, lake, known)
    keys = sorted({k for bands in texts for k in keys_of(bands)})
    if not keys:
        return n
    n.hot = {
        int(k)
        for (k,) in pg.execute(
            "SELECT band_key FROM mediawatch.lsh_bands WHERE band_key = ANY(%s) "
            "GROUP BY band_key HAVING count(*) > %s",
            [keys, HOT_BAND],
        )
    }
    cold = [k for k in keys if k not in n.hot]
    seen: dict[int, set[int]] = {k: set() for k in cold}
    for key, article_id, batch in pg.execute(
        "SELECT band_key, article_id, batch FROM mediawatch.lsh_bands WHERE band_key = ANY(%s)",
        [cold],
    ):
        known.final(batch)
        seen[int(key)].add(int(article_id))
    n.looked = {k: frozenset(v) for k, v in seen.items()}
    n.holders = {k: set(v) for k, v in seen.items() if v}
    wanted = {a for bands in texts for a in n.shared(bands, -1)}
    found = n.candidates(wanted)
    clusters = {c.cluster_id for c in found.values() if c.cluster_id is not None}
    n.heads.update(heads(pg, clusters, known))
    return n


def lake_candidates(lake: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, Candidate]:
    """Article id -> outlet, current text and cluster, of the articles the lake has."""
    inlined = ", ".join(str(int(i)) for i in ids)  # int() makes inlining safe
    rows = lake.execute(
        f"""WITH cur AS (
                SELECT article_id, outlet, text FROM article_texts WHERE article_id IN ({inlined})
                QUALIFY row_number() OVER (PARTITION BY article_id
                                           ORDER BY version DESC, recorded_at DESC) = 1),
            cl AS (SELECT article_id, arg_max(cluster_id, decided_at) AS cluster_id
                   FROM cluster_members WHERE article_id IN ({inlined}) GROUP BY article_id)
            SELECT cur.article_id, cur.outlet, cur.text, cl.cluster_id
            FROM cur LEFT JOIN cl USING (article_id)"""
    ).fetchall()
    return {
        int(a): Candidate(str(o), str(t or ""), int(c) if c is not None else None)
        for a, o, t, c in rows
    }


def heads(
    pg: psycopg.Connection[Any], cluster_ids: Iterable[int], known: Known
) -> dict[int, Cluster]:
    """Cluster id -> its current head (the claim of its largest size); Busy when that claim's
    batch is still in flight."""
    out: dict[int, Cluster] = {}
    for cid, size, first, published, first_seen, batch in pg.execute(
        "SELECT DISTINCT ON (cluster_id) cluster_id, size, first_article_id, first_published_at, "
        "first_seen_at, batch FROM mediawatch.cluster_heads WHERE cluster_id = ANY(%s) "
        "ORDER BY cluster_id, size DESC",
        [sorted(set(cluster_ids))],
    ):
        known.final(batch)
        out[int(cid)] = Cluster(int(first), published, first_seen, int(size))
    return out
