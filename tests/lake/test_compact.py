"""Compaction of a lake on a real PostgreSQL: files merged and snapshots expired with every row
kept, readers and writers undisturbed meanwhile, one compaction of a lake at a time."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from archive.lake.compact import _LOCK_KEY, compact
from archive.lake.connect import connect_lake_write
from archive.target import LakeTarget, parse_target
from tests import pg
from tests.conftest import run_cli
from tests.lake.archives import build_archive
from tests.lake.test_migrate import lake_rows

VIEWS = (
    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM pages), "
    "(SELECT count(*) FROM article_history), (SELECT count(*) FROM syndication_copies), "
    "(SELECT sum(hash(id, content_hash, text)) FROM articles)"
)


def small_batch_lake(pg_server: pg.Server, database: str, tmp: Path) -> tuple[str, LakeTarget]:
    """A lake filled by many small transactions, as crawls leave it: many files and snapshots."""
    db = build_archive(tmp / "archive.duckdb", copies=12)
    url = pg_server.url(database, tmp / "lake")
    moved = run_cli("migrate", "--from", str(db), "--to", url, "--batch", "3")
    assert moved.returncode == 0, moved.stderr
    target = parse_target(url)
    assert isinstance(target, LakeTarget)
    return url, target


def parquet_files(tmp: Path) -> int:
    return sum(1 for _ in (tmp / "lake").rglob("*.parquet"))


def test_compaction_merges_files_and_expires_snapshots_keeping_every_row(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    url, target = small_batch_lake(pg_server, pg_database, tmp_path)
    before, on_disk = lake_rows(target, VIEWS), parquet_files(tmp_path)

    first = run_cli("compact", "--db", url, "--keep", "1s", "--grace", "1s")
    assert first.returncode == 0, first.stderr
    files, snapshots = first.stdout.split(",")[:2]
    old_files, new_files = (int(n) for n in files.removeprefix("data files ").split(" -> "))
    old_snaps, new_snaps = (int(n) for n in snapshots.removeprefix(" snapshots ").split(" -> "))
    assert new_files < old_files and new_snaps < old_snaps, first.stdout
    assert lake_rows(target, VIEWS) == before

    time.sleep(1.5)  # the merged-away files are now unused for longer than --grace
    second = compact(target, keep=timedelta(seconds=1), grace=timedelta(seconds=1))
    assert second.failed == {} and second.files_deleted > 0, second.summary()
    assert parquet_files(tmp_path) < on_disk
    assert lake_rows(target, VIEWS) == before


def test_a_second_compaction_at_the_same_time_is_skipped(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    url, target = small_batch_lake(pg_server, pg_database, tmp_path)
    with psycopg.connect(pg_server.conninfo(pg_database), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        result = run_cli("compact", "--db", url)
        assert result.returncode == 0, result.stderr
        assert "skipped: another process is compacting this lake" in result.stdout
    assert compact(target).ran  # the lock went with the other session
    on_a_file = run_cli("compact", "--db", str(tmp_path / "archive.duckdb"))
    assert on_a_file.returncode == 2 and on_a_file.stderr.count("\n") == 1, on_a_file.stderr
    assert "only a lake is compacted" in on_a_file.stderr


def test_readers_and_writers_go_on_during_compaction(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """A reader counts while compaction runs and sees the whole lake every time; a writer
    commits throughout and none of its commits fails (compaction yields, not the writer)."""
    _, target = small_batch_lake(pg_server, pg_database, tmp_path)
    expected = lake_rows(target, VIEWS)
    stop = threading.Event()
    seen: list[object] = []
    errors: list[str] = []
    commits = [0]

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(lake_rows(target, VIEWS))
            except Exception as exc:  # any failure is the finding
                errors.append(f"reader: {exc}")

    def write() -> None:
        con = connect_lake_write(target)
        try:
            while not stop.is_set():
                con.execute("BEGIN")
                con.execute(
                    "INSERT INTO daemon_events (event_at, kind, message) "
                    "SELECT now(), 'load', range::VARCHAR FROM range(50)"
                )
                con.execute("COMMIT")
                commits[0] += 1
        except Exception as exc:
            errors.append(f"writer: {exc}")
        finally:
            con.close()

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        reports = [compact(target, keep=timedelta(0)) for _ in range(3)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert seen and all(state == expected for state in seen), "a reader saw a partial lake"
    assert commits[0] > 0
    written = lake_rows(target, "SELECT count(*) FROM daemon_events WHERE kind = 'load'")
    assert written == [(commits[0] * 50,)], "every committed row is in the lake"
    assert any(r.files_after < r.files_before or r.failed for r in reports)
