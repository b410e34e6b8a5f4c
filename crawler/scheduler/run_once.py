"""`mediawatch crawl`: one crawl of some outlets now, started and watched by the same
supervisor as the daemon's, ingesting its spool while it runs (this process is then the
archive's writer; on a lake, one of its writers), its abnormal end recorded by the same rule
(archive/runs.py, archive/lake/daemon_state.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from archive.db import ArchiveError, ArchiveLocked
from archive.ingest import IngestResult
from archive.spool import unfinished_runs
from archive.store import Store, open_store
from crawler.outlets import load_config
from crawler.scheduler.supervisor import abnormal_end_message, new_run_id, start_crawl, supervise

log = logging.getLogger("mediawatch.crawl")


@dataclass
class CrawlResult:
    run_id: str
    outlets: list[str]
    returncode: int
    status: str  # ok | failed | timeout | stopped | crashed
    seconds: float
    ingest: IngestResult = field(default_factory=IngestResult)
    stderr_tail: str = ""


def _ingest_quietly(store: Store, result: IngestResult) -> ArchiveError | None:
    """Ingest what is ready; a problem is returned, not raised, so the crawl goes on (its
    records wait in the spool) and the caller decides what to report at the end."""
    try:
        step = store.ingest()
    except ArchiveLocked:
        return None  # a long reader holds the file: we ingest on the next turn, nothing is lost
    except ArchiveError as exc:
        return exc  # disk full, unwritable: the spool keeps everything
    result.segments += step.segments
    result.records += step.records
    result.outcomes.update(step.outcomes)
    return None


def run_crawl(
    config: str | Path,
    db: str | Path,
    outlets: list[str],
    *,
    timeout: float = 900.0,
    run_id: str | None = None,
    log_path: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll: float = 0.5,
    on_progress: Callable[[IngestResult], None] | None = None,
    progress_dir: Path | None = None,
) -> CrawlResult:
    """Run one crawl of the outlets to its end (or timeout / stop), ingesting as it goes."""
    run_id = run_id or new_run_id()
    store = open_store(db)
    try:
        return _run(store, config, db, outlets, run_id, timeout, log_path, should_stop, poll,
                    on_progress, progress_dir)  # fmt: skip
    finally:
        store.close()


def _run(
    store: Store,
    config: str | Path,
    db: str | Path,
    outlets: list[str],
    run_id: str,
    timeout: float,
    log_path: Path | None,
    should_stop: Callable[[], bool],
    poll: float,
    on_progress: Callable[[IngestResult], None] | None,
    progress_dir: Path | None,
) -> CrawlResult:
    proc = start_crawl(config, db, outlets, run_id, log_path=log_path, progress_dir=progress_dir)
    result = IngestResult()

    def tick() -> None:
        _ingest_quietly(store, result)
        if on_progress:
            on_progress(result)

    end = supervise(
        proc,
        timeout=timeout,
        label=f"run {run_id}",
        should_stop=should_stop,
        on_tick=tick,
        poll=poll,
        log_path=log_path,
    )
    # Everything the crawl handed over, including a killed crawl's partial segments.
    while True:
        before = result.segments
        problem = _ingest_quietly(store, result)
        if problem is not None:
            raise problem  # e.g. a full disk: one line for the user; the spool is kept
        if result.segments == before:
            break
    record_end(store, run_id, outlets, end.status, end.returncode)
    if result.records:
        # articles archived before a paragraph was learned as boilerplate lose it now; a busy
        # archive leaves the queue (kept in the archive) to the next crawl or the daemon
        from crawler.reprocess import reclean_learned  # the cleaning stack, only when needed
        from pipelines.workers import parse_workers

        try:  # one forked cleaner per core, as the crawl's pool (MEDIAWATCH_WORKERS)
            workers = parse_workers(os.environ.get("MEDIAWATCH_WORKERS", "auto"))
        except ValueError:
            workers = 1  # the crawl itself reported the bad setting
        try:
            reclean_learned(db, load_config(config), workers=workers)
        except ArchiveLocked as exc:
            log.warning("boilerplate re-clean left for later (archive busy): %s", exc)
    return CrawlResult(
        run_id, list(outlets), end.returncode, end.status, end.seconds, result, end.stderr_tail
    )


def record_end(store: Store, run_id: str, outlets: list[str], status: str, returncode: int) -> None:
    """The supervisor's verdict on a crawl that was stopped, killed or failed (its crawl_runs
    row says why), and the end of earlier runs whose crawl is gone without recording one (a
    crawl killed -9 between two segments leaves no open segment to tell the ingest so): they
    crashed, as the daemon judges them at its start. (The daemon writes its verdicts in its own
    bookkeeping session, retried while the archive is held.)"""
    try:
        with store.session() as con:
            if status != "ok":
                message = abnormal_end_message(status, returncode)
                store.runs.record_abnormal_end(
                    con, run_id, outlets, status, message, datetime.now(UTC)
                )
            store.runs.close_orphan_runs(con, unfinished_runs(store.spool))
    except ArchiveError as exc:  # the records are in the spool; only the verdict is lost
        log.warning("run %s: could not record its %s end: %s", run_id, status, exc)
