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
    return {"type": "page", "record_id": f"r{i}", "outlet": "o", "url": f"http://x/{i}",
            "article": {"text": "t"}, "key": f"http://x/{i}"}


def test_segments_rotate_and_live_part_is_not_ready(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, "run1.o", max_records=3, max_age=60)
    writer.open()
    for i in range(7):
        writer.write(_record(i))
    ready = ready_segments(tmp_path)
    assert [p.name for p in ready] == ["run1.o-000001.jsonl", "run1.o-000002.jsonl"]
    assert (tmp_path / "run1.o-000003.part").exists(), "the open segment waits while its writer lives"
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
    proc = multiprocessing.get_context("spawn").Process(target=_write_and_die, args=(str(tmp_path),))
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
