"""`mediawatch reprocess`: clean stored raw pages again with the current code and rules.

Reads in batches, cleans outside any lock, then writes each batch's changes in one short
transaction, so a running daemon only waits a moment. Where the archive is a file or a lake
is archive.reclean's Recleaner (the lake's appends: archive/lake/reclean.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive import reclean
from archive.reclean import Recleaner, Rewrite, StoredPage, open_recleaner
from crawler.outlets import Config
from pipelines.clean import PIPELINE_VERSION, Cleaned
from pipelines.fingerprint import content_hash, minhash_bands
from pipelines.workers import clean_stored

BATCH = 100


@dataclass
class Change:
    article_id: int
    version: int
    current: bool
    url: str
    words_before: int
    words_after: int
    removed_before: int
    removed_after: int
    skip_reason: str | None = None


@dataclass
class ReprocessResult:
    examined: int = 0
    changed: list[Change] = field(default_factory=list)
    kept: list[Change] = field(
        default_factory=list
    )  # would now be skipped: kept as they are, reported


def reprocess(
    db: str | Path,
    config: Config | None,
    *,
    outlets: list[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    ids: list[int] | None = None,
    workers: int = 1,
) -> ReprocessResult:
    """Clean stored pages again; `ids` limits it to these articles. With `workers` > 1 the
    pages are cleaned by that many forked processes (call it with no archive connection
    open: the children must not inherit one; a lake's connections stay open, so a lake
    cleans in this process)."""
    result = ReprocessResult()
    archive = open_recleaner(db)
    try:
        if ids is None:
            with archive.reading() as con:
                ids = reclean.candidates(con, outlets=outlets, since=since)
        forks = 1 if archive.lake or len(ids) <= 1 else workers
        with _cleaner(forks) as clean:
            _reprocess(archive, config, ids, dry_run, clean, result)
    finally:
        archive.close()
    return result


Clean = Callable[[list[tuple[Any, ...]]], list[Cleaned]]  # clean_stored's arguments, per page


@contextlib.contextmanager
def _cleaner(workers: int) -> Iterator[Clean]:
    """Clean a batch of stored pages in-process, or with `workers` cleaners: this process and
    workers - 1 forked ones (the re-clean at the end of `mediawatch crawl` runs while the
    cores are free; each fork counts this process's memory again in RSS, so one fewer)."""
    if workers <= 1:
        yield lambda batch: [clean_stored(*args) for args in batch]
        return
    ctx = multiprocessing.get_context("fork")  # this process has the cleaning stack loaded
    with ProcessPoolExecutor(workers - 1, mp_context=ctx) as pool:

        def clean(batch: list[tuple[Any, ...]]) -> list[Cleaned]:
            own = len(batch) // workers  # this process's share, cleaned while the forks work
            forked = [pool.submit(clean_stored, *args) for args in batch[own:]]
            return [clean_stored(*args) for args in batch[:own]] + [f.result() for f in forked]

        yield clean


def _reprocess(
    archive: Recleaner,
    config: Config | None,
    ids: list[int],
    dry_run: bool,
    clean: Clean,
    result: ReprocessResult,
) -> None:
    rules: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    boilerplate: dict[str, frozenset[str]] = {}
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        with archive.reading() as con:
            pages = reclean.stored_pages(con, batch)
            for outlet in {p.outlet for p in pages} - set(boilerplate):
                boilerplate[outlet] = archive.boilerplate(con, outlet)
                rules[outlet] = _outlet_rules(config, outlet)
            words = reclean.word_counts(con, batch)
        writes: list[Rewrite] = []
        unchanged: list[StoredPage] = []
        work = [
            (page.html, page.url, page.hints, *rules[page.outlet], boilerplate[page.outlet])
            for page in pages
        ]
        for page, cleaned in zip(pages, clean(work), strict=True):
            result.examined += 1
            article = cleaned.article
            new_hash = content_hash(article.get("text") or "")
            new_removed = [
                (b["position"], b["kind"], b["rule"], b["text"]) for b in cleaned.removed
            ]
            change = Change(
                page.article_id,
                page.version,
                page.current,
                page.url,
                words.get(page.article_id, 0) if page.current else 0,
                article.get("word_count", 0),
                len(page.removed),
                len(new_removed),
                cleaned.skip_reason,
            )
            if cleaned.skip_reason:
                result.kept.append(change)  # never delete an archived article on a re-clean
                continue
            if new_hash == page.content_hash and new_removed == page.removed:
                unchanged.append(page)
                continue
            result.changed.append(change)
            bands = minhash_bands(article["text"])
            writes.append(Rewrite(page, article, cleaned.removed, new_hash, bands))
        if dry_run or not (writes or unchanged):
            continue
        archive.write(writes, unchanged, PIPELINE_VERSION, datetime.now(UTC))


def reclean_learned(db: str | Path, config: Config | None, *, workers: int = 1) -> int:
    """Clean again the articles that still hold a paragraph the archive has since learned as
    their outlet's boilerplate (queued by the ingest in `boilerplate_due`); each re-clean is
    recorded in `daemon_events` and its removed blocks stored as usual. Returns the number
    of articles changed. Call from the archive's writer (daemon loop, end of a crawl)."""
    if not reclean.learned_pending(db):
        return 0
    archive = open_recleaner(db)
    try:
        by_outlet: dict[str, list[tuple[str, str]]] = {}
        for key, outlet, sample in archive.learned_due():
            by_outlet.setdefault(outlet, []).append((key, sample))
        work = {o: archive.holding(o, [smp for _, smp in items]) for o, items in by_outlet.items()}
    finally:
        archive.close()
    changed = 0
    for outlet, items in by_outlet.items():
        result = (
            reprocess(db, config, ids=work[outlet], workers=workers)
            if work[outlet]
            else ReprocessResult()
        )
        changed += len(result.changed)
        archive = open_recleaner(db)
        try:
            archive.learned_done(outlet, [k for k, _ in items], len(result.changed), items[0][1])
        finally:
            archive.close()
    return changed


def _outlet_rules(
    config: Config | None, outlet_name: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The outlet's own strip overrides (selectors, patterns), when it is still in the config."""
    for outlet in config.outlets if config is not None else []:
        if outlet.name == outlet_name:
            return tuple(outlet.strip_selectors), tuple(outlet.strip_patterns)
    return (), ()
