"""The spool hand-off: segments rotate, dead writers' segments are picked up, cut lines are
skipped, and ingest is idempotent by record_id."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

from archive.spool import SpoolWriter, discard_segment, pending_urls, read_segment, ready_segments


def _record(i: int) -> dict:
    return {
        "type": "page",
        "record_id": f"r{i}",
        "outlet": "o",
        "url": f"http://x/{i}",
        "article": {"text": "t"},
        "key": f"http://x/{i}",
    }


def test_segments_rotate_and_live_part_is_not_ready(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "run1.o", max_records=3, max_age=60)
    writer.open()
    for i in range(7):
        writer.write(_record(i))
    ready = ready_segments(tmp_path)
    assert [p.name for p in ready] == ["run1.o-000001.jsonl", "run1.o-000002.jsonl"]
    assert (tmp_path / "run1.o-000003.part").exists(), (
        "the open segment waits while its writer lives"
    )
    assert pending_urls(tmp_path) >= {"http://x/0", "http://x/6"}
    writer.close()
    assert len(ready_segments(tmp_path)) == 3
    assert not (tmp_path / "run1.o.lock").exists()
    records = [r for seg in ready_segments(tmp_path) for r in read_segment(seg)]
    assert [r["record_id"] for r in records] == [f"r{i}" for i in range(7)]


def _write_and_die(spool: str) -> None:
    writer = SpoolWriter(Path(spool), "run2.o", max_records=100, max_age=60)
    writer.open()
    for i in range(5):
        writer.write(_record(i))
    # a line cut in the middle, as a kill -9 during a write leaves it
    assert writer._file is not None
    writer._file.write('{"type": "page", "record_id": "cut')
    writer._file.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def test_dead_writer_part_is_ingestable_and_cut_line_skipped(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("spawn").Process(
        target=_write_and_die, args=(str(tmp_path),)
    )
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    time.sleep(0.1)
    ready = ready_segments(tmp_path)
    assert [p.name for p in ready] == ["run2.o-000001.part"]
    ids = [r["record_id"] for r in read_segment(ready[0])]
    assert ids == ["r0", "r1", "r2", "r3", "r4"]
    discard_segment(ready[0])
    assert list(tmp_path.iterdir()) == [], "the dead writer's lock file goes with its last segment"


def test_corrupt_line_in_the_middle_is_skipped(tmp_path: Path) -> None:
    seg = tmp_path / "run3.o-000001.jsonl"
    seg.write_text(json.dumps(_record(1)) + "\n{not json\n" + json.dumps(_record(2)) + "\n")
    assert [r["record_id"] for r in read_segment(seg)] == ["r1", "r2"]


def test_a_lone_surrogate_is_replaced_and_the_page_kept(tmp_path: Path) -> None:
    """A lone surrogate ("\\ud83d", half an emoji from a broken feed or JSON-LD) is valid in a
    Python str but not in UTF-8: the spool write failed and the page was lost, refetched
    each run. Written or read (escaped by another writer), it becomes U+FFFD, counted."""
    import duckdb

    from archive.ingest import drain_spool
    from archive.spool import spool_dir_for
    from tests.test_ingest import fixture, page_record

    db = tmp_path / "a.duckdb"
    spool = spool_dir_for(db)
    record = page_record("http://news.example/2024/05/18/climate-summit", fixture("climate.html"))
    record["article"]["title"] = "Summit \ud83d ends"
    record["hints"] = {"title": "feed \udc00 title", "source": "feed"}
    paired = "\ud83d\ude00"  # a valid pair spelled as two code points stays one emoji
    record["article"]["text"] += " " + paired
    writer = SpoolWriter(spool, "run.o", max_records=10, max_age=60)
    writer.open()
    writer.write(record)
    escaped = page_record("http://news.example/2024/05/22/exporte", fixture("wirtschaft.html"))
    escaped["article"]["title"] = "Exporte \udbff"
    writer.close()
    (spool / "run.o-000009.jsonl").write_text(json.dumps(escaped) + "\n")  # ensure_ascii: \\udbff
    assert writer.repaired == 1

    result = drain_spool(db, pause=0)
    assert result.outcomes["new"] == 2
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT a.title, a.feed_title, p.detail, a.text LIKE '%😀' FROM articles a "
            "JOIN pages p ON p.article_id = a.id ORDER BY a.id"
        ).fetchall()
    finally:
        con.close()
    assert rows[0][:2] == ("Summit \ufffd ends", "feed \ufffd title") and rows[0][3]
    assert rows[1][0] == "Exporte \ufffd"
    assert [r[2] for r in rows] == [
        "2 invalid characters (lone surrogates) replaced with U+FFFD",
        "1 invalid characters (lone surrogates) replaced with U+FFFD",
    ]
