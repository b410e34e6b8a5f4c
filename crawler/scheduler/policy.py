"""When an outlet runs next: the adaptive interval and the back-off, as pure functions of
the outlet's config, its state and what its last run brought (no I/O, no clock of its own)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from crawler.outlets import Outlet

UNHEALTHY_AFTER = 3  # consecutive failed runs before an outlet is reported unhealthy
BACKOFF_CEILING = 86400.0  # back-off never exceeds a day unless max_interval says more


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
    source answering 5xx ends 'ok' for Scrapy, and must not pass for a quiet outlet.
    (The SQL macro run_failed, migration 0010, is the same rule for the status view.)"""
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
    """Seconds of random jitter for an interval job: outlets started together drift apart."""
    return min(delay * 0.1, 60.0)
