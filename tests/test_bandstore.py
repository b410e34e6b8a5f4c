"""The persisted band index: a new writer maps it instead of rereading lsh_bands, a damaged,
stale or foreign file is rebuilt (with the reason logged), a kill -9 while it is written
leaves a usable index, and lookups answer as the index rebuilt from the table does."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from archive import bandindex, bandstore, dedup
from archive.db import writer
from pipelines.fingerprint import minhash_bands
from tests.test_dedup import OTHER, STORY, _place

T0 = datetime(2024, 5, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """Each test starts as a new process would: no index held, counters at zero."""
    bandindex.reset_band_indexes()
    bandindex.STATS.clear()
    yield
    bandindex.reset_band_indexes()


def _fill(con: duckdb.DuckDBPyConnection, first: int, n: int, *, advance: bool = True) -> None:
    """42 band rows for each article id in [first, first + n): most keys random, band 0 shared
    by about 1 article in 50 so lookups find several candidates. The article id sequence is
    moved past them, so later articles get higher ids, as in an archive."""
    if advance:
        con.execute("SELECT max(nextval('article_id_seq')) FROM range(?)", [first + n])
    con.execute(
        "INSERT INTO lsh_bands SELECT b::SMALLINT, "
        "CASE WHEN b = 0 THEN hash(i % 50) ELSE hash(i * 64 + b) END::UBIGINT, i "
        "FROM range(?, ?) t(i), range(42) r(b)",
        [first, first + n],
    )


def _open(path: Path) -> tuple[bandindex.BandIndex, dict[str, int]]:
    """The index as a new process gets it on its first write session, and what it cost."""
    bandindex.reset_band_indexes()
    bandindex.STATS.clear()
    with writer(path) as con:
        index = bandindex.band_index(con)
    return index, dict(bandindex.STATS)


def _reference(path: Path) -> bandindex.BandIndex:
    """The index rebuilt from lsh_bands alone, in memory (no file): the truth to compare with."""
    ref = bandindex.BandIndex(None)
    with writer(path) as con:
        ref.sync(con)
    return ref


def _queries(path: Path, n: int, seed: int = 5) -> list[list[int]]:
    rng = random.Random(seed)
    with writer(path) as con:
        top = con.execute("SELECT max(article_id) FROM lsh_bands").fetchone()
        assert top is not None
        out = []
        for _ in range(n):
            aid = rng.randrange(1, int(top[0]) + 1)
            rows = con.execute("SELECT hash FROM lsh_bands WHERE article_id = ?", [aid]).fetchall()
            out.append([int(r[0]) for r in rows][:30] + [rng.getrandbits(64) for _ in range(12)])
    return out


def _same_answers(
    index: bandindex.BandIndex, ref: bandindex.BandIndex, queries: list[list[int]]
) -> None:
    for q in queries:
        assert index.lookup(q, exclude=-1) == ref.lookup(q, exclude=-1)
    for aid in (1, 7, 999):
        assert index.held_by(aid, queries[0]) == ref.held_by(aid, queries[0])


def test_a_new_writer_maps_the_file_and_reads_only_newer_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1000, 3000)
        a, _ = _place(con, "a", STORY, T0)  # first use: loads the table, writes the file
    assert bandindex.STATS["full_loads"] == 1 and bandindex.STATS["file_writes"] == 1
    assert bandstore.band_file(db).exists()

    index, cost = _open(db)  # a second process: no full scan, only article a above the watermark
    assert cost.get("full_loads", 0) == 0 and cost["file_loads"] == 1
    assert cost["rows_read"] == 42
    assert isinstance(index.keys, np.memmap) and index.rows == 3001 * 42
    with writer(db) as con:
        _, decisions = _place(con, "b", STORY, T0)  # the copy is still found through the file
        assert [d.matched_article_id for d in decisions] == [a]
        _place(con, "c", OTHER, T0)

    _, cost = _open(db)  # the three articles above the file's watermark are read, nothing else
    assert cost.get("full_loads", 0) == 0 and cost["rows_read"] == 3 * 42

    monkeypatch.setattr(bandindex, "PERSIST_MIN_ROWS", 1000)
    with writer(db) as con:
        _fill(con, 10_000, 300)  # 12,600 rows: past 1/32 of the file
    index, cost = _open(db)  # past the threshold: the sync writes a new file up to the table's top
    assert cost["file_writes"] == 1 and index.file_watermark == 10_299 and index.unsaved_rows == 0
    _, cost = _open(db)
    assert cost.get("full_loads", 0) == 0 and cost["rows_read"] == 0
    _same_answers(index, _reference(db), _queries(db, 40))


def test_a_session_past_the_threshold_writes_the_file_as_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next writer then maps the file and reads nothing: the merge and write are paid at
    the end of the session that made them due, not in the next one's open."""
    monkeypatch.setattr(bandindex, "PERSIST_MIN_ROWS", 1000)
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 500)
    _open(db)  # writes the first file
    bandindex.STATS.clear()
    rng = random.Random(1)
    with writer(db) as con:
        for n in range(30):  # 1,260 rows through the ingest's path
            _place(
                con,
                "o",
                " ".join(f"w{rng.randrange(5000)}" for _ in range(80)),
                T0,
                url=f"https://o.example/{n}",
            )
        assert bandindex.STATS["file_writes"] == 0
    assert bandindex.STATS["file_writes"] == 1
    _, cost = _open(db)
    assert (
        cost.get("full_loads", 0) == 0
        and cost["rows_read"] == 0
        and cost.get("file_writes", 0) == 0
    )


def _corrupt_data(p: Path) -> None:
    with open(p, "r+b") as fh:
        fh.seek(-100, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-100, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_corrupt_data, "checksum mismatch"),
        (lambda p: os.truncate(p, p.stat().st_size - 4000), "bytes where the header"),
        (lambda p: p.write_bytes(b"not a band file at all"), "bad magic"),
        (lambda p: p.write_bytes(b""), "bad magic"),
        (lambda p: p.write_bytes(bandstore.MAGIC + b"\x05\x00\x00\x00{oops"), "header unreadable"),
    ],
)
def test_a_damaged_file_is_rebuilt_with_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object, reason: str
) -> None:
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 2000)
    _open(db)
    damage(bandstore.band_file(db))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="archive.bandindex"):
        index, cost = _open(db)
    assert cost["full_loads"] == 1 and cost["rebuilds"] == 1 and cost["file_writes"] == 1
    assert any(
        reason in r.getMessage() and "rebuilt from lsh_bands" in r.getMessage()
        for r in caplog.records
    )
    assert bandstore.read(bandstore.band_file(db)).header["watermark"] == 2000  # a good file again
    _same_answers(index, _reference(db), _queries(db, 30))


def test_a_file_of_another_or_a_restored_archive_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    for db in (one, two):
        with writer(db) as con:
            _fill(con, 1, 500)
        _open(db)
    shutil.copy(
        bandstore.band_file(one), bandstore.band_file(two)
    )  # the same rows, another archive
    with caplog.at_level(logging.WARNING, logger="archive.bandindex"):
        _, cost = _open(two)
    assert cost["rebuilds"] == 1 and "made for archive" in caplog.text

    backup = tmp_path / "backup.duckdb"
    shutil.copy(one, backup)  # checkpointed at the end of the session: the file is the archive
    with writer(one) as con:
        _place(con, "a", STORY, T0)  # above the old watermark
    index, _ = _open(one)
    with writer(one) as con:
        index.save(con)  # the file now covers the new article
    shutil.copy(backup, one)  # the archive restored, the band file left as it was
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="archive.bandindex"):
        _, cost = _open(one)
    assert cost["rebuilds"] == 1 and "has no band rows in lsh_bands" in caplog.text
    with writer(one) as con:  # the restored archive does not see the article it lost
        _, decisions = _place(con, "b", STORY, T0)
        assert decisions == []


def test_an_edit_of_the_newest_article_keeps_the_file(tmp_path: Path) -> None:
    """refresh_bands adds rows to an article the file ends on: no 40 s rebuild for that."""
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 500)
        aid, _ = _place(con, "a", STORY, T0)
    index, _ = _open(db)
    with writer(db) as con:
        index.save(con)
    assert index.file_watermark == aid
    with writer(db) as con:
        dedup.refresh_bands(
            con, aid, minhash_bands(STORY + " A paragraph added by the editors tonight.")
        )
        n = con.execute("SELECT count(*) FROM lsh_bands WHERE article_id = ?", [aid]).fetchone()
        assert n is not None and n[0] > 42
    _, cost = _open(db)
    assert (
        cost.get("rebuilds", 0) == 0 and cost.get("full_loads", 0) == 0 and cost["file_loads"] == 1
    )


def test_lookups_match_the_index_rebuilt_from_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File, rows read above it, a merged run and a fresh delta: the same answers as the truth."""
    monkeypatch.setattr(bandindex, "PERSIST_MIN_ROWS", 40_000)
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 3000)
    _open(db)
    with writer(db) as con:
        _fill(con, 3001, 700)  # 29,400 rows above the file: read as a sorted run
    index, cost = _open(db)
    assert cost["rows_read"] == 700 * 42 and len(index.run_keys) == 700 * 42
    rng = random.Random(3)
    with writer(db) as con:
        index = bandindex.band_index(con)
        for aid in range(3701, 3761):  # this process's rows, held in the delta
            bands = [rng.getrandbits(64) for _ in range(41)] + [int(aid % 50)]
            con.execute(
                "INSERT INTO lsh_bands SELECT range::SMALLINT, unnest(?::UBIGINT[]), ? FROM range(1)",
                [bands[:1], aid],
            )
            index.added(aid, bands[:1])
    assert index.delta_rows == 60
    _same_answers(index, _reference(db), _queries(db, 200))


_WRITE_LOOP = """
import sys
from archive import bandindex
from archive.db import writer

with writer(sys.argv[1]) as con:
    index = bandindex.band_index(con)
    aid = 10_000_000
    print("ready", flush=True)
    while True:  # a new article's band row, then a new file: writes until killed
        aid += 1
        con.execute("INSERT INTO lsh_bands VALUES (0, ?, ?)", [aid * 7919, aid])
        index.added(aid, [aid * 7919])
        index.save(con)
"""


def test_kill_9_while_the_file_is_written_leaves_a_usable_index(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 40_000)  # 1.7M rows: a 13 MB file, some milliseconds to write
    _open(db)
    script = tmp_path / "loop.py"
    script.write_text(_WRITE_LOOP, encoding="utf-8")
    band = bandstore.band_file(db)
    caught = False
    for _attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 30
        part = band.with_name(f"{band.name}.tmp-{proc.pid}")
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 0:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        if part.exists():
            caught = True
            break
    assert caught, "the writer was never killed in the middle of a file"
    bandstore.read(band)  # the rename is atomic: the file in place is whole (old or new)
    index, cost = _open(db)
    assert cost.get("full_loads", 0) == 0 and cost["file_loads"] == 1  # used, not rebuilt
    assert not part.exists()  # the dead writer's part is gone
    ref = _reference(db)
    assert index.rows == ref.rows and index.watermark == ref.watermark
    _same_answers(index, ref, _queries(db, 50))
    assert index.lookup([ref.watermark * 7919], exclude=-1) == {
        ref.watermark: 1
    }  # the last row written


def test_a_band_file_that_cannot_be_written_stops_no_ingest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        _fill(con, 1, 200)
    bandstore.band_file(db).mkdir()  # neither readable as a file nor replaceable
    with caplog.at_level(logging.WARNING, logger="archive.bandindex"), writer(db) as con:
        a, _ = _place(con, "a", STORY, T0)
        _, decisions = _place(con, "b", STORY, T0)
    assert [d.matched_article_id for d in decisions] == [a]
    assert bandindex.STATS["write_errors"] == 1 and "not written, kept in memory" in caplog.text
    assert "unreadable" in caplog.text


def test_an_in_memory_archive_needs_no_file(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE lsh_bands (band SMALLINT, hash UBIGINT, article_id BIGINT)")
    _fill(con, 1, 10, advance=False)
    index = dedup._band_index(con)
    assert index.path is None and index.rows == 420 and bandindex.STATS["file_writes"] == 0
    assert index.lookup(minhash_bands(STORY), exclude=-1) == {}
