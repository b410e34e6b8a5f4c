"""The archive's single writer: turns spool records into rows, in short transactions.

One transaction per spool segment (at most a few dozen records), the write connection held
only for a bounded time, so a reader waits at most about that long. Ingest is idempotent by
record_id: a segment replayed after a crash changes nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from archive import boilerplate, dedup, search
from archive.batch import WriteBatch, content_key, lookup
from archive.dates import stored as stored_date
from archive.db import ArchiveError, wal_bytes, writer
from archive.records import (
    Article,
    HttpStateRecord,
    PageRecord,
    RemovedBlock,
    RunRecord,
    SpoolRecord,
    checked,
    record_problem,
)
from archive.spool import PART, Line, discard_segment, read_lines, ready_segments, spool_dir_for
from archive.tx import transaction

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    segments: int = 0
    records: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    checkpointed: bool = False  # the session ended with a CHECKPOINT (the spool was empty)

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return f"{self.segments} segments, {self.records} records ({parts or 'nothing new'})"


@dataclass
class _Pending:
    """Work done once per transaction rather than once per article (a statement costs more
    than its rows): search indexing and the learned-boilerplate counts."""

    to_index: list[int] = field(default_factory=list)
    paragraphs: list[tuple[str, list[tuple[str, str]], datetime, str]] = field(default_factory=list)
    # content_hash -> (article id, outlet) of the articles with that text: looked up for the
    # whole transaction in one indexed IN query (a point lookup cost 3.6 ms at 1M articles),
    # then kept current as the transaction inserts and re-versions articles.
    by_hash: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    batch: WriteBatch = field(default_factory=WriteBatch)  # the rows, one INSERT per table

    def load_hashes(self, con: duckdb.DuckDBPyConnection, hashes: list[str]) -> None:
        wanted = sorted({h for h in hashes if h})
        for h in wanted:
            self.by_hash.setdefault(h, [])
        keyed = {h: content_key(h) for h in wanted}
        keys = sorted({k for k in keyed.values() if k is not None})
        odd = [h for h, k in keyed.items() if k is None]  # not hashes of ours: a scan
        rows = []
        for column, values in (("content_key", keys), ("content_hash", odd)):
            if values:
                placeholders = ", ".join("?" for _ in values)
                rows += con.execute(
                    f"SELECT id, outlet, content_hash FROM articles WHERE {column} IN ({placeholders})",
                    values,
                ).fetchall()
        for article_id, outlet, h in rows:
            if str(h) in self.by_hash:  # not another text sharing the key
                self.by_hash[str(h)].append((int(article_id), str(outlet)))

    def find_exact(
        self, con: duckdb.DuckDBPyConnection, outlet: str, content_hash: str
    ) -> int | None:
        """dedup.find_exact, answered from the transaction's lookup."""
        if content_hash not in self.by_hash:
            return dedup.find_exact(con, outlet, content_hash)
        ids = [a for a, o in self.by_hash[content_hash] if o == outlet]
        return min(ids) if ids else None

    def text_changed(
        self, article_id: int, outlet: str, old_hash: str | None, new_hash: str | None
    ) -> None:
        if old_hash in self.by_hash:
            self.by_hash[old_hash] = [(a, o) for a, o in self.by_hash[old_hash] if a != article_id]
        if new_hash in self.by_hash:
            self.by_hash[new_hash].append((article_id, outlet))


def ingest_spool(
    db_path: str | os.PathLike[str], *, time_budget: float = 2.0, spool_dir: Path | None = None
) -> IngestResult:
    """Ingest ready spool segments, holding the write lock at most about time_budget seconds."""
    spool = spool_dir or spool_dir_for(db_path)
    result = IngestResult()
    segments = ready_segments(spool)
    if not segments:
        return result
    deadline = time.monotonic() + time_budget
    try:
        _ingest_segments(db_path, segments, result, deadline)
    except Exception as exc:
        if isinstance(exc, ArchiveError) or not environmental(exc):
            raise
        # Disk full, file gone, read-only: the segments stay in the spool, nothing is lost.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchiveError(
            f"{db_path}: cannot write the archive ({first_line}); "
            "the spool is kept and ingested once it can be"
        ) from exc
    return result


IDLE_CHECKPOINT_WAL = 1 << 20  # bytes of log worth a checkpoint once the spool is empty


def environmental(exc: BaseException) -> bool:
    """A failure of the machine, not of a record: retry the segment later, never quarantine.
    DuckDB reports a full disk at commit as a TransactionException, so the text counts too."""
    if isinstance(exc, (duckdb.IOException, duckdb.OutOfMemoryException, OSError)):
        return True
    text = str(exc)
    return any(words in text for words in _ENVIRONMENTAL_WORDS)


_ENVIRONMENTAL_WORDS = (
    "No space left",
    "Could not write file",
    "Failed to commit",
    "Read-only file system",
    "Disk quota exceeded",
    "Input/output error",
)


def _ingest_segments(
    db_path: str | os.PathLike[str], segments: list[Path], result: IngestResult, deadline: float
) -> None:
    with writer(db_path) as con:
        _ingest_into(con, segments, result, deadline)
        if not ready_segments(segments[0].parent) and wal_bytes(db_path) > IDLE_CHECKPOINT_WAL:
            # Nothing waits: spend the idle moment folding the log into the file, so readers
            # (who replay the log at every open) and copies of the file see a small one.
            try:
                con.execute("CHECKPOINT")
                result.checkpointed = True
            except duckdb.Error as exc:  # committed work is safe in the log; the next one retries
                logger.warning("checkpoint of %s failed, its log is kept: %s", db_path, exc)


def _ingest_into(
    con: duckdb.DuckDBPyConnection, segments: list[Path], result: IngestResult, deadline: float
) -> None:
    for segment in segments:
        lines = list(read_lines(segment))
        bad = [(line, line.problem) for line in lines if line.problem]
        good: list[Line] = []
        for line in lines:
            if line.record is not None:
                why = record_problem(line.record)
                if why:
                    bad.append((line, why))
                else:
                    good.append(line)
        try:
            ingest_records(
                con, [checked(line.record) for line in good if line.record is not None], result
            )
        except Exception as exc:
            if environmental(exc):
                raise
            logger.error(
                "segment %s failed as a whole (%s); ingesting record by record", segment.name, exc
            )
            bad += _ingest_one_by_one(con, good, result)
        if bad:
            _quarantine(con, segment, sorted(bad, key=lambda b: b[0].number), result)
        if segment.name.endswith(PART):
            _mark_crashed(con, segment.name.rsplit("-", 1)[0])
        discard_segment(segment)
        result.segments += 1
        if time.monotonic() > deadline:
            break


def _ingest_one_by_one(
    con: duckdb.DuckDBPyConnection, lines: list[Line], result: IngestResult
) -> list[tuple[Line, str]]:
    """Keep every good record of a segment; return those that fail alone, with the reason."""
    failed: list[tuple[Line, str]] = []
    for line in lines:
        assert line.record is not None
        try:
            ingest_records(con, [checked(line.record)], result)
        except Exception as exc:
            if environmental(exc):
                raise
            failed.append((line, f"{type(exc).__name__}: {exc}"))
    return failed


QUARANTINE_DIR = "quarantine"
_EXCERPT = 500


def _quarantine(
    con: duckdb.DuckDBPyConnection, segment: Path, bad: list[tuple[Line, str]], result: IngestResult
) -> None:
    """Set aside the records of a segment that cannot be ingested, so they block nothing and
    lose nothing: the segment's bytes are copied as they are to <spool>/quarantine/, and one
    row per record (line, outlet, reason) goes to spool_quarantine, what `mediawatch status`
    counts. Idempotent: a segment quarantined again (a crash before its unlink) adds nothing."""
    folder = segment.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    kept = folder / segment.name
    if not kept.exists():
        tmp = folder / f".{segment.name}.tmp"
        shutil.copyfile(segment, tmp)
        os.replace(tmp, kept)
    run_id, _, outlet = segment.name.rsplit("-", 1)[0].partition(".")
    now = datetime.now(UTC)
    rows = []
    for line, reason in bad:
        record = line.record or {}
        rows.append(
            [
                segment.name,
                line.number,
                _text(record.get("outlet")) or outlet,
                _text(record.get("run_id")) or run_id,
                _text(record.get("record_id")),
                _clean(reason, 1000),
                _clean(line.raw, _EXCERPT),
                now,
            ]
        )
    first = rows[0]
    logger.error(
        "%s: %d records quarantined (first: line %d of %s: %s); kept in %s, listed in spool_quarantine",
        segment.name,
        len(rows),
        first[1],
        first[2],
        first[5],
        kept,
    )
    with transaction(con):
        con.executemany(
            "INSERT INTO spool_quarantine (segment, line, outlet, run_id, record_id, reason, excerpt, "
            "quarantined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )
    result.outcomes["quarantined"] += len(bad)


def _text(value: Any) -> str | None:
    return _clean(value, 200) if isinstance(value, str) and value else None


def _clean(text: str, limit: int) -> str:
    """Short, and valid UTF-8 whatever the record held (an error message can quote it)."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def quarantine_counts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str, datetime]]:
    """outlet -> (records quarantined, latest reason, when): for `mediawatch status`."""
    try:
        rows = con.execute(
            "SELECT outlet, records, last_reason, last_at FROM quarantine_per_outlet"
        ).fetchall()
    except duckdb.CatalogException:  # an archive from before the quarantine table
        return {}
    return {str(o): (int(n), str(r), at) for o, n, r, at in rows}


def drain_spool(db_path: str | os.PathLike[str], *, pause: float = 0.05) -> IngestResult:
    """Ingest everything ready into the file or the lake `db_path` names, in bounded bites with
    pauses so readers get their turn."""
    from archive.store import open_store

    store = open_store(os.fspath(db_path))
    total = IngestResult()
    try:
        while True:
            step = store.ingest()
            if not step.segments:
                return total
            total.segments += step.segments
            total.records += step.records
            total.outcomes.update(step.outcomes)
            time.sleep(pause)
    finally:
        store.close()


def _mark_crashed(con: duckdb.DuckDBPyConnection, prefix: str) -> None:
    """A dead writer's runs that never recorded their end crashed."""
    run_id, _, outlet = prefix.partition(".")
    con.execute(
        "UPDATE crawl_runs SET status = 'crashed', finished_at = now(), "
        "message = coalesce(message, 'crawl process died before finishing') "
        "WHERE run_id = ? AND outlet = ? AND status = 'running'",
        [run_id, outlet],
    )


def ingest_records(
    con: duckdb.DuckDBPyConnection,
    records: Sequence[SpoolRecord],
    result: IngestResult | None = None,
) -> IngestResult:
    """Ingest records in one transaction; all or nothing (result counts only what committed)."""
    total = result if result is not None else IngestResult()
    result = IngestResult()
    counters: dict[tuple[str, str], Counter[str]] = {}
    pending = _Pending()
    with transaction(con):
        # Which records are already in, and the page ids: one statement each per transaction
        # instead of two per page (a statement costs a few ms of CPU, more than its rows).
        pages = [r for r in records if r["type"] == "page"]
        done = _ingested(con, [r["record_id"] for r in pages])
        page_ids = _page_ids(con, sum(1 for r in pages if r["record_id"] not in done))
        fresh = [r for r in pages if r["record_id"] not in done and r.get("article")]
        pending.load_hashes(con, [str(r.get("content_hash") or "") for r in fresh])
        _prefetch(con, pending.batch, fresh)
        for record in records:
            if record["type"] == "page":
                if record["record_id"] in done:
                    outcome = "already_ingested"
                else:
                    done.add(record["record_id"])  # the same record twice in one segment
                    outcome = _ingest_page(con, record, pending, page_ids.pop())
                counters.setdefault((record.get("run_id") or "", record["outlet"]), Counter())[
                    outcome
                ] += 1
            elif record["type"] == "http_state":
                _ingest_http_state(con, record)
                outcome = "http_state"
            elif record["type"] == "run_start":
                con.execute(
                    "INSERT INTO crawl_runs (run_id, outlet, started_at, status) VALUES (?, ?, ?, 'running') "
                    "ON CONFLICT DO NOTHING",
                    [record["run_id"], record["outlet"], stored_date(record["started_at"])],
                )
                outcome = "run_start"
            elif record["type"] == "run":
                _ingest_run(con, record)
                outcome = "run"
            else:
                outcome = "unknown_record"
            result.records += 1
            result.outcomes[outcome] += 1
        pending.batch.flush(con)
        # One indexing pass for the whole transaction: per article it was six statements,
        # a third of the ingest's time.
        search.index_articles(con, pending.to_index)
        boilerplate.record_paragraphs_batch(con, pending.paragraphs)
        for (run_id, outlet), counter in counters.items():
            con.execute(
                "UPDATE crawl_runs SET articles_new = articles_new + ?, articles_updated = articles_updated + ? "
                "WHERE run_id = ? AND outlet = ?",
                [counter["new"], counter["updated"], run_id, outlet],
            )
    total.records += result.records
    total.outcomes.update(result.outcomes)
    return total


def _ingest_http_state(con: duckdb.DuckDBPyConnection, r: HttpStateRecord) -> None:
    now = datetime.now(UTC)
    changed = now if r.get("changed") else None
    if r.get("status") == 304:
        con.execute(
            "UPDATE http_state SET last_status = 304, last_fetched_at = ? WHERE url = ?",
            [now, r["url"]],
        )
        return
    con.execute(
        """
        INSERT INTO http_state (url, outlet, etag, last_modified, last_status, last_fetched_at, last_changed_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
            last_status = excluded.last_status, last_fetched_at = excluded.last_fetched_at,
            last_changed_at = coalesce(excluded.last_changed_at, http_state.last_changed_at)
        """,
        [
            r["url"],
            r["outlet"],
            r.get("etag"),
            r.get("last_modified"),
            r.get("status"),
            now,
            changed,
        ],
    )


def _ingest_run(con: duckdb.DuckDBPyConnection, r: RunRecord) -> None:
    stats = r.get("stats") or {}
    con.execute(
        """
        INSERT INTO crawl_runs (run_id, outlet, started_at, finished_at, status, requests, responses,
                                skipped, errors, message, failure)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, outlet) DO UPDATE SET finished_at = excluded.finished_at,
            -- the supervisor's verdict (a timeout it enforced) wins over the crawl's own "stopped"
            status = CASE WHEN crawl_runs.status IN ('timeout', 'crashed') THEN crawl_runs.status
                          ELSE excluded.status END,
            requests = excluded.requests, responses = excluded.responses,
            skipped = excluded.skipped, errors = excluded.errors,
            message = CASE WHEN crawl_runs.status IN ('timeout', 'crashed') THEN crawl_runs.message
                           ELSE excluded.message END,
            failure = excluded.failure
        """,
        [
            r["run_id"],
            r["outlet"],
            stored_date(r.get("started_at")),
            stored_date(r.get("finished_at")),
            r.get("status", "ok"),
            stats.get("requests", 0),
            json.dumps(stats.get("responses", {})),
            json.dumps(stats.get("skipped", {})),
            stats.get("errors", 0),
            stats.get("failure") or r.get("finish_reason"),
            stats.get("failure"),
        ],
    )


def _html_bytes(r: PageRecord) -> bytes | None:
    data = r.get("html_gz_b64")
    return base64.b64decode(data) if data else None


def _prefetch(con: duckdb.DuckDBPyConnection, batch: WriteBatch, pages: list[PageRecord]) -> None:
    """What the transaction's pages will look up, read in one query each: the URLs they are
    known under and their near-duplicate candidates with their clusters (a lookup per page
    was several statements an article)."""
    batch.known_urls(
        con,
        [
            str(u)
            for r in pages
            for u in [r.get("key"), *(r.get("url_aliases") or []), *(r.get("seen_urls") or [])]
            if u
        ],
    )
    banded = [r.get("bands") or [] for r in pages]
    if any(banded):
        ids = {a for bands in banded if bands for a in dedup.candidates(con, bands, -1)}
        found = batch.candidates(con, ids)
        batch.load_clusters(con, {c.cluster_id for c in found.values() if c.cluster_id is not None})


def _add_urls(
    batch: WriteBatch,
    article_id: int,
    urls: list[tuple[str, str]],
    now: datetime,
    known: dict[str, int],
) -> None:
    """The article's URLs not stored yet: a URL already stored keeps its article (as ON
    CONFLICT DO NOTHING would; the lookup made before is cheaper than the 3 ms that ON
    CONFLICT adds to each statement)."""
    fresh: dict[str, str] = {}
    for url, kind in urls:
        if url not in known and url not in fresh:
            fresh[url] = kind
    for url, kind in fresh.items():
        batch.urls.append([url, article_id, kind, now])
        batch.known[url] = article_id


def _insert_removed(
    batch: WriteBatch, article_id: int, version: int, removed: list[RemovedBlock]
) -> None:
    for b in removed:
        batch.removed.append([article_id, version, b["position"], b["kind"], b["rule"], b["text"]])


def _ingested(con: duckdb.DuckDBPyConnection, record_ids: list[str]) -> set[str]:
    """The record ids already in pages (ingest is idempotent by record_id)."""
    if not record_ids:
        return set()
    rows = lookup(con, "SELECT record_id FROM pages WHERE record_id IN ({params})", record_ids)
    return {str(r[0]) for r in rows}


def _page_ids(con: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    """n fresh page ids, in the order pop() hands them out (ascending)."""
    if n <= 0:
        return []
    rows = con.execute("SELECT nextval('page_id_seq') FROM range(?)", [n]).fetchall()
    return sorted((int(r[0]) for r in rows), reverse=True)


def _ingest_page(
    con: duckdb.DuckDBPyConnection, r: PageRecord, pending: _Pending, page_id: int
) -> str:
    fetched_at = stored_date(r.get("fetched_at")) or datetime.now(UTC)
    article = r.get("article")
    skip = r.get("skip_reason")
    detail = r.get("detail")
    article_id: int | None = None
    outcome = skip or "skipped"
    if article and not skip:
        key, content_hash = (
            _given(r.get("key")),
            _given(r.get("content_hash")),
        )  # record_problem checked both
        aliases = list(r.get("url_aliases") or [])
        outlet = r["outlet"]
        seen = [str(u) for u in r.get("seen_urls") or []]
        batch = pending.batch
        known = batch.known_urls(con, [key, *aliases, *seen])
        owners = batch.outlets_of(con, {known[u] for u in [key, *aliases] if u in known})
        syndicated: tuple[int, str, str] | None = None
        if key in known and owners[known[key]] != outlet:
            # The page names another outlet's article as its canonical (same registrable
            # domain, so the pipeline took it as the key): an article belongs to the outlet
            # that published it, so the page keeps its own URL and the link is syndication.
            syndicated = (known[key], owners[known[key]], key)
            key = next(
                (u for u in aliases if owners.get(known.get(u, -1), outlet) == outlet),
                str(r.get("final_url") or r["url"]),
            )
            aliases = [u for u in aliases if u != key]
            r = {
                **r,
                "key": key,
                "cross_site_canonical": r.get("cross_site_canonical") or syndicated[2],
            }
        existing = next(
            (known[u] for u in [key, *aliases] if u in known and owners[known[u]] == outlet), None
        )
        if existing is not None:
            article_id = existing
            outcome = _update_article(
                con, existing, r, article, content_hash, page_id, fetched_at, pending
            )
            if outcome == "unchanged":
                detail = "revisit: text unchanged"
        else:
            exact = pending.find_exact(con, outlet, content_hash)
            if exact is not None:
                article_id = exact
                skip, outcome = "exact_duplicate", "exact_duplicate"
                detail = f"same text as article {exact}"
                batch.touch(exact, fetched_at)
                dedup.record_decision(
                    con,
                    dedup.Decision(exact, exact, "exact", 1.0, f"same text under {key}"),
                    fetched_at,
                    batch,
                )
            else:
                article_id = _insert_article(
                    con, r, article, content_hash, page_id, fetched_at, pending
                )
                outcome = "new"
            if syndicated is not None:
                dedup.record_decision(
                    con,
                    dedup.Decision(
                        article_id,
                        syndicated[0],
                        "syndication",
                        None,
                        f"rel=canonical to {syndicated[2]}, an article of outlet {syndicated[1]}",
                    ),
                    fetched_at,
                    batch,
                )
        url_rows = [(key, "canonical")] + [(u, "alias") for u in aliases]
        url_rows += [(u, "seen") for u in seen]
        _add_urls(batch, article_id, url_rows, fetched_at, known)
    html = _html_bytes(r)
    pending.batch.pages.append(
        [
            page_id,
            r["record_id"],
            r.get("run_id"),
            r["outlet"],
            r["url"],
            r.get("final_url"),
            r.get("status"),
            r.get("content_type"),
            fetched_at,
            r.get("size_bytes"),
            html,
            article_id,
            skip,
            detail,
        ],
    )
    return outcome


ARTICLE_COLUMNS = (
    "title",
    "authors",
    "published_at",
    "modified_at",
    "date_source",
    "language",
    "section",
    "tags",
    "description",
    "summary",
    "image_url",
    "site_name",
    "text",
    "word_count",
    "paywalled",
    "page_canonical_url",
)


def article_values(article: Article) -> list[Any]:
    """The article's values for ARTICLE_COLUMNS, as the ingest and a re-clean both store them."""
    values = []
    fields: dict[str, Any] = dict(article)
    for column in ARTICLE_COLUMNS:
        value = fields.get(column)
        if column in ("published_at", "modified_at"):
            value = stored_date(value)
        elif column in ("authors", "tags"):
            value = list(value or [])
        elif column == "paywalled":
            value = bool(value)
        elif column == "page_canonical_url":  # what the page states; canonical_url is our dedup key
            value = article.get("canonical_url")
        values.append(value)
    return values


def _given(value: str | None) -> str:
    if not value:
        raise ValueError("a page with an article needs its key and content_hash")
    return value


def _insert_article(
    con: duckdb.DuckDBPyConnection,
    r: PageRecord,
    article: Article,
    content_hash: str,
    page_id: int,
    now: datetime,
    pending: _Pending,
) -> int:
    hints = r.get("hints") or {}
    batch = pending.batch
    article_id = batch.new_article_id(con)
    published_at = stored_date(article.get("published_at"))
    batch.add_article(
        {
            "id": article_id,
            "outlet": r["outlet"],
            "url": r.get("final_url") or r["url"],
            "canonical_url": r.get("key"),
            **dict(zip(ARTICLE_COLUMNS, article_values(article), strict=True)),
            "promo_flagged": bool(article.get("promo_flagged")),
            "content_hash": content_hash,
            "feed_title": hints.get("title"),
            "feed_published_at": stored_date(hints.get("published_at")),
            "discovered_via": hints.get("source"),
            "cross_site_canonical": r.get("cross_site_canonical"),
            "extractor_version": r.get("extractor_version"),
            "page_id": page_id,
            "first_seen_at": now,
            "last_seen_at": now,
        }
    )
    pending.text_changed(article_id, r["outlet"], None, content_hash)
    _insert_removed(batch, article_id, 1, r.get("removed_blocks") or [])
    dedup.place_article(
        con,
        article_id,
        outlet=r["outlet"],
        text=article["text"],
        bands=r.get("bands") or [],
        published_at=published_at,
        now=now,
        batch=batch,
    )
    pending.to_index.append(article_id)
    if r.get("para_hashes"):
        pending.paragraphs.append(
            (r["outlet"], [(str(h), str(t)) for h, t in r["para_hashes"]], now, article["text"])
        )
    return article_id


def _update_article(
    con: duckdb.DuckDBPyConnection,
    article_id: int,
    r: PageRecord,
    article: Article,
    content_hash: str,
    page_id: int,
    fetched_at: datetime,
    pending: _Pending,
) -> str:
    """A known article fetched again: a new version when its cleaned text changed."""
    batch = pending.batch
    if batch.holds(article_id):  # written by this transaction: read it from the table
        batch.flush(con)
    current = con.execute(
        "SELECT content_hash, version, title, text, page_id, last_seen_at, outlet FROM articles WHERE id = ?",
        [article_id],
    ).fetchone()
    assert current is not None
    old_hash, version, old_title, old_text, old_page, last_seen, outlet = current
    if old_hash == content_hash:
        batch.touch(article_id, fetched_at)
        return "unchanged"
    con.execute(
        "INSERT INTO article_versions (article_id, version, title, text, content_hash, fetched_at, page_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [article_id, version, old_title, old_text, old_hash, last_seen, old_page],
    )
    assignments = ", ".join(f"{c} = ?" for c in ARTICLE_COLUMNS)
    con.execute(
        f"UPDATE articles SET {assignments}, content_hash = ?, content_key = ?, version = ?, page_id = ?, "
        "last_seen_at = ?, promo_flagged = ?, extractor_version = ? WHERE id = ?",
        [
            *article_values(article),
            content_hash,
            content_key(content_hash),
            version + 1,
            page_id,
            fetched_at,
            bool(article.get("promo_flagged")),
            r.get("extractor_version"),
            article_id,
        ],
    )
    pending.text_changed(article_id, str(outlet), old_hash, content_hash)
    if article_id in batch.seen:  # a later page's near-duplicate check reads the new text
        batch.seen[article_id].text = article["text"]
    _insert_removed(batch, article_id, version + 1, r.get("removed_blocks") or [])
    dedup.refresh_bands(con, article_id, r.get("bands") or [])
    dedup.record_decision(
        con,
        dedup.Decision(
            article_id,
            article_id,
            "version",
            None,
            f"text changed: version {version} -> {version + 1}",
        ),
        fetched_at,
        batch,
    )
    pending.to_index.append(article_id)
    return "updated"
