"""`mediawatch run`: crawl every outlet on its own schedule, forever.

Shape, and why:

- APScheduler 3 decides *when*; each run is a subprocess started, watched and stopped by
  crawler/scheduler/supervisor.py (the same code as `mediawatch crawl`), so the Twisted
  reactor is fresh, memory returns to the system and a crashed or hung crawl cannot take the
  daemon down.
- One thread, the ArchiveWriter (writer.py), is the only one that opens the archive for
  writing: it ingests the spool of every crawl, records abnormal ends, daemon events and each
  outlet's scheduler state (policy.py decides the next delay).
- A job is paused while its crawl runs and rescheduled by the writer once the run's
  records are all ingested: the next delay is computed from what the run brought
  (adaptive interval, exponential back-off on failure), and runs of one outlet never overlap.
- Durable: crawls hand off through the spool; the daemon ingests it at start, so a
  kill -9 of the daemon or of a crawl loses nothing, and ingest is idempotent by record_id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import subprocess
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.db import ArchiveError
from archive.spool import live_writers, ready_segments, unfinished_runs
from archive.store import open_store
from crawler.outlets import Config, ConfigError, Outlet, read_config
from crawler.scheduler.logs import prune_logs
from crawler.scheduler.policy import (
    OutletState,
    RunFigures,
    advance,
    bounds,
    jitter_for,
    run_failed,
)
from crawler.scheduler.supervisor import new_run_id, start_crawl, supervise
from crawler.scheduler.writer import SESSION_GAP, ArchiveWriter, RunDone

log = logging.getLogger("mediawatch.daemon")

STOP_BUDGET = 16.0  # seconds from SIGTERM to exit, crawls and the last ingest included
CONFIG_CHECK_EVERY = 2.0  # seconds between config mtime checks
MISFIRE_GRACE = 300  # a run late by more than this (machine asleep) is skipped, not queued
CRON_JITTER = 30  # seconds: outlets sharing a cron line do not all start at once


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


COMPACT_JOB = "~compact"  # no outlet name starts with "~" (crawler.outlets)


class Daemon:
    """Schedules every outlet's runs, supervises them (one job thread each), and hands their
    ends to the ArchiveWriter, which judges them and schedules the next run."""

    def __init__(
        self,
        config_path: Path,
        db: Path | str,
        *,
        max_parallel: int = 4,
        lease: float | None = None,
        compact_every: float = 3600.0,
    ) -> None:
        self.config_path = config_path
        self.db = db  # the file's resolved path, or a lake URL
        self.store = open_store(db)
        self.logs = self.store.home / "logs"
        self.snapshot = (
            self.store.home / "daemon-config.toml"
            if self.store.lake
            else Path(db).with_name(Path(db).name + ".daemon-config.toml")
        )
        self.max_parallel = max_parallel
        self.compact_every = compact_every  # on a lake (archive/lake/compact.py)
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
        self.writer = ArchiveWriter(self.store, self._run_finished, on_held=self._run_held)
        self.writer.after_ingest = self._reclean_learned  # the writer also tells its alerts
        from crawler.alerts.service import AlertService  # feedgen, smtplib: only the daemon

        self.writer.alerts = AlertService(db if self.store.lake else Path(db), lambda: self.config)
        self.scheduler: Any = None
        self.leases: Any = None  # crawler.scheduler.leasing.LeaseKeeper, on a lake
        if self.store.lake:
            from crawler.scheduler.leasing import DEFAULT_LEASE, LeaseKeeper

            self.leases = LeaseKeeper(
                self.store.target,  # type: ignore[attr-defined]
                str(self.store.home),
                lease or DEFAULT_LEASE,
                lambda: [o.name for o in self.config.outlets],
                lambda: set(self.running),
                lambda name: self._schedule(name, random.uniform(0.05, 0.5)),
            )

    def _compact(self) -> None:
        """The lake's maintenance, on its own schedule; the advisory lock inside makes it one
        daemon of the lake at a time, and a failed step is tried again next time."""
        from archive.lake.compact import compact

        try:
            report = compact(self.store.target)  # type: ignore[attr-defined]
        except ArchiveError as exc:
            log.warning("lake compaction: %s", exc)
            return
        if report.ran:
            self.writer.event("compacted", None, report.summary())

    def _reclean_learned(self) -> int:
        # imported here: the cleaning stack (trafilatura, datasketch, scipy) costs the CLI ~0.4 s
        from crawler.reprocess import reclean_learned

        return reclean_learned(self.db, self.config)

    # config -----------------------------------------------------------------------------------

    def load_initial_config(self) -> bytes:
        self.config, raw = read_config(self.config_path)
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
            config, raw = read_config(self.config_path)
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
            step = self.store.ingest()
            total += step.records
            if not step.segments:
                break
            time.sleep(SESSION_GAP / 4)
        if total:
            log.info(
                "ingested %d records left in the spool (%.1fs)", total, time.monotonic() - started
            )
        with self.store.session() as con:
            spool = self.store.spool
            # A crawl of an earlier daemon may still be finishing, or have left segments that a
            # reader kept us from ingesting: judge those runs once their last record is in.
            # A crawl still running may not even have its run_start in the archive yet: the
            # spool (its lock, its segments) is what tells.
            unfinished = unfinished_runs(spool)
            for prefix in sorted(unfinished):
                run_id, _, outlet = prefix.partition(".")
                self.writer.finish(RunDone(outlet, run_id, "running", 0, 0.0, foreign=True))
            self.store.runs.close_orphan_runs(con, unfinished)
            for outlet_name in self.store.runs.outlets_last_run_unfinished(con):
                _forget_validators(self.store.runs, con, outlet_name)
            rows = self.store.runs.load_outlet_states(con)
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
        row = self.store.runs.run_figures(con, run.run_id, run.outlet)
        if (
            self.leases is not None
            and not run.foreign
            and (
                (row is not None and row[0] == "fenced")
                or self.leases.fence_for(run.outlet) is None
            )
        ):
            log.info("%s run %s: the outlet is another daemon's now", run.outlet, run.run_id)
            return  # its state and next run are that daemon's
        status = row[0] if row is not None and row[0] != "running" else run.status
        if run.status in ("stopped", "timeout"):
            status = run.status  # we stopped it (then maybe killed it): not the outlet's fault
        if status != "ok" or run.foreign:
            # An orphan of a dead daemon was stopped by SIGTERM half-way, whatever its record
            # says (the spool pipeline records the run before Scrapy sets finish_reason).
            _forget_validators(self.store.runs, con, run.outlet)
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
        self.store.runs.save_outlet_state(
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
            self.store.runs.record_events(con, [(now, "unhealthy", run.outlet, state.reason)])
        elif state.healthy and not previous.healthy:
            log.info("%s recovered", run.outlet)
            self.store.runs.record_events(con, [(now, "recovered", run.outlet, None)])
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
        if event.job_id == COMPACT_JOB:  # not an outlet's run: nothing reschedules it
            return
        with contextlib.suppress(Exception):
            self.scheduler.pause_job(event.job_id)

    def _crawl_job(self, name: str) -> None:
        """One run of one outlet, in a pool thread. The job is paused while it runs; the
        writer reschedules it once the run is ingested."""
        if self.stopping.is_set():
            return
        outlet = self.outlet(name)
        if outlet is None:
            return
        try:
            self.scheduler.pause_job(name)
        except Exception:
            return
        if any(prefix.partition(".")[2] == name for prefix in live_writers(self.store.spool)):
            # A crawl of this outlet started by an earlier daemon (killed -9) still runs: two
            # crawls of one outlet at once would fetch the same pages twice.
            log.info(
                "%s: a crawl of an earlier daemon is still running; this run waits for it", name
            )
            self._schedule(name, 2.0)
            return
        run_id = new_run_id()
        fence = self.leases.fence_for(name) if self.leases else None
        if self.leases and (fence is None or not self.leases.start_run(name, fence, run_id)):
            log.debug("%s: another daemon holds it; its job waits for the lease", name)
            return  # paused: the lease keeper resumes it when this daemon takes the outlet
        log_path = self.logs / f"{name}.{run_id}.log"
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            proc = start_crawl(
                self.snapshot,
                self.db,
                [name],
                run_id,
                log_path=log_path,
                workers=self.crawl_workers,
            )
        except OSError as exc:
            log.error("%s: cannot start the crawl: %s", name, exc)
            self.writer.finish(RunDone(name, run_id, "failed", 127, 0.0))
            return
        self.running[name] = proc
        try:
            end = supervise(
                proc,
                timeout=outlet.timeout_seconds,
                label=f"{name} run {run_id}",
                should_stop=lambda: self.stopping.is_set() or self._lease_lost(name, fence),
                log_path=log_path,
            )
            status, returncode, seconds = end.status, end.returncode, end.seconds
        except Exception:  # never leave the job paused for good: the writer reschedules it
            log.exception("%s run %s: supervising the crawl failed; it was killed", name, run_id)
            status, returncode, seconds = (
                "failed",
                proc.returncode if proc.returncode is not None else -9,
                0.0,
            )
        finally:
            self.running.pop(name, None)
        self.writer.finish(RunDone(name, run_id, status, returncode, seconds))
        prune_logs(self.logs, name)

    def _lease_lost(self, name: str, fence: int | None) -> bool:
        """The run's lease was not renewed in time (this daemon froze, or lost the lake): stop
        its crawl; what it spools after a take-over is refused at ingest (the fence)."""
        if self.leases is None or fence is None or self.leases.still_holds(name, fence):
            return False
        log.warning("%s: lease lost during the run; stopping its crawl", name)
        return True

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
        if self.store.lake:
            self.scheduler.add_job(
                self._compact, "interval", seconds=self.compact_every, id=COMPACT_JOB
            )
        self.scheduler.start()
        if self.leases is not None:
            self.leases.start()
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
        if self.leases is not None:
            self.leases.stop()  # given back: another daemon takes the outlets at once
        self.writer.event("stop", None, None)
        self.writer.stop()
        # Bounded: what the writer has not ingested by then stays in the spool, durable, and
        # is ingested at the next start (an interrupted transaction is rolled back by DuckDB).
        self.writer.join(timeout=max(1.0, STOP_BUDGET - (time.monotonic() - started)))
        if self.writer.is_alive():
            log.warning("archive writer still busy at the stop deadline; the spool keeps the rest")
        left = len(ready_segments(self.store.spool))
        w = self.writer
        if w.sessions:
            log.info(
                "archive writer: %d write sessions, %.2fs mean, %.2fs longest",
                w.sessions,
                w.held_total / w.sessions,
                w.held_max,
            )
        if not self.writer.is_alive():
            self.store.close()
        log.info(
            "stopped in %.1fs%s",
            time.monotonic() - started,
            f"; {left} spool segments left for the next start" if left else "",
        )
        return 0


def _forget_validators(runs: Any, con: Any, outlet: str) -> None:
    """A run that did not finish may have stored a feed's ETag without fetching the articles
    the feed listed; the next run must GET the feed in full, or those articles hide behind 304s."""
    dropped = runs.forget_validators(con, outlet)
    if dropped:
        log.info(
            "%s: %d feed/sitemap validators dropped after an unfinished run; next run fetches them in full",
            outlet,
            dropped,
        )


def _schedule_key(o: Outlet) -> tuple[Any, ...]:
    return (o.every_seconds, o.cron, o.min_interval_seconds, o.max_interval_seconds)
