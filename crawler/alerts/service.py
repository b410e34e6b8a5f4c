"""What the daemon's archive writer runs for alerts: enqueue after an ingest, deliver between
write sessions.

The writer thread stays the only one touching the archive: in one short session it records
the outcomes of the last batch, queues the matches of what was ingested, and claims the due
deliveries (committed as 'sending' before any byte leaves); a sender thread then does the
network and file I/O outside any session and hands the outcomes back. So a slow webhook
never holds the archive, and a kill -9 anywhere leaves each delivery queued, in doubt
(sent again at the next start, with the same Idempotency-Key / Message-ID) or sent, never
lost and never twice 'sent'.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.alerts import Claimed
from crawler.alerts import channels
from crawler.alerts.config import Alert
from crawler.alerts.outbox import Session, feed_file, open_outbox

if TYPE_CHECKING:
    from crawler.outlets import Config

log = logging.getLogger("mediawatch.alerts")

BATCH = 20  # deliveries claimed at once
RETRY_CEILING = 6 * 3600.0  # the back-off never waits longer than this between attempts


def retry_at(alert: Alert, attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed ones (doubling), or None: give up."""
    if attempts >= alert.max_attempts:
        return None
    return now + timedelta(seconds=min(RETRY_CEILING, alert.retry_seconds * 2 ** (attempts - 1)))


@dataclass
class Job:
    """One send: a webhook or e-mail delivery, or an alert's feed (several atom deliveries)."""

    alert: Alert
    channel: str
    claimed: list[Claimed] = field(default_factory=list)
    articles: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)  # atom: the whole feed


@dataclass
class Outcome:
    job: Job
    error: str | None


class AlertService:
    def __init__(self, db: str | Path, config: Callable[[], Config]) -> None:
        self.db = db  # the file's path or the lake's URL
        self.outbox = open_outbox(db)
        self._config = config
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._jobs: queue.Queue[list[Job]] = queue.Queue()
        self._busy = threading.Event()  # a batch is with the sender
        self._sender: threading.Thread | None = None
        self._started = False  # in-doubt rows released, feeds written, backlog matched
        self._ingested = True  # catch up at start: a kill between an ingest and its enqueue
        self._next_due: datetime | None = None
        self._feeds: set[str] = set()  # alerts whose feed file this daemon has written
        self.sent = 0
        self.failed = 0

    def alerts(self) -> tuple[Alert, ...]:
        return self._config().alerts

    # the writer thread ------------------------------------------------------------------------

    def ingested(self) -> None:
        """After an ingest that archived something: match it at the next step."""
        self._ingested = True

    def wants_archive(self) -> bool:
        """Whether a step has work that needs a write session (cheap: no archive access)."""
        alerts = self.alerts()
        if not alerts:
            return False
        with self._lock:
            if self._outcomes:
                return True
        if not self._started or self._ingested:
            return True
        if self._busy.is_set():
            return False
        if any(a.name not in self._feeds for a in alerts):
            return True
        return self._next_due is not None and self._next_due <= datetime.now(UTC)

    def step(self, *, final: bool = False) -> None:
        """One write session: record outcomes, queue new matches, claim due deliveries and
        hand them to the sender (not when `final`: the daemon is stopping)."""
        alerts = {a.name: a for a in self.alerts()}
        now = datetime.now(UTC)
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        jobs: list[Job] = []
        try:
            with self.outbox.session() as con:
                released = con.release_in_doubt(now, starting=not self._started)
                if released:
                    log.warning(
                        "alerts: %d deliveries in doubt after an unclean stop; sending them again",
                        released,
                    )
                self._record(con, outcomes, now)
                outcomes = []
                if self._ingested or not self._started:
                    added = con.enqueue([a.spec for a in alerts.values()], now)
                    self._ingested = False  # only once matched: a failed enqueue is tried again
                    for name, (matched, queued) in added.items():
                        if matched:
                            log.info(
                                "alert %s: %d new articles matched, %d deliveries queued",
                                name,
                                matched,
                                queued,
                            )
                            self._feeds.discard(name)  # a copy joined an entry: its feed lists it
                self._started = True
                if not final and not self._busy.is_set():
                    jobs = self._claim(con, alerts, now)
                keys = {name: a.spec.channels for name, a in alerts.items()}
                self._next_due = con.next_due(keys)
        finally:
            if outcomes:  # not recorded: kept for the next session
                with self._lock:
                    self._outcomes[:0] = outcomes
            if jobs:  # claimed (committed): they go, whatever failed after
                self._busy.set()
                self._ensure_sender()
                self._jobs.put(jobs)

    def _claim(self, con: Session, alerts: dict[str, Alert], now: datetime) -> list[Job]:
        """Claim due deliveries and read what they send, in one transaction: deliveries are
        never left 'sending' without a job that sends them."""
        keys = {name: a.spec.channels for name, a in alerts.items()}
        with con.transaction():
            return self._jobs_for(con, alerts, con.claim(keys, now, BATCH))

    def _jobs_for(
        self, con: Session, alerts: dict[str, Alert], claimed: list[Claimed]
    ) -> list[Job]:
        jobs: list[Job] = []
        atom: dict[str, list[Claimed]] = {}
        for c in claimed:
            if c.channel == "atom":
                atom.setdefault(c.alert, []).append(c)
        by_alert: dict[str, list[Claimed]] = {}
        for c in claimed:
            if c.channel != "atom":
                by_alert.setdefault(c.alert, []).append(c)
        for name, items in by_alert.items():
            articles = con.cluster_articles(name, [c.cluster_id for c in items])
            jobs += [
                Job(alerts[name], c.channel, [c], articles.get(c.cluster_id, [])) for c in items
            ]
        for name in sorted(set(atom) | {n for n in alerts if n not in self._feeds}):
            jobs.append(
                Job(alerts[name], "atom", atom.get(name, []), entries=con.feed_entries(name))
            )
        return jobs

    def _record(self, con: Session, outcomes: list[Outcome], now: datetime) -> None:
        events = []
        for outcome in outcomes:
            job = outcome.job
            ids = [c.id for c in job.claimed]
            if outcome.error is None:
                con.mark_sent(ids, now)
                self.sent += len(ids)
                if job.channel == "atom":
                    self._feeds.add(job.alert.name)
                continue
            for c in job.claimed:
                again = retry_at(job.alert, c.attempts, now)
                con.mark_failed(c.id, outcome.error, again)
                if again is None:
                    self.failed += 1
                    message = f"{c.channel} delivery {c.id} gave up after {c.attempts} attempts: {outcome.error}"
                    log.error("alert %s: %s", c.alert, message)
                    events.append((now, "alert_failed", None, f"{c.alert}: {message}"))
                else:
                    log.warning(
                        "alert %s: %s delivery %d failed (attempt %d of %d): %s; next at %s",
                        c.alert,
                        c.channel,
                        c.id,
                        c.attempts,
                        job.alert.max_attempts,
                        outcome.error,
                        again.isoformat(timespec="seconds"),
                    )
            if not job.claimed:
                # the feed of no delivery (at start): written again with the next one
                self._feeds.add(job.alert.name)
                log.warning("alert %s: %s", job.alert.name, outcome.error)
        if events:
            con.record_events(events)

    # the sender thread ------------------------------------------------------------------------

    def _ensure_sender(self) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_forever, name="alert-sender", daemon=True
            )
            self._sender.start()

    def _send_forever(self) -> None:
        while True:
            jobs = self._jobs.get()
            try:
                for job in jobs:
                    outcome = Outcome(job, self._send(job))
                    with self._lock:
                        self._outcomes.append(outcome)
            finally:
                self._busy.clear()

    def _send(self, job: Job) -> str | None:
        """Deliver one job; the error as one line, or None."""
        try:
            if job.channel == "atom":
                channels.write_atom(
                    feed_file(self.db, job.alert.name),
                    channels.render_atom(job.alert, job.entries),
                )
            elif job.channel == "webhook":
                assert job.alert.webhook is not None
                c = job.claimed[0]
                channels.post_webhook(
                    job.alert.webhook,
                    channels.webhook_payload(job.alert, c.id, c.cluster_id, job.articles),
                    c.id,
                )
            elif job.channel == "email":
                assert job.alert.email is not None
                c = job.claimed[0]
                message = channels.email_message(job.alert, job.alert.email, c.id, job.articles)
                channels.send_email(job.alert.email, message)
            return None
        except channels.DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a bug must not leave the rows 'sending' until the next start
            log.exception("alert %s: %s delivery failed unexpectedly", job.alert.name, job.channel)
            return f"unexpected error: {type(exc).__name__}: {exc}"

    def wait_idle(self, timeout: float) -> bool:
        """Let the sender finish its batch (at stop), so its outcomes are recorded now."""
        deadline = threading.Event()
        waited = 0.0
        while self._busy.is_set() and waited < timeout:
            deadline.wait(0.05)
            waited += 0.05
        return not self._busy.is_set()

    def close(self) -> None:
        """The outbox's connections (a lake's PostgreSQL session): at the daemon's stop."""
        self.outbox.close()
