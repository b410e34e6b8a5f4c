"""Start a crawl subprocess and ingest its spool while it runs: used by `mediawatch crawl`
and by the daemon, so both hand off and record runs the same way."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from archive import runs as runs_db
from archive.db import ArchiveError, ArchiveLocked, writer
from archive.ingest import IngestResult, ingest_spool
from crawler.outlets import load_config

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class CrawlResult:
    run_id: str
    outlets: list[str]
    returncode: int
    status: str  # ok | failed | timeout | stopped | crashed
    seconds: float
    ingest: IngestResult = field(default_factory=IngestResult)
    stderr_tail: str = ""


def start_crawl(
    config: str | Path,
    db: str | Path,
    outlets: list[str],
    run_id: str,
    *,
    log_path: Path | None = None,
    die_with_parent: bool = True,
    workers: int | None = None,
    progress_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a crawl subprocess. workers: its cleaning pool size, unless the user set
    MEDIAWATCH_WORKERS (which always wins); None leaves the crawl's default (one per core)."""
    env = dict(os.environ)
    if workers is not None and not env.get("MEDIAWATCH_WORKERS"):
        env["MEDIAWATCH_WORKERS"] = str(workers)
    env["MEDIAWATCH_PDEATHSIG"] = "1" if die_with_parent else "0"
    if progress_dir is not None:
        env["MEDIAWATCH_PROGRESS_DIR"] = str(
            progress_dir
        )  # crawler/progress.py writes its figures there
    env.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    cmd = [
        sys.executable,
        "-m",
        "crawler.crawlproc",
        "--config",
        str(config),
        "--db",
        str(db),
        "--run-id",
        run_id,
        "--",
        *outlets,
    ]  # "--": an outlet name is never read as an option
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True)
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


def _ingest_quietly(db: str | Path, result: IngestResult) -> ArchiveError | None:
    """Ingest what is ready; a problem is returned, not raised, so the crawl goes on (its
    records wait in the spool) and the caller decides what to report at the end."""
    try:
        step = ingest_spool(db)
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
    started = time.monotonic()
    proc = start_crawl(config, db, outlets, run_id, log_path=log_path, progress_dir=progress_dir)
    result = IngestResult()
    status = None
    stop_sent_at: float | None = None
    while proc.poll() is None:
        time.sleep(poll)
        _ingest_quietly(db, result)
        if on_progress:
            on_progress(result)
        elapsed = time.monotonic() - started
        if status is None and (elapsed > timeout or should_stop()):
            status = "timeout" if elapsed > timeout else "stopped"
            proc.send_signal(signal.SIGINT)  # Scrapy closes spiders cleanly on the first SIGINT
            stop_sent_at = time.monotonic()
        if stop_sent_at is not None and time.monotonic() - stop_sent_at > 10:
            proc.kill()
    returncode = proc.wait()
    # Everything the crawl handed over, including a killed crawl's partial segments.
    while True:
        before = result.segments
        problem = _ingest_quietly(db, result)
        if problem is not None:
            raise problem  # e.g. a full disk: one line for the user; the spool is kept
        if result.segments == before:
            break
    if status is None:
        status = "ok" if returncode == 0 else ("crashed" if returncode < 0 else "failed")
    if status != "ok":
        record_abnormal_end(db, run_id, outlets, status, returncode)
    if result.records:
        # articles archived before a paragraph was learned as boilerplate lose it now; a busy
        # archive leaves the queue (kept in the archive) to the next crawl or the daemon
        from crawler.reprocess import reclean_learned  # the cleaning stack, only when needed

        try:
            reclean_learned(db, load_config(config))
        except ArchiveLocked as exc:
            log.warning("boilerplate re-clean left for later (archive busy): %s", exc)
    return CrawlResult(
        run_id, list(outlets), returncode, status, time.monotonic() - started, result
    )


def abnormal_end_message(status: str, returncode: int) -> str:
    return {
        "timeout": "crawl timed out and was stopped",
        "stopped": "stopped by the operator",
        "crashed": f"crawl process died (signal {-returncode})",
        "failed": f"crawl process exited with code {returncode}",
    }[status]


def record_abnormal_end(
    db: str | Path, run_id: str, outlets: list[str], status: str, returncode: int
) -> None:
    """A crawl that was killed or timed out still gets its crawl_runs row, with why. (The
    daemon writes it in its own bookkeeping session, retried while the archive is held.)"""
    try:
        with writer(db) as con:
            runs_db.record_abnormal_end(
                con,
                run_id,
                outlets,
                status,
                abnormal_end_message(status, returncode),
                datetime.now(UTC),
            )
    except (
        ArchiveError
    ) as exc:  # the crawl's own records are in the spool; only the verdict is lost
        log.warning("run %s: could not record its %s end: %s", run_id, status, exc)
