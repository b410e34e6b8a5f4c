"""The lake's writer on a real PostgreSQL and a real lake: the records the file ingest turns
into an archive give the same articles, versions, decisions and runs on the lake; a replayed
batch adds nothing; a writer killed -9 between its claims and its lake commit, or between
the commit and its settling, loses nothing and doubles nothing."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from archive.db import writer
from archive.ingest import ingest_records
from archive.lake.claims import Busy
from archive.lake.ingest import LakeWriter, ingest_spool
from archive.spool import SpoolWriter
from archive.target import LakeTarget, parse_target
from tests import pg
from tests.conftest import rows
from tests.lake.archives import archive_batches, page
from tests.lake.test_migrate import lake_rows

ARTICLE = "outlet, url, canonical_url, title, text, word_count, published_at, language, version, content_hash"
REPO = Path(__file__).resolve().parents[2]


def lake(server: pg.Server, dbname: str, tmp: Path) -> LakeTarget:
    target = parse_target(server.url(dbname, tmp / "lake"))
    assert isinstance(target, LakeTarget)
    return target


def test_the_lake_archives_what_the_file_archives(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    batches = archive_batches(copies=2)
    db = tmp_path / "archive.duckdb"
    with writer(db) as con:
        for records in batches:
            ingest_records(con, records)
    target = lake(pg_server, pg_database, tmp_path)
    with LakeWriter(target) as w:
        outcomes = [dict(w.ingest_records(records).outcomes) for records in batches]
    assert outcomes[1] == {"new": 6, "updated": 1, "exact_duplicate": 1, "empty_extraction": 1}
    order = " ORDER BY url, version"
    assert lake_rows(target, f"SELECT {ARTICLE} FROM articles{order}") == rows(
        db, f"SELECT {ARTICLE} FROM articles{order}"
    )
    old = "SELECT version, title, text, content_hash FROM article_versions ORDER BY content_hash"
    assert lake_rows(target, old) == rows(db, old) and rows(db, old)
    pages = "SELECT url, status, skip_reason, detail IS NULL FROM pages ORDER BY url, fetched_at, skip_reason"
    assert lake_rows(target, pages) == rows(db, pages)
    levels = (
        "SELECT level, count(*) FROM duplicate_links WHERE level <> 'near' GROUP BY 1 ORDER BY 1"
    )
    assert lake_rows(target, levels) == rows(db, levels)
    removed = "SELECT kind, rule, text FROM removed_blocks ORDER BY 1, 2, 3"
    assert lake_rows(target, removed) == rows(db, removed) and rows(db, removed)
    run = "SELECT run_id, outlet, status, requests, articles_new, articles_updated FROM crawl_runs"
    assert lake_rows(target, run) == rows(db, run) == [("run-1", "courrier", "ok", 9, 6, 2)]


def test_a_replayed_batch_adds_nothing(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = lake(pg_server, pg_database, tmp_path)
    batches = archive_batches()
    with LakeWriter(target) as w:
        for records in batches:
            w.ingest_records(records)
        counts = lake_rows(
            target, "SELECT (SELECT count(*) FROM pages), (SELECT count(*) FROM articles)"
        )
        again = w.ingest_records(batches[1])
    assert again.outcomes == {"already_ingested": len(batches[1])}
    assert (
        lake_rows(target, "SELECT (SELECT count(*) FROM pages), (SELECT count(*) FROM articles)")
        == counts
    )


_KILLER = """
import os, pickle, signal, sys
from archive.lake import ingest
from archive.target import parse_target
point, url, path = sys.argv[1:]
records = pickle.loads(open(path, 'rb').read())
original = ingest.LakeWriter._commit
def _commit(self, plan):
    if point == 'before_commit':
        os.kill(os.getpid(), signal.SIGKILL)
    if point == 'frozen':
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen between its claims and its lake commit
        original(self, plan)
        return
    original(self, plan)
    os.kill(os.getpid(), signal.SIGKILL)  # after the lake commit, before settling
ingest.LakeWriter._commit = _commit
ingest.LakeWriter(parse_target(url)).ingest_records(records)
"""


def _killed_writer(point: str, url: str, records: list[Any], tmp: Path) -> None:
    path = tmp / f"{point}.pickle"
    path.write_bytes(pickle.dumps(records))
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, point, url, str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr


def test_a_writer_killed_in_flight_loses_and_doubles_nothing(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    url = pg_server.url(pg_database, tmp_path / "lake")
    target = lake(pg_server, pg_database, tmp_path)
    batches = archive_batches(copies=2)
    with LakeWriter(target) as w:
        w.ingest_records(batches[0])
    # killed after claiming, before the lake commit: the replay (by another writer) claims afresh
    _killed_writer("before_commit", url, batches[1], tmp_path)
    # killed after the lake commit, before settling: the next writer settles it from the lake
    _killed_writer("after_commit", url, batches[2], tmp_path)
    with LakeWriter(target) as w:
        replayed = [w.ingest_records(batches[n]) for n in (1, 2, 3)]
    assert "already_ingested" not in replayed[0].outcomes
    assert replayed[1].outcomes == {"already_ingested": len(batches[2])}
    # the same archive as one writer never killed, taking the batches in the order they landed
    db = tmp_path / "archive.duckdb"
    with writer(db) as con:
        for n in (0, 2, 1, 3):
            ingest_records(con, batches[n])
    order = " ORDER BY url, version"
    assert lake_rows(target, f"SELECT {ARTICLE} FROM articles{order}") == rows(
        db, f"SELECT {ARTICLE} FROM articles{order}"
    )
    pages = "SELECT url, skip_reason FROM pages ORDER BY url, skip_reason"
    assert lake_rows(target, pages) == rows(db, pages)
    once = (
        "SELECT canonical_url FROM article_texts WHERE version = 1 GROUP BY 1 HAVING count(*) > 1"
    )
    assert lake_rows(target, once) == []
    run = "SELECT status, articles_new, articles_updated FROM crawl_runs"
    assert lake_rows(target, run) == rows(db, run)
    with psycopg.connect(pg_server.conninfo(pg_database)) as con:  # nothing left in flight
        assert con.execute("SELECT count(*) FROM mediawatch.batches").fetchone() == (0,)
        indexed = con.execute(
            "SELECT article_id, version FROM mediawatch.search_index ORDER BY 1"
        ).fetchall()
    # the search index has every article at its current version, the one settled from the
    # lake after its writer died included
    assert indexed == lake_rows(target, "SELECT id, version FROM articles ORDER BY 1")
    # learned-boilerplate counts: each new article counted once, the dead writer's too
    stats = "SELECT para_key, articles FROM {}paragraph_stats ORDER BY 1"
    with psycopg.connect(pg_server.conninfo(pg_database)) as con:
        counted = con.execute(stats.format("mediawatch.")).fetchall()
    assert counted and counted == rows(db, stats.format(""))


_HARBOUR = (
    "The old harbour of the town reopened on Monday after two winters of repairs to its "
    "sea wall, which storms had breached in three places, flooding the fish market.",
    "Fishermen said the new quay was higher and wider, and that the cranes bought by the "
    "port authority would let them unload in half the time they needed before the storms.",
    "The mayor promised that the market hall would follow in the spring, once the insurers "
    "have paid for the roof, and that the ferry to the islands would call again in May.",
)
_PARAGRAPHS = "".join(f"<p>{p}</p>" for p in _HARBOUR)
OTHER_STORY = (
    f"<html lang='en'><body><article><h1>Harbour</h1>{_PARAGRAPHS}</article></body></html>"
)


def test_a_frozen_writers_claims_wait_for_it(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    url = pg_server.url(pg_database, tmp_path / "lake")
    target = lake(pg_server, pg_database, tmp_path)
    batches = archive_batches()
    with LakeWriter(target) as w:
        w.ingest_records(batches[0])
    path = tmp_path / "frozen.pickle"
    path.write_bytes(pickle.dumps(batches[1]))
    frozen = subprocess.Popen([sys.executable, "-c", _KILLER, "frozen", url, str(path)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not _stopped(frozen.pid):
            assert time.monotonic() < deadline and frozen.poll() is None
            time.sleep(0.1)
        with LakeWriter(target) as w, pytest.raises(Busy):
            w.ingest_records(batches[1])  # its claims are a live writer's: they wait
        # in a spool, the records that need none of its claims do not wait with them (a near
        # copy of one of its texts would: its cluster is decided when that batch is)
        other = page("http://elsewhere.example/harbour", OTHER_STORY)  # another URL and story
        spool = tmp_path / "spool"
        segment = SpoolWriter(spool, "run-2.courrier")
        segment.open()
        for record in [*batches[1][:3], other]:
            segment.write(record)
        segment.close()
        with LakeWriter(target) as w:
            step = ingest_spool(w, spool)
        assert step.outcomes["new"] == 1 and step.segments == 1, step
        waiting = sorted(spool.glob("*.jsonl"))
        assert [len(p.read_text().splitlines()) for p in waiting] == [3]
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert frozen.wait(timeout=60) == 0
    with LakeWriter(target) as w:
        again = w.ingest_records(batches[1])
        later = ingest_spool(w, spool)
    assert again.outcomes == {"already_ingested": len(batches[1])}
    assert later.outcomes == {"already_ingested": 3} and not list(spool.glob("*.jsonl"))
    assert lake_rows(target, "SELECT count(*) FROM articles") == [(7,)]


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("T")
