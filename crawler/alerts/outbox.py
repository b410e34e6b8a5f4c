"""The seam between the alert service and where its outbox lives: an embedded DuckDB file
(archive/alerts.py, one daemon, a short write session per step) or a lake (archive/lake/alerts.py,
PostgreSQL shared by several daemons, one connection kept by the service). The service only
talks to an Outbox; each backend's SQL stays in archive/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from archive import alerts as file_outbox
from archive.alerts import AlertSpec, Claimed
from archive.db import ArchiveError
from archive.target import LakeTarget, parse_target

Keys = Mapping[str, Iterable[str]]
Events = Sequence[tuple[datetime, str, str | None, str | None]]


class Session(Protocol):
    """One step's access to the outbox."""

    def release_in_doubt(self, now: datetime, *, starting: bool) -> int: ...
    def enqueue(self, specs: Sequence[AlertSpec], now: datetime) -> dict[str, tuple[int, int]]: ...
    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...
    def claim(self, keys: Keys, now: datetime, limit: int) -> list[Claimed]: ...
    def cluster_articles(
        self, alert: str, clusters: Iterable[int]
    ) -> dict[int, list[dict[str, Any]]]: ...
    def feed_entries(self, alert: str) -> list[dict[str, Any]]: ...
    def mark_sent(self, ids: Iterable[int], now: datetime) -> None: ...
    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None: ...
    def next_due(self, keys: Keys) -> datetime | None: ...
    def record_events(self, events: Events) -> None: ...


class Outbox(Protocol):
    def session(self) -> contextlib.AbstractContextManager[Session]: ...
    def close(self) -> None: ...


def feed_file(db: str | Path, alert: str) -> Path:
    """Where an alert's Atom feed is written: beside the file, or in this machine's lake home
    (each machine that runs a daemon of the lake has its own copy)."""
    from crawler.alerts.channels import feed_path

    target = parse_target(str(db))
    if isinstance(target, LakeTarget):
        from archive.lake.home import lake_home

        return lake_home(target) / "alerts" / f"{alert}.atom"
    return feed_path(Path(db), alert)


def open_outbox(db: str | Path) -> Outbox:
    target = parse_target(str(db))
    return LakeOutbox(target) if isinstance(target, LakeTarget) else FileOutbox(Path(db))


class _Bound:
    """The outbox functions both backends' modules share, bound to a connection."""

    def __init__(self, module: ModuleType, con: Any) -> None:
        self.m, self.con = module, con

    def claim(self, keys: Keys, now: datetime, limit: int) -> list[Claimed]:
        return self.m.claim(self.con, keys, now, limit)

    def cluster_articles(
        self, alert: str, clusters: Iterable[int]
    ) -> dict[int, list[dict[str, Any]]]:
        return self.m.cluster_articles(self.con, alert, clusters)

    def feed_entries(self, alert: str) -> list[dict[str, Any]]:
        return self.m.feed_entries(self.con, alert)

    def mark_sent(self, ids: Iterable[int], now: datetime) -> None:
        self.m.mark_sent(self.con, ids, now)

    def mark_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        self.m.mark_failed(self.con, delivery_id, error, retry_at)

    def next_due(self, keys: Keys) -> datetime | None:
        return self.m.next_due(self.con, keys)


class FileSession(_Bound):
    """archive/alerts.py over one write connection."""

    def __init__(self, con: Any) -> None:
        super().__init__(file_outbox, con)

    def release_in_doubt(self, now: datetime, *, starting: bool) -> int:
        # one daemon per file: what is 'sending' at its start was its previous life's
        return file_outbox.release_in_doubt(self.con, now) if starting else 0

    def enqueue(self, specs: Sequence[AlertSpec], now: datetime) -> dict[str, tuple[int, int]]:
        return file_outbox.enqueue(self.con, specs, now)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        from archive.tx import transaction

        return transaction(self.con)

    def record_events(self, events: Events) -> None:
        from archive.runs import record_events

        record_events(self.con, events)


class FileOutbox:
    def __init__(self, db: Path) -> None:
        self.db = db

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        from archive.db import writer

        with writer(self.db) as con:
            yield FileSession(con)

    def close(self) -> None:
        """Nothing kept open between sessions."""


class LakeSession(_Bound):
    """archive/lake/alerts.py over the service's PostgreSQL connection and lake reader."""

    def __init__(self, pg: Any, lake: Any, target: LakeTarget) -> None:
        from archive.lake import alerts as lake_alerts

        super().__init__(lake_alerts, pg)
        self.lake, self.target = lake, target

    def release_in_doubt(self, now: datetime, *, starting: bool) -> int:
        # at every step: another daemon of the lake may have died since
        return self.m.release_in_doubt(self.con, now)

    def enqueue(self, specs: Sequence[AlertSpec], now: datetime) -> dict[str, tuple[int, int]]:
        return self.m.enqueue(self.con, self.lake, self.target, specs, now)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self.con.transaction()

    def record_events(self, events: Events) -> None:
        """Appended to the lake's daemon_events through a writer of its own, opened for them:
        the session's lake connection only reads, and a given-up delivery is rare. Committed
        before the deliveries' PostgreSQL transaction: a crash between the two records the
        give-up twice (the delivery is tried again), never not at all."""
        from archive.lake.connect import attach
        from archive.lake.daemon_state import append_events

        writer = attach(self.target, read_only=False)
        try:
            append_events(writer, events)
        finally:
            writer.close()


class LakeOutbox:
    """One PostgreSQL session named like a lake writer (its liveness is what keeps its
    claimed deliveries from being called in doubt) and one read-only lake connection, opened
    on first use and again after the connection was lost."""

    def __init__(self, target: LakeTarget) -> None:
        self.target = target
        self._pg: Any = None
        self._lake: Any = None

    def _open(self) -> None:
        import psycopg

        from archive.lake import alerts as lake_alerts
        from archive.lake import claims
        from archive.lake.connect import attach
        from archive.lake.schema import ensure_schema
        from archive.target import unreachable

        ensure_schema(self.target)
        try:
            self._pg = claims.connect(self.target.libpq(application_name=claims.writer_token()))
        except psycopg.OperationalError as exc:
            raise ArchiveError(f"{self.target.display()}: {unreachable(exc)}") from None
        try:
            lake_alerts.ensure_alerts(self._pg)
            self._lake = attach(self.target, read_only=True)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        import psycopg

        from archive.lake.connect import lost_lake

        with lost_lake(self.target.display(), self.close):
            try:
                if self._pg is None:
                    self._open()
                yield LakeSession(self._pg, self._lake, self.target)
            except psycopg.errors.LockNotAvailable as exc:  # another daemon is matching
                raise ArchiveError(f"{self.target.display()}: alerts busy ({exc})") from exc

    def close(self) -> None:
        for con in (self._lake, self._pg):
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
        self._pg = self._lake = None
