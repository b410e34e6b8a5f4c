"""The daemon's single archive writer: one thread ingests the spool of every crawl in short
write sessions, then records what the job threads report (finished runs, events) and each
outlet's scheduler state through the daemon's callbacks.

Why one thread: `ingest_spool` takes *every* ready segment, so two job threads ingesting at
once would race on the same segment and on the search tables; one writer makes that
impossible and keeps every write transaction short, with a gap between sessions, so readers
(`connect_read` retries) always get their turn. `after_ingest` is the one hook for work that
follows an ingest that archived something (the boilerplate re-clean today).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archive.db import ArchiveError, ArchiveLocked
from archive.spool import PART, READY, live_writers, ready_segments
from archive.store import Store
from crawler.scheduler.supervisor import abnormal_end_message

log = logging.getLogger("mediawatch.daemon")

INGEST_BUDGET = 1.0  # seconds of ingest per write session
SESSION_GAP = 0.8  # seconds the archive stays free between write sessions, for readers


@dataclass
class RunDone:
    """Handed by a job thread to the writer when its crawl process has exited."""

    outlet: str
    run_id: str
    status: str
    returncode: int
    seconds: float
    done: threading.Event = field(default_factory=threading.Event)
    foreign: bool = False  # an earlier daemon's crawl, still finishing when we started
    rescheduled: bool = False  # the archive was held: the outlet ran on before the run was ingested


class ArchiveWriter(threading.Thread):
    """The only thread that writes the archive: ingest in short transactions, then the
    bookkeeping of finished runs, events and outlet state."""

    def __init__(
        self,
        store: Store,
        on_run: Callable[[RunDone, Any], None],
        *,
        tick: float = 0.3,
        on_held: Callable[[RunDone], None] | None = None,
    ) -> None:
        super().__init__(name="archive-writer", daemon=True)
        self.store = store  # the file, or a lake (archive/store.py)
        self.spool = store.spool
        self.on_run = on_run  # called with (run, connection) in the writer thread
        self.on_held = on_held  # called with a finished run while the archive is held
        self.tick = tick
        self._lock = threading.Lock()
        self._runs: list[RunDone] = []
        self._events: list[tuple[datetime, str, str | None, str | None]] = []
        self._halt = threading.Event()
        self._wake = threading.Event()
        self.busy_since: float | None = None
        self._last_end = 0.0
        self.sessions = 0
        self.held_max = 0.0
        self.held_total = 0.0
        # after an ingest that archived something: re-clean articles for learned boilerplate
        self.after_ingest: Callable[[], object] | None = None
        self.alerts: Any = None  # crawler.alerts.service.AlertService: enqueue after ingest, deliver between sessions

    def finish(self, run: RunDone) -> None:
        with self._lock:
            self._runs.append(run)
        self._wake.set()

    def event(self, kind: str, outlet: str | None = None, message: str | None = None) -> None:
        with self._lock:
            self._events.append((datetime.now(UTC), kind, outlet, message))
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        while True:
            stopping = self._halt.is_set()
            more = self._turn()
            with self._lock:
                idle = not self._runs and not self._events
            if stopping and idle and not more:
                if self.alerts is not None and self.alerts.wait_idle(3.0):
                    self._alerts_step(final=True)  # record what the sender finished
                self._final_checkpoint()
                return
            if not more:
                self._wake.wait(self.tick)
                self._wake.clear()

    def _final_checkpoint(self) -> None:
        """At stop, fold the log into the file: an archive at rest is one file to copy."""
        self._session()
        started = time.monotonic()
        try:
            self.store.checkpoint()
        except ArchiveError as exc:
            log.warning("final checkpoint skipped (%s); the log is replayed at the next open", exc)
        finally:
            self._held(started)

    def _session(self) -> None:
        """Wait out the gap since the last write session: a reader retrying with backoff
        (archive.db.connect_read, at most ~0.75 s between tries) always finds the file free."""
        wait = self._last_end + SESSION_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _after_ingest(self) -> None:
        """A re-clean is a bonus: when it fails, it is logged and tried after the next ingest
        (its queue is in the archive), the writer goes on."""
        if self.alerts is not None:
            self.alerts.ingested()
        try:
            assert self.after_ingest is not None
            self.after_ingest()
        except ArchiveError as exc:
            log.warning("boilerplate re-clean waits: %s", exc)
        except Exception:
            log.exception("boilerplate re-clean failed; it is retried after the next ingest")

    def _held(self, started: float) -> None:
        _trim_heap()
        self._last_end = time.monotonic()
        self.sessions += 1
        self.held_max = max(self.held_max, self._last_end - started)
        self.held_total += self._last_end - started

    def _turn(self) -> bool:
        """One bite of work; True when more is ready right now."""
        ingested = 0
        if ready_segments(self.spool):
            self._session()
            started = time.monotonic()
            try:
                step = self.store.ingest(time_budget=INGEST_BUDGET)
                ingested = step.segments
                if step.records and self.after_ingest is not None:
                    self._after_ingest()
                if self.busy_since is not None:
                    log.info(
                        "archive free again after %.0fs; ingest resumes",
                        time.monotonic() - self.busy_since,
                    )
                self.busy_since = None
            except ArchiveError as exc:
                if self.busy_since is None:
                    self.busy_since = time.monotonic()
                    log.warning("archive busy, ingest waits: %s", exc)
                if isinstance(exc, ArchiveLocked):
                    self._runs_while_held()
                return False
            except Exception:
                log.exception("ingest failed; the spool is kept and retried")
                time.sleep(1.0)
                return False
            finally:
                self._held(started)
        with self._lock:
            events, self._events = self._events, []
            runs = [r for r in self._runs if not self._pending_segments(r)]
            self._runs = [r for r in self._runs if r not in runs]
        if events or runs:
            self._session()
            started = time.monotonic()
            try:
                self._bookkeeping(events, runs)
            except Exception as exc:
                with self._lock:
                    self._events[:0] = events
                    self._runs[:0] = runs
                if isinstance(exc, ArchiveLocked):  # held by another program: kept for later
                    if self.busy_since is None:
                        self.busy_since = time.monotonic()
                        log.warning("archive busy, bookkeeping waits: %s", exc)
                    self._runs_while_held()
                else:
                    log.exception("bookkeeping failed; retried on the next turn")
                return False
            finally:
                self._held(started)
        self._alerts_step()
        return bool(ingested) and bool(ready_segments(self.spool))

    def _alerts_step(self, *, final: bool = False) -> None:
        """Alerts between sessions: a session of their own, only when they have work; the
        network I/O happens in the alerts' sender thread, outside any session."""
        if self.alerts is None or not self.alerts.wants_archive():
            return
        self._session()
        started = time.monotonic()
        try:
            self.alerts.step(final=final)
        except ArchiveError as exc:
            log.warning("alerts wait for the archive: %s", exc)
        except Exception:
            log.exception("alert step failed; retried on the next turn")
        finally:
            self._held(started)

    def _runs_while_held(self) -> None:
        """Crawling goes on while another program holds the archive: a finished run is
        rescheduled now, and judged (figures, health, state) once its records are in."""
        if self.on_held is None or not self.store.held_for_writing():
            return  # readers: short, the runs wait for their records as usual
        with self._lock:
            waiting = [r for r in self._runs if not r.foreign and not r.rescheduled]
            for run in waiting:
                run.rescheduled = True
        for run in waiting:
            self.on_held(run)

    def _pending_segments(self, run: RunDone) -> bool:
        prefix = f"{run.run_id}.{run.outlet}"
        if not self.spool.is_dir():
            return False
        if run.foreign and prefix in live_writers(self.spool):
            return True
        prefix += "-"
        return any(
            p.name.startswith(prefix) and p.name.endswith((PART, READY))
            for p in self.spool.iterdir()
        )

    def _bookkeeping(
        self, events: list[tuple[datetime, str, str | None, str | None]], runs: list[RunDone]
    ) -> None:
        now = datetime.now(UTC)
        with self.store.session() as con:
            # the supervisor's verdict in the same session: a held archive retries it with the rest
            for run in runs:
                if run.status != "ok" and not run.foreign:
                    self.store.runs.record_abnormal_end(
                        con,
                        run.run_id,
                        [run.outlet],
                        run.status,
                        abnormal_end_message(run.status, run.returncode),
                        now,
                    )
            self.store.runs.record_events(con, events)
            for run in runs:
                self.on_run(run, con)
                run.done.set()


_LIBC: Any = None


def _trim_heap() -> None:
    """Give freed heap back to the system after a write session: each session builds and
    drops a DuckDB instance and the records of a segment, and glibc would otherwise keep the
    high-water mark of every thread's arena for the daemon's whole life."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
