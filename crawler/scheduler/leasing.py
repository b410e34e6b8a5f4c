"""Which outlets this daemon crawls when several share a lake: a thread that keeps its leases
(archive/lake/leases.py). Every third of the lease time it says it is alive, renews what it
holds, takes free or expired leases up to its fair share (outlets / daemons seen within one
lease time) and gives back the excess it is not crawling. A lease it failed to renew in time
is lost: its crawl is stopped, and the run is refused at ingest if another daemon took the
outlet meanwhile (the fence). APScheduler still says *when*; this says *who*."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg

from archive.lake import leases
from archive.lake.claims import writer_token
from archive.target import LakeTarget

log = logging.getLogger("mediawatch.daemon")

DEFAULT_LEASE = 30.0  # seconds


class LeaseKeeper(threading.Thread):
    def __init__(
        self,
        target: LakeTarget,
        home: str,
        ttl: float,
        outlets: Callable[[], list[str]],
        running: Callable[[], set[str]],
        on_taken: Callable[[str], object],
    ) -> None:
        super().__init__(name="leases", daemon=True)
        self.target, self.home, self.ttl = target, home, ttl
        self.holder = writer_token()
        self.outlets, self.running, self.on_taken = outlets, running, on_taken
        self._fences: dict[str, int] = {}
        self._renewed_at = 0.0  # monotonic: a frozen process wakes with it old
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._con: psycopg.Connection[Any] | None = None

    # what the daemon asks -------------------------------------------------------------------

    def fence_for(self, outlet: str) -> int | None:
        """Our fence on the outlet's lease, if we hold it now."""
        with self._lock:
            fence = self._fences.get(outlet)
            fresh = time.monotonic() - self._renewed_at < self.ttl
        return fence if fresh else None

    def still_holds(self, outlet: str, fence: int) -> bool:
        return self.fence_for(outlet) == fence

    def start_run(self, outlet: str, fence: int, run_id: str) -> bool:
        """The run's row, at our fence, if the lease is still ours (checked in PostgreSQL)."""
        with leases.connect(self.target, self.holder) as con:
            return leases.start_run(con, self.holder, outlet, fence, run_id, self.home)

    def held(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fences)

    # the thread -----------------------------------------------------------------------------

    def run(self) -> None:
        tick = self.ttl / 3
        while not self._halt.is_set():
            started = time.monotonic()
            wait = tick
            try:
                wait = min(tick, self.tick())
            except psycopg.Error as exc:
                log.warning("leases: %s; retrying", str(exc).strip().splitlines()[0])
                self._drop_connection()
            # every third of a lease from the tick's start (a slow tick does not stretch the
            # renewals), sooner when another daemon's lease runs out before that
            self._halt.wait(max(0.0, wait - (time.monotonic() - started)))

    def stop(self) -> None:
        """Stop renewing and give every lease back (the crawls are stopped by then)."""
        self._halt.set()
        self.join(timeout=self.ttl)
        try:
            leases.leave(self._connection(), self.holder)
        except psycopg.Error as exc:
            log.warning("leases not given back (they expire in %.0fs): %s", self.ttl, exc)
        finally:
            self._drop_connection()

    def tick(self) -> float:
        """One round of renewing, taking and giving back; returns the seconds until another
        daemon's lease on our outlets runs out (the moment it may be ours), or a whole lease."""
        con = self._connection()
        ttl = timedelta(seconds=self.ttl)
        started = time.monotonic()
        daemons = leases.heartbeat(con, self.holder, self.home, ttl)
        names = self.outlets()
        with self._lock:
            mine = dict(self._fences)
        renewed = leases.take(con, self.holder, mine, ttl) if mine else {}
        taken: dict[str, int] = {}
        for outlet, fence in mine.items():
            if renewed.get(outlet) != fence:  # taken by another, or expired and taken anew
                log.warning("%s: lease lost at fence %d (not renewed in time)", outlet, fence)
        taken = {o: f for o, f in renewed.items() if mine.get(o) != f}
        renewed = {o: f for o, f in renewed.items() if mine.get(o) == f}
        share = math.ceil(len(names) / max(daemons, 1))
        if len(renewed) + len(taken) < share:
            wanted = [o for o in leases.free(con, names) if o not in renewed and o not in taken]
            need = share - len(renewed) - len(taken)
            taken.update(leases.take(con, self.holder, wanted[:need], ttl))
        elif len(renewed) > share:
            busy = self.running()
            spare = [o for o in sorted(renewed, reverse=True) if o not in busy]
            for outlet in spare[: len(renewed) - share]:
                if leases.release(con, self.holder, outlet, renewed.pop(outlet)):
                    log.info("%s: lease given back (%d daemons share the outlets)", outlet, daemons)
        with self._lock:
            self._fences = {**renewed, **taken}
            self._renewed_at = started
        for outlet in sorted(taken):
            log.info("%s: lease taken (fence %d)", outlet, taken[outlet])
            self.on_taken(outlet)
        expires = leases.next_expiry(con, self.holder, names)
        # measured from the tick's start, a little after the expiry (PostgreSQL's clock decides)
        return self.ttl if expires is None else time.monotonic() - started + expires + 0.05

    def _connection(self) -> psycopg.Connection[Any]:
        if self._con is None or self._con.closed:
            self._con = leases.connect(self.target, self.holder)
        return self._con

    def _drop_connection(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None
