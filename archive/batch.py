"""The rows one ingest transaction writes, kept per table and written in one INSERT each.

Why: a statement costs DuckDB's Python client 0.3-5 ms whatever it carries (more on a big
archive, where each one also touches its indexes), and the ingest made about nine an
article; with the batch a transaction makes about one per table, its columns bound as typed
lists and unnested (bench/dedup_scale.py --mode ingest). The batch also answers what the
transaction wrote before it is flushed, so later records of the same transaction see the
earlier ones: article ids are predicted from the sequence and checked when it is advanced
at the flush; URLs, article texts, outlets and cluster states are kept as overlays of what
was read once per transaction. Nothing here commits: the caller's transaction does, or
rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

# An article's exact-copy lookup key (dedup level 2): the first 15 hex digits of its content
# hash, 60 bits, as a BIGINT. The index on the 64-character VARCHAR itself cost about 1 s of each
# checkpoint of 1,000 new articles at 1M (random keys share no prefix), this one 0.1 s; the
# lookups still compare the whole hash, so two texts sharing a key cost one more row read.
# CONTENT_KEY_SQL is the same in SQL (migration 0018_content_key states it too).
CONTENT_KEY_SQL = (
    "CASE WHEN regexp_full_match(content_hash[1:15], '[0-9a-fA-F]+') "
    "THEN ('0x' || content_hash[1:15])::BIGINT END"
)
_HEX = frozenset("0123456789abcdefABCDEF")


def content_key(content_hash: str | None) -> int | None:
    head = (content_hash or "")[:15]
    return int(head, 16) if head and _HEX.issuperset(head) else None


ARTICLE_ROW = (  # the articles columns a new article is inserted with, and their types
    ("id", "BIGINT"),
    ("outlet", "VARCHAR"),
    ("url", "VARCHAR"),
    ("canonical_url", "VARCHAR"),
    ("title", "VARCHAR"),
    ("authors", "VARCHAR[]"),
    ("published_at", "TIMESTAMPTZ"),
    ("modified_at", "TIMESTAMPTZ"),
    ("date_source", "VARCHAR"),
    ("language", "VARCHAR"),
    ("section", "VARCHAR"),
    ("tags", "VARCHAR[]"),
    ("description", "VARCHAR"),
    ("summary", "VARCHAR"),
    ("image_url", "VARCHAR"),
    ("site_name", "VARCHAR"),
    ("text", "VARCHAR"),
    ("word_count", "INTEGER"),
    ("paywalled", "BOOLEAN"),
    ("page_canonical_url", "VARCHAR"),
    ("promo_flagged", "BOOLEAN"),
    ("content_hash", "VARCHAR"),
    ("content_key", "BIGINT"),
    ("feed_title", "VARCHAR"),
    ("feed_published_at", "TIMESTAMPTZ"),
    ("discovered_via", "VARCHAR"),
    ("cross_site_canonical", "VARCHAR"),
    ("extractor_version", "VARCHAR"),
    ("page_id", "BIGINT"),
    ("first_seen_at", "TIMESTAMPTZ"),
    ("last_seen_at", "TIMESTAMPTZ"),
    ("cluster_id", "BIGINT"),
)
_A = {name: i for i, (name, _) in enumerate(ARTICLE_ROW)}

PAGE_ROW = (
    ("id", "BIGINT"),
    ("record_id", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("outlet", "VARCHAR"),
    ("url", "VARCHAR"),
    ("final_url", "VARCHAR"),
    ("status", "INTEGER"),
    ("content_type", "VARCHAR"),
    ("fetched_at", "TIMESTAMPTZ"),
    ("size_bytes", "BIGINT"),
    ("html_gz", "BLOB"),
    ("article_id", "BIGINT"),
    ("skip_reason", "VARCHAR"),
    ("detail", "VARCHAR"),
)
_URL_ROW = (
    ("url", "VARCHAR"),
    ("article_id", "BIGINT"),
    ("kind", "VARCHAR"),
    ("first_seen_at", "TIMESTAMPTZ"),
)
_LINK_ROW = (
    ("article_id", "BIGINT"),
    ("matched_article_id", "BIGINT"),
    ("level", "VARCHAR"),
    ("score", "DOUBLE"),
    ("reason", "VARCHAR"),
    ("decided_at", "TIMESTAMPTZ"),
)
_REMOVED_ROW = (
    ("article_id", "BIGINT"),
    ("version", "INTEGER"),
    ("position", "INTEGER"),
    ("kind", "VARCHAR"),
    ("rule", "VARCHAR"),
    ("text", "VARCHAR"),
)
_CLUSTER_ROW = (
    ("cluster_id", "BIGINT"),
    ("first_article_id", "BIGINT"),
    ("first_published_at", "TIMESTAMPTZ"),
    ("size", "INTEGER"),
)
BandRows = list[tuple[int, list[int]]]  # (article id, its band hashes), deferred to the commit


def csv_ints(values: Iterable[int]) -> str:
    """Integers as ONE VARCHAR parameter split in SQL: binding 42 parameters costs ~10 ms in
    duckdb's Python client, one string ~0.3 ms (and a list binds no hash above 2**63)."""
    return ",".join(str(int(v)) for v in values)


def store_band_rows(con: duckdb.DuckDBPyConnection, rows: BandRows) -> None:
    """lsh_bands rows of many articles in one INSERT (before COMMIT, in the same transaction:
    they commit or roll back with their articles)."""
    rows = [(a, b) for a, b in rows if b]
    if rows:
        con.execute(
            "INSERT INTO lsh_bands (band, hash, article_id) "
            "SELECT unnest(string_split(?, ',')::SMALLINT[]), unnest(string_split(?, ',')::UBIGINT[]), "
            "unnest(string_split(?, ',')::BIGINT[])",
            [
                csv_ints(i for _, b in rows for i in range(len(b))),
                csv_ints(h for _, b in rows for h in b),
                csv_ints(a for a, b in rows for _ in b),
            ],
        )


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> None:
    """One INSERT for all the rows: each column bound once as a typed list, then unnested
    (2 ms for 50 rows of five columns, against 17 for executemany)."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    values = ", ".join(f"unnest(${i + 1}::{typ}[])" for i, (_, typ) in enumerate(columns))
    con.execute(
        f"INSERT INTO {table} ({names}) SELECT {values}",
        [list(column) for column in zip(*rows, strict=True)],
    )


# The lookups of a transaction, one statement each and every one an index scan of its key
# (tests/test_dedup.py checks the plans). Ids are inlined (int() makes that safe) and
# strings bound one parameter each: a list parameter unnested, or = ANY(list), is a semi
# join that scans the table (0.6 s at 1M articles, against 2 ms).
KNOWN_URLS = "SELECT url, article_id FROM article_urls WHERE url IN ({params})"
OUTLETS = "SELECT id, outlet FROM articles WHERE id IN ({ids})"
CANDIDATE_ROWS = "SELECT id, outlet, text, cluster_id FROM articles WHERE id IN ({ids})"
CLUSTER_ROWS = (
    "SELECT cluster_id, first_article_id, first_published_at, size FROM clusters "
    "WHERE cluster_id IN ({ids})"
)
FIRST_SEEN = "SELECT id, first_seen_at FROM articles WHERE id IN ({ids})"


def lookup(
    con: duckdb.DuckDBPyConnection, sql: str, keys: Sequence[int] | Sequence[str]
) -> list[tuple[Any, ...]]:
    """Run one of the lookups above for these keys."""
    if not keys:
        return []
    if "{ids}" in sql:
        return con.execute(sql.format(ids=", ".join(str(int(k)) for k in keys))).fetchall()
    return con.execute(sql.format(params=", ".join("?" for _ in keys)), list(keys)).fetchall()


def _ids_param(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids})


@dataclass
class Cluster:
    """A cluster as the transaction sees it (read once, then kept current here)."""

    first_article_id: int
    first_published_at: datetime | None
    first_seen_at: datetime | None
    size: int
    new: bool = False  # not in the clusters table yet
    dirty: bool = False  # changed since read


@dataclass
class Candidate:
    """What the near-duplicate check needs of an article."""

    outlet: str
    text: str
    cluster_id: int | None
    published_at: datetime | None = None
    first_seen_at: datetime | None = None


@dataclass
class WriteBatch:
    """The rows of one transaction, per table, and what they change for later records."""

    next_article_id: int = -1  # id of the next new article (-1: none taken yet)
    taken: int = -1  # the last id taken from article_id_seq
    articles: list[list[Any]] = field(default_factory=list)
    pending: dict[int, list[Any]] = field(default_factory=dict)  # article id -> its row
    pages: list[list[Any]] = field(default_factory=list)
    urls: list[list[Any]] = field(default_factory=list)
    links: list[list[Any]] = field(default_factory=list)
    removed: list[list[Any]] = field(default_factory=list)
    band_rows: BandRows = field(default_factory=list)
    clusters: dict[int, Cluster] = field(default_factory=dict)
    known: dict[str, int | None] = field(default_factory=dict)  # url -> article id (None: free)
    seen: dict[int, Candidate] = field(default_factory=dict)  # article id -> what dedup reads
    outlets: dict[int, str] = field(default_factory=dict)
    last_seen: dict[int, datetime] = field(default_factory=dict)  # stored articles seen again
    cluster_of: dict[int, int] = field(default_factory=dict)  # stored articles given a cluster

    # -- article ids -------------------------------------------------------------------

    def new_article_id(self, con: duckdb.DuckDBPyConnection) -> int:
        """The id of the next new article: the first from the sequence, the next ones counted
        on from it and taken from the sequence at the flush, in one statement, which checks
        they are the ones it gives (a statement an article saved)."""
        if self.next_article_id < 0 or self.next_article_id > self.taken:
            row = con.execute("SELECT nextval('article_id_seq')").fetchone()
            assert row is not None
            if 0 <= self.next_article_id != int(row[0]):  # after a flush: the ids must go on
                raise RuntimeError(f"article id {self.next_article_id} was taken meanwhile")
            self.next_article_id = self.taken = int(row[0])
        article_id = self.next_article_id
        self.next_article_id += 1
        return article_id

    def _take_ids(self, con: duckdb.DuckDBPyConnection) -> None:
        wanted = list(range(self.taken + 1, self.next_article_id))
        if not wanted:
            return
        got = [
            int(r[0])
            for r in con.execute(
                "SELECT nextval('article_id_seq') FROM range(?)", [len(wanted)]
            ).fetchall()
        ]
        if sorted(got) != wanted:  # another user of the sequence: roll the transaction back
            raise RuntimeError(f"article ids {wanted[0]}.. were taken meanwhile (got {got[0]}..)")
        self.taken = wanted[-1]

    def add_article(self, row: dict[str, Any]) -> None:
        row = {**row, "content_key": content_key(row.get("content_hash"))}
        values = [row.get(name) for name, _ in ARTICLE_ROW]
        self.articles.append(values)
        article_id = int(row["id"])
        self.pending[article_id] = values
        self.outlets[article_id] = str(row["outlet"])
        self.seen[article_id] = Candidate(
            str(row["outlet"]),
            str(row.get("text") or ""),
            row.get("cluster_id"),
            row.get("published_at"),
            row.get("first_seen_at"),
        )

    def touch(self, article_id: int, seen_at: datetime) -> None:
        """The article was fetched again (last_seen_at)."""
        if article_id in self.pending:
            self.pending[article_id][_A["last_seen_at"]] = seen_at
        else:
            self.last_seen[article_id] = seen_at

    def set_cluster(self, article_id: int, cluster_id: int) -> None:
        if article_id in self.pending:
            self.pending[article_id][_A["cluster_id"]] = cluster_id
        else:
            self.cluster_of[article_id] = cluster_id
        if article_id in self.seen:
            self.seen[article_id].cluster_id = cluster_id

    def holds(self, article_id: int) -> bool:
        """Are rows of this article waiting here (flush before reading it from the table)?"""
        return article_id in self.pending or article_id in self.last_seen

    # -- reads, once per transaction ---------------------------------------------------

    def known_urls(self, con: duckdb.DuckDBPyConnection, urls: Iterable[str]) -> dict[str, int]:
        """url -> article id of those already stored or added by this transaction."""
        wanted = list(dict.fromkeys(urls))
        missing = [u for u in wanted if u not in self.known]
        if missing:
            for u in missing:
                self.known[u] = None
            rows = lookup(con, KNOWN_URLS, missing)
            for u, a in rows:
                self.known[str(u)] = int(a)
        return {u: a for u in wanted if (a := self.known.get(u)) is not None}

    def outlets_of(self, con: duckdb.DuckDBPyConnection, ids: Iterable[int]) -> dict[int, str]:
        """article id -> outlet."""
        wanted = _ids_param(ids)
        missing = [i for i in wanted if i not in self.outlets]
        if missing:
            for i, o in lookup(con, OUTLETS, missing):
                self.outlets[int(i)] = str(o)
        return {i: self.outlets[i] for i in wanted if i in self.outlets}

    def candidates(
        self, con: duckdb.DuckDBPyConnection, ids: Iterable[int]
    ) -> dict[int, Candidate]:
        """article id -> what the near-duplicate check reads (articles that exist only)."""
        wanted = _ids_param(ids)
        missing = [i for i in wanted if i not in self.seen]
        if missing:
            for i, outlet, text, cluster_id in lookup(con, CANDIDATE_ROWS, missing):
                cid = int(cluster_id) if cluster_id is not None else None
                self.seen[int(i)] = Candidate(str(outlet), str(text or ""), cid)
                self.outlets[int(i)] = str(outlet)
        return {i: self.seen[i] for i in wanted if i in self.seen}

    def load_clusters(self, con: duckdb.DuckDBPyConnection, ids: Iterable[int]) -> None:
        """Read these clusters (and when their first article was first seen) in two queries."""
        missing = [i for i in _ids_param(ids) if i not in self.clusters]
        if not missing:
            return
        rows = lookup(con, CLUSTER_ROWS, missing)
        firsts = self.first_seen(con, [int(r[1]) for r in rows])
        for cid, first, pub, size in rows:
            self.clusters[int(cid)] = Cluster(int(first), pub, firsts.get(int(first)), int(size))

    def first_seen(
        self, con: duckdb.DuckDBPyConnection, ids: Iterable[int]
    ) -> dict[int, datetime | None]:
        """article id -> first_seen_at (pending articles answered here)."""
        out: dict[int, datetime | None] = {}
        stored = []
        for i in _ids_param(ids):
            if i in self.pending:
                out[i] = self.pending[i][_A["first_seen_at"]]
            else:
                stored.append(i)
        if stored:
            for i, seen in lookup(con, FIRST_SEEN, stored):
                out[int(i)] = seen
        return out

    # -- writing -------------------------------------------------------------------------

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write every row held, one statement per table; the overlays stay valid."""
        if self.articles:
            self._take_ids(con)
            insert_rows(con, "articles", ARTICLE_ROW, self.articles)
        insert_rows(con, "pages", PAGE_ROW, self.pages)
        insert_rows(con, "article_urls", _URL_ROW, self.urls)
        new = [(c, s) for c, s in self.clusters.items() if s.new]
        insert_rows(
            con,
            "clusters",
            _CLUSTER_ROW,
            [(c, s.first_article_id, s.first_published_at, s.size) for c, s in new],
        )
        changed = [(c, s) for c, s in self.clusters.items() if s.dirty and not s.new]
        if changed:
            con.execute(
                "UPDATE clusters SET first_article_id = v.f, first_published_at = v.p, size = v.s "
                "FROM (SELECT unnest($1::BIGINT[]) AS c, unnest($2::BIGINT[]) AS f, "
                "unnest($3::TIMESTAMPTZ[]) AS p, unnest($4::INTEGER[]) AS s) v "
                "WHERE clusters.cluster_id = v.c",
                [
                    [c for c, _ in changed],
                    [s.first_article_id for _, s in changed],
                    [s.first_published_at for _, s in changed],
                    [s.size for _, s in changed],
                ],
            )
        for _, s in self.clusters.items():
            s.new = s.dirty = False
        for column, values in (("last_seen_at", self.last_seen), ("cluster_id", self.cluster_of)):
            if values:
                typ = "TIMESTAMPTZ" if column == "last_seen_at" else "BIGINT"
                con.execute(
                    f"UPDATE articles SET {column} = v.x FROM (SELECT unnest($1::BIGINT[]) AS i, "
                    f"unnest($2::{typ}[]) AS x) v WHERE articles.id = v.i",
                    [list(values), list(values.values())],
                )
        insert_rows(con, "duplicate_links", _LINK_ROW, self.links)
        insert_rows(con, "removed_blocks", _REMOVED_ROW, self.removed)
        store_band_rows(con, self.band_rows)
        for rows in (self.articles, self.pages, self.urls, self.links, self.removed):
            rows.clear()
        self.band_rows.clear()
        self.pending.clear()
        self.last_seen.clear()
        self.cluster_of.clear()
