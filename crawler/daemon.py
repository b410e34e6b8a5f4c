"""`mediawatch run`: crawl every outlet on its own schedule, forever; `mediawatch status`.

Shape, and why:

- APScheduler 3 decides *when*; each run is a subprocess (`crawler.crawlproc`) so the
  Twisted reactor is fresh, memory returns to the system and a crashed or hung crawl
  cannot take the daemon down (a timeout stops it, then kills it).
- One thread, the ArchiveWriter, is the only one that opens the archive for writing:
  it ingests the spool of every crawl, records abnormal ends, daemon events and each
  outlet's scheduler state. `run_crawl` ingests too, but `ingest_spool` takes *every*
  ready segment, so two job threads ingesting at once would race on the same segment and
  on the search tables; one writer thread makes that impossible and keeps every write
  transaction short, so readers (`connect_read` retries) always get their turn.
- A job is paused while its crawl runs and rescheduled by the writer once the run's
  records are all ingested: the next delay is computed from what the run brought
  (adaptive interval, exponential back-off on failure), and runs of one outlet never overlap.
- Durable: crawls hand off through the spool; the daemon ingests it at start, so a
  kill -9 of the daemon or of a crawl loses nothing, and ingest is idempotent by record_id.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import logging.handlers
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from archive import runs as runs_db
from archive.db import (
    ArchiveError,
    ArchiveLocked,
    checkpoint,
    connect_read,
    held_for_writing,
    writer,
)
from archive.ingest import ingest_spool, quarantine_counts
from archive.spool import PART, READY, ready_segments, spool_dir_for
from crawler.outlets import Config, ConfigError, Outlet, read_config

log = logging.getLogger("mediawatch.daemon")

UNHEALTHY_AFTER = 3  # consecutive failed runs before an outlet is reported unhealthy
STOP_GRACE = 6.0  # seconds a crawl gets after SIGINT before it is killed
STOP_BUDGET = 16.0  # seconds from SIGTERM to exit, crawls and the last ingest included
CONFIG_CHECK_EVERY = 2.0  # seconds between config mtime checks
MISFIRE_GRACE = 300  # a run late by more than this (machine asleep) is skipped, not queued
CRON_JITTER = 30  # seconds: outlets sharing a cron line do not all start at once
LOGS_KEPT_PER_OUTLET = 20
BACKOFF_CEILING = 86400.0  # back-off never exceeds a day unless max_interval says more
INGEST_BUDGET = 1.0  # seconds of ingest per write session
SESSION_GAP = 0.8  # seconds the archive stays free between write sessions, for readers


# -- scheduling policy (pure) ------------------------------------------------------------------


@dataclass
class OutletState:
    """What the scheduler knows of an outlet; persisted in outlet_state."""

    outlet: str
    interval: float
    failures: int = 0
    healthy: bool = True
    reason: str | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    last_run_at: datetime | None = None
    last_new_at: datetime | None = None
    delay: float | None = None
    next_run_at: datetime | None = None


@dataclass
class RunFigures:
    run_id: str
    status: str
    requests: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    seconds: float = 0.0
    message: str | None = None


def bounds(outlet: Outlet) -> tuple[float, float, float]:
    """(base, low, high) poll interval; defaults every/4 .. every*4 so adaptation stays polite."""
    base = outlet.every_seconds or 1800.0
    low = outlet.min_interval_seconds or base / 4
    high = outlet.max_interval_seconds or base * 4
    return base, min(low, base), max(high, base)


def run_failed(run: RunFigures) -> bool:
    """A run fails when it did not end well, or had errors and brought nothing: every
    source answering 5xx ends 'ok' for Scrapy, and must not pass for a quiet outlet."""
    if run.status in ("failed", "crashed", "timeout"):
        return True
    return run.status == "ok" and run.errors > 0 and run.new == 0 and run.updated == 0


def backoff_cap(outlet: Outlet) -> float:
    high = bounds(outlet)[2]
    return max(high, min(4 * high, BACKOFF_CEILING))


def advance(outlet: Outlet, state: OutletState, run: RunFigures, now: datetime) -> OutletState:
    """The state after a run: interval shrinks when news arrives, grows slowly when polls
    come back empty (multiplicative, within bounds); failures back off exponentially."""
    _, low, high = bounds(outlet)
    interval = min(max(state.interval, low), high)
    new = replace(state, last_run_id=run.run_id, last_status=run.status, last_run_at=now)
    if run.status == "stopped":  # the operator stopped it: says nothing about the outlet
        new.interval = interval
        new.delay = interval
        return new
    if run_failed(run):
        new.failures = state.failures + 1
        new.interval = interval
        new.delay = min(backoff_cap(outlet), interval * 2**new.failures)
        if new.failures >= UNHEALTHY_AFTER:
            new.healthy = False
            why = run.message or (
                f"{run.errors} errors, nothing new" if run.status == "ok" else run.status
            )
            new.reason = f"{new.failures} consecutive failed runs (last: {why})"
        return new
    if run.new >= 3:
        interval *= 0.5
    elif run.new + run.updated > 0:
        interval *= 0.8
    else:
        interval *= 1.25
    new.interval = min(max(interval, low), high)
    new.failures = 0
    new.healthy = True
    new.reason = None
    new.delay = new.interval
    if run.new > 0:
        new.last_new_at = now
    return new


def jitter_for(delay: float) -> float:
    return min(delay * 0.1, 60.0)


# -- the single archive writer -----------------------------------------------------------------


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
        db: Path,
        on_run: Callable[[RunDone, Any], None],
        *,
        tick: float = 0.3,
        on_held: Callable[[RunDone], None] | None = None,
    ) -> None:
        super().__init__(name="archive-writer", daemon=True)
        self.db = db
        self.spool = spool_dir_for(db)
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
            checkpoint(self.db)
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
                step = ingest_spool(self.db, time_budget=INGEST_BUDGET)
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
        return bool(ingested) and bool(ready_segments(self.spool))

    def _runs_while_held(self) -> None:
        """Crawling goes on while another program holds the archive: a finished run is
        rescheduled now, and judged (figures, health, state) once its records are in."""
        if self.on_held is None or not held_for_writing(self.db):
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
        if run.foreign and prefix in _live_writers(self.spool):
            return True
        prefix += "-"
        return any(
            p.name.startswith(prefix) and p.name.endswith((PART, READY))
            for p in self.spool.iterdir()
        )

    def _bookkeeping(
        self, events: list[tuple[datetime, str, str | None, str | None]], runs: list[RunDone]
    ) -> None:
        from crawler.runner import abnormal_end_message

        now = datetime.now(UTC)
        with writer(self.db) as con:
            # the supervisor's verdict in the same session: a held archive retries it with the rest
            for run in runs:
                if run.status != "ok" and not run.foreign:
                    runs_db.record_abnormal_end(
                        con,
                        run.run_id,
                        [run.outlet],
                        run.status,
                        abnormal_end_message(run.status, run.returncode),
                        now,
                    )
            runs_db.record_events(con, events)
            for run in runs:
                self.on_run(run, con)
                run.done.set()


# -- the daemon --------------------------------------------------------------------------------


def _read_config(path: Path) -> tuple[Config, bytes]:
    """Parse the config from one read of the file, so the snapshot is what was validated."""
    return read_config(path)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class DaemonLock:
    """An flock beside the archive: one daemon per archive; free again when the holder dies."""

    def __init__(self, db: Path) -> None:
        db = db.resolve()  # a symlink to the archive (or its directory) is the same archive
        self.path = db.with_name(db.name + ".daemon.lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ArchiveError(
                f"another mediawatch daemon (pid {holder}) is running on this archive "
                f"(lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd


class Daemon:
    def __init__(self, config_path: Path, db: Path, *, max_parallel: int = 4) -> None:
        self.config_path = config_path
        self.db = db
        self.logs = db.parent / "logs"
        self.snapshot = db.with_name(db.name + ".daemon-config.toml")
        self.max_parallel = max_parallel
        # Up to max_parallel crawls run at once, each with its own cleaning pool: the cores
        # are shared between them, not given to each (4 crawls x 2 cores was 8 workers).
        self.crawl_workers = max(1, (os.cpu_count() or 1) // max_parallel)
        self.stopping = threading.Event()
        self.hup = threading.Event()
        self.states: dict[str, OutletState] = {}
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._state_lock = threading.Lock()
        self.config: Config
        self._config_mtime: float | None = None
        self.writer = ArchiveWriter(db, self._run_finished, on_held=self._run_held)
        self.writer.after_ingest = self._reclean_learned
        self.scheduler: Any = None

    def _reclean_learned(self) -> int:
        # imported here: the cleaning stack (trafilatura, datasketch, scipy) costs the CLI ~0.4 s
        from crawler.reprocess import reclean_learned

        return reclean_learned(self.db, self.config)

    # config -----------------------------------------------------------------------------------

    def load_initial_config(self) -> bytes:
        self.config, raw = _read_config(self.config_path)
        self._config_mtime = _mtime(self.config_path)
        return raw

    def write_snapshot(self, raw: bytes) -> None:
        """Crawls read this copy, so a broken edit of the user's file never reaches them."""
        tmp = self.snapshot.with_name(self.snapshot.name + ".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, self.snapshot)

    def reload_config(self, why: str) -> None:
        mtime = _mtime(self.config_path)
        try:
            config, raw = _read_config(self.config_path)
        except ConfigError as exc:
            self._config_mtime = mtime
            log.error("config not reloaded (%s), still running on the previous one: %s", why, exc)
            self.writer.event("config_invalid", None, str(exc))
            return
        self._config_mtime = mtime
        self.write_snapshot(raw)
        old = {o.name: o for o in self.config.outlets}
        self.config = config
        new = {o.name: o for o in config.outlets}
        for name in old.keys() - new.keys():
            self._remove_job(name)
        for name, outlet in new.items():
            if name not in old:
                self._add_job(outlet)
            elif _schedule_key(old[name]) != _schedule_key(outlet):
                with self._state_lock:
                    self.states[name] = OutletState(name, bounds(outlet)[0])
                if name not in self.running:
                    self._schedule(name, bounds(outlet)[0] * random.uniform(0, 0.25))
        summary = (
            f"{len(new)} outlets (added {sorted(new.keys() - old.keys()) or 'none'}, "
            f"removed {sorted(old.keys() - new.keys()) or 'none'})"
        )
        log.info("config reloaded (%s): %s", why, summary)
        self.writer.event("config_reloaded", None, summary)

    def outlet(self, name: str) -> Outlet | None:
        for o in self.config.outlets:
            if o.name == name:
                return o
        return None

    # archive ----------------------------------------------------------------------------------

    def prepare_archive(self) -> None:
        """Ingest what earlier crawls left in the spool, close runs whose crawl is gone,
        and read back each outlet's scheduler state."""
        started = time.monotonic()
        total = 0
        while True:
            step = ingest_spool(self.db)
            total += step.records
            if not step.segments:
                break
            time.sleep(SESSION_GAP / 4)
        if total:
            log.info(
                "ingested %d records left in the spool (%.1fs)", total, time.monotonic() - started
            )
        with writer(self.db) as con:
            spool = spool_dir_for(self.db)
            # A crawl of an earlier daemon may still be finishing, or have left segments that a
            # reader kept us from ingesting: judge those runs once their last record is in.
            # A crawl still running may not even have its run_start in the archive yet: the
            # spool (its lock, its segments) is what tells.
            unfinished = _live_writers(spool) | {
                p.name.rsplit("-", 1)[0]
                for p in (spool.iterdir() if spool.is_dir() else [])
                if p.name.endswith((PART, READY))
            }
            for prefix in sorted(unfinished):
                run_id, _, outlet = prefix.partition(".")
                self.writer.finish(RunDone(outlet, run_id, "running", 0, 0.0, foreign=True))
            runs_db.close_orphan_runs(con, unfinished)
            for outlet_name in runs_db.outlets_last_run_unfinished(con):
                _forget_validators(con, outlet_name)
            rows = runs_db.load_outlet_states(con)
        for row in rows:
            if self.outlet(row[0]) is None:
                continue
            self.states[row[0]] = OutletState(
                row[0],
                float(row[1]),
                int(row[2]),
                bool(row[3]),
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
            )

    def _run_held(self, run: RunDone) -> None:
        """In the writer thread, while the archive is held: the run's records wait in the
        spool; the outlet's next run is not made to wait for them (its interval, no back-off)."""
        with self._state_lock:
            state = self.states.get(run.outlet)
        outlet = self.outlet(run.outlet)
        delay = (
            (state.delay or state.interval) if state else bounds(outlet)[0] if outlet else 1800.0
        )
        self._schedule(run.outlet, delay)
        log.info(
            "%s run %s %s; the archive is held, its records wait in the spool; next in %.1fs",
            run.outlet,
            run.run_id,
            run.status,
            delay,
        )

    def _run_finished(self, run: RunDone, con: Any) -> None:
        """In the writer thread, once every record of the run is ingested: figures, new
        state, the log line, the next run."""
        row = runs_db.run_figures(con, run.run_id, run.outlet)
        status = row[0] if row is not None and row[0] != "running" else run.status
        if run.status in ("stopped", "timeout"):
            status = run.status  # we stopped it (then maybe killed it): not the outlet's fault
        if status != "ok" or run.foreign:
            # An orphan of a dead daemon was stopped by SIGTERM half-way, whatever its record
            # says (the spool pipeline records the run before Scrapy sets finish_reason).
            _forget_validators(con, run.outlet)
        if run.foreign:
            return
        if row is None:
            figures = RunFigures(run.run_id, status, seconds=run.seconds)
        else:
            skipped = json.loads(row[4]) if row[4] else {}
            figures = RunFigures(
                run.run_id,
                status,
                row[1] or 0,
                row[2] or 0,
                row[3] or 0,
                sum(v for k, v in skipped.items() if not k.startswith("filtered/")),
                row[5] or 0,
                run.seconds,
                row[6],
            )
        outlet = self.outlet(run.outlet)
        now = datetime.now(UTC)
        with self._state_lock:
            previous = self.states.get(run.outlet) or OutletState(
                run.outlet, bounds(outlet)[0] if outlet else 1800.0
            )
            state = (
                advance(outlet, previous, figures, now)
                if outlet
                else replace(previous, last_run_id=run.run_id)
            )
            self.states[run.outlet] = state
        delay = state.delay or state.interval
        # a run rescheduled while the archive was held: the outlet has run on since
        next_at = (
            self._schedule(run.outlet, delay, failures=state.failures)
            if outlet and not run.rescheduled
            else None
        )
        state.next_run_at = next_at or (now + timedelta(seconds=delay))
        runs_db.save_outlet_state(
            con,
            run.outlet,
            next_run_at=state.next_run_at,
            interval=state.interval,
            delay=delay,
            failures=state.failures,
            healthy=state.healthy,
            reason=state.reason,
            last_run_id=state.last_run_id,
            last_status=state.last_status,
            last_run_at=state.last_run_at,
            last_new_at=state.last_new_at,
            now=now,
        )
        if previous.healthy and not state.healthy:
            log.warning("%s is unhealthy: %s", run.outlet, state.reason)
            runs_db.record_events(con, [(now, "unhealthy", run.outlet, state.reason)])
        elif state.healthy and not previous.healthy:
            log.info("%s recovered", run.outlet)
            runs_db.record_events(con, [(now, "recovered", run.outlet, None)])
        failing = f", failing x{state.failures}" if state.failures else ""
        log.log(
            logging.WARNING if run_failed(figures) else logging.INFO,
            "%s run %s %s: %d requests, %d new, %d updated, %d skipped, %d errors, %.1fs; "
            "next in %.1fs (interval %.1fs%s)",
            run.outlet,
            run.run_id,
            figures.status,
            figures.requests,
            figures.new,
            figures.updated,
            figures.skipped,
            figures.errors,
            run.seconds,
            delay,
            state.interval,
            failing,
        )

    # scheduling -------------------------------------------------------------------------------

    def _add_job(self, outlet: Outlet) -> None:
        with self._state_lock:
            state = self.states.setdefault(outlet.name, OutletState(outlet.name, bounds(outlet)[0]))
        now = datetime.now(UTC)
        first = now + timedelta(seconds=random.uniform(0, min(0.25 * state.interval, 10.0)))
        if state.next_run_at is not None:
            # resume where the previous daemon left off, but never later than one delay from now
            first = min(
                max(state.next_run_at, first),
                now + timedelta(seconds=state.delay or state.interval),
            )
        self.scheduler.add_job(
            self._crawl_job,
            trigger=self._trigger(outlet, state.delay or state.interval),
            args=[outlet.name],
            id=outlet.name,
            name=f"crawl {outlet.name}",
            executor="crawls",
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE,
            replace_existing=True,
        )

    def _remove_job(self, name: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(name)

    def _trigger(self, outlet: Outlet, delay: float) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if outlet.cron:
            trigger = CronTrigger.from_crontab(outlet.cron, timezone=UTC)
            trigger.jitter = CRON_JITTER
            return trigger
        return IntervalTrigger(seconds=delay, jitter=jitter_for(delay), timezone=UTC)

    def _schedule(self, name: str, delay: float, *, failures: int = 0) -> datetime | None:
        """Next run of an outlet `delay` seconds from now (a cron outlet: its next cron time,
        pushed back by the back-off while it fails)."""
        outlet = self.outlet(name)
        if outlet is None or self.stopping.is_set() or self.scheduler is None:
            return None
        try:
            job = self.scheduler.reschedule_job(
                name, trigger=self._trigger(outlet, max(delay, 0.05))
            )
            if outlet.cron and failures:
                backoff_at = datetime.now(UTC) + timedelta(seconds=delay)
                if job.next_run_time is not None and job.next_run_time < backoff_at:
                    job = self.scheduler.modify_job(name, next_run_time=backoff_at)
            return job.next_run_time
        except Exception as exc:  # removed by a reload, or the scheduler is shutting down
            log.debug("not rescheduled %s: %s", name, exc)
            return None

    def _on_submitted(self, event: Any) -> None:
        with contextlib.suppress(Exception):
            self.scheduler.pause_job(event.job_id)

    def _crawl_job(self, name: str) -> None:
        """One run of one outlet, in a pool thread. The job is paused while it runs; the
        writer reschedules it once the run is ingested."""
        if self.stopping.is_set():
            return
        from crawler.runner import new_run_id, start_crawl

        outlet = self.outlet(name)
        if outlet is None:
            return
        try:
            self.scheduler.pause_job(name)
        except Exception:
            return
        if any(
            prefix.partition(".")[2] == name for prefix in _live_writers(spool_dir_for(self.db))
        ):
            # A crawl of this outlet started by an earlier daemon (killed -9) still runs: two
            # crawls of one outlet at once would fetch the same pages twice.
            log.info(
                "%s: a crawl of an earlier daemon is still running; this run waits for it", name
            )
            self._schedule(name, 2.0)
            return
        run_id = new_run_id()
        started = time.monotonic()
        status: str | None = None
        returncode = -1
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            proc = start_crawl(
                self.snapshot,
                self.db,
                [name],
                run_id,
                log_path=self.logs / f"{name}.{run_id}.log",
                workers=self.crawl_workers,
            )
        except OSError as exc:
            log.error("%s: cannot start the crawl: %s", name, exc)
            self.writer.finish(RunDone(name, run_id, "failed", 127, 0.0))
            return
        self.running[name] = proc
        stop_sent: float | None = None
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                elapsed = time.monotonic() - started
                if status is None and (elapsed > outlet.timeout_seconds or self.stopping.is_set()):
                    status = "timeout" if elapsed > outlet.timeout_seconds else "stopped"
                    proc.send_signal(signal.SIGINT)  # Scrapy closes the spider cleanly
                    stop_sent = time.monotonic()
                    if status == "timeout":
                        log.warning(
                            "%s run %s timed out after %.0fs: stopping it", name, run_id, elapsed
                        )
                if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE:
                    log.warning(
                        "%s run %s did not stop in %.0fs: killing it", name, run_id, STOP_GRACE
                    )
                    _kill_group(proc)
                    stop_sent = float("inf")
        except Exception:  # never leave the job paused for good: the writer reschedules it
            log.exception("%s run %s: supervising the crawl failed; killing it", name, run_id)
            _kill_group(proc)
            returncode = proc.wait()
            status = status or "failed"
        finally:
            self.running.pop(name, None)
        if status is None:
            status = "ok" if returncode == 0 else ("crashed" if returncode < 0 else "failed")
        self.writer.finish(RunDone(name, run_id, status, returncode, time.monotonic() - started))
        _prune_logs(self.logs, name)

    # life -------------------------------------------------------------------------------------

    def serve(self) -> int:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(
            executors={"crawls": ThreadPoolExecutor(self.max_parallel)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE,
            },
            timezone=UTC,
        )
        from apscheduler.events import EVENT_JOB_SUBMITTED

        # Paused from submission (not from when a pool thread picks it up), so a job waiting
        # for a free thread is not fired again and again ("maximum number of instances").
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self.writer.start()
        self.writer.event(
            "start", None, f"{len(self.config.outlets)} outlets, config {self.config_path}"
        )
        for outlet in self.config.outlets:
            self._add_job(outlet)
        self.scheduler.start()
        log.info(
            "daemon %d running %d outlets on %s (config %s); stop with SIGTERM or Ctrl-C",
            os.getpid(),
            len(self.config.outlets),
            self.db,
            self.config_path,
        )
        last_check = time.monotonic()
        while not self.stopping.is_set():
            self.stopping.wait(0.5)
            if self.stopping.is_set():
                break
            if self.hup.is_set():
                self.hup.clear()
                self.reload_config("SIGHUP")
                last_check = time.monotonic()
            elif time.monotonic() - last_check >= CONFIG_CHECK_EVERY:
                last_check = time.monotonic()
                if _mtime(self.config_path) != self._config_mtime:
                    self.reload_config("file changed")
            if not self.writer.is_alive():
                log.error("the archive writer died; stopping")
                self.stopping.set()
        return self.shutdown()

    def shutdown(self) -> int:
        started = time.monotonic()
        log.info("stopping: %d crawls running", len(self.running))
        self.stopping.set()
        self.scheduler.shutdown(wait=True)  # job threads stop their crawls (SIGINT, then kill)
        self.writer.event("stop", None, None)
        self.writer.stop()
        # Bounded: what the writer has not ingested by then stays in the spool, durable, and
        # is ingested at the next start (an interrupted transaction is rolled back by DuckDB).
        self.writer.join(timeout=max(1.0, STOP_BUDGET - (time.monotonic() - started)))
        if self.writer.is_alive():
            log.warning("archive writer still busy at the stop deadline; the spool keeps the rest")
        left = len(ready_segments(spool_dir_for(self.db)))
        w = self.writer
        if w.sessions:
            log.info(
                "archive writer: %d write sessions, %.2fs mean, %.2fs longest",
                w.sessions,
                w.held_total / w.sessions,
                w.held_max,
            )
        log.info(
            "stopped in %.1fs%s",
            time.monotonic() - started,
            f"; {left} spool segments left for the next start" if left else "",
        )
        return 0


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


def _forget_validators(con: Any, outlet: str) -> None:
    """A run that did not finish may have stored a feed's ETag without fetching the articles
    the feed listed; the next run must GET the feed in full, or those articles hide behind 304s."""
    dropped = runs_db.forget_validators(con, outlet)
    if dropped:
        log.info(
            "%s: %d feed/sitemap validators dropped after an unfinished run; next run fetches them in full",
            outlet,
            dropped,
        )


def _schedule_key(o: Outlet) -> tuple[Any, ...]:
    return (o.every_seconds, o.cron, o.min_interval_seconds, o.max_interval_seconds)


def _live_writers(spool: Path) -> set[str]:
    """Spool prefixes (run_id.outlet) whose crawl process still holds its lock."""
    alive: set[str] = set()
    if not spool.is_dir():
        return alive
    for lock in spool.glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alive.add(lock.name[: -len(".lock")])
        finally:
            os.close(fd)
    return alive


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The crawl runs in its own session (start_new_session): kill it and its cleaning workers."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _prune_logs(logs: Path, outlet: str) -> None:
    files = sorted(logs.glob(f"{outlet}.*.log"))
    for old in files[:-LOGS_KEPT_PER_OUTLET]:
        old.unlink(missing_ok=True)


def setup_logging(logs: Path | None, level: str) -> None:
    """Our loggers (the daemon's, and the archive's: a quarantined record, a failed
    checkpoint) to stderr and, given a directory, to its rotating daemon.log."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logs is not None:
        try:
            logs.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    logs / "daemon.log", maxBytes=10_000_000, backupCount=3, encoding="utf-8"
                )
            )
        except OSError as exc:
            print(f"warning: no daemon log file in {logs}: {exc.strerror}", file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(fmt)
    for name, lvl in (("mediawatch", level), ("archive", level), ("apscheduler", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(lvl)
        logger.propagate = False


# -- status ------------------------------------------------------------------------------------

STATUS_COLUMNS = (
    "outlet",
    "healthy",
    "health_reason",
    "last_run_id",
    "last_run_at",
    "last_run_status",
    "last_run_requests",
    "last_run_new",
    "last_run_updated",
    "last_run_errors",
    "last_run_seconds",
    "next_run_at",
    "interval_seconds",
    "delay_seconds",
    "consecutive_failures",
    "runs_24h",
    "failed_runs_24h",
    "run_failure_rate_24h",
    "articles_24h",
    "articles_total",
    "pages_24h",
    "error_rate_24h",
    "empty_extraction_rate_24h",
    "last_article_at",
    "days_since_new_article",
    "last_run_failed",
    "last_run_failure",
)


def read_status(db: Path, configured: list[str] | None = None) -> list[dict[str, Any]]:
    """Per-outlet status from the outlet_status view, opened read-only (never the daemon's lock)."""
    con = connect_read(db)
    try:
        try:
            rows = runs_db.status_rows(con, STATUS_COLUMNS)
        except Exception as exc:
            if "outlet_status" not in str(exc):
                raise
            raise ArchiveError(
                f"{db}: this archive has no daemon state yet; start `mediawatch run` once"
            ) from None
        quarantine = quarantine_counts(con)
    finally:
        con.close()
    running = daemon_pid(db)
    out = [
        dict(zip(STATUS_COLUMNS, row, strict=True)) | {"daemon_running": running is not None}
        for row in rows
    ]
    for r in out:
        r["quarantined"], r["quarantine_reason"] = quarantine.get(r["outlet"], (0, None))[:2]
    known = {r["outlet"] for r in out}
    for name in configured or []:
        if name not in known:
            out.append(
                {c: None for c in STATUS_COLUMNS}
                | {
                    "outlet": name,
                    "runs_24h": 0,
                    "articles_24h": 0,
                    "daemon_running": running is not None,
                }
            )
    if configured is not None:
        for r in out:
            r["configured"] = r["outlet"] in configured
    return sorted(out, key=lambda r: r["outlet"])


def daemon_pid(db: Path) -> int | None:
    """The running daemon's pid, from its lock file and /proc, without touching the lock
    (a probe flock could make a starting daemon think another one runs)."""
    try:
        db = db.resolve()
        pid = int(db.with_name(db.name + ".daemon.lock").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"mediawatch" in cmdline and b"run" in cmdline else None


def _print_status_table(rows: list[dict[str, Any]], db: Path) -> None:
    from crawler.status_view import print_status

    notes = [
        f"{r['outlet']}: {r['quarantined']} spool records quarantined (latest: {r['quarantine_reason']}); "
        "see table spool_quarantine"
        for r in rows
        if r.get("quarantined")
    ]
    print_status(rows, db, daemon_pid(db), notes=notes)


# -- commands ----------------------------------------------------------------------------------


def register(group: click.Group) -> None:
    from crawler.options import config_option, db_option, fail

    @group.command("run")
    @config_option
    @db_option
    @click.option(
        "--max-parallel",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Crawls running at the same time.",
    )
    @click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    )
    def run_cmd(config_path: str, db_path: str, max_parallel: int, log_level: str) -> None:
        """Crawl every outlet on its own schedule, forever, as the archive's single writer.

        Runs one crawl process per outlet run; re-reads the config on SIGHUP or when the file
        changes (a broken config keeps the previous one); stops cleanly on SIGTERM / Ctrl-C.
        Crawl logs go to <db dir>/logs/. Query the archive meanwhile from another shell.

        \b
        Example:
          mediawatch run --config outlets.toml --db data/archive.duckdb
          kill -HUP $(cat data/archive.duckdb.daemon.lock)   # reload the config
        """
        db = Path(db_path).resolve()  # the lock, spool and logs of the file, not of a symlink to it
        daemon = Daemon(Path(config_path), db, max_parallel=max_parallel)
        try:
            raw = daemon.load_initial_config()
        except ConfigError as exc:
            fail(str(exc), 2)
        lock = DaemonLock(db)
        try:
            lock.acquire()
        except ArchiveError as exc:
            fail(str(exc), 1)
        except OSError as exc:
            fail(f"{lock.path}: cannot take the daemon lock: {exc.strerror}")
        try:
            daemon.write_snapshot(raw)
        except OSError as exc:
            fail(f"{daemon.snapshot}: cannot write the config snapshot: {exc.strerror}")
        setup_logging(daemon.logs, log_level.upper())

        def on_stop(signum: int, _frame: Any) -> None:
            if daemon.stopping.is_set():
                log.info("already stopping (signal %d)", signum)
            daemon.stopping.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, lambda *_: daemon.hup.set())
        waited = False
        while True:
            try:
                daemon.prepare_archive()
                break
            except ArchiveError as exc:
                if not isinstance(exc, ArchiveLocked):
                    fail(str(exc))
                if not waited:  # a user's long query: wait for it rather than refuse to start
                    log.warning("archive busy at start, waiting: %s", exc)
                    waited = True
                if daemon.stopping.wait(2.0):
                    sys.exit(0)
        sys.exit(daemon.serve())

    del run_cmd

    @group.command("status")
    @db_option
    @click.option(
        "--config",
        "config_path",
        envvar="MEDIAWATCH_CONFIG",
        default=None,
        type=click.Path(dir_okay=False),
        help="Also list the config's outlets that never ran. Env: MEDIAWATCH_CONFIG.",
    )
    @click.option(
        "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
    )
    def status_cmd(db_path: str, config_path: str | None, fmt: str) -> None:
        """Per outlet: last run and its result, next run, articles in 24 h, error and
        empty-extraction rates, days since the last new article, health. Read-only: safe
        while the daemon runs. The same figures are the SQL view outlet_status.

        \b
        Example:
          mediawatch status --db data/archive.duckdb
          mediawatch status --format json | jq '.[] | select(.healthy == false)'
        """
        configured: list[str] | None = None
        snapshot = Path(db_path).with_name(Path(db_path).name + ".daemon-config.toml")
        if not config_path and snapshot.exists():
            config_path = str(
                snapshot
            )  # what the daemon runs: outlets removed from it are not shown as ok
        if config_path:
            try:
                configured = [o.name for o in _read_config(Path(config_path))[0].outlets]
            except ConfigError as exc:
                click.echo(f"warning: {exc}; showing the archive only", err=True)
        try:
            rows = read_status(Path(db_path), configured)
        except ArchiveError as exc:
            fail(str(exc))
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, default=_json_default))
        else:
            _print_status_table(rows, Path(db_path))

    del status_cmd


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)
