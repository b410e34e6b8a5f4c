"""Compaction of a lake: DuckLake's own maintenance calls, in order, one process at a time.

Every lake transaction of the writers adds a snapshot and small files (or rows inlined in the
catalog); left alone, reads slow down and the catalog grows. Compaction flushes inlined rows
to Parquet, merges adjacent small files, expires snapshots older than `keep` (time travel
goes back that far) and deletes the files those held once they have been unused for
`grace` (a reader that started before may still scan them). Each step is its own DuckLake
transaction: a reader sees the lake before or after it, never between (snapshot isolation).
A step that loses a commit race against busy writers fails alone, is reported, and is
tried again next time; writers never wait for it and never fail because of it.

One process at a time compacts: a PostgreSQL advisory lock held for the run, released by the
server when that process dies, so a daemon killed mid-compaction blocks nobody.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import duckdb

from archive.lake.connect import ALIAS, connect_lake_write
from archive.target import LakeTarget, check_reachable

logger = logging.getLogger(__name__)

KEEP = timedelta(days=7)  # snapshots younger than this stay readable (time travel)
GRACE = timedelta(hours=1)  # a file unused for this long is no longer scanned by any reader
_LOCK_KEY = 0x6D775F636F6D7061  # "mw_compa": the advisory lock of a compaction run
_METADATA = f"__ducklake_metadata_{ALIAS}"


@dataclass
class Compaction:
    """What one run did, for the log, `mediawatch compact` and the daemon's events."""

    ran: bool = True  # False: another process held the compaction lock
    files_before: int = 0
    files_after: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    files_deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # step -> first line of its error
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.ran:
            return "skipped: another process is compacting this lake"
        text = (
            f"data files {self.files_before} -> {self.files_after}, snapshots "
            f"{self.snapshots_before} -> {self.snapshots_after}, {self.files_deleted} files "
            f"deleted, {self.seconds:.1f} s"
        )
        failed = "; ".join(f"{step} failed: {why}" for step, why in self.failed.items())
        return f"{text}; {failed}" if failed else text


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _live_files(con: duckdb.DuckDBPyConnection) -> int:
    return _count(
        con, f"SELECT count(*) FROM {_METADATA}.ducklake_data_file WHERE end_snapshot IS NULL"
    )


def _snapshots(con: duckdb.DuckDBPyConnection) -> int:
    return _count(con, f"SELECT count(*) FROM ducklake_snapshots('{ALIAS}')")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def compact(target: LakeTarget, *, keep: timedelta = KEEP, grace: timedelta = GRACE) -> Compaction:
    """Run every maintenance step once, unless another process is compacting this lake."""
    import psycopg

    started = time.monotonic()
    check_reachable(target)  # ArchiveError in one line, within a bounded time
    with psycopg.connect(target.libpq(), autocommit=True) as lock:
        row = lock.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY]).fetchone()
        if not row or not row[0]:
            return Compaction(ran=False)
        con = connect_lake_write(target)
        try:
            report = Compaction(files_before=_live_files(con), snapshots_before=_snapshots(con))
            steps = {
                "flush inlined rows": f"CALL ducklake_flush_inlined_data('{ALIAS}')",
                "merge small files": f"CALL ducklake_merge_adjacent_files('{ALIAS}')",
                "expire snapshots": f"CALL ducklake_expire_snapshots('{ALIAS}', "
                f"older_than => now() - INTERVAL '{int(keep.total_seconds())} seconds')",
                "delete unused files": f"CALL ducklake_cleanup_old_files('{ALIAS}', "
                f"older_than => now() - INTERVAL '{int(grace.total_seconds())} seconds')",
            }
            for step, sql in steps.items():
                try:
                    rows = con.execute(sql).fetchall()
                except duckdb.Error as exc:
                    report.failed[step] = _first_line(exc)
                    logger.warning("lake compaction: %s failed: %s", step, report.failed[step])
                    continue
                if step == "delete unused files":
                    report.files_deleted = len(rows)
            report.files_after, report.snapshots_after = _live_files(con), _snapshots(con)
        finally:
            con.close()
    report.seconds = time.monotonic() - started
    logger.info("lake compaction: %s", report.summary())
    return report
