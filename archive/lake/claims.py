"""The lake ingest's PostgreSQL side: what is already known (record ids, URLs, articles and
their current version, an outlet's texts), the claims of a batch, and settling the batches
a dead writer left in flight. The order and the recovery are in archive/lake/ingest.py.

Every claim row names its batch; a batch listed in mediawatch.batches is in flight, and its
owner is its writer's PostgreSQL application_name: alive while any session of that name is
connected (a frozen process keeps its sessions), dead once none is (a killed process's
sessions end with it, its catalog commit included, so the lake then tells what happened)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

LOCK_TIMEOUT = "10s"  # a claim waits this long for another writer's uncommitted claim of a key
# Claim tables, in the one order every writer claims them (sorted keys within), so two writers
# never wait on each other in a cycle; with their key columns and what RETURNING reports.
CLAIMS = {
    "page_records": ("record_id, page_id, batch", "record_id"),
    "article_keys": (
        "canonical_url, article_id, outlet, first_seen_at, url, batch",
        "canonical_url",
    ),
    "article_urls": ("url, article_id, kind, first_seen_at, batch", "url"),
    "article_versions": ("article_id, version, content_hash, batch", "article_id, version"),
    "content_hashes": (
        "outlet, content_hash, article_id, batch",
        "outlet, content_hash, article_id",
    ),
    "cluster_heads": (
        "cluster_id, size, first_article_id, first_published_at, first_seen_at, batch",
        "cluster_id, size",
    ),
}
_TYPES = {
    "page_records": ("text", "bigint", "text"),
    "article_keys": ("text", "bigint", "text", "timestamptz", "text", "text"),
    "article_urls": ("text", "bigint", "text", "timestamptz", "text"),
    "article_versions": ("bigint", "integer", "text", "text"),
    "content_hashes": ("text", "text", "bigint", "text"),
    "cluster_heads": ("bigint", "integer", "bigint", "timestamptz", "timestamptz", "text"),
}
# Band keys -> articles (archive/lake/bands.py): not unique, so never a Conflict of their own;
# added last, under BANDS_LOCK, after checking that the keys the batch looked up gained no
# article meanwhile (two writers placing copies of one story at once: the second looks again).
BANDS_LOCK = 0x6D772D62_616E6473 & 0x7FFFFFFFFFFFFFFF  # "mw-bands": a transaction lock
Looked = dict[int, frozenset[int]]  # band key -> the articles the lookup saw holding it


class Busy(Exception):
    """A claim this batch needs belongs to another writer's batch still in flight (a live
    writer, maybe frozen): the segment waits in the spool and is tried again later."""


class Conflict(Exception):
    """Another writer claimed a key between our lookup and our claim: look up again."""


def writer_token() -> str:
    """A name unique to this writer process (host, pid, random), at most 63 bytes."""
    return f"mw-{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def connect(libpq: str) -> psycopg.Connection[Any]:
    con = psycopg.connect(libpq, autocommit=True)
    con.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    return con


@dataclass
class Current:
    """What PostgreSQL knows of an article: its identity and its current text version."""

    outlet: str
    url: str | None
    canonical_url: str
    first_seen_at: datetime
    version: int
    content_hash: str | None


@dataclass
class Known:
    records: set[str] = field(default_factory=set)
    urls: dict[str, int] = field(default_factory=dict)  # url -> article id
    articles: dict[int, Current] = field(default_factory=dict)
    # (outlet, hash) -> the outlet's articles that had this text (exact() keeps the current ones)
    hashes: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    busy: dict[str, str] = field(default_factory=dict)  # batches in flight at the lookup -> owner

    def final(self, batch: Any) -> bool:
        """True for a claim of a settled batch (or of none); Busy for one still in flight."""
        if batch is not None and str(batch) in self.busy:
            raise Busy(f"batch {batch} of {self.busy[str(batch)]} is still in flight")
        return True

    def exact(self, outlet: str, content_hash: str) -> int | None:
        """The outlet's first article whose current text this is (archive.dedup.find_exact)."""
        ids = [
            a
            for a in self.hashes.get((outlet, content_hash), ())
            if a in self.articles and self.articles[a].content_hash == content_hash
        ]
        return min(ids) if ids else None


def in_flight(pg: psycopg.Connection[Any]) -> dict[str, str]:
    """batch -> owner, of the batches not settled yet."""
    return {str(b): str(o) for b, o in pg.execute("SELECT batch, owner FROM mediawatch.batches")}


def dead_batches(pg: psycopg.Connection[Any]) -> list[str]:
    """Batches in flight whose owner has no session left: it died, and what it committed to
    the lake is all it will ever commit."""
    rows = pg.execute(
        "SELECT batch FROM mediawatch.batches b WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_stat_activity a WHERE a.application_name = b.owner) ORDER BY batch"
    ).fetchall()
    return [str(r[0]) for r in rows]


def lookup(
    pg: psycopg.Connection[Any],
    record_ids: Sequence[str],
    urls: Sequence[str],
    hashes: Sequence[tuple[str, str]],
) -> Known:
    """What the claims say of these record ids, URLs and (outlet, content hash) pairs; Busy
    when any of it is a claim of a batch still in flight."""
    known = Known(busy=in_flight(pg))
    final = known.final

    for record_id, batch in pg.execute(
        "SELECT record_id, batch FROM mediawatch.page_records WHERE record_id = ANY(%s)",
        [list(record_ids)],
    ):
        if final(batch):
            known.records.add(str(record_id))
    for url, article_id, batch in pg.execute(
        "SELECT url, article_id, batch FROM mediawatch.article_urls WHERE url = ANY(%s)",
        [list(urls)],
    ):
        if final(batch):
            known.urls[str(url)] = int(article_id)
    for outlet, content_hash, article_id, batch in pg.execute(
        "SELECT h.outlet, h.content_hash, h.article_id, h.batch FROM mediawatch.content_hashes h "
        "JOIN unnest(%s::text[], %s::text[]) AS w(outlet, content_hash) USING (outlet, content_hash)",
        [[o for o, _ in hashes], [h for _, h in hashes]],
    ):
        if final(batch):
            known.hashes.setdefault((str(outlet), str(content_hash)), set()).add(int(article_id))
    ids = sorted(set(known.urls.values()).union(*known.hashes.values()))
    for row in pg.execute(
        """SELECT k.article_id, k.outlet, k.url, k.canonical_url, k.first_seen_at, k.batch,
                  v.version, v.content_hash, v.batch
           FROM mediawatch.article_keys k
           JOIN LATERAL (SELECT version, content_hash, batch FROM mediawatch.article_versions
                         WHERE article_id = k.article_id ORDER BY version DESC LIMIT 1) v ON true
           WHERE k.article_id = ANY(%s)""",
        [ids],
    ):
        article_id, outlet, url, canonical, first_seen, key_batch, version, content_hash, vb = row
        final(key_batch)
        final(vb)
        known.articles[int(article_id)] = Current(
            str(outlet), url, str(canonical), first_seen, int(version), content_hash
        )
    return known


def next_ids(pg: psycopg.Connection[Any], sequence: str, n: int) -> list[int]:
    """n fresh ids of a sequence (article_id_seq, page_id_seq), ascending."""
    if n <= 0:
        return []
    rows = pg.execute(
        f"SELECT nextval('mediawatch.{sequence}') FROM generate_series(1, %s)", [n]
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def claim(
    pg: psycopg.Connection[Any],
    batch: str,
    owner: str,
    rows: dict[str, list[tuple[Any, ...]]],
    looked: Looked | None = None,
) -> None:
    """One transaction: the batch goes in flight and every claim row is inserted, sorted by
    key; Conflict (all rolled back) when any key is already someone's, or when a band key in
    `looked` gained an article since the lookup."""
    bands = sorted(set(rows.get("lsh_bands", [])))
    with pg.transaction():
        pg.execute("INSERT INTO mediawatch.batches (batch, owner) VALUES (%s, %s)", [batch, owner])
        if bands:  # first: a writer waiting here holds no other claim another one may wait on
            pg.execute("SELECT pg_advisory_xact_lock(%s)", [BANDS_LOCK])
            _check_bands(pg, looked or {})
        for table, (columns, key) in CLAIMS.items():
            wanted = sorted(set(rows.get(table, [])))
            if not wanted:
                continue
            arrays = [[r[i] for r in wanted] for i in range(len(_TYPES[table]))]
            unnest = ", ".join(f"%s::{t}[]" for t in _TYPES[table])
            got = pg.execute(
                f"INSERT INTO mediawatch.{table} ({columns}) SELECT * FROM unnest({unnest}) "
                f"AS c({columns}) ORDER BY {key} ON CONFLICT DO NOTHING RETURNING 1",
                arrays,
            ).fetchall()
            if len(got) != len(wanted):
                raise Conflict(f"{len(wanted) - len(got)} {table} claimed by another writer")
        if bands:
            pg.execute(
                "INSERT INTO mediawatch.lsh_bands (band_key, article_id, batch) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) "
                "ORDER BY 1, 2 ON CONFLICT DO NOTHING",
                [[r[0] for r in bands], [r[1] for r in bands], [r[2] for r in bands]],
            )


def _check_bands(pg: psycopg.Connection[Any], looked: Looked) -> None:
    """Conflict when a looked-up band key now names an article the lookup did not see: under
    BANDS_LOCK every band claim committed before ours is visible here."""
    if not looked:
        return
    for key, article_id in pg.execute(
        "SELECT band_key, article_id FROM mediawatch.lsh_bands WHERE band_key = ANY(%s)",
        [sorted(looked)],
    ):
        if int(article_id) not in looked[int(key)]:
            raise Conflict(f"band key {key} gained article {article_id} since the lookup")


def abandon(pg: psycopg.Connection[Any], batch: str) -> None:
    """A dead writer's batch that never reached the lake: its claims go, as if never made."""
    with pg.transaction():
        for table in (*CLAIMS, "lsh_bands"):
            pg.execute(f"DELETE FROM mediawatch.{table} WHERE batch = %s", [batch])
        pg.execute("DELETE FROM mediawatch.batches WHERE batch = %s", [batch])


def batch_articles(pg: psycopg.Connection[Any], batch: str) -> list[int]:
    """The articles whose texts a batch claimed (new ones and new versions)."""
    rows = pg.execute(
        "SELECT DISTINCT article_id FROM mediawatch.article_versions WHERE batch = %s", [batch]
    ).fetchall()
    return [int(r[0]) for r in rows]


def settle(pg: psycopg.Connection[Any], batch: str) -> bool:
    """End a batch whose lake commit is done (in the transaction the caller opened, with the
    state changes it carries); False when someone settled it already."""
    row = pg.execute(
        "DELETE FROM mediawatch.batches WHERE batch = %s RETURNING 1", [batch]
    ).fetchone()
    return row is not None
