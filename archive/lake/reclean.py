"""`mediawatch reprocess` on a lake. Lake tables are append-only, so a re-clean appends and
updates nothing: for each article version it rewrites, a new article_texts row of the same
article and version (a later recorded_at, which the articles and article_versions views
take), the blocks it removed in removed_block_log (stamped with that time) and a recleans
row (the record of the re-clean, which the removed_blocks view follows), all in one lake
transaction per batch: a kill leaves every article re-cleaned or not, never half.

PostgreSQL follows in the lake writer's order (claims -> lake -> settle, archive/lake/ingest.py):
the batch is listed in mediawatch.reclean_batches under this process's name before the lake
commit; after it, one transaction stores the new content hashes (what the ingest compares a
page fetched again with, and finds exact duplicates by), updates the search index and ends
the listing. A listing whose owner died is settled by the next re-clean: from the lake when
its recleans rows are there, dropped when they are not. Between the lake commit and the
settle (milliseconds) an ingest of the same article still compares with the old hash.

The outlet's learned boilerplate comes from PostgreSQL (archive/lake/boilerplate.py), as the
crawls load it; `reclean_learned` finds the articles still holding a learned paragraph in the
lake and clears the queue there.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from archive.ingest import ARTICLE_COLUMNS, article_values
from archive.lake import boilerplate as lake_boilerplate
from archive.lake import search_index as lake_search
from archive.lake.bands import keys_of
from archive.lake.connect import connect_lake_read
from archive.lake.ingest import LakeWriter
from archive.lake.rows import append
from archive.lake.store import LakeStore
from archive.reclean import Rewrite, StoredPage
from archive.records import Article

logger = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS mediawatch.reclean_batches (
    batch TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
Hash = tuple[int, int, str, str]  # (article id, version, outlet, content hash)


class LakeRecleaner:
    """A re-clean's reads and writes on a lake, over the connections of the lake's Store
    (archive/lake/store.py: a lost connection is one ArchiveError line)."""

    lake = True

    def __init__(self, url: str) -> None:
        self.store = LakeStore(url)
        # a lake nobody made is said so (as by every reader), not created by a re-clean
        connect_lake_read(self.store.target).close()
        try:
            with self.store.session() as writer:
                writer.pg.execute(DDL)
                self.settle_dead()
        except BaseException:
            self.store.close()
            raise

    @property
    def writer(self) -> LakeWriter:
        return self.store.writer()

    def close(self) -> None:
        self.store.close()

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The lake connection in one read transaction: a batch's pages and their removed
        blocks come from one snapshot."""
        with self.store.session() as writer:
            writer.lake.execute("BEGIN")
            try:
                yield writer.lake
            finally:
                writer.lake.execute("ROLLBACK")

    def boilerplate(self, con: duckdb.DuckDBPyConnection, outlet: str) -> frozenset[str]:
        return lake_boilerplate.load(self.writer.pg, outlet)

    def learned_due(self) -> list[tuple[str, str, str]]:
        """(key, outlet, sample) of learned paragraphs archived articles may still hold."""
        with self.store.session() as writer:
            rows = writer.pg.execute(
                "SELECT para_key, outlet, sample FROM mediawatch.boilerplate_due "
                "ORDER BY due_since, para_key LIMIT 50"
            ).fetchall()
        return [(str(k), str(o), str(smp)) for k, o, smp in rows]

    def holding(self, outlet: str, samples: list[str]) -> list[int]:
        from archive.boilerplate import articles_holding  # the same SQL, on the lake's views

        with self.reading() as con:
            return articles_holding(con, outlet, samples)

    def learned_done(self, outlet: str, keys: list[str], changed: int, sample: str) -> None:
        """Those paragraphs re-cleaned: off the queue (PostgreSQL), the re-clean in the lake's
        daemon_events."""
        from archive.boilerplate import reclean_message
        from archive.lake.daemon_state import record_events

        with self.store.session() as writer:
            if changed:
                at = datetime.now(UTC)
                message = reclean_message(changed, sample)
                record_events(writer, [(at, "boilerplate_reclean", outlet, message)])
            with writer.pg.transaction():
                writer.pg.execute(
                    "DELETE FROM mediawatch.boilerplate_due WHERE para_key = ANY(%s)", [keys]
                )

    # writing ----------------------------------------------------------------------------------

    def write(
        self, rewrites: list[Rewrite], unchanged: list[StoredPage], version: str, now: datetime
    ) -> None:
        """One batch: rewrites, and the current texts this version made again unchanged
        (appended only where another version had made them, as the file's extractor_version)."""
        with self.store.session():
            self._write(rewrites, unchanged, version, now)

    def _write(
        self, rewrites: list[Rewrite], unchanged: list[StoredPage], version: str, now: datetime
    ) -> None:
        remade = [p for p in unchanged if p.current and p.extractor_version != version]
        if not rewrites and not remade:
            return
        batch = uuid.uuid4().hex
        pg, lake = self.writer.pg, self.writer.lake
        stored = _texts(
            lake, [(p.article_id, p.version) for p in remade + [r.page for r in rewrites]]
        )
        texts: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        marks: list[dict[str, Any]] = []
        items: list[tuple[StoredPage, Article | None, list[dict[str, Any]], str | None]] = [
            *((p, None, [_block(b) for b in p.removed], p.content_hash) for p in remade),
            *((r.page, r.article, [dict(b) for b in r.removed], r.content_hash) for r in rewrites),
        ]
        for page, article, removed, content_hash in items:
            row = dict(stored[(page.article_id, page.version)])
            if article is not None:
                row.update(zip(ARTICLE_COLUMNS, article_values(article), strict=True))
                row["promo_flagged"] = bool(article.get("promo_flagged"))
            row.update(content_hash=content_hash, extractor_version=version, recorded_at=now)
            texts.append(row)
            key = {"article_id": page.article_id, "version": page.version}
            blocks += [{**key, **b, "cleaned_at": now} for b in removed]
            marks.append({**key, "batch": batch, "content_hash": content_hash,
                          "extractor_version": version, "recleaned_at": now})  # fmt: skip
        with pg.transaction():
            pg.execute(  # listed before the lake commit: a death after it is settled from the lake
                "INSERT INTO mediawatch.reclean_batches (batch, owner) VALUES (%s, %s)",
                [batch, self.writer.owner],
            )
            _add_band_keys(pg, rewrites)
        try:
            lake.execute("BEGIN")
            append(lake, "article_texts", texts)
            append(lake, "removed_blocks", blocks)
            append(lake, "recleans", marks)
            lake.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed commit ended it already
                lake.execute("ROLLBACK")
            self.resolve(batch)  # a commit that raised may still have landed
            raise
        hashes = [
            (r.page.article_id, r.page.version, r.page.outlet, r.content_hash) for r in rewrites
        ]
        current = {(r.page.article_id, r.page.version) for r in rewrites if r.page.current}
        index = lake_search.rows_of(t for t in texts if (t["article_id"], t["version"]) in current)
        self._settle(batch, hashes, lambda: lake_search.index_articles(pg, index, self._prefix))

    @property
    def _prefix(self) -> str:
        return self.writer.search_prefix

    def _settle(self, batch: str, hashes: Sequence[Hash], index: Callable[[], int]) -> None:
        """PostgreSQL after the lake commit, in one transaction: the hashes, the index, the end
        of the listing (rows in key order, as the ingest's claims)."""
        pg = self.writer.pg
        with pg.transaction():
            for article_id, version, _outlet, content_hash in sorted(hashes):
                pg.execute(
                    "UPDATE mediawatch.article_versions SET content_hash = %s "
                    "WHERE article_id = %s AND version = %s",
                    [content_hash, article_id, version],
                )
            pairs = sorted({(o, h, a) for a, _, o, h in hashes})
            if pairs:
                pg.execute(
                    "INSERT INTO mediawatch.content_hashes (outlet, content_hash, article_id) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
                    "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING",
                    [[o for o, _, _ in pairs], [h for _, h, _ in pairs], [a for _, _, a in pairs]],
                )
            index()
            pg.execute("DELETE FROM mediawatch.reclean_batches WHERE batch = %s", [batch])

    # recovery ---------------------------------------------------------------------------------

    def settle_dead(self) -> int:
        """Settle the re-clean batches of processes that died between listing and settling."""
        rows = self.writer.pg.execute(
            "SELECT batch FROM mediawatch.reclean_batches b WHERE NOT EXISTS "
            "(SELECT 1 FROM pg_stat_activity a WHERE a.application_name = b.owner) ORDER BY batch"
        ).fetchall()
        for (batch,) in rows:
            self.resolve(str(batch))
        return len(rows)

    def resolve(self, batch: str) -> None:
        """A batch whose commit failed or whose owner is gone: settled from the lake when its
        recleans rows are there, its listing dropped when they are not."""
        pg, lake = self.writer.pg, self.writer.lake
        marks = lake.execute(
            "SELECT r.article_id, r.version, t.outlet, r.content_hash FROM recleans r "
            "JOIN article_texts t ON t.article_id = r.article_id AND t.version = r.version "
            "AND t.recorded_at = r.recleaned_at WHERE r.batch = ?",
            [batch],
        ).fetchall()
        if not marks:
            pg.execute("DELETE FROM mediawatch.reclean_batches WHERE batch = %s", [batch])
            logger.warning("re-clean batch %s never reached the lake: dropped", batch)
            return
        hashes = [(int(a), int(v), str(o), str(h)) for a, v, o, h in marks]
        ids = sorted({a for a, _, _, _ in hashes})
        self._settle(
            batch, hashes, lambda: lake_search.index_from_lake(pg, lake, ids, self._prefix)
        )
        logger.info("re-clean batch %s was committed by a process that died: settled", batch)


def _add_band_keys(pg: Any, rewrites: list[Rewrite]) -> None:
    """The new current texts' band keys, as the file's re-clean adds them (dedup.refresh_bands:
    a later copy of the new text finds the article; the old keys stay, only giving candidates
    the exact check rejects). Added before the lake commit, so a death never loses them; a
    re-clean that never lands leaves keys of that kind too."""
    pairs = sorted(
        {(k, r.page.article_id) for r in rewrites if r.page.current for k in keys_of(r.bands)}
    )
    if pairs:
        pg.execute(
            "INSERT INTO mediawatch.lsh_bands (band_key, article_id) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING",
            [[k for k, _ in pairs], [a for _, a in pairs]],
        )


def _block(b: tuple[int, str, str, str]) -> dict[str, Any]:
    position, kind, rule, text = b
    return {"position": position, "kind": kind, "rule": rule, "text": text}


def _texts(
    lake: duckdb.DuckDBPyConnection, keys: list[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """The newest stored article_texts row of each (article id, version), as column -> value."""
    cursor = lake.execute(
        "SELECT * FROM article_texts WHERE article_id IN (SELECT unnest(?)) "
        "QUALIFY row_number() OVER (PARTITION BY article_id, version ORDER BY recorded_at DESC) = 1",
        [sorted({a for a, _ in keys})],
    )
    names = [d[0] for d in cursor.description]
    rows = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        rows[(int(row["article_id"]), int(row["version"]))] = row
    missing = [k for k in keys if k not in rows]
    if missing:
        raise RuntimeError(f"article {missing[0][0]} version {missing[0][1]}: no text in the lake")
    return rows
